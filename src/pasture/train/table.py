"""The methods comparison table: collected from stored runs, written as CSV/Markdown/JSON or an HTML page.

Rows come from ``<dir>/<method>/row.json`` files written by ``pasture train --task synthetic`` (or by the farm
loop); every column is defined in :mod:`pasture.train.compare` and docs/train.md.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pandas as pd

from pasture.errors import InputError
from pasture.train.compare import TABLE_COLUMNS

_LABELS = {
    "win_rate_vs_start": "win rate vs start (%)",
    "lc_vs_start": "LC vs start (%)",
    "win_rate_vs_reference": "win rate vs reference (%)",
    "lc_vs_reference": "LC vs reference (%)",
    "n_failed": "failed judgments",
    "reward_score": "reward-model score",
    "kl_to_reference": "KL to reference (nats)",
    "avg_length": "avg length (chars)",
    "train_tokens": "train tokens",
    "generated_tokens": "generated tokens",
    "wall_s": "wall time (s)",
}


def collect_rows(directory: str | Path) -> pd.DataFrame:
    """All stored method rows under ``directory`` as the comparison table (index: method)."""
    d = Path(directory)
    if not d.is_dir():
        raise InputError("not a directory", path=d)
    rows = []
    for path in sorted(d.glob("*/row.json")):
        try:
            rows.append(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", path=path) from None
    if not rows:
        raise InputError("no method results (*/row.json) found; run `pasture train METHOD --output DIR` first", path=d)
    frame = pd.DataFrame(rows).set_index("method")
    return frame[[c for c in TABLE_COLUMNS if c in frame.columns]]


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table_html(frame: pd.DataFrame, *, title: str = "pasture methods report", notes: tuple[str, ...] = ()) -> str:
    """A self-contained HTML page with the comparison table; every cell is escaped."""
    head = "".join(f"<th>{html.escape(_LABELS.get(c, c))}</th>" for c in frame.columns)
    body = []
    for name, row in frame.iterrows():
        cells = "".join(f"<td>{html.escape(_cell(row[c]))}</td>" for c in frame.columns)
        body.append(f"<tr><td>{html.escape(str(name))}</td>{cells}</tr>")
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{html.escape(title)}</title><style>table{{border-collapse:collapse}}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>"
        + (f"<ul>{notes_html}</ul>" if notes_html else "")
        + "<p>Definitions of every column: pasture docs/train.md.</p>"
        + f"<table><thead><tr><th>method</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        + "</body></html>\n"
    )
