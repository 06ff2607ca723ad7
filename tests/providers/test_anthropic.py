"""Anthropic provider: request/response handling against a local replay server, plus a live call when a key
is set. The replayed bodies follow Anthropic's documented Messages API formats (success, rate_limit_error with
retry-after, overloaded_error 529, api_error 500, authentication and invalid-request errors); they were written
from that documentation, not captured from the live API, which this machine cannot reach.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from pasture.judges import ChatRequest, JudgeRequest, PermanentError, TransientError, get_judge, get_provider
from pasture.judges.parsers import GRADED_VERDICTS
from replay_server import ReplayServer, Scripted

REQ = JudgeRequest("What is 2+2?", "Five, I think.", "4", shown_first=2)
SECRET = "sk-ant-test-DO-NOT-LEAK-0123456789"


def _judge(url: str):
    return get_judge("claude-graded", base_url=url)


def test_graded_verdict_request_and_response(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with ReplayServer([Scripted.recorded("anthropic_message_ok")]) as server:
        judge = _judge(server.url)
        v = asyncio.run(judge.judge(REQ))
        path, headers, body = server.requests[0]
    assert path == "/v1/messages"
    # the key travels in a header (x-api-key, or a bearer token in newer SDKs), and only there
    assert SECRET in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert SECRET not in str(body)
    assert body["model"] == "claude-haiku-4-5" and body["max_tokens"] == 512
    assert "temperature" not in body
    # the system turn goes to `system`; the user turn shows the model output (slot 2) first, as asked
    assert "careful reviewer" in body["system"]
    assert [m["role"] for m in body["messages"]] == ["user"]
    user = body["messages"][0]["content"]
    assert user.index("Answer A:\n4") < user.index("Answer B:\nFive, I think.")
    # A>>B in shown order = the output shown first (slot 2) much better -> preference 2.0 by slot
    assert v.status == "ok" and v.preference == GRADED_VERDICTS["B>>A"] == 2.0
    assert v.prompt_tokens == 187 and v.completion_tokens == 41
    assert v.cost_usd is None  # a replay server at a private URL has no list price
    assert SECRET not in repr(judge) and SECRET not in judge.fingerprint.model_dump_json()


def test_no_verdict_is_parse_error_with_raw_text(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with ReplayServer([Scripted.recorded("anthropic_message_no_verdict")]) as server:
        v = asyncio.run(_judge(server.url).judge(REQ))
    assert v.status == "parse_error" and v.preference is None
    assert v.raw_completion == "Both answers address the question, but I cannot decide between"


@pytest.mark.parametrize(
    ("name", "kind", "retry_after"),
    [
        ("anthropic_429", TransientError, 7.0),
        ("anthropic_529", TransientError, None),
        ("anthropic_500", TransientError, None),
        ("anthropic_401", PermanentError, None),
        ("anthropic_400", PermanentError, None),
    ],
)
def test_error_mapping(monkeypatch, name, kind, retry_after):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with ReplayServer([Scripted.recorded(name)]) as server:
        with pytest.raises(kind) as info:
            asyncio.run(_judge(server.url).judge(REQ))
        assert len(server.requests) == 1  # the SDK's own retries are off: the engine owns retries
    if kind is TransientError:
        assert info.value.retry_after == retry_after
    assert SECRET not in str(info.value)


def test_malformed_and_truncated_bodies_are_transient(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    ok = Scripted.recorded("anthropic_message_ok")
    for bad in (
        Scripted(200, b"<html>gateway</html>", {"content-type": "application/json"}),
        Scripted(200, ok.body, ok.headers, mode="truncate"),
        Scripted.json(200, {"type": "message", "content": None}),
    ):
        with ReplayServer([bad]) as server, pytest.raises(TransientError):
            asyncio.run(_judge(server.url).judge(REQ))


def test_unsupported_decoding_is_refused_not_ignored(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    provider = get_provider("anthropic", model="claude-haiku-4-5", base_url="http://127.0.0.1:9")
    for decoding in ({"logprobs": True, "top_logprobs": 5}, {"seed": 3}):
        with pytest.raises(PermanentError, match="does not support"):
            asyncio.run(provider.complete(ChatRequest(({"role": "user", "content": "hi"},), decoding)))


def test_missing_key_for_the_vendor_is_permanent(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    provider = get_provider("anthropic", model="claude-haiku-4-5")
    with pytest.raises(PermanentError, match="ANTHROPIC_API_KEY is not set"):
        asyncio.run(provider.complete(ChatRequest(({"role": "user", "content": "hi"},), {"max_tokens": 5})))


@pytest.mark.skipif(
    not os.environ.get("ANTHROPIC_API_KEY"),
    reason="live Anthropic test runs only when ANTHROPIC_API_KEY is set (skipped otherwise, in CI too: no key there)",
)
def test_live_anthropic_graded_judge():
    judge = get_judge("claude-graded", decoding={"max_tokens": 300})
    v = asyncio.run(judge.judge(JudgeRequest("What is 2+2?", "4", "5", shown_first=1)))
    assert v.status == "ok", v.raw_completion
    assert v.preference is not None and v.preference < 1.5  # '4' (reference slot) is right, '5' wrong
    assert v.prompt_tokens and v.completion_tokens and v.cost_usd and v.cost_usd > 0
