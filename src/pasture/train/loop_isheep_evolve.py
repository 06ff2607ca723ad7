"""I-SHEEP and EVOLVE on the extended synthetic task, over seeds (experiments/loop_isheep_evolve.py).

From the shared starting policy (:func:`~pasture.train.synthetic.train_start_policy`, trained once) each seed runs,
through the iterative driver (:func:`~pasture.train.loop.run_loop`), with the self-judge stand-in
(:class:`~pasture.train.builders.self_judge.SyntheticSelfJudge`, refitted on each round's policy) as the round judge
and the exact oracle as evaluator, every round training ``steps × batch_size`` examples (equal budgets):

* **I-SHEEP**, ``rounds`` rounds of SFT (schedule "base on latest", threshold C). Figures: the paired oracle win
  rate of round 1's policy over the shared SFT start, and of round 2's over round 1's (one sample per evaluation
  prompt from each, same sampling seed; ties ½);
* **EVOLVE** (DPO on direct and refine pairs) and its **exposure-matched baseline** (DPO on the direct pairs, then
  SFT on the refine demonstrations r(x, worse) → better, same examples and steps), ``rounds`` rounds each. After the
  last round each final policy runs an unfiltered refinement chain y_0 ~ π(x), y_t ~ π(r(x, y_{t−1})) for
  ``chain_eval`` steps on the evaluation prompts (an answer holding a reserved mark ends its chain: y_t = y_{t−1}).
  Figure: the paired win rate of EVOLVE's refinement gain Δ = s(y_L) − s(y_0) over the baseline's, per prompt.

Across seeds: mean, sample sd and the 95 % t-interval; "beats" when the mean exceeds 50 % and the interval excludes
50 % (METHODS.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.builders import EvolveSettings, ISheepSettings
from pasture.train.builders.evolve import refinable
from pasture.train.builders.self_judge import SelfJudgeSettings, SyntheticSelfJudge
from pasture.train.core import generate
from pasture.train.loop import FixedJudge, JudgeSource, LoopConfig, LoopResult, RoundRow, run_loop
from pasture.train.loop_synthetic import Summary, oracle_judge, summarise
from pasture.train.registry import DPOSettings, SFTSettings, TrainSettings
from pasture.train.synthetic import (
    MAX_RESPONSE_TOKENS,
    StartConfig,
    StartPolicy,
    extended_oracle_score,
    make_prompts,
    train_start_policy,
    win_rate_from_scores,
)

RUNS = ("i_sheep", "evolve", "evolve_sft_baseline")


@dataclass(frozen=True)
class ISheepEvolveConfig:
    """Sizes of one comparison; the defaults are the full run."""

    start: StartConfig = field(default_factory=StartConfig)
    judge: SelfJudgeSettings = field(default_factory=SelfJudgeSettings)
    n_train_prompts: int = 64
    n_eval_prompts: int = 200
    rounds: int = 2
    steps: int = 24
    batch_size: int = 32
    lr: float = 1e-3
    beta: float = 0.1
    threshold: float = 0.4
    oversample: int = 3
    n: int = 4
    chain: int = 2
    chain_eval: int = 2
    round_judge: Literal["self", "oracle"] = "self"
    """The round judge: the self-judge stand-in (the methods as published: the policy judges itself), or the exact
    oracle as a fixed judge (a diagnostic that separates the builders from the stand-in's errors)."""


SMOKE = ISheepEvolveConfig(
    start=StartConfig(n_old_prompts=200, old_steps=20, n_sft_prompts=300, n_write=40, sft_steps=60, n_old_eval=20),
    judge=SelfJudgeSettings(n_prompts=40, samples=4),
    n_train_prompts=24,
    n_eval_prompts=24,
    steps=3,
    batch_size=8,
    threshold=0.3,
    n=3,
    chain=1,
    chain_eval=1,
)
"""CI size: one seed, two rounds of a few steps (tests/train/test_loop_isheep_evolve.py)."""


def configs(cfg: ISheepEvolveConfig, seed: int) -> dict[str, LoopConfig]:
    """The three loops of one seed, by run name."""
    train = TrainSettings(steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, seed=seed)
    common = {"train": train, "rounds": cfg.rounds, "max_new_tokens": MAX_RESPONSE_TOKENS}
    return {
        "i_sheep": LoopConfig(
            builder="i_sheep",
            builder_settings=ISheepSettings(threshold=cfg.threshold, oversample=cfg.oversample),
            method="sft",
            settings=SFTSettings(),
            **common,  # type: ignore[arg-type]
        ),
        "evolve": LoopConfig(
            builder="evolve",
            builder_settings=EvolveSettings(n=cfg.n, chain=cfg.chain),
            settings=DPOSettings(beta=cfg.beta),
            **common,  # type: ignore[arg-type]
        ),
        "evolve_sft_baseline": LoopConfig(
            builder="evolve",
            builder_settings=EvolveSettings(n=cfg.n, chain=cfg.chain, refine_objective="sft"),
            settings=DPOSettings(beta=cfg.beta),
            **common,  # type: ignore[arg-type]
        ),
    }


def refine_chain_scores(
    model: nn.Module, tok: PreTrainedTokenizerBase, prompts: list[str], steps: int, seed: int
) -> list[list[float]]:
    """Oracle scores of an unfiltered refinement chain y_0..y_steps per prompt (one sample per step, the step's
    own seed); an answer that cannot go into a refine prompt ends its chain (later steps repeat it)."""
    current = [g[0].text for g in generate(model, tok, prompts, n=1, max_new_tokens=MAX_RESPONSE_TOKENS, seed=seed)]
    scores = [[extended_oracle_score(p, y)] for p, y in zip(prompts, current, strict=True)]
    for t in range(1, steps + 1):
        open_ = [(i, r) for i, (p, y) in enumerate(zip(prompts, current, strict=True)) if (r := refinable(p, y))]
        if open_:
            gens = generate(
                model, tok, [r for _, r in open_], n=1, max_new_tokens=MAX_RESPONSE_TOKENS, seed=seed + 1000 * t
            )
            for (i, _), g in zip(open_, gens, strict=True):
                current[i] = g[0].text
        for i, p in enumerate(prompts):
            scores[i].append(extended_oracle_score(p, current[i]))
    return scores


def _scores(model: nn.Module, tok: PreTrainedTokenizerBase, prompts: list[str], seed: int) -> list[float]:
    gens = generate(model, tok, prompts, n=1, max_new_tokens=MAX_RESPONSE_TOKENS, seed=seed)
    return [extended_oracle_score(p, g[0].text) for p, g in zip(prompts, gens, strict=True)]


@dataclass(frozen=True)
class SeedResult:
    """One seed: each loop's result, the I-SHEEP win rates (%), the mean oracle score per chain step of both EVOLVE
    models and the paired win rate (%) of EVOLVE's refinement gain over the baseline's."""

    seed: int
    results: dict[str, LoopResult]
    isheep_r1_vs_start: float
    isheep_r2_vs_r1: float
    isheep_scores: tuple[float, float, float]
    chain_means: dict[str, tuple[float, ...]]
    gain_win_rate: float
    wall_s: float


def run_seed(cfg: ISheepEvolveConfig, start: StartPolicy, judge: JudgeSource, seed: int, work: Path) -> SeedResult:
    """The three loops of one seed (store and checkpoints under ``work``; a rerun resumes) and their figures."""
    t0 = time.perf_counter()
    tok = start.tokenizer
    train_p = make_prompts(cfg.n_train_prompts, seed=5000 + seed)
    eval_p = make_prompts(cfg.n_eval_prompts, seed=6000 + seed)
    results = {
        name: run_loop(start.model, tok, train_p, eval_p, judge, oracle_judge(), work / "store.db", work / name, lc)
        for name, lc in configs(cfg, seed).items()
    }
    r1 = AutoModelForCausalLM.from_pretrained(_round_dir(work / "i_sheep", results["i_sheep"].rounds[0])).eval()
    r2 = AutoModelForCausalLM.from_pretrained(results["i_sheep"].final_checkpoint).eval()
    eval_seed = seed + 90_000
    s0, s1, s2 = (_scores(m, tok, eval_p, eval_seed) for m in (start.model, r1, r2))
    chains = {
        name: refine_chain_scores(
            AutoModelForCausalLM.from_pretrained(results[name].final_checkpoint).eval(),
            tok,
            eval_p,
            cfg.chain_eval,
            eval_seed,
        )
        for name in ("evolve", "evolve_sft_baseline")
    }
    gains = {name: [row[-1] - row[0] for row in rows] for name, rows in chains.items()}
    return SeedResult(
        seed,
        results,
        100.0 * win_rate_from_scores(s1, s0),
        100.0 * win_rate_from_scores(s2, s1),
        (_mean(s0), _mean(s1), _mean(s2)),
        {
            name: tuple(_mean([row[t] for row in rows]) for t in range(cfg.chain_eval + 1))
            for name, rows in chains.items()
        },
        100.0 * win_rate_from_scores(gains["evolve"], gains["evolve_sft_baseline"]),
        time.perf_counter() - t0,
    )


def _round_dir(work: Path, row: RoundRow) -> Path:
    """The checkpoint directory of the stored round ``row`` (its ``round.json`` names its identity)."""
    for d in sorted((work / "rounds").glob(f"r{row.round}-*")):
        if (d / "round.json").is_file() and json.loads((d / "round.json").read_text())[
            "run_identity"
        ] == row.run_identity:
            return d
    raise InputError(f"no stored checkpoint of round {row.round} ({row.run_identity[:12]}) under {work}")


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def run_comparison(
    cfg: ISheepEvolveConfig,
    seeds: list[int],
    workdir: Path,
    *,
    on_seed: Callable[[list[SeedResult]], None] | None = None,
) -> list[SeedResult]:
    """The shared start policy and self-judge once, then :func:`run_seed` per seed (``on_seed`` sees the results)."""
    start = train_start_policy(cfg.start)
    judge: JudgeSource = (
        SyntheticSelfJudge(start.model, start.tokenizer, cfg.judge)
        if cfg.round_judge == "self"
        else FixedJudge(oracle_judge())
    )
    runs: list[SeedResult] = []
    for s in seeds:
        runs.append(run_seed(cfg, start, judge, s, workdir / f"seed{s}"))
        if on_seed is not None:
            on_seed(runs)
    return runs


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _row(r: RoundRow) -> str:
    return (
        f"{r.round} | {r.eval_score:.3f} | {r.win_rate_vs_start:.1f} | {_f(r.chosen_rejected_gap)} | "
        f"{_f(r.judge_gap)} | {_f(r.sigmoid_weight)} | {r.kl_to_reference:.2f} | {r.avg_length:.2f} | "
        f"{r.n_train_examples} | {r.n_skipped}"
    )


def _summary_line(name: str, values: list[float], unit: str = "") -> str:
    s: Summary = summarise(values)
    return (
        f"| {name} | {', '.join(f'{v:.1f}' for v in values)} | {s.mean:.1f}{unit} | {s.sd:.1f} | "
        f"[{s.low:.1f}, {s.high:.1f}] | {'yes' if s.mean > 50 and s.low > 50 else 'no'} |"
    )


def markdown_table(runs: list[SeedResult], cfg: ISheepEvolveConfig) -> str:
    """Per-seed, per-round diagnostics, the chain means, then the paired figures over seeds, as Markdown."""
    lines = [
        "| seed | loop | round | oracle score | win rate vs start (%) | chosen−rejected gap (oracle) | judge gap "
        "| mean σ(−βh) | KL to start | avg length | train examples | skipped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for name in RUNS:
            for row in r.results[name].rounds:
                lines.append(f"| {r.seed} | {name} | {_row(row)} |")
    steps = " | ".join(f"y{t}" for t in range(cfg.chain_eval + 1))
    lines += [
        "",
        "Mean oracle score along an unfiltered refinement chain on the evaluation prompts, after the last round:",
        "",
        f"| seed | model | {steps} | gain y{cfg.chain_eval} − y0 |",
        "|---|---|" + "---|" * (cfg.chain_eval + 2),
    ]
    for r in runs:
        for name, means in r.chain_means.items():
            lines.append(
                f"| {r.seed} | {name} | {' | '.join(f'{m:.3f}' for m in means)} | {means[-1] - means[0]:+.3f} |"
            )
    lines += [
        "",
        "I-SHEEP mean oracle score of one sample per evaluation prompt (start, round 1, round 2): "
        + "; ".join(f"seed {r.seed}: {' / '.join(f'{x:.3f}' for x in r.isheep_scores)}" for r in runs),
        "",
        "| paired oracle win rate (%) | per seed | mean | sd | 95 % interval | beats |",
        "|---|---|---|---|---|---|",
        _summary_line("I-SHEEP round 1 over the SFT start", [r.isheep_r1_vs_start for r in runs]),
        _summary_line("I-SHEEP round 2 over round 1", [r.isheep_r2_vs_r1 for r in runs]),
        _summary_line("EVOLVE's refinement gain over the DPO + refine-SFT baseline's", [r.gain_win_rate for r in runs]),
    ]
    return "\n".join(lines) + "\n"
