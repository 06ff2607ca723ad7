"""Self-J with vs without KL on the extended synthetic task: the statistics against hand values, and one seed at
smoke size through the same code as experiments/self_j_synthetic.py (the full three-seed run lives there)."""

from __future__ import annotations

import math

import pytest
import torch

from pasture.analysis.selective import gaussian_noise_auc
from pasture.errors import InputError
from pasture.train.self_j_synthetic import (
    JUDGES,
    SMOKE,
    comparison_markdown,
    equivalent_sigma,
    run_comparison,
    settings_for,
    summarize_differences,
)


def test_differences_beat_only_when_the_interval_excludes_zero() -> None:
    t2 = 4.302652729911275  # t_{0.975, 2}
    s = summarize_differences([0.02, 0.03, 0.04])
    assert (s.mean, s.sd) == (pytest.approx(0.03), pytest.approx(0.01))
    assert s.low == pytest.approx(0.03 - t2 * 0.01 / math.sqrt(3)) and s.beats
    assert not summarize_differences([-0.01, 0.02, 0.05]).beats
    one = summarize_differences([0.5])
    assert math.isnan(one.low) and not one.beats
    with pytest.raises(InputError):
        summarize_differences([])


def test_equivalent_sigma_inverts_the_noisy_oracle_auc() -> None:
    for sigma in (0.25, 0.5, 1.0, 2.0):
        assert equivalent_sigma(gaussian_noise_auc(sigma)) == pytest.approx(sigma, rel=1e-6)
    assert equivalent_sigma(0.5) == math.inf and equivalent_sigma(1.0) == 0.0


def test_the_two_judges_differ_only_in_the_kl_weight() -> None:
    kl, no_kl = (settings_for(j) for j in JUDGES)
    assert (kl.kl_weight, no_kl.kl_weight) == (2.0, 0.0)
    assert {k: v for k, v in vars(kl).items() if k != "kl_weight"} == {
        k: v for k, v in vars(no_kl).items() if k != "kl_weight"
    }


@pytest.mark.slow
def test_one_seed_at_smoke_size_runs_every_stage() -> None:
    torch.set_num_threads(1)
    result = run_comparison(SMOKE, [0])
    r = result.seeds[0]
    assert set(r.student) == set(JUDGES) and set(r.teacher) == set(JUDGES)
    for m in (*r.student.values(), *r.teacher.values(), r.labels):
        assert m.n > 0 and (math.isnan(m.auc) or 0.0 <= m.auc <= 1.0)
    assert sorted(r.best_of_n) == [1, 2, 4] and all(0.0 <= v <= 1.0 for v in r.best_of_n.values())
    # the oracle's own pick can only improve with n (nested candidate sets); the judge's need not
    ceiling = [r.best_of_n_oracle[n] for n in sorted(r.best_of_n_oracle)]
    assert ceiling == sorted(ceiling) and all(r.best_of_n[n] <= r.best_of_n_oracle[n] for n in r.best_of_n)
    assert not result.auc.beats  # one seed has no interval
    text = comparison_markdown(result)
    assert "kl minus no_kl" in text and "best-of-4" in text and "equivalent σ" in text
