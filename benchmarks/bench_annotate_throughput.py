"""Engine throughput against an instant stub server: pasture vs a minimal AsyncOpenAI loop vs AlpacaEval 0.6.6.

All three talk to the same stub (benchmarks/stub_openai_server.py, its own process) in one run, with the
same concurrency and the same prompts (pasture's built-in logprob template, one output token, logprobs).
The stub answers instantly, so calls/second measures client-side overhead only:

* ideal: a minimal loop of ``AsyncOpenAI.chat.completions.create`` calls (no store, no parsing); its client
  is created inside the timed region, as pasture's is;
* raw: the same minimal loop through the SDK's plain ``client.post`` with the JSON body, the reply parsed with
  ``json.loads``: the request path pasture's OpenAI provider takes, so pasture against it is the engine's own
  overhead (keys, claims, parsing, the store), with the SDK's typed ``create`` out of both;
* pasture: ``pasture.annotate.annotate`` with the ``gpt-4o-mini-logprob`` judge pointed at the stub, into a
  fresh store (keys, claims, parsing, every judgment stored, no progress bar);
* peer: AlpacaEval's ``PairwiseAnnotator`` with its ``weighted_alpaca_eval_gpt4_turbo`` config, pointed at
  the stub through OPENAI_API_BASE (fewer pairs: it is slow), run by the peer's own Python.

The machine may be shared, so each repeat interleaves ideal, raw and pasture as A B C C B A (two blocks of n/2 calls
each; a load that drifts linearly through the repeat cancels out) and each client is compared with the ideal
of its own repeat, per wall second and per CPU second of the client process (all its threads): the CPU
figure is what the client costs per call and moves less with other load on the machine; the wall figure is
the throughput seen. Every repeat's ratios are printed, then medians with their range. Both clients are
warmed up first (untimed): the first calls in a process pay the SDK's lazy imports; and the garbage of
earlier blocks is collected before each block, so a full collection (up to ~0.1 s) never lands on one client.

"Without stalling calls" is measured twice, each against the ideal: the mean number of calls in flight
while calls ran (summed call time over the time from the first call's start to the last one's end, as a
fraction of the concurrency: 1.0 means the window was always full; pasture's calls are timed around its
judge's ``judge()`` by a thin wrapper), with per-call latency p50/p99, and the longest and 99th-percentile
gap between two consecutive requests arriving at the stub (a stalled event loop leaves a gap as long as
the stall).
Usage: ``.venv/bin/python benchmarks/bench_annotate_throughput.py [--n 2000] [--concurrency 32]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from openai import AsyncOpenAI

from pasture.annotate import EngineSettings, PairToJudge, annotate
from pasture.judges import JudgeRequest, get_judge
from pasture.local_models import free_port
from pasture.store import Store
from stub_openai_server import StubProcess

HERE = Path(__file__).resolve().parent
JUDGE = "gpt-4o-mini-logprob"


def make_pairs(n: int, tag: str) -> list[PairToJudge]:
    """Distinct pairs of AlpacaEval-like size (a few hundred characters per output)."""
    return [
        PairToJudge(
            instruction=f"Explain topic number {i} ({tag}) to a curious twelve-year-old in a short paragraph.",
            output_1=f"Topic {i} is about how things work. " * 8,
            generator_1="reference",
            output_2=f"Here is a simple explanation of topic {i}: it connects ideas you already know. " * 5,
            generator_2="model",
        )
        for i in range(n)
    ]


class TimedJudge:
    """Delegates to a judge and records each call's (start, end), for the window measurement (~1 µs a call)."""

    def __init__(self, judge: Any) -> None:
        self._judge = judge
        self.spans: list[tuple[float, float]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._judge, name)

    async def judge(self, request: JudgeRequest) -> Any:
        began = time.perf_counter()
        try:
            return await self._judge.judge(request)
        finally:
            self.spans.append((began, time.perf_counter()))


class Rate:
    """One measurement: calls, wall and CPU seconds (all threads of the measuring process), each call's
    (start, end), and the stub's view of the arrivals (longest and 99th-percentile gap between requests)."""

    def __init__(
        self,
        calls: int,
        seconds: float,
        cpu_seconds: float,
        spans: list[tuple[float, float]] | None = None,
        stub: dict[str, float] | None = None,
    ) -> None:
        self.calls = calls
        self.seconds = seconds
        self.cpu_seconds = cpu_seconds
        self.spans = spans or []
        self.latencies = [end - start for start, end in self.spans]
        # time from the first call's start to the last one's end: the window measurement leaves out setup
        self.call_seconds = max(e for _, e in self.spans) - min(s for s, _ in self.spans) if self.spans else 0.0
        self.max_gap_ms = (stub or {}).get("max_gap_ms", float("nan"))
        self.p99_gap_ms = (stub or {}).get("p99_gap_ms", float("nan"))

    @property
    def wall(self) -> float:
        return self.calls / self.seconds

    @property
    def cpu(self) -> float:
        return self.calls / self.cpu_seconds

    def __add__(self, other: Rate) -> Rate:
        """Two blocks of one client in one repeat, as one measurement."""
        both = Rate(self.calls + other.calls, self.seconds + other.seconds, self.cpu_seconds + other.cpu_seconds)
        both.latencies = self.latencies + other.latencies
        both.call_seconds = self.call_seconds + other.call_seconds
        both.max_gap_ms = max(self.max_gap_ms, other.max_gap_ms)
        both.p99_gap_ms = max(self.p99_gap_ms, other.p99_gap_ms)
        return both

    def in_flight(self, concurrency: int) -> float:
        """Mean calls in flight while calls ran, as a fraction of ``concurrency``: summed call time over the
        time from the first call's start to the last one's end (1.0: the window was always full)."""
        return sum(self.latencies) / self.call_seconds / concurrency if self.latencies else float("nan")

    def latency_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def minimal_loop(
    base_url: str, messages: list[tuple[dict[str, str], ...]], concurrency: int, *, raw: bool = False
) -> Rate:
    """The ideal: AsyncOpenAI calls with ``concurrency`` workers and nothing else (client creation timed). With
    ``raw``, each call is the SDK's plain ``client.post`` of the JSON body, read raw: the request path pasture's
    OpenAI provider takes, so pasture against it measures the engine's own overhead, not the SDK's typed ``create``."""
    queue = iter(messages)
    spans: list[tuple[float, float]] = []
    start, cpu = time.perf_counter(), time.process_time()
    client = AsyncOpenAI(base_url=base_url, api_key="stub", max_retries=0)

    async def worker() -> None:
        for msgs in queue:
            began = time.perf_counter()
            body = {"model": "gpt-4o-mini", "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 5}
            if raw:
                response = await client.post(
                    "/chat/completions", cast_to=httpx.Response, body={**body, "messages": [dict(m) for m in msgs]}
                )
                json.loads(response.text)
            else:
                await client.chat.completions.create(messages=list(msgs), **body)  # type: ignore[call-overload]
            spans.append((began, time.perf_counter()))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = Rate(len(messages), time.perf_counter() - start, time.process_time() - cpu, spans)
    await client.close()
    return rate


def ideal_run(
    base_url: str, pairs: list[PairToJudge], concurrency: int, stub: StubProcess, *, raw: bool = False
) -> Rate:
    judge = get_judge(JUDGE, base_url="http://127.0.0.1:1/v1")
    messages = [
        judge.messages(JudgeRequest(p.instruction, p.output_1, p.output_2, shown_first=1))[0]  # type: ignore[attr-defined]
        for p in pairs
    ]
    stub.reset()
    gc.collect()  # no collection of earlier garbage lands in the timed block
    rate = asyncio.run(minimal_loop(base_url, messages, concurrency, raw=raw))
    stats = stub.stats()
    assert stats["requests"] == len(pairs) and stats["connections"] == concurrency, stats
    rate.max_gap_ms, rate.p99_gap_ms = stats["max_gap_ms"], stats["p99_gap_ms"]
    return rate


def pasture_run(base_url: str, pairs: list[PairToJudge], concurrency: int, workdir: Path, stub: StubProcess) -> Rate:
    judge = TimedJudge(get_judge(JUDGE, base_url=base_url))
    db = workdir / f"pasture-{time.monotonic_ns()}.db"
    stub.reset()
    with Store(db) as store:
        gc.collect()  # no collection of earlier garbage lands in the timed block
        start, cpu = time.perf_counter(), time.process_time()
        report = annotate(
            store,
            judge,  # type: ignore[arg-type]
            pairs,
            settings=EngineSettings(concurrency=concurrency),
            progress=False,
            position="reference_first",
        )
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        assert store.count_judgments() == len(pairs)
    stats = stub.stats()
    assert report.ok and report.calls == len(pairs) == stats["requests"], report.summary()
    assert stats["connections"] == concurrency, stats
    return Rate(report.calls, seconds, cpu_seconds, judge.spans, stats)


def peer_python() -> str | None:
    """The peer's interpreter: $PASTURE_PEER_PYTHON, else benchmarks/peer_env.sh (which honours $PASTURE_PEER_VENV)."""
    if os.environ.get("PASTURE_PEER_PYTHON"):
        return os.environ["PASTURE_PEER_PYTHON"]
    env = {**os.environ, "PASTURE_PEER_VENV": os.environ.get("PASTURE_PEER_VENV", "/work/peer")}
    try:
        out = subprocess.run(["bash", str(HERE / "peer_env.sh")], env=env, capture_output=True, text=True, check=True)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    return out.stdout.strip().splitlines()[-1]


def peer_run(python: str, base_url: str, pairs: list[PairToJudge], concurrency: int, workdir: Path) -> Rate:
    pairs_file = workdir / "peer_pairs.json"
    pairs_file.write_text(
        json.dumps([{"instruction": p.instruction, "output_1": p.output_1, "output_2": p.output_2} for p in pairs])
    )
    cache = workdir / f"peer-cache-{time.monotonic_ns()}.json"
    env = {
        **os.environ,
        "OPENAI_API_BASE": base_url,
        "OPENAI_API_KEY": "sk-stub",
        "OPENAI_MAX_CONCURRENCY": str(concurrency),
        "OPENAI_CLIENT_CONFIG_PATH": str(workdir / "no-client-config.yaml"),
    }
    out = subprocess.run(
        [python, str(HERE / "bench_annotate_peer.py"), str(pairs_file), str(cache)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["with_preference"] == len(pairs), result
    return Rate(len(pairs), result["seconds"], result["cpu_seconds"])


class _CountLoopErrors(logging.Handler):
    """Counts errors asyncio reports (its default exception handler logs them), e.g. a client closed on a
    loop that has ended: "Task exception was never retrieved ... Event loop is closed"."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().splitlines()[0])


def main() -> None:
    loop_errors = _CountLoopErrors()
    logging.getLogger("asyncio").addHandler(loop_errors)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per pasture/ideal measurement (two blocks)")
    parser.add_argument("--peer-n", type=int, default=300, help="calls per peer measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()

    python = None if args.no_peer else peer_python()
    rates: dict[str, list[Rate]] = {"ideal": [], "raw": [], "pasture": [], "peer": []}
    half = args.n // 2
    with StubProcess(free_port()) as stub, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # untimed warm-up of both clients: the first calls pay the SDK's lazy imports, whoever makes them
        ideal_run(stub.base_url, make_pairs(args.concurrency * 2, "warm-up ideal"), args.concurrency, stub)
        ideal_run(stub.base_url, make_pairs(args.concurrency * 2, "warm-up raw"), args.concurrency, stub, raw=True)
        pasture_run(stub.base_url, make_pairs(args.concurrency * 2, "warm-up"), args.concurrency, workdir, stub)
        for r in range(args.repeats):
            # A B C C B A: the typed-create loop, the raw-POST loop and pasture, each over two halves
            ideal = ideal_run(stub.base_url, make_pairs(half, f"run {r} ideal a"), args.concurrency, stub)
            raw = ideal_run(stub.base_url, make_pairs(half, f"run {r} raw a"), args.concurrency, stub, raw=True)
            ours = pasture_run(stub.base_url, make_pairs(half, f"run {r} a"), args.concurrency, workdir, stub)
            ours += pasture_run(stub.base_url, make_pairs(half, f"run {r} b"), args.concurrency, workdir, stub)
            raw += ideal_run(stub.base_url, make_pairs(half, f"run {r} raw b"), args.concurrency, stub, raw=True)
            ideal += ideal_run(stub.base_url, make_pairs(half, f"run {r} ideal b"), args.concurrency, stub)
            rates["ideal"].append(ideal)
            rates["raw"].append(raw)
            rates["pasture"].append(ours)
            if python is not None:
                rates["peer"].append(
                    peer_run(python, stub.base_url, make_pairs(args.peer_n, f"peer {r}"), args.concurrency, workdir)
                )
            print(
                f"repeat {r + 1}: "
                + ", ".join(
                    f"{k} {v[-1].wall:.0f} calls/s ({v[-1].cpu:.0f} per CPU s"
                    + (
                        f"; {v[-1].wall / ideal.wall:.2f} / {v[-1].cpu / ideal.cpu:.2f} of ideal)"
                        if k != "ideal"
                        else ")"
                    )
                    for k, v in rates.items()
                    if v
                ),
                file=sys.stderr,
            )
    names = {
        "ideal": ("minimal AsyncOpenAI loop (ideal)", args.n),
        "raw": ("minimal AsyncOpenAI loop, plain client.post (pasture's request path)", args.n),
        "pasture": ("pasture annotate", args.n),
        "peer": ("AlpacaEval 0.6.6 PairwiseAnnotator", args.peer_n),
    }
    print(f"\nthroughput against an instant stub, concurrency {args.concurrency}, {args.repeats} repeats")
    print("each client is compared with the ideal of its own repeat (A B B A); medians, range in brackets")
    print("| client | calls per repeat | calls/s | fraction of ideal | calls per CPU s | fraction of ideal (CPU) |")
    print("|---|---|---|---|---|---|")
    med: dict[str, float] = {}
    for key, runs in rates.items():
        if not runs:
            continue
        wall = [x.wall / i.wall for x, i in zip(runs, rates["ideal"], strict=False)]
        cpu = [x.cpu / i.cpu for x, i in zip(runs, rates["ideal"], strict=False)]
        med[key] = statistics.median(x.wall for x in runs)
        name, calls = names[key]
        print(
            f"| {name} | {calls} | {med[key]:.0f} | {statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f}) "
            f"| {statistics.median(x.cpu for x in runs):.0f} | {statistics.median(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f}) |"
        )
    print("\nper repeat, fraction of ideal (wall / CPU):")
    for key in ("raw", "pasture", "peer"):
        if rates[key]:
            ratios = [
                f"{x.wall / i.wall:.2f} / {x.cpu / i.cpu:.2f}" for x, i in zip(rates[key], rates["ideal"], strict=False)
            ]
            print(f"  {key}: " + ", ".join(ratios))
    if rates["raw"]:
        ratios = [
            f"{x.wall / i.wall:.2f} / {x.cpu / i.cpu:.2f}" for x, i in zip(rates["pasture"], rates["raw"], strict=True)
        ]
        print("  pasture against the raw-POST loop (the engine's own overhead): " + ", ".join(ratios))
    print("\nthe window and stalls, per repeat (ideal -> pasture):")
    print(
        "| repeat | calls in flight (of concurrency) | latency p50 ms | latency p99 ms | stub max gap ms | stub p99 gap ms |"
    )
    print("|---|---|---|---|---|---|")
    for r, (i, x) in enumerate(zip(rates["ideal"], rates["pasture"], strict=True)):
        print(
            f"| {r + 1} | {i.in_flight(args.concurrency):.2f} -> {x.in_flight(args.concurrency):.2f} "
            f"| {i.latency_ms(0.5):.1f} -> {x.latency_ms(0.5):.1f} | {i.latency_ms(0.99):.1f} -> {x.latency_ms(0.99):.1f} "
            f"| {i.max_gap_ms:.1f} -> {x.max_gap_ms:.1f} | {i.p99_gap_ms:.2f} -> {x.p99_gap_ms:.2f} |"
        )
    if "peer" in med:
        print(f"\npasture / AlpacaEval calls per second: {med['pasture'] / med['peer']:.1f}x")
    gc.collect()
    print(f"\nerrors reported by asyncio during the run: {len(loop_errors.messages)}")
    if loop_errors.messages:
        sys.exit(f"stray asyncio errors: {sorted(set(loop_errors.messages))}")


if __name__ == "__main__":
    main()
