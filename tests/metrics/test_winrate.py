"""Win-rate columns pinned against the official AlpacaEval 2 leaderboard on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pasture import read_annotations, score_judgments, win_rate

COLUMNS = ["win_rate", "standard_error", "n_wins", "n_wins_base", "n_draws", "n_total", "discrete_win_rate"]


@pytest.fixture(scope="module")
def board(alpacaeval: Path) -> pd.DataFrame:
    return pd.read_csv(alpacaeval / "leaderboards/alpaca_eval_2_leaderboard.csv", index_col=0)


def test_every_shared_model_matches_the_board(alpacaeval: Path, board: pd.DataFrame) -> None:
    prefs = pd.read_csv(alpacaeval / "preferences_58_models.csv.gz")
    checked = 0
    for model, rows in prefs.groupby("model"):
        if model not in board.index:
            continue  # text_davinci_003 is not on the AlpacaEval 2 board
        ours = win_rate(rows["preference"].to_numpy(), output_lengths=rows["len_2"].to_numpy())
        theirs = board.loc[model]
        for col in ("win_rate", "standard_error", "discrete_win_rate"):
            assert getattr(ours, col) == pytest.approx(theirs[col], abs=1e-6), (model, col)
        for col in ("n_wins", "n_wins_base", "n_draws", "n_total"):
            assert getattr(ours, col) == int(theirs[col]), (model, col)
        checked += 1
    assert checked == 57


@pytest.mark.slow
def test_annotation_files_score_like_the_board(alpacaeval: Path, board: pd.DataFrame) -> None:
    files = sorted((alpacaeval / "results").glob("*/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz"))
    assert len(files) >= 8
    judgments = [j for f in files for j in read_annotations(f)]
    frame = score_judgments(judgments)
    for model, row in frame.iterrows():
        name = "NullModel" if model == "example" else model  # NullModel's file names its generator 'example'
        expected = board.loc[name]
        for col in COLUMNS:
            assert row[col] == pytest.approx(expected[col], abs=1e-6), (model, col)
        assert row["n_failed"] == 0
        # AlpacaEval's avg_length averages the model_outputs file; the annotations hold the same outputs.
        assert abs(int(row["avg_length"]) - int(expected["avg_length"])) <= 1, model


def test_failed_pairs_are_counted_not_scored() -> None:
    prefs = np.array([2.0, 1.0, np.nan, 1.5, np.nan])
    r = win_rate(prefs, output_lengths=[10, 20, 30, 40, 50])
    assert r.n_failed == 2
    assert r.n_total == 3
    assert (r.n_wins, r.n_wins_base, r.n_draws) == (1, 1, 1)
    assert r.win_rate == pytest.approx(50.0)
    assert r.discrete_win_rate == pytest.approx(50.0)
    assert r.avg_length == 30


def test_out_of_range_preference_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\[1, 2\]"):
        win_rate([0.0, 2.0])
