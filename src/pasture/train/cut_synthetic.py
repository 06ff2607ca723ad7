"""CUT against its baselines on the extended synthetic task, at equal budget, over several seeds (METHODS.md).

From the shared starting policy (:func:`pasture.train.synthetic.train_start_policy`, trained once), each seed:

1. samples ``samples_per_prompt`` responses per training prompt (temperature 1) and judges each with the
   programmatic critic (:func:`pasture.train.synthetic.critic`: verdict and the wrong positions, never the fix);
2. trains four policies from the start, each for the same ``steps`` × ``batch_size`` examples at the same learning
   rate, on its share of the same judged pool:

   * ``cut``: CUT with the paper's offline defaults (λ = 1.2, α = 0.5, good subsampled to 0.25× bad);
   * ``cut_no_ul``: the same with λ = ∞ (no unlikelihood term);
   * ``sft_good``: SFT on the good responses only;
   * ``dpo``: DPO (β = 0.1) on every (good, bad) pair of responses to the same prompt;

3. samples one response per evaluation prompt from each policy and compares CUT's with each baseline's on the
   same prompt by the exact oracle (a **paired oracle win rate**: 1 when CUT's scores higher, ½ on a tie, 0 below);
   also the mean oracle score of each policy and its old-task score (forgetting check).

Across seeds: mean and sample standard deviation of each paired win rate, and the 95 % t-interval over seeds
(mean ± t_{0.975, s−1} · sd / √s). CUT *beats* a baseline when the mean exceeds 50 % and that interval excludes 50 %.
Definitions: docs/train.md ("CUT").
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.judges.base import ResponseReading, ResponseRequest
from pasture.judges.judge import ProgrammaticResponseJudge
from pasture.train.core import OptimSettings, PreferencePair, encode_sequences, generate, set_seed
from pasture.train.cut import JudgedResponse, cut_loss, judge_responses, response_logprobs, train_cut
from pasture.train.dpo import DPOSettings, train_dpo
from pasture.train.registry import CUTSettings
from pasture.train.sft import train_sft
from pasture.train.synthetic import (
    MAX_RESPONSE_TOKENS,
    StartConfig,
    StartPolicy,
    critic,
    critique_prompt,
    extended_oracle_score,
    make_prompts,
    old_task_prompts,
    win_rate_from_scores,
    wrong_positions,
)

BASELINES = ("sft_good", "dpo", "cut_no_ul")
"""The baselines CUT is compared with, in table order."""
POLICIES = ("cut", *BASELINES)


@dataclass(frozen=True)
class CUTExperimentConfig:
    """Sizes of one comparison; the defaults are the full run (``experiments/cut_synthetic.py``)."""

    start: StartConfig = field(default_factory=StartConfig)
    n_train_prompts: int = 2000
    samples_per_prompt: int = 2
    steps: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    dpo_beta: float = 0.1
    n_eval_prompts: int = 400
    n_old_eval_prompts: int = 200


SMOKE = CUTExperimentConfig(
    start=StartConfig(n_old_prompts=200, old_steps=20, n_sft_prompts=300, n_write=20, sft_steps=30, n_old_eval=20),
    n_train_prompts=150,
    steps=4,
    batch_size=32,
    n_eval_prompts=40,
    n_old_eval_prompts=20,
)
"""The CI smoke size (one seed): every stage runs, the figures mean nothing."""


@dataclass(frozen=True)
class PairedWinRate:
    """Paired win rate (%) of a method against a baseline on the same prompts, with its 95 % normal interval over
    prompts (mean ± 1.96 · sd / √n of the per-prompt outcomes 1, ½, 0)."""

    win_rate: float
    low: float
    high: float
    n: int


def paired_win_rate(scores: Sequence[float], baseline_scores: Sequence[float]) -> PairedWinRate:
    """Paired win rate of ``scores`` over ``baseline_scores`` (one per prompt, aligned), in %."""
    wr = win_rate_from_scores(scores, baseline_scores)
    outcomes = np.array(
        [1.0 if s > b else 0.5 if s == b else 0.0 for s, b in zip(scores, baseline_scores, strict=True)]
    )
    half = 1.96 * float(outcomes.std(ddof=1)) / math.sqrt(len(outcomes)) if len(outcomes) > 1 else math.nan
    return PairedWinRate(100 * wr, 100 * (wr - half), 100 * (wr + half), len(outcomes))


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample sd and 95 % t-interval over seeds of per-seed win rates (%); ``beats``: mean > 50 and the
    interval excludes 50 (METHODS.md). With one seed there is no interval (nan) and ``beats`` is False."""

    mean: float
    sd: float
    low: float
    high: float
    n_seeds: int
    beats: bool


def summarize_seeds(win_rates: Sequence[float]) -> SeedSummary:
    """:class:`SeedSummary` of per-seed win rates in %."""
    from scipy import stats

    if not win_rates:
        raise InputError("no per-seed win rates to summarise")
    x = np.asarray(win_rates, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return SeedSummary(mean, math.nan, math.nan, math.nan, len(x), False)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(x) - 1)) * sd / math.sqrt(len(x))
    low, high = mean - half, mean + half
    return SeedSummary(mean, sd, low, high, len(x), mean > 50 and low > 50)


@dataclass
class SeedResult:
    """One seed of the comparison: CUT's paired win rate against each baseline, each policy's mean oracle score and
    old-task score, and the judged pool's make-up."""

    seed: int
    win_rates: dict[str, PairedWinRate]
    mean_score: dict[str, float]
    old_task_score: dict[str, float]
    n_good: int
    n_bad: int
    n_dpo_pairs: int
    flagged_fraction: float
    flags: FlagBreakdown


def sample_judgments(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], *, samples_per_prompt: int, seed: int
) -> list[JudgedResponse]:
    """``samples_per_prompt`` samples (temperature 1) per prompt from ``model``, each judged by the exact critic
    (:func:`pasture.train.synthetic.critic`) with the critique in context by :func:`critique_prompt`."""
    gens = generate(model, tokenizer, prompts, n=samples_per_prompt, max_new_tokens=MAX_RESPONSE_TOKENS, seed=seed)
    flat_p = [p for p, g in zip(prompts, gens, strict=True) for _ in g]
    flat_r = [x.text for g in gens for x in g]
    return judge_responses(flat_p, flat_r, critic, critique_prompt)


def judged_pool(start: StartPolicy, cfg: CUTExperimentConfig, seed: int) -> list[JudgedResponse]:
    """The seed's judged responses: samples of the starting policy on fresh prompts, judged by the critic."""
    prompts = make_prompts(cfg.n_train_prompts, seed=10_000 + seed)
    return sample_judgments(
        start.model, start.tokenizer, prompts, samples_per_prompt=cfg.samples_per_prompt, seed=20_000 + seed
    )


def good_bad_pairs(pool: Sequence[JudgedResponse]) -> list[PreferencePair]:
    """Every (good, bad) pair of responses to the same prompt, in pool order."""
    by_prompt: dict[str, list[JudgedResponse]] = {}
    for e in pool:
        by_prompt.setdefault(e.prompt, []).append(e)
    pairs: list[PreferencePair] = []
    for prompt, items in by_prompt.items():
        for g in (e for e in items if e.good):
            pairs.extend(PreferencePair(prompt, g.response, b.response) for b in items if not b.good)
    return pairs


@dataclass(frozen=True)
class FlagBreakdown:
    """Which tokens of bad responses CUT's λ-ratio flags under a policy: ``error_flagged`` is the fraction of error
    tokens flagged (a character at a wrong position, or an EOS that ends the response at the wrong length),
    ``right_flagged`` the fraction of right tokens flagged, ``precision`` the fraction of flagged tokens that are
    errors (nan when none is flagged)."""

    error_flagged: float
    right_flagged: float
    precision: float


@torch.no_grad()
def flag_breakdown(
    model: nn.Module, start: StartPolicy, pool: Sequence[JudgedResponse], settings: CUTSettings, batch_size: int = 256
) -> FlagBreakdown:
    """:class:`FlagBreakdown` of ``model`` on the bad responses of ``pool`` (the critic's wrong positions)."""
    bad = [e for e in pool if not e.good]
    counts = np.zeros((2, 2))  # [is error, is flagged]
    for i in range(0, len(bad), batch_size):
        chunk = bad[i : i + batch_size]
        responses = [e.response for e in chunk]
        judged_b = encode_sequences(start.tokenizer, [e.judged_prompt for e in chunk], responses)
        plain_b = encode_sequences(start.tokenizer, [e.prompt for e in chunk], responses)
        width = int(judged_b.response_mask.sum(dim=1).max().item())
        judged, mask = response_logprobs(model, judged_b, width)
        plain, _ = response_logprobs(model, plain_b, width)
        flagged = cut_loss(judged, plain, mask, torch.ones(len(chunk), dtype=torch.bool), settings).flagged
        for b, e in enumerate(chunk):
            wrong = set(wrong_positions(e.prompt, e.response))
            n = len(e.prompt) - 3
            for t in range(int(mask[b].sum().item())):
                error = t in wrong if t < len(e.response) else len(e.response) != n
                counts[int(error), int(flagged[b, t].item())] += 1
    error_flagged = counts[1, 1] / max(counts[1].sum(), 1)
    right_flagged = counts[0, 1] / max(counts[0].sum(), 1)
    precision = counts[1, 1] / counts[:, 1].sum() if counts[:, 1].sum() else math.nan
    return FlagBreakdown(float(error_flagged), float(right_flagged), float(precision))


def _fresh(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).train()


def train_policies(
    start: StartPolicy, pool: Sequence[JudgedResponse], cfg: CUTExperimentConfig, seed: int
) -> tuple[dict[str, nn.Module], float, int]:
    """The four policies of one seed at equal budget; returns them, CUT's flagged fraction and the DPO pair count."""
    tok = start.tokenizer
    optim = OptimSettings(lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.steps)
    cut, cut_stats = train_cut(_fresh(start.model), tok, pool, settings=CUTSettings.offline(), optim=optim, seed=seed)
    no_ul, _ = train_cut(_fresh(start.model), tok, pool, settings=CUTSettings(lam=math.inf), optim=optim, seed=seed)
    good = [e for e in pool if e.good]
    if not good:
        raise InputError("the judged pool has no good response: SFT on good responses has nothing to learn from")
    sft, _ = train_sft(
        _fresh(start.model), tok, [e.prompt for e in good], [e.response for e in good], optim=optim, seed=seed
    )
    pairs = good_bad_pairs(pool)
    if not pairs:
        raise InputError("no prompt has both a good and a bad response: DPO has no pairs")
    dpo, _ = train_dpo(_fresh(start.model), tok, pairs, settings=DPOSettings(beta=cfg.dpo_beta), optim=optim, seed=seed)
    policies = {"cut": cut, "cut_no_ul": no_ul, "sft_good": sft, "dpo": dpo}
    return policies, cut_stats.metrics["flagged_fraction"], len(pairs)


def _scores(model: nn.Module, start: StartPolicy, prompts: Sequence[str], seed: int) -> list[float]:
    gens = generate(model, start.tokenizer, prompts, n=1, max_new_tokens=MAX_RESPONSE_TOKENS, seed=seed)
    return [extended_oracle_score(p, g[0].text) for p, g in zip(prompts, gens, strict=True)]


def run_seed(start: StartPolicy, cfg: CUTExperimentConfig, seed: int) -> SeedResult:
    """Judge a pool, train the four policies, and compare them on fresh evaluation prompts (module docstring)."""
    set_seed(seed)
    pool = judged_pool(start, cfg, seed)
    policies, flagged, n_pairs = train_policies(start, pool, cfg, seed)
    eval_prompts = make_prompts(cfg.n_eval_prompts, seed=30_000 + seed)
    old_prompts = old_task_prompts(cfg.n_old_eval_prompts, seed=40_000 + seed)
    scores = {
        name: _scores(m.eval(), start, eval_prompts, 50_000 + seed + 97 * i)
        for i, (name, m) in enumerate(policies.items())
    }
    old = {name: float(np.mean(_scores(m, start, old_prompts, 60_000 + seed))) for name, m in policies.items()}
    old["start"] = float(np.mean(_scores(start.model, start, old_prompts, 60_000 + seed)))
    means = {name: float(np.mean(s)) for name, s in scores.items()}
    means["start"] = float(np.mean(_scores(start.model, start, eval_prompts, 50_000 + seed + 97 * len(policies))))
    n_good = sum(e.good for e in pool)
    return SeedResult(
        seed=seed,
        win_rates={b: paired_win_rate(scores["cut"], scores[b]) for b in BASELINES},
        mean_score=means,
        old_task_score=old,
        n_good=n_good,
        n_bad=len(pool) - n_good,
        n_dpo_pairs=n_pairs,
        flagged_fraction=flagged,
        flags=flag_breakdown(policies["cut"], start, pool, CUTSettings.offline()),
    )


@dataclass
class CUTComparison:
    """Every seed's result and, per baseline, the summary over seeds."""

    config: CUTExperimentConfig
    seeds: list[SeedResult]
    summary: dict[str, SeedSummary]
    old_task_learned: float


def run_comparison(cfg: CUTExperimentConfig, seeds: Sequence[int]) -> CUTComparison:
    """The whole comparison: one shared starting policy, then :func:`run_seed` for each seed."""
    from pasture.train.synthetic import train_start_policy

    if not seeds:
        raise InputError("give at least one seed")
    start = train_start_policy(cfg.start)
    results = [run_seed(start, cfg, s) for s in seeds]
    summary = {b: summarize_seeds([r.win_rates[b].win_rate for r in results]) for b in BASELINES}
    return CUTComparison(cfg, results, summary, start.old_task_learned)


def comparison_markdown(result: CUTComparison) -> str:
    """The comparison as Markdown: paired win rates per seed, the summary over seeds, then each policy's mean
    oracle score and old-task score per seed."""
    names = (*POLICIES, "start")
    lines = [
        "| seed | "
        + " | ".join(f"CUT vs {b} (%) [95% CI]" for b in BASELINES)
        + " | good / bad | DPO pairs | flagged | errors flagged | right flagged | flag precision |",
        "|" + "---|" * (len(BASELINES) + 7),
    ]
    for r in result.seeds:
        wr = " | ".join(f"{w.win_rate:.1f} [{w.low:.1f}, {w.high:.1f}]" for w in (r.win_rates[b] for b in BASELINES))
        f = r.flags
        lines.append(
            f"| {r.seed} | {wr} | {r.n_good} / {r.n_bad} | {r.n_dpo_pairs} | {r.flagged_fraction:.3f} | "
            f"{f.error_flagged:.3f} | {f.right_flagged:.3f} | {f.precision:.3f} |"
        )
    lines += ["", "| CUT vs | mean (%) | sd | 95% t-interval over seeds | seeds | beats |", "|---|---|---|---|---|---|"]
    for b in BASELINES:
        s = result.summary[b]
        beats = "yes" if s.beats else "no"
        lines.append(f"| {b} | {s.mean:.1f} | {s.sd:.1f} | [{s.low:.1f}, {s.high:.1f}] | {s.n_seeds} | {beats} |")
    lines += [
        "",
        "| seed | "
        + " | ".join(f"score {n}" for n in names)
        + " | "
        + " | ".join(f"old task {n}" for n in names)
        + " |",
        "|" + "---|" * (1 + 2 * len(names)),
    ]
    for r in result.seeds:
        cells = [f"{r.mean_score[n]:.3f}" for n in names] + [f"{r.old_task_score[n]:.3f}" for n in names]
        lines.append(f"| {r.seed} | " + " | ".join(cells) + " |")
    lines += ["", f"Old-task score right after the old stage (before today's task): {result.old_task_learned:.3f}."]
    return "\n".join(lines) + "\n"


def critic_reading(request: ResponseRequest) -> ResponseReading:
    """The exact critic (:func:`pasture.train.synthetic.critic`) as a reading of the critique protocol's shape: a
    verdict good/bad and the critique (the wrong positions, never the correction)."""
    good, critique = critic(request.instruction, request.output)
    return ResponseReading(verdict="good" if good else "bad", critique=critique)


def _critic_version() -> str:
    """Digest of the source of everything the critic's verdict and critique depend on, and its threshold, so the
    judge's fingerprint changes whenever the critic does (the wrapper's own source would not)."""
    import inspect

    from pasture.train import synthetic

    parts = [
        inspect.getsource(f)
        for f in (
            critic_reading,
            synthetic.critic,
            synthetic.wrong_positions,
            synthetic.extended_oracle_score,
            synthetic.oracle_score,
            synthetic.parse_extended,
            synthetic._target,
        )
    ]
    parts.append(f"GOOD_THRESHOLD={synthetic.GOOD_THRESHOLD}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def synthetic_critic_judge() -> ProgrammaticResponseJudge:
    """The synthetic task's exact critic as a single-response judge: its critiques are stored, cached,
    fingerprinted and resumable through :func:`pasture.annotate.responses.annotate_responses` like every judgment.
    Its readings have the critique protocol's shape (verdict good/bad + critique); its fingerprint's protocol is
    ``programmatic_response`` like every programmatic judge."""
    return ProgrammaticResponseJudge(critic_reading, name="synthetic-critic", version=_critic_version())
