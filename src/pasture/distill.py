"""Distil a judge: fit a Bradley–Terry head on one judge's stored verdicts and measure it on held-out pairs.

Why: a store's judgments of a strong judge (e.g. the imported official GPT-4 Turbo annotations) are free
training data for a cheap local judge (``pasture.judges.trained``). A distilled judge is only worth its
numbers on pairs it never saw, so :func:`distill_judge` records two held-out evaluations next to the head:

* **by instruction**: ``folds`` groups of instructions; each pair is predicted by a head fitted on the pairs
  of the other instructions (nothing is scored on an instruction it was trained on);
* **by model**: leave one model out; each model's pairs are predicted by a head fitted on the other models'
  pairs (nothing is scored on a model it was trained on).

Each evaluation reports the same head on the ``length`` feature set (the length-only predictor, the bias to
beat) and the rule "longer output wins". The measures (agreement, winner agreement, AUC and Spearman from
:func:`pasture.analysis.selective_answering`) are defined in docs/judges.md "Trained judges".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pasture.analysis.bradley_terry import logistic_fit
from pasture.analysis.selective import selective_answering
from pasture.errors import InputError
from pasture.judges.trained import FEATURE_SETS, DistilledHead, FeatureCache, FeatureSet
from pasture.records import Judgment

PAIR_KEY = ["instruction", "output_1", "output_2"]

DEFAULT_L2 = 1e-3
"""Ridge penalty of the head (mean log-likelihood scale, on features divided by their scale). Fixed before
any held-out number was seen, and not tuned on them."""

TIE = 1.5
"""A preference equal to this is a tie."""


@dataclass(frozen=True)
class TeacherPairs:
    """One row per distinct pair with the teacher's mean preference over its ok judgments.

    ``n_judgments`` counts every judgment read; ``n_failed`` those whose status was not ok (left out of
    the mean, never silently: a pair whose judgments all failed is absent from ``pairs``).
    """

    pairs: pd.DataFrame
    teacher_name: str
    teacher_digest: str
    n_judgments: int
    n_failed: int


def teacher_pairs(judgments: Iterable[Judgment]) -> TeacherPairs:
    """Group one judge's judgments by pair (both shown orders and replicates averaged)."""
    rows = []
    digests: set[str] = set()
    name = ""
    n = failed = 0
    for j in judgments:
        n += 1
        digests.add(j.judge_digest)
        name = j.judge_name
        if j.status != "ok" or j.preference is None:
            failed += 1
            continue
        rows.append((j.instruction, j.output_1, j.output_2, j.generator_1, j.generator_2, float(j.preference)))
    if len(digests) > 1:
        raise InputError(f"judgments of {len(digests)} judges given; distil one judge at a time (pick it with --judge)")
    if not rows:
        raise InputError(f"no usable judgment to distil from ({n} read, {failed} failed)")
    frame = pd.DataFrame(rows, columns=[*PAIR_KEY, "generator_1", "generator_2", "preference"])
    pairs = (
        frame.groupby(PAIR_KEY, sort=False)
        .agg(generator_1=("generator_1", "first"), generator_2=("generator_2", "first"),
             preference=("preference", "mean"))
        .reset_index()
    )  # fmt: skip
    return TeacherPairs(pairs, name, digests.pop(), n, failed)


def fit_head(
    pairs: pd.DataFrame, cache: FeatureCache, *, teacher_name: str, teacher_digest: str, l2: float = DEFAULT_L2
) -> DistilledHead:
    """Fit a head on ``pairs`` (columns instruction, output_1, output_2, preference) with soft labels."""
    diff = cache.differences(pairs["instruction"].tolist(), pairs["output_1"].tolist(), pairs["output_2"].tolist())
    return fit_differences(
        diff, pairs["preference"].to_numpy(dtype=float), cache.feature_set,
        teacher_name=teacher_name, teacher_digest=teacher_digest, l2=l2,
    )  # fmt: skip


def fit_differences(
    diff: np.ndarray,
    preference: np.ndarray,
    feature_set: FeatureSet,
    *,
    teacher_name: str,
    teacher_digest: str,
    l2: float = DEFAULT_L2,
) -> DistilledHead:
    """:func:`fit_head` on precomputed feature differences (rows = pairs) and teacher preferences by slot."""
    if len(diff) == 0:
        raise InputError("no pair to fit the head on")
    scales = diff.std(axis=0)
    scales = np.where(scales > 0, scales, 1.0)
    beta, _ = logistic_fit(diff / scales, np.asarray(preference, dtype=float) - 1.0, l2=l2)
    return DistilledHead(
        feature_set=feature_set,
        weights=tuple(float(b) for b in beta),
        scales=tuple(float(x) for x in scales),
        l2=l2,
        teacher_name=teacher_name,
        teacher_digest=teacher_digest,
        n_train=len(diff),
    )


def predict(head: DistilledHead, pairs: pd.DataFrame, cache: FeatureCache) -> np.ndarray:
    """The head's preference by slot for each pair."""
    diff = cache.differences(pairs["instruction"].tolist(), pairs["output_1"].tolist(), pairs["output_2"].tolist())
    return head.preferences(diff)


def longer_wins(pairs: pd.DataFrame) -> np.ndarray:
    """The rule "the longer output (characters) wins, equal lengths tie", as preferences by slot."""
    n1 = pairs["output_1"].str.len().to_numpy()
    n2 = pairs["output_2"].str.len().to_numpy()
    return np.where(n2 > n1, 2.0, np.where(n2 < n1, 1.0, TIE))


@dataclass(frozen=True)
class Agreement:
    """A predictor against the teacher on the same pairs (definitions in docs/judges.md)."""

    n_pairs: int
    agreement: float
    """100 × mean over pairs of 1 - |predicted - teacher preference| (analyze-judge's 'Gold agreement')."""
    winner_agreement: float
    """100 × share of pairs the teacher did not tie where the predicted winner is the teacher's (a predicted
    tie counts half)."""
    auc: float
    """P(predicted preference is higher on a pair the model won than on one it lost), ties half; pairs the
    teacher tied are left out (``selective_answering`` with good = teacher preference > 1.5)."""
    spearman: float
    """Spearman's rho of predicted with teacher preference on the pairs the teacher did not tie."""


def agreement(predicted: np.ndarray, teacher: np.ndarray) -> Agreement:
    """Compare predicted preferences by slot with the teacher's on the same pairs."""
    p = np.asarray(predicted, dtype=float)
    t = np.asarray(teacher, dtype=float)
    if p.shape != t.shape or p.ndim != 1 or len(p) == 0:
        raise InputError(
            f"predicted and teacher preferences must be non-empty, 1-D, equal length: {p.shape}, {t.shape}"
        )
    decided = t != TIE
    hit = np.where(p == TIE, 0.5, ((p > TIE) == (t > TIE)).astype(float))
    sel = selective_answering(p[decided], t[decided], good_threshold=TIE)
    return Agreement(
        n_pairs=len(p),
        agreement=100.0 * float(np.mean(1.0 - np.abs(p - t))),
        winner_agreement=100.0 * float(hit[decided].mean()) if decided.any() else float("nan"),
        auc=sel.auc,
        spearman=sel.spearman,
    )


def instruction_folds(pairs: pd.DataFrame, folds: int, seed: int) -> np.ndarray:
    """Fold index per pair: instructions shuffled with ``seed`` and dealt into ``folds`` groups."""
    instructions = pairs["instruction"].unique()
    if folds < 2 or folds > len(instructions):
        raise InputError(f"folds must be between 2 and the {len(instructions)} instructions, got {folds}")
    order = np.random.default_rng(seed).permutation(len(instructions))
    fold_of = {instructions[i]: k % folds for k, i in enumerate(order)}
    return pairs["instruction"].map(fold_of).to_numpy()


@dataclass(frozen=True)
class DistillResult:
    """The head fitted on every pair, and its held-out evaluations.

    ``table``: one row per (split, predictor) with :class:`Agreement`'s fields; ``per_model``: the
    by-model split per held-out model; ``predictions``: every pair with its teacher preference and the
    held-out prediction of each predictor under each split.
    """

    head: DistilledHead
    table: pd.DataFrame
    per_model: pd.DataFrame
    predictions: pd.DataFrame
    n_judgments: int
    n_failed: int


def distill_judge(
    judgments: Iterable[Judgment],
    *,
    feature_set: FeatureSet = "style",
    l2: float = DEFAULT_L2,
    folds: int = 5,
    seed: int = 0,
    min_models: int = 3,
) -> DistillResult:
    """Fit a distilled judge on one judge's judgments and evaluate it held out by instruction and by model.

    Parameters
    ----------
    judgments:
        One judge's judgments (several per pair allowed; failed ones are counted and left out).
    feature_set:
        The head's features (``pasture.judges.trained.FEATURE_SETS``); the length-only head is always
        evaluated beside it.
    l2:
        Ridge penalty of the head.
    folds, seed:
        Instruction folds of the by-instruction split and the seed that deals them.
    min_models:
        The by-model split runs when the pairs hold at least this many models (generator_2); with fewer it
        is absent from the table (a one-model store cannot be left out by model).
    """
    if feature_set not in FEATURE_SETS:
        raise InputError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    teacher = teacher_pairs(judgments)
    pairs = teacher.pairs
    predictors: list[FeatureSet] = [feature_set] if feature_set == "length" else [feature_set, "length"]
    # every pair's feature differences, computed once per feature set and sliced per fold
    diffs = {
        name: FeatureCache(name).differences(
            pairs["instruction"].tolist(), pairs["output_1"].tolist(), pairs["output_2"].tolist()
        )
        for name in predictors
    }
    y = pairs["preference"].to_numpy(dtype=float)

    def fit(rows: np.ndarray, name: FeatureSet) -> DistilledHead:
        return fit_differences(diffs[name][rows], y[rows], name, teacher_name=teacher.teacher_name,
                               teacher_digest=teacher.teacher_digest, l2=l2)  # fmt: skip

    predictions = pairs[[*PAIR_KEY, "generator_2", "preference"]].rename(columns={"preference": "teacher"})
    splits: dict[str, np.ndarray] = {"by_instruction": instruction_folds(pairs, folds, seed)}
    models = pairs["generator_2"].unique()
    if len(models) >= min_models:
        splits["by_model"] = pairs["generator_2"].map({m: i for i, m in enumerate(models)}).to_numpy()
    rows = []
    per_model = []
    for split, fold in splits.items():
        for name in predictors:
            held = np.full(len(pairs), np.nan)
            for k in np.unique(fold):
                test = fold == k
                held[test] = fit(~test, name).preferences(diffs[name][test])
            predictions[f"{split}:{name}"] = held
        predictions[f"{split}:longer_wins"] = longer_wins(pairs)
        for shown in [*predictors, "longer_wins"]:
            col = predictions[f"{split}:{shown}"].to_numpy()
            rows.append({"split": split, "predictor": shown, **vars(agreement(col, predictions["teacher"].to_numpy()))})
            if split == "by_model":
                for model, part in predictions.groupby("generator_2", sort=True):
                    a = agreement(part[f"{split}:{shown}"].to_numpy(), part["teacher"].to_numpy())
                    per_model.append({"model": model, "predictor": shown, **vars(a)})
    return DistillResult(
        head=fit(np.ones(len(pairs), dtype=bool), feature_set),
        table=pd.DataFrame(rows).set_index(["split", "predictor"]),
        per_model=pd.DataFrame(per_model),
        predictions=predictions,
        n_judgments=teacher.n_judgments,
        n_failed=teacher.n_failed,
    )


def sample_pairs(judgments: Sequence[Judgment], max_pairs: int, seed: int) -> list[Judgment]:
    """At most ``max_pairs`` judgments drawn without replacement with ``seed`` (for small runs)."""
    if max_pairs >= len(judgments):
        return list(judgments)
    idx = np.random.default_rng(seed).choice(len(judgments), size=max_pairs, replace=False)
    return [judgments[i] for i in sorted(idx)]
