"""Engine throughput against an instant stub server: pasture vs a minimal AsyncOpenAI loop vs AlpacaEval 0.6.6.

All three talk to the same stub (benchmarks/stub_openai_server.py, its own process) in one run, with the
same concurrency and the same prompts (pasture's built-in logprob template, one output token, logprobs).
The stub answers instantly, so calls/second measures client-side overhead only:

* ideal: a minimal loop of ``AsyncOpenAI.chat.completions.create`` calls (no store, no parsing);
* pasture: ``pasture.annotate.annotate`` with the ``gpt-4o-mini-logprob`` judge pointed at the stub, into a
  fresh store (keys, claims, parsing, one SQLite write per completed batch, no progress bar);
* peer: AlpacaEval's ``PairwiseAnnotator`` with its ``weighted_alpaca_eval_gpt4_turbo`` config, pointed at
  the stub through OPENAI_API_BASE (fewer pairs: it is slow), run by the peer's own Python.

Measurements alternate and repeat; the table shows the median calls/second of each and the ratios.
Usage: ``.venv/bin/python benchmarks/bench_annotate_throughput.py [--n 2000] [--concurrency 32]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openai import AsyncOpenAI

from pasture.annotate import PairToJudge, annotate
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


async def minimal_loop(base_url: str, messages: list[tuple[dict[str, str], ...]], concurrency: int) -> float:
    """The ideal: AsyncOpenAI calls with ``concurrency`` workers and nothing else; returns calls/second."""
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

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    await client.close()
    return len(messages) / seconds


def pasture_run(base_url: str, pairs: list[PairToJudge], concurrency: int, workdir: Path, stub: StubProcess) -> float:
    judge = get_judge(JUDGE, base_url=base_url)
    db = workdir / f"pasture-{time.monotonic_ns()}.db"
    stub.reset()
    with Store(db) as store:
        start = time.perf_counter()
        report = annotate(store, judge, pairs, concurrency=concurrency, progress=False, position="reference_first")
        seconds = time.perf_counter() - start
    assert report.ok and report.calls == len(pairs) == stub.requests(), report.summary()
    return report.calls / seconds


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


def peer_run(python: str, base_url: str, pairs: list[PairToJudge], concurrency: int, workdir: Path) -> float:
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
    return len(pairs) / result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per pasture/ideal measurement")
    parser.add_argument("--peer-n", type=int, default=300, help="calls per peer measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()

    python = None if args.no_peer else peer_python()
    judge = get_judge(JUDGE, base_url="http://127.0.0.1:1/v1")
    rates: dict[str, list[float]] = {"ideal": [], "pasture": [], "peer": []}
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
                f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f} calls/s" for k, v in rates.items() if v),
                file=sys.stderr,
            )
    med = {k: statistics.median(v) for k, v in rates.items() if v}
    print(f"\nthroughput against an instant stub, concurrency {args.concurrency}, median of {args.repeats}")
    print("| client | calls | calls/s | fraction of ideal |\n|---|---|---|---|")
    for name, calls in (("minimal AsyncOpenAI loop (ideal)", args.n), ("pasture annotate", args.n)):
        key = "ideal" if "ideal" in name else "pasture"
        print(f"| {name} | {calls} | {med[key]:.0f} | {med[key] / med['ideal']:.2f} |")
    if "peer" in med:
        print(
            f"| AlpacaEval 0.6.6 PairwiseAnnotator | {args.peer_n} | {med['peer']:.0f} | {med['peer'] / med['ideal']:.2f} |"
        )
        print(f"\npasture / AlpacaEval: {med['pasture'] / med['peer']:.1f}x")


if __name__ == "__main__":
    main()
