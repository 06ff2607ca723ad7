"""Reward hacking on the synthetic task: GRPO on a length-biased reward model, alone vs with AutoRule's rules.

Full size, three seeds, run outside CI; writes the tables to ``experiments/grpo_hacking.md`` and the curves to
``experiments/grpo_hacking.png`` beside this script. The CI smoke test runs the same code with one seed at smoke size
(tests/train/test_grpo_hacking.py). Definitions of every number: docs/train.md ("GRPO", "AutoRule", "Reward hacking").

    PYTHONPATH=src nice -n 5 python experiments/grpo_hacking.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch

from pasture.train.grpo_synthetic import SMOKE, HackingConfig, curves_figure, experiment_markdown, run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--smoke", action="store_true", help="smoke size (figures mean nothing)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once (forked processes, 1 thread each)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = SMOKE if args.smoke else HackingConfig()
    began = time.perf_counter()
    result = run_experiment(cfg, args.seeds, jobs=args.jobs)
    wall = time.perf_counter() - began
    figure = args.output.with_suffix(".png")
    curves_figure(result, str(figure))
    text = (
        "# Reward hacking: GRPO on a length-biased reward model, alone and with rules\n\n"
        f"Written by `experiments/grpo_hacking.py` (seeds {args.seeds}, {'smoke' if args.smoke else 'full'} size, "
        f"{wall:.0f} s wall, {args.jobs} process(es) of one CPU thread on a shared 2-core machine). Config: `{asdict(cfg)}`.\n\n"
        "Win rates: paired oracle win rate (%) of one sample per evaluation prompt (ties ½), 95% normal interval over "
        "prompts; summary: mean, sd and 95% t-interval over seeds; beats = mean > 50 and the interval excludes 50 "
        "(METHODS.md). Oracle: mean exact score; length: mean characters. Hacking index (docs/train.md): drop of the "
        "smoothed oracle score of the rollouts from its peak to the last step when the smoothed RM score still rose "
        "after the peak. RM prefers longer: on SFT pairs of different lengths, how often the RM scores the longer "
        f"one higher. Curves: `{figure.name}`.\n\n" + experiment_markdown(result)
    )
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
