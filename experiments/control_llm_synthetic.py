"""Control LLM against full fine-tuning and LoRA in continual SFT from task A to task B (extended synthetic task).

Full size, run outside CI (about a CPU-minute per seed on one thread); writes ``experiments/control_llm_synthetic.md``
beside this script, rewritten after every seed so a cut-short run still records the seeds it finished. The CI smoke
test runs the same code at one seed, smoke size (tests/train/test_control_llm_synthetic.py). Definitions:
docs/train.md ("Control LLM") and :mod:`pasture.train.control_llm_synthetic`.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python experiments/control_llm_synthetic.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path

import torch

from pasture.train.control_llm_synthetic import SMOKE, ContinualConfig, SeedResult, comparison_markdown, run_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--smoke", action="store_true", help="smoke size (figures mean nothing)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = SMOKE if args.smoke else ContinualConfig()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results: list[SeedResult] = []
    for seed in args.seeds:
        results.append(run_seed(cfg, seed))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        done = [r.seed for r in results]
        text = (
            "# Control LLM vs full fine-tuning and LoRA: continual SFT from task A to task B (synthetic)\n\n"
            f"Written by `experiments/control_llm_synthetic.py` (seeds {done} of {args.seeds}, "
            f"{'smoke' if args.smoke else 'full'} size, {wall:.0f} s wall, {cpu:.0f} s CPU on one thread, "
            f"machine shared). Config: `{asdict(cfg)}`.\n\n"
            "Task A: the extended task's old task (reversal), learned first for `a_steps`; then each method learns "
            "task B (keyword inclusion, the mediocre q = 0.25 demonstrations) for the same `b_steps` on the same "
            "batches from the same A policy. Scores: mean exact oracle score of one sample per fresh evaluation "
            "prompt (temperature 1, the same sampling seed for every method). retention A = A after / A before; "
            "gain B = B after − B before; win vs full: paired per-prompt win rate against full fine-tuning's "
            "sample (ties ½). control: Control LLM with the official defaults (twin of the last of the 2 blocks, "
            "mix 0.5 frozen, α = 1, MSE); control_no_div: the same with α = 0; control_all: twins of both blocks (α = 1). LoRA: r = 8, α = 16 on PEFT's "
            "default Llama targets (q_proj, v_proj). Same lr (3e-3) for all, untuned. See docs/train.md.\n\n"
            + comparison_markdown(results)
        )
        args.output.write_text(text, encoding="utf-8")
        print(text, flush=True)


if __name__ == "__main__":
    main()
