"""The survey model: stable text features, unseen ids known only by what is known of them, seeded training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pasture.analysis.survey import make_split, score_predictions
from pasture.analysis.survey_model import SurveyModel, SurveyModelSettings, text_features
from pasture.analysis.survey_synthetic import SyntheticSurveyConfig, make_survey
from pasture.errors import InputError


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: the machine is shared, and tiny models only lose time to threading."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


FAST = SurveyModelSettings(epochs=120, lr=0.05)


@pytest.fixture(scope="module")
def survey():
    return make_survey(SyntheticSurveyConfig(n_respondents=80, n_questions=24, n_times=4), seed=1)


def test_text_features_are_stable_unit_vectors() -> None:
    x = text_features(["Tax the rich", "tax THE rich", ""], 64)
    assert x.shape == (3, 64)
    assert np.allclose(x[0], x[1])  # case does not matter; the hash is not Python's salted hash()
    assert np.linalg.norm(x[0]) == pytest.approx(1.0) and not x[2].any()
    assert (x[0] > 0).sum() <= 5  # 3 words + 2 word pairs


def test_settings_are_checked() -> None:
    with pytest.raises(InputError, match="dim"):
        SurveyModel(SurveyModelSettings(dim=0))
    with pytest.raises(InputError, match="question_dropout"):
        SurveyModel(SurveyModelSettings(question_dropout=1.0))
    with pytest.raises(InputError, match="fit before predict"):
        SurveyModel().predict(pd.DataFrame({"respondent": ["a"], "question": ["q"], "time": [0]}))


def test_fit_predict_is_seeded_and_learns_imputation(survey) -> None:
    split = make_split(survey.votes, "imputation", seed=0)
    a = SurveyModel(FAST).fit(split.train, survey.texts).predict(split.test)
    b = SurveyModel(FAST).fit(split.train, survey.texts).predict(split.test)
    assert a.shape == (len(split.test),) and np.all((a >= 0) & (a <= 1))
    assert np.array_equal(a, b)
    score = score_predictions(split.test, a, split="imputation", predictor="m")
    assert score.auc_low > 0.5  # it learns something about held-out votes of asked questions


def test_unasked_question_is_known_by_its_text_only(survey) -> None:
    split = make_split(survey.votes, "unasked", seed=0)
    model = SurveyModel(FAST).fit(split.train, survey.texts)
    row = split.test.iloc[[0]]
    q = row["question"].iloc[0]
    # another never-seen id with the same text gets the same prediction: nothing but the text is known of it
    twin = row.assign(question="never-asked")
    model._texts["never-asked"] = survey.texts[q]
    assert model.predict(twin)[0] == pytest.approx(model.predict(row)[0])
    with pytest.raises(InputError, match="no text"):
        model.predict(row.assign(question="no-text-anywhere"))
