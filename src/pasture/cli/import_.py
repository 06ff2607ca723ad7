"""``pasture import``: AlpacaEval annotation or output files into the store."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.options import generator_option
from pasture.store import Store
from pasture.transfer import import_annotations, import_outputs, load_eval_set


@click.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path),
    default=Path("pasture.db"),
    show_default=True,
    help="The SQLite store to import into.",
)
@click.option(
    "--kind",
    type=click.Choice(["annotations", "outputs"]),
    default="annotations",
    show_default=True,
    help="What the files hold.",
)
@click.option(
    "--eval-set",
    "eval_set_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Eval set file: rows whose instruction is not in it are errors (required for outputs).",
)
@generator_option(help="For outputs: the generator name, if the file has none.")
@click.option("--annotator", default=None, help="For annotations: the judge name, if the file has none.")
def command(
    files: tuple[Path, ...],
    store_path: Path,
    kind: str,
    eval_set_path: Path | None,
    generator: str | None,
    annotator: str | None,
) -> None:
    """Import FILES (AlpacaEval annotations.json or model_outputs.json, plain or .gz) into the store.

    Annotations of any annotator are accepted: the official judge's name maps to its documented fingerprint,
    any other becomes an imported judge (known by name, template unknown). Each annotations import records
    its board (eval set, reference, judge, one run per model), so `pasture leaderboard` and `pasture report`
    work next. A file is validated whole before any of it is written; re-importing writes nothing new.

    \b
    Example (AlpacaEval files to a board and a report):
      pasture import results/*/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz --store p.db
      pasture leaderboard --store p.db
      pasture report --store p.db -o report.html
    """
    eval_set = load_eval_set(eval_set_path) if eval_set_path is not None else None
    with Store(store_path) as store:
        if kind == "annotations":
            reports = import_annotations(store, files, eval_set=eval_set, annotator=annotator)
        else:
            if eval_set is None:
                raise click.UsageError("--eval-set is required with --kind outputs")
            reports = [import_outputs(store, f, eval_set=eval_set, generator=generator) for f in files]
    boards: dict[str, set[str]] = {}
    for r in reports:
        judge = f", judge {r.judge_name}" if r.judge_name else ""
        click.echo(f"{r.path}: {r.rows} rows, {r.written} new, {r.failed} without a verdict{judge}")
        if r.key is not None:
            boards.setdefault(f"{r.judge_name} ({r.key.short()})", set()).update(r.models)
    for board, models in boards.items():
        click.echo(f"board {board}: {len(models)} model(s) recorded; next: pasture leaderboard --store {store_path}")
