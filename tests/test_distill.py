"""pasture.distill on the real official annotations: splits, held-out predictions, measures, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pasture.distill import (
    TIE,
    agreement,
    distill_judge,
    fit_head,
    instruction_folds,
    longer_wins,
    predict,
    sample_pairs,
    teacher_pairs,
)
from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.judges.trained import DistilledJudge, FeatureCache
from pasture.records import Judgment

MODELS = ("alpaca-7b", "claude-2", "gpt4_0613_concise")


@pytest.fixture(scope="module")
def judgments(alpacaeval: Path) -> list[Judgment]:
    files = [alpacaeval / "results" / m / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json.gz" for m in MODELS]
    every = [j for f in files for j in read_annotations(f)]
    return sample_pairs(every, 450, seed=1)


@pytest.fixture(scope="module")
def result(judgments: list[Judgment]):  # type: ignore[no-untyped-def]
    return distill_judge(judgments, feature_set="style", folds=3, seed=0)


def test_instruction_folds_keep_each_instruction_in_one_fold(judgments: list[Judgment]) -> None:
    pairs = teacher_pairs(judgments).pairs
    fold = instruction_folds(pairs, 3, seed=0)
    per_instruction = pairs.assign(fold=fold).groupby("instruction")["fold"].nunique()
    assert per_instruction.max() == 1
    assert set(fold) == {0, 1, 2}


def test_by_model_predictions_come_from_a_head_that_never_saw_the_model(result, judgments) -> None:  # type: ignore[no-untyped-def]
    pairs = teacher_pairs(judgments).pairs
    model = MODELS[1]
    cache = FeatureCache("style")
    head = fit_head(pairs[pairs.generator_2 != model], cache, teacher_name="t", teacher_digest="d")
    test = pairs[pairs.generator_2 == model]
    held = result.predictions.set_index(["instruction", "output_1", "output_2"]).loc[
        list(zip(test.instruction, test.output_1, test.output_2, strict=True)), "by_model:style"
    ]
    assert np.allclose(held.to_numpy(), predict(head, test, cache))
    assert not np.allclose(held.to_numpy(), predict(result.head, test, cache))  # the full head saw the model


def test_table_rows_and_the_full_head(result, judgments) -> None:  # type: ignore[no-untyped-def]
    assert set(result.table.index) == {
        (s, p) for s in ("by_instruction", "by_model") for p in ("style", "length", "longer_wins")
    }
    n = len(teacher_pairs(judgments).pairs)
    assert (result.table["n_pairs"] == n).all()
    assert result.head.n_train == n and result.head.teacher_name == "weighted_alpaca_eval_gpt4_turbo"
    assert result.predictions.filter(like="by_").notna().all().all()
    assert set(result.per_model["model"]) == set(MODELS)
    judge = DistilledJudge(result.head)
    assert judge.fingerprint.weights_digest == result.head.weights_digest


def test_agreement_measures_by_hand_on_real_pairs(judgments: list[Judgment]) -> None:
    pairs = teacher_pairs(judgments).pairs
    predicted = longer_wins(pairs)
    teacher = pairs["preference"].to_numpy()
    got = agreement(predicted, teacher)
    hits = soft = 0.0
    decided = 0
    for p, t in zip(predicted, teacher, strict=True):
        soft += 1 - abs(p - t)
        if t != TIE:
            decided += 1
            hits += 0.5 if p == TIE else float((p > TIE) == (t > TIE))
    assert got.n_pairs == len(pairs)
    assert got.agreement == pytest.approx(100 * soft / len(pairs))
    assert got.winner_agreement == pytest.approx(100 * hits / decided)
    wins = predicted[teacher > TIE]
    losses = predicted[teacher < TIE]
    auc = np.mean([(w > lo) + 0.5 * (w == lo) for w in wins for lo in losses])
    assert got.auc == pytest.approx(auc)


def test_failed_judgments_are_counted_and_two_teachers_refused(judgments: list[Judgment]) -> None:
    broken = [judgments[0].model_copy(update={"status": "error", "preference": None, "error": "timeout"})]
    teacher = teacher_pairs(broken + judgments[1:])
    assert teacher.n_failed == 1 and teacher.n_judgments == len(judgments)
    assert len(teacher.pairs) == len(teacher_pairs(judgments[1:]).pairs)
    other = judgments[1].model_copy(update={"judge_digest": "f" * 64})
    with pytest.raises(InputError, match="one judge at a time"):
        teacher_pairs([judgments[0], other])
    with pytest.raises(InputError, match="no usable judgment"):
        teacher_pairs(broken)
