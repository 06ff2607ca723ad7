"""I-SHEEP (round 2 vs 1 vs the SFT start) and EVOLVE (refinement gain vs an exposure-matched DPO + refine-SFT
baseline) on the extended synthetic task, three seeds (docs/train.md).

    PYTHONPATH=src nice -n 10 python experiments/loop_isheep_evolve.py [--workdir DIR] [--seeds 0 1 2] [--smoke]

Writes experiments/loop_isheep_evolve.md (rewritten after each seed) and keeps the store and checkpoints in
``--workdir`` (a rerun resumes). Definitions: pasture.train.loop_isheep_evolve and pasture.train.loop.RoundRow.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import time
from pathlib import Path

import torch

from pasture.train.loop_isheep_evolve import SMOKE, ISheepEvolveConfig, SeedResult, markdown_table, run_comparison


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pasture-loop-isheep-evolve"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--smoke", action="store_true", help="CI sizes")
    ap.add_argument("--output", type=Path, default=None, help="default: loop_isheep_evolve[_oracle_judge].md here")
    ap.add_argument(
        "--round-judge",
        choices=["self", "oracle"],
        default="self",
        help="self: the self-judge stand-in (the methods as published); oracle: the exact oracle as a fixed judge "
        "(diagnostic)",
    )
    args = ap.parse_args()
    if args.output is None:
        suffix = "" if args.round_judge == "self" else "_oracle_judge"
        args.output = Path(__file__).with_name(f"loop_isheep_evolve{suffix}.md")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    cfg = dataclasses.replace(SMOKE if args.smoke else ISheepEvolveConfig(), round_judge=args.round_judge)
    t0 = time.perf_counter()

    def write(runs: list[SeedResult]) -> None:
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        head = (
            f"# I-SHEEP and EVOLVE (synthetic task, round judge: {cfg.round_judge})\n\n"
            f"Config: {cfg}\n\nSeeds done: {[r.seed for r in runs]}; wall time so far "
            f"{time.perf_counter() - t0:.0f} s, CPU time {cpu.ru_utime + cpu.ru_stime:.0f} s (one torch thread, "
            "nice 10, shared 2-core machine); per seed: "
            + ", ".join(f"{r.seed}: {r.wall_s:.0f} s" for r in runs)
            + ".\n\n"
        )
        args.output.write_text(head + markdown_table(runs, cfg), encoding="utf-8")
        print(markdown_table(runs, cfg), flush=True)

    run_comparison(cfg, args.seeds, args.workdir, on_seed=write)


if __name__ == "__main__":
    main()
