from __future__ import annotations

import asyncio

import pytest

from pasture.judges import JudgeRequest, PermanentError, ProgrammaticJudge, get_judge, longer_output_wins


def _judge(j, o1, o2, shown_first=1):
    return asyncio.run(j.judge(JudgeRequest("q", o1, o2, shown_first=shown_first)))


def test_builtin_length_judge_by_slot_regardless_of_order():
    j = get_judge("longer-wins")
    for sf in (1, 2):
        assert _judge(j, "short", "much longer", sf).preference == 2.0
        assert _judge(j, "much longer", "short", sf).preference == 1.0
        assert _judge(j, "same", "same", sf).preference == 1.5
    assert j.fingerprint.model == "pasture.judges.judge.longer_output_wins"
    assert j.fingerprint.protocol == "programmatic" and j.price_per_token() == (0.0, 0.0)


def _none_fn(instruction: str, output_1: str, output_2: str) -> float | None:
    return None


def _bad_range(instruction: str, output_1: str, output_2: str) -> float:
    return 3.0


def _raises(instruction: str, output_1: str, output_2: str) -> float:
    raise ZeroDivisionError("boom")


def test_failures_are_parse_errors_or_permanent():
    v = _judge(ProgrammaticJudge(_none_fn), "a", "b")
    assert v.status == "parse_error" and v.preference is None
    v = _judge(ProgrammaticJudge(_bad_range), "a", "b")
    assert v.status == "parse_error" and v.raw_completion == "3.0"
    with pytest.raises(PermanentError, match="ZeroDivisionError"):
        _judge(ProgrammaticJudge(_raises), "a", "b")


def test_fingerprint_names_function_and_digests_source_or_version():
    a = ProgrammaticJudge(_none_fn).fingerprint
    b = ProgrammaticJudge(_bad_range).fingerprint
    assert a.model.endswith("test_judges_programmatic._none_fn") and a.digest != b.digest
    assert a.template_digest != b.template_digest
    v1 = ProgrammaticJudge(longer_output_wins, version="1").fingerprint
    v2 = ProgrammaticJudge(longer_output_wins, version="2").fingerprint
    assert v1.digest != v2.digest and v1.model == v2.model
    assert ProgrammaticJudge(longer_output_wins).fingerprint == get_judge("longer-wins").fingerprint
