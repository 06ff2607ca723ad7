"""Loss functions and estimators against their definitions, TRL where it has the same loss, and hand values."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from pasture.errors import InputError
from pasture.train.dpo import dpo_loss, simpo_loss
from pasture.train.ppo import gae, last_response_index, masked_whiten
from pasture.train.registry import CDPOSettings, DPOSettings, IPOSettings, RobustDPOSettings, SimPOSettings
from pasture.train.reward import bradley_terry_loss
from pasture.train.rloo import leave_one_out_advantages


@pytest.mark.parametrize(
    "settings", [DPOSettings(beta=0.3), CDPOSettings(beta=0.3, epsilon=0.2), RobustDPOSettings(beta=0.3, epsilon=0.2)]
)
def test_dpo_family_is_log2_when_policy_equals_reference(settings: DPOSettings) -> None:
    lp = torch.tensor([-3.0, -7.5, -1.25])
    lr = torch.tensor([-4.0, -2.0, -9.0])
    out = dpo_loss(lp, lr, lp, lr, settings)
    assert torch.allclose(out, torch.full((3,), math.log(2)), atol=1e-7)


def test_dpo_matches_hand_computation() -> None:
    # h = (−1 − −3) − (−2 − −2) = 2; β = 0.5: −log σ(1) = log(1 + e^−1)
    out = dpo_loss(
        torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), DPOSettings(beta=0.5)
    )
    assert out.item() == pytest.approx(math.log1p(math.exp(-1.0)), abs=1e-6)
    args = (torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]))
    assert dpo_loss(*args, IPOSettings(beta=0.5)).item() == pytest.approx((2 - 1) ** 2)
    # cDPO: −(1−ε) log σ(βh) − ε log σ(−βh) with βh = 1, ε = 0.1
    cdpo = 0.9 * math.log1p(math.exp(-1.0)) + 0.1 * math.log1p(math.exp(1.0))
    assert dpo_loss(*args, CDPOSettings(beta=0.5, epsilon=0.1)).item() == pytest.approx(cdpo, abs=1e-6)


def test_robust_dpo_is_unbiased_under_label_flips() -> None:
    # E over a flip with probability ε of the robust loss equals the clean DPO loss (Chowdhury et al.).
    eps = 0.25
    lc, lr, rc, rr = torch.tensor([-1.0]), torch.tensor([-2.5]), torch.tensor([-1.7]), torch.tensor([-2.0])
    s = RobustDPOSettings(beta=0.7, epsilon=eps)
    clean = dpo_loss(lc, lr, rc, rr, DPOSettings(beta=0.7))
    expected = (1 - eps) * dpo_loss(lc, lr, rc, rr, s) + eps * dpo_loss(lr, lc, rr, rc, s)
    assert expected.item() == pytest.approx(clean.item(), abs=1e-6)
    with pytest.raises(InputError):
        dpo_loss(lc, lr, rc, rr, RobustDPOSettings(epsilon=0.5))


def test_simpo_matches_trl_cpo_trainer_simpo_loss() -> None:
    from trl.experimental.cpo.cpo_trainer import CPOTrainer

    sums_c, sums_r = torch.tensor([-6.0, -2.0, -9.0]), torch.tensor([-8.0, -1.0, -9.5])
    len_c, len_r = torch.tensor([3.0, 2.0, 6.0]), torch.tensor([4.0, 1.0, 5.0])
    settings = SimPOSettings(beta=2.0, gamma=0.7)
    ours = simpo_loss(sums_c, sums_r, len_c, len_r, settings)
    fake_self = SimpleNamespace(
        alpha=0.0,
        accelerator=SimpleNamespace(device="cpu"),
        loss_type="simpo",
        simpo_gamma=0.7,
        beta=2.0,
        label_smoothing=0.0,
    )
    theirs = CPOTrainer.cpo_loss(fake_self, sums_c / len_c, sums_r / len_r)[0]  # TRL takes mean log-probs
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_bradley_terry_loss() -> None:
    assert bradley_terry_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(math.log(2))
    assert bradley_terry_loss(torch.tensor([3.0]), torch.tensor([1.0])).item() == pytest.approx(
        math.log1p(math.exp(-2))
    )


def test_gae_matches_a_hand_computation() -> None:
    # one sequence: prompt position (masked), then 3 response steps; γ = 1, λ = 0.5
    rewards = torch.tensor([[0.0, 0.1, 0.2, 1.0]])
    values = torch.tensor([[9.0, 0.5, 0.4, 0.3]])
    mask = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    adv = gae(rewards, values, mask, gamma=1.0, lam=0.5)
    d3 = 1.0 - 0.3
    d2 = 0.2 + 0.3 - 0.4
    d1 = 0.1 + 0.4 - 0.5
    a3, a2 = d3, d2 + 0.5 * d3
    a1 = d1 + 0.5 * a2
    assert torch.allclose(adv, torch.tensor([[0.0, a1, a2, a3]]), atol=1e-6)
    assert last_response_index(mask).tolist() == [3]


def test_masked_whiten_has_zero_mean_unit_variance_on_the_mask() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    m = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    w = masked_whiten(x, m)
    vals = w[0, :3]
    assert vals.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert (vals**2).mean().item() == pytest.approx(1.0, abs=1e-4)
    assert w[0, 3].item() == 0.0


def test_leave_one_out_advantages() -> None:
    r = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    adv = leave_one_out_advantages(r)
    assert torch.allclose(adv, torch.tensor([[1 - 11 / 3, 2 - 10 / 3, 3 - 3.0, 6 - 2.0]]))
    with pytest.raises(InputError):
        leave_one_out_advantages(torch.tensor([[1.0]]))
