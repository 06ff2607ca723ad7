"""Cached judging for the simulator until the annotation engine (``pasture.annotate``) lands.

It does what the simulator needs from the engine and nothing more: look each question up in the store by
its judgment key, ask the judge only for the missing ones, and store every verdict as soon as it arrives,
so a killed run resumes where it stopped. A failed call is stored with status 'error' (a rerun retries it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pasture.judges.base import Judge, JudgeRequest, PermanentError, TransientError
from pasture.records import Judgment, judgment_key
from pasture.store import Store


@dataclass(frozen=True)
class Question:
    """One pair to ask a judge, by slot, with the order it is shown in."""

    instruction: str
    output_1: str
    generator_1: str
    output_2: str
    generator_2: str
    shown_first: Literal[1, 2]
    dataset: str | None = None

    def key(self, judge_digest: str) -> str:
        return judgment_key(judge_digest, self.instruction, self.output_1, self.output_2, self.shown_first)


async def _ask(judge: Judge, q: Question, judge_digest: str, sem: asyncio.Semaphore) -> Judgment:
    request = JudgeRequest(
        instruction=q.instruction, output_1=q.output_1, output_2=q.output_2, shown_first=q.shown_first
    )
    base = {
        "judge_digest": judge_digest,
        "judge_name": judge.name,
        "instruction": q.instruction,
        "output_1": q.output_1,
        "generator_1": q.generator_1,
        "output_2": q.output_2,
        "generator_2": q.generator_2,
        "shown_first": q.shown_first,
        "dataset": q.dataset,
    }
    async with sem:
        start = time.perf_counter()
        try:
            verdict = await judge.judge(request)
        except (TransientError, PermanentError) as exc:
            return Judgment(**base, status="error", error=f"{type(exc).__name__}: {exc}")
    return Judgment(
        **base,
        status=verdict.status,
        preference=verdict.preference if verdict.status == "ok" else None,
        raw_completion=verdict.raw_completion,
        prompt_tokens=verdict.prompt_tokens,
        completion_tokens=verdict.completion_tokens,
        cost_usd=verdict.cost_usd,
        latency_s=verdict.latency_s if verdict.latency_s is not None else time.perf_counter() - start,
        error=verdict.error,
    )


async def _judge_missing(
    store: Store, judge: Judge, judge_digest: str, todo: list[Question], concurrency: int, flush_every: int
) -> list[Judgment]:
    sem = asyncio.Semaphore(concurrency)
    pending: list[Judgment] = []
    done: list[Judgment] = []
    for coro in asyncio.as_completed([_ask(judge, q, judge_digest, sem) for q in todo]):
        pending.append(await coro)
        if len(pending) >= flush_every:
            store.put_judgments(pending)
            done += pending
            pending = []
    if pending:
        store.put_judgments(pending)
        done += pending
    return done


async def judge_cached(
    store: Store, judge: Judge, questions: Sequence[Question], *, concurrency: int = 1, flush_every: int = 1
) -> tuple[list[Judgment], int]:
    """Judgments for ``questions`` (in order) and how many judge calls were made (the rest came from the store).

    ``flush_every`` verdicts are written per store transaction: 1 loses nothing on a kill; larger values are
    faster for in-process judges that answer in microseconds.
    """
    fingerprint = judge.fingerprint
    judge_digest = store.put_judge(judge.name, fingerprint)
    keys = [q.key(judge_digest) for q in questions]
    stored = store.get_judgments_by_key(keys)
    todo: dict[str, Question] = {}
    for k, q in zip(keys, questions, strict=True):
        found = stored.get(k)
        if (found is None or found.status != "ok") and k not in todo:
            todo[k] = q
    if todo:
        fresh = await _judge_missing(
            store, judge, judge_digest, list(todo.values()), max(1, concurrency), max(1, flush_every)
        )
        stored.update({j.key: j for j in fresh})
    return [stored[k] for k in keys], len(todo)
