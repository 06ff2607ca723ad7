"""Self-J with vs without its KL distillation term on the extended synthetic task, plus best-of-n (METHODS.md).

Full size, three seeds, run outside CI on one CPU thread; writes the tables to ``experiments/self_j_synthetic.md``
beside this script. The CI smoke test runs the same code with one seed at smoke size
(tests/train/test_self_j_synthetic.py). Definitions of every number: docs/judges.md ("Self-J") and the module
docstring of ``pasture.train.self_j_synthetic``.

    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 10 python experiments/self_j_synthetic.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import asdict
from pathlib import Path

import torch

from pasture.train.self_j_synthetic import SMOKE, SelfJExperimentConfig, comparison_markdown, run_comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--smoke", action="store_true", help="smoke size (figures mean nothing)")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = SMOKE if args.smoke else SelfJExperimentConfig()
    began, cpu0 = time.perf_counter(), time.process_time()
    result = run_comparison(cfg, args.seeds)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    text = (
        "# Self-J on the extended synthetic task: KL distillation vs none, and best-of-n\n\n"
        f"Written by `experiments/self_j_synthetic.py` (seeds {args.seeds}, {'smoke' if args.smoke else 'full'} "
        f"size; wall {wall:.0f} s, CPU {cpu:.0f} s (user {usage.ru_utime:.0f} s) on one thread, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, shared starting policy "
        f"{result.start_wall_s:.0f} s of it). Config: `{asdict(cfg)}`.\n\n"
        "Both judges are trained from the shared starting policy on the same labelled samples with the same "
        "budget; `kl` uses Self-J's loss (teacher NLL + 0.3 student NLL + 2 KL(teacher ‖ student) on the score "
        "token, teacher detached), `no_kl` the same with KL weight 0. Student = the judge's prompt without the "
        "gold reference (what judges at test time); teacher = with it. AUC: P(score of a good response > score of "
        "a bad one), good = oracle score >= 0.5, with DeLong's 95% interval over responses; Spearman: rank "
        "correlation of the expected digit with the oracle score; both on fresh samples of the starting policy on "
        "fresh prompts. labels / own rating / similarity AUC: the training labels, the policy's own rating before "
        "recalibration and the character overlap with the reference, on the training samples. Summary: per-seed "
        "difference kl minus no_kl, mean, sd and 95% t-interval over seeds; beats = mean > 0 and the interval "
        "excludes 0. Best-of-n: mean oracle score of the kl student's pick among the first n of 16 samples per "
        "prompt (nested), next to the oracle's own pick (the ceiling). Selective answering: quality at 50% coverage "
        "= mean oracle score of the half the student scores highest; equivalent σ = the noise of an "
        "oracle-plus-Gaussian-noise scorer with the same AUC (docs/trust.md).\n\n" + comparison_markdown(result)
    )
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
