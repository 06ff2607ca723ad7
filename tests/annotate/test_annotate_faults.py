"""Fault tests: the engine against the real llama.cpp server behind a fault-injecting proxy.

Calls are counted at the proxy: ``requests`` is every call the engine made, ``forwarded`` every call that
reached the real server (what a hosted API would bill), ``delivered`` every intact answer per request body.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from annotate_support import short_pairs
from faultproxy import FaultProxy

from pasture.annotate import EngineSettings, annotate, plan
from pasture.judges import get_judge
from pasture.store import Store

JUDGE = "smollm2-logprob-server"
"""H2's logprob judge over the OpenAI SDK, pointed at the proxy in front of the llama.cpp server."""

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_every_fault_kind_is_retried_and_nothing_is_paid_twice(proxy: FaultProxy, tmp_path: Path) -> None:
    pairs = short_pairs(8)
    # the first six calls fail, one of each kind; every failure costs exactly one more call
    proxy.set_schedule({0: "429", 1: "500", 2: "truncate", 3: "garbage", 4: "unparsable", 5: "hang"})
    proxy.retry_after_s = 1.0
    proxy.hang_s = 18.0
    judge = get_judge(JUDGE, base_url=proxy.base_url)
    with Store(tmp_path / "s.db") as store:
        dry = plan(store, judge, pairs)
        assert (dry.n_judgments, dry.n_calls, dry.n_cached) == (8, 8, 0)
        assert proxy.requests == 0  # a dry run spends nothing
        report = annotate(
            store,
            judge,
            pairs,
            settings=EngineSettings(
                concurrency=2,
                timeout_s=15.0,  # well above a real call, even on a loaded machine with 2 calls queued
                max_retries=6,
                parse_retries=1,
                backoff_base_s=0.05,
            ),
            progress=False,
        )
        assert report.ok, report.summary()
        assert (report.n_new, report.n_cached, report.n_failed) == (8, 0, 0)
        # 8 judgments + 5 transient retries + 1 parse retry, all counted by the engine and the proxy alike
        assert proxy.requests == 14 == report.calls
        assert (report.transient_retries, report.parse_retries) == (5, 1)
        # reached the server: 8 good answers + the truncated, garbage and unparsable ones
        assert proxy.forwarded == 11
        assert sorted(proxy.delivered.values()) == [1] * 8  # every judgment paid for once, none twice
        stored = store.get_judgments(status="ok")
        assert len(stored) == 8
        assert {j.key for j in stored} == {j.key for j in report.judgments}
        assert sum(j.attempts for j in stored) == 14
        # Retry-After is honoured: the retry after the 429 came no sooner than the server asked
        t429, body429, _ = next(a for a in proxy.arrivals if a[2] == "429")
        t_retry = min(t for t, body, _ in proxy.arrivals if body == body429 and t > t429)
        assert t_retry - t429 >= 1.0
        # a second run is free
        again = annotate(store, judge, pairs, progress=False)
        assert (again.n_cached, again.calls) == (8, 0)
        assert proxy.requests == 14


def test_exhausted_retries_are_stored_reported_and_retried_by_the_next_run(proxy: FaultProxy, tmp_path: Path) -> None:
    pairs = short_pairs(7, tag=" again")
    # concurrency 1, so calls arrive in key order: pair 0 gets two 500s, pair 1 a 429 then garbage (both
    # exhaust max_retries=1), pair 2 two unparsable answers (exhausts parse_retries=1), pair 3 a 400
    proxy.set_schedule({0: "500", 1: "500", 2: "429", 3: "garbage", 4: "unparsable", 5: "unparsable", 6: "400"})
    proxy.retry_after_s = 0.1
    judge = get_judge(JUDGE, base_url=proxy.base_url)
    with Store(tmp_path / "s.db") as store:
        report = annotate(
            store,
            judge,
            pairs,
            settings=EngineSettings(concurrency=1, max_retries=1, parse_retries=1, backoff_base_s=0.05),
            progress=False,
        )
        assert not report.ok
        assert (report.n_new, report.n_error, report.n_parse_error, report.n_missing) == (3, 3, 1, 0)
        assert report.n_new + report.n_failed == report.n_judgments == 7
        assert proxy.requests == report.calls == 2 + 2 + 2 + 1 + 3
        status = {j.instruction: j for j in report.judgments}
        assert status[pairs[0].instruction].status == "error" and "HTTP 500" in (
            status[pairs[0].instruction].error or ""
        )
        assert status[pairs[1].instruction].status == "error"
        unparsable = status[pairs[2].instruction]
        assert unparsable.status == "parse_error" and unparsable.preference is None
        assert "banana" in (unparsable.raw_completion or "")  # the raw reply is kept
        assert status[pairs[3].instruction].status == "error" and status[pairs[3].instruction].attempts == 1
        # nothing is silently dropped: the failures are in the store, with their errors
        failed = store.get_judgments(status="error") + store.get_judgments(status="parse_error")
        assert len(failed) == 4 and all(j.error for j in failed)
        assert plan(store, judge, pairs).n_calls == 4

        proxy.set_schedule({})
        rerun = annotate(store, judge, pairs, settings=EngineSettings(concurrency=1), progress=False)
        assert rerun.ok, rerun.summary()
        assert (rerun.n_cached, rerun.n_new, rerun.calls) == (3, 4, 4)
        assert proxy.requests == 4  # only the failed judgments were called again
        assert len(store.get_judgments(status="ok")) == 7
        # attempts accumulate across runs: pair 0 took 2 failed calls, then 1 good one
        assert (
            store.get_judgments_by_key([status[pairs[0].instruction].key])[status[pairs[0].instruction].key].attempts
            == 3
        )
