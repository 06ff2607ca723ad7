"""Scoring files and stores: which row order the positional difficulty lookup reads, and where it is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.metrics.lc_inputs import prepare_lc_inputs
from pasture.metrics.pairs import pair_table
from pasture.scoring import score_files, score_pairs, score_store
from pasture.store import Store

MODEL = "text_davinci_001"  # 803 of 805 rows: the board's positional lookup misaligns 556 of them


@pytest.fixture(scope="module")
def incomplete_file(annotation_file_from_preferences: Callable[[str, Path], Path], tmp_path_factory) -> Path:
    return annotation_file_from_preferences(MODEL, tmp_path_factory.mktemp("incomplete"))


def test_position_lookup_reads_the_files_row_order_and_reproduces_the_board(
    incomplete_file: Path, alpacaeval: Path
) -> None:
    official = pd.read_csv(alpacaeval / "leaderboards" / "alpaca_eval_2_leaderboard.csv", index_col=0)
    board = official.loc[MODEL, "length_controlled_winrate"]
    by_text = score_files([incomplete_file], bootstrap_resamples=0).loc[MODEL]
    frame = score_files([incomplete_file], difficulty_lookup="position", bootstrap_resamples=50)
    by_position = frame.loc[MODEL]
    assert by_text["n_total"] + by_text["n_failed"] == 803
    # measured: by text 2.98 below the board, by position 0.35 above it
    assert abs(by_text["length_controlled_winrate"] - board) > 2.5
    assert abs(by_position["length_controlled_winrate"] - board) <= 0.6
    assert "difficulty lookup=position" in frame.attrs["lc_inputs"]
    assert by_text["lc_note"] == (
        "AlpacaEval's board differs (556 rows off position; pasture score FILE --difficulty-lookup position reproduces it)"
    )
    assert by_position["lc_note"] == "difficulty by row position as AlpacaEval's board: 556 rows misaligned"
    assert by_position["lc_ci_low"] < by_position["length_controlled_winrate"] < by_position["lc_ci_high"]


def test_position_lookup_refuses_a_model_split_over_two_files(incomplete_file: Path, tmp_path: Path) -> None:
    rows = json.loads(incomplete_file.read_text(encoding="utf-8"))
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(rows[:400]), encoding="utf-8")
    second.write_text(json.dumps(rows[400:]), encoding="utf-8")
    with pytest.raises(InputError, match=rf"'{MODEL}' has rows in .*a\.json and .*b\.json.*one file"):
        score_files([first, second], difficulty_lookup="position", bootstrap_resamples=0)
    # by text the split does not matter: the rows are matched by instruction
    split = score_files([first, second], lc=False)
    assert split.loc[MODEL, "win_rate"] == score_files([incomplete_file], lc=False).loc[MODEL, "win_rate"]


def test_a_store_keeps_no_row_order_so_the_position_lookup_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store, pytest.raises(InputError, match="which a store does not keep"):
        score_store(store, difficulty_lookup="position")


def test_given_lc_inputs_and_a_different_lookup_is_an_error(incomplete_file: Path) -> None:
    pairs = pair_table(read_annotations(incomplete_file))
    inputs = prepare_lc_inputs(pairs)
    with pytest.raises(InputError, match="the given LC inputs look up by 'text'"):
        score_pairs(pairs, lc_inputs=inputs, difficulty_lookup="position", bootstrap_resamples=0)
    positional = replace(inputs, difficulty_lookup="position")
    assert positional.eval_set_difficulty is not None and len(positional.eval_set_difficulty) == 805
    a = score_pairs(pairs, lc_inputs=positional, bootstrap_resamples=0)
    b = score_pairs(pairs, difficulty_lookup="position", bootstrap_resamples=0)
    assert np.isclose(a.loc[MODEL, "length_controlled_winrate"], b.loc[MODEL, "length_controlled_winrate"])
