"""``pasture annotate``: judge model outputs against reference outputs into the store (thin layer over
:func:`pasture.annotate.annotate`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pasture.annotate import POSITIONS, AnnotationReport, annotate, pairs_from_outputs, plan
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
@click.option("--judge", "judge_name", required=True, help="A built-in judge name (`pasture judges`) or a TOML file.")
@click.option(
    "--template",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Prompt template file for judges that need one (e.g. alpaca_eval_clf.txt).",
)
@click.option("--base-url", default=None, help="Override the judge's server URL (OpenAI-compatible, ends in /v1).")
@click.option("--model", default=None, help="Override the judge's model id.")
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("pasture.db"),
    show_default=True,
    help="The SQLite store: cache, claims and results.",
)
@click.option("--generator", default=None, help="Generator name for model outputs files without one.")
@click.option(
    "--position",
    type=click.Choice(POSITIONS),
    default="alpaca_eval",
    show_default=True,
    help="Which output is shown first: AlpacaEval's order, both orders, or always one slot.",
)
@click.option("--replicates", type=click.IntRange(min=1), default=1, show_default=True, help="Judgments per order.")
@click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True, help="Calls in flight.")
@click.option("--rpm", type=click.FloatRange(min=0, min_open=True), default=None, help="Requests per minute limit.")
@click.option("--tpm", type=click.FloatRange(min=0, min_open=True), default=None, help="Tokens per minute limit.")
@click.option("--max-retries", type=click.IntRange(min=0), default=6, show_default=True, help="Transient retries.")
@click.option("--timeout", "timeout_s", type=float, default=120.0, show_default=True, help="Per-call timeout, s.")
@click.option("--parse-retries", type=click.IntRange(min=0), default=1, show_default=True, help="Unparsable retries.")
@click.option(
    "--claim-ttl", "claim_ttl_s", type=float, default=120.0, show_default=True, help="Claim lifetime in seconds."
)
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
    judge_name: str,
    template: Path | None,
    base_url: str | None,
    model: str | None,
    store_path: Path,
    generator: str | None,
    position: str,
    replicates: int,
    concurrency: int,
    rpm: float | None,
    tpm: float | None,
    max_retries: int,
    timeout_s: float,
    parse_retries: int,
    claim_ttl_s: float,
    no_progress: bool,
    dry_run: bool,
    output: Path | None,
) -> None:
    """Judge MODEL_OUTPUTS (AlpacaEval model_outputs files) against --reference with --judge.

    Judgments already in the store cost nothing; failed ones are stored with their error and retried by the
    next run. Exits with status 1 when any judgment failed (they are listed), 2 on bad input.
    """
    from pasture.judges import get_judge

    overrides: dict[str, Any] = {}
    if template is not None:
        overrides["template"] = str(template)
    if base_url is not None:
        overrides["base_url"] = base_url
    if model is not None:
        overrides["model"] = model
    judge = get_judge(judge_name, **overrides)
    reference = read_model_outputs(reference_path)
    outputs = [o for path in model_outputs for o in read_model_outputs(path, generator=generator)]
    pairs = pairs_from_outputs(outputs, reference)
    with Store(store_path) as store:
        if dry_run:
            click.echo(
                plan(
                    store,
                    judge,
                    pairs,
                    position=position,  # type: ignore[arg-type]
                    replicates=replicates,
                    max_retries=max_retries,
                    parse_retries=parse_retries,
                ).summary()
            )
            return
        report = annotate(
            store,
            judge,
            pairs,
            position=position,  # type: ignore[arg-type]
            replicates=replicates,
            concurrency=concurrency,
            requests_per_minute=rpm,
            tokens_per_minute=tpm,
            max_retries=max_retries,
            timeout_s=timeout_s,
            parse_retries=parse_retries,
            claim_ttl_s=claim_ttl_s,
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
