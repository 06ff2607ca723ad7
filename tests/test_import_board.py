"""From AlpacaEval files to a board and a report: `pasture import`, `pasture leaderboard`, `pasture report`; and
`score --store` counting a shared verdict once per model, as `score FILES` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.scoring import score_files, score_store
from pasture.store import Store

RAW = ["win_rate", "standard_error", "n_wins", "n_wins_base", "n_draws", "n_total", "discrete_win_rate", "avg_length"]


def _official_files(alpacaeval: Path) -> list[Path]:
    return sorted(alpacaeval.glob("results/*/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz"))


def _import(files: list[Path], store: Path) -> str:
    result = CliRunner().invoke(main, ["import", *map(str, files), "--store", str(store)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_score_store_counts_each_models_rows_like_the_files(alpacaeval: Path, tmp_path: Path) -> None:
    files = _official_files(alpacaeval)
    assert len(files) == 10
    _import(files, tmp_path / "p.db")
    with Store(tmp_path / "p.db") as store:
        from_store = score_store(store, lc=False, bootstrap_resamples=0)
    from_files = score_files(files, lc=False, bootstrap_resamples=0)
    assert sorted(from_store.index) == sorted(from_files.index)
    # every model keeps all its rows: 35 questions are shared by two or more models and stored once
    for column in ("n_wins", "n_wins_base", "n_draws", "n_total", "n_failed", "avg_length"):
        assert from_store[column].to_dict() == from_files[column].to_dict(), column
    assert from_store.loc["claude-2", "n_total"] == 805
    # a shared question's stored verdict is the first file's (import order); each model's win rate is exactly
    # the mean over its own rows of those verdicts, so models whose shared verdicts agree equal their file
    first: dict[str, float] = {}
    rows: dict[str, list[str]] = {}
    for path in files:
        for j in read_annotations(path):
            first.setdefault(j.key, j.preference)  # type: ignore[arg-type]
            rows.setdefault(j.generator_2, []).append(j.key)
    for model, keys in rows.items():
        expected = 100 * float(np.mean([first[k] - 1 for k in keys]))
        assert from_store.loc[model, "win_rate"] == pytest.approx(expected, rel=0, abs=1e-9), model
    assert from_store.loc["gpt4_0613_concise", "win_rate"] == pytest.approx(
        from_files.loc["gpt4_0613_concise", "win_rate"], rel=0, abs=1e-9
    )
    assert from_files.loc["gpt4_0613_concise", "win_rate"] == pytest.approx(9.40, abs=0.005)
    assert (from_store["win_rate"] - from_files["win_rate"]).abs().max() < 0.02
    # the analyses (style-control, audit) read a store the same way: every model keeps its 805 rows
    from pasture.cli.style_control import load_pairs

    pairs_store = load_pairs((), tmp_path / "p.db", None)
    pairs_files = load_pairs(tuple(files), None, None)
    assert pairs_store.groupby("generator_2").size().to_dict() == pairs_files.groupby("generator_2").size().to_dict()
    assert (pairs_store["generator_2"] == "claude-2").sum() == 805


def test_score_store_with_two_judges_asks_which(tmp_path: Path, alpacaeval: Path) -> None:
    other = alpacaeval / "other_annotators" / "results" / "alpaca-7b" / "alpaca_eval_gpt4" / "annotations.json.gz"
    official = alpacaeval / "results" / "alpaca-7b" / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json.gz"
    _import([other, official], tmp_path / "p.db")
    with Store(tmp_path / "p.db") as store:
        with pytest.raises(InputError, match=r"judgments of 2 judges \(alpaca_eval_gpt4 .*pick one with --judge"):
            score_store(store, lc=False, bootstrap_resamples=0)
        frame = score_store(store, judge="alpaca_eval_gpt4", lc=False, bootstrap_resamples=0)
    assert frame.loc["alpaca-7b", "n_draws"] == 16 and frame.loc["alpaca-7b", "n_total"] == 805


@pytest.mark.slow
def test_three_line_path_from_alpacaeval_files_to_board_and_report(alpacaeval: Path, tmp_path: Path) -> None:
    """README's path, exactly: import the files, show the board, write the report (AlpacaEval 1's annotator)."""
    root = alpacaeval / "other_annotators"
    files = [
        p
        for p in sorted(root.glob("results/*/*/annotations.json.gz"))
        if {j.judge_name for j in read_annotations(p)} == {"alpaca_eval_gpt4"}
    ]
    assert len(files) == 7
    store = tmp_path / "p.db"
    runner = CliRunner()
    out = _import(files, store)
    assert "board alpaca_eval_gpt4" in out and "7 model(s) recorded" in out
    board = runner.invoke(main, ["leaderboard", "--store", str(store), "-o", str(tmp_path / "board.csv")])
    assert board.exit_code == 0, board.output
    assert "models vs text_davinci_003, judged by alpaca_eval_gpt4" in " ".join(board.output.split())  # titles wrap
    report = runner.invoke(main, ["report", "--store", str(store), "-o", str(tmp_path / "report.html")])
    assert report.exit_code == 0, report.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "alpaca_eval_gpt4" in html and "template is unknown" in html
    # the board's raw columns are the official AlpacaEval 1 board's
    frame = pd.read_csv(tmp_path / "board.csv", index_col=0)
    official = pd.read_csv(root / "leaderboards" / "alpaca_eval_gpt4_leaderboard.csv", index_col=0)
    assert len(frame) == 7
    for model in frame.index:
        for column in RAW:
            assert frame.loc[model, column] == pytest.approx(official.loc[model, column], rel=0, abs=1e-9), (
                model,
                column,
            )
    # a second import writes nothing and keeps one board
    again = _import(files, store)
    assert "0 new" in again
    listing = runner.invoke(main, ["leaderboard", "--store", str(store), "--list"])
    assert listing.output.count("alpaca_eval_gpt4") == 1
