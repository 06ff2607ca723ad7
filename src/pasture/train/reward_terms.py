"""Weighted sums of reward functions, r = Σ_j w_j · R_j(x, y): GRPO's reward, and the auxiliary rewards (AutoRule's
rule reward, an oracle) that RLOO and PPO add to their reward model's score. Kept apart from the trainers so that
each of them can import it (GRPO builds on PPO's rollout)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pasture.errors import InputError
from pasture.train.core import ScoreFn, TrainStats


@dataclass(frozen=True)
class RewardTerm:
    """One reward function of GRPO's weighted sum: ``name`` (in logs), ``fn(prompts, responses)``, ``weight``."""

    name: str
    fn: ScoreFn
    weight: float = 1.0


def combined_rewards(
    terms: Sequence[RewardTerm], prompts: Sequence[str], responses: Sequence[str]
) -> tuple[list[float], dict[str, float]]:
    """(Σ_j w_j R_j per response, mean of each unweighted term by name)."""
    if not terms:
        raise InputError("a weighted reward needs at least one reward term")
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise InputError(f"reward terms need distinct names, got {names}")
    total = np.zeros(len(responses))
    means: dict[str, float] = {}
    for t in terms:
        values = np.asarray(list(t.fn(prompts, responses)), dtype=float)
        if values.shape != (len(responses),):
            raise InputError(f"reward term {t.name!r} returned {values.shape[0]} scores for {len(responses)} responses")
        total += t.weight * values
        means[t.name] = float(values.mean()) if len(values) else 0.0
    return total.tolist(), means


def extra_reward(
    terms: Sequence[RewardTerm], prompts: Sequence[str], responses: Sequence[str], stats: TrainStats
) -> Tensor:
    """Σ_j w_j R_j per response as a tensor (zeros without terms), each term's mean logged as ``mean_<name>``: the
    auxiliary rewards RLOO and PPO add to their reward model's score."""
    if not terms:
        return torch.zeros(len(responses))
    total, means = combined_rewards(terms, prompts, responses)
    for name, mean in means.items():
        stats.metrics[f"mean_{name}"] = mean
    return torch.tensor(total, dtype=torch.float32)
