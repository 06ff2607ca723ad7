"""The hacking experiment (experiments/grpo_hacking.py) at smoke size, one seed: every stage runs end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pasture.train.grpo_synthetic import SMOKE, curves_figure, experiment_markdown, long_demonstrations, run_experiment
from pasture.train.synthetic import make_prompts, oracle_score


def test_long_demonstrations_are_an_additive_option() -> None:
    prompts = make_prompts(200, seed=1)
    long = long_demonstrations(prompts, seed=2, pad_prob=0.5, max_extra=6)
    ctx = [p.split("+")[0] for p in prompts]
    padded = [len(d) > len(c) for d, c in zip(long, ctx, strict=True)]
    assert 0.35 < sum(padded) / 200 < 0.65
    assert all(len(c) <= len(d) <= len(c) + 6 for d, c in zip(long, ctx, strict=True))
    # padding only costs oracle score: the unpadded prefix is today's demonstration
    assert all(oracle_score(p, d) <= oracle_score(p, d[: len(c)]) for p, d, c in zip(prompts, long, ctx, strict=True))


@pytest.mark.slow
def test_hacking_experiment_smoke(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = replace(SMOKE, grpo_steps=3, n_eval_prompts=30)
    result = run_experiment(cfg, [0])
    (seed,) = result.seeds
    assert set(seed.arms) == {"rm", "rm+rules"}
    for arm in seed.arms.values():
        assert len(arm.trace.steps) == 3 and arm.index.n_steps == 3
        assert arm.index.value >= 0 and arm.index.true_peak >= arm.index.true_final
        assert {"reward_model", "rules"} == set(arm.trace.steps[0].rewards)
        assert len(arm.eval_scores) == 30
    # both arms start from the same policy and the same first rollout
    assert seed.arms["rm"].trace.steps[0].total == pytest.approx(seed.arms["rm"].trace.steps[0].rewards["reward_model"])
    assert seed.arms["rm"].trace.steps[0].rewards == pytest.approx(seed.arms["rm+rules"].trace.steps[0].rewards)
    rules = seed.setup.rules
    assert 1 <= len(rules.rules) <= cfg.rule_k and rules.pair_keys
    assert seed.setup.rm_length_agreement > 0.5  # the RM trained on length-biased labels prefers length
    text = experiment_markdown(result)
    assert "rm+rules vs rm" in text and f"| {seed.seed} |" in text
    curves_figure(result, str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 1000
