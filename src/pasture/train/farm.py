"""The farm loop: generate with the policy → label pairs with a judge + simulated noise → train → generate →
evaluate with the same judge. Every stage is stored and a rerun resumes where the last one stopped.

Stages and where they are stored (``workdir`` plus the pasture SQLite ``store``). Every name carries a digest of
the settings that produced it (:class:`FarmKeys`), so a rerun with other settings on the same store and workdir
never picks up stale samples or policies, and a rerun with the same settings redoes nothing:

1. **sample**: two samples per training prompt from the starting policy → the store (eval set
   ``farm-train``, generators ``<name>/start-<S>/a`` and ``/b``; S = digest of the start policy's weights and
   tokenizer, seed, temperature, token budget). Skipped when the store already holds them.
2. **label**: the judge compares each (a, b) pair through the annotation engine (judgments stored, never paid
   twice); each verdict is then flipped with probability ``flip_p`` by :func:`pasture.simulate.noise.flip_labels`
   keyed by the judgment key (AlpacaFarm's p = 0.25). Ties and failed judgments give no pair and are counted.
3. **train**: the pairwise method (DPO family or SimPO, through the registry) from the starting policy →
   ``workdir/policies/<method>-<R>`` (R = the run identity: method, its settings, the shared settings, S, the
   training prompts, the judge and flip_p; ``run.json`` records it, ``stats.json`` marks it complete).
4. **generate**: one sample per evaluation prompt from the starting (generator ``<name>/start-<S>``) and the
   trained policy (``<name>/<method>-<R>``) → the store (eval set ``farm-eval``).
5. **evaluate**: the same judge compares trained (model slot) against start (reference slot) through the
   engine; win rate and LC as everywhere in pasture (docs/metrics.md), and the KL estimate of the trained
   policy to the start on those samples. Result in ``workdir/policies/<method>-<R>/result.json``, and as the
   latest run in ``workdir/result.json`` and ``workdir/<method>/row.json`` (so ``pasture methods report
   workdir`` shows it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from pasture.annotate.engine import EngineSettings, annotate
from pasture.annotate.pairs import PairToJudge
from pasture.errors import InputError
from pasture.judges.base import Judge
from pasture.records import EvalSet, canonical_json
from pasture.simulate.noise import flip_labels
from pasture.store import Store
from pasture.train.compare import MethodRow, win_rate_columns
from pasture.train.core import (
    PreferencePair,
    TrainingData,
    TrainStats,
    checkpoint_done,
    encode_sequences,
    load_stats,
    model_digest,
    save_checkpoint,
    token_logprobs,
)
from pasture.train.registry import (
    MethodSettings,
    RunIdentity,
    TrainSettings,
    get_method,
    pairwise_methods,
    run_identity,
)
from pasture.train.run import check_stored, write_identity
from pasture.train.stored import prompt_set, stored_or_generate


@dataclass(frozen=True)
class FarmConfig:
    """Settings of one farm loop.

    ``settings``: the method's own settings object (None: its registry defaults); ``train``: the shared
    training settings (its seed also seeds sampling and label flips); ``name`` prefixes every generator stored.
    """

    method: str = "dpo"
    settings: MethodSettings | None = None
    train: TrainSettings = field(default_factory=TrainSettings)
    name: str = "farm"
    flip_p: float = 0.25
    max_new_tokens: int = 64
    temperature: float = 1.0
    concurrency: int = 1

    def method_settings(self) -> MethodSettings:
        spec = get_method(self.method)
        if not spec.pairwise:
            raise InputError(
                f"the farm loop trains pairwise methods ({', '.join(pairwise_methods())}), not {self.method!r}"
            )
        settings = self.settings if self.settings is not None else spec.settings()
        if type(settings) is not spec.settings:
            raise InputError(f"{self.method} takes {spec.settings.__name__}, got {type(settings).__name__}")
        return settings


@dataclass(frozen=True)
class FarmKeys:
    """Where each stage's results live, keyed by every setting that produced them.

    ``samples``: digest of the starting policy's weights and tokenizer, the seed, temperature and token budget
    (the start policy's samples depend on nothing else); ``run``: the training run's identity (method, its
    settings, the shared settings, and the samples, training prompts, judge and flip rate it learned from).
    """

    samples: str
    run: RunIdentity
    name: str

    @property
    def start_generator(self) -> str:
        return f"{self.name}/start-{self.samples[:12]}"

    @property
    def trained_generator(self) -> str:
        return f"{self.name}/{self.run.method}-{self.run.short}"

    def policy_dir(self, work: Path) -> Path:
        return work / "policies" / f"{self.run.method}-{self.run.short}"


def farm_keys(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train_set: EvalSet,
    judge: Judge,
    cfg: FarmConfig,
) -> FarmKeys:
    """The keys of one farm configuration (see :class:`FarmKeys`)."""
    sampling = {
        "model": model_digest(model, tokenizer),
        "seed": cfg.train.seed,
        "temperature": cfg.temperature,
        "max_new_tokens": cfg.max_new_tokens,
    }
    samples = hashlib.sha256(canonical_json(sampling).encode("utf-8")).hexdigest()
    inputs = {
        "start_samples": samples,
        "train_prompts": train_set.digest,
        "judge": judge.fingerprint.digest,
        "flip_p": cfg.flip_p,
    }
    return FarmKeys(samples, run_identity(cfg.method, cfg.method_settings(), cfg.train, inputs), cfg.name)


@dataclass(frozen=True)
class FarmResult:
    """What the loop produced: pair counts, the training stats, the evaluation row, the training run's identity
    digest and the generator name its evaluation outputs are stored under."""

    n_pairs: int
    n_ties: int
    n_failed_labels: int
    label_flips: int
    stats: TrainStats
    row: MethodRow
    stage_seconds: dict[str, float]
    run_identity: str
    generator: str


@torch.no_grad()
def _kl_on_texts(
    policy: nn.Module, start: nn.Module, tok: PreTrainedTokenizerBase, prompts: Sequence[str], outputs: Sequence[str]
) -> float:
    """KL(π‖π_start) estimate on the stored evaluation samples: mean Σ_t (log π − log π_start) over responses
    (re-tokenised from their text, which is what the store keeps)."""
    total = 0.0
    for i in range(0, len(prompts), 8):
        batch = encode_sequences(tok, prompts[i : i + 8], outputs[i : i + 8])
        total += float((token_logprobs(policy.eval(), batch) - token_logprobs(start.eval(), batch)).sum().item())
    return total / max(len(prompts), 1)


def run_farm(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train_prompts: Sequence[str],
    eval_prompts: Sequence[str],
    judge: Judge,
    store_path: str | Path,
    workdir: str | Path,
    config: FarmConfig | None = None,
) -> FarmResult:
    """Run (or resume) the farm loop; see the module docstring for the stages.

    Every stored stage is keyed by the settings that produced it (:class:`FarmKeys`): a rerun with the same
    configuration reuses everything; a changed setting never reuses stale samples, policies or judgments.
    """
    cfg = config or FarmConfig()
    settings = cfg.method_settings()
    seed = cfg.train.seed
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    train_es = prompt_set("farm-train", train_prompts)
    keys = farm_keys(model, tokenizer, train_es, judge, cfg)
    start_name = keys.start_generator
    with Store(store_path) as store:
        t = time.perf_counter()
        a = stored_or_generate(store, train_es, f"{start_name}/a", model, tokenizer, cfg, seed, 0)
        b = stored_or_generate(store, train_es, f"{start_name}/b", model, tokenizer, cfg, seed + 1, 1)
        times["sample"] = time.perf_counter() - t

        t = time.perf_counter()
        pairs_to_judge = [
            PairToJudge(p, x, f"{start_name}/a", y, f"{start_name}/b")
            for p, x, y in zip(train_es.texts(), a, b, strict=True)
            if x != y
        ]
        report = annotate(
            store, judge, pairs_to_judge, settings=EngineSettings(concurrency=cfg.concurrency), progress=False
        )
        ok = [j for j in report.judgments if j.status == "ok" and j.preference is not None]
        failed = len(pairs_to_judge) - len(ok)
        decided = [j for j in ok if j.preference != 1.5]
        noisy = flip_labels(
            [float(cast(float, j.preference)) for j in decided],  # ok holds only judgments with a preference
            [j.key for j in decided],
            p=cfg.flip_p,
            seed=seed,
        )
        pairs = [
            PreferencePair(j.instruction, j.output_2, j.output_1)
            if lab > 1.5
            else PreferencePair(j.instruction, j.output_1, j.output_2)
            for j, lab in zip(decided, noisy, strict=True)
        ]
        flips = sum(1 for j, lab in zip(decided, noisy, strict=True) if lab != j.preference)
        times["label"] = time.perf_counter() - t
        if not pairs:
            raise InputError("the judge decided no pair (all ties or failures); nothing to train on")

        t = time.perf_counter()
        ckpt = keys.policy_dir(work)
        if check_stored(ckpt, keys.run, checkpoint_done(ckpt)):
            policy: nn.Module = AutoModelForCausalLM.from_pretrained(ckpt)
            stats = load_stats(ckpt)
        else:
            write_identity(ckpt, keys.run)
            trainer = get_method(cfg.method).trainer_function()
            policy, stats = trainer(copy.deepcopy(model), tokenizer, TrainingData(pairs=pairs), settings, cfg.train)
            save_checkpoint(ckpt, policy, tokenizer, stats)
            policy = AutoModelForCausalLM.from_pretrained(ckpt)
        times["train"] = time.perf_counter() - t

        t = time.perf_counter()
        eval_es = prompt_set("farm-eval", eval_prompts)
        start_out = stored_or_generate(store, eval_es, start_name, model, tokenizer, cfg, seed + 1000)
        method_name = keys.trained_generator
        new_out = stored_or_generate(store, eval_es, method_name, policy, tokenizer, cfg, seed + 1000)
        times["generate"] = time.perf_counter() - t

        t = time.perf_counter()
        eval_pairs = [
            PairToJudge(p, s, start_name, n, method_name)
            for p, s, n in zip(eval_es.texts(), start_out, new_out, strict=True)
        ]
        ev = annotate(store, judge, eval_pairs, settings=EngineSettings(concurrency=cfg.concurrency), progress=False)
        wr, lc, n_failed = win_rate_columns(ev.judgments, lc=len(eval_pairs) >= 10)
        times["evaluate"] = time.perf_counter() - t

    kl = _kl_on_texts(policy, model, tokenizer, eval_es.texts(), new_out)
    row = MethodRow(
        method=cfg.method,
        win_rate_vs_start=wr,
        lc_vs_start=lc,
        win_rate_vs_reference=None,
        lc_vs_reference=None,
        n_failed=n_failed,
        reward_score=None,
        kl_to_reference=kl,
        avg_length=sum(len(x) for x in new_out) / len(new_out),
        train_tokens=stats.train_tokens,
        generated_tokens=stats.generated_tokens,
        wall_s=stats.wall_s,
    )
    result = FarmResult(
        len(pairs), len(ok) - len(decided), failed, flips, stats, row, times, keys.run.digest, method_name
    )
    (work / cfg.method).mkdir(exist_ok=True)
    row_record = {**asdict(row), "run_identity": keys.run.digest}
    (work / cfg.method / "row.json").write_text(json.dumps(row_record, indent=2), encoding="utf-8")
    text = json.dumps(asdict(result), indent=2, default=str)
    (ckpt / "result.json").write_text(text, encoding="utf-8")
    (work / "result.json").write_text(text, encoding="utf-8")
    return result
