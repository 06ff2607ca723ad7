"""``pasture gamed-baselines``: the reference's model prompted to be verbose and concise, judged against it."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.annotate import POSITIONS, EngineSettings
from pasture.cli.generate import eval_set_options, load_eval_set_option, sampling_options, settings_from_options
from pasture.cli.options import (
    JudgeOptions,
    ModelOptions,
    ReferenceOptions,
    engine_options,
    judge_options,
    model_options,
    reference_options,
)
from pasture.evalsets import ALPACA_EVAL
from pasture.gamed_baselines import gamed_rows, make_gamed_baselines
from pasture.generate import MODEL_SPEC_HELP
from pasture.store import Store


@click.command("gamed-baselines")
@model_options(required=True, help="The reference's own model: " + MODEL_SPEC_HELP + ".")
@eval_set_options
@reference_options
@judge_options()
@click.option(
    "--position", type=click.Choice(POSITIONS), default="alpaca_eval", show_default=True, help="Judge order policy."
)
@engine_options()
@sampling_options
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path),
    default=Path("pasture.db"),
    show_default=True,
    help="SQLite store (outputs, judgments and runs; reruns resume from it).",
)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def command(
    model: ModelOptions,
    eval_set_spec: str,
    limit: int | None,
    instruction_field: str,
    alpaca_eval_file: Path | None,
    reference: ReferenceOptions,
    judge: JudgeOptions,
    position: str,
    engine: EngineSettings,
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
    no_progress: bool,
) -> None:
    """Make the gamed baselines of a board: --model (the reference's model) told to be verbose and concise.

    The variants are stored as generators <reference>_verbose and <reference>_concise, judged against the
    reference by the judge, and recorded on the board for the LC fit (pasture.gamed_baselines.gamed_rows).
    Generation and judging are cached in the store: a rerun makes only what is missing.

    \b
    Example:
      pasture gamed-baselines --model smollm2 --eval-set demo --limit 30 --reference-generator smollm2-concise
    """
    if system_prompt is not None or system_prompt_file is not None:
        raise click.UsageError("gamed baselines set their own system prompts (pasture.gamed_baselines.GAMED_PROMPTS)")
    if samples != 1:
        raise click.UsageError("gamed baselines take one output per instruction")
    eval_set = load_eval_set_option(eval_set_spec, limit, instruction_field, alpaca_eval_file)
    judge_ = judge.build()
    settings = settings_from_options(None, None, max_tokens, temperature, top_p, seed, samples, stop)
    with Store(store_path) as store:
        # a reference file answers the whole eval set: with --limit it is checked against it, then cut
        whole = limit is not None and reference.path is not None
        ref_outputs = reference.outputs(
            store, eval_set, official=eval_set_spec == ALPACA_EVAL, alpaca_eval_file=alpaca_eval_file,
            file_eval_set=load_eval_set_option(eval_set_spec, None, instruction_field, alpaca_eval_file)
            if whole else None,
        )  # fmt: skip
        provider = model.provider()
        result = make_gamed_baselines(
            store,
            eval_set=eval_set,
            reference_outputs=ref_outputs,
            provider=provider,
            judge=judge_,
            settings=settings,
            position=position,  # type: ignore[arg-type]
            engine=engine,
            gen_concurrency=gen_concurrency,
            progress=not no_progress,
        )
        rows = gamed_rows(store, result.key)
    click.echo(result.summary())
    for name, group in rows.groupby("model", sort=True):
        click.echo(
            f"{name}: {len(group)} judged rows, mean length {group['len_2'].mean():.0f} characters "
            f"(reference {group['len_1'].mean():.0f}), win rate {100 * (group['preference'] - 1).mean():.2f}"
        )
