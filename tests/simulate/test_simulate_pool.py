"""The annotator pool on a programmatic oracle: assignment, order, caching, and noise at the stated rate."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from pasture.errors import InputError
from pasture.judges import ProgrammaticJudge
from pasture.simulate.labels import cross_annotate, label_pairs, sample_pairs
from pasture.simulate.measure import (
    compare_pools,
    expected_agreement,
    expected_inter_annotator_agreement,
    flip_p_for_agreement,
    gold_agreement,
    labels_frame,
    noise_sweep,
    pool_report,
)
from pasture.simulate.pool import AnnotatorPool, PoolMember, make_pool
from pasture.simulate.synthetic import arithmetic_oracle, arithmetic_outputs
from pasture.store import Store

N = 2000
P = 0.25


@pytest.fixture(scope="module")
def pairs():
    sample = sample_pairs(arithmetic_outputs(N, seed=5), seed=1)
    assert len(sample.pairs) == N and not sample.skipped_instructions
    return sample.pairs


@pytest.fixture(scope="module")
def gold(pairs):
    return {p.key: arithmetic_oracle(p.instruction, p.output_1, p.output_2) for p in pairs}


def _oracle_pool(p: float = P, seed: int = 9, weights=(1.0, 1.0, 1.0)) -> AnnotatorPool:
    members = [
        PoolMember(judge=ProgrammaticJudge(arithmetic_oracle, name=f"oracle_{i}"), weight=w)
        for i, w in enumerate(weights)
    ]
    return make_pool(members, p=p, seed=seed, name="oracles")


def test_pool_validation() -> None:
    j = ProgrammaticJudge(arithmetic_oracle, name="o")
    with pytest.raises(InputError, match="no members"):
        make_pool([])
    with pytest.raises(InputError, match="unique"):
        make_pool([j, j])
    with pytest.raises(InputError, match="weight"):
        PoolMember(judge=j, weight=0)
    with pytest.raises(InputError, match="flip probability"):
        make_pool([j], p=1.2)


def test_assignment_follows_weights_and_order_is_balanced(pairs) -> None:
    pool = _oracle_pool(weights=(1.0, 2.0, 1.0))
    counts = [0, 0, 0]
    firsts = 0
    for pair in pairs:
        counts[pool.assign(pair.key)] += 1
        firsts += pool.shown_first(pair.key, "oracle_0") == 2
    # each count is Binomial(N, w): 4-sigma bounds
    for c, w in zip(counts, (0.25, 0.5, 0.25), strict=True):
        assert abs(c / N - w) <= 4 * math.sqrt(w * (1 - w) / N), counts
    assert abs(firsts / N - 0.5) <= 4 * math.sqrt(0.25 / N)
    # another seed reassigns: about 1 - sum(w^2) = 62.5% of examples change member
    other = pool.with_options(seed=10)
    moved = sum(pool.assign(p.key) != other.assign(p.key) for p in pairs) / N
    assert abs(moved - 0.625) <= 4 * math.sqrt(0.625 * 0.375 / N)


def test_flip_rate_and_gold_agreement_match_expectation(pairs, gold, tmp_path: Path) -> None:
    """p = 0.25 on an exact oracle: flip rate ~ p and agreement with the truth ~ 1 - p.

    Tolerance: both are means of N = 2000 independent Bernoulli(0.25 / 0.75) draws, so 4 sigma is
    4 * sqrt(0.25 * 0.75 / 2000) = 0.0387 (a false alarm has probability ~6e-5).
    """
    pool = _oracle_pool()
    with Store(tmp_path / "s.db") as store:
        run = label_pairs(pairs, pool, store)
        assert run.n_calls == N and run.n_ok == N and run.n_failed == 0
        tol = 4 * math.sqrt(P * (1 - P) / N)
        flip_rate = run.n_flipped / N
        assert abs(flip_rate - P) <= tol, (flip_rate, tol)
        frame = labels_frame(run.labels)
        agree = gold_agreement(frame.assign(annotator="pool"), gold).loc["pool", "agreement"]
        assert abs(agree - expected_agreement(1.0, P)) <= tol, (agree, tol)
        clean = gold_agreement(frame.assign(annotator="pool"), gold, column="clean_preference")
        assert clean.loc["pool", "agreement"] == 1.0  # the oracle itself is exact
        # every example went to the member the pool assigned, shown in the pool's order
        for pair, lab in zip(pairs, run.labels, strict=True):
            assert lab.annotator == pool.members[pool.assign(pair.key)].name
            assert lab.shown_first == pool.shown_first(pair.key, lab.annotator)
            assert lab.preference == (3 - lab.clean_preference if lab.flipped else lab.clean_preference)
        # a rerun is answered by the store: no calls, same labels
        again = label_pairs(pairs, pool, store)
        assert again.n_calls == 0
        assert again.labels == run.labels
        # p = 0 gives the clean labels back without any call
        quiet = label_pairs(pairs, pool.with_options(p=0.0), store)
        assert quiet.n_calls == 0 and quiet.n_flipped == 0
        assert [lab.preference for lab in quiet.labels] == [lab.clean_preference for lab in run.labels]


def _exact_cross_stats(p: float) -> dict[str, tuple[float, float]]:
    """Mean and variance per example of the pool statistics for 3 exact annotators flipped independently."""
    stats: dict[str, list[tuple[float, float]]] = {"gold": [], "iaa": [], "variance": []}
    for flips in itertools.product([0, 1], repeat=3):
        prob = math.prod(p if f else 1 - p for f in flips)
        labels = [2.0 if f else 1.0 for f in flips]  # truth = 1
        gold_s = sum(1 - abs(x - 1.0) for x in labels) / 3
        iaa_s = sum(1 - abs(a - b) for a, b in itertools.combinations(labels, 2)) / 3
        var_s = sum(abs(labels[i] - sum(labels[j] for j in range(3) if j != i) / 2) for i in range(3)) / 3
        stats["gold"].append((prob, gold_s))
        stats["iaa"].append((prob, iaa_s))
        stats["variance"].append((prob, var_s))
    out = {}
    for name, rows in stats.items():
        mean = sum(pr * s for pr, s in rows)
        var = sum(pr * (s - mean) ** 2 for pr, s in rows)
        out[name] = (mean, var)
    return out


def test_cross_annotation_report_matches_exact_expectation(pairs, gold, tmp_path: Path) -> None:
    """Every member labels every example: gold agreement, inter-annotator agreement and variance each
    average N iid per-example statistics whose exact mean and variance are enumerated above; the tolerance
    is 4 standard errors of that mean."""
    pool = _oracle_pool()
    with Store(tmp_path / "s.db") as store:
        run = cross_annotate(pairs, pool, store)
    assert len(run.labels) == 3 * N
    # one fingerprint for the three members: a question is asked once, the other members read the store
    distinct = {(lab.example_key, lab.shown_first) for lab in run.labels}
    assert run.n_calls == len(distinct) < 3 * N
    report = pool_report(run.labels, pool, gold)
    exact = _exact_cross_stats(P)
    row = report.loc["pool"]
    for column, name in (("gold_agreement", "gold"), ("inter_annotator_agreement", "iaa"), ("variance", "variance")):
        mean, var = exact[name]
        tol = 4 * math.sqrt(var / N)
        assert abs(row[column] - mean) <= tol, (column, row[column], mean, tol)
    assert exact["iaa"][0] == pytest.approx(expected_inter_annotator_agreement(1.0, P))  # 0.625
    assert row["clean_gold_agreement"] == 1.0
    assert list(report.index) == ["oracle_0", "oracle_1", "oracle_2", "pool"]
    assert (report.loc[["oracle_0", "oracle_1", "oracle_2"], "n_labels"] == N).all()

    # the sweep re-noises the same clean labels: p = 0 is exact agreement, and agreement falls with p
    sweep = noise_sweep(run.labels, pool, [0.0, 0.1, 0.25, 0.5], gold)
    assert sweep.loc[0.0, "gold_agreement"] == 1.0 and sweep.loc[0.0, "variance"] == 0.0
    assert list(sweep["inter_annotator_agreement"]) == sorted(sweep["inter_annotator_agreement"], reverse=True)
    assert abs(sweep.loc[0.5, "inter_annotator_agreement"] - 0.5) <= 4 * math.sqrt(0.25 / N)

    # make-up: the same clean labels in pools of other members and noise
    table = compare_pools(
        run.labels,
        {
            "two, clean": make_pool([pool.members[0], pool.members[1]], p=0.0, seed=9),
            "three, p=0.25": pool,
        },
        gold,
    )
    assert table.loc["two, clean", "inter_annotator_agreement"] == 1.0
    assert table.loc["three, p=0.25", "gold_agreement"] == pytest.approx(row["gold_agreement"])
    with pytest.raises(InputError, match="no labels from member"):
        compare_pools(run.labels, {"x": _oracle_pool(weights=(1.0, 1.0, 1.0, 1.0))}, gold)


def test_flip_p_for_agreement_inverts_the_expectation() -> None:
    p = flip_p_for_agreement(0.9, 0.66)
    assert expected_inter_annotator_agreement(0.9, p) == pytest.approx(0.66)
    assert flip_p_for_agreement(1.0, 0.625) == pytest.approx(0.25)
    with pytest.raises(InputError, match="not reachable"):
        flip_p_for_agreement(0.6, 0.7)
