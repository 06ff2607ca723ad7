"""Real AlpacaEval pairs for the analysis tests, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pasture import pair_table, read_annotations
from pasture.records import Judgment


def load_shared_judgments(alpacaeval: Path) -> list[Judgment]:
    """Every shared annotation file; generator_2 named after its results folder.

    (NullModel's file calls its generator 'example'; the folder name is the model's leaderboard name.)
    """
    judgments: list[Judgment] = []
    files = sorted((alpacaeval / "results").glob("*/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz"))
    for path in files:
        name = path.parts[-3]
        judgments += [
            j if j.generator_2 == name else j.model_copy(update={"generator_2": name}) for j in read_annotations(path)
        ]
    return judgments


@pytest.fixture(scope="session")
def shared_judgments(alpacaeval: Path) -> list[Judgment]:
    return load_shared_judgments(alpacaeval)


@pytest.fixture(scope="session")
def shared_pairs(shared_judgments: list[Judgment]) -> pd.DataFrame:
    pairs = pair_table(shared_judgments)
    assert pairs["generator_2"].nunique() == 10
    return pairs


@pytest.fixture(scope="session")
def official_board(alpacaeval: Path) -> pd.DataFrame:
    return pd.read_csv(alpacaeval / "leaderboards/alpaca_eval_2_leaderboard.csv", index_col=0)
