"""How much of what a policy knew survives training: the "old task" score before and after (METHODS.md).

Two old tasks, one per kind of model:

* the extended synthetic task's reversal task, learned before the task being trained (exact score in [0, 1];
  :func:`synthetic_old_task_score`);
* for a real model (SmolLM2), held-out text written by the pasture team (``pasture/data/retention_text.jsonl``,
  16 short plain-English passages on everyday topics, never used for training), scored by log-likelihood:
  :func:`text_score` is the geometric-mean token probability ``exp(Σ log p(token | prefix) / #tokens)`` over all
  passages, in (0, 1], higher is better, so ``after / before`` is a retention ratio (1 = nothing lost; it equals
  ``perplexity_before / perplexity_after``).

Retention is ``after / before`` (:func:`pasture.train.table.retention_ratio`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib import resources
from typing import cast

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError

RETENTION_TEXT = "retention_text.jsonl"
"""The bundled held-out team-written passages (package data)."""


def retention_passages() -> list[str]:
    """The bundled held-out passages, in file order."""
    raw = resources.files("pasture.data").joinpath(RETENTION_TEXT).read_text(encoding="utf-8")
    return [str(json.loads(line)["text"]) for line in raw.splitlines() if line.strip()]


@torch.no_grad()
def text_score(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str] | None = None, *, max_tokens: int = 256
) -> float:
    """Geometric-mean token probability of ``texts`` (default: the bundled passages) under ``model``: every token
    after the first of each passage (plain text, no chat template, at most ``max_tokens`` per passage) scored given
    its prefix."""
    passages = list(texts) if texts is not None else retention_passages()
    net = cast(nn.Module, model.module if hasattr(model, "module") else model)
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    total, count = 0.0, 0
    for text in passages:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
        if len(ids) < 2:
            continue
        x = torch.tensor([ids], device=device)
        logits = net(input_ids=x).logits[0, :-1].float()
        logp = torch.log_softmax(logits, dim=-1).gather(1, x[0, 1:].unsqueeze(1))
        total += float(logp.sum().item())
        count += len(ids) - 1
    net.train(was_training)
    if count == 0:
        raise InputError("no passage has two or more tokens to score; give longer texts")
    return math.exp(total / count)


def synthetic_old_task_score(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, *, n: int = 200, seed: int = 0
) -> float:
    """Mean exact reversal score of one sample on each of ``n`` fresh old-task prompts (the synthetic old task)."""
    from pasture.train.synthetic import mean_score, old_task_prompts

    return mean_score(model, tokenizer, old_task_prompts(n, seed=seed + 32), seed=seed + 33)  # type: ignore[arg-type]
