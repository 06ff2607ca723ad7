"""Survey splits without leakage, AUC / ρ / expected AUC against hand computations, and the oracle at its best."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from pasture.analysis.survey import (
    QuestionMarginal,
    check_votes,
    evaluate_split,
    expected_auc,
    imputation_split,
    make_split,
    retrodiction_split,
    score_predictions,
    unasked_split,
)
from pasture.analysis.survey_synthetic import OraclePredictor, SyntheticSurveyConfig, make_survey
from pasture.errors import InputError

SMALL = SyntheticSurveyConfig(n_respondents=80, n_questions=24, n_times=4)


@pytest.fixture(scope="module")
def survey():
    return make_survey(SMALL, seed=3)


def _keys(frame: pd.DataFrame) -> set[tuple[str, str, int]]:
    return set(zip(frame["respondent"], frame["question"], frame["time"], strict=True))


def test_check_votes_rejects_bad_tables() -> None:
    good = pd.DataFrame({"respondent": ["a"], "question": ["q"], "time": [0], "vote": [1]})
    assert check_votes(good)["vote"].tolist() == [1]
    with pytest.raises(InputError, match="missing column"):
        check_votes(good.drop(columns="time"))
    with pytest.raises(InputError, match="0 or 1"):
        check_votes(good.assign(vote=[0.7]))
    with pytest.raises(InputError, match="integers"):
        check_votes(good.assign(time=["x"]))
    with pytest.raises(InputError, match="twice"):
        check_votes(pd.concat([good, good]))


def test_imputation_hides_single_votes_of_asked_cells(survey) -> None:
    split = imputation_split(survey.votes, fraction=0.25, seed=1)
    train, test = _keys(split.train), _keys(split.test)
    assert not train & test and train | test == _keys(survey.votes)
    train_cells = set(zip(split.train["question"], split.train["time"], strict=True))
    assert set(zip(split.test["question"], split.test["time"], strict=True)) <= train_cells
    assert abs(len(test) / len(survey.votes) - 0.25) < 0.02
    assert _keys(imputation_split(survey.votes, fraction=0.25, seed=1).test) == test  # seeded
    assert _keys(imputation_split(survey.votes, fraction=0.25, seed=2).test) != test


def test_retrodiction_hides_whole_cells_of_questions_asked_elsewhere(survey) -> None:
    split = retrodiction_split(survey.votes, fraction=0.3, seed=1)
    assert not _keys(split.train) & _keys(split.test)
    hidden = set(zip(split.test["question"], split.test["time"], strict=True))
    assert hidden == set(split.held_out) and hidden
    train_cells = set(zip(split.train["question"], split.train["time"], strict=True))
    assert not hidden & train_cells  # no vote of a hidden cell leaks into training
    for q, t in hidden:  # the question is asked at another time, in training
        assert any(q2 == q and t2 != t for q2, t2 in train_cells)
    # the respondents of hidden cells keep other votes in training
    assert set(split.test["respondent"]) <= set(split.train["respondent"])


def test_unasked_hides_whole_questions_and_has_no_marginal(survey) -> None:
    split = unasked_split(survey.votes, fraction=0.25, seed=1)
    held = set(split.held_out)
    assert len(held) == 6 and set(split.test["question"]) == held
    assert not held & set(split.train["question"])  # never seen in training, at any time
    with pytest.raises(InputError, match="unasked"):
        QuestionMarginal().fit(split.train).predict(split.test)
    scores = evaluate_split(split, [QuestionMarginal(), OraclePredictor()], survey.texts)
    assert [s.predictor for s in scores] == ["oracle"]  # the marginal is skipped where it does not exist


def test_bad_split_arguments() -> None:
    votes = pd.DataFrame({"respondent": ["a", "b"], "question": ["q", "q"], "time": [0, 0], "vote": [1, 0]})
    with pytest.raises(InputError, match="fraction"):
        imputation_split(votes, fraction=1.0)
    with pytest.raises(InputError, match="two or more times"):
        retrodiction_split(votes)
    with pytest.raises(InputError, match="at least 2 questions"):
        unasked_split(votes)
    with pytest.raises(InputError, match="unknown split"):
        make_split(votes, "future")  # type: ignore[arg-type]


def test_auc_and_rho_match_hand_computation() -> None:
    test = pd.DataFrame(
        {
            "respondent": ["a", "b", "c", "d", "e"],
            "question": ["q1", "q2", "q1", "q2", "q3"],
            "time": [0] * 5,
            "vote": [1, 1, 0, 0, 1],
        }
    )
    pred = np.array([0.9, 0.4, 0.5, 0.1, 0.6])
    s = score_predictions(test, pred, split="x", predictor="p")
    # positives .9 .4 .6 vs negatives .5 .1: 5 of 6 pairs ordered right
    assert s.auc == pytest.approx(5 / 6) and s.n == 5 and s.n_yes == 3
    assert s.auc_low <= s.auc <= s.auc_high
    # cells: q1 (pred .7, vote .5), q2 (.25, .5), q3 (.6, 1): Pearson by hand
    assert s.n_cells == 3
    assert s.rho == pytest.approx(0.041667 / np.sqrt(0.111667 * 0.166667), abs=1e-4)
    assert s.rho_spearman == pytest.approx(0.0, abs=1e-12)  # ranks (3, 1, 2) vs (1.5, 1.5, 3)
    assert s.best_auc is None
    with pytest.raises(InputError, match="4 predictions for 5"):
        score_predictions(test, pred[:4], split="x", predictor="p")


def test_expected_auc_matches_hand_and_brute_force() -> None:
    p = np.array([0.9, 0.2])
    assert expected_auc(p, p) == pytest.approx(0.72 / 0.74)
    assert expected_auc(-p, p) == pytest.approx(0.02 / 0.74)
    assert expected_auc(np.zeros(2), p) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    q = rng.random(40)
    s = np.round(rng.random(40), 1)  # with ties
    num = den = 0.0
    for i, j in itertools.permutations(range(40), 2):
        w = q[i] * (1 - q[j])
        num += w * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
        den += w
    assert expected_auc(s, q) == pytest.approx(num / den)
    assert expected_auc(q, q) >= expected_auc(s, q)  # the truth is the best ranking


def test_oracle_reaches_the_best_auc_within_its_interval(survey) -> None:
    for name in ("imputation", "retrodiction", "unasked"):
        split = make_split(survey.votes, name, fraction=0.3, seed=0)
        (score,) = evaluate_split(split, [OraclePredictor()], survey.texts)
        assert score.best_auc is not None
        assert score.auc_low <= score.best_auc <= score.auc_high, (name, score)
        marginal = evaluate_split(split, [QuestionMarginal()], survey.texts)
        if marginal:  # the marginal cannot beat the truth beyond noise
            assert marginal[0].auc <= score.auc_high
