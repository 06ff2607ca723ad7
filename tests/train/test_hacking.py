"""The hacking index and the length-biased labels against hand computations."""

from __future__ import annotations

import pytest

from pasture.errors import InputError
from pasture.train.hacking import hacking_index, length_biased_labels


def test_hacking_index_by_hand_without_smoothing() -> None:
    # true peaks at step 2 (0.6) and ends at 0.3 while the proxy keeps rising: H = 0.3
    h = hacking_index([0.0, 0.5, 1.0, 1.5, 2.0], [0.2, 0.4, 0.6, 0.5, 0.3], window=1)
    assert h.value == pytest.approx(0.3)
    assert h.peak_step == 2
    assert (h.true_peak, h.true_final, h.proxy_at_peak, h.proxy_final) == pytest.approx((0.6, 0.3, 1.0, 2.0))
    # the proxy fell after the true peak as well: degradation, not hacking
    assert hacking_index([0.0, 0.5, 1.0, 0.8, 0.2], [0.2, 0.4, 0.6, 0.5, 0.3], window=1).value == 0.0
    # true quality ends at its peak: nothing lost
    assert hacking_index([0.0, 1.0, 2.0], [0.1, 0.2, 0.3], window=1).value == 0.0


def test_hacking_index_smooths_with_a_trailing_mean() -> None:
    # window 2: smoothed true = [1, 2, 2.5, 1.5] (trailing means 1, (1+3)/2, (3+2)/2, (2+1)/2) → peak 2.5 at step 2;
    # smoothed proxy = [0, 0.5, 1.5, 2.5]: rose after the peak → H = 2.5 − 1.5 = 1
    h = hacking_index([0, 1, 2, 3], [1, 3, 2, 1], window=2)
    assert h.peak_step == 2 and h.true_peak == pytest.approx(2.5) and h.true_final == pytest.approx(1.5)
    assert h.value == pytest.approx(1.0)
    # a single noisy spike is damped: raw drop 2 (3 → 1), smoothed drop 1
    assert hacking_index([0, 1, 2, 3], [1, 3, 2, 1], window=1).value == pytest.approx(2.0)


def test_hacking_index_errors() -> None:
    with pytest.raises(InputError, match="equally long"):
        hacking_index([1.0], [1.0, 2.0])
    with pytest.raises(InputError, match="window"):
        hacking_index([1.0], [1.0], window=0)


def test_length_biased_labels_prefer_length_and_flip() -> None:
    prompts = [f"{i:04d}+a=" for i in range(400)]
    a = ["0000"] * 400
    b = ["00000" if i % 2 else "1111" for i in range(400)]  # odd: b longer; even: equal length, oracle says a
    oracle = [1.0] * 400
    clean = length_biased_labels(prompts, a, b, oracle, p=0.0, seed=0)
    assert clean == [2.0 if i % 2 else 1.0 for i in range(400)]
    noisy = length_biased_labels(prompts, a, b, oracle, p=0.25, seed=0)
    flipped = sum(n != c for n, c in zip(noisy, clean, strict=True)) / 400
    assert 0.18 < flipped < 0.32
    assert noisy == length_biased_labels(prompts, a, b, oracle, p=0.25, seed=0)


def test_hacking_curves_figure() -> None:
    import pandas as pd

    from pasture.report.figures import hacking_curves

    assert hacking_curves(pd.DataFrame(columns=["run", "group", "step", "proxy", "true"])) is None
    frame = pd.DataFrame(
        [
            {"run": f"{g} (seed {s})", "group": g, "step": t, "proxy": 0.1 * t, "true": 0.5 - 0.01 * t * (g == "rm")}
            for g in ("rm", "rm+rules")
            for s in (0, 1)
            for t in range(5)
        ]
    )
    fig = hacking_curves(frame)
    assert fig is not None and fig.png[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in fig.svg
