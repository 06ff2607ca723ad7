"""The 57 board models of ../shared as AlpacaEval annotation files, for end-to-end `pasture score` benchmarks.

Each model's file is built the same way from its rows in ``preferences_58_models.csv.gz``: the instruction
by ``ref_pos`` from the eval set, the judge's preference, and outputs synthesized as repeated characters of the
recorded lengths (only lengths enter LC and the win-rate columns; the real texts are not all public here).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from _data import ALPACAEVAL, OUT, REFERENCE, board, eval_set_texts

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
FOLDER = OUT / "annotations57"


def build_annotation_files(folder: Path = FOLDER) -> list[Path]:
    """Write (once) and return one ``annotations.json`` per board model, in model order."""
    texts = eval_set_texts()
    prefs = pd.read_csv(ALPACAEVAL / "preferences_58_models.csv.gz").sort_values(["model", "index"], kind="mergesort")
    models = sorted(set(prefs["model"]) & set(board().index))
    paths = []
    for model in models:
        path = folder / model / "annotations.json"
        paths.append(path)
        if path.is_file():
            continue
        rows = prefs[prefs["model"] == model]
        pref = rows["preference"].to_numpy(float)
        records = [
            {
                "instruction": texts[pos],
                "output_1": "x" * int(l1),
                "generator_1": REFERENCE,
                "output_2": "y" * int(l2),
                "generator_2": model,
                "annotator": ANNOTATOR,
                "preference": None if np.isnan(p) else float(p),
            }
            for pos, l1, l2, p in zip(rows["ref_pos"], rows["len_1"], rows["len_2"], pref, strict=True)
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records), encoding="utf-8")
    return paths
