"""The distilled judge (pasture.judges.trained): features, symmetry, fingerprint, loading, the engine."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pasture.annotate import annotate
from pasture.annotate.pairs import PairToJudge
from pasture.errors import InputError, JudgeError
from pasture.judges import get_judge
from pasture.judges.base import JudgeRequest
from pasture.judges.trained import (
    STYLE_NAMES,
    WORD_BUCKETS,
    DistilledHead,
    DistilledJudge,
    FeatureCache,
    feature_names,
    is_head_file,
    output_features,
)
from pasture.store import Store

INSTR = "List three primary colors."
SHORT = "Red."
LONG = "The three primary colors are:\n\n- **Red**\n- **Blue**\n- **Yellow**\n\nThey mix into every other hue."


def _head(feature_set: str = "style", seed: int = 0) -> DistilledHead:
    k = len(feature_names(feature_set))  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    return DistilledHead(
        feature_set=feature_set,  # type: ignore[arg-type]
        weights=tuple(rng.normal(size=k).tolist()),
        scales=tuple(rng.uniform(0.5, 2.0, size=k).tolist()),
        l2=1e-3,
        teacher_name="teacher",
        teacher_digest="0" * 64,
        n_train=10,
    )


def test_features_follow_their_definitions() -> None:
    f = dict(zip(STYLE_NAMES, output_features(INSTR, LONG, "style"), strict=True))
    assert f["log_chars"] == pytest.approx(math.log1p(len(LONG)))
    assert f["lists"] == pytest.approx(3 * 1000 / len(LONG))
    assert f["bold"] == pytest.approx(3 * 1000 / len(LONG))
    assert f["empty"] == 0 and f["refusal"] == 0 and f["ends_cleanly"] == 1
    assert f["instruction_overlap"] == pytest.approx(3 / 4)  # three, primary, colors of {list, three, primary, colors}
    empty = dict(zip(STYLE_NAMES, output_features(INSTR, "   ", "style"), strict=True))
    assert empty["empty"] == 1 and empty["ends_cleanly"] == 0
    refusal = dict(
        zip(STYLE_NAMES, output_features(INSTR, "I'm sorry, I cannot help with that.", "style"), strict=True)
    )
    assert refusal["refusal"] == 1
    assert output_features(INSTR, LONG, "length").tolist() == [math.log1p(len(LONG))]


def test_word_buckets_are_frequencies_per_100_words_and_stable_across_caches() -> None:
    words = output_features(INSTR, LONG, "style_words")[len(STYLE_NAMES) :]
    assert len(words) == WORD_BUCKETS
    assert words.sum() == pytest.approx(100.0)
    other = FeatureCache("style_words")(INSTR, LONG)
    assert np.array_equal(other[len(STYLE_NAMES) :], words)


def test_judge_is_symmetric_and_blind_to_the_shown_order() -> None:
    judge = DistilledJudge(_head())
    a = asyncio.run(judge.judge(JudgeRequest(INSTR, SHORT, LONG, shown_first=1)))
    b = asyncio.run(judge.judge(JudgeRequest(INSTR, SHORT, LONG, shown_first=2)))
    swapped = asyncio.run(judge.judge(JudgeRequest(INSTR, LONG, SHORT, shown_first=1)))
    assert a.status == "ok" and a.preference is not None and swapped.preference is not None
    assert a.preference == b.preference
    assert a.preference + swapped.preference == pytest.approx(3.0)
    assert 1.0 <= a.preference <= 2.0
    logit = json.loads(a.raw_completion or "")["logit"]
    assert a.preference == pytest.approx(1 + 1 / (1 + math.exp(-logit)))


def test_fingerprint_changes_with_weights_and_survives_a_round_trip(tmp_path: Path) -> None:
    head = _head()
    path = head.save(tmp_path / "head.json")
    assert is_head_file(path)
    loaded = get_judge(path)
    assert isinstance(loaded, DistilledJudge)
    assert loaded.fingerprint.digest == DistilledJudge(head).fingerprint.digest
    moved = replace(head, weights=(head.weights[0] + 1e-9, *head.weights[1:]))
    assert DistilledJudge(moved).fingerprint.digest != DistilledJudge(head).fingerprint.digest
    other_set = _head("length")
    assert DistilledJudge(other_set).fingerprint.template_digest != DistilledJudge(head).fingerprint.template_digest
    assert get_judge(path, name="mine").name == "mine"
    with pytest.raises(JudgeError, match="no override but name"):
        get_judge(path, model="x")


def test_bad_head_files_are_clear_errors(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"kind": "something else"}')
    assert not is_head_file(other)
    with pytest.raises(InputError, match="not a distilled judge head"):
        DistilledHead.load(other)
    old = _head().to_json() | {"features_version": 0}
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(old))
    with pytest.raises(InputError, match="retrain it"):
        DistilledHead.load(stale)
    with pytest.raises(JudgeError, match="needs 16 weights"):
        replace(_head(), weights=(1.0,))


def test_engine_stores_and_reuses_its_judgments(tmp_path: Path) -> None:
    judge = DistilledJudge(_head())
    pairs = [PairToJudge(INSTR, SHORT, "ref", LONG, "model"), PairToJudge("Say hi.", "Hi!", "ref", "", "model")]
    with Store(tmp_path / "s.sqlite") as store:
        first = annotate(store, judge, pairs, position="both", progress=False)
        again = annotate(store, judge, pairs, position="both", progress=False)
        stored = store.get_judgments(judge_digest=judge.fingerprint.digest)
    assert first.n_new == 4 and first.n_error == 0
    assert again.n_cached == 4 and again.n_new == 0
    assert {j.preference for j in stored if j.instruction == INSTR} == {judge.preference(INSTR, SHORT, LONG)}
