"""PUGC on the extended synthetic task: reference-guided labels from imperfect expert documents vs noisy pool labels.

**Documents.** A document is an expert's worked answer written as ``"<ctx>:<answer>"`` (the context digits, then
the expert's rewrite). Its *quality* q sets how good the answer is: the gold reference
(:func:`pasture.train.synthetic.gold_reference`: every digit the keyword but one) with each substituted position
reverted to the context's digit with probability 1 − q. So q = 1 is the gold reference (oracle score (n−1)/n, never
perfect) and q = 0 is the context copied (no keyword added). The oracle never enters a document.

**The PUGC pass** (:func:`pasture.train.pugc.pugc_pairs`, through the store) with programmatic judges, each a
stand-in for a model judge that sees only the document and the question:

* question writer: ``"<ctx>+<c>="`` for the letters of the answer's two most frequent digits;
* filter ("does the document answer it?"): yes when the question's context is the document's and its keyword digit
  is the strict mode of the answer;
* grader (reference-guided, 1-10): 1 + 9 × (positions where the response equals the document's answer) /
  max(len(answer), len(response)). It never sees the oracle: it rewards agreeing with the document.

**The comparison, at equal budget.** Same kept questions, same ``samples_per_question`` samples of the shared
start policy per question, one pair per question, DPO (β = 0.1) with the same steps, batch and learning rate:

* ``pugc``: chosen/rejected = best/worst by the reference-guided grade;
* ``pool``: the usual reference-free pool data: the first two samples, one label from the standard noisy pool of
  the synthetic task (the oracle's preference flipped with p = 0.25, :func:`pasture.simulate.noise.flip_labels`,
  fixed across qualities);
* ``pool_rr``: a stronger reference-free baseline with more labels than PUGC's grades: chosen/rejected = most/fewest
  wins in a round robin among all the samples, each comparison labelled by the same noisy pool.

Per seed and quality: the paired oracle win rate of ``pugc`` against each baseline on fresh evaluation prompts (one
sample each, ties ½); across seeds: mean, sd, 95 % t-interval, "beats" as in METHODS.md. The sweep over q shows
where the gain vanishes.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pasture.errors import InputError
from pasture.judges.base import ResponseReading, ResponseRequest
from pasture.judges.judge import ProgrammaticResponseJudge
from pasture.simulate.noise import example_key, flip_labels
from pasture.store import Store
from pasture.train.core import OptimSettings, PreferencePair, generate, set_seed
from pasture.train.cut_synthetic import PairedWinRate, SeedSummary, paired_win_rate, summarize_seeds
from pasture.train.dpo import DPOSettings, train_dpo
from pasture.train.pugc import PUGCJudges, PUGCResult, PUGCSettings, pugc_pairs
from pasture.train.synthetic import (
    KEY_LETTERS,
    MAX_RESPONSE_TOKENS,
    StartConfig,
    StartPolicy,
    gold_reference,
    make_prompts,
    oracle_preference,
    oracle_score,
    parse_prompt,
)

BASELINES = ("pool", "pool_rr")
ARMS = ("pugc", *BASELINES)


def synthetic_document(prompt: str, quality: float, *, seed: int) -> str:
    """The expert document of ``prompt`` at ``quality`` (module docstring): ``"<ctx>:<answer>"``."""
    if not 0 <= quality <= 1:
        raise InputError(f"document quality must be in [0, 1], got {quality}")
    ctx, _ = parse_prompt(prompt)
    gold = gold_reference(prompt)
    rng = random.Random(f"{seed}|{prompt}")
    answer = "".join(g if g == c or rng.random() < quality else c for g, c in zip(gold, ctx, strict=True))
    return f"{ctx}:{answer}"


def _split(document: str) -> tuple[str, str]:
    ctx, sep, answer = document.partition(":")
    if not sep or not ctx.isdigit():
        raise InputError(f"not a synthetic document '<ctx digits>:<answer>': {document[:40]!r}")
    return ctx, answer


def write_questions(request: ResponseRequest) -> ResponseReading | None:
    """Question writer: the prompts whose keyword is one of the answer's two most frequent digits."""
    ctx, answer = _split(request.output)
    common = [d for d, _ in Counter(answer).most_common(2) if d.isdigit()]
    if not common:
        return None
    return ResponseReading(verdict="yes", critique="\n".join(f"{ctx}+{KEY_LETTERS[int(d)]}=" for d in common))


def document_answers(request: ResponseRequest) -> ResponseReading:
    """Filter: yes when the question's context is the document's and its keyword is the answer's strict mode."""
    ctx, answer = _split(request.output)
    q_ctx, k = parse_prompt(request.instruction)
    top = Counter(answer).most_common(2)
    strict_mode = top[0][0] if top and (len(top) == 1 or top[0][1] > top[1][1]) else None
    return ResponseReading(verdict="yes" if q_ctx == ctx and strict_mode == k else "no")


def reference_grade(request: ResponseRequest) -> ResponseReading:
    """Reference-guided grade 1-10: agreement of the response with the document's answer, position by position."""
    _, answer = _split(request.reference or "")
    out = request.output
    same = sum(1 for a, b in zip(answer, out, strict=False) if a == b)
    return ResponseReading(score=1 + 9 * same / max(len(answer), len(out), 1))


def synthetic_pugc_judges() -> PUGCJudges:
    """The three programmatic judges of the synthetic task (module docstring)."""
    return PUGCJudges(
        questions=ProgrammaticResponseJudge(write_questions, name="synthetic_questions"),
        answers=ProgrammaticResponseJudge(document_answers, name="synthetic_document_answers"),
        grader=ProgrammaticResponseJudge(reference_grade, name="synthetic_reference_grade", reads=("reference",)),
    )


def pool_pair(prompt: str, samples: Sequence[str], *, p: float, seed: int) -> PreferencePair | None:
    """Reference-free pair from the noisy pool: a round robin among ``samples``, each comparison the oracle's
    preference flipped with probability ``p`` (ties count ½ to each); chosen = most wins, rejected = fewest (first
    in sample order on equal wins). None when all samples have equal wins or equal texts."""
    wins = [0.0] * len(samples)
    combos = list(itertools.combinations(range(len(samples)), 2))
    labels = [oracle_preference(prompt, samples[i], samples[j]) for i, j in combos]
    keys = [example_key(prompt, samples[i], samples[j]) for i, j in combos]
    for (i, j), lab in zip(combos, flip_labels(labels, keys, p=p, seed=seed), strict=True):
        wins[j] += lab - 1
        wins[i] += 2 - lab
    best = max(range(len(samples)), key=lambda i: (wins[i], -i))
    worst = min(range(len(samples)), key=lambda i: (wins[i], i))
    if wins[best] == wins[worst] or samples[best] == samples[worst]:
        return None
    return PreferencePair(prompt, samples[best], samples[worst])


@dataclass(frozen=True)
class PUGCExperimentConfig:
    """Sizes of the comparison; the defaults are the full run (``experiments/pugc_synthetic.py``)."""

    start: StartConfig = field(default_factory=StartConfig)
    qualities: tuple[float, ...] = (1.0, 0.6, 0.3, 0.0)
    n_documents: int = 500
    samples_per_question: int = 4
    flip_p: float = 0.25
    steps: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    dpo_beta: float = 0.1
    n_eval_prompts: int = 400


SMOKE = PUGCExperimentConfig(
    start=StartConfig(n_old_prompts=200, old_steps=20, n_sft_prompts=300, n_write=20, sft_steps=30, n_old_eval=20),
    qualities=(1.0, 0.0),
    n_documents=60,
    steps=3,
    batch_size=16,
    n_eval_prompts=40,
)
"""The CI smoke size (one seed): every stage runs, the figures mean nothing."""


@dataclass
class QualityResult:
    """One seed at one document quality: the win rate of pugc over each baseline, each arm's mean oracle score, the
    documents' mean oracle score, how many questions were kept and how many pairs each arm had, and how often the
    pugc pair's order agrees with the oracle (and the pool pair's)."""

    quality: float
    win_rate: dict[str, PairedWinRate]
    mean_score: dict[str, float]
    document_score: float
    n_questions: int
    n_pairs: dict[str, int]
    pair_accuracy: dict[str, float]


def _pair_accuracy(pairs: Sequence[PreferencePair]) -> float:
    if not pairs:
        return float("nan")
    return float(np.mean([oracle_score(p.prompt, p.chosen) > oracle_score(p.prompt, p.rejected) for p in pairs]))


def run_quality(
    start: StartPolicy, cfg: PUGCExperimentConfig, seed: int, quality: float, store: Store, eval_prompts: list[str]
) -> QualityResult:
    """One seed at one quality: documents, the PUGC pass through ``store``, the pool pairs, two DPO runs, and the
    paired oracle comparison on ``eval_prompts``."""
    prompts = make_prompts(cfg.n_documents, seed=70_000 + seed)
    docs = [synthetic_document(p, quality, seed=seed) for p in prompts]
    settings = PUGCSettings(
        questions_per_document=2,
        samples_per_question=cfg.samples_per_question,
        max_new_tokens=MAX_RESPONSE_TOKENS,
        temperature=1.0,
        seed=80_000 + seed,
    )
    result: PUGCResult = pugc_pairs(store, docs, synthetic_pugc_judges(), start.model, start.tokenizer, settings)
    arms: dict[str, list[PreferencePair]] = {"pugc": result.pairs, "pool": [], "pool_rr": []}
    for sq in result.questions:
        for arm, samples in (("pool", sq.samples[:2]), ("pool_rr", sq.samples)):
            if (pp := pool_pair(sq.question, samples, p=cfg.flip_p, seed=90_000 + seed)) is not None:
                arms[arm].append(pp)
    if not all(arms.values()):
        raise InputError(f"quality {quality}, seed {seed}: an arm has no pair "
                         f"({ {a: len(v) for a, v in arms.items()} }); use more documents")  # fmt: skip
    optim = OptimSettings(lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.steps)
    scores: dict[str, list[float]] = {}
    for arm, pairs in arms.items():
        set_seed(seed)
        model, _ = train_dpo(
            copy.deepcopy(start.model).train(), start.tokenizer, pairs,
            settings=DPOSettings(beta=cfg.dpo_beta), optim=optim, seed=seed,
        )  # fmt: skip
        gens = generate(
            model.eval(), start.tokenizer, eval_prompts, n=1, max_new_tokens=MAX_RESPONSE_TOKENS, seed=100_000 + seed
        )
        scores[arm] = [oracle_score(p, g[0].text) for p, g in zip(eval_prompts, gens, strict=True)]
        del model
    doc_scores = [oracle_score(p, _split(d)[1]) for p, d in zip(prompts, docs, strict=True)]
    return QualityResult(
        quality=quality,
        win_rate={b: paired_win_rate(scores["pugc"], scores[b]) for b in BASELINES},
        mean_score={a: float(np.mean(s)) for a, s in scores.items()},
        document_score=float(np.mean(doc_scores)),
        n_questions=len(result.questions),
        n_pairs={a: len(v) for a, v in arms.items()},
        pair_accuracy={a: _pair_accuracy(v) for a, v in arms.items()},
    )


@dataclass
class PUGCExperiment:
    """Every seed's results per quality, the summary over seeds per quality, and the start policy's mean score."""

    config: PUGCExperimentConfig
    seeds: list[int]
    results: dict[int, list[QualityResult]]
    summary: dict[tuple[float, str], SeedSummary]
    start_score: float
    timings: dict[str, float] = field(default_factory=dict)


def run_experiment(cfg: PUGCExperimentConfig, seeds: Sequence[int], store_dir: str | Path) -> PUGCExperiment:
    """The whole sweep: one shared start policy, then every quality for every seed (one store file per seed)."""
    from pasture.train.synthetic import train_start_policy

    if not seeds:
        raise InputError("give at least one seed")
    start = train_start_policy(cfg.start)
    results: dict[int, list[QualityResult]] = {}
    start_scores = []
    for seed in seeds:
        eval_prompts = make_prompts(cfg.n_eval_prompts, seed=110_000 + seed)
        gens = generate(start.model, start.tokenizer, eval_prompts, n=1, max_new_tokens=MAX_RESPONSE_TOKENS,
                        seed=100_000 + seed)  # fmt: skip
        start_scores.append(np.mean([oracle_score(p, g[0].text) for p, g in zip(eval_prompts, gens, strict=True)]))
        with Store(Path(store_dir) / f"pugc_synthetic_seed{seed}.db") as store:
            results[seed] = [run_quality(start, cfg, seed, q, store, eval_prompts) for q in cfg.qualities]
    summary = {
        (q, b): summarize_seeds([results[s][i].win_rate[b].win_rate for s in seeds])
        for i, q in enumerate(cfg.qualities)
        for b in BASELINES
    }
    return PUGCExperiment(cfg, list(seeds), results, summary, float(np.mean(start_scores)))


def experiment_markdown(result: PUGCExperiment) -> str:
    """The sweep as Markdown: the summary per quality, then every seed's row."""
    lines = [
        f"Start policy's mean oracle score: {result.start_score:.3f}.",
        "",
        "## PUGC (reference-guided) vs noisy pool labels, by document quality",
        "",
        "| quality q | document score | baseline | win rate of pugc (mean ± sd) | 95% t-interval | beats |",
        "|---|---|---|---|---|---|",
    ]
    for i, q in enumerate(result.config.qualities):
        doc = np.mean([result.results[seed][i].document_score for seed in result.seeds])
        for b in BASELINES:
            s = result.summary[(q, b)]
            lines.append(
                f"| {q:.2f} | {doc:.3f} | {b} | {s.mean:.1f} ± {s.sd:.1f} | [{s.low:.1f}, {s.high:.1f}] | "
                f"{'yes' if s.beats else 'no'} |"
            )
    lines += [
        "",
        "## Per seed",
        "",
        "| seed | q | questions | pairs pugc/pool/pool_rr | pair order = oracle pugc/pool/pool_rr "
        "| score pugc/pool/pool_rr | win rate vs pool | win rate vs pool_rr |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def trio(d: Mapping[str, float], fmt: str) -> str:
        return "/".join(format(d[a], fmt) for a in ARMS)

    for seed in result.seeds:
        for r in result.results[seed]:
            wr = " | ".join(
                f"{r.win_rate[b].win_rate:.1f} [{r.win_rate[b].low:.1f}, {r.win_rate[b].high:.1f}]" for b in BASELINES
            )
            lines.append(
                f"| {seed} | {r.quality:.2f} | {r.n_questions} | {trio(r.n_pairs, 'd')} | "
                f"{trio(r.pair_accuracy, '.2f')} | {trio(r.mean_score, '.3f')} | {wr} |"
            )
    return "\n".join(lines) + "\n"
