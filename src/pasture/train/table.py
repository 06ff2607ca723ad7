"""The methods comparison table: collected from stored runs, written as CSV/Markdown/JSON, an HTML page,
or a section of the main HTML report.

Rows come from ``<dir>/<method>/row.json`` files written by ``pasture train --task synthetic``, the farm loop or
``pasture loop`` (one row per round, ``<builder>-r<k>``, with the loop's diagnostic columns); every column is
defined in :mod:`pasture.train.compare`, :class:`pasture.train.loop.RoundRow` and docs/train.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pasture.errors import InputError
from pasture.report.html import ReportSection, render_tables

TABLE_COLUMNS = (
    "win_rate_vs_start",
    "lc_vs_start",
    "win_rate_vs_reference",
    "lc_vs_reference",
    "n_failed",
    "reward_score",
    "kl_to_reference",
    "avg_length",
    "train_tokens",
    "generated_tokens",
    "wall_s",
    "hacking_index",
    "old_task_before",
    "old_task_after",
    "retention",
)
"""The table's columns in order (defined in :mod:`pasture.train.compare` and docs/train.md); kept here, free
of torch, so that reading stored rows (``pasture report --methods``) needs no ``train`` extra."""

LOOP_COLUMNS = ("round", "eval_score", "chosen_rejected_gap", "judge_gap", "pair_accuracy", "sigmoid_weight")
"""The per-round diagnostics rows of ``pasture loop`` add (:class:`pasture.train.loop.RoundRow`); shown after the
table's columns when any stored row has them."""

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
    "hacking_index": "hacking index",
    "old_task_before": "old task before",
    "old_task_after": "old task after",
    "retention": "retention (after / before)",
    "round": "loop round",
    "eval_score": "mean evaluator score",
    "chosen_rejected_gap": "chosen − rejected (evaluator)",
    "judge_gap": "chosen − rejected (round judge)",
    "pair_accuracy": "pairs the evaluator agrees with",
    "sigmoid_weight": "mean DPO weight σ(−βh)",
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
    return frame[[c for c in (*TABLE_COLUMNS, *LOOP_COLUMNS) if c in frame.columns]]


METHODS_NOTE = (
    "One row per trained method, evaluated on the same prompts with the same judge: win rates and LC in % "
    "against the starting policy and the reference, mean reward-model score, KL to the starting policy in nats "
    "per response, mean length in characters, the training cost, and (runs that logged their "
    "true quality over steps) the hacking index: the drop of true quality from its peak while the proxy reward still "
    "rose; loop rounds add the chosen − rejected score gap, the pairs' agreement with the evaluator and the mean DPO "
    "weight σ(−βh); runs whose start learned an old task first add its score before and after training and their "
    "ratio (retention). Definitions: pasture docs/train.md."
)
"""The note shown under the methods table in HTML."""


def retention_ratio(before: float | None, after: float | None) -> float | None:
    """Retention of the old task: ``after / before`` (1 = nothing forgotten, 0 = all of it); None when either score
    is missing or ``before`` is not positive (nothing was known to lose)."""
    if before is None or after is None or not before > 0:
        return None
    return after / before


GAIN_RETENTION_COLUMNS = ("win_rate_vs_start", "old_task_before", "old_task_after", "retention")
"""Gain (win rate against the starting policy) beside what the method kept of the old task."""

RETENTION_NOTE = (
    "Gain against retention: the win rate against the starting policy (the gain on the new task) beside the old "
    "task's score before and after training and their ratio (retention; 1 = nothing forgotten). The old task is a "
    "task the starting policy learned first and training never sees: on the synthetic task the reversal task "
    "(exact score), on a real model held-out team-written text (geometric-mean token probability). Rows whose "
    "starting policy learned no old task show none. Definitions: pasture docs/train.md."
)
"""The note under the gain-against-retention table."""


def gain_retention(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The rows of the methods table that measured retention, with gain beside it (None when none did)."""
    if "retention" not in frame.columns or frame["retention"].isna().all():
        return None
    rows = frame[frame["retention"].notna()]
    return rows[[c for c in GAIN_RETENTION_COLUMNS if c in rows.columns]]


def retention_section(frame: pd.DataFrame) -> ReportSection | None:
    """The gain-against-retention table as a report section (None when no row measured retention)."""
    table = gain_retention(frame)
    if table is None:
        return None
    return ReportSection(
        title="Gain against retention",
        table=table,
        note=RETENTION_NOTE,
        column_labels=_LABELS,
        index_label="method",
    )


def methods_section(frame: pd.DataFrame, *, title: str = "Training methods") -> ReportSection:
    """The comparison table as a section of the HTML report (:func:`pasture.report.write_report`)."""
    return ReportSection(title=title, table=frame, note=METHODS_NOTE, column_labels=_LABELS, index_label="method")


def table_html(frame: pd.DataFrame, *, title: str = "pasture methods report", notes: tuple[str, ...] = ()) -> str:
    """A self-contained HTML page with the comparison table only (the report's renderer; every cell escaped)."""
    retained = retention_section(frame)
    sections = [methods_section(frame)] + ([retained] if retained is not None else [])
    return render_tables(sections, title=title, notes=notes)
