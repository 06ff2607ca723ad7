"""The engine's bookkeeping on a real SQLite store with programmatic judges (no model needed).

Transient failures need a real server and live in test_annotate_faults.py; here: keys, positions,
caching, parse errors, permanent errors, a crashing judge, the dry-run plan and the limits.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from annotate_support import short_pairs

from pasture.annotate import (
    AnnotationReport,
    EngineSettings,
    PairToJudge,
    annotate,
    annotate_async,
    build_tasks,
    pairs_from_outputs,
    plan,
)
from pasture.annotate.engine import Outcome, _StoreThread
from pasture.annotate.limits import TokenBucket, backoff_delay
from pasture.errors import InputError, StoreError
from pasture.judges import JudgeRequest, ProgrammaticJudge, Verdict, get_judge, longer_output_wins
from pasture.position import alpaca_eval_shown_first
from pasture.records import JudgeFingerprint, ModelOutput, judgment_key
from pasture.store import Store


def test_tasks_follow_the_position_policy_and_the_foundation_key() -> None:
    pairs = short_pairs(30)
    digest = "d" * 64
    tasks = build_tasks(digest, pairs + pairs[:5])  # repeated pairs are judged once
    assert len(tasks) == 30
    for t in tasks:
        assert t.shown_first == alpaca_eval_shown_first(t.pair.instruction)
        p = t.pair
        assert t.key == judgment_key(digest, p.instruction, p.output_1, p.output_2, t.shown_first, 0)
    assert {t.shown_first for t in tasks} == {1, 2}  # AlpacaEval's order switches some pairs
    both = build_tasks(digest, pairs, position="both", replicates=2)
    assert len(both) == 120 and len({t.key for t in both}) == 120
    assert {t.shown_first for t in build_tasks(digest, pairs, position="model_first")} == {2}
    assert {t.shown_first for t in build_tasks(digest, pairs, position="reference_first")} == {1}
    with pytest.raises(InputError, match="position"):
        build_tasks(digest, pairs, position="random")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="replicates"):
        build_tasks(digest, pairs, replicates=0)


def test_pairs_from_outputs_refuses_missing_or_ambiguous_references() -> None:
    ref = [ModelOutput(instruction=f"q{i}", output=f"r{i}", generator="ref", dataset="x") for i in range(3)]
    model = [ModelOutput(instruction=f"q{i}", output=f"m{i}", generator="m") for i in range(3)]
    pairs = pairs_from_outputs(model, ref)
    assert pairs[1] == PairToJudge("q1", "r1", "ref", "m1", "m", "x")
    with pytest.raises(InputError, match="no reference output"):
        pairs_from_outputs([*model, ModelOutput(instruction="q9", output="m9", generator="m")], ref)
    with pytest.raises(InputError, match="more than one output"):
        pairs_from_outputs(model, [*ref, ref[0]])


def test_cached_judgments_cost_nothing_and_both_orders_are_stored(tmp_path: Path) -> None:
    judge = ProgrammaticJudge(longer_output_wins, name="longer")
    pairs = short_pairs(10)
    with Store(tmp_path / "s.db") as store:
        first = annotate(store, judge, pairs[:6], position="both", progress=False)
        assert first.ok and (first.n_new, first.calls, first.n_judgments) == (12, 12, 12)
        assert store.get_judge(judge.fingerprint.digest) is not None  # the judge is stored first
        second = annotate(store, judge, pairs, position="both", progress=False)
        assert (second.n_cached, second.n_new, second.calls) == (12, 8, 8)
        assert len(second.judgments) == 20 and store.count_judgments() == 20
        assert [j.key for j in second.judgments] == [
            t.key for t in build_tasks(judge.fingerprint.digest, pairs, position="both")
        ]
        # the two orders of a pair are both in the store; this judge ignores the order, so they agree
        by_pair: dict[str, set[float | None]] = {}
        for j in store.get_judgments():
            by_pair.setdefault(j.instruction, set()).add(j.preference)
        assert all(len(v) == 1 for v in by_pair.values())
        assert {j.shown_first for j in store.get_judgments()} == {1, 2}


def _undecided_on_odd(instruction: str, output_1: str, output_2: str) -> float | None:
    """Prefers the model, but cannot decide (None: unparsable) for instructions with an odd number."""
    return None if int(instruction.split()[3].rstrip(".")) % 2 else 2.0


def test_unparsable_replies_are_retried_stored_with_their_status_and_reported(tmp_path: Path) -> None:
    judge = ProgrammaticJudge(_undecided_on_odd, name="odd")
    pairs = short_pairs(6)
    with Store(tmp_path / "s.db") as store:
        report = annotate(store, judge, pairs, settings=EngineSettings(parse_retries=2), progress=False)
        assert not report.ok
        assert (report.n_new, report.n_parse_error, report.n_failed) == (3, 3, 3)
        assert report.calls == 3 + 3 * 3 and report.parse_retries == 6  # each parse failure: 1 + 2 retries
        failed = store.get_judgments(status="parse_error")
        assert len(failed) == 3 and all(j.preference is None and j.attempts == 3 for j in failed)
        assert all("3 parse attempts" in (j.error or "") for j in failed)
        assert {j.key for j in report.failed} == {j.key for j in failed}
        assert plan(store, judge, pairs).n_retry == 3
        # a later run tries the failed ones again (and only them)
        again = annotate(store, judge, pairs, settings=EngineSettings(parse_retries=0), progress=False)
        assert (again.n_cached, again.calls, again.n_parse_error) == (3, 3, 3)
        assert all(j.attempts == 4 for j in store.get_judgments(status="parse_error"))


def _always_raises(instruction: str, output_1: str, output_2: str) -> float:
    raise ValueError("no verdict for you")


def test_repeated_permanent_errors_abort_the_run_and_leave_the_rest_undone(tmp_path: Path) -> None:
    judge = ProgrammaticJudge(_always_raises, name="raises")
    with Store(tmp_path / "s.db") as store:
        report = annotate(store, judge, short_pairs(12), settings=EngineSettings(concurrency=1), progress=False)
        assert report.aborted is not None and "5 permanent errors" in report.aborted
        assert (report.n_error, report.n_missing, report.calls) == (5, 7, 5)
        assert report.n_failed == 12 and not report.ok
        stored = store.get_judgments()
        assert len(stored) == 5 and all(j.status == "error" and "ValueError" in (j.error or "") for j in stored)
        assert store._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # claims released


class _CrashingJudge:
    """A judge with a bug: it raises an unexpected exception on one instruction."""

    name = "crashing"

    def __init__(self) -> None:
        self.inner = ProgrammaticJudge(longer_output_wins, name="crashing")

    @property
    def fingerprint(self) -> JudgeFingerprint:
        return self.inner.fingerprint

    async def judge(self, request: JudgeRequest) -> Verdict:
        if "number 3" in request.instruction:
            await asyncio.sleep(0.05)
            raise RuntimeError("bug in judge")
        return await self.inner.judge(request)

    def estimate_tokens(self, request: JudgeRequest) -> tuple[int, int]:
        return 0, 0

    def price_per_token(self) -> tuple[float, float] | None:
        return 0.0, 0.0


def test_a_judge_bug_stops_the_run_but_keeps_what_completed(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(RuntimeError, match="bug in judge"):
            annotate(store, _CrashingJudge(), short_pairs(8), settings=EngineSettings(concurrency=2), progress=False)
        assert store.count_judgments() >= 3  # pairs 0-2 finished before pair 3 crashed
        assert all(j.status == "ok" for j in store.get_judgments())
        assert store._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_dry_run_counts_calls_and_prices_them_without_spending(tmp_path: Path) -> None:
    judge = get_judge("gpt-4o-mini-logprob")  # built without a key; the plan makes no call
    pairs = short_pairs(10)
    with Store(tmp_path / "s.db") as store:
        dry = plan(store, judge, pairs, position="both")
        assert (dry.n_judgments, dry.n_calls, dry.n_cached) == (20, 20, 0)
        assert dry.max_calls == 20 * 7 * 2
        price = judge.price_per_token()
        assert price is not None and dry.cost_usd is not None and dry.cost_usd > 0
        assert dry.cost_usd == pytest.approx(dry.prompt_tokens * price[0] + dry.completion_tokens * price[1])
        assert dry.completion_tokens == 20  # one token per logprob call
        assert store.count_judgments() == 0 and store.judges() == []  # nothing written
        assert "20 judgments" in dry.summary()


def test_backoff_grows_with_jitter_and_never_undercuts_retry_after() -> None:
    rng = random.Random(0)
    for attempt in range(1, 10):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, base_s=0.5, max_s=30.0, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered
    assert backoff_delay(1, base_s=0.5, max_s=30.0, retry_after=7.0, rng=rng) == 7.0
    assert backoff_delay(9, base_s=0.5, max_s=30.0, retry_after=1.0, rng=rng) >= 15.0


def test_token_bucket_waits_once_the_minute_quota_is_spent() -> None:
    async def scenario() -> float:
        bucket = TokenBucket(6000)  # 100 units per second
        await bucket.take(6000)  # a full minute's quota at once
        start = time.monotonic()
        await bucket.take(30)  # must wait for about 0.3 s of refill
        return time.monotonic() - start

    assert asyncio.run(scenario()) >= 0.25
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_requests_per_minute_limit_throttles_a_run(tmp_path: Path) -> None:
    judge = ProgrammaticJudge(longer_output_wins, name="longer")
    pairs = short_pairs(620)
    with Store(tmp_path / "s.db") as store:
        start = time.monotonic()
        report = annotate(
            store, judge, pairs, settings=EngineSettings(requests_per_minute=600, concurrency=16), progress=False
        )
        elapsed = time.monotonic() - start
    # the bucket holds one minute (600 calls); the 20 calls beyond it wait for 10 per second of refill
    assert report.ok and report.calls == 620
    assert elapsed >= 1.8


class _LockTaker:
    """On its first call, has another connection take the store's write lock for ``hold_s`` seconds (as a
    second process committing a long transaction would); it prefers the longer output."""

    def __init__(self, path: Path, hold_s: float) -> None:
        self.path, self.hold_s = path, hold_s
        self.thread: threading.Thread | None = None
        self.held = threading.Event()

    def __call__(self, instruction: str, output_1: str, output_2: str) -> float:
        if self.thread is None:
            self.thread = threading.Thread(target=self._hold)
            self.thread.start()
            self.held.wait(10)
        return longer_output_wins(instruction, output_1, output_2)

    def _hold(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        self.held.set()
        time.sleep(self.hold_s)
        conn.execute("COMMIT")
        conn.close()


def test_a_store_lock_held_elsewhere_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """Claims and writes wait for the lock on the store thread; the loop keeps serving (no stalled calls)."""
    path = tmp_path / "s.db"
    taker = _LockTaker(path, hold_s=2.0)
    judge = ProgrammaticJudge(taker, name="lock-taker", version="1")
    gaps: list[float] = []

    async def scenario() -> AnnotationReport:
        done = asyncio.Event()

        async def heartbeat() -> None:
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        beat = asyncio.ensure_future(heartbeat())
        with Store(path) as store:
            report = await annotate_async(
                store, judge, short_pairs(64), settings=EngineSettings(concurrency=4), progress=False
            )
        done.set()
        await beat
        return report

    start = time.monotonic()
    report = asyncio.run(scenario())
    elapsed = time.monotonic() - start
    assert taker.thread is not None
    taker.thread.join()
    assert report.ok and report.n_new == 64
    assert elapsed >= 2.0  # the run did wait for the lock (64 keys cannot all be claimed in the first window)
    assert max(gaps) < 1.0, f"the event loop stalled for {max(gaps):.2f} s"  # a claim on the loop: >= 2 s
    with Store(path) as store:
        assert store.count_judgments() == 64
        assert store._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_a_failing_store_stops_the_run_with_a_store_error_instead_of_hanging(tmp_path: Path) -> None:
    """The store thread gives up on a lock held past ``store_timeout_s``: the run raises, nothing waits forever."""
    path = tmp_path / "s.db"
    taker = _LockTaker(path, hold_s=4.0)
    judge = ProgrammaticJudge(taker, name="lock-taker", version="1")
    start = time.monotonic()
    with Store(path, timeout_s=0.3) as store, pytest.raises(StoreError, match="writing judgments failed"):
        annotate(
            store, judge, short_pairs(64), settings=EngineSettings(concurrency=4, store_timeout_s=0.3), progress=False
        )
    assert time.monotonic() - start < 4.0  # raised while the lock was still held
    assert taker.thread is not None
    taker.thread.join()


def test_store_thread_commits_judgments_that_complete_together_in_one_transaction(tmp_path: Path) -> None:
    judge = ProgrammaticJudge(longer_output_wins, name="longer")
    digest = judge.fingerprint.digest
    tasks = build_tasks(digest, short_pairs(50))
    outcome = Outcome(status="ok", raw_completion="2.0", latency_s=0.0)
    records = [
        t.record(digest, judge.name, outcome, Verdict(preference=2.0, status="ok", raw_completion="2.0")) for t in tasks
    ]

    async def scenario() -> _StoreThread:
        with Store(tmp_path / "s.db") as store:
            store.put_judge(judge.name, judge.fingerprint)
        thread = _StoreThread(tmp_path / "s.db", 5.0, asyncio.get_running_loop())
        for task, record in zip(tasks, records, strict=True):
            thread.put(task.key, record)
        thread.close()
        return thread

    thread = asyncio.run(scenario())
    assert thread.written == 50 and thread.commits < 5  # queued within WRITE_DELAY_S of each other
    with Store(tmp_path / "s.db") as store:
        assert store.judged_keys([t.key for t in tasks]) == {t.key for t in tasks}
        assert store.get_judgments_by_key([tasks[7].key])[tasks[7].key] == records[7]
