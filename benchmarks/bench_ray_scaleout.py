"""Scale-out on Ray: judgments per second with 1 and with 2 Ray workers, as a ratio.

A local Ray cluster (``benchmarks/local_ray_cluster.py``: ``ray start --head`` with 2 CPUs on this machine)
and the stub OpenAI server (``benchmarks/stub_openai_server.py``, its own process) with a fixed latency.
Each measurement is ``pasture.annotate.annotate(..., settings=EngineSettings(ray=..., ray_workers=w))``
of distinct pairs into a fresh store, with the workers already started (a warm-up run with the same judge
starts them; a process keeps its workers between runs), so it times the calls, not the start-up. The
start-up (connecting, starting the workers) is measured once per worker count, apart.

Two settings:

* ``per-worker capacity``: each worker takes ``--per-worker`` calls at a time and the engine's concurrency
  is ``workers x per-worker`` (a worker is the bottleneck, as when each holds a model or a connection
  budget): the second worker should double throughput;
* ``same total concurrency``: the engine's concurrency stays ``--concurrency`` and is shared among the
  workers: against a latency-bound judge one worker already keeps that many calls in flight, so a second
  one should change little (what Ray adds there is capacity, not speed).

Repeats alternate 1 and 2 workers; the table gives medians and the ratio of medians.
Usage: ``nice -n 10 .venv/bin/python benchmarks/bench_ray_scaleout.py [--n 400] [--latency-ms 100]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from local_ray_cluster import LocalRayCluster
from pasture.annotate import EngineSettings, PairToJudge, annotate
from pasture.judges import get_judge
from pasture.local_models import free_port
from pasture.store import Store
from stub_openai_server import StubProcess

JUDGE = "smollm2-logprob-server"


def make_pairs(n: int, tag: str) -> list[PairToJudge]:
    return [
        PairToJudge(f"Explain topic {i} ({tag}) briefly.", f"Topic {i} is simple.", "reference",
                    f"Topic {i}: here is a short explanation.", "model")
        for i in range(n)
    ]  # fmt: skip


def run(judge: object, pairs: list[PairToJudge], settings: EngineSettings, workdir: Path) -> float:
    """Judgments per second of one run into a fresh store."""
    with Store(workdir / f"s-{time.monotonic_ns()}.db") as store:
        start = time.perf_counter()
        report = annotate(store, judge, pairs, settings=settings, position="reference_first", progress=False)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
    assert report.ok and report.calls == len(pairs), report.summary()
    return len(pairs) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="judgments per measurement")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="the stub's fixed latency")
    parser.add_argument("--per-worker", type=int, default=4, help="calls in flight per worker (first setting)")
    parser.add_argument("--concurrency", type=int, default=16, help="engine concurrency (second setting)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with LocalRayCluster(num_cpus=2) as cluster, StubProcess(free_port(), latency_ms=args.latency_ms) as stub:
        settings = {
            "per-worker capacity": lambda w: EngineSettings(
                concurrency=w * args.per_worker,
                ray=cluster.address,
                ray_workers=w,
                ray_worker_concurrency=args.per_worker,
            ),
            "same total concurrency": lambda w: EngineSettings(
                concurrency=args.concurrency, ray=cluster.address, ray_workers=w
            ),
        }
        judge = get_judge(JUDGE, base_url=stub.base_url)
        rates: dict[tuple[str, int], list[float]] = {}
        startup: dict[tuple[str, int], float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            for name, make in settings.items():
                for w in (1, 2):
                    start = time.perf_counter()
                    run(judge, make_pairs(1, f"warm-{name}-{w}"), make(w), workdir)  # starts (and keeps) the workers
                    startup[(name, w)] = time.perf_counter() - start
                for r in range(args.repeats):
                    for w in (1, 2):
                        rate = run(judge, make_pairs(args.n, f"{name}-{w}-{r}"), make(w), workdir)
                        rates.setdefault((name, w), []).append(rate)
                        print(f"{name}, {w} worker(s), repeat {r + 1}: {rate:.1f} judgments/s", flush=True)
    latency_s = args.latency_ms / 1000
    print(
        f"\n{args.n} judgments per run, stub latency {args.latency_ms:g} ms, {args.repeats} repeats (medians)\n"
        "| setting | in flight (1 / 2 workers) | 1 worker | 2 workers | ratio 2:1 | ideal 1 / 2 workers | start-up 1 / 2 workers |\n"
        "|---|---|---|---|---|---|---|"
    )
    for name, make in settings.items():
        one, two = (statistics.median(rates[(name, w)]) for w in (1, 2))
        flight = [make(w).concurrency for w in (1, 2)]
        ideal = " / ".join(f"{f / latency_s:.0f}" for f in flight)
        boot = " / ".join(f"{startup[(name, w)]:.1f} s" for w in (1, 2))
        print(
            f"| {name} | {flight[0]} / {flight[1]} | {one:.1f}/s | {two:.1f}/s | {two / one:.2f} | {ideal} | {boot} |"
        )


if __name__ == "__main__":
    main()
