"""CUT vs its baselines on the extended synthetic task: the statistics against hand values, and one seed at smoke
size through the same code as experiments/cut_synthetic.py (the full three-seed run lives there, not in CI)."""

from __future__ import annotations

import math

import pytest
import torch

from pasture.errors import InputError
from pasture.train.cut import JudgedResponse
from pasture.train.cut_synthetic import (
    BASELINES,
    POLICIES,
    SMOKE,
    comparison_markdown,
    good_bad_pairs,
    paired_win_rate,
    run_comparison,
    summarize_seeds,
)


def test_paired_win_rate_matches_a_hand_computation() -> None:
    # outcomes 1, ½, 0, 1: mean 0.625; sample sd of (1, .5, 0, 1) = sqrt(((.375²)·2 + .125² + .625²)/3)
    wr = paired_win_rate([0.5, 0.25, 0.0, 1.0], [0.25, 0.25, 0.5, 0.75])
    sd = math.sqrt((2 * 0.375**2 + 0.125**2 + 0.625**2) / 3)
    assert wr.win_rate == pytest.approx(62.5)
    assert wr.low == pytest.approx(100 * (0.625 - 1.96 * sd / 2))
    assert wr.high == pytest.approx(100 * (0.625 + 1.96 * sd / 2))
    assert wr.n == 4


def test_beats_needs_the_interval_over_seeds_to_exclude_half() -> None:
    t2 = 4.302652729911275  # t_{0.975, 2}
    wide = summarize_seeds([60.0, 70.0, 80.0])
    assert (wide.mean, wide.sd) == (pytest.approx(70.0), pytest.approx(10.0))
    assert wide.low == pytest.approx(70 - t2 * 10 / math.sqrt(3))
    assert not wide.beats  # the interval reaches below 50
    tight = summarize_seeds([60.0, 62.0, 64.0])
    assert tight.low == pytest.approx(62 - t2 * 2 / math.sqrt(3)) and tight.beats
    assert not summarize_seeds([40.0, 41.0, 42.0]).beats
    one = summarize_seeds([90.0])
    assert math.isnan(one.low) and not one.beats  # one seed is never "beats"
    with pytest.raises(InputError):
        summarize_seeds([])


def test_dpo_pairs_every_good_with_every_bad_response_of_the_same_prompt() -> None:
    pool = [
        JudgedResponse("p", "g1", True, ""),
        JudgedResponse("p", "b1", False, ""),
        JudgedResponse("q", "b2", False, ""),
        JudgedResponse("p", "b3", False, ""),
        JudgedResponse("q", "g2", True, ""),
        JudgedResponse("r", "g3", True, ""),
    ]
    assert [(x.prompt, x.chosen, x.rejected) for x in good_bad_pairs(pool)] == [
        ("p", "g1", "b1"),
        ("p", "g1", "b3"),
        ("q", "g2", "b2"),
    ]


@pytest.mark.slow
def test_one_seed_at_smoke_size_runs_every_stage() -> None:
    torch.set_num_threads(1)
    result = run_comparison(SMOKE, [0])
    (seed,) = result.seeds
    assert set(seed.win_rates) == set(BASELINES) and set(result.summary) == set(BASELINES)
    for w in seed.win_rates.values():
        assert 0.0 <= w.win_rate <= 100.0 and w.low <= w.win_rate <= w.high and w.n == SMOKE.n_eval_prompts
    assert set(seed.mean_score) == {*POLICIES, "start"} and all(0 <= v <= 1 for v in seed.mean_score.values())
    assert all(0 <= v <= 1 for v in seed.old_task_score.values()) and 0 <= result.old_task_learned <= 1
    assert seed.n_good + seed.n_bad == SMOKE.n_train_prompts * SMOKE.samples_per_prompt
    assert seed.n_good > 0 and seed.n_bad > 0 and seed.n_dpo_pairs > 0
    assert 0.0 <= seed.flagged_fraction <= 1.0
    f = seed.flags
    assert 0.0 <= f.error_flagged <= 1.0 and 0.0 <= f.right_flagged <= 1.0
    assert math.isnan(f.precision) or 0.0 <= f.precision <= 1.0
    assert not result.summary["dpo"].beats  # one seed never "beats"
    text = comparison_markdown(result)
    assert "CUT vs sft_good" in text and f"{seed.win_rates['dpo'].win_rate:.1f}" in text
