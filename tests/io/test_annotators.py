"""AlpacaEval annotation files of any annotator, against any reference: draw coding, missing verdicts and rows,
imported judges, mixed files; and the raw columns of the real files of three annotators against their boards."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.errors import InputError
from pasture.io import read_annotations, read_rows, split_by_annotator
from pasture.judges import get_judge
from pasture.records import (
    IMPORTED_JUDGE_PROVIDER,
    IMPORTED_TEMPLATE_MARKER,
    OFFICIAL_JUDGE_ALIASES,
    JudgeFingerprint,
    annotator_fingerprint,
    imported_judge_fingerprint,
    sha256_text,
)
from pasture.scoring import score_files
from pasture.store import Store
from pasture.transfer import import_annotations

RAW = ["win_rate", "standard_error", "n_wins", "n_wins_base", "n_draws", "n_total", "discrete_win_rate", "avg_length"]
COUNTS = ["n_wins", "n_wins_base", "n_draws", "n_total", "avg_length"]


def _rows(prefs: list[object], *, annotator: str = "alpaca_eval_gpt4", model: str = "m", lengths: int = 3) -> list:
    return [
        {
            "instruction": f"question {k}",
            "output_1": "ref",
            "generator_1": "text_davinci_003",
            "output_2": "x" * (lengths + k),
            "generator_2": model,
            "annotator": annotator,
            "preference": p,
        }
        for k, p in enumerate(prefs)
    ]


def _write(tmp_path: Path, rows: list, name: str = "annotations.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


# -- rules, pinned on small files ------------------------------------------------------------------------------
def test_draws_coded_0_or_1_5_count_as_draws_and_in_n_total(tmp_path: Path) -> None:
    # AlpacaEval 1 wrote a draw as 0, AlpacaEval 2 as 1.5; strings are numbers too
    path = _write(tmp_path, _rows([2, 1, 0, 1.5, "2", "0", 1.0]))
    row = score_files([path], lc=False, bootstrap_resamples=0).loc["m"]
    assert (row["n_wins"], row["n_wins_base"], row["n_draws"], row["n_total"]) == (2, 2, 3, 7)
    # win rate: mean(pref - 1) with draws as 0.5 -> (1 + 0 + .5 + .5 + 1 + .5 + 0) / 7
    assert row["win_rate"] == pytest.approx(100 * 3.5 / 7)
    assert row["discrete_win_rate"] == pytest.approx(100 * (2 + 3 / 2) / 7)
    assert [j.preference for j in read_annotations(path)] == [2.0, 1.0, 1.5, 1.5, 2.0, 1.5, 1.0]


def test_missing_verdicts_are_failed_not_scored_and_missing_rows_shrink_n_total(tmp_path: Path) -> None:
    prefs: list[object] = [2, None, "", float("nan"), 1, 1]
    path = _write(tmp_path, _rows(prefs))
    row = score_files([path], lc=False, bootstrap_resamples=0).loc["m"]
    assert row["n_total"] == 3 and row["n_failed"] == 3
    assert row["win_rate"] == pytest.approx(100 / 3)
    # avg_length is over every output of the model, judged or not (as AlpacaEval): lengths 3..8
    assert row["avg_length"] == int(sum(3 + k for k in range(6)) / 6)
    fewer = _write(tmp_path, _rows([2, 1, 1, 2])[:3], "fewer.json")  # a file with missing rows
    assert score_files([fewer], lc=False, bootstrap_resamples=0).loc["m", "n_total"] == 3


@pytest.mark.parametrize("bad", [0.5, 3, -1, "win", True])
def test_preferences_outside_the_coding_are_one_line_errors(tmp_path: Path, bad: object) -> None:
    path = _write(tmp_path, _rows([2, bad]))
    with pytest.raises(InputError, match=r"row 2: field 'preference'.*0 \(draw\)"):
        read_annotations(path)


def test_unknown_annotator_becomes_an_imported_judge_kept_apart(tmp_path: Path) -> None:
    a = read_annotations(_write(tmp_path, _rows([2, 1]), "a.json"))
    b = read_annotations(_write(tmp_path, _rows([2, 1], annotator="chatgpt_fn"), "b.json"))
    official = read_annotations(_write(tmp_path, _rows([2, 1], annotator="weighted_alpaca_eval_gpt4_turbo"), "c.json"))
    fp = imported_judge_fingerprint("alpaca_eval_gpt4")
    assert fp.provider == IMPORTED_JUDGE_PROVIDER and fp.model == "alpaca_eval_gpt4" and fp.imported
    assert fp.template_digest == IMPORTED_TEMPLATE_MARKER
    assert {j.judge_digest for j in a} == {fp.digest}
    assert {j.judge_digest for j in b} == {imported_judge_fingerprint("chatgpt_fn").digest} != {fp.digest}
    assert {j.judge_digest for j in official} == {OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"].digest}
    # the same question under two judges is two keys: an imported verdict never answers another judge
    assert a[0].key != b[0].key != official[0].key
    assert (
        annotator_fingerprint("weighted_alpaca_eval_gpt4_turbo")
        is OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"]
    )


def test_a_live_judge_can_never_have_an_imported_fingerprint(shared: Path) -> None:
    # the reserved provider and template marker go together: neither can be forged alone
    with pytest.raises(ValueError, match="reserved"):
        JudgeFingerprint(provider="imported", model="alpaca_eval_gpt4", template_digest=sha256_text("t"), parser="p")
    with pytest.raises(ValueError, match="reserved"):
        JudgeFingerprint(
            provider="openai", model="alpaca_eval_gpt4", template_digest=IMPORTED_TEMPLATE_MARKER, parser="p"
        )
    # configured judges, even one whose model id is the annotator's name, differ from every imported judge
    template = shared / "alpacaeval" / "judge_config" / "alpaca_eval_clf.txt"
    live = [
        get_judge("weighted_alpaca_eval_gpt4_turbo", template=str(template)).fingerprint,
        get_judge("weighted_alpaca_eval_gpt4_turbo", template=str(template), model="alpaca_eval_gpt4").fingerprint,
        get_judge("longer-wins").fingerprint,
    ]
    for fp in live:
        assert not fp.imported and fp.template_digest != IMPORTED_TEMPLATE_MARKER
        for name in ("alpaca_eval_gpt4", "gpt-4-1106-preview", fp.model):
            assert fp.digest != imported_judge_fingerprint(name).digest


def test_mixed_file_is_named_with_counts_and_can_be_split(tmp_path: Path) -> None:
    rows = _rows([2, 1, 2], model="m") + _rows([1, 1], annotator="chatgpt_fn", model="m2")
    path = _write(tmp_path, rows)
    with pytest.raises(InputError) as err:
        read_annotations(path)
    message = str(err.value)
    assert "mixed file: 2 annotators" in message
    assert "3 rows by 'alpaca_eval_gpt4'" in message and "2 rows by 'chatgpt_fn'" in message
    assert "split_by_annotator" in message and "\n" not in message
    parts = split_by_annotator(path, tmp_path / "split")
    assert sorted(parts) == ["alpaca_eval_gpt4", "chatgpt_fn"]
    assert [len(read_rows(parts[k])) for k in sorted(parts)] == [3, 2]
    frame = score_files(list(parts.values()), lc=False, bootstrap_resamples=0)
    assert frame.loc["m", "n_total"] == 3 and frame.loc["m2", "n_total"] == 2
    result = CliRunner().invoke(main, ["score", str(path), "--no-lc"])
    assert result.exit_code == 2 and "mixed file" in result.output and "Traceback" not in result.output


def test_import_of_an_imported_judge_records_its_board(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows([2, 0, 1, None]))
    with Store(tmp_path / "s.db") as store:
        (report,) = import_annotations(store, [path])
        assert report.judge_name == "alpaca_eval_gpt4" and report.models == ("m",) and report.key is not None
        name, fp = store.get_judge(report.key.judge_digest)  # type: ignore[misc]
        assert name == "alpaca_eval_gpt4" and fp.imported
        (run,) = store.runs(kinds=["import"])
        assert run.generator == "m" and run.manifest.judge_name == "alpaca_eval_gpt4"
        assert run.manifest.inputs["reference_generator"] == "text_davinci_003"
        assert any("template is unknown" in n for n in run.manifest.notes)
        assert len(store.get_outputs(run.eval_set_digest, "m")) == 4


# -- real files of three annotators against their official boards ----------------------------------------------
BOARD_ROW = {("gpt4_1106_preview", "alpaca_eval_cot_gpt4_turbo_fn"): "gpt4_turbo"}
"""The cot board lists its reference's self-comparison as 'gpt4_turbo'; the file calls it gpt4_1106_preview."""


def test_real_files_of_other_annotators_equal_their_boards(alpacaeval: Path) -> None:
    root = alpacaeval / "other_annotators"
    checked: dict[str, int] = {}
    off_board: list[str] = []
    for path in sorted(root.glob("results/*/*/annotations.json.gz")):
        judgments = read_annotations(path)
        (annotator,) = {j.judge_name for j in judgments}
        board = pd.read_csv(root / "leaderboards" / f"{annotator}_leaderboard.csv", index_col=0)
        frame = score_files([path], lc=False, bootstrap_resamples=0)
        (model,) = frame.index
        row_name = BOARD_ROW.get((model, annotator), model)
        if row_name not in board.index:
            off_board.append(f"{model}/{annotator}")
            continue
        for column in COUNTS:
            assert frame.loc[model, column] == board.loc[row_name, column], (path, column)
        for column in ("win_rate", "standard_error", "discrete_win_rate"):
            # equal to the last bit or one ulp (AlpacaEval summed in another order): 26.459627329192546 vs ...543
            assert frame.loc[model, column] == pytest.approx(board.loc[row_name, column], rel=0, abs=1e-12), (
                path,
                column,
            )
        checked[annotator] = checked.get(annotator, 0) + 1
    # Mistral-7B-ReMax-v0.1's file sits in an alpaca_eval_gpt4_turbo_fn folder but its rows say alpaca_eval_gpt4
    assert checked == {"alpaca_eval_gpt4": 7, "alpaca_eval_cot_gpt4_turbo_fn": 3}
    assert off_board == ["Samba-CoE-v0.1/alpaca_eval_gpt4_turbo_fn"]  # not on the shared board of that annotator


def test_score_cli_accepts_other_annotators_files(alpacaeval: Path, tmp_path: Path) -> None:
    files = [
        str(alpacaeval / "other_annotators" / "results" / m / "alpaca_eval_gpt4" / "annotations.json.gz")
        for m in ("alpaca-7b", "minichat-3b")
    ]
    out = tmp_path / "s.csv"
    result = CliRunner().invoke(main, ["score", *files, "--no-lc", "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, index_col=0)
    assert frame.loc["alpaca-7b", "n_draws"] == 16 and frame.loc["minichat-3b", "n_total"] == 804


@pytest.mark.slow
def test_audit_and_style_control_read_other_annotators_files(alpacaeval: Path, tmp_path: Path) -> None:
    files = [
        str(alpacaeval / "other_annotators" / "results" / m / "alpaca_eval_gpt4" / "annotations.json.gz")
        for m in ("alpaca-7b", "minichat-3b", "wizardlm-13b")
    ]
    runner = CliRunner()
    audit = runner.invoke(main, ["audit", *files, "-o", str(tmp_path / "audit.csv")])
    assert audit.exit_code == 0, audit.output
    assert set(pd.read_csv(tmp_path / "audit.csv", index_col=0).index) == {"alpaca-7b", "minichat-3b", "wizardlm-13b"}
    style = runner.invoke(main, ["style-control", *files, "--bootstrap", "0", "-o", str(tmp_path / "style.csv")])
    assert style.exit_code == 0, style.output
    assert len(pd.read_csv(tmp_path / "style.csv", index_col=0)) >= 3
