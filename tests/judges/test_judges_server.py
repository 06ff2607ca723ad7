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
from pasture.judges.parsers import GRADED_VERDICTS, LabelLogprobParser
from pasture.local_models import free_port

pytestmark = [pytest.mark.model, pytest.mark.slow]

PAIR = ("What is 2+2?", "4", "Five, I think.")


def _run(coro):
    return asyncio.run(coro)


def test_logprob_judge_on_server_maps_shown_order_to_slots(llama_server):
    judge = get_judge("smollm2-logprob-server", base_url=llama_server.base_url)
    verdicts = {}
    for shown_first in (1, 2):
        v = _run(judge.judge(JudgeRequest(*PAIR, shown_first=shown_first)))
        assert v.status == "ok", v.error
        raw = json.loads(v.raw_completion)
        # re-parse the stored raw completion: the shown-order preference, mapped to slots by hand
        parser = LabelLogprobParser("A", "B", loose=True)
        from pasture.judges.base import Completion

        shown = parser.parse(Completion(text=raw["text"], top_logprobs=tuple(raw["top_logprobs"])))
        expected = shown if shown_first == 1 else 3 - shown
        assert v.preference == pytest.approx(expected)
        # with 20 alternatives both labels are present: a soft preference, strictly inside (1, 2)
        assert 1.0 < v.preference < 2.0
        assert v.prompt_tokens and v.prompt_tokens > 50 and v.completion_tokens == 1
        assert v.latency_s and v.latency_s > 0
        assert v.cost_usd is None  # a user's own server has no list price
        verdicts[shown_first] = v
    # the prompts differ only by the order of the outputs, so the label probabilities differ too
    assert json.loads(verdicts[1].raw_completion) != json.loads(verdicts[2].raw_completion)


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
    assert c.text and c.completion_tokens and c.completion_tokens <= 4 and c.top_logprobs == ()
    text = get_provider("openai", model="smollm2", base_url=llama_server.base_url, endpoint="completions")
    c2 = _run(
        text.complete(
            ChatRequest(
                messages=({"role": "user", "content": "2+2="},),
                decoding={"max_tokens": 2, "temperature": 0, "logprobs": True, "top_logprobs": 3},
            )
        )
    )
    assert len(c2.top_logprobs) == 2 and all(len(pos) == 3 for pos in c2.top_logprobs)
    assert all(lp <= 0 and math.isfinite(lp) for pos in c2.top_logprobs for lp in pos.values())
    assert json.loads(c2.raw)["object"] == "text_completion"


def test_connection_refused_is_transient_and_unknown_path_is_permanent(llama_server):
    dead = get_provider("openai", model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=5)
    with pytest.raises(TransientError, match="connection"):
        _run(dead.complete(ChatRequest(messages=({"role": "user", "content": "hi"},), decoding={"max_tokens": 1})))
    wrong = get_provider("openai", model="m", base_url=llama_server.base_url.replace("/v1", "/nope"))
    with pytest.raises(PermanentError, match="HTTP 404"):
        _run(wrong.complete(ChatRequest(messages=({"role": "user", "content": "hi"},), decoding={"max_tokens": 1})))
    with pytest.raises(PermanentError, match="unknown decoding"):
        _run(wrong.complete(ChatRequest(messages=(), decoding={"max_token": 1})))


def test_same_judge_in_process_matches_the_server(smollm2_gguf, llama_server):
    """Same weights, same chat template, same prompt: llama.cpp in process reports the server's logprobs."""
    local = get_judge("smollm2-logprob")
    remote = get_judge("smollm2-logprob-server", base_url=llama_server.base_url)
    for shown_first in (1, 2):
        request = JudgeRequest(*PAIR, shown_first=shown_first)
        v = _run(local.judge(request))
        w = _run(remote.judge(request))
        assert v.status == "ok", v.error
        assert 1.0 < v.preference < 2.0 and v.cost_usd == 0.0 and v.completion_tokens == 1
        assert v.prompt_tokens == w.prompt_tokens
        assert v.preference == pytest.approx(w.preference, abs=1e-3)
        lp_local = json.loads(v.raw_completion)["top_logprobs"][0]
        lp_remote = json.loads(w.raw_completion)["top_logprobs"][0]
        assert set(lp_local) == set(lp_remote)
        assert all(lp_local[t] == pytest.approx(lp_remote[t], abs=1e-3) for t in lp_local)
    fp = local.fingerprint
    assert fp.provider == "llama_cpp" and fp.weights_digest and len(fp.weights_digest) == 64
    # the server judge names the same weights (weights_path), but a different provider: not interchangeable
    assert remote.fingerprint.weights_digest == fp.weights_digest and remote.fingerprint.digest != fp.digest
