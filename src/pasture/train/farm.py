"""The farm loop: generate with the policy → label pairs with a judge + simulated noise → train → generate →
evaluate with the same judge, as one recipe of the iterative driver (:mod:`pasture.train.loop`): one round of
builder ``farm`` (:mod:`pasture.train.builders.farm`) with the judge as both the round's (pairwise) judge and the
evaluator. Every stage is stored and a rerun resumes where the last one stopped.

Stages, and the key each is stored under (the driver's: each stage keyed by what produced it and nothing else), on
``workdir`` plus the pasture SQLite ``store``:

1. **sample**: two samples per training prompt from the starting policy → the store (eval set ``<name>-train``,
   generators ``<name>/start-<S>/a`` and ``/b``; S = digest of the start policy's weights and tokenizer, the
   prompts, seed, temperature, token budget, label). They do not depend on the method, its settings, the judge or
   flip_p, so a run that changes only those reuses them. Skipped when the store already holds them.
2. **label**: the judge compares each (a, b) pair through the annotation engine (judgments stored by the judge's
   fingerprint and the texts, never paid twice); each verdict is then flipped with probability ``flip_p`` by
   :func:`pasture.simulate.noise.flip_labels` keyed by the judgment key (AlpacaFarm's p = 0.25). Ties and failed
   judgments give no pair and are counted (``labels.json`` in the round's directory).
3. **train**: the pairwise method (DPO family or SimPO, through the registry) from the starting policy →
   ``workdir/policies/r0-<R>`` (R = the round's identity: method, its settings, the shared settings, the start,
   the training prompts, the judge, flip_p and the sampling settings; ``run.json`` records it, ``stats.json``
   marks it complete).
4. **generate**: one sample per evaluation prompt from the starting (generator ``<name>/start-<D>/eval``) and the
   trained policy (``<name>/r0-<R>/eval``) → the store (eval set ``<name>-eval``).
5. **evaluate**: the same judge compares trained (second slot) against start (first slot) through the engine; win
   rate and LC as everywhere in pasture (docs/metrics.md), and the KL estimate of the trained policy to the start on
   those samples. Result in ``workdir/policies/r0-<R>/result.json``, and as the latest run in
   ``workdir/result.json`` and ``workdir/<method>/row.json`` (so ``pasture methods report workdir`` shows it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.judges.base import Judge
from pasture.train.builders import FarmSettings
from pasture.train.compare import MethodRow
from pasture.train.core import TrainStats, load_stats
from pasture.train.loop import FixedJudge, LoopConfig, run_loop
from pasture.train.registry import (
    MethodSettings,
    TrainSettings,
    get_method,
    pairwise_methods,
)


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

    def loop_config(self) -> LoopConfig:
        """The farm loop as the driver's recipe: one round of builder ``farm`` with the same method, settings and
        sampling."""
        return LoopConfig(
            builder="farm",
            builder_settings=FarmSettings(flip_p=self.flip_p),
            method=self.method,
            settings=self.method_settings(),
            train=self.train,
            rounds=1,
            name=self.name,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            concurrency=self.concurrency,
        )


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
    """Run (or resume) the farm loop through :func:`pasture.train.loop.run_loop`; see the module docstring.

    Every stored stage is keyed by what produced it: a rerun with the same configuration reuses everything; a
    changed setting never reuses stale samples, policies or judgments (a changed β reuses the start's samples and
    their labels, which do not depend on it, and trains anew).
    """
    cfg = config or FarmConfig()
    loop_cfg = cfg.loop_config()
    work = Path(workdir)
    result = run_loop(
        model,
        tokenizer,
        train_prompts,
        eval_prompts,
        FixedJudge(judge),
        judge,
        store_path,
        work,
        loop_cfg,
        rounds_dir="policies",
        table_rows=False,
    )
    rnd, ckpt = result.rounds[0], result.final_checkpoint
    labels = json.loads((ckpt / "labels.json").read_text(encoding="utf-8"))
    stats = load_stats(ckpt)
    row = MethodRow(
        method=cfg.method,
        win_rate_vs_start=rnd.win_rate_vs_start,
        lc_vs_start=rnd.lc_vs_start,
        win_rate_vs_reference=None,
        lc_vs_reference=None,
        n_failed=rnd.n_failed_eval,
        reward_score=None,
        kl_to_reference=rnd.kl_to_reference,
        avg_length=rnd.avg_length,
        train_tokens=stats.train_tokens,
        generated_tokens=stats.generated_tokens,
        wall_s=stats.wall_s,
    )
    farm = FarmResult(
        labels["n_pairs"],
        labels["n_ties"],
        labels["n_failed_labels"],
        labels["label_flips"],
        stats,
        row,
        rnd.stage_seconds,
        rnd.run_identity,
        f"{loop_cfg.name}/r0-{rnd.run_identity[:12]}/eval",
    )
    (work / cfg.method).mkdir(exist_ok=True)
    row_record = {**asdict(row), "run_identity": rnd.run_identity}
    (work / cfg.method / "row.json").write_text(json.dumps(row_record, indent=2), encoding="utf-8")
    text = json.dumps(asdict(farm), indent=2, default=str)
    (ckpt / "result.json").write_text(text, encoding="utf-8")
    (work / "result.json").write_text(text, encoding="utf-8")
    return farm
