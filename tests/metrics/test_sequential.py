"""Anytime-valid intervals: coverage under optional stopping, collapse at the full run, decisions on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pasture.errors import InputError
from pasture.metrics.sequential import confidence_sequence, run_to_decision, run_to_width, seeded_order


def _populations(rng: np.random.Generator) -> list[np.ndarray]:
    """Finite populations shaped like AlpacaEval verdicts: soft preferences piled at 0 and 1, and hard ones."""
    soft = np.clip(rng.beta(0.4, 0.9, size=400), 0, 1)
    hard = (rng.random(400) < 0.15).astype(float)
    mixed = np.r_[np.zeros(150), np.ones(100), rng.random(150)]
    return [soft, hard, mixed]


@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_coverage_holds_at_every_time_at_once(alpha: float) -> None:
    """The sequence may miss the population mean at *any* time in at most alpha of the runs (Ville)."""
    rng = np.random.default_rng(11)
    for population in _populations(rng):
        mu = population.mean()
        misses = 0
        runs = 400
        for _ in range(runs):
            x = rng.permutation(population)
            low, high = confidence_sequence(x, len(population), alpha=alpha)
            misses += bool(np.any((low > mu + 1e-12) | (high < mu - 1e-12)))
        assert misses / runs <= alpha, (misses, runs)


def test_a_naive_interval_peeked_at_every_step_fails_the_same_check() -> None:
    """The check above has power: a fixed-n normal interval, looked at after every judgment, misses far more."""
    rng = np.random.default_rng(11)
    population = _populations(rng)[0]
    mu, runs, misses = population.mean(), 400, 0
    for _ in range(runs):
        x = rng.permutation(population)
        n = np.arange(1, len(x) + 1)
        mean = np.cumsum(x) / n
        se = population.std() / np.sqrt(n)
        misses += bool(np.any(np.abs(mean[9:] - mu) > 1.96 * se[9:]))
    assert misses / runs > 0.2


def test_full_run_collapses_onto_the_exact_mean_and_intervals_only_shrink() -> None:
    rng = np.random.default_rng(2)
    x = rng.random(300)
    low, high = confidence_sequence(x, len(x))
    assert low[-1] == pytest.approx(x.mean()) == pytest.approx(high[-1])
    assert low[-2] <= x.mean() <= high[-2] and high[-2] - low[-2] < 0.05
    assert np.all(np.diff(low[:-1]) >= 0) and np.all(np.diff(high[:-1]) <= 0)
    assert np.all(high - low >= 0)


def test_stopping_rules_report_where_they_stopped() -> None:
    rng = np.random.default_rng(5)
    good = (rng.random(805) < 0.9).astype(float)
    bad = (rng.random(805) < 0.1).astype(float)
    decided = run_to_decision(good, bad, 805)
    assert decided.decision == 1 and decided.stopped and decided.n_used < 100
    assert decided.low > 0 and decided.low <= decided.estimate <= decided.high
    width = run_to_width(good, 805, half_width=10.0)
    assert width.stopped and (width.high - width.low) / 2 <= 10.0
    assert width.fraction_used == width.n_used / 805
    # identical models are never decided before the end
    same = run_to_decision(good, good, 805)
    assert same.decision == 0 and not same.stopped and same.n_used == 805


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        confidence_sequence(np.array([0.5, 1.5]), 10)
    with pytest.raises(InputError, match="without replacement"):
        confidence_sequence(np.zeros(5), 4)
    with pytest.raises(InputError, match="same instructions"):
        run_to_decision(np.zeros(3), np.zeros(4), 10)


def test_seeded_order_is_a_stable_permutation() -> None:
    a, b = seeded_order(805, 3), seeded_order(805, 3)
    assert np.array_equal(a, b) and sorted(a.tolist()) == list(range(805))
    assert not np.array_equal(a, seeded_order(805, 4))


@pytest.mark.shared
def test_decisions_on_the_real_board_keep_their_error_rate(alpacaeval: Path) -> None:
    """Replay of the official verdicts: pairs of board models >= 3 points apart, decided on a seeded prefix."""
    df = pd.read_csv(alpacaeval / "preferences_58_models.csv.gz")
    df["x"] = pd.to_numeric(df["preference"], errors="coerce") - 1.0
    table = (
        df.dropna(subset=["x"])
        .drop_duplicates(["model", "ref_pos"])
        .pivot(index="ref_pos", columns="model", values="x")
    )
    models = sorted(table.columns)[::3]  # a spread subset keeps the test fast; the script runs all pairs
    used, wrong, n = [], 0, 0
    for i, a in enumerate(models):
        for j, b in enumerate(models[i + 1 :]):
            both = table[[a, b]].dropna()
            gap = both[a].mean() - both[b].mean()
            if abs(gap) < 0.03:
                continue
            order = seeded_order(len(both), 1000 * i + j)
            res = run_to_decision(both[a].to_numpy()[order], both[b].to_numpy()[order], len(both))
            n += 1
            used.append(res.fraction_used)
            wrong += res.decision != np.sign(gap)
    assert n >= 100
    assert wrong / n <= 0.025
    assert np.mean(used) < 0.6  # the goal: at least 40% fewer calls than the full run
