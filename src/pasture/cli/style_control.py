"""``pasture style-control``: win rates against the reference at zero style difference (docs/trust.md §2)."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from pasture.analysis.style import POOLINGS, STYLE_FEATURES, style_controlled_leaderboard
from pasture.cli.common import print_frame, wide_option, write_frame
from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.metrics.pairs import pair_table
from pasture.records import Judgment
from pasture.scoring import store_judgments
from pasture.store import Store


def load_pairs(annotations: tuple[Path, ...], store_path: Path | None, judge: str | None) -> pd.DataFrame:
    """The pair table of annotation files, or of a store's judgments (optionally one judge's: name or digest
    prefix). Shared by the analysis commands. A store is read as :func:`pasture.scoring.store_judgments` reads it
    for ``pasture score --store``: one row per (model, question), so a model whose answer equals another's keeps
    its rows (the store holds one verdict per key)."""
    if bool(annotations) == bool(store_path):
        raise click.UsageError("give annotation files or --store, not both and not neither")
    judgments: list[Judgment] = []
    if store_path is not None:
        if not store_path.exists():
            raise InputError("no such store", path=store_path)
        with Store(store_path) as store:
            judgments = store_judgments(store, judge=judge)
    else:
        judgments = [j for f in annotations for j in read_annotations(f)]
    if not judgments:
        raise InputError("no judgments to analyse")
    return pair_table(judgments)


@click.command("style-control")
@wide_option
@click.argument("annotations", nargs=-1, type=click.Path(path_type=Path))
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None, help="Use a store's judgments.")
@click.option("--judge", default=None, help="With --store: the judge (name or digest prefix).")
@click.option(
    "--feature",
    "features",
    multiple=True,
    type=click.Choice(STYLE_FEATURES),
    help="Style feature to control for (repeatable; default: all four).",
)
@click.option(
    "--pooling",
    type=click.Choice(POOLINGS),
    default="audited",
    show_default=True,
    help="Whose battles estimate the style coefficients: audited = the models the gaming audit leaves "
    "unflagged (see docs/trust.md).",
)
@click.option("--anchor", "anchors", multiple=True, help="With --pooling anchored: an anchor model (repeatable).")
@click.option("--reference", default=None, help="Reference generator (default: the single generator_1).")
@click.option("--bootstrap", "n_bootstrap", type=int, default=100, show_default=True, help="Resamples of instructions.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Also write (.csv, .json, .md).")
def command(
    annotations: tuple[Path, ...],
    store_path: Path | None,
    judge: str | None,
    features: tuple[str, ...],
    pooling: str,
    anchors: tuple[str, ...],
    reference: str | None,
    n_bootstrap: int,
    seed: int,
    output: Path | None,
    wide: bool,
) -> None:
    """Style-controlled scores (Bradley-Terry with raw length/markdown differences) with instruction-bootstrap
    intervals, from ANNOTATIONS files or a store."""
    pairs = load_pairs(annotations, store_path, judge)
    board = style_controlled_leaderboard(
        pairs,
        features=features or STYLE_FEATURES,  # type: ignore[arg-type]
        reference=reference,
        pooling=pooling,  # type: ignore[arg-type]
        anchors=anchors,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    print_frame(board.table, title=f"pasture style-control ({pooling}; reference {board.reference})", wide=wide)
    print_frame(board.coefficients, title="style coefficients (log-odds per unit)", digits=3, wide=wide)
    click.echo(f"separability: {board.separability:.2f} ({n_bootstrap} resamples)")
    for note in board.notes:
        click.echo(f"note: {note}")
    if output is not None:
        write_frame(board.table, output)
        click.echo(f"wrote {output}")
