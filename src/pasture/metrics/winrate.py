"""AlpacaEval 2 leaderboard columns as pure functions (definitions in docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pasture.records import WinRateResult


def win_rate(
    preferences: Sequence[float] | np.ndarray | pd.Series,
    *,
    generator: str = "",
    output_lengths: Sequence[int] | np.ndarray | None = None,
) -> WinRateResult:
    """Win rate of the model (slot 2) against the reference from per-pair preferences in [1, 2].

    NaN entries are pairs without a parsed verdict: they are counted in ``n_failed`` and left out of every
    other column (as AlpacaEval leaves them out), so the denominator shrinks visibly, not silently.
    ``output_lengths`` are the model outputs' lengths in characters over all pairs (AlpacaEval averages
    over every output, judged or not); when omitted, ``avg_length`` is 0.
    """
    prefs = np.asarray(preferences, dtype=float)
    failed = np.isnan(prefs)
    scored = prefs[~failed]
    if scored.size and ((scored < 1) | (scored > 2)).any():
        raise ValueError("preferences must lie in [1, 2]")
    x = scored - 1.0
    n_total = int(x.size)
    n_draws = int((scored == 1.5).sum())
    n_wins = int((x > 0.5).sum())
    n_wins_base = int((x < 0.5).sum())
    mean = float(x.mean() * 100) if n_total else float("nan")
    sem = float(x.std(ddof=1) / np.sqrt(n_total) * 100) if n_total > 1 else float("nan")
    discrete = (n_wins + n_draws / 2) / n_total * 100 if n_total else float("nan")
    lengths = np.asarray(output_lengths, dtype=float) if output_lengths is not None else np.zeros(0)
    return WinRateResult(
        generator=generator,
        win_rate=mean,
        standard_error=sem,
        n_wins=n_wins,
        n_wins_base=n_wins_base,
        n_draws=n_draws,
        n_total=n_total,
        discrete_win_rate=discrete,
        avg_length=int(lengths.mean()) if lengths.size else 0,
        n_failed=int(failed.sum()),
    )


def win_rates(pairs: pd.DataFrame) -> list[WinRateResult]:
    """:func:`win_rate` for every ``generator_2`` in a :func:`~pasture.metrics.pairs.pair_table`."""
    return [
        win_rate(group["preference"].to_numpy(), generator=str(gen), output_lengths=group["len_2"].to_numpy())
        for gen, group in pairs.groupby("generator_2", sort=True)
    ]
