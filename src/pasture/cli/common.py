"""Helpers shared by CLI commands: printing and writing tables."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from pasture.errors import InputError

MISSING = "–"
"""How a missing or unknown value (None, NaN: e.g. a judge without a price) is shown; never as 0."""

KEY_COLUMNS: tuple[str, ...] = (
    "reference",
    "judge",
    "models",
    "length_controlled_winrate",
    "LC",
    "win_rate",
    "WR",
    "lc_ci_low",
    "LC lo",
    "lc_ci_high",
    "LC hi",
    "standard_error",
    "SE",
    "n_total",
    "n",
    "n_failed",
    "failed",
    "protocol",
    "avg_length",
    "length",
    "judge_cost_usd",
    "judge $",
    "gaming_flags",
    "gaming flags",
)
"""Columns the compact view shows first, in this order, when a table has them (names that tell rows and
boards apart, then the headline numbers, full names and the leaderboard's short headers); other columns
(digests, diagnostics) follow in the table's order while the terminal has room."""

NOTE_COLUMNS: tuple[str, ...] = ("lc_note", "LC note")
"""Columns of caveats on a row's numbers: when the compact view leaves one out, its non-empty cells are
printed under the table, one line per row, so that an LC computed without its inputs never looks sound."""

TEXT_CELL_MAX = 24
"""Compact view: longest text cell (other than the row name, which is never cut) before an ellipsis."""


def wide_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--wide``: print every column, however wide the terminal (the default view fits the terminal)."""
    return click.option(
        "--wide", is_flag=True, help="Print every column (the default view shows the key ones that fit)."
    )(fn)


def format_cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or MISSING
    return str(value)


def _cells(frame: pd.DataFrame, digits: int) -> dict[str, list[str]]:
    return {str(col): [format_cell(v, digits) for v in frame[col].tolist()] for col in frame.columns}


HEADER_MAX = 12
"""Compact view: a header longer than this (and than its column's cells) is broken after its underscores
(or at its spaces) over several lines; the name itself is never changed or cut."""


def _segments(name: str) -> list[str]:
    """``length_controlled_winrate`` -> ``['length_', 'controlled_', 'winrate']``; spaces split too."""
    out: list[str] = []
    for word in name.split(" "):
        parts = word.split("_")
        out += [p + "_" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return out or [name]


def _header(name: str, width: int) -> str:
    """``name`` packed into lines of at most ``width`` characters, broken only between segments."""
    lines: list[str] = []
    for seg in _segments(name):
        sep = "" if not lines or lines[-1].endswith("_") else " "
        if lines and len(lines[-1]) + len(sep) + len(seg) <= width:
            lines[-1] += sep + seg
        else:
            lines.append(seg)
    return "\n".join(lines)


def _widths(frame: pd.DataFrame, cells: dict[str, list[str]]) -> dict[str, int]:
    """Printed width of each compact column: its longest cell (text capped at TEXT_CELL_MAX) or the longest
    line of its header packed into HEADER_MAX characters, whichever is wider."""
    widths = {}
    for col, values in cells.items():
        longest_cell = max((min(len(v), TEXT_CELL_MAX) for v in values), default=1)
        header = max(len(line) for line in _header(col, HEADER_MAX).splitlines())
        widths[col] = max(longest_cell, header)
    return widths


def _name_width(frame: pd.DataFrame) -> int:
    return max([len(str(frame.index.name or "")), *(len(str(i)) for i in frame.index), 1])


def compact_columns(frame: pd.DataFrame, width: int, *, digits: int = 2) -> list[str]:
    """The columns that fit ``width`` terminal columns after the row names: key columns first.

    Widths are measured as printed: a long header is broken after its underscores (:data:`HEADER_MAX`), a
    number never, a text cell is cut at :data:`TEXT_CELL_MAX` characters. Row names always get their full width.
    """
    widths = _widths(frame, _cells(frame, digits))
    used = _name_width(frame) + 4  # outer borders and padding
    order = [c for c in KEY_COLUMNS if c in widths] + [c for c in widths if c not in KEY_COLUMNS]
    chosen: set[str] = set()
    for col in order:
        need = widths[col] + 3  # padding and separator
        if used + need <= width:
            used += need
            chosen.add(col)
    return [str(c) for c in frame.columns if str(c) in chosen]  # the table's own order


def _hint() -> str:
    """How to see the rest, naming the running command's own options."""
    ctx = click.get_current_context(silent=True)
    options = {p.name: p for p in ctx.command.params} if ctx is not None else {}
    ways = []
    if "wide" in options:
        ways.append("--wide prints them")
    for name in ("output", "out"):
        if name in options:
            ways.append(f"{min(options[name].opts, key=len)} FILE writes them")
            break
    return "; ".join(ways) if ways else "widen the terminal"


def print_frame(frame: pd.DataFrame, *, title: str | None = None, digits: int = 2, wide: bool = False) -> None:
    """A DataFrame as a table on the terminal (index shown as the first column).

    By default the table fits the terminal: row names in full, then the key columns that fit
    (:func:`compact_columns`), and a line saying which columns were left out and how to see them. ``wide``
    prints every column.
    """
    console = Console(width=max(len(str(title or "")), 400)) if wide else Console()
    shown = list(map(str, frame.columns)) if wide else compact_columns(frame, console.width, digits=digits)
    cells = _cells(frame, digits)
    widths = _widths(frame, cells)
    table = Table(title=title)
    table.add_column(str(frame.index.name or ""), no_wrap=True, width=None if wide else _name_width(frame))
    for col in shown:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        table.add_column(
            col if wide else _header(col, widths[col]),
            justify="right" if numeric else "left",
            overflow="fold" if wide else "ellipsis",
            no_wrap=not wide,
            width=None if wide else widths[col],
        )
    for i, idx in enumerate(frame.index):
        table.add_row(str(idx), *(cells[c][i] for c in shown))
    console.print(table, crop=not wide)
    left_out = [str(c) for c in frame.columns if str(c) not in shown]
    for col in NOTE_COLUMNS:
        if col in left_out:  # a caveat on a number must be seen, even when its column did not fit
            for idx, note in zip(frame.index, frame[col].tolist(), strict=True):
                if isinstance(note, str) and note:
                    click.echo(f"{col.replace('_', ' ')}, {idx}: {note}")
    if left_out:
        click.echo(f"({len(left_out)} more columns: {', '.join(left_out)}; {_hint()})")


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a table as CSV, JSON (records) or Markdown, by suffix."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path)
    elif suffix == ".json":
        frame.reset_index().to_json(path, orient="records", indent=2)
    elif suffix in {".md", ".markdown"}:
        path.write_text(_markdown(frame), encoding="utf-8")
    else:
        raise InputError("unsupported output format; use .csv, .json or .md", path=path)


def _markdown(frame: pd.DataFrame) -> str:
    cols = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, *row in frame.itertuples(name=None):
        vals = [format_cell(v, 2) for v in row]
        lines.append("| " + " | ".join([str(idx), *vals]).replace("\n", " ") + " |")
    return "\n".join(lines) + "\n"


def results_folder(path: Path) -> str | None:
    """The model folder of a file in AlpacaEval's ``results/`` layout (``results/<model>/model_outputs.json``
    or ``results/<model>/<annotator>/annotations.json``, plain or .gz), else None."""
    parts = path.parts
    if "results" not in parts[:-1]:
        return None
    i = len(parts) - 1 - parts[::-1].index("results")
    return parts[i + 1] if i + 1 < len(parts) - 1 else None


def generator_name_hint(path: Path, generators: set[str], fix: str) -> str | None:
    """A note when a file in AlpacaEval's results/ layout names its generator differently from its folder.

    Why: AlpacaEval keys its leaderboard by folder, but some files carry another name (results/NullModel's
    files say 'example'), so a row would otherwise appear under a name the user never typed.
    """
    folder = results_folder(path)
    if folder is None or folder in generators or len(generators) != 1:
        return None
    (name,) = generators
    return f"note: {path} names its generator {name!r}, not {folder!r} like its folder; {fix}"
