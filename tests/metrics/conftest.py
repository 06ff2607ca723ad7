"""Fixtures for the LC, bootstrap and correlation tests: ../shared's 58 models as a pair table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pasture.io import read_eval_set
from pasture.metrics.gamed import GAMED_BASELINES
from pasture.metrics.lc import LCInputs, LCResult, length_controlled_winrates
from pasture.metrics.lc_inputs import prepare_lc_inputs

REFERENCE = "gpt4_1106_preview"


@pytest.fixture(scope="session")
def shared_texts(alpacaeval: Path) -> list[str]:
    """The 805 AlpacaEval instructions in official order."""
    return read_eval_set(alpacaeval / "results" / REFERENCE / "model_outputs.json.gz").texts()


@pytest.fixture(scope="session")
def shared_pairs(alpacaeval: Path, shared_texts: list[str]) -> pd.DataFrame:
    """preferences_58_models.csv.gz as a pair table; rows in each file's order, instruction text by ref_pos."""
    prefs = pd.read_csv(alpacaeval / "preferences_58_models.csv.gz").sort_values(["model", "index"], kind="mergesort")
    return pd.DataFrame(
        {
            "instruction": np.asarray(shared_texts, dtype=object)[prefs["ref_pos"].to_numpy()],
            "generator_1": REFERENCE,
            "generator_2": prefs["model"].to_numpy(),
            "len_1": prefs["len_1"].to_numpy(),
            "len_2": prefs["len_2"].to_numpy(),
            "preference": prefs["preference"].to_numpy(float),
            "index": prefs["index"].to_numpy(),
            "ref_pos": prefs["ref_pos"].to_numpy(),
        }
    )


@pytest.fixture(scope="session")
def shared_inputs(alpacaeval: Path, shared_pairs: pd.DataFrame, shared_texts: list[str]) -> LCInputs:
    """LC inputs from shared files only: estimated difficulty and rebuilt gamed baselines (the joint fit over
    all 57 models, not the shipped vector: what the AlpacaEval 0.6.6 exactness pins were computed with)."""
    return prepare_lc_inputs(
        shared_pairs,
        shipped=False,
        eval_set=shared_texts,
        glm_weights=alpacaeval / "leaderboards" / "lc_glm_weights_baseline_gpt4_1106_preview.csv",
        gamed_outputs={g: alpacaeval / "results" / g / "model_outputs.json.gz" for g in GAMED_BASELINES},
    )


@pytest.fixture(scope="session")
def shared_lc(shared_pairs: pd.DataFrame, shared_inputs: LCInputs) -> dict[str, LCResult]:
    """pasture's LC for all 58 shared models (about 10 s on 2 cores)."""
    return {r.generator: r for r in length_controlled_winrates(shared_pairs, shared_inputs)}


@pytest.fixture(scope="session")
def official_board(alpacaeval: Path) -> pd.DataFrame:
    return pd.read_csv(alpacaeval / "leaderboards" / "alpaca_eval_2_leaderboard.csv", index_col=0)
