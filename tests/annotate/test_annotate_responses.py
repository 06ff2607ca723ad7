"""Judgments of ONE response through the engine: programmatic judges with exact expectations, and the
critique protocol against the real llama.cpp server (contract only, never the model's words)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from faultproxy import FaultProxy

from pasture.annotate import (
    EngineSettings,
    ResponseToJudge,
    annotate_responses,
    build_response_tasks,
    responses_from_outputs,
)
from pasture.errors import InputError, JudgeError
from pasture.judges import (
    Completion,
    CritiqueParser,
    ProgrammaticJudge,
    ProgrammaticResponseJudge,
    ResponseReading,
    ResponseRequest,
    get_judge,
    get_response_judge,
    longer_output_wins,
)
from pasture.records import ModelOutput, response_judgment_key
from pasture.store import Store

_SUM = re.compile(r"What is (\d+) \+ (\d+)\?")


def sum_critic(request: ResponseRequest) -> ResponseReading:
    """An exact critic for 'What is a + b?': names the wrong answer, never the correction."""
    a, b = (int(x) for x in _SUM.fullmatch(request.instruction).groups())  # type: ignore[union-attr]
    if request.output.strip() == str(a + b):
        return ResponseReading(verdict="good", critique="Nothing is wrong.", score=1.0)
    return ResponseReading(verdict="bad", critique=f"The answer {request.output.strip()!r} is not the sum.", score=0.0)


def reference_match(request: ResponseRequest) -> ResponseReading:
    """Score 1 when the output equals the reference answer, else 0."""
    return ResponseReading(score=float(request.output == request.reference))


def undecided_on_odd(request: ResponseRequest) -> ResponseReading | None:
    """Cannot decide (None: unparsable) when the first addend is odd."""
    a = int(_SUM.fullmatch(request.instruction).group(1))  # type: ignore[union-attr]
    return None if a % 2 else ResponseReading(verdict="yes")


def _items(n: int) -> list[ResponseToJudge]:
    # even i: the right sum; odd i: off by one
    return [
        ResponseToJudge(instruction=f"What is {i} + {i + 1}?", output=str(2 * i + 1 + i % 2), generator="m")
        for i in range(n)
    ]


QUIET = EngineSettings(concurrency=2)


def test_programmatic_critiques_are_exact_cached_and_keyed(tmp_path: Path) -> None:
    judge = ProgrammaticResponseJudge(sum_critic, name="sum-critic")
    items = _items(6)
    with Store(tmp_path / "s.db") as store:
        first = annotate_responses(store, judge, items + items[:2], settings=QUIET, progress=False)
        assert first.ok and (first.n_judgments, first.n_new, first.calls) == (6, 6, 6)
        assert [j.verdict for j in first.judgments] == ["good", "bad"] * 3
        assert first.judgments[1].critique == "The answer '4' is not the sum."
        assert [j.score for j in first.judgments] == [1.0, 0.0] * 3
        digest = judge.fingerprint.digest
        assert [j.key for j in first.judgments] == [
            response_judgment_key(digest, i.instruction, i.output) for i in items
        ]
        assert store.count_response_judgments() == 6 and store.count_judgments() == 0
        # a rerun makes no call; new items only cost their own calls
        again = annotate_responses(store, judge, _items(8), settings=QUIET, progress=False)
        assert (again.n_cached, again.n_new, again.calls) == (6, 2, 2)
        stored = store.get_response_judgments_by_key([j.key for j in again.judgments])
        assert [stored[j.key].critique for j in again.judgments] == [j.critique for j in again.judgments]
        # replicates are separate judgments with separate keys
        rep = annotate_responses(store, judge, items[:2], replicates=3, settings=QUIET, progress=False)
        assert (rep.n_judgments, rep.n_cached, rep.calls) == (6, 2, 4)


def test_unread_fields_stay_out_of_the_key_and_read_ones_are_required(tmp_path: Path) -> None:
    critic = ProgrammaticResponseJudge(sum_critic)
    with_ref = [ResponseToJudge("What is 1 + 2?", "3", "m", reference="3", subject="Be brief.")]
    plain = [ResponseToJudge("What is 1 + 2?", "3", "m")]
    # the critic reads neither reference nor subject: they are dropped, the key is the plain one
    assert build_response_tasks(critic, with_ref)[0].key == build_response_tasks(critic, plain)[0].key
    assert build_response_tasks(critic, with_ref)[0].reference is None
    scorer = ProgrammaticResponseJudge(reference_match, reads=["reference"])
    assert scorer.fingerprint.digest != ProgrammaticResponseJudge(reference_match).fingerprint.digest
    with pytest.raises(InputError, match=r"item 0 .* has no reference"):
        build_response_tasks(scorer, plain)
    other_ref = [ResponseToJudge("What is 1 + 2?", "3", "m", reference="three")]
    assert build_response_tasks(scorer, with_ref)[0].key != build_response_tasks(scorer, other_ref)[0].key
    with Store(tmp_path / "s.db") as store:
        report = annotate_responses(store, scorer, with_ref + other_ref, progress=False)
        assert [j.score for j in report.judgments] == [1.0, 0.0]
        assert [j.reference for j in report.judgments] == ["3", "three"]
        assert all(j.subject is None for j in report.judgments)  # not read: not stored, not keyed


def test_unparsable_answers_are_retried_stored_and_redone_later(tmp_path: Path) -> None:
    judge = ProgrammaticResponseJudge(undecided_on_odd, name="odd")
    items = _items(6)
    with Store(tmp_path / "s.db") as store:
        report = annotate_responses(store, judge, items, settings=EngineSettings(parse_retries=2), progress=False)
        assert (report.n_new, report.n_parse_error, report.n_failed) == (3, 3, 3) and not report.ok
        assert report.calls == 3 + 3 * 3 and report.parse_retries == 6
        failed = store.get_response_judgments(status="parse_error")
        assert len(failed) == 3 and all(j.verdict is None and j.attempts == 3 for j in failed)
        assert {j.key for j in report.failed} == {j.key for j in failed}
        again = annotate_responses(store, judge, items, settings=EngineSettings(parse_retries=0), progress=False)
        assert (again.n_cached, again.calls, again.n_parse_error) == (3, 3, 3)
        assert all(j.attempts == 4 for j in store.get_response_judgments(status="parse_error"))


_BROKEN = {"on": True}


def flaky_critic(request: ResponseRequest) -> ResponseReading:
    """``sum_critic`` that fails while ``_BROKEN['on']``: a judge whose API is down, then back."""
    if _BROKEN["on"] and request.output != "1":
        raise RuntimeError("service unavailable")
    return sum_critic(request)


def test_a_stopped_run_resumes_without_judging_anything_twice(tmp_path: Path) -> None:
    judge = ProgrammaticResponseJudge(flaky_critic, name="flaky", version="1")  # same fingerprint both runs
    items = _items(12)
    with Store(tmp_path / "s.db") as store:
        _BROKEN["on"] = True
        try:
            first = annotate_responses(store, judge, items, settings=EngineSettings(concurrency=1), progress=False)
        finally:
            _BROKEN["on"] = False
        # item 0 ("1") is judged, then 5 permanent errors in a row abort the run; the rest is never asked
        assert first.aborted is not None and (first.n_new, first.n_error, first.calls) == (1, 5, 6)
        assert first.n_missing == 6 and first.n_judgments == 12
        second = annotate_responses(store, judge, items, settings=EngineSettings(concurrency=1), progress=False)
        assert second.ok and (second.n_cached, second.n_new, second.calls) == (1, 11, 11)
        stored = store.get_response_judgments()
        assert len(stored) == 12 and all(j.status == "ok" for j in stored)
        assert sorted(j.attempts for j in stored) == [1] * 7 + [2] * 5  # the 5 errors were asked again


def test_a_pairwise_judge_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="compares pairs"):
        build_response_tasks(ProgrammaticJudge(longer_output_wins), _items(1))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="compares pairs"):
        build_response_tasks(get_judge("gpt-4o-mini-graded"), _items(1))  # type: ignore[arg-type]
    with pytest.raises(JudgeError, match="compares pairs"):
        get_response_judge("gpt-4o-mini-graded")
    assert get_response_judge("gpt-4o-mini-critique").reads == frozenset()
    outputs = [ModelOutput(instruction="What is 1 + 2?", output="3", generator="g", dataset="d")]
    assert responses_from_outputs(outputs) == [ResponseToJudge("What is 1 + 2?", "3", "g", dataset="d")]


# -- the critique protocol on the real llama.cpp server ---------------------------------------------------

CRITIQUE_ITEMS = [
    ResponseToJudge("What is 2 + 2?", "5", "m"),
    ResponseToJudge("Name the capital of France.", "Paris.", "m"),
    ResponseToJudge("Write one word meaning happy.", "Joyful", "m"),
]


@pytest.mark.model
@pytest.mark.slow
def test_critiques_from_the_real_server_keep_their_reply_and_resume(proxy: FaultProxy, tmp_path: Path) -> None:
    # the first two calls fail (429, 500): the engine retries them; the server answers every question once
    proxy.set_schedule({0: "429", 1: "500"})
    proxy.retry_after_s = 0.2
    judge = get_response_judge("smollm2-critique-server", base_url=proxy.base_url, decoding={"max_tokens": 48})
    settings = EngineSettings(concurrency=1, timeout_s=60.0, parse_retries=0, backoff_base_s=0.05)
    with Store(tmp_path / "s.db") as store:
        report = annotate_responses(store, judge, CRITIQUE_ITEMS, settings=settings, progress=False)
        assert report.n_judgments == 3 and report.n_missing == 0 and report.n_error == 0
        assert report.transient_retries == 2 and report.calls == 5 == proxy.requests
        assert report.n_new + report.n_parse_error == 3  # a tiny model may miss the verdict line: counted
        stored = store.get_response_judgments_by_key([j.key for j in report.judgments])
        assert len(stored) == 3
        parser = CritiqueParser()
        for j in report.judgments:
            assert stored[j.key] == j
            assert j.raw_completion and j.prompt_tokens and j.completion_tokens and j.attempts >= 1
            if j.status == "ok":  # re-reading the kept reply gives the stored verdict and critique
                again = parser.parse(Completion(text=j.raw_completion))
                assert (again.verdict, again.critique) == (j.verdict, j.critique)
                assert j.verdict in ("good", "bad") and j.critique and j.score is None
            else:
                assert j.status == "parse_error" and j.verdict is None and "verdict" in (j.error or "")
        # a rerun pays only for what failed to parse, and asks nothing of the rest
        before = proxy.requests
        rerun = annotate_responses(store, judge, CRITIQUE_ITEMS, settings=settings, progress=False)
        assert rerun.n_cached == report.n_new and rerun.calls == report.n_parse_error
        assert proxy.requests - before == report.n_parse_error
