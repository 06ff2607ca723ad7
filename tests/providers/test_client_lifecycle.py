"""Async SDK clients are closed on the loop that made them: no "Event loop is closed" report afterwards.

Every ``asyncio.run`` (a CLI command, a test, a benchmark repeat) makes a new event loop. A client left open
on an ended loop is garbage-collected later, and the SDK's ``__del__`` then schedules its ``aclose()`` on
whatever loop runs at that moment, where it fails: "Task exception was never retrieved ... RuntimeError:
Event loop is closed". These tests make calls in successive ``asyncio.run`` calls against real HTTP servers
on 127.0.0.1 and collect every error asyncio reports (its logger, the loop exception handler) and every
"Exception ignored" (``sys.unraisablehook``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import pickle
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pasture.judges import JudgeRequest, LLMJudge, get_judge
from pasture.providers import get_provider
from pasture.providers.base import ChatRequest
from replay_server import ReplayServer, Scripted

OK = {
    "id": "x",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "B"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
HI = ChatRequest(({"role": "user", "content": "hi"},), {"max_tokens": 1})


class _Collect(logging.Handler):
    def __init__(self, reports: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.reports = reports

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        self.reports.append(f"asyncio: {record.getMessage()} {exc!r}")


@pytest.fixture
def loop_reports(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Everything asyncio (its default exception handler logs to the ``asyncio`` logger) or the interpreter
    (``sys.unraisablehook``) reports as an unhandled error while the test runs."""
    reports: list[str] = []
    gc.collect()  # garbage of earlier tests is theirs, not this test's
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reports.append(f"unraisable: {u.exc_value!r}"))
    handler = _Collect(reports)
    logging.getLogger("asyncio").addHandler(handler)
    try:
        yield reports
        gc.collect()
    finally:
        logging.getLogger("asyncio").removeHandler(handler)


def _successive_runs(call: Callable[[], Any], n: int = 2) -> list[Any]:
    """``call()`` (a coroutine) in ``n`` successive ``asyncio.run``; then a last loop in which garbage is
    collected, the moment an unclosed client from an earlier loop would schedule its failing close."""
    out = [asyncio.run(call()) for _ in range(n)]

    async def collect() -> None:
        gc.collect()
        await asyncio.sleep(0.05)  # let any task scheduled by a finalizer run (and fail)

    asyncio.run(collect())
    gc.collect()
    return out


def test_openai_provider_closes_its_client_when_each_loop_ends(loop_reports: list[str]) -> None:
    with ReplayServer([Scripted.json(200, OK)]) as server:
        provider = get_provider("openai", model="m", base_url=server.url + "/v1")
        completions = _successive_runs(lambda: provider.complete(HI), n=3)
        assert [c.text for c in completions] == ["B", "B", "B"] and len(server.requests) == 3
    assert loop_reports == []


def test_anthropic_provider_closes_its_client_when_each_loop_ends(loop_reports: list[str]) -> None:
    body = {
        "id": "msg",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [{"type": "text", "text": "B"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    with ReplayServer([Scripted.json(200, body)]) as server:
        provider = get_provider("anthropic", model="claude", base_url=server.url, api_key="test-key")
        completions = _successive_runs(lambda: provider.complete(HI))
        assert [c.text for c in completions] == ["B", "B"]
    assert loop_reports == []


def test_explicit_aclose_closes_the_loops_client_and_a_later_call_opens_a_new_one(loop_reports: list[str]) -> None:
    with ReplayServer([Scripted.json(200, OK)]) as server:
        provider = get_provider("openai", model="m", base_url=server.url + "/v1")

        async def twice() -> list[str]:
            first = await provider.complete(HI)
            client = await provider._clients.get()  # type: ignore[attr-defined]
            await provider.aclose()  # type: ignore[attr-defined]
            assert client.is_closed
            second = await provider.complete(HI)
            assert (await provider._clients.get()) is not client  # type: ignore[attr-defined]
            return [first.text, second.text]

        assert asyncio.run(twice()) == ["B", "B"]
    assert loop_reports == []


@pytest.mark.model
def test_judge_on_the_real_server_in_successive_loops_reports_no_error(llama_server: Any, loop_reports: list[str]):
    judge = get_judge("smollm2-logprob-server", base_url=llama_server.base_url)
    assert isinstance(judge, LLMJudge)
    request = JudgeRequest("What is 2+2?", "4", "Five.", shown_first=1)
    verdicts = _successive_runs(lambda: judge.judge(request))
    assert all(v.status in ("ok", "parse_error") and v.raw_completion for v in verdicts)
    assert loop_reports == []


def test_a_pickled_provider_makes_its_own_client_and_both_copies_keep_working(loop_reports: list[str]) -> None:
    """A judge sent to another process (a Ray worker) is pickled: its open client stays behind, the copy opens
    its own on its own loop, and the original is unaffected (pasture.annotate.ray_backend relies on this)."""
    with ReplayServer([Scripted.json(200, OK)]) as server:
        judge = get_judge("smollm2-logprob-server", base_url=server.url + "/v1")
        assert isinstance(judge, LLMJudge)
        request = JudgeRequest("What is 2+2?", "4", "Five.", shown_first=1)

        async def judge_and_pickle() -> tuple[Any, bytes]:
            verdict = await judge.judge(request)  # the original's client is open on this loop while pickling
            return verdict, pickle.dumps(judge)

        first, payload = asyncio.run(judge_and_pickle())
        copy = pickle.loads(payload)
        assert copy.fingerprint == judge.fingerprint and copy.provider is not judge.provider
        assert copy.provider._clients._make.__self__ is copy.provider  # the copy's client factory is its own
        verdicts = [*_successive_runs(lambda: copy.judge(request)), asyncio.run(judge.judge(request))]
        assert first.raw_completion and "B" in first.raw_completion  # every call reached the server and was read
        assert [(v.status, v.raw_completion) for v in verdicts] == [(first.status, first.raw_completion)] * 3
        assert len(server.requests) == 4
    assert loop_reports == []
