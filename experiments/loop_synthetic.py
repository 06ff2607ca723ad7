"""Temporal Self-Rewarding vs Self-Rewarding on the extended synthetic task, three seeds (docs/train.md).

    PYTHONPATH=src python experiments/loop_synthetic.py [--workdir DIR] [--seeds 0 1 2] [--smoke]

Writes experiments/loop_synthetic.md (the table, rewritten after each seed) and keeps the store and checkpoints in
``--workdir`` (a rerun resumes). Definitions: pasture.train.loop_synthetic and pasture.train.loop.RoundRow.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from pasture.train.loop_synthetic import SMOKE, LoopExperimentConfig, SeedResult, markdown_table, run_comparison


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pasture-loop-synthetic"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--smoke", action="store_true", help="CI sizes")
    ap.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = SMOKE if args.smoke else LoopExperimentConfig()
    t0 = time.perf_counter()

    def write(runs: list[SeedResult]) -> None:
        head = (
            "# Temporal Self-Rewarding vs Self-Rewarding (synthetic task, self-judge stand-in)\n\n"
            f"Config: {cfg}\n\nSeeds done: {[r.seed for r in runs]}; wall time so far "
            f"{time.perf_counter() - t0:.0f} s (one torch thread, shared 2-core machine).\n\n"
        )
        args.output.write_text(head + markdown_table(runs), encoding="utf-8")
        print(markdown_table(runs), flush=True)

    run_comparison(cfg, args.seeds, args.workdir, on_seed=write)


if __name__ == "__main__":
    main()
