"""``pasture annotate``: judge model outputs against reference outputs into the store (thin layer over
:func:`pasture.annotate.annotate`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import click

from pasture.annotate import POSITIONS, AnnotationReport, EngineSettings, Position, annotate, pairs_from_outputs, plan
from pasture.cli.options import JudgeOptions, engine_options, generator_option, judge_options
from pasture.io import read_model_outputs, write_annotations
from pasture.store import Store

MAX_FAILURES_SHOWN = 10


@click.command("annotate")
@click.argument("model_outputs", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--reference",
    "reference_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Reference (baseline) outputs: slot 1 of every pair, one output per instruction.",
)
@judge_options()
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("pasture.db"),
    show_default=True,
    help="The SQLite store: cache, claims and results.",
)
@generator_option(help="Generator name for model outputs files without one.")
@click.option(
    "--position",
    type=click.Choice(POSITIONS),
    default="alpaca_eval",
    show_default=True,
    help="Which output is shown first: AlpacaEval's order, both orders, or always one slot.",
)
@click.option("--replicates", type=click.IntRange(min=1), default=1, show_default=True, help="Judgments per order.")
@engine_options()
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
@click.option("--dry-run", is_flag=True, help="Print the number of calls and the estimated cost; call nothing.")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write this run's judgments as an AlpacaEval-style annotations file (.json/.jsonl/.csv/...).",
)
def command(
    model_outputs: tuple[Path, ...],
    reference_path: Path,
    judge: JudgeOptions,
    store_path: Path,
    generator: str | None,
    position: str,
    replicates: int,
    engine: EngineSettings,
    no_progress: bool,
    dry_run: bool,
    output: Path | None,
) -> None:
    """Judge MODEL_OUTPUTS (AlpacaEval model_outputs files) against --reference with --judge.

    Judgments already in the store cost nothing; failed ones are stored with their error and retried by the
    next run. Exits with status 1 when any judgment failed (they are listed), 2 on bad input.

    \b
    Example:
      pasture annotate results/my-model/model_outputs.json --reference ref.json \\
          --judge weighted_alpaca_eval_gpt4_turbo --judge-template alpaca_eval_clf.txt --rpm 500 --dry-run
    """
    judge_ = judge.build()
    reference = read_model_outputs(reference_path)
    outputs = [o for path in model_outputs for o in read_model_outputs(path, generator=generator)]
    pairs = pairs_from_outputs(outputs, reference)
    with Store(store_path) as store:
        if dry_run:
            click.echo(
                plan(
                    store, judge_, pairs, settings=engine, position=cast(Position, position), replicates=replicates
                ).summary()
            )
            return
        report = annotate(
            store,
            judge_,
            pairs,
            settings=engine,
            position=cast(Position, position),
            replicates=replicates,
            progress=not no_progress,
        )
    click.echo(report.summary())
    if output is not None:
        write_annotations(report.judgments, output)
        click.echo(f"wrote {len(report.judgments)} judgments to {output}")
    if not report.ok:
        _report_failures(report, store_path)
        sys.exit(1)


def _report_failures(report: AnnotationReport, store_path: Path) -> None:
    failed = report.failed
    for j in failed[:MAX_FAILURES_SHOWN]:
        instruction = j.instruction if len(j.instruction) <= 50 else j.instruction[:49] + "…"
        click.echo(f"  {j.status}: {j.generator_2} on {instruction!r}: {j.error}", err=True)
    if len(failed) > MAX_FAILURES_SHOWN:
        click.echo(f"  ... and {len(failed) - MAX_FAILURES_SHOWN} more", err=True)
    click.echo(
        f"pasture: {report.n_failed} of {report.n_judgments} judgments failed "
        f"({report.n_parse_error} unparsable, {report.n_error} errors, {report.n_missing} missing); "
        f"they are recorded in {store_path} and a rerun retries them",
        err=True,
    )
