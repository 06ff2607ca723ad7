"""``pasture bradley-terry``: a Bradley–Terry leaderboard with intervals and separability (docs/trust.md §3)."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.analysis.bradley_terry import bradley_terry_leaderboard
from pasture.cli.common import print_frame, wide_option, write_frame
from pasture.cli.style_control import load_pairs


@click.command("bradley-terry")
@wide_option
@click.argument("annotations", nargs=-1, type=click.Path(path_type=Path))
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None, help="Use a store's judgments.")
@click.option("--judge", default=None, help="With --store: the judge (name or digest prefix).")
@click.option(
    "--reference", default=None, help="Generator whose strength is fixed at 0 (default: the single generator_1)."
)
@click.option("--bootstrap", "n_bootstrap", type=int, default=100, show_default=True, help="Resamples of instructions.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Also write (.csv, .json, .md).")
def command(
    annotations: tuple[Path, ...],
    store_path: Path | None,
    judge: str | None,
    reference: str | None,
    n_bootstrap: int,
    seed: int,
    output: Path | None,
    wide: bool,
) -> None:
    """Bradley-Terry scores (win rate against the reference) over battles between any pairs of models."""
    pairs = load_pairs(annotations, store_path, judge)
    board = bradley_terry_leaderboard(pairs, reference=reference, n_bootstrap=n_bootstrap, seed=seed)
    print_frame(board.table, title=f"pasture bradley-terry (reference {board.fit.reference})", wide=wide)
    click.echo(f"separability: {board.separability:.2f} ({n_bootstrap} resamples)")
    for note in board.notes:
        click.echo(f"note: {note}")
    if output is not None:
        write_frame(board.table, output)
        click.echo(f"wrote {output}")
