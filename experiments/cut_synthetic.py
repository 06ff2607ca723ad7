"""CUT against SFT-on-good, DPO and CUT without unlikelihood on the extended synthetic task (METHODS.md).

Full size, three seeds, run outside CI (about 10 minutes on one CPU thread); writes the tables to
``experiments/cut_synthetic.md`` beside this script. The CI smoke test runs the same code with one seed at smoke
size (tests/train/test_cut_synthetic.py). Definitions of every number: docs/train.md ("CUT").

    PYTHONPATH=src nice -n 5 python experiments/cut_synthetic.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch

from pasture.train.cut_synthetic import SMOKE, CUTExperimentConfig, comparison_markdown, run_comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--smoke", action="store_true", help="smoke size (figures mean nothing)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = SMOKE if args.smoke else CUTExperimentConfig()
    began = time.perf_counter()
    result = run_comparison(cfg, args.seeds)
    wall = time.perf_counter() - began
    text = (
        "# CUT vs baselines on the extended synthetic task\n\n"
        f"Written by `experiments/cut_synthetic.py` (seeds {args.seeds}, {'smoke' if args.smoke else 'full'} size, "
        f"{wall:.0f} s on one CPU thread). Config: `{asdict(cfg)}`.\n\n"
        "Win rates: paired oracle win rate (%) of CUT's sample against the baseline's on the same evaluation prompt "
        "(ties ½), 95% normal interval over prompts; summary: mean, sd and 95% t-interval over seeds; beats = mean "
        "> 50 and the interval excludes 50. Scores: mean exact oracle score of one sample per evaluation prompt. "
        "Old task: mean reversal score (forgetting check). flagged: fraction of bad-response tokens CUT penalised "
        "(mean over steps). See docs/train.md.\n\n" + comparison_markdown(result)
    )
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
