"""Interruption and sharing: a run killed with SIGKILL and rerun, and two processes on one store.

Calls are counted at the fault proxy (no faults scheduled) in front of the real llama.cpp server, which
serves one request at a time at temperature 0, so verdicts are reproducible and comparable.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from annotate_support import short_pairs
from faultproxy import FaultProxy

from pasture.annotate import EngineSettings, annotate
from pasture.judges import get_judge
from pasture.store import Store

JUDGE = "smollm2-logprob-server"
"""H2's logprob judge over the OpenAI SDK, pointed at the proxy in front of the llama.cpp server."""

pytestmark = [pytest.mark.model, pytest.mark.slow]

WORKER = Path(__file__).resolve().parent / "annotate_worker.py"


def _start_worker(
    proxy: FaultProxy, store: Path, pairs_file: Path, report: Path, *, concurrency: int, claim_ttl_s: float
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(WORKER), proxy.base_url, str(store), str(pairs_file), str(report)]
    cmd += ["--concurrency", str(concurrency), "--claim-ttl", str(claim_ttl_s)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _count_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def test_killed_run_resumes_with_only_the_missing_calls(proxy: FaultProxy, tmp_path: Path) -> None:
    pairs = short_pairs(12, tag=" (resume)")
    judge = get_judge(JUDGE, base_url=proxy.base_url)

    # the uninterrupted run, for comparison
    with Store(tmp_path / "whole.db") as store:
        whole = annotate(store, judge, pairs, settings=EngineSettings(concurrency=1), progress=False)
        assert whole.ok and whole.calls == proxy.requests == 12
        expected = {j.key: j.preference for j in store.get_judgments()}

    # the same run in a subprocess, killed with SIGKILL halfway
    proxy.set_schedule({})
    pairs_file = tmp_path / "pairs.json"
    pairs_file.write_text(json.dumps([asdict(p) for p in pairs]))
    killed_db = tmp_path / "killed.db"
    worker = _start_worker(proxy, killed_db, pairs_file, tmp_path / "killed.json", concurrency=1, claim_ttl_s=3.0)
    deadline = time.monotonic() + 120
    while _count_rows(killed_db) < 6:
        assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else ""
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    assert not (tmp_path / "killed.json").exists()
    calls_before_kill = proxy.requests
    with Store(killed_db) as store:
        stored = store.count_judgments()
        assert 6 <= stored < 12
        # lost: at most the call in flight (it reached the server, its answer never got stored) and one
        # judgment waiting for the store's writer thread at the moment of the kill
        assert calls_before_kill - stored <= 2

        # the rerun waits for the dead process's claims to expire, then makes exactly the missing calls
        proxy.set_schedule({})
        rerun = annotate(store, judge, pairs, settings=EngineSettings(concurrency=1, claim_ttl_s=3.0), progress=False)
        assert rerun.ok, rerun.summary()
        assert (rerun.n_cached, rerun.n_new) == (stored, 12 - stored)
        assert proxy.requests == rerun.calls == 12 - stored
        got = {j.key: j.preference for j in store.get_judgments()}
        print(
            f"kill/rerun: {stored} stored at the kill, {calls_before_kill} calls before it, rerun {rerun.calls} calls"
        )
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # the same set of judgments, with the same verdicts, as the uninterrupted run
    assert got.keys() == expected.keys()
    for key, preference in expected.items():
        assert got[key] == pytest.approx(preference, abs=1e-4)


def test_two_processes_share_one_store_without_paying_twice(proxy: FaultProxy, tmp_path: Path) -> None:
    pairs = short_pairs(12, tag=" (shared)")
    pairs_file = tmp_path / "pairs.json"
    pairs_file.write_text(json.dumps([asdict(p) for p in pairs]))
    db = tmp_path / "shared.db"
    Store(db).close()  # create the schema once, so both workers start on an existing store
    workers = [
        _start_worker(proxy, db, pairs_file, tmp_path / f"report{i}.json", concurrency=2, claim_ttl_s=30.0)
        for i in range(2)
    ]
    for w in workers:
        out, _ = w.communicate(timeout=240)
        assert w.returncode == 0, out.decode()
    reports = [json.loads((tmp_path / f"report{i}.json").read_text()) for i in range(2)]
    # no call made twice: 12 judgments, 12 calls at the proxy, each answer delivered once
    assert proxy.requests == proxy.forwarded == 12
    assert sorted(proxy.delivered.values()) == [1] * 12
    assert sum(r["calls"] for r in reports) == 12
    assert sum(r["n_new"] for r in reports) == 12
    assert all(r["calls"] > 0 for r in reports), reports  # claims split the work between them
    print(f"two processes: calls {[r['calls'] for r in reports]}, proxy {proxy.requests}")
    # each process reports the whole set: its own judgments plus those the other one made
    for r in reports:
        assert r["judgments"] == r["n_judgments"] == 12 and r["n_failed"] == 0
        assert r["n_new"] + r["n_by_others"] + r["n_cached"] == 12
    with Store(db) as store:
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert len(store.get_judgments(status="ok")) == store.count_judgments() == 12
        assert store._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
