"""Bradley–Terry leaderboard: pinned to raw win rates on real data, recovery of known strengths, intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pasture.analysis.bradley_terry import (
    bradley_terry_leaderboard,
    fit_bradley_terry,
    infer_reference,
    instruction_bootstrap_weights,
    separability,
)
from pasture.errors import InputError

REF = "gpt4_1106_preview"


def test_reference_only_battles_reproduce_raw_win_rates(shared_pairs: pd.DataFrame, official_board) -> None:
    # With one battle type per model, the BT strength is the logit of the mean soft label: score = win rate.
    board = bradley_terry_leaderboard(shared_pairs, n_bootstrap=0)
    assert board.fit.reference == REF and board.fit.converged
    for model, row in board.table.iterrows():
        raw = (shared_pairs.loc[shared_pairs.generator_2 == model, "preference"].mean() - 1) * 100
        assert row["score"] == pytest.approx(raw, abs=0.01), model
        if model in official_board.index:
            assert row["score"] == pytest.approx(official_board.loc[model, "win_rate"], abs=0.01), model
        assert row["n_battles"] == 805


@pytest.mark.slow
def test_intervals_resample_instructions_and_cover_the_score(shared_pairs: pd.DataFrame) -> None:
    board = bradley_terry_leaderboard(shared_pairs, n_bootstrap=100, seed=0)
    t = board.table
    assert ((t.ci_low <= t.score) & (t.score <= t.ci_high)).all()
    # 805 instructions: a 95% interval of a ~10% win rate is a few points wide, not zero and not 30.
    width = (t.ci_high - t.ci_low).loc["gpt-3.5-turbo-1106"]
    assert 1.5 < width < 8
    assert separability(t.ci_low, t.ci_high) == board.separability
    assert board.separability == pytest.approx(41 / 45)  # docs/trust.md: 0.91 on the 10 shared models
    small = shared_pairs[shared_pairs.generator_2.isin(["claude-2", "alpaca-7b"])]
    once = bradley_terry_leaderboard(small, n_bootstrap=20, seed=3)
    pd.testing.assert_frame_equal(once.table, bradley_terry_leaderboard(small, n_bootstrap=20, seed=3).table)


def test_bootstrap_weights_move_an_instruction_as_a_block() -> None:
    instr = pd.Series(["a", "b", "a", "c", "b", "a"])
    codes, counts = instruction_bootstrap_weights(instr, 50, seed=3)
    assert counts.shape == (50, 3) and (counts.sum(axis=1) == 3).all()
    weights = counts[:, codes]
    # every battle of instruction "a" gets the same weight in every resample
    assert (weights[:, 0] == weights[:, 2]).all() and (weights[:, 0] == weights[:, 5]).all()
    assert (weights[:, 1] == weights[:, 4]).all()


def test_recovers_known_strengths_from_battles_between_any_pairs() -> None:
    rng = np.random.default_rng(0)
    truth = {"ref": 0.0, "a": 1.0, "b": -0.5, "c": 0.4}
    names = list(truth)
    rows = []
    for i in range(6000):
        g1, g2 = rng.choice(names, size=2, replace=False)
        p = 1 / (1 + np.exp(-(truth[g2] - truth[g1])))
        rows.append((f"q{i % 500}", g1, g2, 1.0 + float(rng.random() < p)))
    battles = pd.DataFrame(rows, columns=["instruction", "generator_1", "generator_2", "preference"])
    fit = fit_bradley_terry(battles, reference="ref")
    for m in ("a", "b", "c"):
        assert fit.strengths[m] == pytest.approx(truth[m], abs=0.12)
    board = bradley_terry_leaderboard(battles, reference="ref", n_bootstrap=30)
    assert list(board.table.index) == ["a", "c", "b"]


def test_failed_battles_are_counted_not_scored(shared_pairs: pd.DataFrame) -> None:
    sub = shared_pairs[shared_pairs.generator_2 == "claude-2"].copy()
    sub.loc[sub.index[:5], "preference"] = np.nan
    board = bradley_terry_leaderboard(sub, n_bootstrap=0)
    assert board.fit.n_failed == 5 and board.table.loc["claude-2", "n_failed"] == 5
    assert board.table.loc["claude-2", "n_battles"] == 800
    assert any("5 battles" in n for n in board.notes)


def test_bad_input_is_a_clear_error(shared_pairs: pd.DataFrame) -> None:
    mixed = shared_pairs.copy()
    mixed.loc[mixed.index[0], "generator_1"] = "other"
    with pytest.raises(InputError, match="different reference"):
        infer_reference(mixed)
    with pytest.raises(InputError, match="missing"):
        fit_bradley_terry(shared_pairs.drop(columns=["preference"]))
    with pytest.raises(InputError, match="takes part in no"):
        fit_bradley_terry(shared_pairs, reference="nobody")


def test_separability_counts_non_overlapping_pairs() -> None:
    lo = pd.Series({"a": 0.0, "b": 5.0, "c": 20.0})
    hi = pd.Series({"a": 10.0, "b": 15.0, "c": 30.0})
    # a-b overlap, a-c and b-c apart
    assert separability(lo, hi) == pytest.approx(2 / 3)
