"""Reward models trained with the Bradley–Terry loss on preference pairs, and the value model PPO uses.

A :class:`RewardModel` is a transformer backbone (initialised from the policy, as in AlpacaFarm) with a linear
head. ``forward`` gives one score per sequence, read at its last non-padding token; ``values`` gives one value
per token (the PPO critic is a reward model read at every position).

Bradley–Terry: P(chosen ≻ rejected) = σ(r(chosen) − r(rejected)); the loss is −log σ(r_c − r_r) averaged over
pairs; *accuracy* is the fraction of pairs with r_c > r_r.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoModel, PreTrainedModel, PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.core import (
    Loop,
    LoraSettings,
    OptimSettings,
    PreferencePair,
    SequenceBatch,
    TrainingData,
    TrainStats,
    cycle_batches,
    encode_sequences,
    merged,
    set_seed,
    timed,
)
from pasture.train.registry import RewardModelSettings, TrainSettings


class RewardModel(nn.Module):
    """Backbone + scalar head. ``forward(input_ids, attention_mask)`` → scores [B] at the last real token."""

    def __init__(self, backbone: PreTrainedModel) -> None:
        super().__init__()
        self.backbone = backbone
        hidden = int(backbone.config.hidden_size)
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.head.weight, std=1.0 / (hidden + 1) ** 0.5)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_policy(cls, policy: nn.Module) -> RewardModel:
        """A reward model whose backbone is a copy of the policy's transformer (LoRA merged, LM head dropped)."""
        base = merged(copy.deepcopy(policy))
        # a transformers model's base_model is itself a PreTrainedModel (the transformer without the LM head)
        backbone = cast(PreTrainedModel, base.base_model) if hasattr(base, "base_model") else base
        return cls(backbone)

    def values(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Per-token outputs of the head, shape [B, T]."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden.float()).squeeze(-1)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        vals = self.values(input_ids, attention_mask)
        last = attention_mask.sum(dim=1).long() - 1  # right padding: last real token
        return vals.gather(1, last.clamp(min=0).unsqueeze(1)).squeeze(1)

    @torch.no_grad()
    def score(
        self,
        tokenizer: PreTrainedTokenizerBase,
        prompts: Sequence[str],
        responses: Sequence[str],
        *,
        batch_size: int = 128,
        max_prompt_tokens: int = 256,
        max_response_tokens: int = 256,
    ) -> list[float]:
        """Scores for (prompt, response) pairs; usable as a best-of-n or RL score function."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out: list[float] = []
        for start in range(0, len(prompts), batch_size):
            batch = encode_sequences(
                tokenizer,
                prompts[start : start + batch_size],
                responses[start : start + batch_size],
                max_prompt_tokens=max_prompt_tokens,
                max_response_tokens=max_response_tokens,
            ).to(device)
            out.extend(self(batch.input_ids, batch.attention_mask).tolist())
        self.train(was)
        return out

    def save_checkpoint_files(self, path: Path) -> None:
        """Backbone with ``save_pretrained`` under ``backbone/``, head weights in ``head.pt``."""
        self.backbone.save_pretrained(path / "backbone")
        torch.save(self.head.state_dict(), path / "head.pt")
        (path / "reward_model.json").write_text(json.dumps({"kind": "pasture.RewardModel"}), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> RewardModel:
        path = Path(path)
        if not (path / "head.pt").is_file():
            raise InputError("not a pasture reward-model checkpoint (no head.pt)", path=path)
        model = cls(AutoModel.from_pretrained(path / "backbone"))
        model.head.load_state_dict(torch.load(path / "head.pt", weights_only=True))
        return model


def pair_batch(
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PreferencePair],
    *,
    max_prompt_tokens: int,
    max_response_tokens: int,
) -> SequenceBatch:
    """Chosen responses first, then rejected ones, in one batch of 2 × len(pairs) sequences."""
    prompts = [p.prompt for p in pairs] * 2
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    return encode_sequences(
        tokenizer, prompts, responses, max_prompt_tokens=max_prompt_tokens, max_response_tokens=max_response_tokens
    )


def bradley_terry_loss(chosen: Tensor, rejected: Tensor) -> Tensor:
    """−log σ(r_c − r_r), averaged."""
    return -F.logsigmoid(chosen - rejected).mean()


@torch.no_grad()
def pair_accuracy(
    model: RewardModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PreferencePair],
    *,
    max_prompt_tokens: int = 256,
    max_response_tokens: int = 256,
) -> float:
    """Fraction of pairs where the reward model scores ``chosen`` strictly above ``rejected``."""
    if not pairs:
        raise InputError("no pairs to measure accuracy on")
    chosen = model.score(
        tokenizer,
        [p.prompt for p in pairs],
        [p.chosen for p in pairs],
        max_prompt_tokens=max_prompt_tokens,
        max_response_tokens=max_response_tokens,
    )
    rejected = model.score(
        tokenizer,
        [p.prompt for p in pairs],
        [p.rejected for p in pairs],
        max_prompt_tokens=max_prompt_tokens,
        max_response_tokens=max_response_tokens,
    )
    return sum(1 for c, r in zip(chosen, rejected, strict=True) if c > r) / len(pairs)


def train_reward_model(
    policy: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[PreferencePair],
    *,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    max_prompt_tokens: int = 256,
    max_response_tokens: int = 256,
    accelerator: Any = None,
) -> tuple[RewardModel, TrainStats]:
    """A Bradley–Terry reward model initialised from ``policy``'s backbone and trained on ``pairs``.

    ``stats.metrics['train_accuracy']`` is the accuracy on the training pairs (their noisy labels).
    LoRA adapters, when asked for, go on the backbone; the head is always fully trained.
    """
    if not pairs:
        raise InputError("no preference pairs to train a reward model on")
    optim = optim or OptimSettings()
    set_seed(seed)
    stats = TrainStats(method="reward_model")
    model = RewardModel.from_policy(policy)
    if lora is not None:
        from peft import LoraConfig, get_peft_model

        model.backbone = get_peft_model(  # type: ignore[assignment]
            model.backbone,
            LoraConfig(
                r=lora.r,
                lora_alpha=lora.alpha,
                lora_dropout=lora.dropout,
                target_modules=list(lora.target_modules) if lora.target_modules else None,
            ),
        )
    with timed(stats):
        loop = Loop(model, optim, stats, accelerator=accelerator)
        loop.model.train()
        for idx in map(loop.shard, cycle_batches(len(pairs), optim.batch_size, optim.steps, seed)):
            chunk = [pairs[i] for i in idx]
            batch = pair_batch(
                tokenizer, chunk, max_prompt_tokens=max_prompt_tokens, max_response_tokens=max_response_tokens
            ).to(loop.device)
            scores = loop.model(batch.input_ids, batch.attention_mask)
            k = len(chunk)
            loop.step(bradley_terry_loss(scores[:k], scores[k:]), n_tokens=batch.n_tokens)
    model = loop.accelerator.unwrap_model(loop.model)
    if lora is not None:
        model.backbone = model.backbone.merge_and_unload()
    stats.metrics["train_accuracy"] = pair_accuracy(
        model, tokenizer, pairs, max_prompt_tokens=max_prompt_tokens, max_response_tokens=max_response_tokens
    )
    return model, stats


def fit(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: RewardModelSettings,
    train: TrainSettings,
) -> tuple[RewardModel, TrainStats]:
    """The registry's trainer for reward_model (backbone from ``model``, trained on ``data.pairs``)."""
    return train_reward_model(model, tokenizer, data.pairs, optim=train.optim(), lora=train.lora(), seed=train.seed)
