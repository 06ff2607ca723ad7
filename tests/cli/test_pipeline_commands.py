"""generate / evaluate / leaderboard / report / demo: complete --help and one-line errors for bad arguments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pasture.cli import main

COMMANDS = ["generate", "evaluate", "leaderboard", "report", "demo"]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_documents_every_option(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0
    command = main.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None and command.help and len(command.help) > 60
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert param.help, f"{name} --{param.name} has no help text"  # type: ignore[attr-defined]
            assert param.opts[0] in result.output


def _one_line_error(args: list[str], expected: str) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert expected in lines[0], lines[0]
    return lines[0]


def test_missing_model_outputs_file(tmp_path: Path) -> None:
    line = _one_line_error(
        [
            "evaluate",
            str(tmp_path / "nope.json"),
            "--reference",
            str(tmp_path / "nope.json"),
            "--judge",
            "longer-wins",
            "--store",
            str(tmp_path / "s.db"),
        ],
        "file not found",
    )
    assert line.startswith("pasture: error: ") and "nope.json" in line


def test_unknown_judge(tmp_path: Path) -> None:
    _one_line_error(
        ["evaluate", "x.json", "--judge", "no-such-judge", "--store", str(tmp_path / "s.db")], "unknown judge"
    )


def test_eval_set_mismatch(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps([{"instruction": "not in the demo set", "output": "x", "generator": "g"}]))
    _one_line_error(
        [
            "evaluate",
            str(outputs),
            "--eval-set",
            "demo",
            "--reference",
            str(outputs),
            "--judge",
            "longer-wins",
            "--store",
            str(tmp_path / "s.db"),
        ],
        "instruction not in eval set 'demo'",
    )


def test_missing_eval_set_file(tmp_path: Path) -> None:
    _one_line_error(
        [
            "generate",
            "--model",
            "smollm2",
            "--name",
            "x",
            "--eval-set",
            str(tmp_path / "set.csv"),
            "--store",
            str(tmp_path / "s.db"),
        ],
        "eval set not found",
    )


def test_missing_gguf_and_bad_model_spec(tmp_path: Path) -> None:
    _one_line_error(
        ["generate", "--model", str(tmp_path / "m.gguf"), "--name", "x", "--store", str(tmp_path / "s.db")],
        "GGUF file not found",
    )
    _one_line_error(
        ["generate", "--model", "what-is-this", "--name", "x", "--store", str(tmp_path / "s.db")],
        "cannot read model spec",
    )


def test_bad_sampling_arguments(tmp_path: Path) -> None:
    _one_line_error(
        ["generate", "--model", "smollm2", "--name", "x", "--max-tokens", "0", "--store", str(tmp_path / "s.db")],
        "max tokens must be at least 1",
    )
    _one_line_error(
        ["generate", "--model", "smollm2", "--name", "x", "--provider-arg", "oops", "--store", str(tmp_path / "s.db")],
        "KEY=VALUE",
    )


def test_leaderboard_and_report_without_a_store(tmp_path: Path) -> None:
    _one_line_error(["leaderboard", "--store", str(tmp_path / "none.db")], "store not found")
    _one_line_error(["report", "--store", str(tmp_path / "none.db")], "store not found")


def test_leaderboard_on_an_empty_store(tmp_path: Path) -> None:
    from pasture.store import Store

    Store(tmp_path / "s.db").close()
    _one_line_error(["leaderboard", "--store", str(tmp_path / "s.db")], "no leaderboard yet")


@pytest.mark.slow
@pytest.mark.model
def test_generate_then_evaluate_with_model(tmp_path: Path, smollm2_gguf: Path, check_board: Any) -> None:
    """generate a reference, then evaluate --model (generates and judges); both through the CLI."""
    eval_set = tmp_path / "two.jsonl"
    eval_set.write_text('{"instruction": "Say hi."}\n{"instruction": "Name a colour."}\n')
    common = ["--eval-set", str(eval_set), "--max-tokens", "4", "--temperature", "0", "--store", str(tmp_path / "s.db")]
    runner = CliRunner()
    out = tmp_path / "ref.json"
    r = runner.invoke(
        main, ["generate", "--model", "smollm2", "--name", "ref", *common, "-o", str(out), "--no-progress"]
    )
    assert r.exit_code == 0, r.output
    assert "ref: 2 outputs (2 new" in r.output and len(json.loads(out.read_text())) == 2
    r = runner.invoke(
        main,
        [
            "evaluate",
            "--model",
            "smollm2",
            "--name",
            "sys",
            "--system-prompt",
            "Be brief.",
            *common,
            "--reference-generator",
            "ref",
            "--judge",
            "longer-wins",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "sys: 2 outputs (2 new" in r.output and "2 judgments" in r.output and "sys" in r.output
    from pasture.leaderboard import leaderboard, resolve_key
    from pasture.store import Store

    with Store(tmp_path / "s.db") as store:
        board = leaderboard(store, resolve_key(store))
    check_board(board.frame, board.judgments, {"sys": 2})
    # longer-wins by hand from the stored texts: the reference's are the ones `generate` wrote to ref.json
    reference = {row["instruction"]: row["output"] for row in json.loads(out.read_text())}
    by_hand = []
    for j in board.judgments:
        assert j.output_1 == reference[j.instruction]
        by_hand.append(1.5 + 0.5 * ((len(j.output_2) > len(j.output_1)) - (len(j.output_2) < len(j.output_1))))
    assert [j.preference for j in board.judgments] == by_hand
    assert board.frame.loc["sys", "win_rate"] == pytest.approx(100 * sum(p - 1 for p in by_hand) / 2)


def test_refine_steps_on_ray_is_a_one_line_error(tmp_path: Path) -> None:
    _one_line_error(
        [
            "generate",
            "--model",
            "smollm2",
            "--name",
            "x",
            "--refine-steps",
            "2",
            "--ray",
            "auto",
            "--store",
            str(tmp_path / "s.db"),
        ],
        "--refine-steps runs the chain in this process",
    )
