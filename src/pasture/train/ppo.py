"""PPO with a KL penalty to the reference policy, as AlpacaFarm ran it (TRL 1.16 no longer ships a PPO trainer).

Each iteration:

1. **Rollout**: sample one response per prompt from the current policy; score it with the reward model.
2. **Shaped rewards** per response token t: ``r_t = −β (log π_old(a_t) − log π_ref(a_t))``, plus the reward-model
   score on the last response token (β = ``kl_coef``). ``missing_eos_penalty`` (optional) is subtracted from
   the score of responses that ran out of tokens before EOS.
3. **Advantages** by GAE(γ, λ) from a separate value model (initialised from the reward model, as in AlpacaFarm),
   whitened over the rollout's response tokens (mean 0, std 1). Returns = advantages (before whitening) + values.
4. **Updates**: ``epochs`` passes over minibatches; policy loss = mean over response tokens of
   max(−A·ρ, −A·clip(ρ, 1 ± ``clip_range``)) with ρ = π/π_old; value loss = ½ mean max((V − R)², (V_clip − R)²)
   with V_clip = V_old + clip(V − V_old, ± ``value_clip``).

Every log-probability (π_old, π, π_ref) is taken at the sampling temperature T: log softmax(logits / T), the
distribution the rollout was drawn from (TRL does the same).

Reported per run (``stats.metrics``): ``mean_score`` and ``mean_kl`` (summed per response, log π_old − log π_ref)
of the last rollout, ``clip_fraction`` of its last update, and ``initial_ratio_deviation``: max |ρ − 1| over the
first minibatch before any update (0 up to rounding when rollout and update score tokens alike).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.core import (
    Generation,
    Loop,
    LoraSettings,
    OptimSettings,
    Reference,
    SequenceBatch,
    TrainingData,
    TrainStats,
    apply_lora,
    batch_from_ids,
    cycle_batches,
    generate,
    minibatches,
    set_seed,
    timed,
    token_logprobs,
)
from pasture.train.registry import PPOSettings, TrainSettings
from pasture.train.reward import RewardModel
from pasture.train.reward_terms import RewardTerm, extra_reward

__all__ = ["PPOSettings", "Rollout", "fit", "gae", "masked_whiten", "rollout", "train_ppo"]


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(x: Tensor, mask: Tensor, *, shift_mean: bool = True) -> Tensor:
    """(x − mean) / std over the masked entries (mean kept when ``shift_mean`` is False)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask


def gae(rewards: Tensor, values: Tensor, mask: Tensor, *, gamma: float, lam: float) -> Tensor:
    """Generalised advantage estimates over contiguous masked spans (right padding), shape like ``rewards``."""
    adv = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    next_value = torch.zeros_like(last)
    for t in range(rewards.shape[1] - 1, -1, -1):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * m
        adv[:, t] = last
        next_value = values[:, t] * m
    return adv


def last_response_index(mask: Tensor) -> Tensor:
    """Index of the last 1 in each row of a (right-padded, contiguous) mask."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return (positions * mask).max(dim=1).values.long()


def rollout_batch(gens: Sequence[Generation], pad_id: int) -> SequenceBatch:
    return batch_from_ids([g.prompt_ids for g in gens], [g.response_ids for g in gens], pad_id)


@dataclass
class Rollout:
    """Samples of the current policy with their log-probabilities under the sampling distribution.

    ``logp`` and ``ref_logp`` are per-token log-probabilities [B, T-1] (zero outside the response) of the policy
    and the reference at the *sampling temperature* T, i.e. log softmax(logits / T): PPO's ratio π/π_old and
    both KL terms must use the distribution the tokens were drawn from, or at T ≠ 1 the ratio, the gradient
    and the KL are those of another policy.
    """

    generations: list[Generation]
    batch: SequenceBatch
    logp: Tensor
    ref_logp: Tensor


@torch.no_grad()
def rollout(
    policy: nn.Module,
    reference: Reference,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    device: Any = "cpu",
) -> Rollout:
    """``n`` samples per prompt at ``temperature``, scored by the policy and the reference at that temperature."""
    gens = [
        g
        for per in generate(
            policy, tokenizer, prompts, n=n, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed
        )
        for g in per
    ]
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    batch = rollout_batch(gens, pad).to(device)
    was_training = policy.training
    policy.eval()
    logp = token_logprobs(policy, batch, temperature=temperature)
    policy.train(was_training)
    return Rollout(gens, batch, logp, reference.token_logprobs(batch, temperature=temperature))


def train_ppo(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    reward_model: RewardModel,
    *,
    settings: PPOSettings | None = None,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    accelerator: Any = None,
    extra_rewards: Sequence[RewardTerm] = (),
) -> tuple[nn.Module, TrainStats]:
    """PPO against ``reward_model`` on ``prompts``; the starting ``model`` is also the KL reference.

    ``extra_rewards`` are added to the reward model's score as in :func:`pasture.train.rloo.train_rloo` (before the
    missing-EOS penalty and whitening)."""
    if not prompts:
        raise InputError("PPO needs prompts")
    settings = settings or PPOSettings()
    optim = optim or OptimSettings(lr=1e-5, batch_size=64, steps=20)
    set_seed(seed)
    stats = TrainStats(method="ppo")
    eos = tokenizer.eos_token_id
    model = apply_lora(model, lora)  # type: ignore[arg-type]
    reward_model = reward_model.eval()
    value_model = copy.deepcopy(reward_model).train()
    for p in reward_model.parameters():
        p.requires_grad_(False)
    with timed(stats):
        inner = OptimSettings(lr=optim.lr, weight_decay=optim.weight_decay, max_grad_norm=optim.max_grad_norm)
        loop = Loop(model, inner, stats, accelerator=accelerator)
        vstats = TrainStats(method="ppo_value")
        vloop = Loop(
            value_model,
            OptimSettings(lr=settings.value_lr or optim.lr, max_grad_norm=optim.max_grad_norm),
            vstats,
            accelerator=loop.accelerator,
        )
        reference = Reference(loop.model, use_adapter_off=lora is not None)
        reward_model.to(loop.device)
        rng = np.random.default_rng(seed)
        for it, idx in enumerate(map(loop.shard, cycle_batches(len(prompts), optim.batch_size, optim.steps, seed))):
            chunk = [prompts[i] for i in idx]
            ro = rollout(
                loop.model,
                reference,
                tokenizer,
                chunk,
                n=1,
                temperature=settings.temperature,
                max_new_tokens=settings.max_new_tokens,
                seed=seed * 100003 + it,
                device=loop.device,
            )
            gens, batch, old_logp, ref_logp = ro.generations, ro.batch, ro.logp, ro.ref_logp
            stats.generated_tokens += sum(len(g.response_ids) for g in gens)
            mask = batch.response_mask[:, 1:].float()
            with torch.no_grad():
                scores = torch.tensor(reward_model.score(tokenizer, chunk, [g.text for g in gens]), device=loop.device)
                scores = scores + extra_reward(extra_rewards, chunk, [g.text for g in gens], stats).to(loop.device)
                if settings.missing_eos_penalty is not None:
                    no_eos = torch.tensor([eos not in g.response_ids for g in gens], device=loop.device)
                    scores = scores - settings.missing_eos_penalty * no_eos.float()
                if settings.whiten_scores and len(scores) > 1:
                    scores = scores / scores.std().clamp(min=1e-8)
                old_values = vloop.model.values(batch.input_ids, batch.attention_mask)[:, :-1] * mask
                kl = (old_logp - ref_logp) * mask
                rewards = -settings.kl_coef * kl
                last = last_response_index(mask)
                rewards[torch.arange(len(gens)), last] += scores
                adv = gae(rewards, old_values, mask, gamma=settings.gamma, lam=settings.lam)
                returns = adv + old_values
                adv = masked_whiten(adv, mask)
            loop.model.train()
            clipped = torch.tensor(0.0)
            for _ in range(settings.epochs):
                for mb in minibatches(len(gens), settings.minibatch_size, rng):
                    sub = batch.select(mb)
                    m = mask[mb]
                    logp = token_logprobs(loop.model, sub, temperature=settings.temperature)
                    ratio = torch.exp(logp - old_logp[mb])
                    if "initial_ratio_deviation" not in stats.metrics:  # before any update: must be 0
                        dev = ((ratio - 1).abs() * m).max()
                        stats.metrics["initial_ratio_deviation"] = float(dev.detach().item())
                    a = adv[mb]
                    pg = torch.max(-a * ratio, -a * ratio.clamp(1 - settings.clip_range, 1 + settings.clip_range))
                    clipped = masked_mean(((ratio - 1).abs() > settings.clip_range).float(), m)
                    loop.step(masked_mean(pg, m), n_tokens=sub.n_tokens)
                    v = vloop.model.values(sub.input_ids, sub.attention_mask)[:, :-1]
                    v_old = old_values[mb]
                    v_clip = v_old + (v - v_old).clamp(-settings.value_clip, settings.value_clip)
                    vf = 0.5 * masked_mean(torch.max((v - returns[mb]) ** 2, (v_clip - returns[mb]) ** 2), m)
                    vloop.step(vf, n_tokens=sub.n_tokens)
            stats.metrics["mean_score"] = float(scores.mean().item())
            stats.metrics["mean_kl"] = float(kl.sum(dim=1).mean().item())
            stats.metrics["clip_fraction"] = float(clipped.item())
        stats.train_tokens += vstats.train_tokens
    return loop.accelerator.unwrap_model(loop.model), stats


def fit(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: PPOSettings,
    train: TrainSettings,
) -> tuple[nn.Module, TrainStats]:
    """The registry's trainer for ppo: ``data.prompts`` against ``data.reward_model``."""
    return train_ppo(
        model,
        tokenizer,
        data.prompts,
        data.need_reward_model("ppo"),
        settings=settings,
        optim=train.optim(),
        lora=train.lora(),
        seed=train.seed,
    )
