"""GRPO (Shao et al. 2024, DeepSeekMath §4.1): group-relative advantages, a clipped ratio and a k3 KL term.

Each iteration (one *rollout*):

1. **Sample** k responses per prompt from the current policy π_old at temperature T (the *group* of a prompt).
2. **Reward** each response with a weighted sum of reward functions, ``r = Σ_j w_j · R_j(x, y)`` (a reward model,
   a rule reward, an oracle...; :class:`RewardTerm`).
3. **Group-relative advantage** (outcome supervision): every token of response i gets
   ``A_i = (r_i − mean(r_group)) / (std(r_group) + eps)`` with the group's *sample* standard deviation (ddof 1) and
   eps = ``advantage_eps``. The paper writes "normalised by the group's standard deviation" without an eps; the eps
   keeps a group of equal rewards at A = 0 instead of 0/0 (:func:`group_advantages`). ``scale_rewards=False`` drops
   the division (the "Dr. GRPO" variant), leaving reward − group mean.
4. **Update**: ``epochs`` passes (the paper's μ) over minibatches of the rollout, minimising

       L = mean_i [ 1/|y_i| Σ_t ( −min(ρ_t A_i, clip(ρ_t, 1 − ε, 1 + ε) A_i) + β · k3_t ) ]

   with ρ_t = π(y_t)/π_old(y_t) and the k3 estimator of KL(π ‖ π_ref) per token,
   ``k3_t = π_ref/π − log(π_ref/π) − 1`` (non-negative, unbiased; the paper's eq. 4). The per-sequence token mean and
   then the mean over sequences is the paper's 1/G Σ_i 1/|o_i| Σ_t (:func:`grpo_loss`).

The KL is a term of the loss, not a reward penalty (unlike PPO and RLOO here), exactly as GRPO puts it. Every
log-probability (π_old, π, π_ref) is taken at the sampling temperature T (:func:`pasture.train.core.token_logprobs`),
the distribution the tokens were drawn from.

**Why not TRL's GRPOTrainer.** It owns its data loading (a ``datasets.Dataset``), its generation and its
accelerator loop, and takes reward functions by its own signature; pasture's trainers share one registry signature
(``fit(model, tokenizer, data, settings, train)``), one :class:`~pasture.train.core.Loop`, the same seeds and
``generate`` as RLOO and PPO, and a run identity computed from pasture's settings classes. Wrapping TRL would
duplicate every setting under a second name and hide the per-step proxy/true-quality trace that the reward-hacking
measurement needs; the algorithm itself is a few tensor lines (the pure functions below, pinned by hand
computations in tests/train/test_grpo.py).

**Per-step trace.** With ``trace`` given, every rollout appends a :class:`StepLog`: each reward term's mean, the
weighted total, the mean of ``monitor`` (the true quality, e.g. the synthetic oracle, never used for training),
the mean response length and the mean k3 KL. :mod:`pasture.train.hacking` turns a trace into the hacking index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.core import (
    Loop,
    LoraSettings,
    OptimSettings,
    Reference,
    ScoreFn,
    TrainingData,
    TrainStats,
    apply_lora,
    cycle_batches,
    minibatches,
    set_seed,
    timed,
    token_logprobs,
)
from pasture.train.ppo import rollout
from pasture.train.registry import GRPOSettings, TrainSettings
from pasture.train.reward_terms import RewardTerm, combined_rewards

__all__ = [
    "GRPOSettings",
    "RewardTerm",
    "StepLog",
    "clipped_surrogate",
    "combined_rewards",
    "fit",
    "group_advantages",
    "grpo_loss",
    "k3_kl",
    "train_grpo",
]


@dataclass(frozen=True)
class StepLog:
    """What one GRPO rollout looked like: mean of each reward term (unweighted), the weighted total, the true
    quality (mean of the monitor, None without one), mean response length in characters and mean k3 KL per token."""

    step: int
    rewards: dict[str, float]
    total: float
    true_quality: float | None
    mean_length: float
    kl: float


@dataclass
class Trace:
    """The per-rollout logs of one GRPO run (appended by :func:`train_grpo`)."""

    steps: list[StepLog] = field(default_factory=list)


def group_advantages(rewards: Tensor, *, eps: float = 1e-4, scale: bool = True) -> Tensor:
    """[P, k] rewards → [P, k] advantages (r − group mean) / (group sample std + eps); without ``scale``, r − mean.

    A group whose rewards are all equal gets advantage 0 (no signal), never a division by zero.
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise InputError(f"GRPO needs rewards shaped [prompts, k] with k >= 2, got {tuple(rewards.shape)}")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale:
        return centred
    return centred / (rewards.std(dim=1, keepdim=True, unbiased=True) + eps)


def clipped_surrogate(logp: Tensor, old_logp: Tensor, advantages: Tensor, clip: float) -> Tensor:
    """Per-token −min(ρA, clip(ρ, 1 ± clip)·A) with ρ = exp(logp − old_logp); ``advantages`` [B] broadcast over tokens."""
    ratio = torch.exp(logp - old_logp)
    a = advantages.unsqueeze(-1) if advantages.dim() == logp.dim() - 1 else advantages
    return -torch.min(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a)


def k3_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimator of KL(π ‖ π_ref): exp(ref − logp) − (ref − logp) − 1 (≥ 0, zero when equal)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


@dataclass(frozen=True)
class GRPOLoss:
    """The loss and its parts, each a mean over sequences of per-sequence token means."""

    loss: Tensor
    surrogate: Tensor
    kl: Tensor
    clip_fraction: Tensor


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip: float,
    beta: float,
) -> GRPOLoss:
    """GRPO's objective (module docstring, step 4) for [B, T] per-token log-probs, [B] advantages, [B, T] mask."""
    m = mask.to(logp.dtype)
    lengths = m.sum(dim=1).clamp(min=1)

    def seq_mean(x: Tensor) -> Tensor:
        return ((x * m).sum(dim=1) / lengths).mean()

    surrogate = clipped_surrogate(logp, old_logp, advantages, clip)
    kl = k3_kl(logp, ref_logp)
    ratio = torch.exp(logp.detach() - old_logp)
    clipped = ((ratio - 1).abs() > clip).to(logp.dtype)
    s, k = seq_mean(surrogate), seq_mean(kl)
    return GRPOLoss(loss=s + beta * k, surrogate=s.detach(), kl=k.detach(), clip_fraction=seq_mean(clipped))


def train_grpo(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    rewards: Sequence[RewardTerm],
    *,
    settings: GRPOSettings | None = None,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    monitor: ScoreFn | None = None,
    trace: Trace | None = None,
    accelerator: Any = None,
) -> tuple[nn.Module, TrainStats]:
    """GRPO on ``prompts`` against the weighted ``rewards``; ``optim.steps`` rollouts of ``optim.batch_size``
    prompts × k samples. ``monitor`` (true quality) is only logged into ``trace``, never trained on."""
    if not prompts:
        raise InputError("GRPO needs prompts")
    settings = settings or GRPOSettings()
    if settings.k < 2:
        raise InputError(f"GRPO needs k >= 2 samples per prompt (setting k), got {settings.k}")
    optim = optim or OptimSettings(lr=1e-6, batch_size=16, steps=20)
    set_seed(seed)
    stats = TrainStats(method="grpo")
    model = apply_lora(model, lora)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    with timed(stats):
        inner = OptimSettings(lr=optim.lr, weight_decay=optim.weight_decay, max_grad_norm=optim.max_grad_norm)
        loop = Loop(model, inner, stats, accelerator=accelerator)
        reference = Reference(loop.model, use_adapter_off=lora is not None)
        for it, idx in enumerate(map(loop.shard, cycle_batches(len(prompts), optim.batch_size, optim.steps, seed))):
            chunk = [prompts[i] for i in idx]
            ro = rollout(
                loop.model,
                reference,
                tokenizer,
                chunk,
                n=settings.k,
                temperature=settings.temperature,
                max_new_tokens=settings.max_new_tokens,
                seed=seed * 100003 + it,
                device=loop.device,
            )
            gens, batch = ro.generations, ro.batch
            stats.generated_tokens += sum(len(g.response_ids) for g in gens)
            texts = [g.text for g in gens]
            gen_prompts = [g.prompt for g in gens]
            total, means = combined_rewards(rewards, gen_prompts, texts)
            r = torch.tensor(total, dtype=torch.float32, device=loop.device).view(len(chunk), settings.k)
            adv = group_advantages(r, eps=settings.advantage_eps, scale=settings.scale_rewards).view(-1)
            mask = batch.response_mask[:, 1:].float()
            loop.model.train()
            last: GRPOLoss | None = None
            for _ in range(settings.epochs):
                for mb in minibatches(len(gens), settings.minibatch_size, rng):
                    sub = batch.select(mb)
                    logp = token_logprobs(loop.model, sub, temperature=settings.temperature)
                    last = grpo_loss(
                        logp,
                        ro.logp[mb],
                        ro.ref_logp[mb],
                        adv[torch.as_tensor(mb, device=adv.device)],
                        mask[mb],
                        clip=settings.clip_range,
                        beta=settings.kl_coef,
                    )
                    loop.step(last.loss, n_tokens=sub.n_tokens)
            with torch.no_grad():
                kl_now = float(((k3_kl(ro.logp, ro.ref_logp) * mask).sum(1) / mask.sum(1).clamp(min=1)).mean().item())
            stats.metrics["mean_reward"] = float(np.mean(total))
            stats.metrics["mean_kl"] = kl_now
            if last is not None:
                stats.metrics["clip_fraction"] = float(last.clip_fraction.item())
            for name, v in means.items():
                stats.metrics[f"mean_{name}"] = v
            if trace is not None:
                true_q = float(np.mean(list(monitor(gen_prompts, texts)))) if monitor is not None else None
                trace.steps.append(
                    StepLog(
                        step=it,
                        rewards=means,
                        total=float(np.mean(total)),
                        true_quality=true_q,
                        mean_length=float(np.mean([len(t) for t in texts])),
                        kl=kl_now,
                    )
                )
    return loop.accelerator.unwrap_model(loop.model), stats


def fit(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: GRPOSettings,
    train: TrainSettings,
) -> tuple[nn.Module, TrainStats]:
    """The registry's trainer for grpo: ``data.prompts`` against ``data.reward_model`` (one reward term; several
    weighted terms, e.g. the model plus a rule reward, through :func:`train_grpo`)."""
    from accelerate import PartialState

    rm = data.need_reward_model("grpo").eval().to(PartialState().device)
    for p in rm.parameters():
        p.requires_grad_(False)

    def score(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return rm.score(tokenizer, prompts, responses)

    return train_grpo(
        model,
        tokenizer,
        data.prompts,
        [RewardTerm("reward_model", score, 1.0)],
        settings=settings,
        optim=train.optim(),
        lora=train.lora(),
        seed=train.seed,
    )
