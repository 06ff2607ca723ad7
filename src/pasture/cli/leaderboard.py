"""``pasture leaderboard``: every model on one (eval set, reference, judge), recomputed from the store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
import pandas as pd
from rich.console import Console

from pasture.cli.common import print_frame, wide_option, write_frame
from pasture.errors import InputError
from pasture.leaderboard import SORT_COLUMNS, boards, external_correlation, leaderboard, resolve_key
from pasture.store import Store

DISPLAY: dict[str, str] = {
    "length_controlled_winrate": "LC",
    "lc_ci_low": "LC lo",
    "lc_ci_high": "LC hi",
    "lc_note": "LC note",
    "win_rate": "WR",
    "win_rate_ci_low": "WR lo",
    "win_rate_ci_high": "WR hi",
    "standard_error": "SE",
    "discrete_win_rate": "discrete",
    "avg_length": "length",
    "n_total": "n",
    "n_failed": "failed",
    "n_used": "n used",
    "calls_saved": "saved",
    "judge_cost_usd": "judge $",
    "gaming_flags": "gaming flags",
}
"""Terminal headers (short, so a wide board fits); files keep the full column names."""

LEGEND = (
    "LC = length-controlled win rate, WR = win rate (% against the reference); lo/hi = bootstrap interval; "
    "SE = standard error; length = mean characters; failed = judgments not scored; LC note = what the LC lacks "
    "(gamed rows, difficulty) or why it is blank; definitions: docs/evaluate.md, docs/metrics.md"
)


def show_board(frame: pd.DataFrame, title: str, notes: Sequence[str] = (), *, wide: bool = False) -> None:
    """The board on the terminal with short headers, a legend and its notes (``wide``: every column)."""
    shown = frame[[c for c in DISPLAY if c in frame.columns]].rename(columns=DISPLAY)
    print_frame(shown, title=title, wide=wide)
    click.echo(LEGEND)
    for note in notes:
        click.echo(f"note: {note}")


def board_options(fn):  # type: ignore[no-untyped-def]
    for option in reversed(
        [
            click.option(
                "--store",
                "store_path",
                type=click.Path(path_type=Path),
                default=Path("pasture.db"),
                show_default=True,
                help="The SQLite store.",
            ),
            click.option("--eval-set", "eval_set", default=None, help="Eval set name or digest prefix."),
            click.option("--reference", default=None, help="Reference generator name or outputs-digest prefix."),
            click.option("--judge", default=None, help="Judge name or fingerprint-digest prefix."),
        ]
    ):
        fn = option(fn)
    return fn


def open_store(store_path: Path) -> Store:
    if not store_path.exists():
        raise InputError("store not found (run `pasture evaluate` first or pass --store)", path=store_path)
    return Store(store_path)


@click.command("leaderboard")
@wide_option
@board_options
@click.option("--list", "list_boards", is_flag=True, help="List the leaderboards in the store and exit.")
@click.option(
    "--sort-by",
    type=click.Choice(SORT_COLUMNS),
    default="length_controlled_winrate",
    show_default=True,
    help="Sort column (win_rate when LC is not available).",
)
@click.option("--ascending", is_flag=True, help="Sort ascending instead of descending.")
@click.option(
    "--resamples",
    type=int,
    default=1000,
    show_default=True,
    help="Paired bootstrap resamples over instructions for the intervals (0: no intervals).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the full table (with run manifests in JSON); format from the suffix: .csv, .json, .md.",
)
@click.option(
    "--correlate",
    type=click.Path(path_type=Path),
    default=None,
    help="External ranking file (CSV/JSON/...), e.g. Chatbot Arena Elo: Spearman and Kendall with the board.",
)
@click.option("--correlate-column", default="elo", show_default=True, help="Score column of the ranking file.")
@click.option("--correlate-model-column", default="model", show_default=True, help="Model-name column of that file.")
def command(
    store_path: Path,
    eval_set: str | None,
    reference: str | None,
    judge: str | None,
    list_boards: bool,
    sort_by: str,
    ascending: bool,
    resamples: int,
    seed: int,
    output: Path | None,
    correlate: Path | None,
    correlate_column: str,
    correlate_model_column: str,
    wide: bool,
) -> None:
    """Show all models evaluated on one (eval set, reference, judge): win rates, LC, intervals, costs, flags.

    Numbers are recomputed from the stored judgments (no judge call). With several leaderboards in the store,
    pick one with --eval-set/--reference/--judge (names or digest prefixes; --list shows them).

    \b
    Examples:
      pasture leaderboard --store pasture.db
      pasture leaderboard --sort-by win_rate -o board.md
      pasture leaderboard --correlate arena.csv --correlate-column elo
    """
    with open_store(store_path) as store:
        if list_boards:
            table = boards(store)
            if table.empty:
                click.echo("no leaderboards yet")
                return
            for col in ("eval_set_digest", "reference_digest", "judge_digest"):
                table[col] = table[col].str[:12]
            print_frame(table.set_index("eval_set"), title=f"leaderboards in {store_path}", wide=wide)
            return
        key = resolve_key(store, eval_set=eval_set, reference=reference, judge=judge)
        if resamples < 0:
            raise InputError(f"--resamples must be >= 0, got {resamples}")
        with Console(stderr=True).status(f"computing LC and {resamples} bootstrap resamples"):
            board = leaderboard(
                store, key, sort_by=sort_by, ascending=ascending, bootstrap_resamples=resamples, seed=seed
            )
    frame = board.frame
    show_board(frame, board.title(), board.notes, wide=wide)
    if correlate is not None:
        for corr in external_correlation(
            frame, correlate, column=correlate_column, model_column=correlate_model_column
        ):
            click.echo(
                f"{corr.metric} vs {corr.reference} over {corr.n} models: "
                f"Spearman {corr.spearman:.3f}, Kendall {corr.kendall:.3f}"
            )
    if output is not None:
        full = frame.copy()
        import json

        full["manifest"] = [json.dumps(board.manifests.get(str(m), {}), default=str) for m in full.index]
        write_frame(full if output.suffix.lower() != ".md" else frame, output)
        click.echo(f"wrote {output}")
