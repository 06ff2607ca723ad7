"""A synthetic repeated survey with known latent beliefs, so that every split's best possible AUC is known.

Why: on a real survey nobody knows how predictable a hidden vote was, so an AUC of 0.73 cannot say whether the
predictor or the question is at fault. Here every vote is drawn from a known probability, and the best AUC
of a split is the expected AUC of ranking its held-out votes by that probability
(:func:`pasture.analysis.survey.expected_auc`).

The generative model (all draws from one numpy Generator seeded by ``seed``; docs/trust.md):

* a vocabulary of ``n_words`` words, word w with a direction ``e_w ~ N(0, I_dim)`` and a lean ``a_w ~ N(0, 1)``;
* question q has ``words_per_question`` distinct words; its direction is
  ``v_q = sqrt(text_share) * mean(e_w) / |mean(e_w)| + sqrt(1 - text_share) * z_q / |z_q|`` (z_q ~ N(0, I)),
  and its lean ``b_q = mean(a_w) + bias_noise * N(0, 1)``: the text explains a share of what the question means,
  the rest is invisible from the text;
* respondent r has beliefs ``u_r ~ N(0, I)`` that drift: ``u_r(t) = u_r + (t / (T - 1)) * delta + w_r(t)``, a
  common drift ``delta ~ N(0, drift^2 I)`` and a personal random walk ``w_r(t)`` with steps N(0, walk^2 I)
  (``w_r(0) = 0``);
* at each time a random ``ask_rate`` share of the questions is asked (every question at least at
  ``min(2, n_times)`` times), each respondent answers each asked question with probability ``answer_rate``, and
  the vote is ``Bernoulli(sigmoid(strength * (u_r(t) . v_q + b_q)))``.

The votes table carries the true ``probability`` of each vote.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pasture.analysis.survey import SPLITS, QuestionMarginal, VotePredictor, evaluate_split, make_split
from pasture.analysis.survey_model import SurveyModel, SurveyModelSettings
from pasture.errors import InputError


@dataclass(frozen=True)
class SyntheticSurveyConfig:
    """Sizes and strengths of a synthetic survey (defaults: a small survey that trains in seconds on a CPU).

    Attributes
    ----------
    n_respondents, n_questions, n_times:
        How many of each.
    dim:
        Dimension of beliefs and question directions.
    n_words, words_per_question:
        Vocabulary size and words per question text.
    text_share:
        Share (0..1) of a question's direction that its words carry; the rest is hidden from the text.
    bias_noise:
        Standard deviation of the part of a question's lean that its words do not carry.
    drift, walk:
        Size of the common drift over the whole period and of each personal random-walk step.
    strength:
        Scale of the logit; larger makes votes more predictable.
    ask_rate, answer_rate:
        Share of questions asked per time, and chance a respondent answers an asked question.
    panel:
        True: the same respondents answer at every time (ids ``r<i>``). False: a repeated cross-section like
        the General Social Survey, where each time interviews its own people (ids ``r<i>t<t>``, beliefs still
        drawn as above), so a respondent's votes all come from one time.
    """

    n_respondents: int = 150
    n_questions: int = 40
    n_times: int = 6
    dim: int = 4
    n_words: int = 40
    words_per_question: int = 3
    text_share: float = 0.7
    bias_noise: float = 0.3
    drift: float = 1.0
    walk: float = 0.3
    strength: float = 1.5
    ask_rate: float = 0.5
    answer_rate: float = 0.6
    panel: bool = True

    def validate(self) -> None:
        for name in ("n_respondents", "n_questions", "n_times", "dim", "n_words", "words_per_question"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"synthetic survey: {name} must be a positive integer, got {value!r}")
        if self.words_per_question > self.n_words:
            raise InputError("synthetic survey: words_per_question must not exceed n_words")
        for name in ("text_share", "ask_rate", "answer_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"synthetic survey: {name} must be in [0, 1], got {value!r}")
        for name in ("bias_noise", "drift", "walk", "strength"):
            if getattr(self, name) < 0:
                raise InputError(f"synthetic survey: {name} must be >= 0")


@dataclass(frozen=True)
class SyntheticSurvey:
    """A drawn survey: its votes (with true probabilities), question texts and latent truth.

    Attributes
    ----------
    votes:
        Columns respondent, question, time, vote, probability.
    texts:
        Question id -> question text (its words).
    config, seed:
        What drew it.
    beliefs:
        Array (n_respondents, n_times, dim): u_r(t).
    directions, leans:
        Arrays (n_questions, dim) and (n_questions,): v_q and b_q.
    """

    votes: pd.DataFrame
    texts: dict[str, str]
    config: SyntheticSurveyConfig
    seed: int
    beliefs: np.ndarray = field(repr=False)
    directions: np.ndarray = field(repr=False)
    leans: np.ndarray = field(repr=False)

    def probability(self, respondent: int, question: int, time: int) -> float:
        """The true P(vote = 1) of a cell, asked or not."""
        c = self.config
        logit = c.strength * (self.beliefs[respondent, time] @ self.directions[question] + self.leans[question])
        return float(1.0 / (1.0 + np.exp(-logit)))


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _word(i: int) -> str:
    """A pronounceable, distinct token per word index (texts need no meaning, only consistency)."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    a, b = divmod(i, len(consonants) * len(vowels))
    c, d = divmod(b, len(vowels))
    return f"{consonants[c]}{vowels[d]}{consonants[a % len(consonants)]}{vowels[(a + c) % len(vowels)]}{i}"


def make_survey(config: SyntheticSurveyConfig | None = None, *, seed: int = 0) -> SyntheticSurvey:
    """Draw a synthetic survey (see the module docstring for the model)."""
    c = config or SyntheticSurveyConfig()
    c.validate()
    rng = np.random.default_rng(seed)
    word_dirs = rng.normal(size=(c.n_words, c.dim))
    word_leans = rng.normal(size=c.n_words)
    words = np.stack([rng.choice(c.n_words, size=c.words_per_question, replace=False) for _ in range(c.n_questions)])
    text_part = _unit(word_dirs[words].mean(axis=1))
    hidden_part = _unit(rng.normal(size=(c.n_questions, c.dim)))
    directions = np.sqrt(c.text_share) * text_part + np.sqrt(1.0 - c.text_share) * hidden_part
    leans = word_leans[words].mean(axis=1) + c.bias_noise * rng.normal(size=c.n_questions)
    base = rng.normal(size=(c.n_respondents, c.dim))
    delta = c.drift * rng.normal(size=c.dim)
    steps = c.walk * rng.normal(size=(c.n_respondents, c.n_times, c.dim))
    steps[:, 0, :] = 0.0
    frac = np.arange(c.n_times) / max(1, c.n_times - 1)
    beliefs = base[:, None, :] + frac[None, :, None] * delta[None, None, :] + np.cumsum(steps, axis=1)
    asked = rng.random((c.n_questions, c.n_times)) < c.ask_rate
    for q in range(c.n_questions):  # every question asked at least min(2, T) times, so retrodiction exists
        need = min(2, c.n_times) - int(asked[q].sum())
        if need > 0:
            free = np.flatnonzero(~asked[q])
            asked[q, rng.choice(free, size=need, replace=False)] = True
    rows = []
    for q, t in zip(*np.nonzero(asked), strict=True):
        answering = np.flatnonzero(rng.random(c.n_respondents) < c.answer_rate)
        logits = c.strength * (beliefs[answering, t] @ directions[q] + leans[q])
        probs = 1.0 / (1.0 + np.exp(-logits))
        draws = (rng.random(len(answering)) < probs).astype(int)
        rows.append(
            pd.DataFrame(
                {
                    "respondent": [f"r{r}" if c.panel else f"r{r}t{t}" for r in answering],
                    "question": f"q{q}",
                    "time": int(t),
                    "vote": draws,
                }
                | {"probability": probs}
            )
        )
    votes = pd.concat(rows, ignore_index=True)
    texts = {f"q{q}": " ".join(_word(int(w)) for w in words[q]) for q in range(c.n_questions)}
    return SyntheticSurvey(
        votes=votes,
        texts=texts,
        config=c,
        seed=seed,
        beliefs=beliefs,
        directions=directions,
        leans=leans,
    )


class OraclePredictor:
    """Predicts each vote by its true probability, read from the rows' ``probability`` column: the ceiling
    a split's ``best_auc`` describes (used to check the measurement, never as a competitor)."""

    name = "oracle"

    def fit(self, train: pd.DataFrame, texts: object = None) -> OraclePredictor:
        return self

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        if "probability" not in rows.columns:
            raise InputError("oracle: the rows carry no true 'probability' column (only synthetic surveys do)")
        return rows["probability"].to_numpy(dtype=float)


def synthetic_comparison(
    seeds: list[int],
    *,
    config: SyntheticSurveyConfig | None = None,
    settings: SurveyModelSettings | None = None,
    fraction: float = 0.2,
) -> pd.DataFrame:
    """Every split of a synthetic survey per seed, scored for the survey model, the marginal (where it exists)
    and the oracle: one row per (seed, split, predictor), the columns of
    :class:`~pasture.analysis.survey.SurveyScore` plus ``seed``. The survey, the split and the model's weights
    all use the same seed."""
    rows = []
    for seed in seeds:
        survey = make_survey(config, seed=seed)
        model_settings = dataclasses.replace(settings or SurveyModelSettings(), seed=seed)
        for name in SPLITS:
            split = make_split(survey.votes, name, fraction=fraction, seed=seed)
            predictors: list[VotePredictor] = [OraclePredictor(), QuestionMarginal(), SurveyModel(model_settings)]
            for score in evaluate_split(split, predictors, survey.texts):
                rows.append({"seed": seed, **score.model_dump()})
    return pd.DataFrame(rows)


def summarize_comparison(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per split, over seeds (mean and sample sd): the model's AUC, the best AUC, the gap best - AUC, the share of
    the attainable lift reached ``(AUC - 0.5) / (best - 0.5)``, the marginal's AUC (NaN where it does not
    exist), the oracle's realized AUC, and the model's and marginal's aggregate ρ."""
    model = per_seed[per_seed["predictor"] == SurveyModel.name].set_index(["split", "seed"])
    marginal = per_seed[per_seed["predictor"] == QuestionMarginal.name].set_index(["split", "seed"])
    oracle = per_seed[per_seed["predictor"] == OraclePredictor.name].set_index(["split", "seed"])
    table = pd.DataFrame(
        {
            "auc": model["auc"],
            "best_auc": model["best_auc"],
            "gap": model["best_auc"] - model["auc"],
            "share_of_best": (model["auc"] - 0.5) / (model["best_auc"] - 0.5),
            "marginal_auc": marginal["auc"].reindex(model.index),
            "oracle_auc": oracle["auc"].reindex(model.index),
            "rho": model["rho"],
            "marginal_rho": marginal["rho"].reindex(model.index),
        }
    )
    grouped = table.groupby(level="split", sort=False)
    out = pd.concat({"mean": grouped.mean(), "sd": grouped.std(ddof=1)}, axis=1)
    out = out[[(stat, col) for col in table.columns for stat in ("mean", "sd")]]
    out.columns = [f"{col}_{stat}" for stat, col in out.columns]
    order = [s for s in SPLITS if s in out.index]
    return out.loc[order]
