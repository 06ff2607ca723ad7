"""Weighted reward terms: GRPO's sum, and the auxiliary rewards (AutoRule's rule reward) RLOO and PPO add to their
reward model's score."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from pasture.errors import InputError
from pasture.train.core import OptimSettings, TrainStats
from pasture.train.ppo import train_ppo
from pasture.train.registry import PPOSettings, RLOOSettings
from pasture.train.reward import RewardModel
from pasture.train.reward_terms import RewardTerm, combined_rewards, extra_reward
from pasture.train.rloo import train_rloo
from pasture.train.synthetic import make_prompts, task_tokenizer
from pasture.train.tiny import tiny_llama


def _length(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
    return [float(len(r)) for r in responses]


def _one(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
    return [1.0] * len(responses)


def test_the_weighted_sum_and_each_terms_mean_by_hand() -> None:
    total, means = combined_rewards(
        [RewardTerm("len", _length, 0.5), RewardTerm("one", _one, -2.0)], ["a", "b"], ["xy", "wxyz"]
    )
    assert total == [0.5 * 2 - 2.0, 0.5 * 4 - 2.0] and means == {"len": 3.0, "one": 1.0}
    stats = TrainStats(method="x")
    assert extra_reward([RewardTerm("len", _length, 2.0)], ["a"], ["abc"], stats).tolist() == [6.0]
    assert stats.metrics["mean_len"] == 3.0
    assert extra_reward([], ["a", "b"], ["x", "y"], stats).tolist() == [0.0, 0.0]
    with pytest.raises(InputError, match="distinct names"):
        combined_rewards([RewardTerm("a", _one), RewardTerm("a", _length)], ["p"], ["r"])


@pytest.mark.parametrize("method", ["rloo", "ppo"])
def test_an_extra_term_is_added_to_the_reward_models_score(method: str) -> None:
    """Same seed, same start: the first rollout is the same with and without the term, so the logged mean score
    differs by exactly the term's weighted mean (a constant 1 at weight 2)."""
    tok = task_tokenizer()
    prompts = make_prompts(8, seed=4)

    def run(extra: list[RewardTerm]) -> TrainStats:
        torch.manual_seed(0)
        policy, rm = tiny_llama(tok, seed=11), RewardModel.from_policy(tiny_llama(tok, seed=12))
        optim = OptimSettings(lr=1e-3, batch_size=4, steps=1)
        if method == "rloo":
            settings = RLOOSettings(k=2, max_new_tokens=5)
            return train_rloo(policy, tok, prompts, rm, settings=settings, optim=optim, extra_rewards=extra)[1]
        ppo = PPOSettings(max_new_tokens=5, epochs=1, minibatch_size=4)
        return train_ppo(policy, tok, prompts, rm, settings=ppo, optim=optim, extra_rewards=extra)[1]

    plain, with_term = run([]), run([RewardTerm("rules", _one, 2.0)])
    assert with_term.metrics["mean_score"] == pytest.approx(plain.metrics["mean_score"] + 2.0, abs=1e-5)
    assert with_term.metrics["mean_rules"] == 1.0 and "mean_rules" not in plain.metrics
