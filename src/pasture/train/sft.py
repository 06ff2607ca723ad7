"""Supervised fine-tuning: maximise the log-likelihood of demonstration responses (prompt tokens masked)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.core import (
    Loop,
    LoraSettings,
    OptimSettings,
    TrainingData,
    TrainStats,
    apply_lora,
    cycle_batches,
    encode_sequences,
    set_seed,
    timed,
    token_logprobs,
)
from pasture.train.registry import SFTSettings, TrainSettings


def sft_loss(model: nn.Module, batch: Any) -> Any:
    """Mean negative log-likelihood per response token over the batch."""
    logp = token_logprobs(model, batch)
    return -logp.sum() / batch.response_mask[:, 1:].sum().clamp(min=1)


def train_sft(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    max_prompt_tokens: int = 256,
    max_response_tokens: int = 256,
    method: str = "sft",
    accelerator: Any = None,
) -> tuple[nn.Module, TrainStats]:
    """Fine-tune ``model`` on (prompt, response) demonstrations for ``optim.steps`` steps.

    Returns the trained model (LoRA-wrapped when ``lora`` is given) and its :class:`TrainStats`
    (``metrics['final_nll']``: mean NLL per response token on the last batch).
    """
    if len(prompts) != len(responses):
        raise InputError(f"{len(prompts)} prompts but {len(responses)} responses")
    optim = optim or OptimSettings()
    set_seed(seed)
    stats = TrainStats(method=method)
    model = apply_lora(model, lora)  # type: ignore[arg-type]
    with timed(stats):
        loop = Loop(model, optim, stats, accelerator=accelerator)
        loop.model.train()
        for idx in map(loop.shard, cycle_batches(len(prompts), optim.batch_size, optim.steps, seed)):
            batch = encode_sequences(
                tokenizer,
                [prompts[i] for i in idx],
                [responses[i] for i in idx],
                max_prompt_tokens=max_prompt_tokens,
                max_response_tokens=max_response_tokens,
            ).to(loop.device)
            loop.step(sft_loss(loop.model, batch), n_tokens=batch.n_tokens)
    stats.metrics["final_nll"] = stats.history[-1] if stats.history else float("nan")
    return loop.accelerator.unwrap_model(loop.model), stats


def fit(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: SFTSettings,
    train: TrainSettings,
) -> tuple[nn.Module, TrainStats]:
    """The registry's trainer for sft (demonstrations: ``data.prompts`` with ``data.responses``)."""
    return train_sft(
        model, tokenizer, data.prompts, data.responses, optim=train.optim(), lora=train.lora(), seed=train.seed
    )
