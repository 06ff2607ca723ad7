"""Measuring a simulated annotator pool: agreement with gold labels, inter-annotator agreement, variance.

All functions are pure: labels in, numbers out (see docs/simulate.md for the definitions). Agreement
between two preferences ``a`` and ``b`` in [1, 2] is ``1 - |a - b|``: 1 when two hard labels match, 0 when
they differ, 0.5 between a tie and a hard label (AlpacaEval's "absolute" scoring rule, which equals 0/1
agreement on hard labels and extends it to soft ones).

The numbers a user tunes a pool with:

* **gold agreement** of a member: mean agreement of its labels with the gold labels.
* **inter-annotator agreement** of two members: mean agreement of their labels on the examples both
  labeled. For the pool: the weighted mean over pairs of distinct members, i.e. the chance that two
  different annotators drawn as in the simulation agree on an example (AlpacaFarm's human-human figure
  is about 0.66).
* **variance** of a member: mean ``|label - median(other members' labels)|`` over examples (AlpacaEval's
  "1 vs rest" error; with an even number of others the median is the mean of the two middle labels, which
  equals the expected error when one of the two medians is drawn at random).
* **prefers longer**: mean probability that the member chose the longer output, over examples whose two
  outputs differ in length (soft label ``x`` chooses slot 2 with probability ``x - 1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pasture.errors import InputError
from pasture.records import Judgment
from pasture.simulate.labels import OutputPair, SimulatedLabel
from pasture.simulate.noise import flip_label
from pasture.simulate.pool import AnnotatorPool

REPORT_COLUMNS = (
    "weight",
    "n_labels",
    "n_failed",
    "flip_rate",
    "gold_agreement",
    "gold_agreement_se",
    "clean_gold_agreement",
    "inter_annotator_agreement",
    "variance",
    "prefers_longer",
)
"""Columns of :func:`pool_report`, one row per member plus a 'pool' row (definitions in docs/simulate.md)."""


def labels_frame(labels: Sequence[SimulatedLabel]) -> pd.DataFrame:
    """Labels as a long table: example_key, annotator, status, clean_preference, preference, flipped, len_1, len_2."""
    return pd.DataFrame(
        {
            "example_key": [lab.example_key for lab in labels],
            "annotator": [lab.annotator for lab in labels],
            "status": [lab.status for lab in labels],
            "clean_preference": [lab.clean_preference for lab in labels],
            "preference": [lab.preference for lab in labels],
            "flipped": [lab.flipped for lab in labels],
            "len_1": [len(lab.pair.output_1) for lab in labels],
            "len_2": [len(lab.pair.output_2) for lab in labels],
        },
        columns=["example_key", "annotator", "status", "clean_preference", "preference", "flipped", "len_1", "len_2"],
    ).astype({"clean_preference": float, "preference": float})


def agreement(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray | float:
    """Agreement ``1 - |a - b|`` of preferences in [1, 2] (elementwise)."""
    return 1.0 - np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))


def _wide(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    ok = frame[frame["status"] == "ok"]
    if ok.duplicated(["example_key", "annotator"]).any():
        raise InputError("an annotator labeled the same example twice; measure one label per (example, annotator)")
    return ok.pivot(index="example_key", columns="annotator", values=column)


def gold_agreement(frame: pd.DataFrame, gold: Mapping[str, float], *, column: str = "preference") -> pd.DataFrame:
    """Per annotator: n (labels with a gold label), agreement with gold and its standard error."""
    ok = frame[(frame["status"] == "ok") & frame["example_key"].isin(gold.keys())]
    g = ok["example_key"].map(gold).astype(float)
    agree = pd.Series(agreement(ok[column].to_numpy(), g.to_numpy()), index=ok.index)
    grouped = agree.groupby(ok["annotator"])
    out = pd.DataFrame(
        {"n": grouped.size(), "agreement": grouped.mean(), "se": grouped.std(ddof=1) / np.sqrt(grouped.size())}
    )
    out.index.name = "annotator"
    return out


def pairwise_agreement(frame: pd.DataFrame, *, column: str = "preference") -> pd.DataFrame:
    """Agreement of every two annotators on the examples both labeled (a symmetric table, NaN diagonal)."""
    wide = _wide(frame, column)
    names = list(wide.columns)
    table = pd.DataFrame(np.nan, index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = wide[[a, b]].dropna()
            if len(both):
                value = float(np.mean(agreement(both[a].to_numpy(), both[b].to_numpy())))
                table.loc[a, b] = table.loc[b, a] = value
    return table


def one_vs_rest_variance(frame: pd.DataFrame, *, column: str = "preference") -> pd.Series:
    """Per annotator: mean ``|label - median(others' labels)|`` over examples with at least one other label."""
    wide = _wide(frame, column)
    out = {}
    for name in wide.columns:
        rest = wide.drop(columns=[name])
        med = rest.median(axis=1, skipna=True)
        mask = wide[name].notna() & med.notna()
        out[name] = float(np.mean(np.abs(wide.loc[mask, name] - med[mask]))) if mask.any() else math.nan
    return pd.Series(out, name="variance")


def prefers_longer(frame: pd.DataFrame, *, column: str = "preference") -> pd.Series:
    """Per annotator: mean probability of choosing the longer output (examples with unequal lengths)."""
    ok = frame[(frame["status"] == "ok") & (frame["len_1"] != frame["len_2"])]
    q2 = ok[column] - 1.0
    longer = np.where(ok["len_2"] > ok["len_1"], q2, 1.0 - q2)
    return pd.Series(longer, index=ok.index).groupby(ok["annotator"]).mean().rename("prefers_longer")


def pool_report(
    labels: Sequence[SimulatedLabel] | pd.DataFrame,
    pool: AnnotatorPool,
    gold: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The pool's measurement table: one row per member and a weighted 'pool' row (columns REPORT_COLUMNS).

    ``labels`` should come from :func:`pasture.simulate.cross_annotate` (every member labels every
    example), so inter-annotator agreement and variance are defined. ``gold`` maps example keys to gold
    preferences; without it the gold columns are NaN. The pool row weights members by their assignment
    probability: its gold agreement is the expected agreement of a simulated label, its inter-annotator
    agreement the chance that two different, randomly drawn members agree.
    """
    frame = labels if isinstance(labels, pd.DataFrame) else labels_frame(labels)
    weights = {d["name"]: float(d["weight"]) for d in pool.describe()}  # type: ignore[arg-type]
    names = [m.name for m in pool.members]
    rows = pd.DataFrame(index=pd.Index(names, name="annotator"), columns=list(REPORT_COLUMNS), dtype=float)
    rows["weight"] = [weights[n] for n in names]
    counts = frame.groupby("annotator").size()
    ok = frame[frame["status"] == "ok"]
    rows["n_labels"] = [float(counts.get(n, 0)) for n in names]
    rows["n_failed"] = [float(counts.get(n, 0) - (ok["annotator"] == n).sum()) for n in names]
    rows["flip_rate"] = ok.groupby("annotator")["flipped"].mean().reindex(names)
    if gold is not None:
        ga = gold_agreement(frame, gold).reindex(names)
        rows["gold_agreement"] = ga["agreement"]
        rows["gold_agreement_se"] = ga["se"]
        rows["clean_gold_agreement"] = gold_agreement(frame, gold, column="clean_preference").reindex(names)[
            "agreement"
        ]
    pair = pairwise_agreement(frame).reindex(index=names, columns=names)
    w = np.array([weights[n] for n in names])
    for i, n in enumerate(names):
        others = [j for j in range(len(names)) if j != i and not math.isnan(pair.iloc[i, j])]
        rows.loc[n, "inter_annotator_agreement"] = (
            float(np.average([pair.iloc[i, j] for j in others], weights=w[others])) if others else math.nan
        )
    rows["variance"] = one_vs_rest_variance(frame).reindex(names)
    rows["prefers_longer"] = prefers_longer(frame).reindex(names)

    pool_row: dict[str, float] = {"weight": 1.0, "n_labels": rows["n_labels"].sum(), "n_failed": rows["n_failed"].sum()}
    for col in ("flip_rate", "gold_agreement", "clean_gold_agreement", "variance", "prefers_longer"):
        vals = rows[col].to_numpy(dtype=float)
        keep = ~np.isnan(vals)
        pool_row[col] = float(np.average(vals[keep], weights=w[keep])) if keep.any() else math.nan
    pool_row["gold_agreement_se"] = math.nan
    num = den = 0.0
    for i in range(len(names)):
        for j in range(len(names)):
            if i != j and not math.isnan(pair.iloc[i, j]):
                num += w[i] * w[j] * pair.iloc[i, j]
                den += w[i] * w[j]
    pool_row["inter_annotator_agreement"] = num / den if den else math.nan
    rows.loc["pool"] = pd.Series(pool_row)
    return rows


def renoise(labels: Sequence[SimulatedLabel], pool: AnnotatorPool) -> list[SimulatedLabel]:
    """The same clean labels with the noise of ``pool`` (its p and seed) applied: no judge is called."""
    out = []
    for lab in labels:
        flipped = pool.flips(lab.example_key, lab.annotator)
        clean = lab.clean_preference
        noisy = None if clean is None else (flip_label(clean) if flipped else clean)
        out.append(lab.model_copy(update={"flipped": flipped, "preference": noisy}))
    return out


def noise_sweep(
    labels: Sequence[SimulatedLabel],
    pool: AnnotatorPool,
    ps: Sequence[float],
    gold: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The pool row of :func:`pool_report` for each flip probability in ``ps`` (same clean labels, same seed)."""
    rows = {}
    for p in ps:
        noisy_pool = pool.with_options(p=p)
        rows[float(p)] = pool_report(renoise(labels, noisy_pool), noisy_pool, gold).loc["pool"]
    table = pd.DataFrame(rows).T
    table.index.name = "p"
    return table


def expected_agreement(clean_agreement: float, p: float) -> float:
    """Expected agreement with a fixed reference after flipping hard labels with probability p:
    ``A (1 - p) + (1 - A) p``."""
    return clean_agreement * (1 - p) + (1 - clean_agreement) * p


def expected_inter_annotator_agreement(clean_agreement: float, p: float) -> float:
    """Expected agreement of two annotators whose hard labels flip independently with probability p:
    ``c (1 - 2p(1-p)) + (1 - c) 2p(1-p)``."""
    q = 2 * p * (1 - p)
    return clean_agreement * (1 - q) + (1 - clean_agreement) * q


def flip_p_for_agreement(clean_agreement: float, target: float = 0.66) -> float:
    """The p that brings the pool's inter-annotator agreement from ``clean_agreement`` down to ``target``.

    Inverts :func:`expected_inter_annotator_agreement`: ``2p(1-p) = (c - t) / (2c - 1)``. Raises
    InputError when the target is not reachable by adding noise (target above the clean agreement, or
    below 0.5, the agreement of coin flips).
    """
    c, t = clean_agreement, target
    if not 0.5 <= t <= c or c <= 0.5:
        raise InputError(f"agreement {t:.3f} is not reachable by flipping from {c:.3f} (need 0.5 <= target <= clean)")
    x = (c - t) / (2 * c - 1)
    return (1 - math.sqrt(max(0.0, 1 - 2 * x))) / 2


@dataclass(frozen=True)
class GoldLabel:
    """A reference preference for one pair of outputs (slot convention: 1 = output_1 wins)."""

    instruction: str
    output_1: str
    output_2: str
    preference: float


def read_gold(path: str | Path) -> list[GoldLabel]:
    """Gold labels from a pairwise file (JSON, JSONL, CSV, Parquet, gzipped too) with the columns
    ``instruction``, ``output_1``, ``output_2``, ``preference`` (1..2): AlpacaEval annotations, AlpacaFarm's
    pairwise format (e.g. human preference data) or pasture's own ``alpaca_farm.jsonl``. A row without a
    usable preference is skipped and counted by the caller through the pairs left without gold."""
    from pasture.io.alpacaeval import coerce_preference
    from pasture.io.files import read_rows, require_text

    path = Path(path)
    out = []
    for i, row in enumerate(read_rows(path), start=1):
        if "preference" not in row:
            raise InputError("missing required field", path=path, row=i, field="preference")
        pref = coerce_preference(row["preference"], path=path, row=i)
        if pref is None:
            continue
        out.append(
            GoldLabel(
                instruction=require_text(row, "instruction", path=path, row_no=i),
                output_1=require_text(row, "output_1", path=path, row_no=i),
                output_2=require_text(row, "output_2", path=path, row_no=i),
                preference=pref,
            )
        )
    return out


def gold_for_pairs(
    pairs: Sequence[OutputPair], labels: Sequence[Judgment | GoldLabel], *, strict: bool = False
) -> dict[str, float]:
    """Gold preferences for ``pairs`` from labels of the same two outputs (judgments of a strong judge,
    human labels read with :func:`read_gold`), keyed by the pairs' example keys.

    A label matches a pair with the same instruction and the same two output texts in either slot order;
    when the order is swapped its preference is mirrored (``3 - x``). Several matching labels are averaged;
    failed judgments are ignored. With ``strict``, a pair without gold is an InputError; otherwise it is
    absent from the result (and so from the gold columns, whose ``n`` says how many pairs had gold).
    """
    found: dict[tuple[str, str, str], list[float]] = {}
    for lab in labels:
        if isinstance(lab, Judgment) and lab.status != "ok":
            continue
        if lab.preference is None:
            continue
        found.setdefault((lab.instruction, lab.output_1, lab.output_2), []).append(lab.preference)
    gold: dict[str, float] = {}
    for pair in pairs:
        same = found.get((pair.instruction, pair.output_1, pair.output_2), [])
        mirrored = [3.0 - x for x in found.get((pair.instruction, pair.output_2, pair.output_1), [])]
        values = same + mirrored
        if values:
            gold[pair.key] = float(np.mean(values))
        elif strict:
            raise InputError(f"no gold label for the pair of instruction {pair.instruction[:60]!r}")
    return gold


def compare_pools(
    labels: Sequence[SimulatedLabel],
    pools: Mapping[str, AnnotatorPool],
    gold: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """The 'pool' row of :func:`pool_report` for several pools made from members of one cross-annotation.

    Each pool's members must be annotators present in ``labels`` (same names); its own ``p`` and ``seed``
    re-noise their clean labels, so pools of different make-up, weights and noise are compared on the same
    clean verdicts without any call. Rows are indexed by the names given.
    """
    present = {lab.annotator for lab in labels}
    rows = {}
    for name, pool in pools.items():
        members = {m.name for m in pool.members}
        missing = sorted(members - present)
        if missing:
            raise InputError(f"pool {name!r}: no labels from member(s) {', '.join(missing)}; cross-annotate first")
        subset = renoise([lab for lab in labels if lab.annotator in members], pool)
        rows[name] = pool_report(subset, pool, gold).loc["pool"]
    table = pd.DataFrame(rows).T
    table.index.name = "pool"
    return table
