"""``pasture simulate`` end to end on programmatic judges: byte-identical datasets across processes,
the documented formats, and clear errors for bad pool files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.io import write_annotations, write_model_outputs
from pasture.records import Judgment
from pasture.simulate.synthetic import arithmetic_oracle, arithmetic_outputs

POOL = """
name = "oracle-and-length"
p = 0.25
seed = 7

[[member]]
name = "oracle"
judge = "oracle.toml"
weight = 3

[[member]]
name = "longer"
judge = "longer-wins"
"""

ORACLE_JUDGE = """
name = "arithmetic-oracle"
[provider]
name = "python"
function = "pasture.simulate.synthetic:arithmetic_oracle"
"""


@pytest.fixture()
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    outputs = arithmetic_outputs(300, seed=3)
    # two files, one per generator, as a user would have them
    write_model_outputs([o for o in outputs if o.generator == "correct"], tmp_path / "correct.json")
    write_model_outputs([o for o in outputs if o.generator == "wrong"], tmp_path / "wrong.json")
    (tmp_path / "oracle.toml").write_text(ORACLE_JUDGE, encoding="utf-8")
    (tmp_path / "pool.toml").write_text(POOL, encoding="utf-8")
    return tmp_path, tmp_path / "pool.toml"


def _run_in_subprocess(folder: Path, pool: Path, tag: str, hash_seed: str) -> Path:
    out = folder / f"out_{tag}"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    cmd = [
        sys.executable, "-m", "pasture", "simulate", str(folder / "correct.json"), str(folder / "wrong.json"),
        "--pool", str(pool), "--out", str(out), "--store", str(folder / f"{tag}.db"),
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.slow
def test_same_seed_gives_byte_identical_files_in_two_processes(inputs: tuple[Path, Path]) -> None:
    folder, pool = inputs
    a = _run_in_subprocess(folder, pool, "a", "1")
    b = _run_in_subprocess(folder, pool, "b", "2")
    names = sorted(p.name for p in a.iterdir())
    assert names == ["alpaca_farm.jsonl", "labels.jsonl", "manifest.json", "trl.jsonl", "trl_chat.jsonl"]
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name

    # what the files hold
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["n_pairs"] == 300 and manifest["n_labels_ok"] == 300
    assert [m["name"] for m in manifest["pool"]["members"]] == ["oracle", "longer"]
    assert manifest["pool"]["members"][0]["weight"] == 0.75
    labels = [json.loads(line) for line in (a / "labels.jsonl").read_text().splitlines()]
    trl = [json.loads(line) for line in (a / "trl.jsonl").read_text().splitlines()]
    chat = [json.loads(line) for line in (a / "trl_chat.jsonl").read_text().splitlines()]
    farm = [json.loads(line) for line in (a / "alpaca_farm.jsonl").read_text().splitlines()]
    usable = [lab for lab in labels if lab["preference"] != 1.5]
    assert len(trl) == len(chat) == len(farm) == len(usable) == manifest["datasets"]["trl"]["n_rows"]
    for lab, t, c, f in zip(usable, trl, chat, farm, strict=True):
        pair = lab["pair"]
        winner = pair["output_2"] if lab["preference"] > 1.5 else pair["output_1"]
        loser = pair["output_1"] if lab["preference"] > 1.5 else pair["output_2"]
        assert t == {"prompt": pair["instruction"], "chosen": winner, "rejected": loser}
        assert c == {
            "prompt": [{"role": "user", "content": pair["instruction"]}],
            "chosen": [{"role": "assistant", "content": winner}],
            "rejected": [{"role": "assistant", "content": loser}],
        }
        assert f == {
            "instruction": pair["instruction"],
            "input": "",
            "output_1": pair["output_1"],
            "output_2": pair["output_2"],
            "preference": 2 if lab["preference"] > 1.5 else 1,
        }
        truth = arithmetic_oracle(pair["instruction"], pair["output_1"], pair["output_2"])
        if lab["annotator"] == "oracle":
            assert lab["clean_preference"] == truth
    # another seed gives other labels
    other = folder / "out_c"
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            str(folder / "correct.json"),
            str(folder / "wrong.json"),
            "--pool",
            str(pool),
            "--out",
            str(other),
            "--store",
            str(folder / "a.db"),
            "--seed",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (other / "labels.jsonl").read_bytes() != (a / "labels.jsonl").read_bytes()


def test_datasets_load_with_hf_datasets(inputs: tuple[Path, Path]) -> None:
    datasets = pytest.importorskip("datasets")
    folder, pool = inputs
    out = folder / "out"
    result = CliRunner().invoke(
        main,
        ["simulate", str(folder / "correct.json"), str(folder / "wrong.json"), "--pool", str(pool),
         "--out", str(out), "--store", str(folder / "s.db"), "--format", "trl_chat", "--format", "alpaca_farm"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    chat = datasets.load_dataset("json", data_files=str(out / "trl_chat.jsonl"), split="train")
    assert chat.column_names == ["prompt", "chosen", "rejected"]
    assert chat[0]["prompt"][0]["role"] == "user"
    farm = datasets.load_dataset("json", data_files=str(out / "alpaca_farm.jsonl"), split="train")
    assert set(farm.unique("preference")) <= {1, 2}
    assert not (out / "trl.jsonl").exists()


def test_measure_reports_the_pool_against_gold_annotations(inputs: tuple[Path, Path]) -> None:
    """--measure: every member labels every pair; gold from an annotations file (the oracle's verdicts,
    written with the slots of the original files, so half the sampled pairs need mirroring)."""
    folder, pool = inputs
    outputs = arithmetic_outputs(300, seed=3)
    right = {o.instruction: o.output for o in outputs if o.generator == "correct"}
    wrong = {o.instruction: o.output for o in outputs if o.generator == "wrong"}
    gold = [
        Judgment(
            judge_digest="0" * 64, judge_name="truth", instruction=i, output_1=right[i], generator_1="correct",
            output_2=wrong[i], generator_2="wrong", shown_first=1, preference=1.0,
        )
        for i in right
    ]  # fmt: skip
    write_annotations(gold, folder / "gold.json")
    out = folder / "measured"
    result = CliRunner().invoke(
        main,
        ["simulate", str(folder / "correct.json"), str(folder / "wrong.json"), "--pool", str(pool),
         "--out", str(out), "--store", str(folder / "m.db"), "--measure", "--gold", str(folder / "gold.json")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "gold labels for 300 of 300 pairs" in result.output
    report = pd.read_csv(out / "pool_report.csv", index_col=0)
    assert list(report.index) == ["oracle", "longer", "pool"]
    assert report.loc["oracle", "clean_gold_agreement"] == 1.0
    # longer-wins always picks the longer output; its noisy labels (p = 0.25) do so 75% of the time
    # (4 sigma over 300 labels: 4 * sqrt(0.25 * 0.75 / 300) = 0.1)
    assert abs(report.loc["longer", "prefers_longer"] - 0.75) <= 0.1
    assert (report.loc[["oracle", "longer"], "n_labels"] == 300).all()
    assert report.loc["pool", "weight"] == 1.0 and report.loc["oracle", "weight"] == 0.75
    # the length judge agrees with the truth about as often as length and correctness coincide (~half)
    assert 0.35 < report.loc["longer", "clean_gold_agreement"] < 0.65
    # p = 0.25 on 300 labels each: flip rate within 4 sigma = 4 * sqrt(0.25 * 0.75 / 300) = 0.1
    assert abs(report.loc["pool", "flip_rate"] - 0.25) <= 0.1


@pytest.mark.parametrize(
    ("pool_text", "message"),
    [
        ("name = 'x'\n", "at least one [[member]]"),
        ("[[member]]\nname = 'a'\n", "needs judge ="),
        ("[[member]]\njudge = 'no-such-judge'\n", "unknown judge"),
        ("[[member]]\njudge = 'longer-wins'\npersona = 'concise'\n", "persona needs a judge that asks a model"),
        ("[[member]]\njudge = 'longer-wins'\nweight = -1\n", "weight must be a positive"),
        ("p = 2\n[[member]]\njudge = 'longer-wins'\n", "flip probability"),
        ("colour = 1\n[[member]]\njudge = 'longer-wins'\n", "unknown key"),
        ("[[member\n", "not valid TOML"),
    ],
)
def test_bad_pool_files_are_one_line_errors(inputs: tuple[Path, Path], pool_text: str, message: str) -> None:
    folder, _ = inputs
    bad = folder / "bad.toml"
    bad.write_text(pool_text, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["simulate", str(folder / "correct.json"), "--pool", str(bad), "--out", str(folder / "o")]
    )
    assert result.exit_code == 2
    assert "pasture: error:" in result.output and message in result.output, result.output
    assert str(bad) in result.output
