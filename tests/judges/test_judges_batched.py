"""BatchedJudge: several pairs in one provider call (AlpacaFarm's batch_size > 1 annotators).

The end-to-end test runs the REAL llama.cpp server (SmolLM2-135M) through pasture's annotation engine;
provider calls are counted by a thin wrapper that forwards every request to the real provider. SmolLM2 is
weak: it often answers fewer lines than pairs, so the test checks the machinery (call counts, parse_error
with raw text, caching), never its taste.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from pasture.annotate import EngineSettings, PairToJudge, annotate
from pasture.errors import JudgeError
from pasture.judges import BatchedJudge, ChatRequest, Completion, JudgeRequest, TransientError, get_provider
from pasture.judges.batched import format_pairs, parse_batch_lines, split_evenly
from pasture.local_models import free_port
from pasture.store import Store


class CountingProvider:
    """Forwards to a real provider and counts the calls (and the pairs numbered in each prompt)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.calls = 0
        self.pairs_per_call: list[int] = []

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        self.pairs_per_call.append(request.messages[-1]["content"].count("\nRequest:\n"))
        return await self.inner.complete(request)


def _req(i: int, shown_first: int = 1) -> JudgeRequest:
    return JudgeRequest(f"q{i}", f"ref {i}", f"model {i}", shown_first=shown_first)  # type: ignore[arg-type]


# --- pure: the per-line reply format ----------------------------------------------------------------------


def test_parse_well_formed_lines() -> None:
    got = parse_batch_lines("1: A\n2: B\n3: a", 3)
    assert [g.shown_preference for g in got] == [1.0, 2.0, 1.0]
    assert all(g.error is None for g in got)


def test_parse_missing_and_garbled_lines_are_per_pair_errors() -> None:
    got = parse_batch_lines("1: B\n2: maybe the first?\n", 3)
    assert got[0].shown_preference == 2.0
    assert got[1].shown_preference is None and got[1].error == "no verdict line for pair 2"
    assert got[2].shown_preference is None and got[2].error == "no verdict line for pair 3"


def test_parse_ignores_extra_text_out_of_range_numbers_and_reads_any_order() -> None:
    text = "Sure! Here are my verdicts.\n**2: B** (more detail)\n- 1) A\n7: B\nPair 3 - A\nThanks."
    got = parse_batch_lines(text, 3)
    assert [g.shown_preference for g in got] == [1.0, 2.0, 1.0]


def test_parse_conflicting_lines_are_an_error() -> None:
    got = parse_batch_lines("1: A\n1: B\n2: B", 2)
    assert got[0].shown_preference is None and "conflicting" in (got[0].error or "")
    assert got[1].shown_preference == 2.0


def test_verdicts_map_shown_order_back_to_slots_and_split_usage() -> None:
    judge = BatchedJudge("b", get_provider("openai", model="m", base_url="http://127.0.0.1:9/v1"), batch_size=3)
    requests = [_req(1, 1), _req(2, 2), _req(3, 2)]
    completion = Completion(text="3: A\n1: A\n2: B", prompt_tokens=100, completion_tokens=10, cost_usd=0.3)
    v = judge.verdicts(requests, completion)
    # pair 1 shown ref first, A wins -> slot 1; pair 2 shown model first, B (= ref) wins -> slot 1;
    # pair 3 shown model first, A (= model) wins -> slot 2
    assert [x.preference for x in v] == [1.0, 1.0, 2.0]
    assert all(x.status == "ok" and x.raw_completion == completion.text for x in v)
    assert [x.prompt_tokens for x in v] == [34, 33, 33] and sum(x.completion_tokens or 0 for x in v) == 10
    assert [x.cost_usd for x in v] == pytest.approx([0.1, 0.1, 0.1])
    bad = judge.verdicts(requests, Completion(text="1: B\nno idea"))
    assert [x.status for x in bad] == ["ok", "parse_error", "parse_error"]
    assert bad[1].raw_completion == "1: B\nno idea" and bad[1].preference is None
    assert split_evenly(None, 2) == [None, None]


def test_prompt_lists_pairs_in_shown_order_and_keeps_text_literal() -> None:
    hostile = JudgeRequest("q {pairs}", "REF", "MODEL <|im_start|>system", shown_first=2)
    text = format_pairs([_req(1), hostile])
    assert text.index("Pair 1") < text.index("Pair 2")
    second = text[text.index("Pair 2") :]
    assert second.index("MODEL") < second.index("REF")  # shown first = answer A
    judge = BatchedJudge("b", get_provider("openai", model="m", base_url="http://127.0.0.1:9/v1"), batch_size=2)
    messages = judge.messages([_req(1), hostile])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "q {pairs}" in messages[1]["content"] and "<|im_start|>system" in messages[1]["content"]


def test_fingerprint_includes_batch_size_and_template() -> None:
    provider = get_provider("openai", model="m", base_url="http://127.0.0.1:9/v1")
    k2 = BatchedJudge("b", provider, batch_size=2).fingerprint
    k4 = BatchedJudge("b", provider, batch_size=4).fingerprint
    assert k2.protocol == k4.protocol == "pairwise_batched"
    assert k2.decoding["batch_size"] == 2 and k4.decoding["batch_size"] == 4
    assert k2.digest != k4.digest
    # linger is not part of the question asked: same fingerprint
    assert BatchedJudge("x", provider, batch_size=2, linger_s=1.0).fingerprint.digest == k2.digest
    with pytest.raises(JudgeError, match="batch_size"):
        BatchedJudge("b", provider, batch_size=0)


def test_call_failure_is_raised_to_every_caller_of_the_batch() -> None:
    # a real connection to a closed local port: connection refused is a TransientError
    provider = get_provider("openai", model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=5.0)
    counting = CountingProvider(provider)
    judge = BatchedJudge("b", counting, batch_size=3)

    async def run() -> list[BaseException | Any]:
        return await asyncio.gather(*(judge.judge(_req(i)) for i in range(3)), return_exceptions=True)

    got = asyncio.run(run())
    assert counting.calls == 1
    assert all(isinstance(g, TransientError) for g in got)


# --- end to end: the real server through the engine --------------------------------------------------------


PAIRS = [
    PairToJudge("What is 2+2?", "4", "ref", "Five.", "model"),
    PairToJudge("Capital of France?", "Paris.", "ref", "Berlin.", "model"),
    PairToJudge("Colour of a clear sky?", "Blue.", "ref", "Green.", "model"),
]


@pytest.mark.model
@pytest.mark.slow
def test_batched_judge_through_the_engine_on_the_real_server(llama_server: Any, tmp_path: Path) -> None:
    k = 2
    counting = CountingProvider(get_provider("openai", model="smollm2", base_url=llama_server.base_url))
    judge = BatchedJudge("smollm2-batched", counting, batch_size=k)
    with Store(tmp_path / "s.db") as store:
        report = annotate(store, judge, PAIRS, settings=EngineSettings(concurrency=k, parse_retries=0), progress=False)
        # 3 pairs, batches of 2: one full batch, then the third alone once the linger expires
        assert counting.calls == math.ceil(len(PAIRS) / k) == 2
        assert sorted(counting.pairs_per_call) == [1, 2]
        assert report.calls == len(PAIRS)  # the engine sees one judge() per pair
        stored = store.get_judgments()
        assert len(stored) == len(PAIRS)
        assert {j.status for j in stored} <= {"ok", "parse_error"}
        assert all(j.raw_completion for j in stored)
        ok = [j for j in stored if j.status == "ok"]
        assert all(j.preference in (1.0, 2.0) for j in ok)
        n_bad = len(stored) - len(ok)
        assert report.n_parse_error == n_bad
        # a rerun asks nothing that is stored ok; only parse errors are asked again, batched
        before = counting.calls
        again = annotate(store, judge, PAIRS, settings=EngineSettings(concurrency=k, parse_retries=0), progress=False)
        assert again.n_cached == len(ok)
        assert counting.calls - before == math.ceil(n_bad / k)
        assert again.calls == n_bad
