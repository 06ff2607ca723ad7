"""Survey-style prediction applied to pasture's annotator pools: how well do the others predict one annotator?

Why: a simulated pool is useful as a stand-in for people only if its members' votes are predictable the way
people's are, and a pool's inter-annotator agreement alone does not say how much of one annotator's behaviour is
its own. Treating each annotator (a pool member, a persona, an imported judge) as a survey *respondent* and each
pair of outputs as a *question*, the survey measures apply (docs/trust.md, "Survey-style prediction"):

* :func:`pool_votes` turns judgments (from the store, or imported annotation files) into a votes table: the
  respondent is the judgment's ``annotator`` when set, else its ``judge_name``; the question is the pair
  (instruction and the two outputs, in a canonical order: the lexicographically smaller output text is "A");
  the vote is 1 when A is preferred (mean preference over a respondent's judgments of the pair, mirrored to the
  canonical order, below 1.5), 0 when B is, and left out on an exact tie; all votes are at time 0 (a pool has no
  survey waves). The question text for the model is the instruction's words, A's words marked ``a_`` and B's
  marked ``b_``, so that the text features can tell the two sides apart;
* :func:`held_out_annotator` hides a random share of one annotator's votes (only on pairs that others also
  voted on) and predicts them from everything else, with the survey model and the per-question marginal (the
  share of the other votes on that pair, plus the annotator's own visible votes, that prefer A).

Pure: judgments in, records out; no store or command-line imports.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field

from pasture.analysis.survey import QuestionMarginal, SurveyModelSettings, SurveyScore, SurveySplit, score_predictions
from pasture.errors import InputError
from pasture.records import Judgment, _Record

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class PoolVotes:
    """A pool's judgments as a survey.

    Attributes
    ----------
    votes:
        Columns respondent, question, time (0), vote.
    texts:
        Question id -> the text the survey model reads (see the module docstring).
    n_ties:
        (respondent, pair) combinations left out because their mean preference was exactly 1.5.
    n_failed:
        Judgments without a preference (failed or unparsable), left out.
    """

    votes: pd.DataFrame
    texts: dict[str, str]
    n_ties: int
    n_failed: int


def _question_id(instruction: str, a: str, b: str) -> str:
    blob = json.dumps([instruction, a, b], ensure_ascii=False)
    return "pair-" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _question_text(instruction: str, a: str, b: str) -> str:
    def words(text: str, mark: str) -> str:
        return " ".join(f"{mark}{w}" for w in _WORD.findall(text.lower()))

    return f"{words(instruction, '')} {words(a, 'a_')} {words(b, 'b_')}".strip()


def pool_votes(judgments: Iterable[Judgment]) -> PoolVotes:
    """Judgments of pairs -> a votes table with one respondent per annotator (see the module docstring)."""
    prefs: dict[tuple[str, str], list[float]] = {}
    texts: dict[str, str] = {}
    n_failed = 0
    for j in judgments:
        if j.status != "ok" or j.preference is None:
            n_failed += 1
            continue
        a, b = sorted((j.output_1, j.output_2))
        qid = _question_id(j.instruction, a, b)
        texts.setdefault(qid, _question_text(j.instruction, a, b))
        prefers_slot_2 = j.preference - 1.0  # in [0, 1]
        # identical outputs: the verdict has no side to prefer (a tie, left out)
        prefers_b = 0.5 if a == b else (prefers_slot_2 if j.output_1 == a else 1.0 - prefers_slot_2)
        prefs.setdefault((j.annotator or j.judge_name, qid), []).append(prefers_b)
    rows, n_ties = [], 0
    for (respondent, qid), values in sorted(prefs.items()):
        mean = float(np.mean(values))
        if mean == 0.5:
            n_ties += 1
            continue
        rows.append((respondent, qid, 0, int(mean < 0.5)))
    votes = pd.DataFrame(rows, columns=["respondent", "question", "time", "vote"])
    used = set(votes["question"])
    return PoolVotes(votes=votes, texts={q: t for q, t in texts.items() if q in used}, n_ties=n_ties, n_failed=n_failed)


class HeldOutAnnotator(_Record):
    """One annotator's hidden votes predicted from the rest; fields defined in docs/trust.md."""

    annotator: str = Field(description="The held-out respondent.")
    n_votes: int = Field(description="Its votes on pairs that at least one other annotator also voted on.")
    n_visible: int = Field(description="Of those, votes left in training (its own, visible to the predictors).")
    n_respondents: int = Field(description="Annotators in the pool (the held-out one included).")
    n_questions: int = Field(description="Pairs with at least one vote.")
    fraction: float = Field(description="Share of its votes hidden.")
    seed: int = Field(description="Seed of the hidden share and of the model's weights.")
    model: SurveyScore = Field(description="The survey model's scores on the hidden votes.")
    marginal: SurveyScore = Field(description="The per-question marginal's scores on the hidden votes.")


def held_out_split(votes: pd.DataFrame, annotator: str, *, fraction: float = 0.5, seed: int = 0) -> SurveySplit:
    """Hide ``fraction`` of ``annotator``'s votes on pairs that others voted on too; everything else trains.

    A split of kind ``imputation`` restricted to one respondent: the hidden votes' pairs keep other annotators'
    votes in training, so the marginal exists for each of them.
    """
    if not 0.0 < fraction < 1.0:
        raise InputError(f"fraction must be in (0, 1), got {fraction!r}", param="fraction")
    known = sorted(votes["respondent"].unique())
    if annotator not in known:
        raise InputError(f"no votes by annotator {annotator!r}; annotators: {', '.join(known) or 'none'}")
    if len(known) < 2:
        raise InputError("a held-out annotator needs at least one other annotator in the pool")
    mine = votes["respondent"] == annotator
    shared = set(votes.loc[~mine, "question"])
    eligible = np.flatnonzero(mine.to_numpy() & votes["question"].isin(shared).to_numpy())
    k = round(fraction * len(eligible))
    if k < 1:
        raise InputError(
            f"annotator {annotator!r} has {len(eligible)} vote(s) on pairs others voted on; "
            f"hiding {fraction:g} of them leaves nothing to predict (label more pairs with every member)"
        )
    rng = np.random.default_rng(seed)
    test = np.zeros(len(votes), dtype=bool)
    test[rng.choice(eligible, size=k, replace=False)] = True
    return SurveySplit(
        "imputation", votes[~test].reset_index(drop=True), votes[test].reset_index(drop=True), seed, (annotator,)
    )


def held_out_annotator(
    pool: PoolVotes,
    annotator: str,
    *,
    fraction: float = 0.5,
    seed: int = 0,
    settings: SurveyModelSettings | None = None,
) -> HeldOutAnnotator:
    """Predict a random ``fraction`` of ``annotator``'s votes from every other vote (see :func:`held_out_split`),
    with the survey model (weights seeded by ``seed``) and the per-question marginal."""
    from pasture.analysis.survey_model import SurveyModel  # torch: imported when a model is trained, not with the CLI

    split = held_out_split(pool.votes, annotator, fraction=fraction, seed=seed)
    model_settings = dataclasses.replace(settings or SurveyModelSettings(), seed=seed)
    label = f"held-out {annotator}"
    model = SurveyModel(model_settings).fit(split.train, pool.texts)
    marginal = QuestionMarginal().fit(split.train)
    mine = pool.votes["respondent"] == annotator
    shared = set(pool.votes.loc[~mine, "question"])
    return HeldOutAnnotator(
        annotator=annotator,
        n_votes=int((mine & pool.votes["question"].isin(shared)).sum()),
        n_visible=int((split.train["respondent"] == annotator).sum()),
        n_respondents=int(pool.votes["respondent"].nunique()),
        n_questions=int(pool.votes["question"].nunique()),
        fraction=fraction,
        seed=seed,
        model=score_predictions(split.test, model.predict(split.test), split=label, predictor=SurveyModel.name),
        marginal=score_predictions(
            split.test, marginal.predict(split.test), split=label, predictor=QuestionMarginal.name
        ),
    )


def held_out_table(results: Sequence[HeldOutAnnotator]) -> pd.DataFrame:
    """One row per held-out annotator: counts, and each predictor's AUC with its interval (for printing/CSV)."""
    rows = []
    for r in results:
        rows.append(
            {
                "annotator": r.annotator,
                "n_hidden": r.model.n,
                "n_visible": r.n_visible,
                "share_yes": r.model.n_yes / r.model.n if r.model.n else float("nan"),
                "model_auc": r.model.auc,
                "model_auc_low": r.model.auc_low,
                "model_auc_high": r.model.auc_high,
                "marginal_auc": r.marginal.auc,
                "marginal_auc_low": r.marginal.auc_low,
                "marginal_auc_high": r.marginal.auc_high,
            }
        )
    return pd.DataFrame(rows).set_index("annotator")
