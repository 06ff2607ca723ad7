"""Instruction difficulty for the LC GLM: read AlpacaEval's vector or estimate one from many models.

Why: LC's GLM has a per-instruction term ``b * d_i`` so that a model is not credited or blamed for how
hard its instructions are. AlpacaEval ships ``d`` only on the Hugging Face hub; offline (or on another eval
set) pasture estimates it by a joint fit over every model it has judgments for (docs/metrics.md,
"Instruction difficulty").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from pasture.errors import InputError

MIN_MODELS_FOR_DIFFICULTY = 5
"""Fewest models (besides the reference) from which a per-instruction difficulty is estimated."""


@dataclass(frozen=True)
class DifficultyEstimate:
    """An estimated difficulty vector (instruction text -> d_i), or None when too few models.

    ``scale``/``shift`` are the affine map applied to the raw joint-fit effects to put them on the scale of
    published GLM coefficients (1 and 0 when not calibrated); ``notes`` say what was done.
    """

    difficulty: pd.Series | None
    n_models: int
    n_instructions: int
    scale: float = 1.0
    shift: float = 0.0
    calibrated_on: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def read_difficulty_file(path: str | Path, instructions: Sequence[str] | None = None) -> pd.Series:
    """A difficulty vector from a CSV: columns ``instruction`` and ``instruction_difficulty`` (aligned by
    text), or AlpacaEval's ``instruction_difficulty.csv`` (first column = eval-set position), which needs
    the eval set's ``instructions`` in order to be aligned by text."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read difficulty CSV ({type(exc).__name__})", path=path) from None
    value_col = "instruction_difficulty" if "instruction_difficulty" in frame.columns else frame.columns[-1]
    if "instruction" in frame.columns:
        series = pd.Series(frame[value_col].to_numpy(float), index=frame["instruction"].astype(str).to_numpy())
    else:
        if instructions is None:
            raise InputError("positional difficulty file: pass the eval set to align it by text", path=path)
        positions = frame.iloc[:, 0].to_numpy()
        if len(frame) != len(instructions) or sorted(positions) != list(range(len(instructions))):
            raise InputError(
                f"positional difficulty file has {len(frame)} rows, the eval set {len(instructions)}", path=path
            )
        texts = np.asarray(list(instructions), dtype=object)[positions.astype(int)]
        series = pd.Series(frame[value_col].to_numpy(float), index=texts)
    if series.index.duplicated().any():
        raise InputError("difficulty file repeats an instruction", path=path, field="instruction")
    if series.isna().any():
        raise InputError("difficulty file has empty values", path=path, field=str(value_col))
    series.name = "instruction_difficulty"
    return series


def _model_rows(pairs: pd.DataFrame) -> pd.DataFrame:
    """Scored rows of non-reference models, with the standardised length feature of the LC GLM."""
    frame = pairs
    if "generator_1" in frame.columns:
        frame = frame[frame["generator_1"] != frame["generator_2"]]
    parts = []
    for gen, g in frame.groupby("generator_2", sort=True):
        delta = g["len_1"].to_numpy(float) - g["len_2"].to_numpy(float)
        sd = float(np.std(delta, ddof=1)) if len(delta) > 1 else 0.0
        if not np.isfinite(sd) or sd == 0:
            continue
        part = pd.DataFrame(
            {
                "generator": gen,
                "instruction": g["instruction"].to_numpy(),
                "t": np.tanh(delta / sd),
                "p": g["preference"].to_numpy(float) - 1.0,
            }
        )
        parts.append(part[part["p"].notna()])
    if not parts:
        return pd.DataFrame(columns=["generator", "instruction", "t", "p"])
    return pd.concat(parts, ignore_index=True)


def estimate_difficulty(
    pairs: pd.DataFrame,
    *,
    instructions: Sequence[str] | None = None,
    min_models: int = MIN_MODELS_FOR_DIFFICULTY,
    ridge: float = 1.0,
    coefficients: pd.DataFrame | None = None,
    fix_published_slopes: bool = False,
) -> DifficultyEstimate:
    """Estimate d_i by one joint fit over all models: ``logit P(model m wins on i) = a_m t_mi + c_m + d_i``.

    ``t_mi = tanh((len_1 - len_2) / sd_m)`` is the GLM's length feature, ``a_m`` and ``c_m`` are
    per-model length slopes and abilities (free; with ``fix_published_slopes`` a model's ``a_m`` is held at
    its published coefficient when ``coefficients`` has one, so that the instruction effects do not absorb
    part of a length effect the official fit attributed to length), ``d_i`` the instruction effect, fit by maximum likelihood on the
    soft labels with a ridge ``ridge/2 * sum d_i^2`` (it fixes the location and shrinks instructions seen by
    few models). Instructions in ``instructions`` that no model answered get d = 0 (noted).

    ``coefficients`` (published per-model GLM coefficients, columns length/difficulty/model, see
    :func:`pasture.metrics.gamed.read_glm_weights`) calibrate the scale: the affine map ``s d + t`` that
    maximises the likelihood of the models' rows under their published coefficients is applied, so the
    estimate lives on the published scale (needed to rebuild the gamed baselines from their coefficients).
    With fewer than ``min_models`` models the estimate is None and the notes say why.
    """
    rows = _model_rows(pairs)
    models = sorted(rows["generator"].unique()) if len(rows) else []
    order = list(instructions) if instructions is not None else sorted(rows["instruction"].unique())
    if len(models) < min_models:
        return DifficultyEstimate(
            difficulty=None,
            n_models=len(models),
            n_instructions=0,
            notes=(
                f"instruction difficulty not estimated: {len(models)} model(s) < {min_models} needed; "
                "LC falls back to the length-only GLM",
            ),
        )
    inst_index = pd.Index(order)
    extra = sorted(set(rows["instruction"]) - set(order))
    if extra:
        inst_index = inst_index.append(pd.Index(extra))
    ii = inst_index.get_indexer(rows["instruction"])
    mm = pd.Index(models).get_indexer(rows["generator"])
    n_m, n_i = len(models), len(inst_index)
    fixed_slope = np.zeros(n_m)
    is_fixed = np.zeros(n_m, dtype=bool)
    if fix_published_slopes and coefficients is not None:
        known = coefficients[(coefficients[["length", "difficulty", "model"]] != 0).any(axis=1)]
        is_fixed = np.array([m in known.index for m in models])
        fixed_slope = np.array([float(known.loc[m, "length"]) if m in known.index else 0.0 for m in models])
    offset = fixed_slope[mm] * rows["t"].to_numpy(float)
    t = np.where(is_fixed[mm], 0.0, rows["t"].to_numpy(float))  # a held slope has no free column
    p = rows["p"].to_numpy(float)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, c, d = theta[:n_m], theta[n_m : 2 * n_m], theta[2 * n_m :]
        z = offset + a[mm] * t + c[mm] + d[ii]
        f = float(np.sum(np.logaddexp(0.0, z) - p * z) + 0.5 * ridge * np.sum(d**2))
        r = expit(z) - p
        grad = np.concatenate(
            [
                np.bincount(mm, r * t, n_m),
                np.bincount(mm, r, n_m),
                np.bincount(ii, r, n_i) + ridge * d,
            ]
        )
        return f, grad

    # Newton's method with backtracking: the loss is convex, so this converges to the optimum to machine
    # precision in a few steps (an estimate that depends on an optimiser's stopping rule would not be
    # reproducible to the 1e-6 LC agreement pinned in the tests).
    n_par = 2 * n_m + n_i
    rows_idx = np.arange(len(t))
    jac = sparse.csr_matrix(
        (
            np.concatenate([t, np.ones(len(t)), np.ones(len(t))]),
            (np.tile(rows_idx, 3), np.concatenate([mm, n_m + mm, 2 * n_m + ii])),
        ),
        shape=(len(t), n_par),
    )
    prior = np.concatenate([np.zeros(2 * n_m), np.full(n_i, ridge)])
    theta = np.zeros(n_par)
    f, grad = loss(theta)
    for _ in range(100):
        z = offset + jac @ theta
        q = expit(z)
        hess = (jac.T @ sparse.diags(q * (1 - q)) @ jac).toarray() + np.diag(prior + 1e-9)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while True:
            f_new, grad_new = loss(theta - size * step)
            if f_new <= f + 1e-12 * abs(f) or size < 1e-8:
                break
            size /= 2
        theta, f, grad = theta - size * step, f_new, grad_new
        if np.abs(grad).max() < 1e-9:
            break
    raw = pd.Series(theta[2 * n_m :], index=inst_index, name="instruction_difficulty")
    seen = set(rows["instruction"])
    unseen = [s for s in order if s not in seen]
    notes = [f"instruction difficulty estimated by a joint fit over {n_m} models ({len(rows)} judged pairs)"]
    if is_fixed.any():
        notes.append(f"length slopes of {int(is_fixed.sum())} models held at their published coefficients")
    if unseen:
        notes.append(f"{len(unseen)} instruction(s) answered by no model get difficulty 0")
    calibrated_on: tuple[str, ...] = ()
    scale, shift = 1.0, 0.0
    if coefficients is not None:
        scale, shift, calibrated_on = _calibrate(rows, raw, coefficients)
        if calibrated_on:
            notes.append(
                f"difficulty scale calibrated to the published coefficients of {len(calibrated_on)} models "
                f"(d = {scale:.3f} x raw + {shift:.3f})"
            )
        else:
            notes.append("no model has published coefficients: difficulty scale not calibrated")
    values = raw * scale + shift
    return DifficultyEstimate(
        difficulty=values.loc[order] if instructions is not None else values,
        n_models=n_m,
        n_instructions=len(order),
        scale=scale,
        shift=shift,
        calibrated_on=calibrated_on,
        notes=tuple(notes),
    )


def _calibrate(rows: pd.DataFrame, raw: pd.Series, coefficients: pd.DataFrame) -> tuple[float, float, tuple[str, ...]]:
    """(s, t) maximising the likelihood of rows under published coefficients with d = s raw + t."""
    coefs = coefficients[(coefficients[["length", "difficulty", "model"]] != 0).any(axis=1)]
    known = rows[rows["generator"].isin(coefs.index)]
    if known.empty:
        return 1.0, 0.0, ()
    a = coefs.loc[known["generator"], "length"].to_numpy(float)
    b = coefs.loc[known["generator"], "difficulty"].to_numpy(float)
    c = coefs.loc[known["generator"], "model"].to_numpy(float)
    d = raw.loc[known["instruction"]].to_numpy(float)
    t, p = known["t"].to_numpy(float), known["p"].to_numpy(float)
    base = a * t + c

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = base + b * (theta[0] * d + theta[1])
        r = expit(z) - p
        return float(-np.sum(p * log_expit(z) + (1 - p) * log_expit(-z))), np.array([np.sum(r * b * d), np.sum(r * b)])

    res = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1]), tuple(sorted(known["generator"].unique()))
