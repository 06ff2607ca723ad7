"""Runs under the PEER's Python (AlpacaEval 0.6.6): time its pairwise annotator on pairs against a server.

Usage: PEER_PYTHON bench_annotate_peer.py PAIRS_JSON CACHE_JSON
Prints one JSON line: n, annotated, with_preference, init_seconds (building the annotator, which loads its
cache file), seconds and cpu_seconds (wall and CPU time of the annotate call, all threads), max_rss_mb (peak resident memory of this process).
The caller points it at the server through the peer's documented environment variables: OPENAI_API_BASE,
OPENAI_API_KEY, OPENAI_MAX_CONCURRENCY (and OPENAI_CLIENT_CONFIG_PATH at a missing file so the environment
is used). Invoked by bench_annotate_throughput.py and bench_annotate_cache.py; not part of pasture.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited across fork+exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from alpaca_eval.annotators import PairwiseAnnotator

    logging.disable(logging.WARNING)
    pairs = json.loads(Path(sys.argv[1]).read_text())
    start = time.perf_counter()
    annotator = PairwiseAnnotator(annotators_config="weighted_alpaca_eval_gpt4_turbo", caching_path=sys.argv[2])
    init_seconds = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    annotated = annotator.annotate_pairs(pairs)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    n_ok = sum(1 for a in annotated if a.get("preference") is not None and a.get("preference") == a.get("preference"))
    result = {
        "n": len(pairs),
        "annotated": len(annotated),
        "with_preference": n_ok,
        "init_seconds": init_seconds,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "max_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
