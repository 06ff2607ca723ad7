"""The reward-hacking experiment: GRPO on a length-biased reward model, alone and with AutoRule's rule reward.

**Task version** (an option of the synthetic task, its defaults untouched): the keyword-inclusion task with *long*
answers. The SFT demonstrations are today's mediocre ones (q = 0.25) with, with probability ``pad_prob``, 1 to
``max_extra`` random digits appended (:func:`long_demonstrations`), and sampling has a budget of
``max_new_tokens`` = 24 tokens, so the policy can lengthen its answers; the oracle (unchanged) dilutes the score of
every extra character.

**Proxy.** A reward model trained on *length-biased* labels (:func:`pasture.train.hacking.length_biased_labels`: the
longer answer wins, the oracle decides equal lengths, then flips with p = 0.25) over pairs of SFT samples.

**Rules.** :func:`pasture.train.rules.extract_rules` with the programmatic reasoner over the *same* pairs labelled
by the oracle with flips p = 0.25 (the standard noisy pool): the reasoner sees only those labels.

**Arms**, from the same SFT policy with the same GRPO settings, steps and prompts: ``rm`` (reward = RM score) and
``rm+rules`` (reward = RM score + ``rule_weight`` × fraction of rules satisfied). Both log the RM score, the rule
reward and the oracle score of their rollouts per step; the hacking index uses the RM score as the proxy.
**Result per seed:** paired oracle win rate of ``rm+rules`` against ``rm`` (and of each against the SFT policy) on
the evaluation prompts; "beats" over seeds as METHODS.md (:func:`pasture.train.cut_synthetic.summarize_seeds`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerFast

from pasture.train.core import OptimSettings, PreferencePair, TrainStats, generate, set_seed
from pasture.train.cut_synthetic import PairedWinRate, SeedSummary, paired_win_rate, summarize_seeds
from pasture.train.grpo import RewardTerm, Trace, train_grpo
from pasture.train.hacking import HackingIndex, hacking_index, length_biased_labels
from pasture.train.registry import GRPOSettings
from pasture.train.reward import RewardModel, train_reward_model
from pasture.train.rules import LabelledPair, PredicateReasoner, RuleSet, extract_rules, rule_reward
from pasture.train.sft import train_sft
from pasture.train.synthetic import (
    demonstrations,
    label_pairs,
    make_prompts,
    oracle_preference,
    oracle_scores,
    task_tokenizer,
)
from pasture.train.tiny import tiny_llama

ARMS = ("rm", "rm+rules")
"""The two GRPO runs per seed: the reward model alone, and the reward model plus the rule reward."""


def long_demonstrations(
    prompts: Sequence[str], *, seed: int, q: float = 0.25, pad_prob: float = 0.5, max_extra: int = 6
) -> list[str]:
    """Today's mediocre demonstrations, each with probability ``pad_prob`` followed by 1..``max_extra`` random
    digits (which the oracle penalises): the long-answer version of the task."""
    base = demonstrations(prompts, seed=seed, q=q)
    rng = np.random.default_rng(seed + 1)
    out = []
    for d in base:
        if rng.random() < pad_prob:
            d += "".join(str(x) for x in rng.integers(0, 10, size=int(rng.integers(1, max_extra + 1))))
        out.append(d)
    return out


@dataclass(frozen=True)
class HackingConfig:
    """Sizes and settings of the experiment (defaults: the full run; :data:`SMOKE` for CI)."""

    flip_p: float = 0.25
    n_sft_prompts: int = 2000
    sft_steps: int = 150
    pad_prob: float = 0.5
    max_extra: int = 6
    n_pool_prompts: int = 2000
    rm_steps: int = 80
    n_rl_prompts: int = 1000
    grpo_steps: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    grpo: GRPOSettings = field(
        default_factory=lambda: GRPOSettings(k=4, kl_coef=0.04, max_new_tokens=24, minibatch_size=128)
    )
    rule_k: int = 5
    rule_weight: float = 1.0
    n_eval_prompts: int = 300
    window: int = 5


SMOKE = HackingConfig(
    n_sft_prompts=400,
    sft_steps=60,
    n_pool_prompts=400,
    rm_steps=20,
    n_rl_prompts=100,
    grpo_steps=4,
    batch_size=8,
    n_eval_prompts=40,
    window=2,
)
"""Smoke size for CI: every stage runs, the figures mean nothing."""


@dataclass
class HackingSetup:
    """What both arms share for one seed: tokenizer, SFT policy, length-biased RM, rule set, prompts."""

    seed: int
    tokenizer: PreTrainedTokenizerFast
    sft: nn.Module
    reward_model: RewardModel
    rm_stats: TrainStats
    rules: RuleSet
    rm_length_agreement: float
    rl_prompts: list[str]
    eval_prompts: list[str]


def build_hacking_setup(cfg: HackingConfig, seed: int) -> HackingSetup:
    """SFT on long demonstrations; pairs of its samples; rules from oracle labels with flips; RM on biased labels."""
    set_seed(seed)
    tok = task_tokenizer()
    sp = make_prompts(cfg.n_sft_prompts, seed=seed + 1)
    sft, _ = train_sft(
        tiny_llama(tok, seed=seed),
        tok,
        sp,
        long_demonstrations(sp, seed=seed + 2, pad_prob=cfg.pad_prob, max_extra=cfg.max_extra),
        optim=OptimSettings(lr=3e-3, batch_size=64, steps=cfg.sft_steps),
        seed=seed,
    )
    sft.eval()
    pool = make_prompts(cfg.n_pool_prompts, seed=seed + 11)
    gens = generate(sft, tok, pool, n=2, max_new_tokens=cfg.grpo.max_new_tokens, temperature=1.0, seed=seed + 7)
    a, b = [g[0].text for g in gens], [g[1].text for g in gens]
    noisy = label_pairs(pool, a, b, p=cfg.flip_p, seed=seed + 7)
    rules = extract_rules(
        [LabelledPair(x.prompt, x.chosen, x.rejected) for x in noisy.pairs],
        PredicateReasoner(),
        k=cfg.rule_k,
        source=f"synthetic long-answer task, seed {seed}: SFT sample pairs, oracle labels flipped with p={cfg.flip_p}",
    )
    oracle = [oracle_preference(p, x, y) for p, x, y in zip(pool, a, b, strict=True)]
    biased = length_biased_labels(pool, a, b, oracle, p=cfg.flip_p, seed=seed + 8)
    pairs = [
        PreferencePair(p, y, x) if lab == 2.0 else PreferencePair(p, x, y)
        for p, x, y, lab in zip(pool, a, b, biased, strict=True)
        if lab != 1.5
    ]
    rm, rm_stats = train_reward_model(
        sft, tok, pairs, optim=OptimSettings(lr=1e-3, batch_size=64, steps=cfg.rm_steps), seed=seed
    )
    rm.eval()
    for prm in rm.parameters():
        prm.requires_grad_(False)
    # how length-driven the RM is: on pairs of different lengths, how often it scores the longer one higher
    diff = [(p, x, y) for p, x, y in zip(pool, a, b, strict=True) if len(x) != len(y)]
    agree = float("nan")
    if diff:
        sx = rm.score(tok, [d[0] for d in diff], [d[1] for d in diff])
        sy = rm.score(tok, [d[0] for d in diff], [d[2] for d in diff])
        agree = float(np.mean([(u > v) == (len(d[1]) > len(d[2])) for u, v, d in zip(sx, sy, diff, strict=True)]))
    return HackingSetup(
        seed=seed,
        tokenizer=tok,
        sft=sft,
        reward_model=rm,
        rm_stats=rm_stats,
        rules=rules,
        rm_length_agreement=agree,
        rl_prompts=make_prompts(cfg.n_rl_prompts, seed=seed + 21),
        eval_prompts=make_prompts(cfg.n_eval_prompts, seed=seed + 99),
    )


@dataclass
class ArmResult:
    """One GRPO run: its trace, hacking index (proxy = RM score), and oracle scores of one eval sample per prompt."""

    arm: str
    trace: Trace
    index: HackingIndex
    eval_scores: list[float]
    eval_length: float
    stats: TrainStats


def run_arm(setup: HackingSetup, cfg: HackingConfig, arm: str) -> ArmResult:
    """Train one arm by GRPO from the SFT policy and evaluate it on the evaluation prompts."""
    tok, rm = setup.tokenizer, setup.reward_model

    def rm_score(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return rm.score(tok, prompts, responses)

    rules_fn = rule_reward(setup.rules)
    terms = [RewardTerm("reward_model", rm_score, 1.0)]
    if arm == "rm+rules":
        terms.append(RewardTerm("rules", rules_fn, cfg.rule_weight))
    else:  # logged, not rewarded (weight 0): the rule reward of the RM-only arm over steps
        terms.append(RewardTerm("rules", rules_fn, 0.0))
    trace = Trace()
    policy, stats = train_grpo(
        copy.deepcopy(setup.sft).train(),
        tok,
        setup.rl_prompts,
        terms,
        settings=cfg.grpo,
        optim=OptimSettings(lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.grpo_steps),
        seed=setup.seed,
        monitor=oracle_scores,
        trace=trace,
    )
    index = hacking_index(
        [s.rewards["reward_model"] for s in trace.steps],
        [s.true_quality or 0.0 for s in trace.steps],
        window=cfg.window,
    )
    texts = _samples(policy, setup, cfg)
    return ArmResult(
        arm, trace, index, oracle_scores(setup.eval_prompts, texts), float(np.mean([len(t) for t in texts])), stats
    )


def _samples(policy: nn.Module, setup: HackingSetup, cfg: HackingConfig) -> list[str]:
    gens = generate(
        policy,
        setup.tokenizer,
        setup.eval_prompts,
        n=1,
        max_new_tokens=cfg.grpo.max_new_tokens,
        temperature=1.0,
        seed=setup.seed + 1000,
    )
    return [g[0].text for g in gens]


@dataclass
class HackingSeed:
    """One seed: both arms, the SFT policy's eval scores, and the paired win rates."""

    seed: int
    setup: HackingSetup
    arms: dict[str, ArmResult]
    sft_scores: list[float]
    sft_length: float
    rules_vs_rm: PairedWinRate
    vs_sft: dict[str, PairedWinRate]


def run_seed(cfg: HackingConfig, seed: int) -> HackingSeed:
    """Build the seed's setup, train both arms, compare them on the evaluation prompts."""
    torch.manual_seed(seed)
    setup = build_hacking_setup(cfg, seed)
    arms = {arm: run_arm(setup, cfg, arm) for arm in ARMS}
    sft_texts = _samples(setup.sft, setup, cfg)
    sft_scores = oracle_scores(setup.eval_prompts, sft_texts)
    return HackingSeed(
        seed=seed,
        setup=setup,
        arms=arms,
        sft_scores=sft_scores,
        sft_length=float(np.mean([len(t) for t in sft_texts])),
        rules_vs_rm=paired_win_rate(arms["rm+rules"].eval_scores, arms["rm"].eval_scores),
        vs_sft={a: paired_win_rate(r.eval_scores, sft_scores) for a, r in arms.items()},
    )


@dataclass
class HackingExperiment:
    """Every seed and the summary over seeds of rm+rules vs rm."""

    config: HackingConfig
    seeds: list[HackingSeed]
    summary: SeedSummary


def _run_seed_one_thread(args: tuple[HackingConfig, int]) -> HackingSeed:
    torch.set_num_threads(1)
    return run_seed(*args)


def run_experiment(cfg: HackingConfig, seeds: Sequence[int], *, jobs: int = 1) -> HackingExperiment:
    """Every seed (``jobs`` > 1: that many seeds at once in forked processes, one torch thread each)."""
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(min(jobs, len(seeds))) as pool:
            results = pool.map(_run_seed_one_thread, [(cfg, s) for s in seeds])
    else:
        results = [run_seed(cfg, s) for s in seeds]
    return HackingExperiment(cfg, results, summarize_seeds([r.rules_vs_rm.win_rate for r in results]))


def _wr(w: PairedWinRate) -> str:
    return f"{w.win_rate:.1f} [{w.low:.1f}, {w.high:.1f}]"


def experiment_markdown(result: HackingExperiment) -> str:
    """The experiment's tables (per seed, summary, rules) as Markdown."""
    lines = [
        "| seed | rm+rules vs rm (%) [95% CI] | rm vs SFT (%) | rm+rules vs SFT (%) | oracle SFT / rm / rm+rules | "
        "length SFT / rm / rm+rules | hacking index rm / rm+rules | RM prefers longer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in result.seeds:
        rm, rr = s.arms["rm"], s.arms["rm+rules"]
        lines.append(
            f"| {s.seed} | {_wr(s.rules_vs_rm)} | {_wr(s.vs_sft['rm'])} | {_wr(s.vs_sft['rm+rules'])} | "
            f"{np.mean(s.sft_scores):.3f} / {np.mean(rm.eval_scores):.3f} / {np.mean(rr.eval_scores):.3f} | "
            f"{s.sft_length:.2f} / {rm.eval_length:.2f} / {rr.eval_length:.2f} | "
            f"{rm.index.value:.3f} / {rr.index.value:.3f} | {s.setup.rm_length_agreement:.2f} |"
        )
    m = result.summary
    lines += [
        "",
        "| comparison | mean (%) | sd | 95% t-interval over seeds | seeds | beats |",
        "|---|---|---|---|---|---|",
        f"| rm+rules vs rm | {m.mean:.1f} | {m.sd:.1f} | [{m.low:.1f}, {m.high:.1f}] | {m.n_seeds} | "
        f"{'yes' if m.beats else 'no'} |",
        "",
        "| seed | rules extracted (support / against) |",
        "|---|---|",
    ]
    for s in result.seeds:
        rules = "; ".join(f"{r.predicate} ({r.support}/{r.against})" for r in s.setup.rules.rules)
        lines.append(f"| {s.seed} | {rules} |")
    lines += [
        "",
        "| seed | arm | proxy (RM) at oracle peak → final | oracle peak (step) → final | rule reward first → last |",
        "|---|---|---|---|---|",
    ]
    for s in result.seeds:
        for arm, r in s.arms.items():
            i = r.index
            rule_rewards = [st.rewards["rules"] for st in r.trace.steps]
            lines.append(
                f"| {s.seed} | {arm} | {i.proxy_at_peak:.3f} → {i.proxy_final:.3f} | "
                f"{i.true_peak:.3f} ({i.peak_step}) → {i.true_final:.3f} | {rule_rewards[0]:.3f} → {rule_rewards[-1]:.3f} |"
            )
    return "\n".join(lines) + "\n"


def curves_figure(result: HackingExperiment, path: str) -> None:
    """PNG: per arm, the RM score (proxy) and the oracle score (true quality) of the rollouts over steps, each seed
    one line (:func:`pasture.report.figures.hacking_curves`)."""
    import pandas as pd

    from pasture.report.figures import hacking_curves

    rows = [
        {"run": f"{arm} (seed {s.seed})", "group": arm, "step": st.step, "proxy": st.rewards["reward_model"],
         "true": st.true_quality}
        for s in result.seeds
        for arm, r in s.arms.items()
        for st in r.trace.steps
    ]  # fmt: skip
    fig = hacking_curves(pd.DataFrame(rows))
    if fig is not None:
        Path(path).write_bytes(fig.png)
