"""Anytime-valid intervals for a win rate judged one instruction at a time, and the stopping rules they allow.

Why: a full AlpacaEval run buys one judgment per instruction, but most questions a user asks ("is B better than
A?", "what is this model's win rate to ±2.5 points?") are answered long before the last instruction. Looking at
an ordinary interval after every judgment and stopping when it looks good inflates its error rate; a
**confidence sequence** keeps its coverage at every time simultaneously, so stopping whenever it is narrow
enough, or excludes zero, is valid (optional stopping).

What is computed (definitions in docs/metrics.md, "Budget-aware evaluation"):

* Observations are per-instruction values in [0, 1] taken in a seeded random order of the eval set, without
  replacement: ``preference - 1`` for a win rate, ``(d + 1) / 2`` for a paired difference ``d`` of two models'
  ``preference - 1`` on the same instruction.
* The estimand is the finite-population mean over the eval set, the number the full run would give.
* The interval is the predictable-plug-in empirical-Bernstein confidence sequence of Waudby-Smith & Ramdas
  (JRSS-B 2023, "Estimating means of bounded random variables by betting", Thm. 2) in its sampling-without-
  replacement form (Waudby-Smith & Ramdas 2020): with S_{i-1} the sum of the first i-1 observations, the
  conditional mean of the i-th is μ_i = (Nμ − S_{i-1}) / (N − i + 1), and
  exp(Σ λ_i (X_i − μ_i) − Σ v_i ψ_E(λ_i)) is a nonnegative supermartingale for predictable λ_i ∈ [0, 1),
  v_i = 4 (X_i − μ̂_{i-1})², ψ_E(λ) = (−log(1 − λ) − λ) / 4. Solving Ville's inequality for μ on both sides
  (α/2 each) gives μ ∈ [(A_t − R_t) / B_t, (A_t + R_t) / B_t] with
  A_t = Σ λ_i (X_i + S_{i-1} / (N − i + 1)), B_t = Σ λ_i N / (N − i + 1), R_t = log(2/α) + Σ v_i ψ_E(λ_i).
  The running intersection is reported (still valid). Once all N are observed the mean is known exactly, and
  the interval is that point.

Pure functions over arrays; no I/O. The guarantee covers the raw win rate and paired differences only; an LC
win rate computed after stopping is not covered by it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from pasture.errors import InputError
from pasture.records import _Record

LAMBDA_CAP = 0.5
"""Upper bound on the betting fraction λ_i (the paper's c = 1/2), keeping ψ_E(λ) finite and the bound tight."""


def confidence_sequence(x: np.ndarray, population: int, *, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper ends, after each of the observations ``x`` (in [0, 1], in sampling order), of a
    (1 − alpha) confidence sequence for the mean of a population of ``population`` values sampled without
    replacement; see the module docstring. Both arrays have ``len(x)`` entries and are monotone (running
    intersection) and clipped to [0, 1]; after the last of ``population`` observations both are the exact mean.
    """
    x = np.asarray(x, dtype=float)
    t = len(x)
    if t > population:
        raise InputError(f"{t} observations from a population of {population}: sampled without replacement?")
    if t == 0:
        return np.empty(0), np.empty(0)
    if np.any((x < 0) | (x > 1)) or not np.all(np.isfinite(x)):
        raise InputError("observations must lie in [0, 1]")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    i = np.arange(1, t + 1, dtype=float)
    csum = np.cumsum(x)
    s_prev = np.r_[0.0, csum[:-1]]
    # predictable estimates: mean and variance from observations 1..i-1, with the paper's priors (1/2, 1/4)
    mu_hat = (0.5 + csum) / (i + 1)  # μ̂_i uses x_1..x_i
    mu_hat_prev = np.r_[0.5, mu_hat[:-1]]
    sq = np.cumsum((x - mu_hat) ** 2)
    var_prev = np.r_[0.25, (0.25 + sq[:-1]) / i[1:]]  # σ̂²_{i-1} = (1/4 + Σ_{j<i} (x_j − μ̂_j)²) / i
    log_term = np.log(2.0 / alpha)
    lam = np.minimum(np.sqrt(2.0 * log_term / (var_prev * i * np.log1p(i))), LAMBDA_CAP)
    v = 4.0 * (x - mu_hat_prev) ** 2
    psi = (-np.log1p(-lam) - lam) / 4.0
    remaining = population - i + 1.0
    a = np.cumsum(lam * (x + s_prev / remaining))
    b = np.cumsum(lam * population / remaining)
    r = log_term + np.cumsum(v * psi)
    low = np.maximum.accumulate(np.clip((a - r) / b, 0.0, 1.0))
    high = np.maximum(np.minimum.accumulate(np.clip((a + r) / b, 0.0, 1.0)), low)
    if t == population:  # the whole population was seen: its mean is known, not estimated
        low[-1] = high[-1] = csum[-1] / population
    return low, high


class SequentialResult(_Record):
    """Where a sequential run stopped and what it concluded; fields defined in docs/metrics.md."""

    rule: Literal["target_width", "decide"] = Field(description="The stopping rule that was run.")
    population: int = Field(description="Instructions in the eval set (the full run's size).")
    n_used: int = Field(description="Instructions judged when the rule stopped (the prefix of the seeded order).")
    stopped: bool = Field(description="True if the rule was met before the eval set ran out.")
    estimate: float = Field(description="Mean of the observations used, on the 0–100 scale of the target.")
    low: float = Field(description="Lower end of the confidence sequence at the stop, 0–100 scale.")
    high: float = Field(description="Upper end at the stop, 0–100 scale.")
    alpha: float = Field(description="Error rate the confidence sequence guarantees at any stopping time.")
    decision: int = Field(
        default=0, description="For 'decide': +1 if the first model is better, -1 if worse, 0 if undecided."
    )

    @property
    def fraction_used(self) -> float:
        """Share of the full run's judgments this run needed."""
        return self.n_used / self.population


def run_to_width(
    x: np.ndarray, population: int, *, half_width: float, alpha: float = 0.05, min_n: int = 10
) -> SequentialResult:
    """Judge in order until the win rate's interval is at most ±``half_width`` points (0–100 scale).

    ``x`` holds ``preference - 1`` per instruction in the seeded order (the full order, or as far as it was
    judged); the run stops at the first prefix of at least ``min_n`` observations that meets the width.
    """
    low, high = confidence_sequence(x, population, alpha=alpha)
    ok = np.flatnonzero((high - low) / 2 * 100 <= half_width)
    ok = ok[ok >= min_n - 1]
    stop = int(ok[0]) if len(ok) else len(x) - 1
    return SequentialResult(
        rule="target_width",
        population=population,
        n_used=stop + 1,
        stopped=bool(len(ok)),
        estimate=float(np.mean(x[: stop + 1]) * 100),
        low=float(low[stop] * 100),
        high=float(high[stop] * 100),
        alpha=alpha,
    )


def run_to_decision(
    x_a: np.ndarray, x_b: np.ndarray, population: int, *, alpha: float = 0.05, min_n: int = 10
) -> SequentialResult:
    """Judge two models on the same instructions in order until the paired difference excludes 0.

    ``x_a`` and ``x_b`` are ``preference - 1`` of model A and model B against the same reference, per
    instruction, in the same seeded order. The difference d = x_a - x_b in [-1, 1] is mapped to (d + 1) / 2;
    its confidence sequence excluding 0.5 decides the sign. The probability that a decision's sign differs
    from the full run's is at most alpha / 2 (one side of the interval), at whatever time the run stops.
    Estimates are reported as the difference in win-rate points (A − B).
    """
    x_a = np.asarray(x_a, dtype=float)
    x_b = np.asarray(x_b, dtype=float)
    if x_a.shape != x_b.shape:
        raise InputError("both models need a judgment on the same instructions")
    z = (x_a - x_b + 1.0) / 2.0
    low, high = confidence_sequence(z, population, alpha=alpha)
    decided = np.flatnonzero((low > 0.5) | (high < 0.5))
    decided = decided[decided >= min_n - 1]
    stop = int(decided[0]) if len(decided) else len(z) - 1
    decision = 1 if low[stop] > 0.5 else -1 if high[stop] < 0.5 else 0
    return SequentialResult(
        rule="decide",
        population=population,
        n_used=stop + 1,
        stopped=bool(len(decided)),
        estimate=float(np.mean(x_a[: stop + 1] - x_b[: stop + 1]) * 100),
        low=float((2 * low[stop] - 1) * 100),
        high=float((2 * high[stop] - 1) * 100),
        alpha=alpha,
        decision=decision,
    )


def seeded_order(n: int, seed: int) -> np.ndarray:
    """The judging order of an eval set of ``n`` instructions: a permutation fixed by ``seed``.

    Stopping happens on a prefix of this order, never on completion order (judge latency tracks output length,
    so completion order would bias the sample).
    """
    return np.random.default_rng(seed).permutation(n)
