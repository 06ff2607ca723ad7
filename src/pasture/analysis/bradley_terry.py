"""Bradley–Terry leaderboards from pairwise battles, with bootstrap intervals over instructions.

Why our own fit: a Bradley–Terry model is a logistic regression with one column per model (+1 in the
model slot, -1 in the reference slot) and, for style control, extra columns of per-battle covariates.
Fitting it directly with Newton's method on soft labels (preference - 1) keeps ties and soft judges exact,
lets the reference's strength be fixed at 0 (its column is simply absent), and takes milliseconds, so
bootstrap intervals are cheap. Definitions are in docs/trust.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from pasture.errors import InputError

BATTLE_COLUMNS = ("instruction", "generator_1", "generator_2", "preference")


@dataclass(frozen=True)
class BTFit:
    """A fitted Bradley–Terry model.

    ``strengths`` are log-odds of beating the reference (whose strength is 0) at zero covariate values;
    ``coefficients`` are the covariates' log-odds effects (empty without covariates).
    """

    reference: str
    strengths: pd.Series
    coefficients: pd.Series
    n_battles: int
    n_failed: int
    converged: bool


@dataclass(frozen=True)
class BTLeaderboard:
    """Scores with bootstrap intervals; ``table`` has one row per model, best first.

    Columns of ``table``: ``score`` (100 x sigmoid(strength): the win rate against the reference at zero
    style difference), ``ci_low``/``ci_high`` (percentile bootstrap interval of ``score``), ``strength``
    (log-odds), ``n_battles`` (scored battles the model took part in) and ``n_failed``.
    """

    table: pd.DataFrame
    fit: BTFit
    coefficients_ci: pd.DataFrame
    separability: float
    n_bootstrap: int
    confidence: float
    notes: tuple[str, ...] = field(default=())


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logistic_fit(
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    offset: np.ndarray | None = None,
    l2: float = 1e-6,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> tuple[np.ndarray, bool]:
    """Weighted logistic regression without intercept on soft labels ``y`` in [0, 1] (Newton's method).

    ``offset`` is a fixed per-row term added to the linear predictor (used to score a model with style
    coefficients held fixed).

    ``l2`` is a ridge penalty (on the mean log-likelihood scale) that only keeps the fit finite when a model
    wins or loses every battle; at the default it moves a strength by far less than 0.01 points.
    Returns (coefficients, converged).
    """
    n, k = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    total = w.sum()
    beta = np.zeros(k)
    off = np.zeros(n) if offset is None else np.asarray(offset, dtype=float)
    converged = False
    for _ in range(max_iter):
        p = _sigmoid(X @ beta + off)
        grad = X.T @ (w * (y - p)) / total - l2 * beta
        hess = (X * (w * p * (1 - p))[:, None]).T @ X / total + l2 * np.eye(k)
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    return beta, converged


def _check_battles(battles: pd.DataFrame) -> None:
    missing = [c for c in BATTLE_COLUMNS if c not in battles.columns]
    if missing:
        raise InputError(f"battles need columns {list(BATTLE_COLUMNS)}; missing {missing}")


def infer_reference(battles: pd.DataFrame) -> str:
    """The reference generator when every battle has the same ``generator_1``; otherwise an InputError."""
    _check_battles(battles)
    refs = battles["generator_1"].unique()
    if len(refs) != 1:
        raise InputError(f"battles have {len(refs)} different reference generators; name the reference explicitly")
    return str(refs[0])


def _design(
    battles: pd.DataFrame, models: Sequence[str], feature_columns: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    index = {m: i for i, m in enumerate(models)}
    n = len(battles)
    X = np.zeros((n, len(models) + len(feature_columns)))
    rows = np.arange(n)
    g2 = battles["generator_2"].map(index)
    g1 = battles["generator_1"].map(index)
    has2 = g2.notna().to_numpy()
    has1 = g1.notna().to_numpy()
    X[rows[has2], g2[has2].astype(int).to_numpy()] += 1.0
    X[rows[has1], g1[has1].astype(int).to_numpy()] -= 1.0
    for j, col in enumerate(feature_columns):
        X[:, len(models) + j] = battles[col].to_numpy(dtype=float)
    y = battles["preference"].to_numpy(dtype=float) - 1.0
    return X, y


def fit_bradley_terry(
    battles: pd.DataFrame,
    *,
    reference: str | None = None,
    feature_columns: Sequence[str] = (),
    weights: np.ndarray | None = None,
    l2: float = 1e-6,
) -> BTFit:
    """Fit P(generator_2 beats generator_1) = sigmoid(s_2 - s_1 + coefficients · features).

    ``battles`` has one row per battle with ``generator_1``, ``generator_2``, ``preference`` in [1, 2]
    (2 = generator_2 wins; soft values allowed) and the named ``feature_columns`` (each a per-battle
    difference, generator_2 minus generator_1, used exactly as given: never centred or rescaled over the
    battle set). Battles without a preference (NaN) are counted in ``n_failed`` and left out. The
    reference's strength is fixed at 0.
    """
    _check_battles(battles)
    for col in feature_columns:
        if col not in battles.columns:
            raise InputError(f"feature column {col!r} is not in the battles table")
    reference = reference if reference is not None else infer_reference(battles)
    ok = battles["preference"].notna().to_numpy()
    scored = battles.loc[ok]
    if scored.empty:
        raise InputError("no scored battles to fit (every preference is missing)")
    w = None if weights is None else np.asarray(weights, dtype=float)[ok]
    generators = pd.unique(pd.concat([scored["generator_1"], scored["generator_2"]]))
    if reference not in set(generators):
        raise InputError(f"reference {reference!r} takes part in no scored battle")
    models = sorted(str(g) for g in generators if g != reference)
    X, y = _design(scored, models, feature_columns)
    beta, converged = logistic_fit(X, y, w, l2=l2)
    return BTFit(
        reference=reference,
        strengths=pd.Series(beta[: len(models)], index=pd.Index(models, name="model"), name="strength"),
        coefficients=pd.Series(beta[len(models) :], index=pd.Index(list(feature_columns), name="feature")),
        n_battles=int(ok.sum()),
        n_failed=int((~ok).sum()),
        converged=converged,
    )


def instruction_bootstrap_weights(
    instructions: pd.Series, n_bootstrap: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-battle multiplicities for bootstrap resamples of INSTRUCTIONS (not rows).

    Each resample draws as many instructions as there are, with replacement; a battle's weight is how often
    its instruction was drawn, so all battles of one instruction move together (they share its difficulty).
    Returns (codes of each battle's instruction, counts array of shape (n_bootstrap, n_instructions)).
    """
    codes, uniques = pd.factorize(instructions)
    rng = np.random.default_rng(seed)
    n = len(uniques)
    draws = rng.integers(0, n, size=(n_bootstrap, n))
    counts = np.zeros((n_bootstrap, n))
    for b in range(n_bootstrap):
        counts[b] = np.bincount(draws[b], minlength=n)
    return codes, counts


def separability(ci_low: pd.Series, ci_high: pd.Series) -> float:
    """Fraction of model pairs whose intervals do not overlap (NaN with fewer than two models)."""
    names = list(ci_low.index)
    pairs = list(combinations(names, 2))
    if not pairs:
        return float("nan")
    apart = sum(1 for a, b in pairs if ci_low[a] > ci_high[b] or ci_low[b] > ci_high[a])
    return apart / len(pairs)


def bradley_terry_leaderboard(
    battles: pd.DataFrame,
    *,
    reference: str | None = None,
    feature_columns: Sequence[str] = (),
    n_bootstrap: int = 100,
    confidence: float = 0.95,
    seed: int = 0,
    l2: float = 1e-6,
) -> BTLeaderboard:
    """Bradley–Terry scores of every model against ``reference`` with instruction-bootstrap intervals.

    ``score`` = 100 x sigmoid(strength): the probability of beating the reference (strength 0) at zero
    covariate values, i.e. on the win-rate-against-reference scale. Intervals are percentile intervals over
    ``n_bootstrap`` resamples of instructions (``seed`` fixes them). ``separability`` is the fraction of
    model pairs whose intervals do not overlap.
    """
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be in (0, 1), got {confidence}")
    if n_bootstrap < 0:
        raise InputError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    fit = fit_bradley_terry(battles, reference=reference, feature_columns=feature_columns, l2=l2)
    models = list(fit.strengths.index)
    boot_s = np.full((n_bootstrap, len(models)), np.nan)
    boot_c = np.full((n_bootstrap, len(feature_columns)), np.nan)
    if n_bootstrap:
        codes, counts = instruction_bootstrap_weights(battles["instruction"], n_bootstrap, seed=seed)
        for b in range(n_bootstrap):
            w = counts[b][codes]
            keep = w > 0
            sub = battles.loc[keep]
            if sub["preference"].notna().sum() == 0:
                continue
            try:
                bfit = fit_bradley_terry(
                    sub, reference=fit.reference, feature_columns=feature_columns, weights=w[keep], l2=l2
                )
            except InputError:
                continue
            boot_s[b] = bfit.strengths.reindex(models).to_numpy()
            boot_c[b] = bfit.coefficients.to_numpy()
    alpha = (1 - confidence) / 2
    scores = 100 * _sigmoid(fit.strengths.to_numpy())
    with np.errstate(all="ignore"):
        boot_scores = 100 * _sigmoid(boot_s)
        lo = np.nanquantile(boot_scores, alpha, axis=0) if n_bootstrap else np.full(len(models), np.nan)
        hi = np.nanquantile(boot_scores, 1 - alpha, axis=0) if n_bootstrap else np.full(len(models), np.nan)
    ok = battles["preference"].notna()
    involved = pd.concat([battles.loc[ok, "generator_1"], battles.loc[ok, "generator_2"]]).value_counts()
    failed = pd.concat([battles.loc[~ok, "generator_1"], battles.loc[~ok, "generator_2"]]).value_counts()
    table = pd.DataFrame(
        {
            "score": scores,
            "ci_low": lo,
            "ci_high": hi,
            "strength": fit.strengths.to_numpy(),
            "n_battles": involved.reindex(models).fillna(0).astype(int).to_numpy(),
            "n_failed": failed.reindex(models).fillna(0).astype(int).to_numpy(),
        },
        index=pd.Index(models, name="model"),
    ).sort_values("score", ascending=False)
    coef_ci = pd.DataFrame(
        {
            "coefficient": fit.coefficients.to_numpy(),
            "ci_low": np.nanquantile(boot_c, alpha, axis=0) if n_bootstrap and feature_columns else np.nan,
            "ci_high": np.nanquantile(boot_c, 1 - alpha, axis=0) if n_bootstrap and feature_columns else np.nan,
        },
        index=pd.Index(list(feature_columns), name="feature"),
    )
    notes: list[str] = []
    if not fit.converged:
        notes.append("the Bradley-Terry fit did not converge; scores may be inaccurate")
    if fit.n_failed:
        notes.append(f"{fit.n_failed} battles without a parsed verdict were left out")
    return BTLeaderboard(
        table=table,
        fit=fit,
        coefficients_ci=coef_ci,
        separability=separability(table["ci_low"], table["ci_high"]) if n_bootstrap else float("nan"),
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        notes=tuple(notes),
    )


def battles_from_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """The battles of a :func:`~pasture.metrics.pairs.pair_table`: one row per judged pair, all columns kept."""
    _check_battles(pairs)
    return pairs.reset_index(drop=True)
