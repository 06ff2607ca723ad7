"""Temporal Self-Rewarding against Self-Rewarding on the extended synthetic task, at equal budget, over seeds.

From the shared starting policy (:func:`pasture.train.synthetic.train_start_policy`, trained once), each seed runs
both builders through the iterative driver (:func:`pasture.train.loop.run_loop`) with the same method (DPO,
β = 0.1), the same judge (the self-judge stand-in, :class:`~pasture.train.builders.self_judge.SyntheticSelfJudge`,
refitted on each round's policy), the same training prompts and the same ``steps × batch_size`` training examples per
round (the temporary model of the temporal builder is extra compute, reported). The evaluator is the exact oracle
(:func:`oracle_judge`). After the last round both final policies answer the same evaluation prompts (one sample,
same seed), and the **paired oracle win rate** of temporal over plain self-rewarding is the fraction of prompts
where its answer scores higher (ties ½). Across seeds: mean, sample sd and the 95 % t-interval (mean ±
t_{0.975, s−1}·sd/√s); "beats" when the mean exceeds 50 % and the interval excludes 50 % (METHODS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats as sps
from transformers import AutoModelForCausalLM

from pasture.judges.base import ResponseReading, ResponseRequest
from pasture.judges.judge import ProgrammaticJudge, ProgrammaticResponseJudge
from pasture.train.builders import SelfRewardingSettings, TemporalSelfRewardingSettings
from pasture.train.builders.self_judge import SelfJudgeSettings, SyntheticSelfJudge
from pasture.train.core import generate
from pasture.train.loop import FixedJudge, LoopConfig, LoopResult, run_loop
from pasture.train.registry import DPOSettings, TrainSettings
from pasture.train.synthetic import (
    MAX_RESPONSE_TOKENS,
    StartConfig,
    StartPolicy,
    extended_oracle_score,
    make_prompts,
    train_start_policy,
    win_rate_from_scores,
)

BUILDERS = ("self_rewarding", "temporal_self_rewarding")


def _oracle_reading(request: ResponseRequest) -> ResponseReading:
    return ResponseReading(score=extended_oracle_score(request.instruction, request.output))


def oracle_judge() -> ProgrammaticResponseJudge:
    """The exact oracle of the extended task as a single-response judge (score in [0, 1]): the loop's evaluator."""
    return ProgrammaticResponseJudge(_oracle_reading, name="synthetic oracle", version="extended-oracle-v1")


def _oracle_preference(prompt: str, output_1: str, output_2: str) -> float:
    s1, s2 = extended_oracle_score(prompt, output_1), extended_oracle_score(prompt, output_2)
    return 2.0 if s2 > s1 else 1.0 if s2 < s1 else 1.5


def oracle_pair_judge() -> ProgrammaticJudge:
    """The same oracle as a pairwise judge (preference by slot, 1.5 on a tie): the farm builder's judge and
    evaluator on the synthetic task."""
    return ProgrammaticJudge(_oracle_preference, name="synthetic oracle (pairwise)", version="extended-oracle-v1")


@dataclass(frozen=True)
class LoopExperimentConfig:
    """Sizes of one comparison; the defaults are the full run (``experiments/loop_synthetic.py``)."""

    start: StartConfig = field(default_factory=StartConfig)
    judge: SelfJudgeSettings = field(default_factory=SelfJudgeSettings)
    n_train_prompts: int = 200
    n_eval_prompts: int = 300
    n: int = 4
    rounds: int = 3
    steps: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    beta: float = 0.1


SMOKE = LoopExperimentConfig(
    start=StartConfig(n_old_prompts=200, old_steps=20, n_sft_prompts=300, n_write=20, sft_steps=40, n_old_eval=20),
    judge=SelfJudgeSettings(n_prompts=40, samples=4),
    n_train_prompts=48,
    n_eval_prompts=40,
    rounds=2,
    steps=3,
    batch_size=16,
)
"""CI size: one seed, two rounds, a few steps (tests/train/test_loop_synthetic.py)."""


@dataclass(frozen=True)
class SeedResult:
    """One seed: each builder's loop result and final oracle score, and the paired win rate (%) of temporal over
    plain self-rewarding on the same evaluation prompts."""

    seed: int
    results: dict[str, LoopResult]
    final_score: dict[str, float]
    paired_win_rate: float


def run_seed(
    cfg: LoopExperimentConfig,
    start: StartPolicy,
    seed: int,
    workdir: Path,
    *,
    start_judge: SyntheticSelfJudge | None = None,
) -> SeedResult:
    """Both builders for one seed (store and checkpoints under ``workdir``; a rerun resumes)."""
    tok = start.tokenizer
    judge = start_judge or SyntheticSelfJudge(start.model, tok, cfg.judge)
    train_p = make_prompts(cfg.n_train_prompts, seed=5000 + seed)
    eval_p = make_prompts(cfg.n_eval_prompts, seed=6000 + seed)
    results, finals, answers = {}, {}, {}
    for b in BUILDERS:
        bs = (SelfRewardingSettings if b == "self_rewarding" else TemporalSelfRewardingSettings)(n=cfg.n)
        lc = LoopConfig(
            builder=b,
            builder_settings=bs,
            method="dpo",
            settings=DPOSettings(beta=cfg.beta),
            train=TrainSettings(steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, seed=seed),
            rounds=cfg.rounds,
            max_new_tokens=MAX_RESPONSE_TOKENS,
        )
        res = run_loop(start.model, tok, train_p, eval_p, judge, oracle_judge(), workdir / "store.db", workdir / b, lc)
        final = AutoModelForCausalLM.from_pretrained(res.final_checkpoint).eval()
        gens = generate(final, tok, eval_p, n=1, max_new_tokens=MAX_RESPONSE_TOKENS, seed=seed + 90_000)
        scores = [extended_oracle_score(p, g[0].text) for p, g in zip(eval_p, gens, strict=True)]
        results[b], finals[b], answers[b] = res, sum(scores) / len(scores), scores
    wr = 100.0 * win_rate_from_scores(answers["temporal_self_rewarding"], answers["self_rewarding"])
    return SeedResult(seed, results, finals, wr)


@dataclass(frozen=True)
class Summary:
    """Mean, sample sd and 95 % t-interval over seeds of a per-seed figure."""

    mean: float
    sd: float
    low: float
    high: float


def summarise(values: list[float]) -> Summary:
    """Mean ± t_{0.975, s−1}·sd/√s (sd 0 and a point interval for one seed)."""
    s = len(values)
    mean = sum(values) / s
    if s < 2:
        return Summary(mean, 0.0, mean, mean)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (s - 1))
    half = float(sps.t.ppf(0.975, s - 1)) * sd / math.sqrt(s)
    return Summary(mean, sd, mean - half, mean + half)


def markdown_table(runs: list[SeedResult]) -> str:
    """Per-seed and per-round figures, then the summary over seeds, as Markdown."""
    lines = [
        "| seed | builder | round | oracle score | win rate vs start (%) | chosen−rejected gap (oracle) | judge gap "
        "| pair accuracy | mean σ(−βh) | KL to start | avg length | pairs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for b in BUILDERS:
            for row in r.results[b].rounds:
                lines.append(
                    f"| {r.seed} | {b} | {row.round} | {row.eval_score:.3f} | {row.win_rate_vs_start:.1f} | "
                    f"{_f(row.chosen_rejected_gap)} | {_f(row.judge_gap)} | {_f(row.pair_accuracy)} | "
                    f"{_f(row.sigmoid_weight)} | {row.kl_to_reference:.2f} | {row.avg_length:.2f} | {row.n_train_examples} |"
                )
    wr = summarise([r.paired_win_rate for r in runs])
    lines += [
        "",
        "| figure | per seed | mean | sd | 95 % interval |",
        "|---|---|---|---|---|",
        f"| paired oracle win rate, temporal over plain (%) | {', '.join(f'{r.paired_win_rate:.1f}' for r in runs)} "
        f"| {wr.mean:.1f} | {wr.sd:.1f} | [{wr.low:.1f}, {wr.high:.1f}] |",
    ]
    for b in BUILDERS:
        s = summarise([r.final_score[b] for r in runs])
        lines.append(
            f"| final oracle score, {b} | {', '.join(f'{r.final_score[b]:.3f}' for r in runs)} | {s.mean:.3f} | "
            f"{s.sd:.3f} | [{s.low:.3f}, {s.high:.3f}] |"
        )
    beats = wr.mean > 50 and wr.low > 50
    lines += ["", f"Temporal self-rewarding beats self-rewarding (METHODS.md): {'yes' if beats else 'no'}."]
    return "\n".join(lines) + "\n"


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def run_comparison(
    cfg: LoopExperimentConfig,
    seeds: list[int],
    workdir: Path,
    *,
    on_seed: Callable[[list[SeedResult]], None] | None = None,
) -> list[SeedResult]:
    """The shared start policy once, then :func:`run_seed` for each seed (``on_seed`` sees the results so far)."""
    start = train_start_policy(cfg.start)
    judge = SyntheticSelfJudge(start.model, start.tokenizer, cfg.judge)
    runs: list[SeedResult] = []
    for s in seeds:
        runs.append(run_seed(cfg, start, s, workdir / f"seed{s}", start_judge=judge))
        if on_seed is not None:
            on_seed(runs)
    return runs


def run_synthetic_loop(
    config: LoopConfig, workdir: Path, sizes: LoopExperimentConfig | None = None, *, seed: int = 0
) -> LoopResult:
    """One loop on the synthetic task (what ``pasture loop --task synthetic`` runs): the shared start policy of
    ``sizes.start`` (retrained deterministically, so a rerun resumes the same rounds), the self-judge stand-in as
    the round judge, the oracle as evaluator, prompts drawn as in :func:`run_seed`; store ``workdir/store.db``.
    The ``farm`` builder compares two responses: its judge and evaluator are the oracle as a pairwise judge
    (:func:`oracle_pair_judge`, the farm loop's "same judge labels and evaluates")."""
    sz = sizes or LoopExperimentConfig()
    start = train_start_policy(sz.start)
    train_p = make_prompts(sz.n_train_prompts, seed=5000 + seed)
    eval_p = make_prompts(sz.n_eval_prompts, seed=6000 + seed)
    if config.builder == "farm":
        pair = oracle_pair_judge()
        return run_loop(
            start.model, start.tokenizer, train_p, eval_p, FixedJudge(pair), pair, workdir / "store.db", workdir, config
        )
    judge = SyntheticSelfJudge(start.model, start.tokenizer, sz.judge)
    return run_loop(
        start.model, start.tokenizer, train_p, eval_p, judge, oracle_judge(), workdir / "store.db", workdir, config
    )
