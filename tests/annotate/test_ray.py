"""Scale-out on Ray (``--ray``): a real local cluster (``ray start --head``, 2 CPUs, 127.0.0.1), a real
fixed-latency judge server, and a Ray worker killed with SIGKILL in the middle of ``pasture annotate``.

What must hold: every judgment is stored 'ok' with the counts the report gives; no call whose judgment was
already stored is made again (counted at the server, by request); only the calls in flight on the killed
worker are repeated, each once, on the other worker; a rerun makes no call.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pasture.annotate import EngineSettings, PairToJudge, annotate
from pasture.errors import InputError
from pasture.generate import generate
from pasture.io import write_model_outputs
from pasture.judges import JudgeRequest, LLMJudge, get_judge, get_provider
from pasture.local_models import free_port
from pasture.providers.base import ChatRequest, Completion, TransientError
from pasture.records import EvalSet, Instruction, ModelOutput
from pasture.store import Store
from test_resources import load_module, require

REPO = Path(__file__).resolve().parents[2]
N = 120  # judgments
LATENCY_MS = 250  # the judge server's fixed latency
WORKERS, PER_WORKER = 2, 4  # 8 calls in flight: about 32 judgments a second


def _ray_installed() -> bool:
    return importlib.util.find_spec("ray") is not None


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A 2-CPU Ray head on this machine, stopped (its own processes only) however the test ends."""
    require(_ray_installed(), "ray is not installed (pip install 'pasture[ray]')")
    local = load_module(REPO / "benchmarks" / "local_ray_cluster.py")
    with local.LocalRayCluster(num_cpus=2) as c:
        try:
            yield c
        finally:  # leave this process as it was: no workers kept, not joined to a cluster about to stop
            if "pasture.annotate.ray_backend" in sys.modules:
                from pasture.annotate import ray_backend

                ray_backend.shutdown()
                ray_backend.ray.shutdown()


@pytest.fixture(scope="module")
def stub() -> Iterator[Any]:
    """The benchmarks' OpenAI-compatible stub on 127.0.0.1, answering every completion after LATENCY_MS."""
    module = load_module(REPO / "benchmarks" / "stub_openai_server.py")
    with module.StubProcess(free_port(), latency_ms=LATENCY_MS) as server:
        yield server


def _server_key(judge: LLMJudge, instruction: str, output_1: str, output_2: str, shown_first: int) -> str:
    """The stub's request key of the call the judge makes for one judgment (what was sent, as sent)."""
    request_key = sys.modules["stub_openai_server"].request_key
    (messages,) = judge.messages(JudgeRequest(instruction, output_1, output_2, shown_first=shown_first))  # type: ignore[arg-type]
    return str(request_key([dict(m) for m in messages]))


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing_and_repeats_no_finished_call(
    cluster: Any, stub: Any, tmp_path: Path
) -> None:
    pairs = [
        PairToJudge(f"Name the number {i}.", f"{i}", "reference", f"The number is {i}.", "model") for i in range(N)
    ]
    for name, slot in (("m.json", 2), ("r.json", 1)):
        write_model_outputs(
            [
                ModelOutput(
                    instruction=p.instruction,
                    output=getattr(p, f"output_{slot}"),
                    generator=getattr(p, f"generator_{slot}"),
                )
                for p in pairs
            ],
            tmp_path / name,
        )
    db = tmp_path / "store.db"
    args = [
        str(tmp_path / "m.json"), "--reference", str(tmp_path / "r.json"), "--store", str(db),
        "--judge", "smollm2-logprob-server", "--judge-base-url", stub.base_url, "--no-progress",
        "--ray", cluster.address, "--ray-workers", str(WORKERS), "--ray-worker-concurrency", str(PER_WORKER),
        "--concurrency", str(WORKERS * PER_WORKER), "--backoff-base", "0.05",
    ]  # fmt: skip
    env = {**cluster.env, "CI": os.environ.get("CI", "")}
    judge = get_judge("smollm2-logprob-server", base_url=stub.base_url)
    assert isinstance(judge, LLMJudge)
    stub.reset()
    others = set(cluster.actor_pids("PastureWorker"))  # workers of this process's own runs, if any

    run = subprocess.Popen(
        [sys.executable, "-m", "pasture", "annotate", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # mid-run: both workers up and a quarter of the judgments stored
        finished: list[Any] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            workers = [pid for pid in cluster.actor_pids("PastureWorker") if pid not in others]
            if len(workers) == WORKERS and db.exists():
                with Store(db) as store:
                    finished = store.get_judgments(status="ok")
                if len(finished) >= N // 4:
                    break
            time.sleep(0.05)
        assert run.poll() is None and len(finished) >= N // 4, "the run ended, or never got going, before the kill"
        assert len(finished) < N * 3 // 4, "the kill came too late to be mid-run"
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        output, _ = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, output

    # nothing lost: every judgment stored 'ok', and the report counts them so
    assert f"{N} judgments: 0 cached, {N} new, 0 by other processes, 0 unparsable, 0 errors, 0 missing" in output
    with Store(db) as store:
        stored = store.get_judgments(status="ok")
    assert len(stored) == N and {j.instruction for j in stored} == {p.instruction for p in pairs}

    # what reached the server: every judgment asked; the judgments finished before the kill asked once;
    # a judgment asked twice was in flight on the killed worker (at most PER_WORKER of them), and its second
    # call was the engine's retry (a lost call is a transient failure, retried on the other worker)
    by_key = stub.by_key()
    keys = {_server_key(judge, j.instruction, j.output_1, j.output_2, j.shown_first): j for j in stored}
    assert set(by_key) == set(keys), "the server got calls that are not these judgments' (or missed some)"
    assert all(by_key[_server_key(judge, j.instruction, j.output_1, j.output_2, j.shown_first)] == 1 for j in finished)
    repeated = [k for k, n in by_key.items() if n > 1]
    assert all(by_key[k] == 2 for k in repeated) and len(repeated) <= PER_WORKER, by_key
    calls, retries = (int(x) for x in re.findall(r"(\d+) calls \((\d+) transient retries", output)[0])
    assert 1 <= retries <= PER_WORKER, output  # the killed worker's calls in flight, and nothing else
    assert calls == N + retries and sum(by_key.values()) == N + len(repeated) <= calls
    assert sum(j.attempts for j in stored) == calls  # each stored judgment counts the calls made for it

    # a rerun (here through the Python API, with the same settings) calls nothing and needs no cluster
    requests = stub.requests()
    with Store(db) as store:
        again = annotate(
            store,
            judge,
            pairs,
            settings=EngineSettings(ray=cluster.address, ray_workers=WORKERS, ray_worker_concurrency=PER_WORKER),
            progress=False,
        )
    assert (again.n_cached, again.n_new, again.calls, again.n_failed) == (N, 0, 0, 0)
    assert stub.requests() == requests


@pytest.mark.slow
def test_generation_on_ray_stores_every_output_and_a_rerun_asks_nothing(
    cluster: Any, stub: Any, tmp_path: Path
) -> None:
    """``generate(..., ray=...)``: Ray actors hold copies of the provider; the outputs land in this process's store."""
    eval_set = EvalSet(name="ray-gen", instructions=tuple(Instruction(instruction=f"Count to {i}.") for i in range(24)))
    provider = get_provider("openai", model="stub", base_url=stub.base_url)
    stub.reset()
    with Store(tmp_path / "gen.db") as store:
        report = generate(
            store, eval_set, provider, generator="g", concurrency=8, progress=False, ray=cluster.address, ray_workers=2
        )
        assert report.ok and (report.n_new, report.n_cached) == (24, 0) and stub.requests() == 24
        assert {o.instruction for o in store.get_outputs(eval_set.digest, "g")} == {
            i.instruction for i in eval_set.instructions
        }
        again = generate(store, eval_set, provider, generator="g", progress=False, ray=cluster.address)
    assert (again.n_new, again.n_cached) == (0, 24) and stub.requests() == 24


@pytest.mark.slow
def test_a_lost_worker_fails_only_its_calls_and_comes_back(cluster: Any, stub: Any) -> None:
    """The pool under the engine: a killed worker's calls in flight are transient failures, the other worker's
    complete, and once Ray has restarted it (a new process) it answers and takes calls again."""
    from pasture.annotate.ray_backend import WorkerPool

    provider = get_provider("openai", model="stub", base_url=stub.base_url)  # the generation test's workers serve it
    hi = ChatRequest(({"role": "user", "content": "hi"},), {"max_tokens": 1})

    async def scenario() -> None:
        pool = await WorkerPool.start(
            provider, address=cluster.address, workers=2, per_worker=4, concurrency=8, label="stub"
        )
        try:
            pids = [await w.handle.ping.remote() for w in pool.workers]
            calls = [asyncio.ensure_future(pool.call("complete", hi)) for _ in range(8)]  # four on each worker
            await asyncio.sleep(LATENCY_MS / 2000)
            assert [w.inflight for w in pool.workers] == [4, 4]
            os.kill(pids[0], signal.SIGKILL)
            done = await asyncio.gather(*calls, return_exceptions=True)
            lost = [r for r in done if isinstance(r, TransientError)]
            assert len(lost) == 4 and all("Ray worker 0 was lost" in str(r) for r in lost), done
            assert sum(isinstance(r, Completion) for r in done) == 4
            async with asyncio.timeout(60):
                while not pool.workers[0].up:
                    await asyncio.sleep(0.05)
            assert (await pool.workers[0].handle.ping.remote()) not in pids
            more = [asyncio.ensure_future(pool.call("complete", hi)) for _ in range(8)]
            await asyncio.sleep(LATENCY_MS / 2000)
            assert [w.inflight for w in pool.workers] == [4, 4]  # both take calls again
            assert all(isinstance(r, Completion) for r in await asyncio.gather(*more))
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_a_process_joins_one_cluster(cluster: Any, stub: Any) -> None:
    """Once joined, the same cluster by loopback or by the address Ray records is accepted; another is an error."""
    from pasture.annotate.ray_backend import connect, ray

    connect(cluster.address)
    recorded = ray.get_runtime_context().gcs_address  # this machine's address, not 127.0.0.1
    connect(recorded)
    connect("auto")
    with pytest.raises(InputError, match="has joined the Ray cluster at"):
        connect(f"127.0.0.1:{stub.port}")  # something listens there, but not this process's cluster


def test_settings_refuse_ray_options_without_an_address_and_empty_ones() -> None:
    with pytest.raises(InputError, match="ray_workers needs ray"):
        EngineSettings(ray_workers=2).validate()
    with pytest.raises(InputError, match="ray_worker_concurrency must be at least 1"):
        EngineSettings(ray="auto", ray_worker_concurrency=0).validate()
    with pytest.raises(InputError, match="not empty"):
        EngineSettings(ray=" ").validate()
    EngineSettings(ray="127.0.0.1:6379", ray_workers=3, ray_worker_concurrency=2).validate()


def test_an_address_where_no_cluster_listens_is_a_quick_clear_error(tmp_path: Path) -> None:
    """Ray itself retries a dead address for minutes; pasture says at once that nothing answers there."""
    require(_ray_installed(), "ray is not installed (pip install 'pasture[ray]')")
    from pasture.judges.judge import ProgrammaticJudge, longer_output_wins

    start = time.monotonic()
    with (
        Store(tmp_path / "s.db") as store,
        pytest.raises(InputError, match=r"no Ray cluster answers at .127\.0\.0\.1:"),
    ):
        annotate(
            store,
            ProgrammaticJudge(longer_output_wins),
            [PairToJudge("i", "a", "r", "bb", "m")],
            settings=EngineSettings(ray=f"127.0.0.1:{free_port()}"),
            progress=False,
        )
    assert time.monotonic() - start < 30


def test_a_ray_address_without_ray_installed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pasture.judges.judge import ProgrammaticJudge, longer_output_wins

    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without pasture[ray] has: no ray to import
    monkeypatch.delitem(sys.modules, "pasture.annotate.ray_backend", raising=False)
    with Store(tmp_path / "s.db") as store, pytest.raises(InputError, match=r"pip install 'pasture\[ray\]'"):
        annotate(
            store,
            ProgrammaticJudge(longer_output_wins),
            [PairToJudge("i", "a", "r", "bb", "m")],
            settings=EngineSettings(ray="auto"),
            progress=False,
        )


def test_pasture_imports_without_ray() -> None:
    """Ray is optional and imported only by a run given --ray: importing pasture and its CLI never loads it."""
    code = "import sys, pasture, pasture.cli, pasture.annotate; assert 'ray' not in sys.modules, 'ray imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
