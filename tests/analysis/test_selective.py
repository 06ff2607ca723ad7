"""Selective answering: AUC with DeLong's error, rank correlation and the quality–coverage curve."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pasture.analysis.selective import auc_delong, gaussian_noise_auc, quality_coverage, selective_answering
from pasture.errors import InputError


def test_auc_equals_the_pair_count_by_hand() -> None:
    good = np.array([0.9, 0.4, 0.4])
    bad = np.array([0.4, 0.1])
    # pairs: (0.9>0.4) (0.9>0.1) (0.4=0.4 half) (0.4>0.1) (0.4=0.4 half) (0.4>0.1) -> 5 / 6
    pairs = [1.0 if g > b else 0.5 if g == b else 0.0 for g, b in itertools.product(good, bad)]
    auc, se = auc_delong(good, bad)
    assert auc == pytest.approx(sum(pairs) / len(pairs)) == pytest.approx(5 / 6)
    # DeLong by hand: V10 = (1, .75, .75), V01 = (1/3·(1 + .5 + .5)=2/3, 1)
    v10 = np.array([1.0, 0.75, 0.75])
    v01 = np.array([2 / 3, 1.0])
    assert se == pytest.approx(np.sqrt(v10.var(ddof=1) / 3 + v01.var(ddof=1) / 2))


@pytest.mark.parametrize("sigma", [0.25, 0.6, 1.0, 2.0])
def test_noisy_oracle_gives_the_analytic_auc_within_its_interval(sigma: float) -> None:
    rng = np.random.default_rng(7)
    good = rng.random(3000) < 0.4
    scores = good.astype(float) + rng.normal(0.0, sigma, size=good.size)
    result = selective_answering(scores, good.astype(float), level=0.99)
    expected = gaussian_noise_auc(sigma)
    assert result.auc_low <= expected <= result.auc_high, (result.auc, expected, result.auc_se)
    # the interval is informative, not a blanket [0, 1]
    assert result.auc_high - result.auc_low < 0.06


def test_noise_orders_the_scorers() -> None:
    rng = np.random.default_rng(1)
    quality = rng.random(2000)
    aucs = []
    for sigma in (0.05, 0.3, 1.0, 5.0):
        scores = quality + rng.normal(0.0, sigma, size=quality.size)
        aucs.append(selective_answering(scores, quality).auc)
    assert aucs == sorted(aucs, reverse=True)


def test_informative_scorers_beat_answering_everything_at_half_coverage() -> None:
    rng = np.random.default_rng(3)
    quality = rng.beta(2, 2, size=1500)
    for sigma in (0.05, 0.2, 0.5):
        scores = quality + rng.normal(0.0, sigma, size=quality.size)
        r = selective_answering(scores, quality)
        assert r.quality_at(0.5) > r.quality_at(1.0) == pytest.approx(quality.mean())
        assert r.area_random < r.area < r.area_oracle


def test_ties_are_answered_in_random_order_in_expectation() -> None:
    # a constant scorer carries no information: the curve is flat at the mean quality, whatever the input order
    quality = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    curve = quality_coverage(np.zeros(5), quality)
    assert np.allclose(curve, quality.mean())
    # ties within a group: two top responses tied (qualities 1 and 0), then a bad one
    curve = quality_coverage(np.array([2.0, 2.0, 1.0]), np.array([1.0, 0.0, 0.0]))
    assert curve.tolist() == pytest.approx([0.5, 0.5, 1 / 3])


def test_oracle_and_reversed_scorer_bound_the_curve() -> None:
    quality = np.linspace(0, 1, 11)
    best = selective_answering(quality, quality)
    worst = selective_answering(-quality, quality)
    assert best.area == pytest.approx(best.area_oracle)
    assert best.auc == 1.0 and worst.auc == 0.0
    assert best.spearman == pytest.approx(1.0) and worst.kendall == pytest.approx(-1.0)
    assert worst.area < worst.area_random


def test_non_finite_rows_are_left_out_and_counted() -> None:
    r = selective_answering([0.1, np.nan, 0.9, 0.5], [0.0, 1.0, 1.0, np.inf])
    assert r.n == 2 and r.n_good == 1 and r.auc == 1.0


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="equally long"):
        selective_answering([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="at least 2"):
        selective_answering([1.0], [1.0])
    with pytest.raises(InputError, match="coverage"):
        selective_answering([1.0, 2.0], [0.0, 1.0]).quality_at(0.0)


def test_one_class_only_gives_nan_auc_not_a_number_that_claims_more() -> None:
    r = selective_answering([0.2, 0.4, 0.9], [1.0, 1.0, 1.0])
    assert np.isnan(r.auc) and np.isnan(r.auc_low)
