"""Survey-style prediction: how well can votes that were never cast be predicted from the ones that were?

Why: the AI-Augmented Surveys paper (Kim and Lee, 2023) predicts binarized opinions of survey respondents from
question meaning, the respondent's other answers and the survey year, and measures it on three kinds of hole in
a repeated survey. pasture asks the same of its annotator pools: how well can one annotator's votes be
predicted from everyone else's? This module is the measuring part, pure over a table of votes
(definitions in docs/trust.md, "Survey-style prediction"):

* **votes**: a table with columns ``respondent``, ``question``, ``time`` (an integer period) and ``vote``
  (0/1); at most one vote per (respondent, question, time);
* **splits** (seeded, no leakage): *imputation* hides single votes of asked questions, *retrodiction* hides whole
  (question, time) cells of questions asked at other times, *unasked* hides whole questions at every time;
* **individual AUC** of predicted probabilities against the held-out votes, with DeLong's interval;
* **aggregate ρ**: Pearson correlation (the paper's public-opinion ρ is a correlation of per question-year
  proportions; Spearman is reported beside it) of the mean predicted and the mean observed vote per
  (question, time) cell of the held-out votes;
* **best AUC** of a split when the true vote probabilities are known (a synthetic survey): the expected AUC of
  ranking by the true probability, the ceiling of any predictor;
* a **per-question marginal** baseline (the question's share of yes votes in training), which does not exist for
  unasked questions.

The paper's model itself (respondent, time and question-text representations, trained) is in
:mod:`pasture.analysis.survey_model`; a synthetic survey with known beliefs in
:mod:`pasture.analysis.survey_synthetic`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.stats import norm, pearsonr, spearmanr

from pasture.analysis.selective import auc_delong
from pasture.errors import InputError
from pasture.records import _Record

VOTE_COLUMNS = ("respondent", "question", "time", "vote")
"""Columns every votes table has (others, e.g. a synthetic survey's ``probability``, are carried along)."""

SplitName = Literal["imputation", "retrodiction", "unasked"]
SPLITS: tuple[SplitName, ...] = ("imputation", "retrodiction", "unasked")


def check_votes(votes: pd.DataFrame, *, where: str = "votes") -> pd.DataFrame:
    """The votes table with normalised types (respondent/question str, time int, vote int 0/1), or a clear error."""
    missing = [c for c in VOTE_COLUMNS if c not in votes.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)}; need {', '.join(VOTE_COLUMNS)}")
    out = votes.copy()
    out["respondent"] = out["respondent"].astype(str)
    out["question"] = out["question"].astype(str)
    time = pd.to_numeric(out["time"], errors="coerce")
    if time.isna().any() or (time != np.floor(time)).any():
        raise InputError(f"{where}: column 'time' must hold integers (a period index), e.g. 0, 1, 2")
    out["time"] = time.astype(int)
    vote = pd.to_numeric(out["vote"], errors="coerce")
    if not vote.isin([0, 1]).all():
        raise InputError(f"{where}: column 'vote' must be 0 or 1 (binarize the answers first)")
    out["vote"] = vote.astype(int)
    if out.duplicated(["respondent", "question", "time"]).any():
        raise InputError(f"{where}: a respondent voted twice on one question at one time; keep one vote per cell")
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class SurveySplit:
    """One train/test split of a votes table.

    Attributes
    ----------
    name:
        ``imputation``, ``retrodiction`` or ``unasked``.
    train, test:
        Disjoint votes tables (the columns of the input); ``test`` holds the votes to predict.
    seed:
        The seed that drew the split.
    held_out:
        What was held out as a whole: the (question, time) cells for retrodiction, the questions for unasked,
        empty for imputation (single votes).
    """

    name: SplitName
    train: pd.DataFrame
    test: pd.DataFrame
    seed: int
    held_out: tuple[tuple[str, int] | str, ...] = ()


def _check_fraction(fraction: float) -> None:
    if not (isinstance(fraction, int | float) and 0.0 < fraction < 1.0):
        raise InputError(f"fraction must be in (0, 1), got {fraction!r}")


def imputation_split(votes: pd.DataFrame, *, fraction: float = 0.2, seed: int = 0) -> SurveySplit:
    """Hide single votes of asked questions: in every (question, time) cell, ``round(fraction * n)`` of its n
    votes, drawn at random, but never all of them (each cell keeps at least one training vote)."""
    _check_fraction(fraction)
    v = check_votes(votes)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(v), dtype=bool)
    for _, idx in v.groupby(["question", "time"], sort=True).indices.items():
        k = min(round(fraction * len(idx)), len(idx) - 1)
        if k > 0:
            test[rng.choice(idx, size=k, replace=False)] = True
    if not test.any():
        raise InputError("imputation: no vote left to hide; every (question, time) cell has a single vote")
    return SurveySplit("imputation", v[~test].reset_index(drop=True), v[test].reset_index(drop=True), seed)


def retrodiction_split(votes: pd.DataFrame, *, fraction: float = 0.2, seed: int = 0) -> SurveySplit:
    """Hide whole (question, time) cells: every vote on question q at time t, for a random ``fraction`` of the
    cells of questions asked at two or more times, such that each question keeps at least one other time in
    training (the paper's year-level missing responses). The respondents of a hidden cell keep their other
    votes in training."""
    _check_fraction(fraction)
    v = check_votes(votes)
    rng = np.random.default_rng(seed)
    cells = v[["question", "time"]].drop_duplicates().sort_values(["question", "time"])
    times_per_q = cells.groupby("question")["time"].apply(list)
    eligible = [(q, t) for q, ts in times_per_q.items() if len(ts) >= 2 for t in ts]
    if not eligible:
        raise InputError("retrodiction: no question is asked at two or more times")
    order = rng.permutation(len(eligible))
    n_target = max(1, round(fraction * len(eligible)))
    hidden: set[tuple[str, int]] = set()
    left = {q: len(ts) for q, ts in times_per_q.items()}
    for i in order:
        if len(hidden) >= n_target:
            break
        q, t = eligible[i]
        if left[q] > 1:
            hidden.add((q, int(t)))
            left[q] -= 1
    mask = np.array([(q, t) in hidden for q, t in zip(v["question"], v["time"], strict=True)])
    return SurveySplit(
        "retrodiction",
        v[~mask].reset_index(drop=True),
        v[mask].reset_index(drop=True),
        seed,
        tuple(sorted(hidden)),
    )


def unasked_split(votes: pd.DataFrame, *, fraction: float = 0.2, seed: int = 0) -> SurveySplit:
    """Hide whole questions: every vote, at every time, on a random ``fraction`` of the questions (at least one,
    never all). A predictor then knows such a question only by its text."""
    _check_fraction(fraction)
    v = check_votes(votes)
    questions = np.array(sorted(v["question"].unique()))
    if len(questions) < 2:
        raise InputError("unasked: need at least 2 questions to hold one out")
    rng = np.random.default_rng(seed)
    k = min(max(1, round(fraction * len(questions))), len(questions) - 1)
    hidden = set(rng.choice(questions, size=k, replace=False).tolist())
    mask = v["question"].isin(hidden).to_numpy()
    return SurveySplit(
        "unasked", v[~mask].reset_index(drop=True), v[mask].reset_index(drop=True), seed, tuple(sorted(hidden))
    )


def make_split(votes: pd.DataFrame, name: SplitName, *, fraction: float = 0.2, seed: int = 0) -> SurveySplit:
    """The split called ``name`` (one of SPLITS)."""
    builders = {"imputation": imputation_split, "retrodiction": retrodiction_split, "unasked": unasked_split}
    if name not in builders:
        raise InputError(f"unknown split {name!r}; known: {', '.join(SPLITS)}")
    return builders[name](votes, fraction=fraction, seed=seed)


# -- metrics ---------------------------------------------------------------------------------------------------


class SurveyScore(_Record):
    """Predicted probabilities of held-out votes measured against them; fields defined in docs/trust.md."""

    split: str = Field(description="Which split the held-out votes come from.")
    predictor: str = Field(description="Name of the predictor.")
    n: int = Field(description="Held-out votes scored.")
    n_yes: int = Field(description="Held-out votes equal to 1.")
    auc: float = Field(description="Individual AUC: P(prediction for a 1 > for a 0) + P(tie)/2 over held-out votes.")
    auc_se: float = Field(description="DeLong's standard error of the AUC.")
    auc_low: float = Field(description="Lower end of auc ± z·se, clipped to [0, 1].")
    auc_high: float = Field(description="Upper end of that interval.")
    level: float = Field(description="Coverage probability of the AUC interval.")
    n_cells: int = Field(description="(question, time) cells of the held-out votes (the points of ρ).")
    rho: float = Field(description="Aggregate ρ: Pearson correlation over cells of mean prediction and mean vote.")
    rho_spearman: float = Field(description="Spearman correlation of the same cell means.")
    best_auc: float | None = Field(
        default=None, description="Expected AUC of ranking these votes by their true probability (None if unknown)."
    )


def expected_auc(scores: np.ndarray, p: np.ndarray) -> float:
    """Expected AUC of ranking by ``scores`` when vote i is 1 with probability ``p[i]``, independently.

    Defined as the ratio of expectations
    ``sum_{i != j} p_i (1 - p_j) [H(s_i - s_j)] / sum_{i != j} p_i (1 - p_j)`` with H = 1 above, 1/2 at a tie,
    0 below: the AUC a predictor attains on average over the votes' randomness (exact as n grows). With
    ``scores = p`` it is the best AUC any predictor can expect: nothing ranks a 1 above a 0 more often than the
    true probability does. O(n log n).
    """
    s = np.asarray(scores, dtype=float)
    q = np.asarray(p, dtype=float)
    if s.shape != q.shape or s.ndim != 1 or len(s) < 2:
        raise InputError(f"scores and p must be 1-D, equally long and of length >= 2, got {s.shape}, {q.shape}")
    if np.any((q < 0) | (q > 1)) or not np.all(np.isfinite(s)):
        raise InputError("p must lie in [0, 1] and scores must be finite")
    order = np.argsort(s, kind="stable")
    s_sorted, p_sorted = s[order], q[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos = np.add.reduceat(p_sorted, starts)  # expected 1s per tie group
    neg = np.add.reduceat(1.0 - p_sorted, starts)  # expected 0s per tie group
    self_pairs = np.add.reduceat(p_sorted * (1.0 - p_sorted), starts)
    neg_below = np.cumsum(neg) - neg
    numerator = float(np.sum(pos * neg_below) + 0.5 * np.sum(pos * neg - self_pairs))
    denominator = float(q.sum() * (1.0 - q).sum() - np.sum(q * (1.0 - q)))
    return numerator / denominator if denominator > 0 else float("nan")


def _corr(x: np.ndarray, y: np.ndarray, kind: Literal["pearson", "spearman"]) -> float:
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float((pearsonr if kind == "pearson" else spearmanr)(x, y).statistic)


def score_predictions(
    test: pd.DataFrame,
    predicted: np.ndarray,
    *,
    split: str,
    predictor: str,
    level: float = 0.95,
) -> SurveyScore:
    """Score ``predicted`` (one probability per row of ``test``) against ``test['vote']``.

    If ``test`` has a ``probability`` column (the true vote probabilities of a synthetic survey),
    ``best_auc`` is :func:`expected_auc` of the truth itself on these rows.
    """
    pred = np.asarray(predicted, dtype=float)
    if pred.shape != (len(test),):
        raise InputError(f"{predictor}: {pred.shape[0] if pred.ndim else 0} predictions for {len(test)} votes")
    if not np.all(np.isfinite(pred)):
        raise InputError(f"{predictor}: predictions must be finite numbers")
    votes = test["vote"].to_numpy(dtype=int)
    auc, se = auc_delong(pred[votes == 1], pred[votes == 0])
    z = float(norm.ppf(0.5 + level / 2))
    cells = pd.DataFrame({"q": test["question"].to_numpy(), "t": test["time"].to_numpy(), "pred": pred, "vote": votes})
    means = cells.groupby(["q", "t"], sort=True)[["pred", "vote"]].mean()
    mp, mv = means["pred"].to_numpy(), means["vote"].to_numpy(dtype=float)
    best = None
    if "probability" in test.columns and len(test) >= 2:
        best = expected_auc(test["probability"].to_numpy(dtype=float), test["probability"].to_numpy(dtype=float))
    finite = math.isfinite(auc)
    return SurveyScore(
        split=split,
        predictor=predictor,
        n=len(test),
        n_yes=int(votes.sum()),
        auc=auc,
        auc_se=se,
        auc_low=float(np.clip(auc - z * se, 0.0, 1.0)) if finite else float("nan"),
        auc_high=float(np.clip(auc + z * se, 0.0, 1.0)) if finite else float("nan"),
        level=level,
        n_cells=len(means),
        rho=_corr(mp, mv, "pearson"),
        rho_spearman=_corr(mp, mv, "spearman"),
        best_auc=best,
    )


# -- predictors ------------------------------------------------------------------------------------------------


class VotePredictor(Protocol):
    """Anything that learns from training votes (and question texts) and predicts P(vote = 1) for new rows."""

    name: str

    def fit(self, train: pd.DataFrame, texts: Mapping[str, str]) -> VotePredictor: ...

    def predict(self, rows: pd.DataFrame) -> np.ndarray: ...


class QuestionMarginal:
    """The per-question marginal: P(vote = 1) = (yes votes + 1) / (votes + 2) of the question in training,
    pooled over times and respondents (add-one smoothed so a unanimous question does not predict exactly 0 or
    1). It ranks held-out votes by their question only, so its individual AUC measures how much of the task
    is knowing which questions people tend to say yes to. It does not exist for a question without training
    votes: predicting one is an error (an unasked question has no marginal)."""

    name = "question marginal"

    def __init__(self) -> None:
        self._rate: dict[str, float] = {}

    def fit(self, train: pd.DataFrame, texts: Mapping[str, str] | None = None) -> QuestionMarginal:
        v = check_votes(train, where="training votes")
        grouped = v.groupby("question")["vote"].agg(["sum", "count"])
        self._rate = ((grouped["sum"] + 1.0) / (grouped["count"] + 2.0)).to_dict()
        return self

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        unknown = sorted(set(rows["question"].astype(str)) - set(self._rate))
        if unknown:
            raise InputError(
                f"question marginal: {len(unknown)} question(s) without training votes (e.g. {unknown[0]!r}); "
                "the marginal baseline does not exist for unasked questions"
            )
        return np.array([self._rate[q] for q in rows["question"].astype(str)], dtype=float)


def has_marginal(split: SurveySplit) -> bool:
    """Whether every held-out question has training votes (False for the unasked split)."""
    return set(split.test["question"]).issubset(set(split.train["question"]))


def evaluate_split(
    split: SurveySplit,
    predictors: list[VotePredictor],
    texts: Mapping[str, str],
    *,
    level: float = 0.95,
) -> list[SurveyScore]:
    """Fit each predictor on ``split.train`` and score it on ``split.test``.

    The marginal baseline is skipped where it does not exist (held-out questions without training votes);
    any other predictor that fails raises. Fitting never sees ``split.test``.
    """
    scores = []
    for predictor in predictors:
        if isinstance(predictor, QuestionMarginal) and not has_marginal(split):
            continue
        predictor.fit(split.train, texts)
        scores.append(
            score_predictions(
                split.test, predictor.predict(split.test), split=split.name, predictor=predictor.name, level=level
            )
        )
    return scores


def scores_frame(scores: list[SurveyScore]) -> pd.DataFrame:
    """Scores as a table (one row per split and predictor), for printing and CSV."""
    return pd.DataFrame([s.model_dump() for s in scores])


@dataclass(frozen=True)
class SurveyModelSettings:
    """Hyperparameters of :class:`SurveyModel` (one flag each in ``pasture analyze-pool``).

    Attributes
    ----------
    dim:
        Size of the respondent, time and question embeddings.
    epochs:
        Full-batch optimizer steps.
    lr:
        AdamW learning rate.
    weight_decay:
        AdamW decoupled weight decay (shrinks every embedding; keeps rarely seen respondents near zero).
    n_buckets:
        Hash buckets of the question-text features (words and adjacent word pairs).
    question_dropout:
        Share of questions whose own (free) direction and lean are switched off at each training step, so that
        those votes must be explained through the question's text: it trains the text path that an unasked
        question depends on (0 disables it).
    seed:
        Seed of the initial weights and of the dropout draws.
    """

    dim: int = 4
    epochs: int = 300
    lr: float = 0.03
    weight_decay: float = 0.01
    n_buckets: int = 512
    question_dropout: float = 0.3
    seed: int = 0

    def validate(self) -> None:
        for name in ("dim", "epochs", "n_buckets"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}", param=name)
        if not self.lr > 0:
            raise InputError(f"lr must be > 0, got {self.lr!r}", param="lr")
        if not 0.0 <= self.question_dropout < 1.0:
            raise InputError(
                f"question_dropout must be in [0, 1), got {self.question_dropout!r}", param="question_dropout"
            )
        if not self.weight_decay >= 0:
            raise InputError(f"weight_decay must be >= 0, got {self.weight_decay!r}", param="weight_decay")
