"""Judges against the REAL llama.cpp server (SmolLM2-135M on 127.0.0.1) and the same model in process.

SmolLM2-135M is weak and position-biased: these tests check the machinery (requests, logprobs, parsing,
slot mapping, errors), never its taste. Pairs are short and max_tokens small to keep calls ~1-2 s.
"""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from pasture.judges import (
    ChatRequest,
    JudgeRequest,
    PermanentError,
    TransientError,
    get_judge,
    get_provider,
)
from pasture.judges.base import Completion
from pasture.judges.parsers import GRADED_VERDICTS, LabelLogprobParser, ParseFailure
from pasture.local_models import free_port
from replay_server import ReplayServer, Scripted

pytestmark = [pytest.mark.model, pytest.mark.slow]

PAIR = ("What is 2+2?", "4", "Five, I think.")


def _run(coro):
    return asyncio.run(coro)


def _reparse(judge, verdict) -> float:
    """The shown-order preference re-read from the stored raw reply by the judge's own parser (no new call)."""
    return judge.parser.parse(Completion(**json.loads(verdict.raw_completion)))


def test_logprob_judge_on_server_keeps_a_reparsable_reply_mapped_to_slots(llama_server):
    """Which label SmolLM2 prefers, and whether both labels are among its top alternatives, depends on the CPU
    (llama.cpp's kernels differ in rounding); only the contract is asserted: bounds, raw reply kept, and the
    stored preference equal to the stored reply re-parsed and mapped to slots by hand."""
    judge = get_judge("smollm2-logprob-server", base_url=llama_server.base_url)
    for shown_first in (1, 2):
        v = _run(judge.judge(JudgeRequest(*PAIR, shown_first=shown_first)))
        assert v.raw_completion
        assert v.prompt_tokens and v.prompt_tokens > 50 and v.completion_tokens == 1
        assert v.latency_s and v.latency_s > 0
        assert v.cost_usd is None  # a user's own server has no list price
        if v.status == "parse_error":  # neither label among the alternatives: counted as failed, reply kept
            assert v.preference is None and "neither" in (v.error or "")
            with pytest.raises(ParseFailure):
                _reparse(judge, v)
            continue
        assert v.status == "ok", v.error
        assert 1.0 <= v.preference <= 2.0
        shown = _reparse(judge, v)
        assert v.preference == pytest.approx(shown if shown_first == 1 else 3 - shown)


def test_one_real_reply_maps_to_p_and_3_minus_p_by_shown_order(llama_server):
    """A real reply of the server, replayed for both shown orders: the verdict is p and 3 - p by slot."""
    judge = get_judge("smollm2-logprob-server", base_url=llama_server.base_url)
    first = JudgeRequest(*PAIR, shown_first=1)
    second = JudgeRequest(*PAIR, shown_first=2)
    (m1,), (m2,) = judge.messages(first), judge.messages(second)
    assert "Answer A:\n4\n" in m1[-1]["content"] and "Answer B:\nFive, I think." in m1[-1]["content"]
    assert "Answer A:\nFive, I think.\n" in m2[-1]["content"] and "Answer B:\n4" in m2[-1]["content"]
    reply = _run(judge.provider.complete(ChatRequest(messages=m1, decoding=dict(judge.decoding))))
    assert reply.raw
    with ReplayServer([Scripted(200, reply.raw.encode(), {"content-type": "application/json"})]) as server:
        replayed = get_judge("smollm2-logprob-server", base_url=server.url + "/v1")
        v1, v2 = (_run(replayed.judge(r)) for r in (first, second))
    assert v1.raw_completion == v2.raw_completion
    try:
        p = judge.parser.parse(reply)
    except ParseFailure:
        assert v1.status == v2.status == "parse_error" and v1.preference is None and v2.preference is None
        return
    assert v1.status == v2.status == "ok" and 1.0 <= p <= 2.0
    assert v1.preference == pytest.approx(p) and v2.preference == pytest.approx(3.0 - p)


def test_graded_judge_on_server_keeps_raw_text(llama_server):
    judge = get_judge("smollm2-graded-server", base_url=llama_server.base_url, decoding={"max_tokens": 24})
    v = _run(judge.judge(JudgeRequest(*PAIR, shown_first=1)))
    assert v.raw_completion and len(v.raw_completion) > 3
    assert v.completion_tokens and 0 < v.completion_tokens <= 24
    if v.status == "ok":
        assert v.preference in set(GRADED_VERDICTS.values())
    else:
        assert v.status == "parse_error" and v.preference is None and "verdict" in (v.error or "")


def test_provider_chat_and_completions_endpoints_for_generation(llama_server):
    chat = get_provider("openai", model="smollm2", base_url=llama_server.base_url)
    c = _run(
        chat.complete(
            ChatRequest(
                messages=({"role": "user", "content": "Say hello."},),
                decoding={"max_tokens": 4, "temperature": 0, "seed": 1, "stop": ["\n\n"]},
            )
        )
    )
    assert c.text and c.completion_tokens and c.completion_tokens <= 4
    with pytest.raises(ParseFailure, match="no logprobs"):  # none asked for, none given
        LabelLogprobParser("A", "B").parse(c)
    text = get_provider("openai", model="smollm2", base_url=llama_server.base_url, endpoint="completions")
    c2 = _run(
        text.complete(
            ChatRequest(
                messages=({"role": "user", "content": "2+2="},),
                decoding={"max_tokens": 2, "temperature": 0, "logprobs": True},
            )
        )
    )
    body = json.loads(c2.raw)
    assert body["object"] == "text_completion" and c2.completion_tokens and c2.completion_tokens <= 2
    token_logprobs = body["choices"][0]["logprobs"]["token_logprobs"]
    assert len(token_logprobs) == c2.completion_tokens
    assert all(lp <= 0 and math.isfinite(lp) for lp in token_logprobs)


def test_connection_refused_is_transient_and_unknown_path_is_permanent(llama_server):
    dead = get_provider("openai", model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=5)
    with pytest.raises(TransientError, match="connection"):
        _run(dead.complete(ChatRequest(messages=({"role": "user", "content": "hi"},), decoding={"max_tokens": 1})))
    wrong = get_provider("openai", model="m", base_url=llama_server.base_url.replace("/v1", "/nope"))
    with pytest.raises(PermanentError, match="HTTP 404"):
        _run(wrong.complete(ChatRequest(messages=({"role": "user", "content": "hi"},), decoding={"max_tokens": 1})))
    with pytest.raises(PermanentError, match="unknown decoding"):
        _run(wrong.complete(ChatRequest(messages=(), decoding={"max_token": 1})))


def _same_alternatives(a: dict[str, float], b: dict[str, float], tol: float) -> bool:
    """Two top-k lists from two runs of the same weights on this machine agree: shared tokens have the same
    logprob (within ``tol``: server and in-process calls may batch, hence round, differently), and a token in
    only one list sits at the other list's cut-off (a near-tie at rank k may fall either way)."""
    if not a or not b:
        return a == b
    for tok in a.keys() & b.keys():
        if abs(a[tok] - b[tok]) > tol:
            return False
    cut_a, cut_b = min(a.values()), min(b.values())
    return all(a[t] <= cut_b + tol for t in a.keys() - b.keys()) and all(
        b[t] <= cut_a + tol for t in b.keys() - a.keys()
    )


def test_same_judge_in_process_matches_the_server(smollm2_gguf, llama_server):
    """Same weights, same chat template, same prompt: llama.cpp in process reports the server's logprobs.

    Two runs on this machine compared with each other; nothing about SmolLM2's own numbers is assumed."""
    local = get_judge("smollm2-logprob")
    remote = get_judge("smollm2-logprob-server", base_url=llama_server.base_url)
    for shown_first in (1, 2):
        request = JudgeRequest(*PAIR, shown_first=shown_first)
        v = _run(local.judge(request))
        w = _run(remote.judge(request))
        assert v.cost_usd == 0.0 and v.completion_tokens == w.completion_tokens == 1
        assert v.prompt_tokens == w.prompt_tokens
        assert v.status == w.status, (v.error, w.error)
        if v.status == "ok":
            assert 1.0 <= v.preference <= 2.0
            assert v.preference == pytest.approx(w.preference, abs=1e-3)
        local_reply, remote_reply = json.loads(v.raw_completion), json.loads(w.raw_completion)
        assert local_reply.keys() == remote_reply.keys()
        for key, value in local_reply.items():
            if isinstance(value, list):  # per generated position: the top alternatives
                assert len(value) == len(remote_reply[key])
                assert all(_same_alternatives(a, b, 1e-3) for a, b in zip(value, remote_reply[key], strict=True))
            else:
                assert value == remote_reply[key], key
    fp = local.fingerprint
    assert fp.provider == "llama_cpp" and fp.weights_digest and len(fp.weights_digest) == 64
    # the server judge names the same weights (weights_path), but a different provider: not interchangeable
    assert remote.fingerprint.weights_digest == fp.weights_digest and remote.fingerprint.digest != fp.digest
