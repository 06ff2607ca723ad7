"""RLOO: REINFORCE with a leave-one-out baseline (Ahmadian et al. 2024), k samples per prompt.

For each prompt, sample k responses y_1..y_k from the current policy. Each gets the sequence-level reward
``R_i = score(y_i) − β · Σ_t (log π(y_i,t) − log π_ref(y_i,t))``; its advantage is R_i minus the mean reward of the
other k − 1 samples of the same prompt, so no value model is needed. The loss is −mean_i(A_i · log π(y_i)), one
gradient step per rollout (on-policy). Log-probabilities of π and π_ref are taken at the sampling temperature T
(log softmax(logits / T)), the distribution the samples came from. ``stats.metrics``: ``mean_score`` and
``mean_kl`` of the last rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.core import (
    Loop,
    LoraSettings,
    OptimSettings,
    Reference,
    TrainingData,
    TrainStats,
    apply_lora,
    cycle_batches,
    generate,
    set_seed,
    timed,
    token_logprobs,
)
from pasture.train.ppo import rollout_batch
from pasture.train.registry import RLOOSettings, TrainSettings
from pasture.train.reward import RewardModel
from pasture.train.reward_terms import RewardTerm, extra_reward

__all__ = ["RLOOSettings", "fit", "leave_one_out_advantages", "train_rloo"]


def leave_one_out_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """[P, k] rewards → [P, k] advantages R_i − mean_{j≠i} R_j."""
    k = rewards.shape[1]
    if k < 2:
        raise InputError("RLOO needs k >= 2 samples per prompt")
    baseline = (rewards.sum(dim=1, keepdim=True) - rewards) / (k - 1)
    return rewards - baseline


def train_rloo(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    reward_model: RewardModel,
    *,
    settings: RLOOSettings | None = None,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    accelerator: Any = None,
    extra_rewards: Sequence[RewardTerm] = (),
) -> tuple[nn.Module, TrainStats]:
    """RLOO against ``reward_model``; ``optim.steps`` rollouts of ``optim.batch_size`` prompts × k samples.

    ``extra_rewards`` (e.g. AutoRule's rule reward, :func:`pasture.train.rules.rule_reward`) are added to the reward
    model's score before the KL penalty: R = RM(x, y) + Σ_j w_j R_j(x, y), GRPO's weighted sum with the reward model
    as a term of weight 1; each term's mean is logged as ``mean_<name>``."""
    if not prompts:
        raise InputError("RLOO needs prompts")
    settings = settings or RLOOSettings()
    optim = optim or OptimSettings(lr=1e-5, batch_size=16, steps=20)
    set_seed(seed)
    stats = TrainStats(method="rloo")
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    k = settings.k
    model = apply_lora(model, lora)  # type: ignore[arg-type]
    reward_model = reward_model.eval()
    for p in reward_model.parameters():
        p.requires_grad_(False)
    with timed(stats):
        loop = Loop(model, optim, stats, accelerator=accelerator)
        reference = Reference(loop.model, use_adapter_off=lora is not None)
        reward_model.to(loop.device)
        for it, idx in enumerate(map(loop.shard, cycle_batches(len(prompts), optim.batch_size, optim.steps, seed))):
            chunk = [prompts[i] for i in idx]
            gens = [
                g
                for per in generate(
                    loop.model,
                    tokenizer,
                    chunk,
                    n=k,
                    max_new_tokens=settings.max_new_tokens,
                    temperature=settings.temperature,
                    seed=seed * 100003 + it,
                )
                for g in per
            ]
            stats.generated_tokens += sum(len(g.response_ids) for g in gens)
            batch = rollout_batch(gens, pad).to(loop.device)
            loop.model.train()
            logp = token_logprobs(loop.model, batch, temperature=settings.temperature).sum(dim=1)
            with torch.no_grad():
                scores = torch.tensor(
                    reward_model.score(tokenizer, [g.prompt for g in gens], [g.text for g in gens]), device=loop.device
                )
                scores = scores + extra_reward(
                    extra_rewards, [g.prompt for g in gens], [g.text for g in gens], stats
                ).to(loop.device)
                ref_logp = reference.token_logprobs(batch, temperature=settings.temperature).sum(dim=1)
                kl = logp.detach() - ref_logp
                rewards = (scores - settings.kl_coef * kl).view(len(chunk), k)
                adv = leave_one_out_advantages(rewards).view(-1)
                if settings.normalize_advantages and adv.numel() > 1:
                    adv = adv / adv.std().clamp(min=1e-8)
            loop.step(-(adv * logp).mean(), n_tokens=batch.n_tokens)
            stats.metrics["mean_score"] = float(scores.mean().item())
            stats.metrics["mean_kl"] = float(kl.mean().item())
    return loop.accelerator.unwrap_model(loop.model), stats


def fit(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: RLOOSettings,
    train: TrainSettings,
) -> tuple[nn.Module, TrainStats]:
    """The registry's trainer for rloo: ``data.prompts`` against ``data.reward_model``."""
    return train_rloo(
        model,
        tokenizer,
        data.prompts,
        data.need_reward_model("rloo"),
        settings=settings,
        optim=train.optim(),
        lora=train.lora(),
        seed=train.seed,
    )
