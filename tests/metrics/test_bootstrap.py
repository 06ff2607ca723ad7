"""Paired bootstrap intervals and predicted head-to-head win rates, on real and simulated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pasture.metrics.bootstrap import (
    bootstrap_lc,
    bootstrap_win_rate,
    fit_l1_logistic_batch,
    predicted_win_rate,
    predicted_win_rate_matrix,
    resample_counts,
)
from pasture.metrics.lc import LCInputs, LCResult, build_design, fit_l1_logistic, length_controlled_winrate
from pasture.scoring import score_pairs


def _rows(pairs: pd.DataFrame, model: str) -> pd.DataFrame:
    return pairs[pairs["generator_2"] == model]


def test_same_seed_same_intervals_other_seed_other_intervals(
    shared_pairs: pd.DataFrame, shared_inputs: LCInputs, shared_lc: dict[str, LCResult], shared_texts: list[str]
) -> None:
    order = pd.Index(shared_texts)
    rows = _rows(shared_pairs, "vicuna-7b")
    a, va = bootstrap_lc(rows, shared_inputs, shared_lc["vicuna-7b"], resample_counts(805, 100, seed=3), order)
    b, vb = bootstrap_lc(rows, shared_inputs, shared_lc["vicuna-7b"], resample_counts(805, 100, seed=3), order)
    c, _ = bootstrap_lc(rows, shared_inputs, shared_lc["vicuna-7b"], resample_counts(805, 100, seed=4), order)
    assert np.array_equal(va, vb) and a == b
    assert (a.low, a.high) != (c.low, c.high)
    w1, _ = bootstrap_win_rate(rows, resample_counts(805, 100, seed=3), order)
    w2, _ = bootstrap_win_rate(rows, resample_counts(805, 100, seed=3), order)
    assert w1 == w2


def test_win_rate_interval_covers_the_truth_about_95_percent() -> None:
    """Simulated judges with known win probability 0.3: the 95% interval should cover it ~95% of the time."""
    rng = np.random.default_rng(11)
    n, sims, truth = 300, 300, 30.0
    order = pd.Index([f"i{k}" for k in range(n)])
    counts = resample_counts(n, 400, seed=5)
    covered = 0
    for _ in range(sims):
        prefs = 1.0 + rng.binomial(1, 0.3, n).astype(float)
        rows = pd.DataFrame({"instruction": order, "preference": prefs})
        interval, _ = bootstrap_win_rate(rows, counts, order)
        covered += interval.low <= truth <= interval.high
    assert 0.90 <= covered / sims <= 0.99


def test_failed_pairs_are_left_out_of_resampled_win_rates() -> None:
    order = pd.Index(["a", "b", "c", "d"])
    rows = pd.DataFrame({"instruction": order, "preference": [2.0, 1.0, np.nan, 2.0]})
    interval, values = bootstrap_win_rate(rows, resample_counts(4, 50, seed=0), order)
    assert interval.estimate == pytest.approx(100 * 2 / 3)
    assert np.nanmax(values) <= 100 and np.nanmin(values) >= 0


def test_batched_solver_matches_liblinear_on_full_data(
    shared_pairs: pd.DataFrame, shared_inputs: LCInputs, shared_lc: dict[str, LCResult]
) -> None:
    rows = _rows(shared_pairs, "claude-2")
    design = build_design(rows, shared_inputs)
    full = shared_lc["claude-2"]
    ours = fit_l1_logistic_batch(design.X, design.p, design.w[None, :], full.C, np.zeros(3))[0]
    theirs = fit_l1_logistic(design.X, design.p, design.w, full.C)
    assert np.allclose(ours, theirs, atol=2e-3)  # liblinear stops at tol=1e-4; ours at the optimum


def test_lc_interval_contains_the_estimate_and_is_wider_than_upstreams_se(
    shared_pairs: pd.DataFrame, shared_inputs: LCInputs, shared_lc: dict[str, LCResult], shared_texts: list[str]
) -> None:
    counts = resample_counts(805, 200, seed=0)
    for model in ("claude-2", "alpaca-7b"):
        full = shared_lc[model]
        interval, values = bootstrap_lc(_rows(shared_pairs, model), shared_inputs, full, counts, pd.Index(shared_texts))
        assert interval.low < full.length_controlled_winrate < interval.high
        # upstream's lc_standard_error ignores the fit's uncertainty: the bootstrap spread is larger
        assert interval.se > full.lc_standard_error
        assert abs(np.median(values) - full.length_controlled_winrate) < 1.0


def test_predicted_win_rate_against_the_reference_is_lc(
    shared_lc: dict[str, LCResult], shared_inputs: LCInputs, shared_texts: list[str]
) -> None:
    d = shared_inputs.difficulty.loc[shared_texts].to_numpy()  # type: ignore[union-attr]
    r = shared_lc["claude-2"]
    assert predicted_win_rate(r.coef_model, r.coef_difficulty, 0.0, 0.0, d) == pytest.approx(
        r.length_controlled_winrate, abs=1e-9
    )
    matrix = predicted_win_rate_matrix([shared_lc[m] for m in ("claude-2", "alpaca-7b", "gpt4_1106_preview")], d)
    assert np.allclose(matrix.to_numpy() + matrix.to_numpy().T, 100.0)
    assert matrix.loc["claude-2", "alpaca-7b"] > 50
    assert matrix.loc["claude-2", "gpt4_1106_preview"] == pytest.approx(r.length_controlled_winrate, abs=1e-9)


def test_score_pairs_adds_lc_and_interval_columns(shared_pairs: pd.DataFrame, shared_inputs: LCInputs) -> None:
    some = shared_pairs[shared_pairs["generator_2"].isin(["claude-2", "alpaca-7b", "gpt4_1106_preview"])]
    frame = score_pairs(some, lc_inputs=shared_inputs, bootstrap_resamples=50, seed=1)
    assert {"length_controlled_winrate", "lc_standard_error", "lc_ci_low", "win_rate_ci_high"} <= set(frame.columns)
    ok = frame.drop(index="gpt4_1106_preview")
    assert (ok["win_rate_ci_low"] < ok["win_rate"]).all() and (ok["win_rate"] < ok["win_rate_ci_high"]).all()
    assert (ok["lc_ci_low"] < ok["length_controlled_winrate"]).all()
    assert frame.loc["gpt4_1106_preview", "length_controlled_winrate"] == 50.0
    assert "difficulty=estimated" in frame.attrs["lc_inputs"]
    again = length_controlled_winrate(_rows(some, "claude-2"), shared_inputs)
    assert frame.loc["claude-2", "length_controlled_winrate"] == again.length_controlled_winrate
