"""Helpers shared by CLI commands: printing and writing tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from pasture.errors import InputError


def print_frame(frame: pd.DataFrame, *, title: str | None = None, digits: int = 2) -> None:
    """A DataFrame as a rich table on the terminal (index shown as the first column)."""
    table = Table(title=title)
    index_name = frame.index.name or ""
    table.add_column(str(index_name))
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for idx, *row in frame.itertuples(name=None):
        cells = [str(idx)]
        for value in row:
            if isinstance(value, float):
                cells.append(f"{value:.{digits}f}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    Console(width=200).print(table)


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
        vals = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(idx), *vals]).replace("\n", " ") + " |")
    return "\n".join(lines) + "\n"
