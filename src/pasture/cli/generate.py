"""``pasture generate``: outputs of a model for an eval set, stored as they finish, written as model_outputs.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pasture.cli.options import ModelOptions, generator_option, model_options
from pasture.errors import InputError
from pasture.evalsets import resolve_eval_set
from pasture.generate import MODEL_SPEC_HELP, GenerationSettings, generate, refine_chain
from pasture.io import write_model_outputs
from pasture.records import EvalSet
from pasture.speculative.provider import DRAFT_SPEC_HELP, SpeculativeConfig, SpeculativeProvider
from pasture.store import Store


def eval_set_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--eval-set, --limit, --instruction-field, --alpaca-eval-file (shared by generate, evaluate)."""
    for option in reversed(
        [
            click.option(
                "--eval-set",
                "eval_set_spec",
                default="demo",
                show_default=True,
                help="'demo' (embedded, 115 instructions), 'alpaca_eval' (805, from the hub or --alpaca-eval-file), "
                "a JSON/JSONL/CSV/Parquet file or dataset folder with an instruction column, or hf:OWNER/NAME[:SPLIT].",
            ),
            click.option(
                "--limit",
                type=int,
                default=None,
                help="Keep this many instructions (demo: stratified by category; others: the first N).",
            ),
            click.option(
                "--instruction-field", default="instruction", show_default=True, help="Instruction column name."
            ),
            click.option(
                "--alpaca-eval-file",
                type=click.Path(path_type=Path),
                default=None,
                help="Local copy of AlpacaEval's eval set (e.g. results/gpt4_1106_preview/model_outputs.json.gz).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def load_eval_set_option(
    eval_set_spec: str, limit: int | None, instruction_field: str, alpaca_eval_file: Path | None
) -> EvalSet:
    return resolve_eval_set(
        eval_set_spec, instruction_field=instruction_field, limit=limit, alpaca_eval_path=alpaca_eval_file
    )


def read_system_prompt(system_prompt: str | None, system_prompt_file: Path | None) -> str | None:
    if system_prompt is not None and system_prompt_file is not None:
        raise InputError("give --system-prompt or --system-prompt-file, not both")
    if system_prompt_file is not None:
        if not system_prompt_file.is_file():
            raise InputError("system prompt file not found", path=system_prompt_file)
        return system_prompt_file.read_text(encoding="utf-8")
    return system_prompt


def sampling_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Sampling options of the model being generated (shared by generate and evaluate --model)."""
    for option in reversed(
        [
            click.option("--system-prompt", default=None, help="System message before each instruction."),
            click.option(
                "--system-prompt-file",
                type=click.Path(path_type=Path),
                default=None,
                help="System message from a file.",
            ),
            click.option("--max-tokens", type=int, default=512, show_default=True, help="Cap on generated tokens."),
            click.option("--temperature", type=float, default=0.7, show_default=True, help="0 = greedy."),
            click.option("--top-p", type=float, default=1.0, show_default=True, help="Nucleus sampling mass."),
            click.option("--seed", type=int, default=0, show_default=True, help="Base seed (sample k uses seed + k)."),
            click.option("--samples", type=int, default=1, show_default=True, help="Outputs per instruction."),
            click.option("--stop", multiple=True, help="Stop sequence (repeatable)."),
            click.option(
                "--gen-concurrency", type=int, default=4, show_default=True, help="Generation requests in flight."
            ),
        ]
    ):
        fn = option(fn)
    return fn


def settings_from_options(
    system_prompt: str | None,
    system_prompt_file: Path | None,
    max_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    samples: int,
    stop: tuple[str, ...],
) -> GenerationSettings:
    settings = GenerationSettings(
        system_prompt=read_system_prompt(system_prompt, system_prompt_file),
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        samples=samples,
        stop=tuple(stop),
    )
    settings.validate()
    return settings


@click.command("generate")
@model_options(required=True, help=MODEL_SPEC_HELP[0].upper() + MODEL_SPEC_HELP[1:] + ".")
@generator_option(required=True, help="Generator name on leaderboards (e.g. smollm2-verbose).")
@eval_set_options
@sampling_options
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path),
    default=Path("pasture.db"),
    show_default=True,
    help="SQLite store that receives the outputs (and is read to resume).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write an AlpacaEval-compatible model_outputs.json here.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--ray",
    default=None,
    metavar="ADDRESS",
    help="Generate on a Ray cluster: its address (HOST:PORT) or 'auto'; outputs are stored here (docs/evaluate.md).",
)
@click.option("--ray-workers", type=int, default=None, help="With --ray: Ray actors holding the model's provider.")
@click.option(
    "--draft-model", default=None, help="Speculative decoding (transformers targets): the " + DRAFT_SPEC_HELP + "."
)
@click.option(
    "--candidates", type=int, default=4, show_default=True, help="With --draft-model: fixed candidate length K."
)
@click.option(
    "--acceptance-head",
    type=click.Path(path_type=Path),
    default=None,
    help="With --draft-model: SpecDec++ adaptive candidate length from this head (pasture train acceptance_head).",
)
@click.option(
    "--stop-threshold", type=float, default=0.3, show_default=True, help="SpecDec++'s h: stop drafting when 1 − Πp̂ > h."
)
@click.option(
    "--refine-steps",
    type=int,
    default=0,
    show_default=True,
    help="EVOLVE's refinement chain: after the outputs, refine each answer this many times (kept when non-empty "
    "and changed); the chain's answers are stored as generator NAME+refineN (docs/generate.md).",
)
def command(
    model: ModelOptions,
    generator: str,
    eval_set_spec: str,
    limit: int | None,
    instruction_field: str,
    alpaca_eval_file: Path | None,
    system_prompt: str | None,
    system_prompt_file: Path | None,
    max_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    samples: int,
    stop: tuple[str, ...],
    gen_concurrency: int,
    store_path: Path,
    output: Path | None,
    no_progress: bool,
    ray: str | None,
    ray_workers: int | None,
    draft_model: str | None,
    candidates: int,
    acceptance_head: Path | None,
    stop_threshold: float,
    refine_steps: int,
) -> None:
    """Generate outputs of --model for every instruction of --eval-set.

    Outputs are written to the store as they finish: an interrupted run resumes where it stopped, and a
    finished one costs nothing to rerun. Failed generations are listed and retried by the next run.

    \b
    Examples:
      pasture generate --model smollm2 --generator smol --eval-set demo --limit 30 --max-tokens 128
      pasture generate --model openai:my-model --base-url http://127.0.0.1:8000/v1 --generator mine -o model_outputs.json
      pasture generate --model ./model.gguf --generator mine --system-prompt "Be concise." --temperature 0
    """
    settings = settings_from_options(
        system_prompt, system_prompt_file, max_tokens, temperature, top_p, seed, samples, stop
    )
    if refine_steps and ray is not None:
        raise InputError("--refine-steps runs the chain in this process; drop --ray")
    eval_set = load_eval_set_option(eval_set_spec, limit, instruction_field, alpaca_eval_file)
    if draft_model is not None:
        if model.provider_args or model.base_url:
            raise InputError("--draft-model runs the target in process; drop --provider-arg/--base-url")
        if model.spec is None:
            raise InputError("--draft-model needs --model (the target)", param="model")
        spec = SpeculativeConfig(
            draft_model, candidates, str(acceptance_head) if acceptance_head else None, stop_threshold
        )
        provider: Any = SpeculativeProvider(model.spec, spec)
    elif acceptance_head is not None:
        raise InputError("--acceptance-head needs --draft-model")
    else:
        provider = model.provider()
    if refine_steps:
        with Store(store_path) as store:
            chain = refine_chain(
                store,
                eval_set,
                provider,
                generator=generator,
                steps=refine_steps,
                settings=settings,
                concurrency=gen_concurrency,
                progress=not no_progress,
            )
        for step in chain.steps:
            click.echo(step.summary())
        click.echo(
            f"{chain.final_generator}: {len(chain.outputs)} chain answers; refinements kept per step {chain.kept}"
        )
        if output is not None:
            click.echo(f"wrote {write_model_outputs(chain.outputs, output)} (the chain's final answers)")
        if not chain.ok:
            raise SystemExit(1)
        return
    with Store(store_path) as store:
        report = generate(
            store,
            eval_set,
            provider,
            generator=generator,
            settings=settings,
            concurrency=gen_concurrency,
            output_path=output,
            progress=not no_progress,
            ray=ray,
            ray_workers=ray_workers,
        )
    click.echo(report.summary())
    for error in report.errors[:10]:
        click.echo(f"  failed: {error}", err=True)
    if report.output_path is not None:
        click.echo(f"wrote {report.output_path}")
    if not report.ok:
        raise SystemExit(1)
