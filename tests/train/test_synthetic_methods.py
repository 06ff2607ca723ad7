"""The acceptance figures of the learning methods on the synthetic keyword-inclusion task.

Real training of a 0.3 M-parameter Llama from a config (character tokenizer built offline), labels from the
exact oracle flipped with p = 0.25 by the simulator, fixed seeds. Nothing here is hard-coded: every figure
comes out of the training run in the test. The shared setup (SFT, pairs, reward model) is built once.
"""

from __future__ import annotations

import pytest

from pasture.train.recipes import best_of_n_curve, evaluate_synthetic, heldout_pairs, train_synthetic_method
from pasture.train.reward import pair_accuracy

pytestmark = pytest.mark.slow


def test_labels_carry_the_simulated_noise(synthetic_setup) -> None:  # type: ignore[no-untyped-def]
    # flip_labels at p = 0.25: about three quarters of the training labels agree with the oracle.
    print(
        f"{len(synthetic_setup.pairs)} training pairs, label agreement with the oracle {synthetic_setup.label_agreement:.3f}"
    )
    assert len(synthetic_setup.pairs) > 5000
    assert 0.72 <= synthetic_setup.label_agreement <= 0.78


def test_reward_model_accuracy_on_heldout_pairs(synthetic_setup) -> None:  # type: ignore[no-untyped-def]
    pairs = heldout_pairs(synthetic_setup)
    assert len(pairs) >= 500
    accuracy = pair_accuracy(synthetic_setup.reward_model, synthetic_setup.tokenizer, pairs)
    print(f"reward-model accuracy vs oracle on {len(pairs)} held-out pairs: {accuracy:.3f}")
    assert accuracy >= 0.80


def test_best_of_n_rises_monotonically(synthetic_setup) -> None:  # type: ignore[no-untyped-def]
    curve = best_of_n_curve(synthetic_setup, (1, 4, 16))
    print(f"best-of-n mean oracle score: {curve}")
    assert curve[1] < curve[4] < curve[16]


@pytest.mark.parametrize("method", ["dpo", "simpo", "ppo", "rloo", "expert_iteration"])
def test_method_beats_the_sft_policy(synthetic_setup, method: str) -> None:  # type: ignore[no-untyped-def]
    policy, stats = train_synthetic_method(synthetic_setup, method)
    row = evaluate_synthetic(synthetic_setup, method, policy, stats)
    print(
        f"{method}: oracle win rate vs SFT {row.win_rate_vs_start:.1f}%, KL {row.kl_to_reference}, "
        f"length {row.avg_length:.2f}, {stats.train_tokens} train tokens, {stats.wall_s:.1f} s"
    )
    assert stats.steps > 0 and stats.train_tokens > 0 and stats.wall_s > 0
    assert row.win_rate_vs_start >= 60.0
