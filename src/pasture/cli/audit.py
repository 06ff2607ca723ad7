"""``pasture audit``: the gaming audit of every model (docs/trust.md §4)."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from pasture.analysis.gaming import audit
from pasture.analysis.verbosity import verbosity_families
from pasture.cli.common import print_frame, wide_option, write_frame
from pasture.cli.style_control import load_pairs
from pasture.errors import InputError


@click.command("audit")
@wide_option
@click.argument("annotations", nargs=-1, type=click.Path(path_type=Path))
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None, help="Use a store's judgments.")
@click.option("--judge", default=None, help="With --store: the judge (name or digest prefix).")
@click.option(
    "--headline-board",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV leaderboard (model index) with the headline metric, e.g. an AlpacaEval leaderboard.",
)
@click.option(
    "--headline-column", default="length_controlled_winrate", show_default=True, help="Headline column of the board."
)
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Also write (.csv, .json, .md).")
def command(
    annotations: tuple[Path, ...],
    store_path: Path | None,
    judge: str | None,
    headline_board: Path | None,
    headline_column: str,
    output: Path | None,
    wide: bool,
) -> None:
    """Flag constant outputs, repeated blocks, extreme lengths, text addressed to the judge and recurring notes
    about the evaluation, each with its explanation; show the headline's lift and each model family's
    verbosity sensitivity as information. Exit status 0 even when flags fire (they are findings)."""
    pairs = load_pairs(annotations, store_path, judge)
    headline = None
    if headline_board is not None:
        board = pd.read_csv(headline_board, index_col=0)
        if headline_column not in board.columns:
            raise InputError(f"no column {headline_column!r}", path=headline_board)
        headline = board[headline_column].dropna().astype(float).to_dict()
    result = audit(pairs, headline=headline, headline_name=headline_column)
    shown = result.drop(columns=["explanations", "checks_run"]).assign(flags=result["flags"].map(", ".join))
    print_frame(shown, title="pasture audit", digits=3, wide=wide)
    for model, row in result.iterrows():
        for why in row["explanations"]:
            click.echo(f"{model}: {why}")
    families = verbosity_families(pairs, {headline_column: headline} if headline else None)
    if len(families.families):
        click.echo("verbosity sensitivity per family (information about the metric, not flags):")
        print_frame(families.members, wide=wide)
        print_frame(families.families, digits=3, wide=wide)
    if output is not None:
        write_frame(
            result.assign(
                flags=result["flags"].map(", ".join),
                explanations=result["explanations"].map(" | ".join),
                checks_run=result["checks_run"].map(", ".join),
            ),
            output,
        )
        click.echo(f"wrote {output}")
