"""The analysis commands end to end on real annotation files and a real store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pasture import import_annotations
from pasture.cli import main
from pasture.store import Store


def _file(alpacaeval: Path, model: str) -> str:
    return str(alpacaeval / f"results/{model}/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz")


def test_audit_command_flags_the_null_model(alpacaeval: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    board = str(alpacaeval / "leaderboards/alpaca_eval_2_leaderboard.csv")
    files = [_file(alpacaeval, m) for m in ("NullModel", "claude-2", "gpt4_gamed")]
    res = CliRunner().invoke(main, ["audit", *files, "--headline-board", board, "-o", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, index_col=0, keep_default_na=False)
    # NullModel's file names its generator 'example'
    assert table.loc["example", "flags"] == "constant_output, repeated_block, judge_injection"
    # with NullModel unnamed on the board ('example'), only two lifts remain (claude-2 1.6x, gpt4_gamed 3.3x):
    # gpt4_gamed's is 1.3x their median, below the relative threshold, so only extreme_length fires here
    assert table.loc["gpt4_gamed", "flags"] == "extreme_length"
    assert table.loc["claude-2", "flags"] == ""
    assert "text addressed to the judge" in res.output


def test_audit_command_shows_verbosity_per_family_as_information(alpacaeval: Path) -> None:
    fam = ["gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106_verbose", "gpt-3.5-turbo-1106_concise"]
    res = CliRunner().invoke(main, ["audit", "--wide", *[_file(alpacaeval, m) for m in fam]])
    assert res.exit_code == 0, res.output
    assert "verbosity sensitivity per family" in res.output and "longer" in res.output
    assert "win_rate_per_doubling" in res.output


def test_style_control_and_bradley_terry_commands(alpacaeval: Path, tmp_path: Path) -> None:
    files = [_file(alpacaeval, m) for m in ("claude-2", "alpaca-7b")]
    out = tmp_path / "sc.json"
    res = CliRunner().invoke(main, ["style-control", *files, "--feature", "bold", "--bootstrap", "5", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "style_bold" in res.output and "style_length" not in res.output
    rows = pd.read_json(out)
    assert set(rows["model"]) == {"claude-2", "alpaca-7b"}
    res = CliRunner().invoke(main, ["bradley-terry", *files, "--bootstrap", "5"])
    assert res.exit_code == 0, res.output
    assert "separability" in res.output and "17.19" in res.output  # claude-2's raw win rate
    res = CliRunner().invoke(main, ["style-control", *files, "--pooling", "anchored", "--bootstrap", "0"])
    assert res.exit_code == 2 and "anchors" in res.output


def test_commands_read_a_store(alpacaeval: Path, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with Store(db) as store:
        import_annotations(store, [_file(alpacaeval, "claude-2")])
    res = CliRunner().invoke(main, ["bradley-terry", "--store", str(db), "--bootstrap", "0"])
    assert res.exit_code == 0, res.output
    assert "claude-2" in res.output
    res = CliRunner().invoke(
        main,
        ["analyze-judge", "--store", str(db), "--judge", "weighted_alpaca_eval_gpt4_turbo", "--gold-judge", "a32a87"],
    )
    assert res.exit_code == 0, res.output
    assert "Gold agreement" in res.output and "(gold)" in res.output
    res = CliRunner().invoke(main, ["analyze-judge", "--store", str(db), "--judge", "nobody", "--gold-judge", "x"])
    assert res.exit_code == 2 and "0 judges match 'nobody'" in res.output
    res = CliRunner().invoke(main, ["audit", "--store", str(tmp_path / "missing.db")])
    assert res.exit_code == 2 and "no such store" in res.output


@pytest.mark.parametrize("args", [["audit"], ["style-control"], ["bradley-terry"]])
def test_no_input_is_a_usage_error(args: list[str]) -> None:
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2
