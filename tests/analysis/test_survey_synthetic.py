"""The synthetic survey: seeded, true probabilities stored, every question retrodictable; the comparison at smoke size."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from pasture.analysis.survey_model import SurveyModelSettings
from pasture.analysis.survey_synthetic import (
    SyntheticSurveyConfig,
    make_survey,
    summarize_comparison,
    synthetic_comparison,
)
from pasture.errors import InputError


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the machine is shared, and tiny models only lose time to threading."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SMOKE = SyntheticSurveyConfig(n_respondents=50, n_questions=16, n_times=3)


def test_survey_is_seeded_and_stores_true_probabilities() -> None:
    a, b = make_survey(SMOKE, seed=4), make_survey(SMOKE, seed=4)
    assert a.votes.equals(b.votes) and a.texts == b.texts
    assert not make_survey(SMOKE, seed=5).votes.equals(a.votes)
    for row in a.votes.sample(20, random_state=0).itertuples():
        p = a.probability(int(row.respondent[1:]), int(row.question[1:]), row.time)
        assert row.probability == pytest.approx(p)
    asked = a.votes.groupby("question")["time"].nunique()
    assert len(asked) == SMOKE.n_questions and asked.min() >= 2
    # votes are Bernoulli(p): the mean vote matches the mean probability within 4 standard errors
    se = math.sqrt(np.mean(a.votes["probability"] * (1 - a.votes["probability"])) / len(a.votes))
    assert abs(a.votes["vote"].mean() - a.votes["probability"].mean()) < 4 * se


def test_config_is_checked() -> None:
    with pytest.raises(InputError, match="text_share"):
        make_survey(SyntheticSurveyConfig(text_share=1.5))
    with pytest.raises(InputError, match="words_per_question"):
        make_survey(SyntheticSurveyConfig(n_words=2, words_per_question=3))


@pytest.mark.slow
def test_comparison_smoke() -> None:
    per_seed = synthetic_comparison([0], config=SMOKE, settings=SurveyModelSettings(epochs=60, lr=0.05))
    got = set(zip(per_seed["split"], per_seed["predictor"], strict=True))
    assert ("unasked", "question marginal") not in got
    assert {("imputation", "question marginal"), ("retrodiction", "survey model"), ("unasked", "oracle")} <= got
    summary = summarize_comparison(per_seed)
    assert list(summary.index) == ["imputation", "retrodiction", "unasked"]
    assert math.isnan(summary.loc["unasked", "marginal_auc_mean"])
    row = summary.loc["imputation"]
    assert row["gap_mean"] == pytest.approx(row["best_auc_mean"] - row["auc_mean"])


def test_cross_section_interviews_new_people_each_time() -> None:
    panel = make_survey(SMOKE, seed=4)
    cross = make_survey(dataclasses.replace(SMOKE, panel=False), seed=4)
    assert panel.votes.groupby("respondent")["time"].nunique().max() > 1
    assert cross.votes.groupby("respondent")["time"].nunique().max() == 1
    # the same draws otherwise: only the respondent ids differ
    assert cross.votes.drop(columns="respondent").equals(panel.votes.drop(columns="respondent"))
