"""Label-flip noise: deterministic across processes, independent of order, and at the stated rate."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys

import pytest

from pasture.errors import InputError
from pasture.simulate.noise import example_key, flip_label, flip_labels, flip_mask, uniform_draw


def test_uniform_draw_matches_its_documented_definition() -> None:
    key = example_key("Name a color.", "Red.", "Blue is a color.")
    digest = hashlib.sha256(f"pasture-simulate|flip|7|{key}".encode()).digest()
    assert uniform_draw(key, 7, "flip") == int.from_bytes(digest[:8], "big") / 2**64
    assert 0.0 <= uniform_draw(key, 7, "flip") < 1.0
    assert uniform_draw(key, 7, "flip") != uniform_draw(key, 7, "assign")  # streams are independent draws
    assert uniform_draw(key, 7, "flip") != uniform_draw(key, 8, "flip")


def test_flip_labels_rate_is_p_within_four_sigma() -> None:
    # n = 20000 examples, p = 0.25: the flip count is Binomial(n, p); 4 sigma = 4 * sqrt(p(1-p)/n) = 0.0122.
    n, p = 20_000, 0.25
    keys = [example_key(f"instruction {i}", f"a{i}", f"b{i}") for i in range(n)]
    clean = [1.0 if i % 3 else 2.0 for i in range(n)]
    noisy = flip_labels(clean, keys, p=p, seed=2024)
    rate = sum(c != x for c, x in zip(clean, noisy, strict=True)) / n
    tol = 4 * math.sqrt(p * (1 - p) / n)
    assert abs(rate - p) <= tol, (rate, tol)
    # flipped labels are exactly 3 - clean, unflipped ones untouched
    assert all(x == c or x == 3 - c for c, x in zip(clean, noisy, strict=True))
    # a second seed is an independent draw: both flip with prob p^2 (4-sigma bound again)
    other = flip_mask(keys, p=p, seed=2025)
    mine = flip_mask(keys, p=p, seed=2024)
    both = sum(a and b for a, b in zip(mine, other, strict=True)) / n
    assert abs(both - p * p) <= 4 * math.sqrt(p * p * (1 - p * p) / n)


def test_draw_depends_on_key_not_position() -> None:
    keys = [example_key(f"q{i}", "x", "y") for i in range(200)]
    labels = [1.0] * 200
    full = dict(zip(keys, flip_labels(labels, keys, p=0.5, seed=3), strict=True))
    subset = keys[::-1][:50]
    part = flip_labels([1.0] * 50, subset, p=0.5, seed=3)
    assert [full[k] for k in subset] == part


def test_edge_probabilities_and_ties() -> None:
    keys = [str(i) for i in range(100)]
    assert flip_labels([1.0] * 100, keys, p=0.0, seed=1) == [1.0] * 100
    assert flip_labels([1.0] * 100, keys, p=1.0, seed=1) == [2.0] * 100
    assert flip_labels([1.5, 1.25], ["a", "b"], p=1.0, seed=1) == [1.5, 1.75]
    assert flip_label(2.0) == 1.0


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_bad_p_is_an_input_error(p: float) -> None:
    with pytest.raises(InputError, match="flip probability"):
        flip_labels([1.0], ["k"], p=p, seed=0)


def test_bad_labels_and_lengths_are_input_errors() -> None:
    with pytest.raises(InputError, match="preference in"):
        flip_labels([0.0], ["k"], p=0.5, seed=0)
    with pytest.raises(InputError, match="differ in length"):
        flip_labels([1.0, 2.0], ["k"], p=0.5, seed=0)


@pytest.mark.slow
def test_same_seed_same_flips_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from pasture.simulate.noise import flip_mask\n"
        "print(''.join('1' if f else '0' for f in flip_mask([str(i) for i in range(300)], p=0.25, seed=11)))\n"
    )
    outs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True))
    here = "".join("1" if f else "0" for f in flip_mask([str(i) for i in range(300)], p=0.25, seed=11))
    assert outs[0].stdout.strip() == outs[1].stdout.strip() == here
