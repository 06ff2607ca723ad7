"""Online CUT on the extended synthetic task: does the oracle win rate against the start rise round over round?

From the shared starting policy (:func:`pasture.train.synthetic.train_start_policy`, trained once), each seed runs
three rounds of :func:`pasture.train.cut_online.run_cut_online` at the paper's online preset (λ = 1.1, α = 1, good
responses subsampled to 0.25× the bad ones): sample two responses per training prompt from the current policy, judge
each with the exact programmatic critic through the store (:func:`pasture.train.cut_synthetic.synthetic_critic_judge`),
train CUT, then compare the round's policy with the start on fresh evaluation prompts by the exact oracle (paired
win rate, ties ½). "Improves round over round" for a seed = win rate of round 1 < round 2 < round 3. Run outside CI
(the CI smoke test runs the same code at smoke size, one seed: tests/train/test_cut_online.py); writes the tables to
``experiments/cut_online_synthetic.md``. Definitions: docs/train.md ("Online CUT").

    PYTHONPATH=src nice -n 5 python experiments/cut_online_synthetic.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from pasture.train.cut_online import CUTOnlineConfig, CUTOnlineResult, run_cut_online
from pasture.train.cut_synthetic import SMOKE, summarize_seeds, synthetic_critic_judge
from pasture.train.registry import CUTSettings, TrainSettings
from pasture.train.synthetic import (
    MAX_RESPONSE_TOKENS,
    StartConfig,
    critique_prompt,
    extended_oracle_score,
    make_prompts,
    train_start_policy,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--smoke", action="store_true", help="smoke size (figures mean nothing)")
    parser.add_argument("--train-prompts", type=int, default=1000)
    parser.add_argument("--eval-prompts", type=int, default=400)
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per round")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_suffix(".md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    start_cfg = SMOKE.start if args.smoke else StartConfig()
    n_train, n_eval, steps = (48, 24, 3) if args.smoke else (args.train_prompts, args.eval_prompts, args.steps)
    began = time.perf_counter()
    start = train_start_policy(start_cfg)
    judge = synthetic_critic_judge()
    results: dict[int, CUTOnlineResult] = {}
    cfgs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            cfg = CUTOnlineConfig(
                settings=CUTSettings.online(),
                train=TrainSettings(steps=steps, lr=1e-3, batch_size=64, seed=seed),
                rounds=3,
                samples_per_prompt=2,
                max_new_tokens=MAX_RESPONSE_TOKENS,
            )
            cfgs[seed] = cfg
            results[seed] = run_cut_online(
                start.model,
                start.tokenizer,
                make_prompts(n_train, seed=10_000 + seed),
                make_prompts(n_eval, seed=30_000 + seed),
                judge,
                Path(tmp) / "store.db",
                Path(tmp) / f"seed{seed}",
                cfg,
                render=critique_prompt,
                score=extended_oracle_score,
            )
            print(f"seed {seed} done after {time.perf_counter() - began:.0f} s", flush=True)
    wall = time.perf_counter() - began
    lines = [
        "| seed | round | win rate vs start (%) [95% CI] | mean oracle score | good rate (%) | good / bad samples "
        "| flagged | train s | sample+critique s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rising = []
    for seed, res in results.items():
        lines.append(f"| {seed} | start | – | {res.start_mean_score:.3f} | {res.start_good_rate:.1f} | – | – | – | – |")
        for r in res.rounds:
            lines.append(
                f"| {seed} | {r.round + 1} | {r.win_rate_vs_start:.1f} [{r.win_rate_low:.1f}, {r.win_rate_high:.1f}] "
                f"| {r.mean_score:.3f} | {r.good_rate:.1f} | {r.n_good} / {r.n_bad} "
                f"| {r.stats.metrics.get('flagged_fraction', 0.0):.3f} | {r.seconds['train']:.1f} "
                f"| {r.seconds['sample'] + r.seconds['critique']:.1f} |"
            )
        wrs = [r.win_rate_vs_start or 0.0 for r in res.rounds]
        rising.append(all(a < b for a, b in itertools.pairwise(wrs)))
    lines += [
        "",
        "| round | mean win rate vs start (%) | sd | 95% t-interval over seeds | seeds |",
        "|---|---|---|---|---|",
    ]
    for k in range(3):
        s = summarize_seeds([results[seed].rounds[k].win_rate_vs_start or 0.0 for seed in results])
        lines.append(f"| {k + 1} | {s.mean:.1f} | {s.sd:.1f} | [{s.low:.1f}, {s.high:.1f}] | {s.n_seeds} |")
    steps_up = [
        [(res.rounds[k + 1].win_rate_vs_start or 0.0) - (res.rounds[k].win_rate_vs_start or 0.0) for k in range(2)]
        for res in results.values()
    ]
    d = np.asarray(steps_up)
    lines += [
        "",
        f"Rises round over round (round 1 < 2 < 3) in {sum(rising)} of {len(rising)} seeds. Change of the win rate "
        f"from round 1 to 2: mean {d[:, 0].mean():+.1f} points; from round 2 to 3: mean {d[:, 1].mean():+.1f} points.",
    ]
    text = (
        "# Online CUT on the extended synthetic task: three rounds\n\n"
        f"Written by `experiments/cut_online_synthetic.py` (seeds {args.seeds}, {'smoke' if args.smoke else 'full'} "
        f"size, {wall:.0f} s on one CPU thread of a shared machine). Start: `{asdict(start_cfg)}`; "
        f"{n_train} training prompts × 2 samples per round, {n_eval} evaluation prompts; per round: "
        f"`{asdict(cfgs[args.seeds[0]].train)}` (seed varies), CUT `{asdict(cfgs[args.seeds[0]].settings)}`.\n\n"
        "Win rate: paired exact-oracle win rate (%) of the round's policy against the starting policy on the same "
        "evaluation prompts (one sample each at the same seed, ties ½), 95% normal interval over prompts; summary: "
        "mean, sd and 95% t-interval over seeds. Good rate: evaluation samples the critic judges good (score ≥ ½). "
        "flagged: fraction of bad-response tokens CUT penalised (mean over the round's steps). See docs/train.md.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
