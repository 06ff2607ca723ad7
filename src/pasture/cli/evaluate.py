"""``pasture evaluate``: model outputs + a reference + a judge → judgments → a leaderboard entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pasture.annotate import POSITIONS
from pasture.cli.generate import (
    eval_set_options,
    load_eval_set_option,
    parse_kv,
    sampling_options,
    settings_from_options,
)
from pasture.cli.leaderboard import show_board
from pasture.errors import InputError
from pasture.evalsets import ALPACA_EVAL, alpaca_eval_reference
from pasture.evaluate import evaluate
from pasture.generate import MODEL_SPEC_HELP, generate, provider_from_spec
from pasture.io import read_model_outputs
from pasture.judges.base import Judge
from pasture.records import ModelOutput
from pasture.store import Store


def judge_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--judge",
                "judge_name",
                default="smollm2-logprob",
                show_default=True,
                help="A built-in judge (`pasture judges` lists them) or a judge TOML file.",
            ),
            click.option(
                "--judge-template",
                type=click.Path(path_type=Path),
                default=None,
                help="Prompt template file for the judge (e.g. AlpacaEval's alpaca_eval_clf.txt).",
            ),
            click.option("--judge-base-url", default=None, help="Server URL of the judge's provider (ends in /v1)."),
            click.option("--judge-model", default=None, help="Model id of the judge's provider."),
            click.option(
                "--judge-arg", "judge_args", multiple=True, metavar="KEY=VALUE", help="Other judge provider argument."
            ),
        ]
    ):
        fn = option(fn)
    return fn


def build_judge(
    judge_name: str,
    judge_template: Path | None,
    judge_base_url: str | None,
    judge_model: str | None,
    judge_args: tuple[str, ...],
) -> Judge:
    from pasture.judges import get_judge

    overrides: dict[str, Any] = parse_kv(judge_args, "--judge-arg")
    if judge_template is not None:
        if not judge_template.is_file():
            raise InputError("judge template not found", path=judge_template)
        overrides["template"] = str(judge_template)
    if judge_base_url is not None:
        overrides["base_url"] = judge_base_url
    if judge_model is not None:
        overrides["model"] = judge_model
    return get_judge(judge_name, **overrides)


@click.command("evaluate")
@click.argument("model_outputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--model", "model_spec", default=None, help="Generate the outputs first: " + MODEL_SPEC_HELP + ".")
@click.option(
    "--name", "generator", default=None, help="Generator name (with --model: required; with one file: overrides)."
)
@eval_set_options
@click.option(
    "--reference",
    "reference_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Reference outputs file (model_outputs.json shape). Default for alpaca_eval: the official GPT-4 Turbo outputs.",
)
@click.option(
    "--reference-generator", default=None, help="Use the reference outputs already in the store under this name."
)
@judge_options
@click.option(
    "--position",
    type=click.Choice(POSITIONS),
    default="alpaca_eval",
    show_default=True,
    help="Which output the judge sees first; 'both' judges both orders and averages.",
)
@click.option("--concurrency", type=int, default=8, show_default=True, help="Judge calls in flight.")
@click.option("--timeout", "timeout_s", type=float, default=120.0, show_default=True, help="Per-call timeout (s).")
@click.option("--max-retries", type=int, default=6, show_default=True, help="Retries per judgment on 429/5xx/timeouts.")
@sampling_options
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path),
    default=Path("pasture.db"),
    show_default=True,
    help="SQLite store for outputs, judgments and leaderboard runs.",
)
@click.option(
    "--report", "report_path", type=click.Path(path_type=Path), default=None, help="Also write the HTML report."
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def command(
    model_outputs: tuple[Path, ...],
    model_spec: str | None,
    generator: str | None,
    eval_set_spec: str,
    limit: int | None,
    instruction_field: str,
    alpaca_eval_file: Path | None,
    reference_path: Path | None,
    reference_generator: str | None,
    judge_name: str,
    judge_template: Path | None,
    judge_base_url: str | None,
    judge_model: str | None,
    judge_args: tuple[str, ...],
    position: str,
    concurrency: int,
    timeout_s: float,
    max_retries: int,
    base_url: str | None,
    provider_args: tuple[str, ...],
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
    report_path: Path | None,
    no_progress: bool,
) -> None:
    """Judge MODEL_OUTPUTS (model_outputs.json files) or --model's outputs against a reference; update the board.

    Judgments already in the store (from earlier runs or `pasture import`) are reused, never bought again:
    re-running with one new model judges only that model. Failed judgments are counted in n_failed and
    retried by the next run.

    \b
    Examples:
      pasture evaluate results/my-model/model_outputs.json --eval-set alpaca_eval \\
          --judge weighted_alpaca_eval_gpt4_turbo --judge-template alpaca_eval_clf.txt
      pasture evaluate --model smollm2 --name smol --eval-set demo --limit 30 --reference-generator smol-ref
      pasture evaluate outputs.json --eval-set my_set.jsonl --reference ref.json --judge gpt-4o-mini-graded
    """
    if bool(model_outputs) == bool(model_spec):
        raise click.UsageError("give model output files or --model, not both and not neither")
    if reference_path is not None and reference_generator is not None:
        raise click.UsageError("give --reference or --reference-generator, not both")
    eval_set = load_eval_set_option(eval_set_spec, limit, instruction_field, alpaca_eval_file)
    judge = build_judge(judge_name, judge_template, judge_base_url, judge_model, judge_args)
    with Store(store_path) as store:
        outputs: list[ModelOutput] = []
        if model_spec is not None:
            if not generator:
                raise click.UsageError("--model needs --name (the generator name on the leaderboard)")
            settings = settings_from_options(
                system_prompt, system_prompt_file, max_tokens, temperature, top_p, seed, samples, stop
            )
            provider = provider_from_spec(model_spec, base_url=base_url, **parse_kv(provider_args, "--provider-arg"))
            gen = generate(
                store, eval_set, provider, generator=generator, settings=settings,
                concurrency=gen_concurrency, progress=not no_progress,
            )  # fmt: skip
            click.echo(gen.summary())
            if not gen.ok:
                raise InputError(f"{gen.n_failed} generations failed (first: {gen.errors[0]}); rerun to retry them")
            outputs = list(gen.outputs)
        else:
            if generator is not None and len(model_outputs) > 1:
                raise click.UsageError("--name renames one file's generator; give one file")
            for path in model_outputs:
                outputs += read_model_outputs(path, eval_set=eval_set, generator=generator)
        if reference_generator is not None:
            reference = store.get_outputs(eval_set.digest, reference_generator)
            if not reference:
                raise InputError(f"no outputs of '{reference_generator}' on eval set '{eval_set.name}' in {store_path}")
        elif reference_path is not None:
            reference = read_model_outputs(reference_path, eval_set=eval_set)
        elif eval_set_spec == ALPACA_EVAL:
            reference = alpaca_eval_reference(alpaca_eval_file)
            if limit is not None:
                keep = set(eval_set.texts())
                reference = [o for o in reference if o.instruction in keep]
        else:
            raise click.UsageError("give the reference outputs: --reference FILE or --reference-generator NAME")
        result = evaluate(
            store,
            eval_set=eval_set,
            model_outputs=outputs,
            reference_outputs=reference,
            judge=judge,
            position=position,  # type: ignore[arg-type]
            concurrency=concurrency,
            max_retries=max_retries,
            timeout_s=timeout_s,
            progress=not no_progress,
            inputs={"files": ", ".join(map(str, model_outputs))} if model_outputs else None,
        )
        click.echo(result.annotation.summary())
        board = result.board
        show_board(board.frame, board.title(), board.notes)
        if report_path is not None:
            from pasture.report import write_report

            files = write_report(
                board.frame, board.judgments, report_path, title=board.title(),
                manifest={"board": board.key.__dict__, "runs": board.manifests},
            )  # fmt: skip
            click.echo(f"report: {files.html}")
