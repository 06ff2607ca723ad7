"""Rank correlation with Chatbot Arena Elo: the function, and LC vs raw win rate on the shared models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pasture.errors import InputError
from pasture.metrics.correlation import rank_correlation, read_arena_elo
from pasture.metrics.lc import LCResult
from pasture.metrics.winrate import win_rates

# Spearman with Arena Elo (Feb 2024) over the 12 shared board models that have one: 1 - 6 sum(d^2) / (n(n^2-1))
# with sum(d^2) = 6 for pasture's LC (the same as the board's LC column gives) and 10 for the raw win rate.
SPEARMAN_LC = 1 - 6 * 6 / (12 * 143)
SPEARMAN_WR = 1 - 6 * 10 / (12 * 143)


def test_monotone_reversed_and_missing_models() -> None:
    ref = pd.Series({"a": 1000.0, "b": 1100.0, "c": 1200.0, "d": 1300.0})
    up = rank_correlation(pd.Series({"a": 1.0, "b": 2.0, "c": 30.0, "d": 40.0, "x": 5.0}), ref)
    assert (up.spearman, up.kendall, up.n) == (pytest.approx(1.0), pytest.approx(1.0), 4)
    assert up.models == ("a", "b", "c", "d")
    down = rank_correlation(pd.Series({"a": 4.0, "b": 3.0, "c": 2.0, "d": np.nan}), ref)
    assert down.n == 3 and down.spearman == pytest.approx(-1.0)
    with pytest.raises(InputError, match="only 2 model"):
        rank_correlation(pd.Series({"a": 1.0, "b": 2.0}), ref)


def test_ties_get_mean_ranks() -> None:
    ref = pd.Series({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
    r = rank_correlation(pd.Series({"a": 1.0, "b": 1.0, "c": 2.0, "d": 3.0}), ref)
    # ranks (1.5, 1.5, 3, 4) against (1, 2, 3, 4): Pearson of ranks
    assert r.spearman == pytest.approx(np.corrcoef([1.5, 1.5, 3, 4], [1, 2, 3, 4])[0, 1])


def test_reading_the_arena_file(alpacaeval: Path, tmp_path: Path) -> None:
    feb = read_arena_elo(alpacaeval / "leaderboards" / "benchmarks_with_arena_elo.csv", "feb")
    assert feb.loc["claude-2"] > 1000 and feb.notna().all()
    with pytest.raises(InputError, match="unknown Arena snapshot"):
        read_arena_elo(alpacaeval / "leaderboards" / "benchmarks_with_arena_elo.csv", "june")
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="needs columns 'Model'"):
        read_arena_elo(bad)


def test_lc_tracks_arena_better_than_raw_win_rate(
    alpacaeval: Path, shared_lc: dict[str, LCResult], shared_pairs: pd.DataFrame, official_board: pd.DataFrame
) -> None:
    """The figure of docs/metrics.md: Spearman with Arena Elo (Feb 2024) over the shared models with both."""
    elo = read_arena_elo(alpacaeval / "leaderboards" / "benchmarks_with_arena_elo.csv", "feb")
    on_board = [m for m in shared_lc if m in official_board.index]
    lc = pd.Series({m: shared_lc[m].length_controlled_winrate for m in on_board})
    wr = pd.Series({r.generator: r.win_rate for r in win_rates(shared_pairs) if r.generator in on_board})
    r_lc = rank_correlation(lc, elo, metric="length_controlled_winrate", reference_name="arena_elo_feb")
    r_wr = rank_correlation(wr, elo, metric="win_rate", reference_name="arena_elo_feb")
    assert r_lc.n == r_wr.n == 12
    assert r_lc.spearman == pytest.approx(SPEARMAN_LC, abs=1e-9)
    assert r_wr.spearman == pytest.approx(SPEARMAN_WR, abs=1e-9)
    assert r_lc.spearman > r_wr.spearman
