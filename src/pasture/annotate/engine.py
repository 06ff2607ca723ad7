"""The annotation engine: judge many pairs concurrently, never pay for a judgment twice, survive interruption.

Each judgment has a content key (``pasture.records.judgment_key``) over the judge's fingerprint digest,
the instruction, both outputs, which output is shown first and the replicate index. The engine:

* answers keys the store already holds with status 'ok' without a call;
* claims the other keys in the store before calling (claims expire, and are renewed while a call runs),
  so several processes sharing one store split the work instead of duplicating it;
* runs calls on asyncio under a concurrency limit and optional requests/tokens-per-minute limits;
* retries transient failures (429, 5xx, timeouts, dropped connections, truncated bodies) with exponential
  backoff and jitter, never sooner than the server's Retry-After;
* retries an unparsable reply a bounded number of times (each retry is a new, counted call), then stores
  it with status 'parse_error' and its raw text;
* stores exhausted transient failures and permanent failures with status 'error' (a later run retries
  them: only 'ok' judgments are final);
* writes every judgment to the store as it completes (from one store thread, in commits gathered over
  ``WRITE_DELAY_S``), so a killed run loses only the calls in flight and the judgments of the last moments;
* with ``EngineSettings.ray``, makes the calls on Ray workers that hold the judge, everything else staying
  in this process (``pasture.annotate.ray_backend``, imported only then).

See docs/annotate.md for the behaviour in full and the meaning of every count in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import queue
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from pasture.annotate.limits import RateLimiter, backoff_delay
from pasture.annotate.pairs import PairToJudge
from pasture.annotate.progress import ProgressBar
from pasture.errors import InputError, StoreError
from pasture.judges.base import Judge, JudgeRequest, PermanentError, ResponseVerdict, TransientError, Verdict
from pasture.position import alpaca_eval_shown_first
from pasture.records import Judgment, Position, ResponseJudgment, judgment_key
from pasture.store import Store

"""Which output the judge sees first.

* ``alpaca_eval``: AlpacaEval's deterministic per-instruction order (``pasture.position``), one judgment;
* ``both``: two judgments per pair, one in each order (their agreement is the judge's position consistency);
* ``reference_first`` / ``model_first``: always slot 1 / always slot 2 first, one judgment.
"""

POSITIONS: tuple[str, ...] = ("alpaca_eval", "both", "reference_first", "model_first")


R = TypeVar("R", Judgment, ResponseJudgment)
"""The record a run produces: a pairwise :class:`Judgment` or a single-response :class:`ResponseJudgment`."""
R_co = TypeVar("R_co", bound=Judgment | ResponseJudgment, covariant=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one judgment ended, whatever its kind: what the engine knows besides the verdict itself.

    ``status`` is final ('ok', 'parse_error' or 'error'); tokens and cost add up over every call made for
    the judgment (retries included); ``attempts`` counts those calls.
    """

    status: Literal["ok", "parse_error", "error"]
    raw_completion: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    error: str | None = None
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class JudgmentTask:
    """One judgment to obtain: a pair, the order it is shown in, the replicate index, and its key.

    ``annotator`` names an independent annotator (a sampling pool member): it is part of the key when set.
    """

    key: str
    pair: PairToJudge
    shown_first: Literal[1, 2]
    replicate: int
    annotator: str | None = None

    def request(self) -> JudgeRequest:
        p = self.pair
        return JudgeRequest(
            instruction=p.instruction,
            output_1=p.output_1,
            output_2=p.output_2,
            shown_first=self.shown_first,
            replicate=self.replicate,
        )

    async def ask(self, judge: Judge) -> Verdict:
        return await judge.judge(self.request())

    def estimate(self, judge: Judge) -> tuple[int, int]:
        return judge.estimate_tokens(self.request())

    def record(self, judge_digest: str, judge_name: str, outcome: Outcome, verdict: Verdict | None) -> Judgment:
        """The stored judgment; ``verdict`` is the last one received (None when every call failed)."""
        p = self.pair
        return Judgment(
            judge_digest=judge_digest,
            judge_name=judge_name,
            instruction=p.instruction,
            output_1=p.output_1,
            generator_1=p.generator_1,
            output_2=p.output_2,
            generator_2=p.generator_2,
            shown_first=self.shown_first,
            replicate=self.replicate,
            annotator=self.annotator,
            dataset=p.dataset,
            status=outcome.status,
            preference=verdict.preference if verdict is not None and outcome.status == "ok" else None,
            raw_completion=outcome.raw_completion,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cost_usd=outcome.cost_usd,
            latency_s=outcome.latency_s,
            error=outcome.error,
            attempts=outcome.attempts,
        )


class Task(Protocol[R_co]):
    """What the engine needs of one judgment to obtain, whatever its kind (pairwise, single-response).

    ``ask`` makes ONE call of the judge (the engine retries); ``record`` builds the record to store.
    """

    @property
    def key(self) -> str: ...

    async def ask(self, judge: Any) -> Verdict | ResponseVerdict: ...

    def estimate(self, judge: Any) -> tuple[int, int]: ...

    def record(self, judge_digest: str, judge_name: str, outcome: Outcome, verdict: Any) -> R_co: ...


@dataclass(frozen=True)
class RecordKind(Generic[R]):
    """Where the store keeps one kind of record: which keys are judged, and the records by key."""

    judged_keys: Callable[[Store, list[str], bool], set[str]]
    get_by_key: Callable[[Store, list[str]], dict[str, R]]


PAIRWISE_RECORDS: RecordKind[Judgment] = RecordKind(
    judged_keys=lambda store, keys, ok_only: store.judged_keys(keys, ok_only=ok_only),
    get_by_key=lambda store, keys: store.get_judgments_by_key(keys),
)
RESPONSE_RECORDS: RecordKind[ResponseJudgment] = RecordKind(
    judged_keys=lambda store, keys, ok_only: store.judged_response_keys(keys, ok_only=ok_only),
    get_by_key=lambda store, keys: store.get_response_judgments_by_key(keys),
)


def shown_orders(position: Position, instruction: str) -> tuple[Literal[1, 2], ...]:
    """The ``shown_first`` values judged for one instruction under a position policy."""
    if position == "alpaca_eval":
        return (alpaca_eval_shown_first(instruction),)
    if position == "both":
        return (1, 2)
    if position == "reference_first":
        return (1,)
    if position == "model_first":
        return (2,)
    raise InputError(f"unknown position policy {position!r}; choose one of {', '.join(POSITIONS)}")


def build_tasks(
    judge_digest: str,
    pairs: Iterable[PairToJudge],
    *,
    position: Position = "alpaca_eval",
    replicates: int = 1,
    annotator: str | None = None,
) -> list[JudgmentTask]:
    """The distinct judgments needed for ``pairs``, in pair order (a repeated pair is judged once).

    ``annotator`` (an independent annotator's name, docs/simulate.md) enters every key when given.
    """
    if replicates < 1:
        raise InputError(f"replicates must be at least 1, got {replicates}")
    tasks: dict[str, JudgmentTask] = {}
    for pair in pairs:
        for shown_first in shown_orders(position, pair.instruction):
            for replicate in range(replicates):
                key = judgment_key(
                    judge_digest, pair.instruction, pair.output_1, pair.output_2, shown_first, replicate, annotator
                )
                if key not in tasks:
                    tasks[key] = JudgmentTask(
                        key=key, pair=pair, shown_first=shown_first, replicate=replicate, annotator=annotator
                    )
    return list(tasks.values())


# -- dry run ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotationPlan:
    """What a run would do, computed without any call and without writing to the store.

    Attributes
    ----------
    n_pairs:
        Pairs given (before removing repeats).
    n_judgments:
        Distinct judgments needed: pairs x orders x replicates, repeats removed.
    n_cached:
        Of those, judgments the store already holds with status 'ok': they cost nothing.
    n_retry:
        Judgments stored earlier with status 'error' or 'parse_error': they are called again.
    n_calls:
        Calls needed if every call succeeds the first time: ``n_judgments - n_cached``.
    max_calls:
        Upper bound on calls: every judgment exhausting its transient retries on every parse retry.
    prompt_tokens, completion_tokens:
        The judge's estimate of the tokens of ``n_calls`` calls.
    cost_usd:
        Estimated price of ``n_calls`` calls in US dollars; None when the judge does not know its price.
    """

    judge_name: str
    judge_digest: str
    n_pairs: int
    n_judgments: int
    n_cached: int
    n_retry: int
    n_calls: int
    max_calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None

    def summary(self) -> str:
        cost = "unknown (the judge has no price)" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        return (
            f"judge {self.judge_name} ({self.judge_digest[:12]}): {self.n_pairs} pairs -> {self.n_judgments} "
            f"judgments, {self.n_cached} already in the store, {self.n_retry} failed before and retried\n"
            f"calls: {self.n_calls} (at most {self.max_calls} with retries); estimated tokens: "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion; estimated cost: {cost}"
        )


def plan(
    store: Store,
    judge: Judge,
    pairs: Sequence[PairToJudge],
    *,
    settings: EngineSettings | None = None,
    position: Position = "alpaca_eval",
    replicates: int = 1,
) -> AnnotationPlan:
    """Count the calls and estimate the cost of ``annotate`` with the same arguments, spending nothing."""
    settings = settings if settings is not None else EngineSettings()
    digest = judge.fingerprint.digest
    tasks = build_tasks(digest, pairs, position=position, replicates=replicates)
    keys = [t.key for t in tasks]
    ok = store.judged_keys(keys)
    stored = store.judged_keys(keys, ok_only=False)
    todo = [t for t in tasks if t.key not in ok]
    prompt = completion = 0
    for t in todo:
        p, c = judge.estimate_tokens(t.request())
        prompt += p
        completion += c
    price = judge.price_per_token()
    cost = None if price is None else prompt * price[0] + completion * price[1]
    return AnnotationPlan(
        judge_name=judge.name,
        judge_digest=digest,
        n_pairs=len(pairs),
        n_judgments=len(tasks),
        n_cached=len(ok),
        n_retry=len(stored - ok),
        n_calls=len(todo),
        max_calls=len(todo) * (1 + settings.max_retries) * (1 + settings.parse_retries),
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
    )


# -- the run ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class AnnotationReport(Generic[R]):
    """What a run did. Every judgment asked for is in exactly one of the outcome counts.

    ``AnnotationReport[Judgment]`` from :func:`annotate`, ``AnnotationReport[ResponseJudgment]`` from
    :func:`pasture.annotate.annotate_responses`: the counts mean the same for both.

    Attributes
    ----------
    judgments:
        One judgment per distinct key, in pair order, with its final status; keys left unresolved (run
        aborted or interrupted) are absent and counted in ``n_missing``.
    n_judgments:
        Distinct judgments asked for.
    n_cached:
        Already 'ok' in the store when the run started: no call.
    n_new:
        Judged 'ok' by this run's calls.
    n_by_others:
        Resolved during the run by another process sharing the store (no call from this one).
    n_parse_error:
        Final status 'parse_error': the reply stayed unparsable after all parse retries (raw text stored).
    n_error:
        Final status 'error': transient retries exhausted, or a permanent error.
    n_missing:
        Not judged in this run (it was aborted or interrupted first): nothing new is stored for them (an
        earlier failure stays as it was); a rerun does them.
    calls:
        Calls this process made to the judge, including retries and calls that failed.
    transient_retries, parse_retries:
        Of ``calls``, how many were retries after a transient failure / after an unparsable reply.
    prompt_tokens, completion_tokens, cost_usd:
        Tokens and price of this process's calls as reported by the judge (cost from the judge's price
        per token when the provider reports none; 0 for local models). ``cost_usd`` is None (unknown, never
        0) when calls were made and none of them has a price.
    wall_s:
        Seconds from start to end of the run.
    aborted:
        Why the run stopped early, or None.
    """

    judge_name: str
    judge_digest: str
    judgments: tuple[R, ...]
    n_judgments: int
    n_cached: int
    n_new: int
    n_by_others: int
    n_parse_error: int
    n_error: int
    n_missing: int
    calls: int
    transient_retries: int
    parse_retries: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    wall_s: float
    aborted: str | None = None

    @property
    def n_failed(self) -> int:
        """Judgments without a verdict: parse errors, errors and missing ones."""
        return self.n_parse_error + self.n_error + self.n_missing

    @property
    def ok(self) -> bool:
        """True when every judgment asked for has status 'ok'."""
        return self.n_failed == 0 and self.aborted is None

    @property
    def failed(self) -> list[R]:
        return [j for j in self.judgments if j.status != "ok"]

    def __repr__(self) -> str:  # short: a report can hold thousands of judgments
        return (
            f"AnnotationReport(judge={self.judge_name!r}, n_judgments={self.n_judgments}, n_cached={self.n_cached}, "
            f"n_new={self.n_new}, n_by_others={self.n_by_others}, n_failed={self.n_failed}, calls={self.calls})"
        )

    def summary(self) -> str:
        lines = [
            f"judge {self.judge_name} ({self.judge_digest[:12]}): {self.n_judgments} judgments: "
            f"{self.n_cached} cached, {self.n_new} new, {self.n_by_others} by other processes, "
            f"{self.n_parse_error} unparsable, {self.n_error} errors, {self.n_missing} missing",
            f"{self.calls} calls ({self.transient_retries} transient retries, {self.parse_retries} parse retries), "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens, "
            f"{'cost unknown' if self.cost_usd is None else f'${self.cost_usd:.4f}'}, {self.wall_s:.1f} s",
        ]
        if self.aborted:
            lines.append(f"aborted: {self.aborted}")
        return "\n".join(lines)


@dataclass
class _Counters:
    calls: int = 0
    transient_retries: int = 0
    parse_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    consecutive_permanent: int = 0


@dataclass(frozen=True)
class EngineSettings:
    """How the engine runs: one object taken whole by every entry point (``annotate``, ``evaluate``, the
    simulator's labeling, ``pasture annotate/evaluate/simulate``), so a knob added here reaches them all.

    Each attribute is documented once, here; the command-line flags (``pasture.cli.options``) take their
    help text from this docstring. None of these settings changes a verdict, so none is part of a judgment's
    key: a stored judgment is reused whatever they were.

    Attributes
    ----------
    concurrency:
        Judge calls in flight at once.
    requests_per_minute:
        Optional quota of calls per minute (the engine waits rather than exceed it).
    tokens_per_minute:
        Optional quota of tokens per minute: the judge's estimate before a call, corrected by reported usage.
    max_retries:
        Retries of one judgment after transient failures (429, 5xx, timeout, dropped connection, truncated
        body); then it is stored with status 'error'.
    timeout_s:
        Per-call timeout in seconds; a call that exceeds it is a transient failure.
    parse_retries:
        Extra calls when a reply cannot be parsed; then it is stored with status 'parse_error'.
    claim_ttl_s:
        Seconds a claim on a judgment lasts without renewal (renewed every third of it while a call runs):
        judgments of a killed process become free after at most this long.
    backoff_base_s:
        Delay in seconds before the first transient retry; it doubles per retry, with jitter, and is never
        shorter than the server's Retry-After.
    backoff_max_s:
        Cap in seconds on one retry delay.
    poll_s:
        Seconds between checks on judgments another process has claimed.
    store_timeout_s:
        Seconds a store write waits for a lock held by another process before failing.
    abort_after_permanent:
        Stop the run after this many permanent errors in a row (a wrong model id or key fails every call).
    owner:
        Claim owner id; when unset, a fresh one per run (host, pid and a random suffix).
    ray:
        Make the judge calls on a Ray cluster: its address (HOST:PORT of the head node) or 'auto' (the
        cluster this machine belongs to). The store, claims, retries and quotas stay in this process; Ray
        actors hold the judge and make the calls. Needs pasture[ray] (docs/annotate.md, "Scale-out on Ray").
    ray_workers:
        With ray: Ray actors holding the judge, one provider each (default: one per CPU of the cluster).
    ray_worker_concurrency:
        With ray: calls in flight per actor (default: concurrency shared evenly among the actors).
    """

    concurrency: int = 8
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_retries: int = 6
    timeout_s: float = 120.0
    parse_retries: int = 1
    claim_ttl_s: float = 120.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    poll_s: float = 0.5
    store_timeout_s: float = 60.0
    abort_after_permanent: int = 5
    owner: str | None = None
    ray: str | None = None
    ray_workers: int | None = None
    ray_worker_concurrency: int | None = None

    def validate(self) -> None:
        """Raise an InputError naming the first setting out of range (its ``param`` is the attribute)."""
        at_least = {"concurrency": 1, "max_retries": 0, "parse_retries": 0, "abort_after_permanent": 1}
        for name, low in at_least.items():
            value = getattr(self, name)
            if value < low:
                raise InputError(f"{name} must be at least {low}, got {value}", param=name)
        positive = ("timeout_s", "claim_ttl_s", "backoff_base_s", "backoff_max_s", "poll_s", "store_timeout_s")
        for name in (*positive, "requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"{name} must be positive, got {value}", param=name)
        if self.owner is not None and not self.owner.strip():
            raise InputError("owner must not be empty (leave it unset for a fresh one per run)", param="owner")
        if self.ray is not None and not self.ray.strip():
            raise InputError("ray must be a cluster address (HOST:PORT) or 'auto', not empty", param="ray")
        for name in ("ray_workers", "ray_worker_concurrency"):
            value = getattr(self, name)
            if value is None:
                continue
            if self.ray is None:
                raise InputError(f"{name} needs ray (the address of a Ray cluster)", param="ray")
            if value < 1:
                raise InputError(f"{name} must be at least 1, got {value}", param=name)


def default_owner() -> str:
    """A claim owner id unique to this process and run: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _snapshot(j: Judgment | ResponseJudgment | None) -> tuple[str, int, str] | None:
    return None if j is None else (j.status, j.attempts, j.created_at.isoformat())


CLAIM_AHEAD_S = 0.25
"""Seconds of calls, at the rate of the last such period, that the dispatcher keeps claimed ahead (besides half
a window). Why: the store thread answers a claim only when it gets Python's GIL, and while the event loop is
busy (hundreds of calls per second) that takes ~5 ms per SQLite statement: claims came back after 40-140 ms
on the development machine. Slow judges (a few calls per second) keep the old window of ``concurrency``."""

WRITE_DELAY_S = 0.05
"""Seconds the store thread lets completed judgments gather before it commits them together.

Why: each commit costs a fixed ~0.1 ms of SQLite work plus a few pages per judgment (fewer the more judgments
share a commit), and every wake-up of the thread takes Python's GIL from the event loop; at hundreds of calls
per second, one commit per judgment cost the loop a tenth of its throughput. What a SIGKILL can lose: the
calls in flight (``concurrency`` of them) and the judgments of the last 50 ms; for calls slower than 50 ms
the second is never more than the first."""


class _StoreThread:
    """Every store write of a run (judgments, claims, renewals, releases) on one thread with its own connection.

    Why a thread: a commit, or waiting for another process's write lock, takes milliseconds; on the event
    loop it would stall every call in flight. Writes go through a queue and are applied in order.
    Judgments are committed in batches: the first one starts a short wait (:data:`WRITE_DELAY_S`) and
    everything queued by then goes into one transaction. Claims answer through an asyncio future, so the
    dispatcher asks for the next window ahead of need and never waits on SQLite; a claim cuts the batch's
    wait short, so it is answered within one commit. A failed write stops the
    thread; the error is raised on the event loop's side by the next :meth:`put` or claim, and by
    :meth:`close`.
    """

    def __init__(self, path: Path, timeout_s: float, loop: asyncio.AbstractEventLoop) -> None:
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._path = path
        self._timeout_s = timeout_s
        self._loop = loop
        self._wake = threading.Event()  # set by requests that must not wait for the batch: claims, close
        self._closing = False
        self._lock = threading.Lock()  # orders "thread died" against new requests (see _fail)
        self._dead = False
        self.error: BaseException | None = None
        self.written = 0
        self.commits = 0
        self._thread = threading.Thread(target=self._work, name="pasture-annotate-store", daemon=True)
        self._thread.start()

    def _send(self, op: tuple[Any, ...], *, urgent: bool = False) -> None:
        with self._lock:
            if self._dead:
                raise StoreError(f"{self._path}: writing judgments failed: {self.error}") from self.error
            self._queue.put(op)
        if urgent:
            self._wake.set()

    def put(self, key: str, record: Judgment | ResponseJudgment) -> None:
        """Queue one judgment (``key`` is its key); writing it also drops our claim on it."""
        self._send(("put", key, record))

    def claim(
        self,
        keys: list[str],
        owner: str,
        ttl_s: float,
        resolved_elsewhere: Callable[[Store, list[str]], set[str]],
        apply: Callable[[list[str], set[str]], None],
    ) -> asyncio.Future[None]:
        """Claim ``keys``; ``apply(claimed keys, those of them another process has resolved)`` runs on the
        event loop, then the returned future completes (with the store's error if the claim failed).

        Why a callback: the dispatcher's state is updated before any coroutine waiting on the future resumes.
        The resolved keys (``resolved_elsewhere`` on the claimed ones, run on this thread) are released again.
        """
        future: asyncio.Future[None] = self._loop.create_future()
        self._send(("claim", keys, owner, ttl_s, resolved_elsewhere, apply, future), urgent=True)
        return future

    def renew(self, keys: list[str], owner: str, ttl_s: float) -> None:
        self._send(("renew", keys, owner, ttl_s))

    def release(self, keys: list[str], owner: str) -> None:
        self._send(("release", keys, owner))

    def close(self) -> None:
        """Apply everything queued, stop the thread; raises if a write failed."""
        with self._lock:
            if not self._dead:
                self._queue.put(None)
        self._closing = True
        self._wake.set()
        self._thread.join()
        if self.error is not None:
            raise StoreError(f"{self._path}: writing judgments failed: {self.error}") from self.error

    def _answer(
        self,
        future: asyncio.Future[None],
        apply: Callable[[], None] | None = None,
        error: BaseException | None = None,
    ) -> None:
        """On the loop: run ``apply`` and complete ``future``, or fail it with ``error``."""

        def settle() -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
                return
            try:
                if apply is not None:
                    apply()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)

        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits for the answer any more
            self._loop.call_soon_threadsafe(settle)

    def _work(self) -> None:
        store: Store | None = None
        ops: list[tuple[Any, ...] | None] = []
        try:
            store = Store(self._path, timeout_s=self._timeout_s)
            while True:
                op = self._queue.get()
                if op is not None and op[0] == "put" and not self._closing:
                    self._wake.wait(WRITE_DELAY_S)  # let the judgments completing meanwhile join this commit
                self._wake.clear()  # whatever set it is in the queue by now, and is taken below
                ops = [op]
                while op is not None:
                    try:
                        op = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    ops.append(op)
                if not self._apply(store, ops):
                    return
        except BaseException as exc:  # reported by put()/claim()/close() on the event loop's side
            self._fail(exc, ops)
        finally:
            if store is not None:
                store.close()

    def _apply(self, store: Store, ops: list[tuple[Any, ...] | None]) -> bool:
        """Apply ``ops`` in order, consecutive judgments in one transaction; False once the stop mark is met."""
        i = 0
        while i < len(ops):
            op = ops[i]
            if op is None:
                return False
            if op[0] == "put":
                j = i
                while j < len(ops) and ops[j] is not None and ops[j][0] == "put":  # type: ignore[index]
                    j += 1
                batch = ops[i:j]
                pairwise = [(o[1], o[2]) for o in batch if isinstance(o[2], Judgment)]  # type: ignore[index]
                single = [(o[1], o[2]) for o in batch if isinstance(o[2], ResponseJudgment)]  # type: ignore[index]
                if pairwise:  # also drops the claims on them
                    store.put_judgments([r for _, r in pairwise], keys=[k for k, _ in pairwise])
                if single:
                    store.put_response_judgments([r for _, r in single], keys=[k for k, _ in single])
                self.written += len(batch)
                self.commits += 1
                i = j
                continue
            if op[0] == "claim":
                _, keys, owner, ttl_s, resolved_elsewhere, apply, future = op
                try:
                    got = store.claim(keys, owner, ttl_s=ttl_s)
                    elsewhere = resolved_elsewhere(store, got)
                    if elsewhere:
                        store.release(elsewhere, owner)
                except BaseException as exc:
                    self._answer(future, error=exc)
                    raise
                self._answer(future, functools.partial(apply, got, elsewhere))
            elif op[0] == "renew":
                store.claim(op[1], op[2], ttl_s=op[3])
            elif op[0] == "release":
                store.release(op[1], op[2])
            i += 1
        return True

    def _fail(self, exc: BaseException, taken: list[tuple[Any, ...] | None]) -> None:
        """Record the error, refuse further requests, and fail every claim still waiting for an answer
        (``taken``: the ops being applied when it failed; a claim answered already keeps its answer)."""
        with self._lock:
            self.error = exc
            self._dead = True
        left = list(taken)
        while True:
            try:
                left.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for op in left:
            if op is not None and op[0] == "claim":
                self._answer(op[-1], error=StoreError(f"{self._path}: writing judgments failed: {exc}"))


class _Run(Generic[R]):
    """State of one engine run (one event loop; the caller's store connection for reads, the store thread for writes).

    Kind-agnostic: tasks say how to ask and what to store (:class:`Task`), ``kind`` where the store keeps
    their records, so pairwise and single-response judgments share every rule of the engine.
    """

    def __init__(
        self, store: Store, judge: Any, tasks: Sequence[Task[R]], settings: EngineSettings, kind: RecordKind[R]
    ) -> None:
        self.store = store
        self.judge = judge
        self.settings = settings
        self.tasks: Sequence[Task[R]] = tasks
        self.kind: RecordKind[R] = kind
        self.by_key: dict[str, Task[R]] = {t.key: t for t in tasks}
        self.digest = judge.fingerprint.digest
        self.counters = _Counters()
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self.price = judge.price_per_token()
        self.rng = random.Random()
        self.own: dict[str, R] = {}  # judged by this process in this run
        self.others: set[str] = set()  # resolved by another process during the run
        self.aborted: str | None = None
        self.n_failed = 0  # own judgments with a status other than 'ok'
        self.writer = _StoreThread(store.path, settings.store_timeout_s, asyncio.get_running_loop())

    # -- one judgment ---------------------------------------------------------------------------------
    async def judge_one(self, task: Task[R]) -> R:
        s = self.settings
        # the token estimate only feeds a tokens-per-minute limit; skip the template work without one
        estimate = sum(task.estimate(self.judge)) if self.limiter.tokens is not None else 0
        calls = transient = parse_failures = 0
        prompt_tokens = completion_tokens = 0
        cost = 0.0
        last_error = ""
        verdict: Verdict | ResponseVerdict | None = None
        while True:
            await self.limiter.acquire(estimate)
            calls += 1
            self.counters.calls += 1
            start = time.monotonic()
            try:
                async with asyncio.timeout(s.timeout_s):
                    verdict = await task.ask(self.judge)
            except (TransientError, TimeoutError) as exc:
                self.limiter.settle(estimate, 0)
                retry_after = exc.retry_after if isinstance(exc, TransientError) else None
                last_error = (
                    f"timed out after {s.timeout_s:g} s"
                    if isinstance(exc, TimeoutError)
                    else f"{type(exc).__name__}: {exc}"
                )
                transient += 1
                if transient > s.max_retries:
                    return self._failed(task, calls, f"gave up after {calls} calls; last: {last_error}")
                self.counters.transient_retries += 1
                await asyncio.sleep(
                    backoff_delay(
                        transient,
                        base_s=s.backoff_base_s,
                        max_s=s.backoff_max_s,
                        retry_after=retry_after,
                        rng=self.rng,
                    )
                )
                continue
            except PermanentError as exc:
                self.counters.consecutive_permanent += 1
                if self.counters.consecutive_permanent >= s.abort_after_permanent and self.aborted is None:
                    self.aborted = f"{s.abort_after_permanent} permanent errors in a row; last: {exc}"
                return self._failed(task, calls, f"permanent error: {exc}")
            self.counters.consecutive_permanent = 0
            used_prompt = verdict.prompt_tokens or 0
            used_completion = verdict.completion_tokens or 0
            self.limiter.settle(estimate, used_prompt + used_completion)
            call_cost = verdict.cost_usd
            if call_cost is None and self.price is not None:
                call_cost = used_prompt * self.price[0] + used_completion * self.price[1]
            prompt_tokens += used_prompt
            completion_tokens += used_completion
            cost += call_cost or 0.0
            self.counters.prompt_tokens += used_prompt
            self.counters.completion_tokens += used_completion
            self.counters.cost_usd += call_cost or 0.0
            if verdict.status == "parse_error" and parse_failures < s.parse_retries:
                parse_failures += 1
                self.counters.parse_retries += 1
                continue
            break
        elapsed = verdict.latency_s if verdict.latency_s is not None else time.monotonic() - start
        outcome = Outcome(
            status=verdict.status,
            raw_completion=verdict.raw_completion,
            prompt_tokens=prompt_tokens if verdict.prompt_tokens is not None else None,
            completion_tokens=completion_tokens if verdict.completion_tokens is not None else None,
            cost_usd=cost if (verdict.cost_usd is not None or self.price is not None) else None,
            latency_s=elapsed,
            error=verdict.error
            if verdict.status == "ok"
            else (verdict.error or "unparsable reply") + f" (after {parse_failures + 1} parse attempts)",
            attempts=calls,
        )
        return task.record(self.digest, self.judge.name, outcome, verdict)

    def _failed(self, task: Task[R], calls: int, error: str) -> R:
        return task.record(self.digest, self.judge.name, Outcome(status="error", error=error, attempts=calls), None)

    # -- the dispatcher -------------------------------------------------------------------------------
    async def run(
        self, todo_keys: list[str], snapshot: dict[str, tuple[str, int, str] | None], bar: ProgressBar
    ) -> None:
        """Judge ``todo_keys`` with ``concurrency`` worker coroutines; claims are taken a window at a time.

        Workers are long-lived (one per concurrency slot, like a minimal client loop) and take the next
        claimed key synchronously, so the loop does no bookkeeping between a completion and the next call.
        The next window is claimed on the store thread ahead of need: when fewer keys are ready than half a
        window or than :data:`CLAIM_AHEAD_S` of calls at the recent rate, whichever is more, so no worker
        waits for SQLite while keys are left.
        """
        s = self.settings
        owner = s.owner or default_owner()  # unset: a fresh owner per run, so two runs never share claims
        window = max(s.concurrency, 4)  # claim little ahead, so processes sharing a store split the work
        recent: deque[float] = deque()  # completion times of the last CLAIM_AHEAD_S
        todo: deque[str] = deque(todo_keys)  # not claimed yet
        ready: deque[str] = deque()  # claimed by us, not started
        waiting: list[str] = []  # claimed by another live process
        inflight: set[str] = set()
        claiming: asyncio.Future[None] | None = None  # the window being claimed
        resolved_base = len(self.tasks) - len(todo_keys)
        kind = self.kind

        def show() -> None:
            if bar.enabled:
                bar.update(
                    completed=resolved_base + len(self.own) + len(self.others),
                    calls=self.counters.calls,
                    tokens=self.counters.prompt_tokens + self.counters.completion_tokens,
                    cost=self.counters.cost_usd,
                    failed=self.n_failed,
                )

        def resolved_elsewhere(store: Store, keys: Sequence[str]) -> set[str]:
            """Keys whose stored row changed since the run started: another process judged them.

            Only keys with a row are read in full (an index lookup finds them), so fresh keys cost no join."""
            stored = kind.judged_keys(store, list(keys), False) if keys else set()
            if not stored:
                return set()
            rows = kind.get_by_key(store, list(stored))
            return {k for k, j in rows.items() if j.status == "ok" or _snapshot(j) != snapshot.get(k)}

        def claim_next() -> None:
            """Ask the store thread for the next window, unless one is being claimed or none is left."""
            nonlocal claiming
            if claiming is not None or not todo or self.aborted is not None:
                return
            chunk = [todo.popleft() for _ in range(min(max(window, runway()), len(todo)))]

            def claimed(got: list[str], elsewhere: set[str]) -> None:
                """On the loop, before any worker waiting for this window resumes."""
                nonlocal claiming
                claiming = None  # a failed claim stays in place instead: the next worker needing keys raises
                got_set = set(got)
                waiting.extend(k for k in chunk if k not in got_set)
                ready.extend(k for k in got if k not in elsewhere)
                if elsewhere:
                    self.others |= elsewhere
                    show()

            claiming = self.writer.claim(chunk, owner, s.claim_ttl_s, resolved_elsewhere, claimed)

        def runway() -> int:
            """Calls completed in the last CLAIM_AHEAD_S: about as many keys are used before a claim returns."""
            horizon = time.monotonic() - CLAIM_AHEAD_S
            while recent and recent[0] < horizon:
                recent.popleft()
            return len(recent)

        async def worker() -> None:
            while True:
                if not ready:
                    claim_next()
                    if claiming is None or self.aborted is not None:
                        return
                    await asyncio.shield(claiming)  # raises a failed claim's error
                    continue
                if self.aborted is not None:
                    return
                key = ready.popleft()
                if claiming is None and todo and (len(ready) < window // 2 or len(ready) < runway()):
                    claim_next()
                inflight.add(key)
                judgment = await self.judge_one(self.by_key[key])  # a judge bug propagates from here
                inflight.discard(key)
                recent.append(time.monotonic())
                self.own[key] = judgment
                self.n_failed += judgment.status != "ok"
                self.writer.put(key, judgment)  # also drops our claim once written
                show()

        async def renew_claims() -> None:
            while True:
                await asyncio.sleep(s.claim_ttl_s / 3)
                if inflight or ready:
                    self.writer.renew([*inflight, *ready], owner, s.claim_ttl_s)

        renewer = asyncio.ensure_future(renew_claims())
        workers: list[asyncio.Future[None]] = []
        try:
            while True:
                claim_next()
                workers = [asyncio.ensure_future(worker()) for _ in range(s.concurrency)]
                await asyncio.gather(*workers)
                if not waiting or self.aborted is not None:
                    break
                # keys another live process holds: wait for its judgments, or for its claims to expire
                await asyncio.sleep(s.poll_s)
                done_elsewhere = resolved_elsewhere(self.store, waiting)
                self.others |= done_elsewhere
                todo.extend(k for k in waiting if k not in done_elsewhere)
                waiting.clear()
                show()
        finally:
            renewer.cancel()
            for w in workers:
                w.cancel()
            await asyncio.gather(renewer, *workers, return_exceptions=True)
            if claiming is not None:  # a window claimed for nobody: its keys go back below
                with contextlib.suppress(BaseException):
                    await asyncio.shield(claiming)
            leftover = [*inflight, *ready]
            if leftover:
                try:
                    self.writer.release(leftover, owner)
                except StoreError:  # the store thread failed: release from here, if the store lets us
                    with contextlib.suppress(sqlite3.Error):  # else they expire after claim_ttl_s
                        self.store.release(leftover, owner)


async def run_tasks(
    store: Store,
    judge: Any,
    tasks: Sequence[Task[R]],
    settings: EngineSettings,
    *,
    kind: RecordKind[R],
    progress: bool = True,
) -> AnnotationReport[R]:
    """Obtain the judgment of every task (distinct keys) under the engine's rules; the core of every entry point.

    Cached 'ok' keys cost nothing, the rest are claimed, judged with retries, written as they complete, and
    counted in the report. ``judge`` must answer the tasks' ``ask`` (a pairwise or a single-response judge);
    ``kind`` says where the store keeps the records.
    """
    settings.validate()
    started = time.monotonic()
    fingerprint = judge.fingerprint
    digest = fingerprint.digest
    store.put_judge(judge.name, fingerprint)
    keys = [t.key for t in tasks]
    cached = kind.judged_keys(store, keys, True)
    todo = [k for k in keys if k not in cached]
    stored_before = kind.judged_keys(store, todo, False)
    snapshot: dict[str, tuple[str, int, str] | None] = dict.fromkeys(todo)
    if stored_before:
        for k, stored in kind.get_by_key(store, list(stored_before)).items():
            snapshot[k] = _snapshot(stored)
    remote: Any = None
    if settings.ray is not None and todo:  # nothing to call: no cluster needed
        from pasture.annotate.ray_backend import RemoteJudge  # only with ray: pasture runs without it installed

        remote = await RemoteJudge.start(judge, settings)
    run = _Run(store, judge if remote is None else remote, tasks, settings, kind)
    try:
        with ProgressBar(len(tasks), description=judge.name, enabled=progress) as bar:
            bar.update(completed=len(cached), calls=0, tokens=0, cost=0.0, failed=0)
            await run.run(todo, snapshot, bar)
    finally:
        try:
            run.writer.close()  # every completed judgment is in the store before the report is built
        finally:
            if remote is not None:
                await remote.close()
    # collect final judgments: ours from memory, the rest (cached, other processes') from the store
    from_store = kind.get_by_key(store, [k for k in keys if k not in run.own])
    judgments: list[R] = []
    n_parse_error = n_error = 0
    for k in keys:
        j = run.own.get(k) or from_store.get(k)
        if j is None or (k not in run.own and k not in cached and k not in run.others):
            continue
        judgments.append(j)
        n_parse_error += j.status == "parse_error"
        n_error += j.status == "error"
    n_new = sum(j.status == "ok" for j in run.own.values())
    c = run.counters
    unpriced = c.calls > 0 and run.price is None and all(j.cost_usd is None for j in run.own.values())
    return AnnotationReport(
        judge_name=judge.name,
        judge_digest=digest,
        judgments=tuple(judgments),
        n_judgments=len(tasks),
        n_cached=len(cached),
        n_new=n_new,
        n_by_others=sum(1 for k in run.others if from_store.get(k) is not None and from_store[k].status == "ok"),
        n_parse_error=n_parse_error,
        n_error=n_error,
        n_missing=len(tasks) - len(judgments),
        calls=c.calls,
        transient_retries=c.transient_retries,
        parse_retries=c.parse_retries,
        prompt_tokens=c.prompt_tokens,
        completion_tokens=c.completion_tokens,
        cost_usd=None if unpriced else (c.cost_usd if math.isfinite(c.cost_usd) else 0.0),  # unknown is not free
        wall_s=time.monotonic() - started,
        aborted=run.aborted,
    )


async def annotate_async(
    store: Store,
    judge: Judge,
    pairs: Sequence[PairToJudge],
    *,
    settings: EngineSettings | None = None,
    position: Position = "alpaca_eval",
    replicates: int = 1,
    progress: bool = True,
) -> AnnotationReport:
    """:func:`annotate` for callers already inside an event loop."""
    settings = settings if settings is not None else EngineSettings()
    settings.validate()
    tasks = build_tasks(judge.fingerprint.digest, pairs, position=position, replicates=replicates)
    return await run_tasks(store, judge, tasks, settings, kind=PAIRWISE_RECORDS, progress=progress)


def annotate(
    store: Store,
    judge: Judge,
    pairs: Sequence[PairToJudge],
    *,
    settings: EngineSettings | None = None,
    position: Position = "alpaca_eval",
    replicates: int = 1,
    progress: bool = True,
) -> AnnotationReport:
    """Judge ``pairs`` with ``judge`` and store every judgment in ``store``; returns what happened.

    Parameters
    ----------
    store:
        The pasture store: read for cached judgments, written as each judgment completes, and used for
        claims so several processes can share it.
    judge:
        Any :class:`pasture.judges.base.Judge`; its fingerprint digest is part of every key.
    pairs:
        Reference-vs-model pairs (:class:`PairToJudge`); a repeated pair is judged once.
    settings:
        How the engine runs (concurrency, quotas, retries, timeouts, claims): :class:`EngineSettings`,
        its defaults when None. They never change a verdict, so they are not part of any key.
    position:
        Which output the judge sees first (see :data:`Position`); ``both`` doubles the judgments.
    replicates:
        Independent judgments per pair and order (replicate index is part of the key).
    progress:
        Show a progress bar on stderr.

    The returned :class:`AnnotationReport` counts every judgment asked for; ``report.ok`` is False when any
    failed. Failed judgments are stored with their error and retried by the next run.
    """
    return asyncio.run(
        annotate_async(
            store, judge, pairs, settings=settings, position=position, replicates=replicates, progress=progress
        )
    )
