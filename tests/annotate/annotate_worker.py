"""A separate process that annotates pairs into a store, for the kill/rerun and two-process tests.

Usage: python annotate_worker.py BASE_URL STORE PAIRS_JSON REPORT_JSON [--concurrency N] [--claim-ttl S]
Writes the report's counts to REPORT_JSON when it finishes (a killed worker writes nothing).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pasture.annotate import EngineSettings, PairToJudge, annotate
from pasture.judges import get_judge
from pasture.store import Store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("store")
    parser.add_argument("pairs")
    parser.add_argument("report")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--claim-ttl", type=float, default=60.0)
    args = parser.parse_args()
    pairs = [PairToJudge(**row) for row in json.loads(Path(args.pairs).read_text())]
    with Store(args.store) as store:
        report = annotate(
            store,
            get_judge("smollm2-logprob-server", base_url=args.base_url),
            pairs,
            settings=EngineSettings(concurrency=args.concurrency, claim_ttl_s=args.claim_ttl, timeout_s=120),
            progress=False,
        )
    counts = {
        "n_judgments": report.n_judgments,
        "n_cached": report.n_cached,
        "n_new": report.n_new,
        "n_by_others": report.n_by_others,
        "n_failed": report.n_failed,
        "calls": report.calls,
        "judgments": len(report.judgments),
    }
    Path(args.report).write_text(json.dumps(counts))


if __name__ == "__main__":
    main()
