"""Expert iteration: best-of-n samples from the current policy become SFT data, for one or more rounds.

AlpacaFarm's "expert iteration" = one round of best-of-n (by the reward model) followed by supervised
fine-tuning on the selected responses, starting from the SFT policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.train.best_of_n import best_of_n
from pasture.train.core import LoraSettings, OptimSettings, ScoreFn, TrainingData, TrainStats, timed
from pasture.train.registry import ExpertIterationSettings, TrainSettings
from pasture.train.sft import train_sft


def train_expert_iteration(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    score: ScoreFn,
    *,
    n: int = 16,
    rounds: int = 1,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    seed: int = 0,
    accelerator: Any = None,
) -> tuple[nn.Module, TrainStats]:
    """Each round: best-of-``n`` by ``score`` on ``prompts``, then SFT on (prompt, best response).

    ``stats.metrics['selected_score']`` is the mean score of the responses selected in the last round.
    """
    stats = TrainStats(method="expert_iteration")
    with timed(stats):
        for r in range(rounds):
            model = _round(
                model,
                tokenizer,
                prompts,
                score,
                stats,
                r,
                n=n,
                optim=optim,
                lora=lora,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                seed=seed,
                accelerator=accelerator,
            )
    return model, stats


def _round(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    score: ScoreFn,
    stats: TrainStats,
    r: int,
    *,
    n: int,
    optim: OptimSettings | None,
    lora: LoraSettings | None,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    accelerator: Any,
) -> nn.Module:
    """One round: best-of-n selection, then SFT on the selections; updates ``stats`` in place."""
    bon = best_of_n(
        model,
        tokenizer,
        prompts,
        score,
        n=n,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed + 1000 * r,
    )
    chosen = bon.select(n)
    stats.generated_tokens += bon.generated_tokens
    sel = [max(s) for s in bon.scores]
    stats.metrics["selected_score"] = sum(sel) / len(sel)
    model, round_stats = train_sft(
        model,
        tokenizer,
        prompts,
        chosen,
        optim=optim,
        lora=lora if r == 0 else None,
        seed=seed + r,
        method="expert_iteration",
        accelerator=accelerator,
    )
    stats.steps += round_stats.steps
    stats.train_tokens += round_stats.train_tokens
    stats.history.extend(round_stats.history)
    return model


def fit(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: ExpertIterationSettings,
    train: TrainSettings,
) -> tuple[nn.Module, TrainStats]:
    """The registry's trainer for expert_iteration: candidates on ``data.prompts`` ranked by ``data.reward_model``."""
    rm = data.need_reward_model("expert_iteration")

    def score(p: Sequence[str], r: Sequence[str]) -> list[float]:
        return rm.score(tokenizer, p, r)

    return train_expert_iteration(
        model,
        tokenizer,
        data.prompts,
        score,
        n=settings.n,
        rounds=settings.rounds,
        optim=train.optim(),
        lora=train.lora(),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        seed=train.seed,
    )
