"""Scoring stored or imported judgments into leaderboard rows, without a single judge call."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from pasture.io import read_annotations
from pasture.metrics.pairs import pair_table
from pasture.metrics.winrate import win_rates
from pasture.records import Judgment
from pasture.store import Store


def score_judgments(judgments: Iterable[Judgment]) -> pd.DataFrame:
    """One row per model (``generator_2``) with AlpacaEval 2's leaderboard columns plus ``n_failed``.

    Sorted by win rate, best first. The frame's index is the model name, as on AlpacaEval's board.
    """
    pairs = pair_table(judgments)
    if pairs.empty:
        return pd.DataFrame(columns=["win_rate"])
    frame = pd.DataFrame([r.model_dump() for r in win_rates(pairs)]).set_index("generator")
    frame.index.name = "model"
    return frame.sort_values("win_rate", ascending=False)


def score_files(paths: Sequence[str | Path]) -> pd.DataFrame:
    """:func:`score_judgments` over AlpacaEval annotation files (plain or .gz)."""
    judgments: list[Judgment] = []
    for path in paths:
        judgments += read_annotations(path)
    return score_judgments(judgments)


def score_store(store: Store, *, judge_digest: str | None = None) -> pd.DataFrame:
    """:func:`score_judgments` over the judgments in a store (optionally one judge's)."""
    return score_judgments(store.get_judgments(judge_digest=judge_digest))
