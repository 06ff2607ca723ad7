"""PUGC on the synthetic task (pasture.train.pugc_synthetic): documents by quality, the programmatic judges and
the pool's pairs against hand computations, and the whole comparison at smoke size (one seed)."""

from __future__ import annotations

import math

import pytest

from pasture.errors import InputError
from pasture.judges.base import ResponseRequest
from pasture.train.core import PreferencePair
from pasture.train.pugc_synthetic import (
    BASELINES,
    SMOKE,
    document_answers,
    experiment_markdown,
    pool_pair,
    reference_grade,
    run_experiment,
    synthetic_document,
    write_questions,
)
from pasture.train.synthetic import gold_reference, make_prompts, oracle_score


def test_document_quality_runs_from_the_gold_reference_to_the_context():
    prompts = make_prompts(200, seed=3)
    for p in prompts[:20]:
        ctx = p.split("+")[0]
        assert synthetic_document(p, 1.0, seed=0) == f"{ctx}:{gold_reference(p)}"
        assert synthetic_document(p, 0.0, seed=0) == f"{ctx}:{ctx}"
    means = [
        sum(oracle_score(p, synthetic_document(p, q, seed=0).split(":")[1]) for p in prompts) / len(prompts)
        for q in (0.0, 0.3, 0.6, 1.0)
    ]
    assert means == sorted(means) and means[-1] < 1.0  # better with q, never perfect
    with pytest.raises(InputError, match=r"in \[0, 1\]"):
        synthetic_document(prompts[0], 1.5, seed=0)


def test_programmatic_judges_by_hand():
    doc = "1234:7777"
    assert write_questions(ResponseRequest(instruction="Write up to 2 questions.", output=doc)).critique == "1234+h="
    assert document_answers(ResponseRequest(instruction="1234+h=", output=doc)).verdict == "yes"
    assert document_answers(ResponseRequest(instruction="1234+a=", output=doc)).verdict == "no"
    assert document_answers(ResponseRequest(instruction="9999+h=", output=doc)).verdict == "no"  # other context
    assert document_answers(ResponseRequest(instruction="1234+b=", output="1234:1122")).verdict == "no"  # no mode
    grade = reference_grade(ResponseRequest(instruction="1234+h=", output="7737", reference="1234:7777")).score
    assert grade == pytest.approx(1 + 9 * 3 / 4)
    longer = reference_grade(ResponseRequest(instruction="1234+h=", output="777777", reference=doc)).score
    assert longer == pytest.approx(1 + 9 * 4 / 6)  # padding dilutes agreement, as it dilutes the oracle


def test_pool_pair_is_the_round_robin_winner_against_the_loser_without_noise():
    prompt = "1234+h="
    samples = ["1234", "7777", "7734"]  # oracle 0, 1, 0.5
    assert pool_pair(prompt, samples, p=0.0, seed=0) == PreferencePair(prompt, "7777", "1234")
    assert pool_pair(prompt, ["7777", "7777"], p=0.0, seed=0) is None
    flipped = pool_pair(prompt, samples, p=1.0, seed=0)  # every label flipped: the order reverses
    assert flipped == PreferencePair(prompt, "1234", "7777")


@pytest.mark.slow
def test_the_comparison_runs_at_smoke_size(tmp_path):
    result = run_experiment(SMOKE, [0], tmp_path)
    assert [r.quality for r in result.results[0]] == list(SMOKE.qualities)
    for r in result.results[0]:
        assert set(r.win_rate) == set(BASELINES)
        assert all(0 <= w.win_rate <= 100 for w in r.win_rate.values())
        assert r.n_pairs["pugc"] > 0 and r.n_pairs["pool"] <= r.n_questions
    docs = [r.document_score for r in result.results[0]]
    assert docs == sorted(docs, reverse=True)  # qualities listed from best to worst
    assert math.isnan(result.summary[(1.0, "pool")].low)  # one seed: no interval, never "beats"
    assert "| 1.00 |" in experiment_markdown(result)
    assert (tmp_path / "pugc_synthetic_seed0.db").is_file()
