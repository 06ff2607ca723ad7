"""Loading ../shared's AlpacaEval data into pasture's pair layout, for the benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pasture.io import read_eval_set
from pasture.metrics.gamed import GAMED_BASELINES
from pasture.metrics.lc import LCInputs
from pasture.metrics.lc_inputs import prepare_lc_inputs

REPO = Path(__file__).resolve().parents[1]
ALPACAEVAL = REPO.parent / "shared" / "alpacaeval"
REFERENCE = "gpt4_1106_preview"
OUT = REPO / "benchmarks" / "out"


def require_shared() -> Path:
    if not ALPACAEVAL.is_dir():
        raise SystemExit(f"../shared not found at {ALPACAEVAL}: the benchmarks need AlpacaEval's data there")
    return ALPACAEVAL


def eval_set_texts() -> list[str]:
    return read_eval_set(require_shared() / "results" / REFERENCE / "model_outputs.json.gz").texts()


def shared_pairs(texts: list[str]) -> pd.DataFrame:
    """preferences_58_models.csv.gz as a pair table (instruction text from ref_pos), rows in file order."""
    prefs = pd.read_csv(require_shared() / "preferences_58_models.csv.gz").sort_values(
        ["model", "index"], kind="mergesort"
    )
    return pd.DataFrame(
        {
            "instruction": np.asarray(texts, dtype=object)[prefs["ref_pos"].to_numpy()],
            "generator_1": REFERENCE,
            "generator_2": prefs["model"].to_numpy(),
            "len_1": prefs["len_1"].to_numpy(),
            "len_2": prefs["len_2"].to_numpy(),
            "preference": prefs["preference"].to_numpy(float),
            "index": prefs["index"].to_numpy(),
            "ref_pos": prefs["ref_pos"].to_numpy(),
        }
    )


def shared_lc_inputs(pairs: pd.DataFrame, texts: list[str]) -> LCInputs:
    """LC inputs from shared files only: estimated difficulty, gamed baselines rebuilt from coefficients."""
    root = require_shared()
    return prepare_lc_inputs(
        pairs,
        shipped=False,  # the joint-fit estimate over all models (the exactness pins use it), not the shipped vector
        eval_set=texts,
        glm_weights=root / "leaderboards" / "lc_glm_weights_baseline_gpt4_1106_preview.csv",
        gamed_outputs={g: root / "results" / g / "model_outputs.json.gz" for g in GAMED_BASELINES},
    )


def board() -> pd.DataFrame:
    return pd.read_csv(require_shared() / "leaderboards" / "alpaca_eval_2_leaderboard.csv", index_col=0)
