"""GRPO's pure parts against hand computations, and one short run that must learn the synthetic task's oracle."""

from __future__ import annotations

import math

import pytest
import torch

from pasture.errors import InputError
from pasture.train.grpo import (
    RewardTerm,
    Trace,
    clipped_surrogate,
    combined_rewards,
    group_advantages,
    grpo_loss,
    k3_kl,
    train_grpo,
)
from pasture.train.registry import GRPOSettings, OptimSettings, get_method


def test_group_advantages_by_hand() -> None:
    # group [1, 2, 3]: mean 2, sample std 1 → (−1, 0, 1)/(1 + eps); group [0, 0, 4]: mean 4/3, std √(16/3)
    r = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 4.0]])
    a = group_advantages(r, eps=0.0)
    assert torch.allclose(a[0], torch.tensor([-1.0, 0.0, 1.0]))
    s = math.sqrt(((4 / 3) ** 2 * 2 + (8 / 3) ** 2) / 2)
    assert torch.allclose(a[1], torch.tensor([-4 / 3 / s, -4 / 3 / s, 8 / 3 / s]), atol=1e-6)
    eps = 0.5
    assert torch.allclose(group_advantages(r, eps=eps)[0], torch.tensor([-1.0, 0.0, 1.0]) / 1.5)
    # each group is normalised on its own: a shift or a scale of one group does not change its advantages
    assert torch.allclose(group_advantages(r * 10 + 7, eps=0.0), a, atol=1e-6)
    # unscaled variant: reward minus group mean
    assert torch.allclose(group_advantages(r, scale=False)[1], torch.tensor([-4 / 3, -4 / 3, 8 / 3]))


def test_equal_rewards_give_zero_advantage_and_k_below_two_is_an_error() -> None:
    assert torch.equal(group_advantages(torch.full((2, 4), 0.3)), torch.zeros(2, 4))
    with pytest.raises(InputError, match="k >= 2"):
        group_advantages(torch.tensor([[1.0], [2.0]]))


def test_clipped_surrogate_by_hand() -> None:
    # ρ = e^{0.5} ≈ 1.6487 > 1.2: with A = +1 the clipped term (1.2) is the min → loss −1.2;
    # with A = −1, min(−1.6487, −1.2) = −1.6487 → loss +1.6487 (the pessimistic bound keeps the unclipped term)
    logp, old = torch.tensor([[0.5], [0.5]]), torch.zeros(2, 1)
    out = clipped_surrogate(logp, old, torch.tensor([1.0, -1.0]), 0.2)
    assert out[0, 0].item() == pytest.approx(-1.2)
    assert out[1, 0].item() == pytest.approx(math.exp(0.5))
    # ρ = e^{−0.5} ≈ 0.6065 < 0.8: A = +1 → −min(0.6065, 0.8) = −0.6065; A = −1 → −min(−0.6065, −0.8) = 0.8
    out = clipped_surrogate(-logp, old, torch.tensor([1.0, -1.0]), 0.2)
    assert out[0, 0].item() == pytest.approx(-math.exp(-0.5))
    assert out[1, 0].item() == pytest.approx(0.8)
    # inside the clip range the surrogate is −ρA and its gradient reaches logp; outside (clipped side) it is zero
    lp = torch.tensor([[0.1, 0.5]], requires_grad=True)
    clipped_surrogate(lp, torch.zeros(1, 2), torch.tensor([1.0]), 0.2).sum().backward()
    assert lp.grad is not None
    assert lp.grad[0, 0].item() == pytest.approx(-math.exp(0.1))
    assert lp.grad[0, 1].item() == 0.0


def test_k3_kl_by_hand() -> None:
    # d = ref − logp = −0.3: e^{−0.3} + 0.3 − 1; equal log-probs: 0; always ≥ 0
    assert k3_kl(torch.tensor([-1.0]), torch.tensor([-1.3])).item() == pytest.approx(math.exp(-0.3) + 0.3 - 1)
    assert k3_kl(torch.tensor([-2.0]), torch.tensor([-2.0])).item() == 0.0
    d = torch.linspace(-3, 3, 13)
    assert bool((k3_kl(torch.zeros(13), d) >= 0).all())
    # unbiased: E_{y~π}[k3] = KL(π‖π_ref) exactly for a categorical π
    pi, ref = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.5, 0.3])
    exact = float((pi * (pi / ref).log()).sum())
    assert float((pi * k3_kl(pi.log(), ref.log())).sum()) == pytest.approx(exact, abs=1e-6)


def test_grpo_loss_by_hand() -> None:
    # two sequences: lengths 2 and 1 (mask); ρ = 1 everywhere (logp = old): surrogate = −A per token
    logp = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]])
    ref = torch.tensor([[-1.0, -1.5], [-0.5, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    adv = torch.tensor([2.0, -1.0])
    out = grpo_loss(logp, logp, ref, adv, mask, clip=0.2, beta=0.1)
    k = math.exp(0.5) - 0.5 - 1  # second token of sequence 1
    surrogate = ((-2 + -2) / 2 + 1.0) / 2  # seq means −2 and +1, then the mean over sequences
    kl = ((0 + k) / 2 + 0) / 2
    assert out.surrogate.item() == pytest.approx(surrogate)
    assert out.kl.item() == pytest.approx(kl)
    assert out.loss.item() == pytest.approx(surrogate + 0.1 * kl)
    assert out.clip_fraction.item() == 0.0
    # a padded position changes nothing
    logp2 = logp.clone()
    logp2[1, 1] = -9.0
    assert grpo_loss(logp2, logp2, ref, adv, mask, clip=0.2, beta=0.1).loss.item() == pytest.approx(out.loss.item())


def test_combined_rewards_weights_and_errors() -> None:
    terms = [
        RewardTerm("len", lambda p, r: [float(len(x)) for x in r], 0.5),
        RewardTerm("one", lambda p, r: [1.0] * len(r), 2.0),
    ]
    total, means = combined_rewards(terms, ["a", "b"], ["xy", "xyzw"])
    assert total == [0.5 * 2 + 2.0, 0.5 * 4 + 2.0]
    assert means == {"len": 3.0, "one": 1.0}
    with pytest.raises(InputError, match="distinct"):
        combined_rewards([terms[0], terms[0]], ["a"], ["x"])
    with pytest.raises(InputError, match="returned 1 scores for 2"):
        combined_rewards([RewardTerm("bad", lambda p, r: [0.0])], ["a", "b"], ["x", "y"])


def test_registry_entry() -> None:
    m = get_method("grpo")
    assert m.settings is GRPOSettings and m.inputs == ("prompts", "reward_model")
    assert GRPOSettings().k == 64 and GRPOSettings().kl_coef == 0.04 and GRPOSettings().clip_range == 0.2
    assert callable(m.trainer_function())


@pytest.mark.slow
def test_grpo_on_the_oracle_raises_the_oracle_score() -> None:
    """A short GRPO run with the exact oracle as its only reward: the oracle score of the rollouts rises, the
    first update sees ratio 1 (clip fraction logged), and the trace logs every rollout."""
    from pasture.train.recipes import _copy
    from pasture.train.sft import train_sft
    from pasture.train.synthetic import demonstrations, make_prompts, oracle_scores, task_tokenizer
    from pasture.train.tiny import tiny_llama

    torch.set_num_threads(1)
    tok = task_tokenizer()
    sp = make_prompts(600, seed=1)
    sft, _ = train_sft(
        tiny_llama(tok, seed=0),
        tok,
        sp,
        demonstrations(sp, seed=2),
        optim=OptimSettings(lr=3e-3, batch_size=64, steps=120),
        seed=0,
    )
    prompts = make_prompts(400, seed=21)
    trace = Trace()
    _, stats = train_grpo(
        _copy(sft),
        tok,
        prompts,
        [RewardTerm("oracle", oracle_scores)],
        settings=GRPOSettings(k=4, kl_coef=0.02, max_new_tokens=10, minibatch_size=128),
        optim=OptimSettings(lr=1e-3, batch_size=32, steps=14),
        seed=0,
        monitor=oracle_scores,
        trace=trace,
    )
    assert len(trace.steps) == 14 and stats.steps == 14
    first = sum(s.true_quality or 0 for s in trace.steps[:3]) / 3
    last = sum(s.true_quality or 0 for s in trace.steps[-3:]) / 3
    assert last > first + 0.1, (first, last)
    assert trace.steps[0].rewards["oracle"] == pytest.approx(trace.steps[0].true_quality)
    assert stats.metrics["mean_kl"] >= 0
