"""1,000 already-judged pairs against a 100,000-judgment store: calls, seconds and peak memory, vs AlpacaEval 0.6.6.

Builds (once per run, in a temporary folder) a pasture store holding 100,000 'ok' judgments of one judge
(1,000 instructions x 100 model generators against one reference, outputs of about 1,000 characters) and
the same 100,000 annotations as AlpacaEval's cache file for its ``weighted_alpaca_eval_gpt4_turbo``
annotator. Then, each in a fresh process so peak memory is its own, both are asked to annotate 1,000 of
those pairs again, pointed at the instant stub server (benchmarks/stub_openai_server.py), which counts the
calls that reach it:

* pasture: ``annotate`` (opening the store, keys, the cache lookup, collecting the 1,000 judgments);
* peer: ``PairwiseAnnotator(...)`` (loads its cache) + ``annotate_pairs``.

Seconds are the child's wall time from just before the store/annotator is opened to the end; peak memory is
the child's maximum resident set (including the interpreter and its imports, shown separately).
Usage: ``.venv/bin/python benchmarks/bench_annotate_cache.py [--no-peer]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_annotate_throughput import HERE, peer_python
from pasture.annotate import PairToJudge, build_tasks
from pasture.judges import get_judge
from pasture.local_models import free_port
from pasture.records import Judgment
from pasture.store import Store
from stub_openai_server import StubProcess


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited across fork+exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


JUDGE = "weighted_alpaca_eval_gpt4_turbo"
N_INSTRUCTIONS = 1000
N_GENERATORS = 100
TARGET_GENERATOR = 57


def _judge(base_url: str):  # type: ignore[no-untyped-def]
    """The official judge's definition (template from ../shared when present, else pasture's own)."""
    template = HERE.parent.parent / "shared" / "alpacaeval" / "judge_config" / "alpaca_eval_clf.txt"
    if template.is_file():
        return get_judge(JUDGE, template=str(template), base_url=base_url)
    return get_judge("gpt-4o-mini-logprob", base_url=base_url)


def pairs_for(generator: int) -> list[PairToJudge]:
    return [
        PairToJudge(
            instruction=f"Instruction {i}: describe item {i} in detail and give two examples.",
            output_1=f"Reference answer for item {i}. " * 36,
            generator_1="reference",
            output_2=f"Model {generator} answer for item {i}, with examples. " * 20,
            generator_2=f"model_{generator}",
            dataset="bench",
        )
        for i in range(N_INSTRUCTIONS)
    ]


def build(workdir: Path, base_url: str) -> tuple[Path, Path]:
    """The 100k-judgment pasture store and the same annotations as AlpacaEval's cache file."""
    judge = _judge(base_url)
    digest = judge.fingerprint.digest
    rng = random.Random(0)
    db = workdir / "store.db"
    peer_rows = []
    raw = {
        "finish_reason": "length",
        "index": 0,
        "logprobs": {"content": [{"token": "m", "logprob": -0.4, "top_logprobs": [{"token": "m", "logprob": -0.4}]}]},
        "message": {"content": "m", "role": "assistant"},
        "text": "m",
        "total_tokens": 700.0,
    }
    with Store(db) as store:
        store.put_judge(judge.name, judge.fingerprint)
        for g in range(N_GENERATORS):
            batch = []
            for task in build_tasks(digest, pairs_for(g)):
                p = task.pair
                preference = 1 + rng.random()
                batch.append(
                    Judgment(
                        judge_digest=digest,
                        judge_name=judge.name,
                        instruction=p.instruction,
                        output_1=p.output_1,
                        generator_1=p.generator_1,
                        output_2=p.output_2,
                        generator_2=p.generator_2,
                        shown_first=task.shown_first,
                        dataset=p.dataset,
                        preference=preference,
                        raw_completion=json.dumps(raw),
                        prompt_tokens=700,
                        completion_tokens=1,
                        cost_usd=0.007,
                        latency_s=0.5,
                    )
                )
                peer_rows.append(
                    {
                        "instruction": p.instruction,
                        "output_1": p.output_1,
                        "output_2": p.output_2,
                        "annotator": JUDGE,
                        "preference": preference,
                        "preference_time_per_example": 0.5,
                        "preference_price_per_example": 0.007,
                        "preference_date": "2026-01-01T00:00:00",
                        "preference_version": "alpaca_eval==0.6.6",
                        "preference_raw_completion": raw,
                    }
                )
            store.put_judgments(batch)
        assert store.count_judgments() == N_INSTRUCTIONS * N_GENERATORS
    cache = workdir / "peer_cache.json"
    cache.write_text(json.dumps(peer_rows))
    return db, cache


def child_pasture(db: Path, base_url: str) -> None:
    """In a fresh process: annotate the 1,000 cached pairs; print calls, seconds, memory as JSON."""
    from pasture.annotate import annotate

    baseline = peak_rss_mb()
    judge = _judge(base_url)
    judge.fingerprint  # noqa: B018  (computed before the clock starts, like the peer's config loading)
    start = time.perf_counter()
    with Store(db) as store:
        report = annotate(store, judge, pairs_for(TARGET_GENERATOR), progress=False)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "calls": report.calls,
                "cached": report.n_cached,
                "judgments": len(report.judgments),
                "seconds": seconds,
                "max_rss_mb": peak_rss_mb(),
                "baseline_rss_mb": baseline,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("STORE", "BASE_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_pasture(Path(args.child[0]), args.child[1])
        return
    python = None if args.no_peer else peer_python()
    with StubProcess(free_port()) as stub, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        db, cache = build(workdir, stub.base_url)
        print(
            f"built {N_INSTRUCTIONS * N_GENERATORS:,} judgments in {time.perf_counter() - start:.0f} s: store "
            f"{db.stat().st_size / 2**20:.0f} MiB, AlpacaEval cache {cache.stat().st_size / 2**20:.0f} MiB",
            file=sys.stderr,
        )
        stub.reset()
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(db), stub.base_url], capture_output=True, text=True, check=True
        )
        mine = json.loads(out.stdout.strip().splitlines()[-1])
        mine["stub_calls"] = stub.requests()
        assert mine["judgments"] == mine["cached"] == N_INSTRUCTIONS, mine
        peer = None
        if python is not None:
            pairs_file = workdir / "pairs.json"
            pairs_file.write_text(
                json.dumps(
                    [
                        {"instruction": p.instruction, "output_1": p.output_1, "output_2": p.output_2}
                        for p in pairs_for(TARGET_GENERATOR)
                    ]
                )
            )
            env = {
                **os.environ,
                "OPENAI_API_BASE": stub.base_url,
                "OPENAI_API_KEY": "sk-stub",
                "OPENAI_CLIENT_CONFIG_PATH": str(workdir / "no-client-config.yaml"),
            }
            stub.reset()
            res = subprocess.run(
                [python, str(HERE / "bench_annotate_peer.py"), str(pairs_file), str(cache)],
                env=env,
                capture_output=True,
                text=True,
            )
            if res.returncode == 0:
                peer = json.loads(res.stdout.strip().splitlines()[-1])
                peer["stub_calls"] = stub.requests()
            else:
                print(f"peer failed:\n{res.stderr[-2000:]}", file=sys.stderr)
    print("\n1,000 already-judged pairs against a 100,000-judgment store (instant stub server counts calls)")
    print("| annotator | calls | seconds | peak memory (MiB) |\n|---|---|---|---|")
    print(
        f"| pasture annotate | {mine['stub_calls']} | {mine['seconds']:.2f} | {mine['max_rss_mb']:.0f} "
        f"(interpreter + imports: {mine['baseline_rss_mb']:.0f}) |"
    )
    if peer is not None:
        total = peer["init_seconds"] + peer["seconds"]
        print(f"| AlpacaEval 0.6.6 PairwiseAnnotator | {peer['stub_calls']} | {total:.2f} | {peer['max_rss_mb']:.0f} |")
        print(
            f"\nratios pasture / AlpacaEval: seconds {mine['seconds'] / total:.3f}, "
            f"peak memory {mine['max_rss_mb'] / peer['max_rss_mb']:.3f}"
        )


if __name__ == "__main__":
    main()
