"""OpenAI-compatible provider: error mapping for responses a healthy server never sends, replayed locally.

The happy path runs against the real llama.cpp server (test_judges_server.py); here a replay server sends
429 with Retry-After, 5xx, 4xx, a truncated body and bodies that are not an OpenAI response.
"""

from __future__ import annotations

import asyncio

import pytest

from pasture.judges import ChatRequest, PermanentError, TransientError, get_provider
from replay_server import ReplayServer, Scripted

SECRET = "sk-test-DO-NOT-LEAK-abcdef0123456789"
REQ = ChatRequest(({"role": "user", "content": "hi"},), {"max_tokens": 1, "logprobs": True, "top_logprobs": 2})
OK = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "length",
            "message": {"role": "assistant", "content": "B"},
            "logprobs": {
                "content": [
                    {
                        "token": "B",
                        "logprob": -0.1,
                        "top_logprobs": [{"token": "B", "logprob": -0.1}, {"token": "A", "logprob": -2.4}],
                    }
                ]
            },
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
}


def _call(url: str, **kw):
    provider = get_provider("openai", model="m", base_url=url + "/v1", timeout_s=5, **kw)
    return asyncio.run(provider.complete(REQ))


@pytest.mark.parametrize(
    ("scripted", "kind", "retry_after"),
    [
        (Scripted.json(429, {"error": {"message": "slow down"}}, **{"retry-after": "3"}), TransientError, 3.0),
        (Scripted.json(429, {"error": {"message": "slow down"}}, **{"retry-after-ms": "1500"}), TransientError, 1.5),
        (Scripted.json(500, {"error": {"message": "boom"}}), TransientError, None),
        (Scripted.json(503, {"error": {"message": "loading"}}), TransientError, None),
        (Scripted(502, b"<html>bad gateway</html>", {"content-type": "text/html"}), TransientError, None),
        (Scripted.json(401, {"error": {"message": f"Incorrect API key provided: {SECRET}"}}), PermanentError, None),
        (
            Scripted.json(401, {"error": {"message": "Incorrect API key provided: sk-proj-****************6789"}}),
            PermanentError,
            None,
        ),
        (Scripted.json(404, {"error": {"message": "no such model"}}), PermanentError, None),
        (Scripted.json(400, {"error": {"message": "bad request"}}), PermanentError, None),
    ],
)
def test_status_mapping_without_sdk_retries(monkeypatch, scripted, kind, retry_after):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ReplayServer([scripted]) as server:
        with pytest.raises(kind) as info:
            _call(server.url)
        assert len(server.requests) == 1
        assert server.requests[0][1]["authorization"] == f"Bearer {SECRET}"
    if kind is TransientError:
        assert info.value.retry_after == retry_after
    assert SECRET not in str(info.value) and "6789" not in str(info.value)


@pytest.mark.parametrize(
    "scripted",
    [
        Scripted(200, b"this is not json", {"content-type": "application/json"}),
        Scripted(200, b"<html>captive portal</html>", {"content-type": "text/html"}),
        Scripted.json(200, {"choices": []}),
        Scripted.json(200, {"object": "chat.completion"}),
        Scripted(200, b"", {}),
    ],
)
def test_garbage_bodies_are_transient(scripted):
    with ReplayServer([scripted]) as server, pytest.raises(TransientError):
        _call(server.url)


def test_truncated_body_is_transient():
    import json

    body = json.dumps(OK).encode()
    truncated = Scripted(200, body, {"content-type": "application/json"}, mode="truncate")
    with ReplayServer([truncated]) as server, pytest.raises(TransientError):
        _call(server.url)


def test_good_reply_parsed_and_key_placeholder_for_own_server(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ReplayServer([Scripted.json(200, OK)]) as server:
        c = _call(server.url)
        sent = server.requests[0][2]
        assert server.requests[0][1]["authorization"] == "Bearer no-key"
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2 and sent["max_tokens"] == 1
    assert c.text == "B" and c.top_logprobs == ({"B": -0.1, "A": -2.4},)
    assert c.prompt_tokens == 12 and c.completion_tokens == 1 and c.cost_usd is None


def test_the_body_holds_exactly_the_model_messages_and_decoding_with_top_k_as_a_field():
    """The provider posts its own JSON (the SDK's plain POST): what the server gets is pinned here, ``top_k``
    included as the top-level field local servers read, and nothing the request did not ask for."""
    decoding = {"max_tokens": 3, "temperature": 0.0, "top_k": 5, "seed": 7, "stop": "END", "top_logprobs": 2}
    with ReplayServer([Scripted.json(200, OK)]) as server:
        provider = get_provider("openai", model="m", base_url=server.url + "/v1", timeout_s=5)
        asyncio.run(provider.complete(ChatRequest(({"role": "user", "content": "hi"},), decoding)))
        path, headers, sent = server.requests[0]
    assert path == "/v1/chat/completions" and headers["content-type"] == "application/json"
    assert sent == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3,
        "temperature": 0.0,
        "seed": 7,
        "stop": ["END"],
        "top_k": 5,
        "logprobs": True,
        "top_logprobs": 2,
    }


def test_completions_endpoint_sends_a_prompt_and_reads_per_position_alternatives():
    """The legacy /completions shape (what llama.cpp's server sends for endpoint="completions")."""
    body = {
        "id": "cmpl",
        "object": "text_completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "text": " 4\n",
                "finish_reason": "length",
                "logprobs": {
                    "tokens": [" 4", "\n"],
                    "text_offset": [3, 5],
                    "token_logprobs": [-0.2, -1.0],
                    "top_logprobs": [{" 4": -0.2, " four": -1.9}, {"\n": -1.0, ".": -1.2}],
                },
            }
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
    }
    with ReplayServer([Scripted.json(200, body)]) as server:
        provider = get_provider("openai", model="m", base_url=server.url + "/v1", endpoint="completions")
        messages = ({"role": "system", "content": "Add."}, {"role": "user", "content": "2+2="})
        c = asyncio.run(
            provider.complete(ChatRequest(messages, {"max_tokens": 2, "logprobs": True, "top_logprobs": 2}))
        )
        path, _, sent = server.requests[0]
    assert path == "/v1/completions" and sent["prompt"] == "Add.\n\n2+2=" and sent["logprobs"] == 2
    assert c.text == " 4\n" and c.top_logprobs == ({" 4": -0.2, " four": -1.9}, {"\n": -1.0, ".": -1.2})
    assert (c.prompt_tokens, c.completion_tokens) == (4, 2)


def test_hanging_server_times_out_as_transient():
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        provider = get_provider("openai", model="m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=0.5)
        with pytest.raises(TransientError, match="timed out"):
            asyncio.run(provider.complete(REQ))
    finally:
        listener.close()


def test_vendor_without_key_is_permanent(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(PermanentError, match="OPENAI_API_KEY is not set"):
        asyncio.run(get_provider("openai", model="gpt-4o-mini").complete(REQ))
