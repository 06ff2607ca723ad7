"""Rank agreement of a leaderboard metric with an external ranking (e.g. Chatbot Arena Elo).

Why: an automatic evaluator is useful to the extent that it ranks models the way people do. AlpacaEval
motivates LC by its higher Spearman correlation with Chatbot Arena; pasture measures that claim on its own
numbers with :func:`rank_correlation` (definitions in docs/metrics.md, "Correlation with Chatbot Arena").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from pasture.errors import InputError
from pasture.records import _Record

ARENA_ELO_COLUMNS = {"feb": "Arena Elo\n[Feb 2, 2024]", "april": "Arena Elo\n[April 18, 2024]"}
"""Columns of AlpacaEval's ``benchmarks_with_arena_elo.csv`` holding Chatbot Arena Elo, by snapshot."""


class CorrelationResult(_Record):
    """Rank correlation between a metric and a reference ranking over the models that have both."""

    metric: str = Field(description="Name of the metric (e.g. 'length_controlled_winrate').")
    reference: str = Field(description="Name of the reference ranking (e.g. 'arena_elo_april').")
    n: int = Field(description="Models with a finite value in both.")
    spearman: float = Field(description="Spearman's rho: Pearson correlation of the ranks (ties get mean ranks).")
    spearman_p: float = Field(description="Two-sided p-value of rho (t approximation), for orientation only.")
    kendall: float = Field(description="Kendall's tau-b: concordant minus discordant pairs, tie-corrected.")
    kendall_p: float = Field(description="Two-sided p-value of tau-b.")
    models: tuple[str, ...] = Field(description="The models compared, sorted.")


def rank_correlation(
    scores: pd.Series,
    reference: pd.Series,
    *,
    metric: str = "",
    reference_name: str = "",
    min_models: int = 3,
) -> CorrelationResult:
    """Spearman and Kendall correlation of ``scores`` with ``reference`` over their common, finite entries.

    Both are Series indexed by model name; models missing or NaN in either are left out (``n`` says how
    many remain). Fewer than ``min_models`` common models is an error, not a NaN.
    """
    both = pd.concat([scores.rename("s"), reference.rename("r")], axis=1, join="inner").dropna()
    both = both[np.isfinite(both["s"].astype(float)) & np.isfinite(both["r"].astype(float))]
    if len(both) < min_models:
        raise InputError(
            f"only {len(both)} model(s) have both {metric or 'scores'} and {reference_name or 'reference'}"
        )
    from scipy.stats import kendalltau, spearmanr  # scipy.stats costs ~1 s to import: only when used

    rho = spearmanr(both["s"], both["r"])
    tau = kendalltau(both["s"], both["r"])
    return CorrelationResult(
        metric=metric,
        reference=reference_name,
        n=len(both),
        spearman=float(rho.statistic),
        spearman_p=float(rho.pvalue),
        kendall=float(tau.statistic),
        kendall_p=float(tau.pvalue),
        models=tuple(sorted(map(str, both.index))),
    )


def read_arena_elo(path: str | Path, snapshot: str = "april") -> pd.Series:
    """Chatbot Arena Elo per model from AlpacaEval's ``benchmarks_with_arena_elo.csv`` (``snapshot`` 'feb'
    or 'april'); models without an Elo in that snapshot are left out."""
    if snapshot not in ARENA_ELO_COLUMNS:
        raise InputError(f"unknown Arena snapshot {snapshot!r}; known: {', '.join(ARENA_ELO_COLUMNS)}")
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read benchmarks CSV ({type(exc).__name__})", path=path) from None
    column = ARENA_ELO_COLUMNS[snapshot]
    if "Model" not in frame.columns or column not in frame.columns:
        raise InputError(f"not a benchmarks file: needs columns 'Model' and {column!r}", path=path)
    elo = pd.to_numeric(frame.set_index("Model")[column], errors="coerce").dropna()
    elo.name = f"arena_elo_{snapshot}"
    return elo[~elo.index.duplicated(keep="first")]
