"""``pasture score`` on real annotation files: LC columns, intervals, and the line naming the LC inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pasture.cli import main


def _files(alpacaeval: Path, *models: str) -> list[str]:
    return [str(alpacaeval / "results" / m / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json.gz") for m in models]


@pytest.mark.slow
def test_two_files_fall_back_to_length_only_and_say_so(alpacaeval: Path, tmp_path: Path) -> None:
    out = tmp_path / "board.csv"
    files = _files(alpacaeval, "claude-2", "alpaca-7b")
    # without pasture's fixed AlpacaEval 2 inputs (tests/metrics/test_lc_shipped.py covers the default path)
    args = ["score", *files, "--no-shipped-lc-inputs", "--bootstrap", "30", "--seed", "2", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "lc inputs: LC length_only" in result.output
    assert "2 model(s) < 5 needed" in result.output
    assert "bootstrap: 30 paired resamples over instructions, seed 2" in result.output
    # the compact terminal view has no room for the note column, so each row's caveat is printed under it
    for model in ("claude-2", "alpaca-7b"):
        assert f"lc note, {model}: length-only GLM (no difficulty); without gamed-baseline rows" in result.output
    frame = pd.read_csv(out, index_col=0)
    assert {"win_rate", "length_controlled_winrate", "lc_method", "lc_ci_low", "win_rate_ci_high"} <= set(frame.columns)
    assert set(frame["lc_method"]) == {"length_only"}
    assert set(frame["lc_note"]) == {"length-only GLM (no difficulty); without gamed-baseline rows"}
    assert (frame["lc_ci_low"] < frame["length_controlled_winrate"]).all()


@pytest.mark.slow
def test_rebuilt_gamed_baselines_are_named_in_the_output(alpacaeval: Path) -> None:
    files = _files(
        alpacaeval, "claude-2", "alpaca-7b", "gpt-3.5-turbo-1106", "gpt4_0613_concise", "FuseChat-Gemma-2-9B-Instruct"
    )
    gamed = [
        f"--gamed-outputs={g}={alpacaeval / 'results' / g / 'model_outputs.json.gz'}"
        for g in ("gpt4_1106_preview_verbose", "gpt4_1106_preview_concise")
    ]
    weights = alpacaeval / "leaderboards" / "lc_glm_weights_baseline_gpt4_1106_preview.csv"
    args = ["score", *files, "--no-shipped-lc-inputs", "--glm-weights", str(weights), *gamed, "--bootstrap", "0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "difficulty=estimated, gamed baselines=rebuilt" in result.output
    assert "calibrated to the published coefficients of 5 models" in result.output


def test_bad_gamed_outputs_option_is_a_one_line_error(alpacaeval: Path) -> None:
    result = CliRunner().invoke(main, ["score", *_files(alpacaeval, "claude-2"), "--gamed-outputs", "nonsense"])
    assert result.exit_code == 2
    assert "--gamed-outputs expects NAME=PATH" in result.output
    assert "Traceback" not in result.output


def test_no_lc_keeps_the_win_rate_columns_only(alpacaeval: Path, tmp_path: Path) -> None:
    out = tmp_path / "wr.json"
    result = CliRunner().invoke(main, ["score", *_files(alpacaeval, "alpaca-7b"), "--no-lc", "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_json(out)
    assert "length_controlled_winrate" not in frame.columns
    assert frame.loc[0, "n_total"] == 805


def test_difficulty_lookup_position_is_an_option_and_is_said(
    annotation_file_from_preferences: Callable[[str, Path], Path], tmp_path: Path
) -> None:
    path = annotation_file_from_preferences("gpt35_turbo_instruct", tmp_path)  # 804 rows, one missing
    out = tmp_path / "score.csv"
    args = ["score", str(path), "--difficulty-lookup", "position", "--bootstrap", "0", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "difficulty lookup=position (AlpacaEval's board" in result.output
    frame = pd.read_csv(out, index_col=0)
    assert frame.loc["gpt35_turbo_instruct", "lc_note"].startswith("difficulty by row position as AlpacaEval's board")
    store = ["score", "--store", str(tmp_path / "s.db"), "--difficulty-lookup", "position"]
    refused = CliRunner().invoke(main, store)
    assert refused.exit_code != 0 and "which a store does not keep" in refused.output
    assert "Traceback" not in refused.output
    bad = CliRunner().invoke(main, ["score", str(path), "--difficulty-lookup", "row"])
    assert bad.exit_code == 2 and "'row' is not one of 'text', 'position'" in bad.output
