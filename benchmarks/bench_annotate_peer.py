"""Runs under the PEER's Python (AlpacaEval 0.6.6): time its pairwise annotator on pairs against a server.

Usage: PEER_PYTHON bench_annotate_peer.py PAIRS_JSON CACHE_JSON  (prints one JSON line: n, seconds)
The caller points it at the server through the peer's documented environment variables: OPENAI_API_BASE,
OPENAI_API_KEY, OPENAI_MAX_CONCURRENCY (and OPENAI_CLIENT_CONFIG_PATH at a missing file so the environment
is used). Only the annotate call is timed, not the imports. Invoked by bench_annotate_throughput.py and
bench_annotate_cache.py; not part of pasture.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path


def main() -> None:
    from alpaca_eval.annotators import PairwiseAnnotator

    logging.disable(logging.WARNING)
    pairs = json.loads(Path(sys.argv[1]).read_text())
    annotator = PairwiseAnnotator(annotators_config="weighted_alpaca_eval_gpt4_turbo", caching_path=sys.argv[2])
    start = time.perf_counter()
    annotated = annotator.annotate_pairs(pairs)
    seconds = time.perf_counter() - start
    n_ok = sum(1 for a in annotated if a.get("preference") is not None and a.get("preference") == a.get("preference"))
    print(json.dumps({"n": len(pairs), "annotated": len(annotated), "with_preference": n_ok, "seconds": seconds}))


if __name__ == "__main__":
    main()
