"""The iterative driver: rounds of sample → judge → build → train → evaluate, every stage stored and resumable.

One round ``k`` (policy ``M_k`` → ``M_{k+1}``):

1. **sample**: the builder asks for samples from the current policy and, where it needs them, from the starting
   policy ``M0`` or a temporary model; each set is stored in the pasture store (eval set ``<name>-train``,
   generator ``<name>/<origin>-<S>/<label>``, one row per sample index), so a rerun samples only what is missing.
2. **judge**: the round's judge, given by a :class:`JudgeSource` (a fixed judge or pool, or a judge derived from the
   current policy: self-rewarding), scores each sample: a single-response judge
   (:class:`~pasture.judges.base.ResponseJudge`) through :func:`~pasture.annotate.responses.annotate_responses`, or,
   for builders that compare two responses (``farm``), a pairwise :class:`~pasture.judges.base.Judge` through the
   annotation engine. Judgments are stored, keyed by the judge's fingerprint and the texts, never paid twice; failed
   judgments are counted and leave their prompt without a pair.
3. **build**: the registered builder (:mod:`pasture.train.builders`) turns them into the round's training data.
4. **train**: a registered method (DPO family, SimPO, SFT) from ``M_k`` (DPO's reference is ``M_k``), or from
   ``M0`` when the builder says so (:attr:`BuiltRound.train_from`), with optional SFT demonstrations after it in the
   same budget (:attr:`BuiltRound.aux_prompts`) → ``workdir/rounds/r<k>-<R>/`` (``run.json`` holds the identity,
   ``stats.json`` marks it complete, ``data.json`` keeps the round's data).
5. **evaluate**: one sample per evaluation prompt from ``M_{k+1}`` and from ``M0`` (same seed), scored by the
   evaluator (the oracle as a programmatic judge, or any response judge; a pairwise judge instead compares
   ``M_{k+1}``'s sample against ``M0``'s, which gives the win rate and LC as everywhere in pasture), and the round's
   diagnostics
   (:class:`RoundRow`) → ``round.json`` in the round's directory and ``workdir/<builder>-r<k>/row.json`` (the
   methods table).

**Keys.** Each stored stage is keyed by what produced it, and by nothing else:

* a **sample set** by ``S`` (:meth:`RoundContext.sample_generator`): the provenance of the model sampled (``M0``: the
  digest of its weights and tokenizer; ``M_k``, k ≥ 1: the identity of the round that trained it; a temporary model:
  its training identity), the prompts, the sampling settings, the seed, the round index, the label and N. Round 0's
  samples from ``M0`` therefore do not depend on β or on the judge, and a run that changes only those reuses them;
* a **judgment** by the judge's fingerprint (which for a self-judge digests the policy) and the texts judged;
* a **checkpoint** (and the round's data, evaluation and diagnostics) by ``R``, the round's identity
  (:func:`round_identity`): the method, its settings and the shared training settings (with the round's seed) as
  :func:`~pasture.train.registry.run_identity` keys them, plus the round index, the builder and every one of its
  settings, the judge source's digest, the sampling settings, the training prompts, the starting policy and the
  previous round's identity.

So a changed setting (β, N, the judge) retrains every round and samples every later policy afresh, never reusing a
checkpoint or data built from one; the same settings redo nothing. A SIGKILLed run resumes at the first stage not
yet stored.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.annotate.engine import EngineSettings, annotate
from pasture.annotate.pairs import PairToJudge
from pasture.annotate.responses import ResponseToJudge, annotate_responses
from pasture.errors import InputError
from pasture.judges.base import Judge, ResponseJudge
from pasture.records import EvalSet, ModelOutput, canonical_json
from pasture.store import Store
from pasture.train.builders import BuilderSettings, get_builder
from pasture.train.compare import win_rate_columns
from pasture.train.core import (
    PreferencePair,
    TrainingData,
    TrainStats,
    checkpoint_done,
    encode_sequences,
    generate,
    load_stats,
    model_digest,
    save_checkpoint,
    token_logprobs,
)
from pasture.train.models import load_checkpoint_model
from pasture.train.registry import (
    MethodSettings,
    RunIdentity,
    TrainSettings,
    get_method,
    run_identity,
    settings_dict,
)
from pasture.train.reward import pair_batch
from pasture.train.run import check_stored, write_identity
from pasture.train.stored import prompt_set


class JudgeSource(Protocol):
    """Where a round's judge comes from. ``digest`` names the source (it enters every round's identity);
    ``for_policy`` gives the judge of a round whose current policy is ``policy`` (a fixed judge ignores it; a
    self-judge is derived from it, and its fingerprint then digests the policy): a single-response judge, or a
    pairwise one for builders that compare two responses."""

    @property
    def digest(self) -> str: ...

    def for_policy(self, policy: nn.Module, tokenizer: PreTrainedTokenizerBase) -> ResponseJudge | Judge: ...

    def prepare(self, items: Sequence[ResponseToJudge]) -> None:
        """Called with a batch of items before the engine asks the judge one by one: a judge on a local model
        scores them in one batched pass here (a no-op for remote judges)."""


@dataclass(frozen=True)
class FixedJudge:
    """A judge (or pool) that stays the same in every round: an outside judge, or the oracle as evaluator (a
    single-response judge, or a pairwise one for the ``farm`` builder)."""

    judge: ResponseJudge | Judge

    @property
    def digest(self) -> str:
        return self.judge.fingerprint.digest

    def for_policy(self, policy: nn.Module, tokenizer: PreTrainedTokenizerBase) -> ResponseJudge | Judge:
        return self.judge

    def prepare(self, items: Sequence[ResponseToJudge]) -> None:
        return None


@dataclass(frozen=True)
class LoopConfig:
    """Settings of one iterative run.

    ``builder_settings`` / ``settings``: the builder's and the method's own settings objects (None: their registry
    defaults); ``train``: the shared training settings (round ``k`` trains with seed ``train.seed + k``; sampling
    seeds derive from it too); ``name`` prefixes every generator stored.
    """

    builder: str = "self_rewarding"
    builder_settings: BuilderSettings | None = None
    method: str = "dpo"
    settings: MethodSettings | None = None
    train: TrainSettings = field(default_factory=TrainSettings)
    rounds: int = 2
    name: str = "loop"
    max_new_tokens: int = 64
    temperature: float = 1.0
    concurrency: int = 1

    def resolved_builder_settings(self) -> BuilderSettings:
        spec = get_builder(self.builder)
        bs = self.builder_settings if self.builder_settings is not None else spec.settings()
        if type(bs) is not spec.settings:
            raise InputError(f"builder {self.builder} takes {spec.settings.__name__}, got {type(bs).__name__}")
        return bs

    def method_settings(self) -> MethodSettings:
        spec = get_method(self.method)
        if spec.produces != "policy" or spec.inputs not in (("pairs",), ("demonstrations",)):
            raise InputError(f"the loop trains methods that learn from pairs or demonstrations, not {self.method!r}")
        builder = get_builder(self.builder)
        if spec.inputs[0] != builder.data:
            raise InputError(
                f"builder {self.builder} produces {builder.data}; method {self.method} reads {spec.inputs[0]}"
            )
        s = self.settings if self.settings is not None else spec.settings()
        if type(s) is not spec.settings:
            raise InputError(f"{self.method} takes {spec.settings.__name__}, got {type(s).__name__}")
        return s

    def round_train(self, k: int) -> TrainSettings:
        return TrainSettings(**{**asdict(self.train), "seed": self.train.seed + k})


def round_identity(cfg: LoopConfig, k: int, previous: str, start: str, train_prompts: str, judge: str) -> RunIdentity:
    """The identity of round ``k`` (see the module docstring): every setting that can change its stored data."""
    inputs = {
        "loop": "round",
        "round": k,
        "previous": previous,
        "start": start,
        "train_prompts": train_prompts,
        "judge": judge,
        "builder": cfg.builder,
        "builder_settings": settings_dict(cfg.resolved_builder_settings()),
        "sampling": {"temperature": cfg.temperature, "max_new_tokens": cfg.max_new_tokens},
    }
    return run_identity(cfg.method, cfg.method_settings(), cfg.round_train(k), inputs)


@dataclass(frozen=True)
class Scored:
    """One judged sample: its text and the judge's score (None when the judgment failed)."""

    text: str
    score: float | None


@dataclass(frozen=True)
class BuiltRound:
    """A builder's result: the training data (``pairs`` or ``prompts`` + ``responses``), the judge's scores of
    each pair's chosen and rejected response (aligned with ``pairs``), and the prompts left without data
    (``n_skipped``: all scores tied or failed) with the failed judgments among them."""

    pairs: tuple[PreferencePair, ...] = ()
    prompts: tuple[str, ...] = ()
    responses: tuple[str, ...] = ()
    chosen_scores: tuple[float, ...] = ()
    rejected_scores: tuple[float, ...] = ()
    n_skipped: int = 0
    n_failed_judgments: int = 0
    train_from: Literal["policy", "start"] = "policy"
    """Which model the round trains from: the current policy M_k (the default) or the starting policy M0 (I-SHEEP's
    "base on latest" and "cumulative" schedules). DPO's reference is the model trained from."""
    aux_prompts: tuple[str, ...] = ()
    aux_responses: tuple[str, ...] = ()
    """Demonstrations trained with SFT after the round's method, in the same budget: the optimiser steps are split
    in proportion to the examples (the baseline of EVOLVE that sees the refine format by SFT, not by DPO)."""


@dataclass
class RoundContext:
    """What a builder sees in round ``index``: the prompts, the policies, the round's judge, its settings, and
    stored helpers (:meth:`sample_scored` samples + judges; :meth:`train_temporary` trains a checkpointed temporary
    model with the round's method)."""

    index: int
    prompts: list[str]
    policy: nn.Module
    start: nn.Module
    tokenizer: PreTrainedTokenizerBase
    judge: ResponseJudge | Judge
    judge_source: JudgeSource
    settings: BuilderSettings
    config: LoopConfig
    identity: RunIdentity
    store: Store
    train_set: EvalSet
    round_dir: Path
    n_failed_judgments: int = 0
    previous_dirs: tuple[Path, ...] = ()
    """The directories of rounds 0..k−1 (each holds its ``data.json``: see :meth:`previous_data`)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of the builder's stored helpers, by stage: ``sample``, ``judge``, ``train_temporary``."""

    def _timed(self, stage: str, since: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - since

    origins: list[tuple[nn.Module, str, str]] = field(default_factory=list)
    """Provenance of the models this round knows: (model, tag, digest of what produced it); see
    :meth:`sample_generator`. Filled by the driver (M0, M_k) and :meth:`train_temporary`."""

    def generator(self, label: str) -> str:
        """A name keyed by the round's identity, for what depends on the whole round (its evaluation samples)."""
        return f"{self.config.name}/r{self.index}-{self.identity.short}/{label}"

    def sample_generator(self, model: nn.Module, label: str, n: int, es: EvalSet) -> str:
        """The generator ``n`` samples per prompt of ``es`` from ``model`` are stored under:
        ``<name>/<origin>-<S>/<label>``, S a digest of what produces them and nothing else (the module docstring's
        keys): the model's provenance, the prompts, temperature, token budget, seed, round, label and ``n``. A model
        the round does not know is keyed by the digest of its weights."""
        known = [(t, d) for m, t, d in self.origins if m is model]
        tag, origin = known[0] if known else ("model", model_digest(model, self.tokenizer))
        key = {
            "model": origin,
            "prompts": es.digest,
            "temperature": self.config.temperature,
            "max_new_tokens": self.config.max_new_tokens,
            "seed": self._seed(label),
            "round": self.index,
            "label": label,
            "n": n,
        }
        digest = hashlib.sha256(canonical_json(key).encode("utf-8")).hexdigest()
        return f"{self.config.name}/{tag}-{digest[:12]}/{label}"

    def _seed(self, label: str) -> int:
        return int(hashlib.sha256(f"{self.config.round_train(self.index).seed}|{label}".encode()).hexdigest()[:8], 16)

    def sample(self, model: nn.Module, label: str, n: int) -> list[list[str]]:
        """``n`` samples per prompt from ``model``, stored under :meth:`generator` ``(label)``; seeded by the round's
        seed and the label, so a rerun draws the same samples and only missing prompts are generated."""
        t = time.perf_counter()
        gen = self.sample_generator(model, label, n, self.train_set)
        out = stored_samples(self.store, self.train_set, gen, model, self.tokenizer, n, self.config, self._seed(label))
        self._timed("sample", t)
        return out

    def sample_on(self, model: nn.Module, prompts: Sequence[str], label: str, n: int) -> list[list[str]]:
        """As :meth:`sample`, on other (distinct) prompts than the round's training prompts: written instructions,
        refine prompts. They are stored as their own eval set (``<name>-aux``), under :meth:`sample_generator`."""
        es = prompt_set(f"{self.config.name}-aux", prompts)
        t = time.perf_counter()
        gen = self.sample_generator(model, label, n, es)
        out = stored_samples(self.store, es, gen, model, self.tokenizer, n, self.config, self._seed(label))
        self._timed("sample", t)
        return out

    def previous_data(self) -> list[TrainingData]:
        """The training data every earlier round kept (its ``data.json``), in round order (cumulative schedules)."""
        out = []
        for d in self.previous_dirs:
            raw = json.loads((d / "data.json").read_text(encoding="utf-8"))
            out.append(
                TrainingData(
                    pairs=tuple(PreferencePair(*p) for p in raw["pairs"]),
                    prompts=tuple(raw["prompts"]),
                    responses=tuple(raw["responses"]),
                )
            )
        return out

    def score(
        self, texts: Sequence[Sequence[str]], label: str, prompts: Sequence[str] | None = None
    ) -> list[list[Scored]]:
        """The round judge's score of every sample (stored judgments; failed ones are None and counted); the samples
        answer ``prompts`` (default: the round's training prompts)."""
        if not isinstance(self.judge, ResponseJudge):
            raise InputError(
                f"builder {self.config.builder} scores single responses; judge {self.judge.name!r} is pairwise "
                "(use a single-response judge, or the farm builder for a pairwise one)"
            )
        items = [
            ResponseToJudge(p, t, self.generator(label))
            for p, row in zip(self.prompts if prompts is None else prompts, texts, strict=True)
            for t in row
        ]
        t = time.perf_counter()
        self.judge_source.prepare(items)
        scores = judge_scores(self.store, self.judge, items, self.config.concurrency)
        self._timed("judge", t)
        self.n_failed_judgments += sum(1 for s in scores if s is None)
        out: list[list[Scored]] = []
        i = 0
        for row in texts:
            out.append([Scored(t, scores[i + j]) for j, t in enumerate(row)])
            i += len(row)
        return out

    def sample_scored(self, model: nn.Module, label: str, n: int) -> list[list[Scored]]:
        return self.score(self.sample(model, label, n), label)

    def train_temporary(self, data: TrainingData, label: str, steps: int | None = None) -> nn.Module:
        """A temporary model trained from the current policy on ``data`` with the round's method and settings
        (``steps`` overriding the round's), checkpointed under the round's directory with its own identity."""
        train = self.config.round_train(self.index)
        if steps is not None:
            train = TrainSettings(**{**asdict(train), "steps": steps})
        ident = run_identity(
            self.config.method,
            self.config.method_settings(),
            train,
            {"round": self.identity.digest, "temporary": label, "data": _data_digest(data)},
        )
        t = time.perf_counter()
        model = train_stored(self.round_dir / label, ident, self.policy, self.tokenizer, data, self.config, train)[0]
        self._timed("train_temporary", t)
        self.origins.append((model, f"tmp-{label}", ident.digest))
        return model


def _data_payload(data: TrainingData) -> dict[str, Any]:
    return {
        "pairs": [[p.prompt, p.chosen, p.rejected] for p in data.pairs],
        "prompts": list(data.prompts),
        "responses": list(data.responses),
    }


def _data_digest(data: TrainingData) -> str:
    return hashlib.sha256(canonical_json(_data_payload(data)).encode("utf-8")).hexdigest()


def stored_samples(
    store: Store,
    es: EvalSet,
    generator: str,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    n: int,
    cfg: LoopConfig,
    seed: int,
) -> list[list[str]]:
    """``n`` samples per prompt of ``es`` from ``model`` under ``generator``; prompts the store already holds all
    ``n`` samples of are not generated again."""
    digest = store.put_eval_set(es)
    have: dict[str, dict[int, str]] = {}
    for o in store.get_outputs(digest, generator):
        have.setdefault(o.instruction, {})[o.sample_index] = o.output
    prompts = es.texts()
    missing = [p for p in prompts if len(have.get(p, {})) < n or any(i not in have[p] for i in range(n))]
    if missing:
        gens = generate(
            model, tokenizer, missing, n=n, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=seed
        )
        outs = [
            ModelOutput(
                instruction=p, output=g.text, generator=generator, sample_index=i, completion_tokens=len(g.response_ids)
            )
            for p, row in zip(missing, gens, strict=True)
            for i, g in enumerate(row)
        ]
        store.put_outputs(digest, outs)
        for o in store.get_outputs(digest, generator):  # the store keeps the first text of a (prompt, sample)
            have.setdefault(o.instruction, {})[o.sample_index] = o.output
    return [[have[p][i] for i in range(n)] for p in prompts]


def judge_scores(
    store: Store, judge: ResponseJudge, items: Sequence[ResponseToJudge], concurrency: int
) -> list[float | None]:
    """Each item's score by ``judge`` through the annotation engine (stored, resumable); None for a failed
    judgment or one without a score."""
    report = annotate_responses(store, judge, items, settings=EngineSettings(concurrency=concurrency), progress=False)
    by_text = {(j.instruction, j.output): j.score if j.status == "ok" else None for j in report.judgments}
    return [by_text.get((it.instruction, it.output)) for it in items]


def train_stored(
    out: Path,
    ident: RunIdentity,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    cfg: LoopConfig,
    train: TrainSettings,
    aux: tuple[Sequence[str], Sequence[str]] | None = None,
) -> tuple[nn.Module, TrainStats]:
    """Train the round's method from ``model`` on ``data`` into ``out``, or load it when ``out`` already holds
    exactly ``ident`` (a finished checkpoint of other settings is an error, never reused).

    With ``aux`` demonstrations (prompts, responses) the budget is shared: the method runs
    ``steps − s_aux`` steps on ``data``, then SFT runs ``s_aux = round(steps · n_aux / (n_data + n_aux))`` steps
    (at least one each) on ``aux`` from the result, so the examples seen stay ``steps × batch_size``."""
    if check_stored(out, ident, checkpoint_done(out)):
        return load_checkpoint_model(out).eval(), load_stats(out)
    write_identity(out, ident)
    trainer = get_method(cfg.method).trainer_function()
    n_aux = len(aux[0]) if aux is not None else 0
    if n_aux == 0:
        policy, stats = trainer(copy.deepcopy(model), tokenizer, data, cfg.method_settings(), train)
    else:
        assert aux is not None
        n_data = len(data.pairs) or len(data.responses)
        if train.steps < 2:
            raise InputError(f"steps={train.steps}: a round with SFT demonstrations after the method needs >= 2 steps")
        s_aux = min(train.steps - 1, max(1, round(train.steps * n_aux / (n_data + n_aux))))
        main_train = TrainSettings(**{**asdict(train), "steps": train.steps - s_aux})
        aux_train = TrainSettings(**{**asdict(train), "steps": s_aux})
        policy, first = trainer(copy.deepcopy(model), tokenizer, data, cfg.method_settings(), main_train)
        sft = get_method("sft")
        policy, second = sft.trainer_function()(
            policy, tokenizer, TrainingData(prompts=aux[0], responses=aux[1]), sft.settings(), aux_train
        )
        stats = TrainStats(
            method=f"{first.method}+sft",
            steps=first.steps + second.steps,
            train_tokens=first.train_tokens + second.train_tokens,
            generated_tokens=first.generated_tokens + second.generated_tokens,
            wall_s=first.wall_s + second.wall_s,
            history=first.history + second.history,
            metrics={**first.metrics, **{f"sft_{k}": v for k, v in second.metrics.items()}},
        )
    save_checkpoint(out, policy, tokenizer, stats)
    return load_checkpoint_model(out).eval(), stats


@torch.no_grad()
def kl_to_start(
    policy: nn.Module, start: nn.Module, tok: PreTrainedTokenizerBase, prompts: Sequence[str], outputs: Sequence[str]
) -> float:
    """KL(π‖π_start) estimate on the policy's own stored samples: mean over responses of Σ_t (log π − log π_start)
    (responses re-tokenised from their text, which is what the store keeps)."""
    total = 0.0
    for i in range(0, len(prompts), 64):
        batch = encode_sequences(tok, prompts[i : i + 64], outputs[i : i + 64])
        total += float((token_logprobs(policy.eval(), batch) - token_logprobs(start.eval(), batch)).sum().item())
    return total / max(len(prompts), 1)


@torch.no_grad()
def mean_sigmoid_weight(
    policy: nn.Module, reference: nn.Module, tok: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair], beta: float
) -> float:
    """Mean σ(−β·h) over ``pairs``, h = (log π(y_c) − log π(y_r)) − (log π_ref(y_c) − log π_ref(y_r)): the weight
    DPO's gradient still gives each pair (0.5 at the start of training, → 0 once a pair is learnt)."""
    total = 0.0
    for i in range(0, len(pairs), 64):
        chunk = pairs[i : i + 64]
        batch = pair_batch(tok, chunk, max_prompt_tokens=256, max_response_tokens=256)
        lp = token_logprobs(policy.eval(), batch).sum(dim=1) - token_logprobs(reference.eval(), batch).sum(dim=1)
        k = len(chunk)
        total += float(torch.sigmoid(-beta * (lp[:k] - lp[k:])).sum().item())
    return total / max(len(pairs), 1)


@dataclass(frozen=True)
class RoundRow:
    """The diagnostics of one round (docs/train.md, "Self-improvement loops"):

    ``win_rate_vs_start``: % of evaluation prompts where the round's policy's sample scores above the start's (same
    prompt, same seed; ties and failed evaluator judgments count one half, ``n_failed_eval`` counts the latter);
    ``chosen_rejected_gap``: mean evaluator score of the round's chosen minus rejected responses (None for SFT
    data); ``judge_gap``: the same by the round's judge; ``pair_accuracy``: fraction of pairs whose chosen response
    the evaluator scores strictly higher; ``sigmoid_weight``: mean σ(−β·h) of the round's pairs under the trained
    policy against its reference (DPO family; None otherwise); ``kl_to_reference`` (KL to the start, the column name the methods table uses) in nats per response;
    ``avg_length`` in characters; ``eval_score``: mean evaluator score of the round's policy (NaN for a pairwise
    evaluator); ``lc_vs_start``: the length-controlled win rate against the start (a pairwise evaluator with at least
    10 evaluation prompts; None otherwise).
    """

    method: str
    round: int
    builder: str
    win_rate_vs_start: float
    eval_score: float
    chosen_rejected_gap: float | None
    judge_gap: float | None
    pair_accuracy: float | None
    sigmoid_weight: float | None
    kl_to_reference: float
    avg_length: float
    n_train_examples: int
    n_skipped: int
    n_failed_judgments: int
    n_failed_eval: int
    train_tokens: int
    wall_s: float
    stage_seconds: dict[str, float]
    run_identity: str
    lc_vs_start: float | None = None


@dataclass(frozen=True)
class LoopResult:
    """Every round's diagnostics, in order, and the final policy's checkpoint directory."""

    rounds: tuple[RoundRow, ...]
    final_checkpoint: Path


@dataclass(frozen=True)
class _Baseline:
    """The start's evaluation samples (one per evaluation prompt), their generator and the evaluator's scores of
    them (empty for a pairwise evaluator, which compares each round's samples with these texts)."""

    generator: str
    texts: tuple[str, ...]
    scores: tuple[float | None, ...]


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _paired_win_rate(scores: Sequence[float | None], base: Sequence[float | None]) -> float:
    total = 0.0
    for s, b in zip(scores, base, strict=True):
        total += 0.5 if s is None or b is None else 1.0 if s > b else 0.5 if s == b else 0.0
    return 100.0 * total / max(len(scores), 1)


def run_loop(
    start: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train_prompts: Sequence[str],
    eval_prompts: Sequence[str],
    judge: JudgeSource,
    evaluator: ResponseJudge | Judge,
    store_path: str | Path,
    workdir: str | Path,
    config: LoopConfig | None = None,
    *,
    on_round: Callable[[RoundRow], None] | None = None,
    rounds_dir: str = "rounds",
    table_rows: bool = True,
) -> LoopResult:
    """Run (or resume) ``config.rounds`` rounds from ``start``; see the module docstring for stages and keys.

    ``judge`` gives each round's judge (:class:`FixedJudge`, or a self-judge derived from the policy);
    ``evaluator`` scores evaluation samples and the round's pairs (the oracle as a programmatic judge on the
    synthetic task), or a pairwise judge comparing each round's policy with the start. ``on_round`` is called
    with each round's diagnostics as it completes. ``rounds_dir`` names the folder of the rounds' checkpoints under
    ``workdir``; ``table_rows=False`` leaves out the ``<builder>-r<k>/row.json`` methods-table rows (a recipe that
    writes its own, like the farm loop).
    """
    cfg = config or LoopConfig()
    cfg.method_settings()
    builder = get_builder(cfg.builder)
    build = builder.build_function()
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    train_es = prompt_set(f"{cfg.name}-train", train_prompts)
    eval_es = prompt_set(f"{cfg.name}-eval", eval_prompts)
    start_digest = model_digest(start, tokenizer)
    start.eval()
    rows: list[RoundRow] = []
    policy = start
    previous = start_digest
    ckpt = work
    done_dirs: list[Path] = []
    with Store(store_path) as store:
        sampling = {"start": start_digest, "seed": cfg.train.seed, "t": cfg.temperature, "m": cfg.max_new_tokens}
        start_gen = f"{cfg.name}/start-{hashlib.sha256(canonical_json(sampling).encode()).hexdigest()[:12]}/eval"
        eval_seed = cfg.train.seed + 10_000
        start_eval = stored_samples(store, eval_es, start_gen, start, tokenizer, 1, cfg, eval_seed)
        start_scores = (
            judge_scores(
                store,
                evaluator,
                [ResponseToJudge(p, o[0], start_gen) for p, o in zip(eval_es.texts(), start_eval, strict=True)],
                cfg.concurrency,
            )
            if isinstance(evaluator, ResponseJudge)
            else []
        )
        baseline = _Baseline(start_gen, tuple(o[0] for o in start_eval), tuple(start_scores))
        for k in range(cfg.rounds):
            ident = round_identity(cfg, k, previous, start_digest, train_es.digest, judge.digest)
            ckpt = work / rounds_dir / f"r{k}-{ident.short}"
            done = ckpt / "round.json"
            if (
                done.is_file()
                and checkpoint_done(ckpt)
                and json.loads(done.read_text())["run_identity"] == ident.digest
            ):
                row = RoundRow(**json.loads(done.read_text(encoding="utf-8")))
                policy = load_checkpoint_model(ckpt).eval()
            else:
                policy, row = _run_round(
                    k,
                    ident,
                    ckpt,
                    policy,
                    start,
                    tokenizer,
                    train_es,
                    eval_es,
                    judge,
                    evaluator,
                    store,
                    cfg,
                    build,
                    baseline,
                    tuple(done_dirs),
                )
                done.write_text(json.dumps(asdict(row), indent=2), encoding="utf-8")
            if table_rows:
                (work / f"{cfg.builder}-r{k}").mkdir(exist_ok=True)
                row_text = json.dumps(asdict(row), indent=2)
                (work / f"{cfg.builder}-r{k}" / "row.json").write_text(row_text, encoding="utf-8")
            rows.append(row)
            if on_round is not None:
                on_round(row)
            previous = ident.digest
            done_dirs.append(ckpt)
    result = LoopResult(tuple(rows), ckpt)
    (work / "result.json").write_text(json.dumps(asdict(result), indent=2, default=str), encoding="utf-8")
    return result


def _run_round(
    k: int,
    ident: RunIdentity,
    ckpt: Path,
    policy: nn.Module,
    start: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train_es: EvalSet,
    eval_es: EvalSet,
    judge_source: JudgeSource,
    evaluator: ResponseJudge | Judge,
    store: Store,
    cfg: LoopConfig,
    build: Callable[[RoundContext], BuiltRound],
    baseline: _Baseline,
    previous_dirs: tuple[Path, ...] = (),
) -> tuple[nn.Module, RoundRow]:
    times: dict[str, float] = {}
    t = time.perf_counter()
    ckpt.mkdir(parents=True, exist_ok=True)
    ctx = RoundContext(
        k,
        train_es.texts(),
        policy,
        start,
        tokenizer,
        judge_source.for_policy(policy, tokenizer),
        judge_source,
        cfg.resolved_builder_settings(),
        cfg,
        ident,
        store,
        train_es,
        ckpt,
        previous_dirs=previous_dirs,
        origins=[(start, "start", ident.inputs["start"]), (policy, f"m{k}", ident.inputs["previous"])],
    )
    built = build(ctx)
    times["sample_judge_build"] = time.perf_counter() - t
    times.update(ctx.seconds)  # its parts: sample, judge, train_temporary
    n_examples = (len(built.pairs) or len(built.responses)) + len(built.aux_prompts)
    if n_examples == 0:
        raise InputError(
            f"round {k}: the builder {cfg.builder} produced no training data (every prompt tied or failed)"
        )

    t = time.perf_counter()
    data = TrainingData(pairs=built.pairs, prompts=built.prompts, responses=built.responses)
    (ckpt / "data.json").write_text(
        json.dumps(
            {**_data_payload(data), "aux_prompts": list(built.aux_prompts), "aux_responses": list(built.aux_responses)}
        ),
        encoding="utf-8",
    )
    init = start if built.train_from == "start" else policy
    aux = (built.aux_prompts, built.aux_responses) if built.aux_prompts else None
    new, stats = train_stored(ckpt, ident, init, tokenizer, data, cfg, cfg.round_train(k), aux)
    times["train"] = time.perf_counter() - t

    t = time.perf_counter()
    gen = ctx.generator("eval")
    out = stored_samples(store, eval_es, gen, new, tokenizer, 1, cfg, cfg.train.seed + 10_000)
    texts = [o[0] for o in out]
    gap = acc = lc = None
    if isinstance(evaluator, ResponseJudge):
        scores = judge_scores(
            store,
            evaluator,
            [ResponseToJudge(p, o, gen) for p, o in zip(eval_es.texts(), texts, strict=True)],
            cfg.concurrency,
        )
        win_rate = _paired_win_rate(scores, baseline.scores)
        ok_scores = [s for s in scores if s is not None]
        n_failed_eval = len(scores) - len(ok_scores)
    else:  # a pairwise evaluator: the round's policy (second slot) against the start (first slot)
        pairs = [
            PairToJudge(p, b, baseline.generator, o, gen)
            for p, b, o in zip(eval_es.texts(), baseline.texts, texts, strict=True)
        ]
        report = annotate(store, evaluator, pairs, settings=EngineSettings(concurrency=cfg.concurrency), progress=False)
        win_rate, lc, n_failed_eval = win_rate_columns(report.judgments, lc=len(pairs) >= 10)
        ok_scores = []
    if built.pairs and isinstance(evaluator, ResponseJudge):
        pair_items = [ResponseToJudge(p.prompt, p.chosen, ctx.generator("chosen")) for p in built.pairs] + [
            ResponseToJudge(p.prompt, p.rejected, ctx.generator("rejected")) for p in built.pairs
        ]
        ps = judge_scores(store, evaluator, pair_items, cfg.concurrency)
        n = len(built.pairs)
        diffs = [c - r for c, r in zip(ps[:n], ps[n:], strict=True) if c is not None and r is not None]
        gap = _mean(diffs)
        acc = _mean([1.0 if d > 0 else 0.0 for d in diffs])
    beta = getattr(cfg.method_settings(), "beta", None)
    weight = (
        mean_sigmoid_weight(new, init, tokenizer, built.pairs, float(beta))
        if built.pairs and beta is not None and get_method(cfg.method).trainer == "pasture.train.dpo:fit_dpo"
        else None
    )
    row = RoundRow(
        method=f"{cfg.builder} r{k}",
        round=k,
        builder=cfg.builder,
        win_rate_vs_start=win_rate,
        eval_score=sum(ok_scores) / len(ok_scores) if ok_scores else math.nan,
        chosen_rejected_gap=gap,
        judge_gap=_mean([c - r for c, r in zip(built.chosen_scores, built.rejected_scores, strict=True)]),
        pair_accuracy=acc,
        sigmoid_weight=weight,
        kl_to_reference=kl_to_start(new, start, tokenizer, eval_es.texts(), texts),
        avg_length=sum(len(x) for x in texts) / len(texts),
        n_train_examples=n_examples,
        n_skipped=built.n_skipped,
        n_failed_judgments=ctx.n_failed_judgments,
        n_failed_eval=n_failed_eval,
        train_tokens=stats.train_tokens,
        wall_s=stats.wall_s,
        stage_seconds=times,
        run_identity=ident.digest,
        lc_vs_start=lc,
    )
    times["evaluate"] = time.perf_counter() - t
    return new, row


def describe_config(cfg: LoopConfig) -> dict[str, Any]:
    """The configuration as plain data (for ``result.json`` and the CLI's summary)."""
    return {
        "builder": cfg.builder,
        "builder_settings": settings_dict(cfg.resolved_builder_settings()),
        "method": cfg.method,
        "settings": settings_dict(cfg.method_settings()),
        "train": settings_dict(cfg.train),
        "rounds": cfg.rounds,
    }
