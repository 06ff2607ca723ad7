"""Terminal tables: readable at 100 columns with names in full, everything with --wide or -o, unknown values
shown as unknown, and the notes and fixes the commands print around them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.cli.common import MISSING, compact_columns, print_frame
from pasture.io import write_model_outputs
from pasture.leaderboard import leaderboard, resolve_key
from pasture.local_models import free_port
from pasture.records import ModelOutput
from pasture.store import Store
from test_resources import load_module

REPO = Path(__file__).resolve().parents[2]
ANNOTATIONS = "weighted_alpaca_eval_gpt4_turbo/annotations.json.gz"
GPT35 = ("gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106_concise", "gpt-3.5-turbo-1106_verbose")


def _table_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line[:1] in "┏┃┡│└"]


@pytest.mark.shared
def test_score_fits_100_columns_with_names_in_full(alpacaeval: Path, tmp_path: Path) -> None:
    files = [str(alpacaeval / "results" / m / ANNOTATIONS) for m in GPT35]
    result = CliRunner(env={"COLUMNS": "100"}).invoke(main, ["score", *files, "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    lines = _table_lines(result.output)
    assert lines and max(len(line) for line in lines) <= 100
    rows = [line for line in lines if line.startswith("│")]
    for name in GPT35:  # each full name is the first cell of exactly one row: the three rows are distinguishable
        assert sum(line.split("│")[1].strip() == name for line in rows) == 1, name
    assert "more columns:" in result.output and "--wide" in result.output
    # --wide and -o show every column
    out = tmp_path / "score.csv"
    wide = CliRunner(env={"COLUMNS": "100"}).invoke(
        main, ["score", *files, "--bootstrap", "0", "--wide", "-o", str(out)]
    )
    assert wide.exit_code == 0, wide.output
    columns = pd.read_csv(out, index_col=0).columns
    header = next(line for line in _table_lines(wide.output) if line.startswith("┃"))
    assert all(c in header for c in columns) and "more columns" not in wide.output


def test_compact_view_keeps_key_columns_and_names(capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.DataFrame(
        {
            "n_wins": [1, 2],
            "win_rate": [10.0, 20.0],
            "some_long_diagnostic_column": [1.0, 2.0],
            "another_long_diagnostic_column": [1.0, 2.0],
            "length_controlled_winrate": [11.0, 21.0],
        },
        index=pd.Index(["a-model-with-a-rather-long-name_v1", "a-model-with-a-rather-long-name_v2"], name="model"),
    )
    # 75 columns: names (34 + 4 for borders), then key columns first ('win_rate' 8 + 3, LC's longest header
    # line 'controlled_' 11 + 3), then others while room is left ('n_wins' 6 + 3: 72 in all; a diagnostic
    # column's 'diagnostic_' would need 14 more)
    assert compact_columns(frame, 75) == ["n_wins", "win_rate", "length_controlled_winrate"]
    assert compact_columns(frame, 70) == ["win_rate", "length_controlled_winrate"]
    assert compact_columns(frame, 200) == list(frame.columns)
    print_frame(frame, title="t")
    lines = capsys.readouterr().out.splitlines()
    assert "a-model-with-a-rather-long-name_v2" in "\n".join(lines)


def test_missing_values_are_shown_as_unknown_never_zero(capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.DataFrame({"judge_cost_usd": [math.nan, 0.0]}, index=pd.Index(["unpriced", "local"], name="model"))
    print_frame(frame, title="t")
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in capsys.readouterr().out.splitlines()
            if line.startswith("│")}  # fmt: skip
    assert rows == {"unpriced": MISSING, "local": "0.00"}


def _tiny(tmp_path: Path) -> list[str]:
    instructions = ["Name a fruit.", "Say hello.", "What is 2+2?"]
    (tmp_path / "tiny.jsonl").write_text("".join(json.dumps({"instruction": t}) + "\n" for t in instructions))
    write_model_outputs([ModelOutput(instruction=t, output="ok", generator="ref") for t in instructions],
                        tmp_path / "ref.json")  # fmt: skip
    write_model_outputs([ModelOutput(instruction=t, output=f"answer {t}", generator="mine") for t in instructions],
                        tmp_path / "mine.json")  # fmt: skip
    return [str(tmp_path / "mine.json"), "--eval-set", str(tmp_path / "tiny.jsonl"),
            "--reference", str(tmp_path / "ref.json"), "--store", str(tmp_path / "s.db"), "--no-progress"]  # fmt: skip


def test_a_judge_without_a_price_costs_unknown_not_zero(tmp_path: Path) -> None:
    """A real OpenAI-compatible server (the benchmarks' stub) for a model with no known price."""
    stub = load_module(REPO / "benchmarks" / "stub_openai_server.py")
    with stub.StubProcess(free_port()) as server:
        args = ["evaluate", *_tiny(tmp_path), "--judge", "smollm2-logprob-server", "--judge-base-url", server.base_url]
        result = CliRunner(env={"COLUMNS": "120"}).invoke(main, args)
        assert result.exit_code == 0, result.output
        assert server.requests() == 3
    assert "cost unknown" in result.output and "$0.0000" not in result.output  # the run's summary line
    with Store(tmp_path / "s.db") as store:
        frame = leaderboard(store, resolve_key(store)).frame
    assert math.isnan(frame.loc["mine", "judge_cost_usd"])
    header = next(line for line in _table_lines(result.output) if "judge" in line and line.startswith("┃"))
    cost_at = next(i for i, cell in enumerate(header.split("┃")) if "judge" in cell)
    row = next(line for line in _table_lines(result.output) if line.startswith("│ mine"))
    assert row.split("│")[cost_at].strip() == MISSING


def test_limit_cuts_full_output_files_to_the_kept_instructions(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", *_tiny(tmp_path), "--judge", "longer-wins", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "--limit 2: using 2 of the 3 outputs" in result.output
    with Store(tmp_path / "s.db") as store:
        frame = leaderboard(store, resolve_key(store)).frame
    assert frame.loc["mine", "n_total"] + frame.loc["mine", "n_failed"] == 2


@pytest.mark.shared
def test_a_generator_named_unlike_its_folder_gets_a_note(alpacaeval: Path, tmp_path: Path) -> None:
    path = alpacaeval / "results" / "NullModel" / ANNOTATIONS
    result = CliRunner().invoke(main, ["score", str(path), "--no-lc"])
    assert result.exit_code == 0, result.output
    note = next(line for line in result.output.splitlines() if line.startswith("note:"))
    assert "'example'" in note and "'NullModel'" in note
    # evaluate says how to use the folder's name, and --name does it
    ref = alpacaeval / "results" / "gpt4_1106_preview" / "model_outputs.json.gz"
    common = ["--eval-set", "alpaca_eval", "--alpaca-eval-file", str(ref), "--limit", "3", "--judge", "longer-wins",
              "--store", str(tmp_path / "s.db"), "--no-progress"]  # fmt: skip
    outputs = str(alpacaeval / "results" / "NullModel" / "model_outputs.json.gz")
    result = CliRunner().invoke(main, ["evaluate", outputs, *common])
    assert result.exit_code == 0, result.output
    assert "pass --generator NullModel" in result.output
    result = CliRunner().invoke(main, ["evaluate", outputs, *common, "--name", "NullModel"])
    assert result.exit_code == 0, result.output
    with Store(tmp_path / "s.db") as store:
        assert {"example", "NullModel"} <= set(leaderboard(store, resolve_key(store)).frame.index)


def test_an_unwritable_output_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    args = ["evaluate", *_tiny(tmp_path), "--judge", "longer-wins"]
    assert CliRunner().invoke(main, args).exit_code == 0
    result = CliRunner().invoke(main, ["leaderboard", "--store", str(tmp_path / "s.db"), "-o",
                                       str(tmp_path / "a-file" / "board.csv")])  # fmt: skip
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.startswith("pasture: error:")]
    assert len(lines) == 1 and "a-file" in lines[0] and "Traceback" not in result.output
