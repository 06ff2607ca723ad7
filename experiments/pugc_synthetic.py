"""PUGC on the synthetic task: DPO on reference-guided labels from expert documents vs DPO on noisy pool labels,
swept over document quality.

Full size, three seeds, run outside CI; writes the tables to ``experiments/pugc_synthetic.md`` beside this script. The
CI smoke test runs the same code with one seed at smoke size (tests/train/test_pugc_synthetic.py). Every PUGC step
goes through a store per seed (``--store-dir``), so a killed run resumes its judgments and samples. Definitions:
docs/train.md ("PUGC") and :mod:`pasture.train.pugc_synthetic`.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python experiments/pugc_synthetic.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import asdict
from pathlib import Path

import torch

from pasture.train.pugc_synthetic import SMOKE, PUGCExperimentConfig, experiment_markdown, run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--smoke", action="store_true", help="smoke size (figures mean nothing)")
    parser.add_argument("--store-dir", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.store_dir.mkdir(parents=True, exist_ok=True)
    cfg = SMOKE if args.smoke else PUGCExperimentConfig()
    began = time.perf_counter()
    result = run_experiment(cfg, args.seeds, args.store_dir)
    wall = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    text = (
        "# PUGC on the synthetic task: reference-guided labels vs noisy pool labels, by document quality\n\n"
        f"Written by `experiments/pugc_synthetic.py` (seeds {args.seeds}, {'smoke' if args.smoke else 'full'} size, "
        f"{wall:.0f} s wall, {cpu:.0f} CPU-s, one torch thread under `nice -n 10` on a 2-core machine shared with other "
        f"jobs). Config: `{asdict(cfg)}`.\n\n"
        "A document is an expert's worked answer `<ctx>:<answer>` whose answer is the gold reference with each "
        "substituted digit reverted to the context's with probability 1 − q (q = 1: the gold reference, oracle score "
        "(n−1)/n; q = 0: the context copied). Document score: mean oracle score of the documents' answers. PUGC's "
        "judges are programmatic stand-ins that see only the document and the question (module docstring of "
        "`pasture.train.pugc_synthetic`). Arms, at equal budget (same kept questions, same samples of the shared start "
        "policy, one pair per question, DPO β = 0.1 with the same steps, batch and learning rate): `pugc` = best vs "
        "worst by the reference-guided grade; `pool` = the first two samples with one noisy pool label (oracle flipped "
        "with p = 0.25, fixed across q); `pool_rr` = most vs fewest wins in a round robin of noisy pool labels among "
        "all samples (more labels than PUGC's grades). Win rates: paired oracle win rate (%) of pugc's sample against "
        "the baseline's on the same fresh evaluation prompt (ties ½), 95% normal interval over prompts; summary: mean, "
        "sd and 95% t-interval over seeds; beats = mean > 50 and the interval excludes 50 (METHODS.md). Pair order = "
        "oracle: fraction of an arm's pairs whose chosen response has the strictly higher oracle score.\n\n"
        + experiment_markdown(result)
    )
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
