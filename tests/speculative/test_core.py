"""The accept/reject maths against hand computations."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from pasture.speculative.core import (  # noqa: E402
    acceptance_probability,
    residual_distribution,
    token_distribution,
    verify,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_acceptance_probability_is_min_one_ratio() -> None:
    p, q = t(0.5, 0.3, 0.2), t(0.25, 0.6, 0.15)
    assert acceptance_probability(p, q, 0) == 1.0  # p > q: always kept
    assert acceptance_probability(p, q, 1) == pytest.approx(0.5)  # 0.3 / 0.6
    assert acceptance_probability(p, q, 2) == 1.0
    with pytest.raises(ValueError):
        acceptance_probability(p, t(0.0, 0.5, 0.5), 0)


def test_residual_is_normalised_positive_part() -> None:
    p, q = t(0.5, 0.3, 0.2), t(0.25, 0.6, 0.15)
    # max(p - q, 0) = (0.25, 0, 0.05), sum 0.3
    assert torch.allclose(residual_distribution(p, q), t(0.25 / 0.3, 0.0, 0.05 / 0.3))
    assert torch.equal(residual_distribution(p, p), p)  # no residual mass: total function returns p


def test_one_step_output_law_is_the_target() -> None:
    """q·min(1, p/q) + (1 − β)·residual = p, computed by hand for a three-token vocabulary."""
    p, q = t(0.5, 0.3, 0.2), t(0.25, 0.6, 0.15)
    accept = torch.stack([q[x] * acceptance_probability(p, q, x) for x in range(3)])
    beta = float(torch.minimum(p, q).sum())  # 0.25 + 0.3 + 0.15 = 0.7
    assert beta == pytest.approx(0.7)
    law = accept + (1 - beta) * residual_distribution(p, q)
    assert torch.allclose(law, p)


def test_token_distribution_temperature_and_top_p() -> None:
    logits = torch.log(t(0.5, 0.3, 0.15, 0.05))
    assert torch.equal(token_distribution(logits, temperature=0), t(1, 0, 0, 0))
    assert torch.allclose(token_distribution(logits, temperature=1), t(0.5, 0.3, 0.15, 0.05))
    # top_p 0.75: mass before each sorted token 0, 0.5, 0.8, 0.95 -> keep the first two
    assert torch.allclose(token_distribution(logits, temperature=1, top_p=0.75), t(0.5 / 0.8, 0.3 / 0.8, 0, 0))
    # temperature 2: probabilities ∝ sqrt(p)
    s = torch.sqrt(t(0.5, 0.3, 0.15, 0.05))
    assert torch.allclose(token_distribution(logits, temperature=2), s / s.sum())


def test_verify_greedy_keeps_the_matching_prefix_then_the_target_argmax() -> None:
    g = torch.Generator().manual_seed(0)
    p = token_distribution(torch.tensor([[0.0, 2, 1], [3, 0, 1], [0, 0, 5]]), temperature=0)  # argmax 1, 0, 2
    q = token_distribution(torch.tensor([[0.0, 2, 1], [0, 3, 1]]), temperature=0)  # drafts 1, 1
    assert verify(p, q, [1, 1], g) == (1, 0)  # first kept, second rejected, target's argmax 0 instead
    q_ok = token_distribution(torch.tensor([[0.0, 2, 1], [3, 0, 1]]), temperature=0)
    assert verify(p, q_ok, [1, 0], g) == (2, 2)  # both kept, bonus token = argmax of the last row
