"""Verbosity sensitivity of a metric, measured per model family: information about the metric, never a flag.

Why: prompting one model to be verbose or concise moves its raw win rate; how far a metric moves between
such variants tells how much that metric rewards length. That is a property of the metric (and the judge),
not evidence that a variant was gamed, so it is shown per family beside the leaderboard and never flags a
model. Which member is the longer or shorter one is measured (median length ratio on the same
instructions), never read from a name suffix. Definitions: docs/trust.md §4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pasture.errors import InputError

LONGER = 1.25
"""A member is ``longer`` when its median length ratio to the family's base on the same instructions is
above this, ``shorter`` below 1 / this, else ``like base``."""

FAMILY_SEPARATORS = ("_", "-")
"""A model name that continues another audited model's name after one of these belongs to its family."""


def name_families(models: Iterable[str]) -> dict[str, str]:
    """Default grouping: a model's family is the longest other model name that its name extends after ``_`` or
    ``-`` (``x_verbose``, ``x-v2`` -> ``x``); otherwise its own. Only the grouping comes from names; which
    member is longer or shorter is measured (:func:`verbosity_families`). Pass ``families`` to override."""
    names = sorted({str(m) for m in models})
    out = {}
    for m in names:
        bases = [b for b in names if b != m and m.startswith(b) and m[len(b)] in FAMILY_SEPARATORS]
        out[m] = max(bases, key=len) if bases else m
    # a chain (x_a_b -> x_a -> x) joins the root
    for m in names:
        while out[out[m]] != out[m]:
            out[m] = out[out[m]]
    return out


@dataclass(frozen=True)
class VerbosityFamilies:
    """Per-family verbosity sensitivity; see :func:`verbosity_families`.

    ``members``: one row per model of a family with 2+ members (index ``model``): ``family``,
    ``length_vs_base`` (median over shared instructions of (len_model + 1) / (len_base + 1)), ``role``
    (``longer`` / ``shorter`` / ``like base``, from that ratio and :data:`LONGER`) and each metric's value.
    ``families``: one row per family: ``base``, ``n_members``, ``<metric>_spread`` (max - min over the
    members, points) and ``<metric>_per_doubling`` (least-squares slope of the metric against
    log2(length_vs_base) over the members: points gained per doubling of length; NaN when the members'
    lengths do not differ).
    """

    members: pd.DataFrame
    families: pd.DataFrame


def verbosity_families(
    pairs: pd.DataFrame,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    *,
    families: Mapping[str, str] | None = None,
) -> VerbosityFamilies:
    """How far each metric moves between the members of each model family, against measured length.

    ``pairs``: a pair table with ``instruction``, ``generator_2``, ``preference`` and either ``output_1`` and
    ``output_2`` or ``len_1`` and ``len_2``. ``metrics``: {metric: {model: points}}; the raw ``win_rate``
    from ``pairs`` is always included. ``families``: {model: family}; :func:`name_families` when None. A
    family's base is the member named like the family, or else its member of median length.
    """
    for col in ("instruction", "generator_2", "preference"):
        if col not in pairs.columns:
            raise InputError(f"verbosity_families needs a pair table with column {col!r}")
    if {"output_2"} <= set(pairs.columns):
        length = pairs["output_2"].astype(str).str.len()
    elif "len_2" in pairs.columns:
        length = pairs["len_2"].astype(float)
    else:
        raise InputError("verbosity_families needs output_2 or len_2 in the pair table")
    frame = pd.DataFrame(
        {"instruction": pairs["instruction"], "model": pairs["generator_2"].astype(str), "length": length}
    )
    per_instruction = frame.groupby(["instruction", "model"])["length"].mean().unstack("model")
    raw = ((pairs.groupby("generator_2")["preference"].mean() - 1) * 100).rename(index=str)
    all_metrics: dict[str, Mapping[str, float]] = {"win_rate": raw.to_dict(), **(metrics or {})}
    grouping = dict(families) if families is not None else name_families(raw.index)
    groups: dict[str, list[str]] = {}
    for model in raw.index:
        groups.setdefault(grouping.get(model, model), []).append(model)
    member_rows, family_rows = [], []
    for family, models in sorted(groups.items()):
        if len(models) < 2:
            continue
        medians = per_instruction[models].median()
        base = family if family in models else str(medians.sort_values().index[len(models) // 2])
        ratio = {m: float(np.nanmedian((per_instruction[m] + 1) / (per_instruction[base] + 1))) for m in sorted(models)}
        frow: dict[str, object] = {"family": family, "base": base, "n_members": len(models)}
        x = np.log2(np.array([ratio[m] for m in sorted(models)]))
        for name, values in all_metrics.items():
            y = np.array([float(values.get(m, np.nan)) for m in sorted(models)])
            ok = ~np.isnan(y)
            frow[f"{name}_spread"] = float(y[ok].max() - y[ok].min()) if ok.sum() > 1 else np.nan
            xs = x[ok]
            frow[f"{name}_per_doubling"] = (
                float(np.polyfit(xs, y[ok], 1)[0]) if ok.sum() > 1 and np.ptp(xs) > 1e-9 else np.nan
            )
        family_rows.append(frow)
        for m in sorted(models):
            role = "longer" if ratio[m] > LONGER else "shorter" if ratio[m] < 1 / LONGER else "like base"
            mrow: dict[str, object] = {"model": m, "family": family, "length_vs_base": ratio[m], "role": role}
            mrow.update({name: float(values.get(m, np.nan)) for name, values in all_metrics.items()})
            member_rows.append(mrow)
    members = pd.DataFrame(member_rows, columns=["model", "family", "length_vs_base", "role", *all_metrics])
    fams = pd.DataFrame(family_rows)
    return VerbosityFamilies(
        members=members.set_index("model"),
        families=fams.set_index("family") if len(fams) else pd.DataFrame(index=pd.Index([], name="family")),
    )
