"""Confidence intervals by a paired bootstrap over instructions, and predicted head-to-head win rates.

Why: AlpacaEval's ``standard_error`` treats instructions as the only noise and its ``lc_standard_error`` is
the spread of per-row GLM predictions, which ignores that the GLM itself was fit on the same noisy rows.
Resampling instructions (the same resample for every model, hence "paired": differences between models
are resampled consistently) and refitting the GLM on each resample gives intervals that include the fit's
uncertainty. The refit holds C and the difficulty vector at their full-data values and the gamed-baseline
rows at their weights (they are a fixed regulariser, not data about the model). Definitions: docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.special import expit

from pasture.metrics.lc import LCInputs, LCResult, build_design
from pasture.records import _Record

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95


class BootstrapInterval(_Record):
    """A percentile bootstrap interval for one model's metric."""

    generator: str = Field(description="The evaluated model.")
    metric: str = Field(description="'win_rate' or 'length_controlled_winrate'.")
    estimate: float = Field(description="The metric on the full data (not the bootstrap mean).")
    low: float = Field(description="Lower percentile bound, (1 - level) / 2 quantile of the resampled metric.")
    high: float = Field(description="Upper percentile bound, (1 + level) / 2 quantile of the resampled metric.")
    se: float = Field(description="Standard deviation of the resampled metric (bootstrap standard error).")
    level: float = Field(description="Nominal coverage, e.g. 0.95.")
    n_resamples: int = Field(description="Bootstrap resamples.")
    seed: int = Field(description="Seed of the resampling (numpy default_rng).")


def resample_counts(n_instructions: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """How often each instruction is drawn in each resample: shape (n_resamples, n_instructions).

    Drawing n instructions with replacement is a multinomial count vector; one matrix serves every model,
    which is what makes the bootstrap paired.
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_instructions, np.full(n_instructions, 1.0 / n_instructions), size=n_resamples).astype(
        float
    )


def _interval(
    values: np.ndarray, estimate: float, generator: str, metric: str, level: float, seed: int
) -> BootstrapInterval:
    finite = values[np.isfinite(values)]
    lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2]) if finite.size else (np.nan, np.nan)
    return BootstrapInterval(
        generator=generator,
        metric=metric,
        estimate=estimate,
        low=float(lo),
        high=float(hi),
        se=float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
        level=level,
        n_resamples=len(values),
        seed=seed,
    )


def _row_counts(instructions: Sequence[str] | np.ndarray, order: pd.Index, counts: np.ndarray) -> np.ndarray:
    pos = order.get_indexer(pd.Index(instructions))
    if (pos < 0).any():
        raise ValueError("an instruction is missing from the resampling index")
    return counts[:, pos]


def bootstrap_win_rate(
    rows: pd.DataFrame,
    counts: np.ndarray,
    order: pd.Index,
    *,
    generator: str = "",
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
) -> tuple[BootstrapInterval, np.ndarray]:
    """Interval for ``win_rate`` (100 x mean of preference - 1 over scored pairs) from resample ``counts``
    over the instruction ``order``; returns the interval and the resampled values."""
    pref = rows["preference"].to_numpy(float)
    scored = ~np.isnan(pref)
    x = np.where(scored, pref - 1.0, 0.0)
    k = _row_counts(rows["instruction"].to_numpy(), order, counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = 100 * (k @ x) / (k @ scored.astype(float))
    estimate = float(100 * x[scored].mean()) if scored.any() else float("nan")
    return _interval(values, estimate, generator, "win_rate", level, seed), values


def fit_l1_logistic_batch(
    X: np.ndarray,
    p: np.ndarray,
    S: np.ndarray,
    C: float,
    beta0: np.ndarray,
    *,
    fixed: tuple[np.ndarray, np.ndarray] | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> np.ndarray:
    """Minimise ``||beta||_1 + C sum_j S_bj logloss(p_j, sigmoid(x_j beta)) + R(beta)`` for every weight row
    b at once, where ``R`` is an optional fixed quadratic ``g.(beta - beta0) + 1/2 (beta - beta0)' H (beta - beta0)``
    given as ``fixed = (g, H)`` (the same for every resample: :func:`bootstrap_lc` passes the gamed rows' loss
    this way).

    Proximal Newton: each step minimises the quadratic model plus the L1 term by coordinate descent (the
    design has 2-3 columns), then backtracks until the objective decreases; all resamples advance together
    as arrays, which is what makes 1,000 refits cheap. ``beta0`` (the full-data fit) is the warm start.
    Returns shape (n_weight_rows, n_features).
    """
    B, k = S.shape[0], X.shape[1]
    anchor = np.asarray(beta0, float)
    W = np.tile(anchor, (B, 1))
    XX = (X[:, :, None] * X[:, None, :]).reshape(len(X), k * k)
    g_fixed, h_fixed = fixed if fixed is not None else (np.zeros(k), np.zeros((k, k)))

    def objective(Wc: np.ndarray, Sc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = Wc @ X.T
        loss = np.maximum(Z, 0.0) + np.log1p(np.exp(-np.abs(Z))) - p * Z
        D0 = Wc - anchor
        quad = D0 @ g_fixed + 0.5 * np.einsum("bi,ij,bj->b", D0, h_fixed, D0)
        return C * np.einsum("bn,bn->b", Sc, loss) + quad + np.abs(Wc).sum(axis=1), Z

    f, Zall = objective(W, S)
    active = np.ones(B, dtype=bool)
    for _ in range(max_iter):
        if not active.any():
            break
        Wa, Sa, Z = W[active], S[active], Zall[active]
        Q = expit(Z)
        G = C * ((Sa * (Q - p)) @ X) + g_fixed + (Wa - anchor) @ h_fixed
        H = (C * ((Sa * Q * (1 - Q)) @ XX)).reshape(-1, k, k) + h_fixed + 1e-12 * np.eye(k)
        D = np.zeros_like(Wa)
        for _sweep in range(25):
            for j in range(k):
                hjj = H[:, j, j]
                r = G[:, j] + (H[:, j, :] * D).sum(axis=1) - hjj * D[:, j]
                u = Wa[:, j] - r / hjj
                u = np.sign(u) * np.maximum(np.abs(u) - 1.0 / hjj, 0.0)
                D[:, j] = u - Wa[:, j]
        decrease = (G * D).sum(axis=1) + np.abs(Wa + D).sum(1) - np.abs(Wa).sum(1)
        step = np.ones(len(Wa))
        fa = f[active]
        new, Znew = objective(Wa + D, Sa)
        for _ls in range(30):
            bad = new > fa + 1e-4 * step * decrease + 1e-12
            if not bad.any():
                break
            step[bad] *= 0.5
            new[bad], Znew[bad] = objective(Wa[bad] + step[bad, None] * D[bad], Sa[bad])
        Wn = Wa + step[:, None] * D
        done = np.abs(fa - new) <= tol * np.maximum(1.0, np.abs(new))
        idx = np.flatnonzero(active)
        W[idx] = Wn
        f[idx] = new
        Zall[idx] = Znew
        active[idx[done]] = False
    return W


def bootstrap_lc(
    rows: pd.DataFrame,
    inputs: LCInputs,
    full: LCResult,
    counts: np.ndarray,
    order: pd.Index,
    *,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
) -> tuple[BootstrapInterval, np.ndarray]:
    """Interval for LC: refit the GLM on every resample at the full-data C (``full.C``) and difficulty.

    A resample weights each of the model's rows by how often its instruction was drawn (in the fit and in
    the LC average); gamed-baseline rows keep their weights. Returns the interval and resampled values.
    """
    if full.method in ("not_fit", "not_identified"):  # no number, hence no interval either
        values = np.full(counts.shape[0], np.nan)
        return _interval(
            values, full.length_controlled_winrate, full.generator, "length_controlled_winrate", level, seed
        ), values
    if full.method == "reference":
        values = np.full(counts.shape[0], 50.0)
        return _interval(values, 50.0, full.generator, "length_controlled_winrate", level, seed), values
    design = build_design(rows, inputs)
    k_test = _row_counts(design.test_instructions, order, counts)
    k_fit = _row_counts(design.fit_instructions, order, counts)
    n_g = design.n_gamed
    beta0 = np.array(
        [full.coef_length, full.coef_difficulty, full.coef_model]
        if len(design.features) == 3
        else [full.coef_length, full.coef_model]
    )
    # The gamed rows are a fixed regulariser (the same rows and weights in every resample). Their loss enters as
    # its second-order expansion at the full-data fit: exact up to third order in the resampled coefficients'
    # shift (~0.1), and it removes two thirds of the rows every resample would otherwise evaluate.
    Xg, pg, wg = design.X[:n_g], design.p[:n_g], design.w[:n_g]
    qg = expit(Xg @ beta0)
    fixed = (full.C * (Xg.T @ (wg * (qg - pg))), full.C * ((Xg * (wg * qg * (1 - qg))[:, None]).T @ Xg))
    S = k_fit * design.w[n_g:]
    betas = fit_l1_logistic_batch(design.X[n_g:], design.p[n_g:], S, full.C, beta0, fixed=fixed)
    pred = expit(betas @ design.X_test.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = 100 * np.sum(k_test * pred, axis=1) / k_test.sum(axis=1)
    return _interval(
        values, full.length_controlled_winrate, full.generator, "length_controlled_winrate", level, seed
    ), values


def predicted_win_rate(
    coef_model: float,
    coef_difficulty: float,
    baseline_coef_model: float,
    baseline_coef_difficulty: float,
    difficulty: np.ndarray | pd.Series,
) -> float:
    """Predicted win rate (percent) of a model over a baseline at equal length, from their GLM coefficients.

    Both models were fit against the same reference, so their log-odds against each other on instruction i
    is the difference of their log-odds against it: ``100 mean_i sigmoid((c_m - c_b) + (b_m - b_b) d_i)``.
    The reference itself has all coefficients 0, which makes this the LC of m against b.
    """
    d = np.asarray(difficulty, dtype=float)
    return float(
        100 * expit((coef_model - baseline_coef_model) + (coef_difficulty - baseline_coef_difficulty) * d).mean()
    )


def predicted_win_rate_matrix(results: Sequence[LCResult], difficulty: np.ndarray | pd.Series) -> pd.DataFrame:
    """:func:`predicted_win_rate` for every ordered pair: row = model, column = baseline (percent)."""
    names = [r.generator for r in results]
    c = np.array([r.coef_model for r in results])
    b = np.array([r.coef_difficulty for r in results])
    d = np.asarray(difficulty, dtype=float)
    logits = (c[:, None, None] - c[None, :, None]) + (b[:, None, None] - b[None, :, None]) * d[None, None, :]
    return pd.DataFrame(100 * expit(logits).mean(axis=2), index=names, columns=names)
