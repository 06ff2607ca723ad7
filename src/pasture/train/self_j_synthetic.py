"""Self-J on the extended synthetic task: does self-distillation make a better reference-free judge? (METHODS.md)

From the shared starting policy (:func:`pasture.train.synthetic.train_start_policy`, trained once), each seed:

1. samples ``samples_per_prompt`` responses per training prompt from the starting policy, and labels each with
   Self-J's recipe (:func:`pasture.train.self_j.label_examples`): the policy's own rating given the gold
   reference (the expected digit under the teacher prompt ``<prompt><answer>?<reference>#``) moved halfway to
   9 × the response's character overlap with the reference. The gold reference is good but imperfect
   (:func:`pasture.train.synthetic.gold_reference`), never the oracle's criterion;
2. trains two judges from the starting policy on the same labelled examples, with the same steps, batch size,
   learning rate and seed: ``kl`` (Self-J's loss, student weight 0.3, KL weight 2) and ``no_kl`` (the same
   loss with KL weight 0: the student learns from its own labels alone);
3. scores fresh samples on fresh evaluation prompts with each judge's **student** (no reference), and measures
   the scores against the exact oracle (:func:`pasture.analysis.selective.selective_answering`: AUC for telling
   good responses, oracle score >= 0.5, from bad ones; Spearman's rank correlation; the quality–coverage curve);
4. best-of-n with the ``kl`` student as scorer: ``n_bon`` samples per evaluation prompt, the mean oracle score
   of the student's pick among the first n, for n = 1, 2, 4, 8, 16 (nested candidate sets).

Across seeds: the per-seed difference ``kl`` minus ``no_kl`` in AUC and in Spearman, its mean, sample sd and 95 %
t-interval over seeds. ``kl`` *beats* ``no_kl`` on a measure when the mean difference exceeds 0 and the interval
excludes 0 (METHODS.md's rule, applied to a difference of measures rather than to a win rate, since a judge is
compared by how it orders responses). Definitions: docs/judges.md ("Self-J").
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.stats import norm
from torch import nn

from pasture.analysis.selective import SelectiveAnswering, selective_answering
from pasture.errors import InputError
from pasture.train.best_of_n import BestOfN
from pasture.train.core import OptimSettings, generate, set_seed
from pasture.train.registry import SelfJSettings
from pasture.train.self_j import (
    SelfJExample,
    char_overlap,
    expected_digits,
    sample_examples,
    student_text,
    teacher_text,
    train_self_j,
)
from pasture.train.synthetic import (
    GOOD_THRESHOLD,
    MAX_RESPONSE_TOKENS,
    StartConfig,
    StartPolicy,
    extended_oracle_score,
    gold_reference,
    make_prompts,
)

JUDGES = ("kl", "no_kl")
"""The two judges of a seed: Self-J's loss, and the same without the KL distillation term."""

BON_NS = (1, 2, 4, 8, 16)
"""Best-of-n budgets reported (nested: the first n of the same samples)."""


@dataclass(frozen=True)
class SelfJExperimentConfig:
    """Sizes of one comparison; the defaults are the full run (``experiments/self_j_synthetic.py``), sized to the
    shared CPU budget: the shared starting policy's recipe with its old-task stage cut to 100 steps (the old task
    plays no part in Self-J), 2000 labelled samples, 500 steps of 64 per judge. (A first run at 150 steps of 32 on
    1000 samples left both judges near chance, even the teacher with the reference:
    ``experiments/self_j_synthetic_150steps.md``.)"""

    start: StartConfig = field(default_factory=lambda: StartConfig(old_steps=100))
    n_train_prompts: int = 1000
    samples_per_prompt: int = 2
    steps: int = 500
    batch_size: int = 64
    lr: float = 1e-3
    n_eval_prompts: int = 300
    eval_samples_per_prompt: int = 2
    n_bon_prompts: int = 150
    n_bon: int = 16


SMOKE = SelfJExperimentConfig(
    start=StartConfig(n_old_prompts=200, old_steps=20, n_sft_prompts=300, n_write=20, sft_steps=30, n_old_eval=20),
    n_train_prompts=60,
    steps=4,
    batch_size=32,
    n_eval_prompts=40,
    n_bon_prompts=12,
    n_bon=4,
)
"""The CI smoke size (one seed): every stage runs, the figures mean nothing."""


def settings_for(judge: str) -> SelfJSettings:
    """The Self-J settings of ``judge`` on the synthetic task: the paper's weights, KL off for ``no_kl``."""
    base = SelfJSettings(prompt_format="synthetic", similarity="char_overlap", max_new_tokens=MAX_RESPONSE_TOKENS)
    if judge == "kl":
        return base
    if judge == "no_kl":
        return SelfJSettings(
            prompt_format="synthetic", similarity="char_overlap", max_new_tokens=MAX_RESPONSE_TOKENS, kl_weight=0.0
        )
    raise InputError(f"unknown judge {judge!r}; choose one of {', '.join(JUDGES)}")


@dataclass
class SeedResult:
    """One seed: each judge's student (and teacher) measured against the oracle, the labels' own quality, and the
    ``kl`` student's best-of-n curve (mean oracle score by n, and the oracle's own pick by n)."""

    seed: int
    student: dict[str, SelectiveAnswering]
    teacher: dict[str, SelectiveAnswering]
    labels: SelectiveAnswering
    own_rating: SelectiveAnswering
    similarity: SelectiveAnswering
    mean_label: float
    best_of_n: dict[int, float]
    best_of_n_oracle: dict[int, float]
    oracle_at_half: float
    wall_s: float


def _measure(scores: Sequence[float], quality: Sequence[float]) -> SelectiveAnswering:
    return selective_answering(scores, quality, good_threshold=GOOD_THRESHOLD)


def labelled_pool(start: StartPolicy, cfg: SelfJExperimentConfig, seed: int) -> list[SelfJExample]:
    """The seed's training examples: the starting policy's samples on fresh prompts, labelled by Self-J's recipe."""
    prompts = make_prompts(cfg.n_train_prompts, seed=70_000 + seed)
    settings = SelfJSettings(
        prompt_format="synthetic",
        similarity="char_overlap",
        samples_per_prompt=cfg.samples_per_prompt,
        max_new_tokens=MAX_RESPONSE_TOKENS,
    )
    refs = [gold_reference(p) for p in prompts]
    return sample_examples(start.model, start.tokenizer, prompts, refs, settings, seed=71_000 + seed)


def train_judges(
    start: StartPolicy, pool: Sequence[SelfJExample], cfg: SelfJExperimentConfig, seed: int
) -> dict[str, nn.Module]:
    """Both judges of a seed, from the starting policy, at equal budget."""
    optim = OptimSettings(lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.steps)
    out = {}
    for name in JUDGES:
        model, _ = train_self_j(
            copy.deepcopy(start.model).train(),
            start.tokenizer,
            pool,
            settings=settings_for(name),
            optim=optim,
            seed=seed,
        )
        out[name] = model.eval()
    return out


def run_seed(start: StartPolicy, cfg: SelfJExperimentConfig, seed: int) -> SeedResult:
    """Label a pool, train both judges, measure their students on fresh samples, run best-of-n (module docstring)."""
    import time

    t0 = time.perf_counter()
    set_seed(seed)
    tok = start.tokenizer
    pool = labelled_pool(start, cfg, seed)
    pool_quality = [extended_oracle_score(e.prompt, e.response) for e in pool]
    judges = train_judges(start, pool, cfg, seed)
    eval_prompts = make_prompts(cfg.n_eval_prompts, seed=72_000 + seed)
    gens = generate(
        start.model,
        tok,
        eval_prompts,
        n=cfg.eval_samples_per_prompt,
        max_new_tokens=MAX_RESPONSE_TOKENS,
        seed=73_000 + seed,
    )
    ps = [p for p, g in zip(eval_prompts, gens, strict=True) for _ in g]
    rs = [x.text for g in gens for x in g]
    quality = [extended_oracle_score(p, r) for p, r in zip(ps, rs, strict=True)]
    refs = [gold_reference(p) for p in ps]
    student = {}
    teacher = {}
    for name, model in judges.items():
        student[name] = _measure(
            expected_digits(model, tok, [student_text("synthetic", p, r) for p, r in zip(ps, rs, strict=True)]), quality
        )
        teacher[name] = _measure(
            expected_digits(
                model, tok, [teacher_text("synthetic", p, r, g) for p, r, g in zip(ps, rs, refs, strict=True)]
            ),
            quality,
        )
    bon, bon_oracle = best_of_n_curve(start, judges["kl"], cfg, seed)
    return SeedResult(
        seed=seed,
        student=student,
        teacher=teacher,
        labels=_measure([e.label for e in pool], pool_quality),
        own_rating=_measure([e.rating for e in pool], pool_quality),
        similarity=_measure([char_overlap(e.response, e.reference) for e in pool], pool_quality),
        mean_label=float(np.mean([e.label for e in pool])),
        best_of_n=bon,
        best_of_n_oracle=bon_oracle,
        oracle_at_half=float(np.mean(sorted(quality, reverse=True)[: max(1, math.ceil(0.5 * len(quality) - 1e-9))])),
        wall_s=time.perf_counter() - t0,
    )


def best_of_n_curve(
    start: StartPolicy, judge: nn.Module, cfg: SelfJExperimentConfig, seed: int
) -> tuple[dict[int, float], dict[int, float]]:
    """Mean oracle score of the judge's pick among the first n of ``cfg.n_bon`` samples per prompt, for each n of
    :data:`BON_NS` up to ``cfg.n_bon``; and the same with the oracle picking (the ceiling at each n)."""
    prompts = make_prompts(cfg.n_bon_prompts, seed=74_000 + seed)
    gens = generate(
        start.model, start.tokenizer, prompts, n=cfg.n_bon, max_new_tokens=MAX_RESPONSE_TOKENS, seed=75_000 + seed
    )
    flat_p = [p for p, g in zip(prompts, gens, strict=True) for _ in g]
    flat_r = [x.text for g in gens for x in g]
    scores = expected_digits(
        judge, start.tokenizer, [student_text("synthetic", p, r) for p, r in zip(flat_p, flat_r, strict=True)]
    )
    oracle = [extended_oracle_score(p, r) for p, r in zip(flat_p, flat_r, strict=True)]
    k = cfg.n_bon
    cands = tuple(tuple(flat_r[i * k : (i + 1) * k]) for i in range(len(prompts)))
    by_judge = BestOfN(tuple(prompts), cands, tuple(tuple(scores[i * k : (i + 1) * k]) for i in range(len(prompts))), 0)
    by_oracle = BestOfN(
        tuple(prompts), cands, tuple(tuple(oracle[i * k : (i + 1) * k]) for i in range(len(prompts))), 0
    )
    curve, ceiling = {}, {}
    for n in (n for n in BON_NS if n <= k):
        curve[n] = float(
            np.mean([extended_oracle_score(p, r) for p, r in zip(prompts, by_judge.select(n), strict=True)])
        )
        ceiling[n] = float(
            np.mean([extended_oracle_score(p, r) for p, r in zip(prompts, by_oracle.select(n), strict=True)])
        )
    return curve, ceiling


@dataclass(frozen=True)
class DifferenceSummary:
    """Mean, sample sd and 95 % t-interval over seeds of a per-seed difference; ``beats``: mean > 0 and the
    interval excludes 0. One seed: no interval (nan), ``beats`` False."""

    mean: float
    sd: float
    low: float
    high: float
    n_seeds: int
    beats: bool


def summarize_differences(values: Sequence[float]) -> DifferenceSummary:
    """:class:`DifferenceSummary` of per-seed differences."""
    if not values:
        raise InputError("no per-seed differences to summarise")
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return DifferenceSummary(mean, math.nan, math.nan, math.nan, len(x), False)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(x) - 1)) * sd / math.sqrt(len(x))
    return DifferenceSummary(mean, sd, mean - half, mean + half, len(x), mean > 0 and mean - half > 0)


def equivalent_sigma(auc: float) -> float:
    """σ of the oracle-plus-Gaussian-noise scorer with the same AUC (gap 1 between good and bad):
    the inverse of :func:`pasture.analysis.selective.gaussian_noise_auc`; inf at AUC <= 0.5, 0 at 1."""
    if not math.isfinite(auc) or auc <= 0.5:
        return math.inf
    if auc >= 1.0:
        return 0.0
    return float(1.0 / (math.sqrt(2.0) * norm.ppf(auc)))


@dataclass
class SelfJComparison:
    """Every seed's result and the summaries over seeds of ``kl`` minus ``no_kl`` (AUC, Spearman) and of the
    best-of-n gain (oracle score at the largest n minus at n = 1)."""

    config: SelfJExperimentConfig
    seeds: list[SeedResult]
    auc: DifferenceSummary
    spearman: DifferenceSummary
    best_of_n_gain: DifferenceSummary
    start_wall_s: float


def run_comparison(cfg: SelfJExperimentConfig, seeds: Sequence[int]) -> SelfJComparison:
    """The whole comparison: one shared starting policy, then :func:`run_seed` for each seed."""
    import time

    from pasture.train.synthetic import train_start_policy

    if not seeds:
        raise InputError("give at least one seed")
    t0 = time.perf_counter()
    start = train_start_policy(cfg.start)
    start_s = time.perf_counter() - t0
    results = [run_seed(start, cfg, s) for s in seeds]
    top = max(results[0].best_of_n)
    return SelfJComparison(
        config=cfg,
        seeds=results,
        auc=summarize_differences([r.student["kl"].auc - r.student["no_kl"].auc for r in results]),
        spearman=summarize_differences([r.student["kl"].spearman - r.student["no_kl"].spearman for r in results]),
        best_of_n_gain=summarize_differences([r.best_of_n[top] - r.best_of_n[1] for r in results]),
        start_wall_s=start_s,
    )


def _row(s: DifferenceSummary) -> str:
    return f"{s.mean:+.4f} | {s.sd:.4f} | [{s.low:+.4f}, {s.high:+.4f}] | {s.n_seeds} | {'yes' if s.beats else 'no'}"


def comparison_markdown(result: SelfJComparison) -> str:
    """The comparison as Markdown tables: per seed, the summaries, best-of-n, the selective-answering view."""
    lines = [
        "| seed | student kl AUC [95% CI] | student no_kl AUC [95% CI] | Spearman kl | Spearman no_kl | "
        "teacher kl AUC | teacher no_kl AUC | labels AUC | own rating AUC | similarity AUC | mean label | wall s |",
        "|" + "---|" * 12,
    ]
    for r in result.seeds:
        k, n = r.student["kl"], r.student["no_kl"]
        lines.append(
            f"| {r.seed} | {k.auc:.4f} [{k.auc_low:.4f}, {k.auc_high:.4f}] | {n.auc:.4f} [{n.auc_low:.4f}, "
            f"{n.auc_high:.4f}] | {k.spearman:.4f} | {n.spearman:.4f} | {r.teacher['kl'].auc:.4f} | "
            f"{r.teacher['no_kl'].auc:.4f} | {r.labels.auc:.4f} | {r.own_rating.auc:.4f} | {r.similarity.auc:.4f} | "
            f"{r.mean_label:.2f} | {r.wall_s:.0f} |"
        )
    lines += [
        "",
        "| kl minus no_kl (student) | mean | sd | 95% t-interval over seeds | seeds | beats |",
        "|---|---|---|---|---|---|",
        f"| AUC | {_row(result.auc)} |",
        f"| Spearman | {_row(result.spearman)} |",
        "",
    ]
    ns = sorted(result.seeds[0].best_of_n)
    lines += [
        "| seed | "
        + " | ".join(f"best-of-{n} (kl student)" for n in ns)
        + " | "
        + " | ".join(f"oracle pick of {n}" for n in ns)
        + " |",
        "|" + "---|" * (1 + 2 * len(ns)),
    ]
    for r in result.seeds:
        lines.append(
            f"| {r.seed} | "
            + " | ".join(f"{r.best_of_n[n]:.4f}" for n in ns)
            + " | "
            + " | ".join(f"{r.best_of_n_oracle[n]:.4f}" for n in ns)
            + " |"
        )
    means = [float(np.mean([r.best_of_n[n] for r in result.seeds])) for n in ns]
    lines.append("| mean | " + " | ".join(f"{m:.4f}" for m in means) + " |" + " |" * len(ns))
    g = result.best_of_n_gain
    lines += [
        "",
        f"Best-of-{ns[-1]} minus best-of-1 (kl student), over seeds: {g.mean:+.4f} (sd {g.sd:.4f}, 95% t-interval "
        f"[{g.low:+.4f}, {g.high:+.4f}]); the mean curve is "
        f"{'non-decreasing' if all(b >= a for a, b in itertools.pairwise(means)) else 'not monotone'} "
        "in n.",
        "",
        "| seed | judge | AUC | equivalent σ (oracle + noise) | quality at 50% coverage | answering all | "
        "oracle at 50% | curve area | random area | oracle area |",
        "|" + "---|" * 10,
    ]
    for r in result.seeds:
        for name in JUDGES:
            s = r.student[name]
            lines.append(
                f"| {r.seed} | {name} | {s.auc:.4f} | {equivalent_sigma(s.auc):.3f} | {s.quality_at(0.5):.4f} | "
                f"{s.area_random:.4f} | {r.oracle_at_half:.4f} | {s.area:.4f} | {s.area_random:.4f} | "
                f"{s.area_oracle:.4f} |"
            )
    return "\n".join(lines) + "\n"
