"""A pool file member with ``batch_size``: built as a BatchedJudge and labeled in full batches.

The labeling runs against the REAL llama.cpp server (SmolLM2-135M); provider calls are counted by a thin
wrapper that forwards every request to the real provider.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from pasture.annotate import EngineSettings
from pasture.errors import InputError
from pasture.judges import BatchedJudge, ChatRequest, Completion, LLMJudge
from pasture.simulate.labels import OutputPair, batch_size_of, label_pairs
from pasture.simulate.pool_files import load_pool
from pasture.store import Store


class CountingProvider:
    """Forwards to a real provider and counts the calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.calls = 0

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        return await self.inner.complete(request)


def _pool_file(tmp_path: Path, member: str) -> Path:
    path = tmp_path / "pool.toml"
    path.write_text(f'name = "batched"\np = 0.0\nseed = 3\n\n[[member]]\n{member}\n', encoding="utf-8")
    return path


def test_pool_file_batch_size_builds_a_batched_judge(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/v1"
    pool = load_pool(
        _pool_file(tmp_path, 'name = "b4"\njudge = "smollm2-logprob-server"\nbatch_size = 4'), base_url=url
    )
    judge = pool.members[0].judge
    assert isinstance(judge, BatchedJudge) and judge.batch_size == 4 and batch_size_of(judge) == 4
    assert judge.fingerprint.protocol == "pairwise_batched" and judge.fingerprint.decoding["batch_size"] == 4
    plain = load_pool(_pool_file(tmp_path, 'name = "b1"\njudge = "smollm2-logprob-server"\nbatch_size = 1'))
    assert isinstance(plain.members[0].judge, LLMJudge) and batch_size_of(plain.members[0].judge) == 1
    with pytest.raises(InputError, match="batch_size must be an integer >= 1"):
        load_pool(_pool_file(tmp_path, 'judge = "smollm2-logprob-server"\nbatch_size = 0'))
    with pytest.raises(InputError, match="persona"):
        load_pool(_pool_file(tmp_path, 'judge = "smollm2-logprob-server"\npersona = "concise"\nbatch_size = 2'))


@pytest.mark.model
@pytest.mark.slow
def test_batched_pool_member_labels_in_full_batches_on_the_real_server(llama_server: Any, tmp_path: Path) -> None:
    k = 4
    pool = load_pool(
        _pool_file(tmp_path, f'name = "b4"\njudge = "smollm2-logprob-server"\nbatch_size = {k}'),
        base_url=llama_server.base_url,
    )
    judge = pool.members[0].judge
    assert isinstance(judge, BatchedJudge)
    counting = CountingProvider(judge.provider)
    judge.provider = counting
    pairs = [
        OutputPair(instruction=q, output_1=a, generator_1="x", output_2=b, generator_2="y")
        for q, a, b in [
            ("What is 2+2?", "4", "Five."),
            ("Capital of France?", "Paris.", "Berlin."),
            ("Colour of a clear sky?", "Blue.", "Green."),
            ("Opposite of hot?", "Cold.", "Warm."),
        ]
    ]
    with Store(tmp_path / "s.db") as store:
        # concurrency=1 is raised to the member's batch size by the labeling pass, so batches fill
        run = label_pairs(pairs, pool, store, settings=EngineSettings(concurrency=1))
        assert len(run.labels) == len(pairs)
        assert {lab.status for lab in run.labels} <= {"ok", "parse_error"}
        # the simulator asks one engine run per shown order: one batch per non-empty order group
        groups = [sum(1 for lab in run.labels if lab.shown_first == s) for s in (1, 2)]
        assert counting.calls == sum(math.ceil(g / k) for g in groups)
        assert counting.calls < len(pairs)
        stored = store.get_judgments()
        assert len(stored) == len(pairs) and all(j.raw_completion for j in stored)
