"""``pasture synthesize``: persona-driven expert instructions and judged responses, as TRL SFT and preference files."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.annotate import EngineSettings
from pasture.cli.options import JudgeOptions, ModelOptions, engine_options, judge_options, model_options
from pasture.errors import InputError
from pasture.evalsets import resolve_eval_set
from pasture.generate import MODEL_SPEC_HELP, GenerationSettings
from pasture.judges import get_response_judge
from pasture.store import Store
from pasture.synthesize import NEAR_DUPLICATE_THRESHOLD, SynthesisSettings, read_personas, synthesize, write_jsonl


@click.command("synthesize")
@click.argument("personas_path", metavar="PERSONAS", type=click.Path(path_type=Path))
@model_options(required=True, help="The generator of instructions and responses: " + MODEL_SPEC_HELP + ".")
@judge_options(default=None, help="A single-response judge with scores (protocol response_score), or its TOML file.")
@engine_options(EngineSettings(concurrency=1))
@click.option("--name", default="synth", show_default=True, help="Prefix of the generator names in the store.")
@click.option("--instructions-per-persona", type=int, default=2, show_default=True, help="Instructions per persona.")
@click.option("--responses", type=int, default=2, show_default=True, help="Responses per kept instruction.")
@click.option("--instruction-max-tokens", type=int, default=96, show_default=True, help="Cap per instruction.")
@click.option("--response-max-tokens", type=int, default=512, show_default=True, help="Cap per response.")
@click.option("--temperature", type=float, default=0.8, show_default=True, help="Sampling temperature of both steps.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed (sample k uses seed + k).")
@click.option("--min-score", type=float, default=7.0, show_default=True, help="Lowest score of an SFT response.")
@click.option("--min-gap", type=float, default=1.0, show_default=True, help="Smallest chosen-rejected score gap.")
@click.option(
    "--dedup-against",
    multiple=True,
    default=("demo",),
    show_default=True,
    help="Eval set the data must not hold, exactly or nearly (repeatable; 'demo', 'alpaca_eval', a file).",
)
@click.option("--alpaca-eval-file", type=click.Path(path_type=Path), default=None, help="Local AlpacaEval eval set.")
@click.option(
    "--near-duplicate-threshold",
    type=float,
    default=NEAR_DUPLICATE_THRESHOLD,
    show_default=True,
    help="Character 5-shingle Jaccard at or above which an instruction is a near duplicate.",
)
@click.option(
    "--store", "store_path", type=click.Path(path_type=Path), default=Path("pasture.db"), show_default=True,
    help="SQLite store of generations and judgments (read to resume).",
)  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder for sft/preference.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def command(
    personas_path: Path,
    model: ModelOptions,
    judge: JudgeOptions,
    engine: EngineSettings,
    name: str,
    instructions_per_persona: int,
    responses: int,
    instruction_max_tokens: int,
    response_max_tokens: int,
    temperature: float,
    seed: int,
    min_score: float,
    min_gap: float,
    dedup_against: tuple[str, ...],
    alpaca_eval_file: Path | None,
    near_duplicate_threshold: float,
    store_path: Path,
    out_dir: Path,
    no_progress: bool,
) -> None:
    """Write OUT/sft.jsonl and OUT/preference.jsonl from PERSONAS (a text file, one per line, or rows with 'persona').

    Each persona's instructions are written by --model, deduplicated against --dedup-against, answered by
    --model, and each response is scored by --judge; what is kept follows --min-score and --min-gap.

    \b
    Examples:
      pasture synthesize personas.txt --model openai:my-model --judge gpt-4o-mini-response-score --out data/
      pasture synthesize personas.txt --model smollm2 --judge my_score_judge.toml --dedup-against alpaca_eval \\
          --alpaca-eval-file ref.json.gz --out data/
    """
    if temperature <= 0 and (instructions_per_persona > 1 or responses > 1):
        raise InputError(
            "several samples need --temperature above 0 (greedy samples are identical)", param="temperature"
        )
    settings = SynthesisSettings(
        name=name,
        instructions_per_persona=instructions_per_persona,
        responses_per_instruction=responses,
        instruction_generation=GenerationSettings(
            max_tokens=instruction_max_tokens, temperature=temperature, seed=seed
        ),
        response_generation=GenerationSettings(max_tokens=response_max_tokens, temperature=temperature, seed=seed),
        min_score=min_score,
        min_gap=min_gap,
        near_duplicate_threshold=near_duplicate_threshold,
    )
    personas = read_personas(personas_path)
    eval_sets = [resolve_eval_set(spec, alpaca_eval_path=alpaca_eval_file) for spec in dedup_against]
    response_judge = get_response_judge(judge.name, **judge.overrides())
    provider = model.provider()
    with Store(store_path) as store:
        report = synthesize(
            store, personas, provider, response_judge, eval_sets=eval_sets, settings=settings, engine=engine,
            progress=not no_progress,
        )  # fmt: skip
    click.echo(report.summary())
    for text, hit in report.dropped[:10]:
        click.echo(f"  dropped ({hit.reason}, {hit.similarity:.2f}): {text[:50]!r} ~ {hit.match[:50]!r}")
    click.echo(f"wrote {write_jsonl(out_dir / 'sft.jsonl', report.sft)}")
    click.echo(f"wrote {write_jsonl(out_dir / 'preference.jsonl', report.preference)}")
    if report.n_generation_failed or report.n_judge_failed:
        raise SystemExit(1)
