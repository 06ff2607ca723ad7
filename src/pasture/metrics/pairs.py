"""From judgments to one row per (instruction, reference output, model output): the input of every metric.

Why a pair table: a pair may be judged several times (both orders, replicates). Metrics want one
preference per pair, the mean of its parsed verdicts, and must still see the pairs that no verdict scored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pasture.records import Judgment

PAIR_COLUMNS = [
    "instruction",
    "dataset",
    "generator_1",
    "generator_2",
    "output_1",
    "output_2",
    "preference",
    "n_judgments",
    "n_failed",
    "len_1",
    "len_2",
    "cost_usd",
]


def pair_table(judgments: Iterable[Judgment]) -> pd.DataFrame:
    """One row per (generator_1, generator_2, instruction, output_1, output_2), in first-seen order.

    ``preference`` is the mean over the pair's 'ok' judgments, NaN when none parsed; ``n_failed`` counts the
    pair's judgments with status 'error' or 'parse_error'. Lengths are in characters (Unicode code points),
    as AlpacaEval measures them.
    """
    groups: dict[tuple[str, str, str, str, str], dict] = {}
    for j in judgments:
        ident = (j.generator_1, j.generator_2, j.instruction, j.output_1, j.output_2)
        g = groups.get(ident)
        if g is None:
            g = groups[ident] = {"dataset": j.dataset, "prefs": [], "n": 0, "failed": 0, "cost": 0.0}
        g["n"] += 1
        if j.status == "ok" and j.preference is not None:
            g["prefs"].append(j.preference)
        else:
            g["failed"] += 1
        if j.cost_usd:
            g["cost"] += j.cost_usd
    rows = []
    for (gen1, gen2, instruction, out1, out2), g in groups.items():
        rows.append(
            (
                instruction,
                g["dataset"],
                gen1,
                gen2,
                out1,
                out2,
                math.fsum(g["prefs"]) / len(g["prefs"]) if g["prefs"] else np.nan,  # np.mean per pair: 10x slower
                g["n"],
                g["failed"],
                len(out1),
                len(out2),
                g["cost"],
            )
        )
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(PAIR_COLUMNS)
    # texts stay Python objects: converting ~100 MB of outputs to Arrow strings cost more than the whole loop
    text_columns = {"instruction", "output_1", "output_2"}
    return pd.DataFrame(
        {
            name: pd.Series(values, dtype=object) if name in text_columns else pd.Series(values)
            for name, values in zip(PAIR_COLUMNS, columns, strict=True)
        },
        columns=PAIR_COLUMNS,
    )
