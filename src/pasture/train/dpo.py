"""Direct preference optimisation and its common variants, and SimPO: learning from pairs with no reward model.

With policy π, frozen reference π_ref, and summed response log-probabilities, let
``h = (log π(y_c) − log π(y_r)) − (log π_ref(y_c) − log π_ref(y_r))`` (the implicit reward margin). Losses:

* ``sigmoid`` (DPO, Rafailov et al. 2023): −log σ(βh)
* ``cdpo`` (label smoothing ε, "conservative DPO"): −(1−ε) log σ(βh) − ε log σ(−βh)
* ``robust`` (Chowdhury et al. 2024, unbiased under label-flip rate ε): [(1−ε)(−log σ(βh)) − ε(−log σ(−βh))] / (1 − 2ε)
* ``ipo`` (Azar et al. 2023): (h − 1/(2β))²

At initialisation π = π_ref, so h = 0 and the three sigmoid-family losses equal log 2 exactly.

SimPO (Meng et al. 2024) is reference-free and length-normalised: −log σ(β·ā(y_c) − β·ā(y_r) − γ), where ā is the
mean log-probability per response token and γ a target margin. ``sft_weight`` > 0 adds the chosen responses'
NLL (CPO's regulariser; 0 is plain SimPO).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.core import (
    Loop,
    LoraSettings,
    OptimSettings,
    PreferencePair,
    Reference,
    TrainingData,
    TrainStats,
    apply_lora,
    cycle_batches,
    set_seed,
    timed,
    token_logprobs,
)
from pasture.train.registry import (
    CDPOSettings,
    DPOLoss,
    DPOSettings,
    IPOSettings,
    NoisyLabelDPOSettings,
    RobustDPOSettings,
    SimPOSettings,
    TrainSettings,
    method_for_settings,
)
from pasture.train.reward import pair_batch

__all__ = [  # the settings classes live in the torch-free registry; importable from here too
    "CDPOSettings",
    "DPOLoss",
    "DPOSettings",
    "IPOSettings",
    "RobustDPOSettings",
    "SimPOSettings",
    "dpo_loss",
    "fit_dpo",
    "fit_simpo",
    "simpo_loss",
    "train_dpo",
    "train_simpo",
]


def dpo_loss(
    policy_chosen: Tensor, policy_rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor, settings: DPOSettings
) -> Tensor:
    """Per-pair DPO-family loss from summed log-probabilities (definitions in the module docstring)."""
    h = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
    b = settings.beta
    eps = settings.epsilon if isinstance(settings, NoisyLabelDPOSettings) else 0.0
    if not 0 <= eps < 0.5:
        raise InputError(f"{type(settings).__name__} needs 0 <= epsilon < 0.5, got {eps}")
    if settings.LOSS == "sigmoid":
        return -F.logsigmoid(b * h)
    if settings.LOSS == "cdpo":
        return -(1 - eps) * F.logsigmoid(b * h) - eps * F.logsigmoid(-b * h)
    if settings.LOSS == "robust":
        return ((1 - eps) * -F.logsigmoid(b * h) - eps * -F.logsigmoid(-b * h)) / (1 - 2 * eps)
    if settings.LOSS == "ipo":
        return (h - 1 / (2 * b)) ** 2
    raise InputError(f"unknown DPO loss {settings.LOSS!r}; use sigmoid, cdpo, robust or ipo")


def simpo_loss(
    policy_chosen: Tensor, policy_rejected: Tensor, len_chosen: Tensor, len_rejected: Tensor, settings: SimPOSettings
) -> Tensor:
    """Per-pair SimPO loss from summed log-probabilities and response lengths in tokens."""
    margin = settings.beta * (policy_chosen / len_chosen - policy_rejected / len_rejected) - settings.gamma
    return -F.logsigmoid(margin)


def _check_pairs(pairs: Sequence[PreferencePair]) -> None:
    if not pairs:
        raise InputError("no preference pairs to train on")


@torch.no_grad()
def _reference_logps(
    reference: Reference, tokenizer: PreTrainedTokenizerBase, pairs: Sequence[PreferencePair], device: Any, **enc: int
) -> tuple[Tensor, Tensor]:
    chosen, rejected = [], []
    for start in range(0, len(pairs), 64):
        chunk = pairs[start : start + 64]
        lp = reference.token_logprobs(pair_batch(tokenizer, chunk, **enc).to(device)).sum(dim=1).cpu()
        chosen.append(lp[: len(chunk)])
        rejected.append(lp[len(chunk) :])
    return torch.cat(chosen), torch.cat(rejected)


def train_dpo(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PreferencePair],
    *,
    settings: DPOSettings | None = None,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    max_prompt_tokens: int = 256,
    max_response_tokens: int = 256,
    accelerator: Any = None,
    reference: nn.Module | None = None,
) -> tuple[nn.Module, TrainStats]:
    """DPO (or IPO/cDPO/robust DPO, by the settings class) from ``model``; the frozen reference is ``reference``
    when given, else the starting ``model`` itself.

    Reference log-probabilities are computed once before training. ``stats.metrics``: ``initial_loss`` (the
    first batch's loss before any update, as measured), ``final_reward_accuracy`` (fraction of the last
    batch's pairs with a positive implicit margin).
    """
    _check_pairs(pairs)
    settings = settings or DPOSettings()
    optim = optim or OptimSettings(lr=1e-5)
    set_seed(seed)
    stats = TrainStats(method=method_for_settings(settings))
    enc = {"max_prompt_tokens": max_prompt_tokens, "max_response_tokens": max_response_tokens}
    model = apply_lora(model, lora)  # type: ignore[arg-type]
    with timed(stats):
        loop = Loop(model, optim, stats, accelerator=accelerator)
        ref = Reference(loop.model, use_adapter_off=lora is not None, frozen=reference)
        if reference is not None:
            reference.to(loop.device)
        ref_c, ref_r = _reference_logps(ref, tokenizer, pairs, loop.device, **enc)
        del ref  # precomputed: a frozen copy need not stay in memory for the whole run
        loop.model.train()
        accuracy = float("nan")
        for idx in map(loop.shard, cycle_batches(len(pairs), optim.batch_size, optim.steps, seed)):
            chunk = [pairs[i] for i in idx]
            batch = pair_batch(tokenizer, chunk, **enc).to(loop.device)
            logps = token_logprobs(loop.model, batch).sum(dim=1)
            k = len(chunk)
            rc, rr = ref_c[idx].to(loop.device), ref_r[idx].to(loop.device)
            loss = dpo_loss(logps[:k], logps[k:], rc, rr, settings).mean()
            accuracy = float(((logps[:k] - rc) > (logps[k:] - rr)).float().mean().item())
            loop.step(loss, n_tokens=batch.n_tokens)
    stats.metrics["initial_loss"] = stats.history[0]
    stats.metrics["final_reward_accuracy"] = accuracy
    return loop.accelerator.unwrap_model(loop.model), stats


def fit_dpo(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: DPOSettings,
    train: TrainSettings,
) -> tuple[nn.Module, TrainStats]:
    """The registry's trainer for dpo, ipo, cdpo and robust_dpo (the settings class picks the loss)."""
    return train_dpo(
        model, tokenizer, data.pairs, settings=settings, optim=train.optim(), lora=train.lora(), seed=train.seed
    )


def fit_simpo(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: SimPOSettings,
    train: TrainSettings,
) -> tuple[nn.Module, TrainStats]:
    """The registry's trainer for simpo."""
    return train_simpo(
        model, tokenizer, data.pairs, settings=settings, optim=train.optim(), lora=train.lora(), seed=train.seed
    )


def train_simpo(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PreferencePair],
    *,
    settings: SimPOSettings | None = None,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    max_prompt_tokens: int = 256,
    max_response_tokens: int = 256,
    accelerator: Any = None,
) -> tuple[nn.Module, TrainStats]:
    """SimPO: reference-free, length-normalised preference optimisation with margin γ."""
    _check_pairs(pairs)
    settings = settings or SimPOSettings()
    optim = optim or OptimSettings(lr=1e-5)
    set_seed(seed)
    stats = TrainStats(method="simpo")
    enc = {"max_prompt_tokens": max_prompt_tokens, "max_response_tokens": max_response_tokens}
    model = apply_lora(model, lora)  # type: ignore[arg-type]
    with timed(stats):
        loop = Loop(model, optim, stats, accelerator=accelerator)
        loop.model.train()
        for idx in map(loop.shard, cycle_batches(len(pairs), optim.batch_size, optim.steps, seed)):
            chunk = [pairs[i] for i in idx]
            batch = pair_batch(tokenizer, chunk, **enc).to(loop.device)
            tok_lp = token_logprobs(loop.model, batch)
            logps = tok_lp.sum(dim=1)
            lengths = batch.response_mask.sum(dim=1).clamp(min=1).to(logps.dtype)
            k = len(chunk)
            loss = simpo_loss(logps[:k], logps[k:], lengths[:k], lengths[k:], settings).mean()
            if settings.sft_weight > 0:
                loss = loss + settings.sft_weight * (-(logps[:k] / lengths[:k]).mean())
            loop.step(loss, n_tokens=batch.n_tokens)
    stats.metrics["initial_loss"] = stats.history[0]
    return loop.accelerator.unwrap_model(loop.model), stats
