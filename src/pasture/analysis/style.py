"""Style control: Bradley–Terry scores read at zero style difference between model and reference.

Why raw differences: Arena-Hard centres its style features over the battle set, so the point at which
scores are read (the mean style difference of whichever models are present) moves whenever a model is
added, and every score shifts with it (arena-hard-auto #50). Here each feature is a per-battle difference,
model minus reference, computed from the two outputs alone; a score is the model's win rate against the
reference when both outputs have the same length and markdown densities. Definitions in docs/trust.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from pasture.analysis.bradley_terry import (
    bradley_terry_leaderboard,
    fit_bradley_terry,
    infer_reference,
    instruction_bootstrap_weights,
    logistic_fit,
    separability,
)
from pasture.errors import InputError

StyleFeature = Literal["length", "headers", "lists", "bold"]
STYLE_FEATURES: tuple[StyleFeature, ...] = ("length", "headers", "lists", "bold")
"""Every style feature, in the order of the fit's columns."""

DENSITY_PER_CHARS = 1000
"""Markdown densities are counts per this many characters of the output."""

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_HEADER = re.compile(r"^#{1,6}[ \t]+\S", re.MULTILINE)
_LIST = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)])[ \t]+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+?\*\*|__[^_\n]+?__")


def markdown_counts(text: str) -> tuple[int, int, int]:
    """(headers, list items, bold spans) in ``text``, outside fenced code blocks.

    A header is a line starting with 1-6 ``#`` and a space; a list item a line starting with ``-``, ``*``,
    ``+`` or ``1.``/``1)`` and a space (any indent); a bold span ``**...**`` or ``__...__`` on one line.
    """
    prose = _FENCE.sub("", text)
    return len(_HEADER.findall(prose)), len(_LIST.findall(prose)), len(_BOLD.findall(prose))


def style_profile(texts: Sequence[str] | pd.Series) -> pd.DataFrame:
    """Per text: ``length`` (characters) and ``headers``/``lists``/``bold`` densities per 1,000 characters."""
    rows = []
    for text in texts:
        n = len(text)
        h, li, b = markdown_counts(text)
        scale = DENSITY_PER_CHARS / n if n else 0.0
        rows.append((n, h * scale, li * scale, b * scale))
    return pd.DataFrame(rows, columns=["length", "headers", "lists", "bold"])


def style_features(pairs: pd.DataFrame, features: Sequence[StyleFeature] = STYLE_FEATURES) -> pd.DataFrame:
    """Per-battle raw style differences (output_2 minus output_1), one column ``style_<feature>`` each.

    ``length`` is the normalised difference (len_2 - len_1) / (len_2 + len_1) in [-1, 1] (0 when both are
    empty); ``headers``, ``lists``, ``bold`` are differences of densities per 1,000 characters. Nothing is
    centred or scaled over the battle set: a battle's features depend on its two outputs only.
    """
    features = check_features(features)
    p1 = style_profile(pairs["output_1"].tolist())
    p2 = style_profile(pairs["output_2"].tolist())
    out = pd.DataFrame(index=pairs.index)
    for f in features:
        if f == "length":
            total = (p2["length"] + p1["length"]).to_numpy(dtype=float)
            diff = (p2["length"] - p1["length"]).to_numpy(dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                out["style_length"] = np.where(total > 0, diff / np.where(total > 0, total, 1), 0.0)
        else:
            out[f"style_{f}"] = (p2[f] - p1[f]).to_numpy(dtype=float)
    return out


def check_features(features: Sequence[str]) -> tuple[StyleFeature, ...]:
    """Validate a feature selection (any non-empty subset of STYLE_FEATURES, no repeats)."""
    chosen = tuple(features)
    unknown = [f for f in chosen if f not in STYLE_FEATURES]
    if unknown:
        raise InputError(f"unknown style feature(s) {unknown}; choose from {list(STYLE_FEATURES)}")
    if len(set(chosen)) != len(chosen):
        raise InputError(f"repeated style feature in {list(chosen)}")
    return chosen  # type: ignore[return-value]


SUPPORT_LENGTH = 0.25
"""A battle "supports" reading a score at zero style difference when |length feature| <= this, i.e. the
two outputs' lengths are within a factor of (1 + 0.25) / (1 - 0.25) = 5/3 of each other."""

Pooling = Literal["audited", "per_model", "shared", "anchored"]
POOLINGS: tuple[Pooling, ...] = ("audited", "per_model", "shared", "anchored")
"""Every pooling, the default first."""


@dataclass(frozen=True)
class StyleLeaderboard:
    """Style-controlled scores; see :func:`style_controlled_leaderboard` and docs/trust.md.

    ``table`` (one row per model, best first): ``score`` (100 x sigmoid(strength), the win rate against the
    reference at zero style difference), ``ci_low``/``ci_high`` (instruction-bootstrap percentile interval),
    ``strength`` (log-odds), ``support`` (fraction of the model's battles with |length feature| <= 0.25:
    how much of its data lies near zero style difference; a small value means the score is an
    extrapolation), ``n_battles``, ``n_failed``. ``coefficients`` holds the style coefficients (log-odds
    per unit of feature), one row per model for ``per_model`` pooling and one row otherwise. ``anchors``: the
    models whose battles estimated the coefficients (``audited`` and ``anchored`` pooling).
    """

    table: pd.DataFrame
    coefficients: pd.DataFrame
    separability: float
    features: tuple[StyleFeature, ...]
    pooling: Pooling
    reference: str
    n_bootstrap: int
    confidence: float
    notes: tuple[str, ...] = field(default=())
    anchors: tuple[str, ...] = field(default=())


def style_controlled_leaderboard(
    pairs: pd.DataFrame,
    *,
    features: Sequence[StyleFeature] = STYLE_FEATURES,
    reference: str | None = None,
    pooling: Pooling = "audited",
    anchors: Sequence[str] = (),
    n_bootstrap: int = 100,
    confidence: float = 0.95,
    seed: int = 0,
) -> StyleLeaderboard:
    """Style-controlled scores from a pair table (or any battles table with both outputs).

    A logistic Bradley–Terry fit over battles against ``reference`` with the chosen raw style differences as
    covariates; a model's ``score`` is 100 x sigmoid(strength), its win rate against the reference at zero
    style difference. ``features`` may be any non-empty subset of STYLE_FEATURES, e.g. ``("length",)``.

    ``pooling`` decides whose battles estimate the style coefficients:

    * ``"audited"`` (default): ``"anchored"`` with the anchors chosen by the gaming audit
      (:func:`~pasture.analysis.gaming.audit` on these battles): every model it leaves unflagged is an
      anchor. A gamed model neither estimates the coefficients (so adding it moves no other score) nor gets
      its own (so answers cut short cannot extrapolate to the top: gpt4_gamed scores 27.5 here, 76.6 with
      ``per_model``; docs/trust.md §2).
    * ``"per_model"``: each model gets its own coefficients from its own battles against the reference, so
      its score is a function of its battles alone and never moves when other models are added or removed,
      but a model far from the reference's style extrapolates with coefficients fitted to its own style.
    * ``"shared"``: one set of coefficients for all models (the judge's style sensitivity). More data per
      coefficient and less extrapolation for models far from the reference's style, but every score then
      depends on the model set through the shared coefficients.
    * ``"anchored"``: one set of coefficients estimated from the ``anchors`` (a fixed, named list of models,
      e.g. a trusted release's models) and held fixed to score every other model. Non-anchor models then
      never move each other or the anchors, and a model far from the reference's style borrows the
      anchors' coefficients instead of extrapolating its own.

    Only battles with ``reference`` in one slot are used (other battles belong to
    :func:`~pasture.analysis.bradley_terry.bradley_terry_leaderboard`). Intervals resample instructions.
    """
    chosen = check_features(features)
    if not chosen:
        raise InputError("choose at least one style feature (the plain leaderboard is bradley_terry_leaderboard)")
    if pooling not in POOLINGS:
        raise InputError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
    if (pooling == "anchored") != bool(anchors):
        raise InputError("anchors are given exactly when pooling='anchored'")
    reference = reference if reference is not None else infer_reference(pairs)
    against_ref = (pairs["generator_1"] == reference) | (pairs["generator_2"] == reference)
    pairs = pairs.loc[against_ref]
    if pairs.empty:
        raise InputError(f"no battles against the reference {reference!r}")
    feats = style_features(pairs, chosen)
    battles = pd.concat([pairs.drop(columns=[c for c in feats.columns if c in pairs.columns]), feats], axis=1)
    cols = list(feats.columns)
    kwargs = {"reference": reference, "feature_columns": cols, "n_bootstrap": n_bootstrap, "confidence": confidence}
    near = (feats["style_length"].abs() <= SUPPORT_LENGTH) if "length" in chosen else None
    other = battles["generator_2"].where(battles["generator_1"] == reference, battles["generator_1"])
    notes: list[str] = []
    if pooling == "audited":
        anchors, notes = audited_anchors(pairs, reference)
    if pooling in ("anchored", "audited"):
        table, coefficients = _anchored(battles, other, tuple(anchors), reference, cols, n_bootstrap, confidence, seed)
    elif pooling == "shared":
        board = bradley_terry_leaderboard(battles, seed=seed, **kwargs)  # type: ignore[arg-type]
        table = board.table
        coefficients = board.coefficients_ci["coefficient"].to_frame().T
        coefficients.index = pd.Index(["(shared)"], name="model")
        notes = list(board.notes)
    else:
        tables, coefs = [], {}
        for model in sorted(other.unique()):
            sub = battles.loc[other == model]
            board = bradley_terry_leaderboard(sub, seed=seed, **kwargs)  # type: ignore[arg-type]
            tables.append(board.table)
            coefs[model] = board.coefficients_ci["coefficient"]
            notes += [f"{model}: {n}" for n in board.notes]
        table = pd.concat(tables).sort_values("score", ascending=False)
        coefficients = pd.DataFrame(coefs).T
        coefficients.index.name = "model"
    if near is not None:
        support = near.groupby(other).mean()
        table.insert(4, "support", support.reindex(table.index).to_numpy())
    return StyleLeaderboard(
        table=table,
        coefficients=coefficients,
        separability=separability(table["ci_low"], table["ci_high"]) if n_bootstrap else float("nan"),
        features=chosen,
        pooling=pooling,
        reference=reference,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        notes=tuple(notes),
        anchors=tuple(sorted(anchors)),
    )


def audited_anchors(pairs: pd.DataFrame, reference: str) -> tuple[list[str], list[str]]:
    """The models the gaming audit leaves unflagged on these battles (with the model in slot 2), and a note
    naming those left out. Raises when every model is flagged: there is nothing to estimate style from."""
    from pasture.analysis.gaming import audit

    flipped = pairs["generator_2"] == reference
    oriented = pairs.copy()
    for a, b in (("generator_1", "generator_2"), ("output_1", "output_2")):
        oriented.loc[flipped, [a, b]] = pairs.loc[flipped, [b, a]].to_numpy()
    oriented.loc[flipped, "preference"] = 3 - pairs.loc[flipped, "preference"]
    result = audit(oriented)
    flagged = result[result["flags"].map(len) > 0]
    anchors = sorted(str(m) for m in result.index if m not in flagged.index)
    if not anchors:
        raise InputError(
            "every model is flagged by the gaming audit, so no model can anchor the style coefficients; "
            "choose pooling='per_model' or 'anchored' with named anchors"
        )
    notes = [f"style coefficients from the {len(anchors)} models the gaming audit leaves unflagged"]
    notes += [f"{m}: not an anchor (gaming flags: {', '.join(f)})" for m, f in flagged["flags"].items()]
    return anchors, notes


def _anchored(
    battles: pd.DataFrame,
    other: pd.Series,
    anchors: tuple[str, ...],
    reference: str,
    cols: list[str],
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coefficients from the anchors' battles (one joint fit), every other model scored with them fixed."""
    missing = sorted(set(anchors) - set(other))
    if missing:
        raise InputError(f"anchor model(s) without battles against {reference!r}: {missing}")
    is_anchor = other.isin(anchors).to_numpy()
    models = sorted(str(m) for m in other.unique())
    sign = np.where(battles["generator_2"].to_numpy() == reference, -1.0, 1.0)
    F = battles[cols].to_numpy(dtype=float)
    y = battles["preference"].to_numpy(dtype=float) - 1.0
    ok = ~np.isnan(y)

    def estimate(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        use = is_anchor & ok & (w > 0)
        fit = fit_bradley_terry(battles.loc[use], reference=reference, feature_columns=cols, weights=w[use])
        gamma = fit.coefficients.to_numpy()
        strengths = np.full(len(models), np.nan)
        for i, m in enumerate(models):
            if m in anchors:
                strengths[i] = fit.strengths.get(m, np.nan)
                continue
            rows = (other == m).to_numpy() & ok & (w > 0)
            if not rows.any():
                continue
            beta, _ = logistic_fit(sign[rows, None], y[rows], w[rows], offset=F[rows] @ gamma)
            strengths[i] = beta[0]
        return strengths, gamma

    point, gamma = estimate(np.ones(len(battles)))
    boot = np.full((n_bootstrap, len(models)), np.nan)
    if n_bootstrap:
        codes, counts = instruction_bootstrap_weights(battles["instruction"], n_bootstrap, seed=seed)
        for b in range(n_bootstrap):
            try:
                boot[b], _ = estimate(counts[b][codes])
            except InputError:
                continue
    alpha = (1 - confidence) / 2
    with np.errstate(all="ignore"):
        scores = 100 / (1 + np.exp(-boot))
        lo = np.nanquantile(scores, alpha, axis=0) if n_bootstrap else np.full(len(models), np.nan)
        hi = np.nanquantile(scores, 1 - alpha, axis=0) if n_bootstrap else np.full(len(models), np.nan)
    n_battles = pd.Series(ok).groupby(other.to_numpy()).sum().reindex(models)
    table = pd.DataFrame(
        {
            "score": 100 / (1 + np.exp(-point)),
            "ci_low": lo,
            "ci_high": hi,
            "strength": point,
            "n_battles": n_battles.fillna(0).astype(int).to_numpy(),
            "n_failed": (
                pd.Series(~ok).groupby(other.to_numpy()).sum().reindex(models).fillna(0).astype(int)
            ).to_numpy(),
        },
        index=pd.Index(models, name="model"),
    ).sort_values("score", ascending=False)
    coefficients = pd.DataFrame([gamma], columns=cols, index=pd.Index(["(anchors)"], name="model"))
    return table, coefficients
