"""Engine throughput against an instant stub server: pasture vs a minimal AsyncOpenAI loop vs AlpacaEval 0.6.6.

All three talk to the same stub (benchmarks/stub_openai_server.py, its own process) in one run, with the
same concurrency and the same prompts (pasture's built-in logprob template, one output token, logprobs).
The stub answers instantly, so calls/second measures client-side overhead only:

* ideal: a minimal loop of ``AsyncOpenAI.chat.completions.create`` calls (no store, no parsing);
* pasture: ``pasture.annotate.annotate`` with the ``gpt-4o-mini-logprob`` judge pointed at the stub, into a
  fresh store (keys, claims, parsing, one SQLite write per completed batch, no progress bar);
* peer: AlpacaEval's ``PairwiseAnnotator`` with its ``weighted_alpaca_eval_gpt4_turbo`` config, pointed at
  the stub through OPENAI_API_BASE (fewer pairs: it is slow), run by the peer's own Python.

Measurements alternate and repeat. The machine may be shared, so each client is compared with the ideal
measured right before it, and the table shows medians of those paired ratios, both per wall second and per
CPU second of the client process (all its threads): the CPU figure is what the client costs per call and
does not move with other load on the machine; the wall figure is the throughput seen.
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


class Rate:
    """Calls per wall second and per CPU second (all threads of the measuring process) of one measurement."""

    def __init__(self, calls: int, seconds: float, cpu_seconds: float) -> None:
        self.wall = calls / seconds
        self.cpu = calls / cpu_seconds


async def minimal_loop(base_url: str, messages: list[tuple[dict[str, str], ...]], concurrency: int) -> Rate:
    """The ideal: AsyncOpenAI calls with ``concurrency`` workers and nothing else."""
    client = AsyncOpenAI(base_url=base_url, api_key="stub", max_retries=0)
    queue = iter(messages)

    async def worker() -> None:
        for msgs in queue:
            await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=list(msgs),  # type: ignore[arg-type]
                max_tokens=1,
                temperature=0,
                logprobs=True,
                top_logprobs=5,
            )

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = Rate(len(messages), time.perf_counter() - start, time.process_time() - cpu)
    await client.close()
    return rate


def pasture_run(base_url: str, pairs: list[PairToJudge], concurrency: int, workdir: Path, stub: StubProcess) -> Rate:
    judge = get_judge(JUDGE, base_url=base_url)
    db = workdir / f"pasture-{time.monotonic_ns()}.db"
    stub.reset()
    with Store(db) as store:
        start, cpu = time.perf_counter(), time.process_time()
        report = annotate(
            store,
            judge,
            pairs,
            settings=EngineSettings(concurrency=concurrency),
            progress=False,
            position="reference_first",
        )
        rate = Rate(report.calls, time.perf_counter() - start, time.process_time() - cpu)
    assert report.ok and report.calls == len(pairs) == stub.requests(), report.summary()
    return rate


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
    parser.add_argument("--n", type=int, default=2000, help="calls per pasture/ideal measurement")
    parser.add_argument("--peer-n", type=int, default=300, help="calls per peer measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()

    python = None if args.no_peer else peer_python()
    judge = get_judge(JUDGE, base_url="http://127.0.0.1:1/v1")
    rates: dict[str, list[Rate]] = {"ideal": [], "pasture": [], "peer": []}
    with StubProcess(free_port()) as stub, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for r in range(args.repeats):
            pairs = make_pairs(args.n, f"run {r}")
            messages = [
                judge.messages(JudgeRequest(p.instruction, p.output_1, p.output_2, shown_first=1))[0]  # type: ignore[attr-defined]
                for p in pairs
            ]
            stub.reset()
            rates["ideal"].append(asyncio.run(minimal_loop(stub.base_url, messages, args.concurrency)))
            assert stub.requests() == args.n
            rates["pasture"].append(pasture_run(stub.base_url, pairs, args.concurrency, workdir, stub))
            if python is not None:
                rates["peer"].append(
                    peer_run(python, stub.base_url, make_pairs(args.peer_n, f"peer {r}"), args.concurrency, workdir)
                )
            print(
                f"repeat {r + 1}: "
                + ", ".join(f"{k} {v[-1].wall:.0f} calls/s ({v[-1].cpu:.0f} per CPU s)" for k, v in rates.items() if v),
                file=sys.stderr,
            )
    names = {
        "ideal": ("minimal AsyncOpenAI loop (ideal)", args.n),
        "pasture": ("pasture annotate", args.n),
        "peer": ("AlpacaEval 0.6.6 PairwiseAnnotator", args.peer_n),
    }
    print(f"\nthroughput against an instant stub, concurrency {args.concurrency}, {args.repeats} repeats")
    print("each client is compared with the ideal measured next to it; medians, range in brackets")
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
    if "peer" in med:
        print(f"\npasture / AlpacaEval calls per second: {med['pasture'] / med['peer']:.1f}x")
    gc.collect()
    print(f"\nerrors reported by asyncio during the run: {len(loop_errors.messages)}")
    if loop_errors.messages:
        sys.exit(f"stray asyncio errors: {sorted(set(loop_errors.messages))}")


if __name__ == "__main__":
    main()
