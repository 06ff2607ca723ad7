"""PPO and RLOO score their samples at the sampling temperature: log softmax(logits / T)."""

from __future__ import annotations

import pytest
import torch

from pasture.train.core import OptimSettings, Reference, SequenceBatch
from pasture.train.ppo import rollout, train_ppo
from pasture.train.registry import PPOSettings
from pasture.train.reward import RewardModel
from pasture.train.synthetic import make_prompts, task_tokenizer
from pasture.train.tiny import tiny_llama


def _manual(model: torch.nn.Module, batch: SequenceBatch, temperature: float) -> torch.Tensor:
    with torch.no_grad():
        logits = model.eval()(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
    lp = torch.log_softmax(logits / temperature, -1).gather(2, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return lp * batch.response_mask[:, 1:]


@pytest.mark.parametrize("temperature", [0.5, 1.7])
def test_rollout_logprobs_are_those_of_the_sampling_distribution(temperature: float) -> None:
    tok = task_tokenizer()
    policy, ref_model = tiny_llama(tok, seed=6), tiny_llama(tok, seed=7)
    ro = rollout(
        policy,
        Reference(policy, use_adapter_off=False, frozen=ref_model),
        tok,
        make_prompts(4, seed=2),
        n=2,
        temperature=temperature,
        max_new_tokens=6,
        seed=3,
    )
    assert len(ro.generations) == 8 and ro.batch.response_mask.sum() > 8
    assert torch.allclose(ro.logp, _manual(policy, ro.batch, temperature), atol=1e-5)
    assert torch.allclose(ro.ref_logp, _manual(ref_model, ro.batch, temperature), atol=1e-5)
    # at T = 1 the same tokens have other log-probabilities: the test can tell the two apart
    assert not torch.allclose(ro.logp, _manual(policy, ro.batch, 1.0), atol=1e-3)


def test_ppo_ratio_is_one_before_the_first_update_at_a_low_temperature() -> None:
    tok = task_tokenizer()
    policy = tiny_llama(tok, seed=11)
    rm = RewardModel.from_policy(tiny_llama(tok, seed=12))
    _, stats = train_ppo(
        policy,
        tok,
        make_prompts(8, seed=4),
        rm,
        settings=PPOSettings(temperature=0.5, max_new_tokens=5, epochs=1, minibatch_size=4),
        optim=OptimSettings(lr=1e-3, batch_size=8, steps=1),
    )
    assert stats.steps == 2 and stats.metrics["initial_ratio_deviation"] < 1e-5
