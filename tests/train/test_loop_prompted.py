"""``pasture loop --task model``: the iterative driver on a checkpoint that judges itself by prompt (a tiny policy
here, so the test is fast; the SmolLM2 run is tests/train/test_loop_smollm2.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from pasture.cli import main
from pasture.train.synthetic import extended_tokenizer, make_prompts
from pasture.train.tiny import tiny_llama


def _jsonl(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"instruction": p}) + "\n" for p in prompts))
    return path


def test_loop_on_a_checkpoint_that_judges_itself_resumes_without_new_judgments(tmp_path: Path) -> None:
    tok = extended_tokenizer()
    ckpt = tmp_path / "tiny"
    tiny_llama(tok).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    train = _jsonl(tmp_path / "train.jsonl", make_prompts(4, seed=1))
    ev = _jsonl(tmp_path / "eval.jsonl", make_prompts(2, seed=2))
    work = tmp_path / "w"
    args = [
        "loop", "--task", "model", "--model", str(ckpt), "--prompts", str(train), "--eval-prompts", str(ev),
        "--builder", "self_rewarding", "--builder-setting", "n=2", "--rounds", "1", "--steps", "1",
        "--batch-size", "2", "--max-new-tokens", "6", "--workdir", str(work),
    ]  # fmt: skip
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    row = json.loads((work / "self_rewarding-r0" / "row.json").read_text())
    assert row["n_train_examples"] >= 1 and row["n_train_examples"] + row["n_skipped"] == 4
    assert row["n_failed_judgments"] == 0 and row["n_failed_eval"] == 0
    with sqlite3.connect(work / "store.db") as conn:
        n = conn.execute("SELECT COUNT(*) FROM response_judgments").fetchone()[0]
        assert n >= 4 * 2  # every training sample judged by the policy's prompted self-judge
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    rows = [line[line.index('{"method"') :] for line in first.output.splitlines() if '{"method"' in line]
    assert len(rows) == 1
    assert rows == [line[line.index('{"method"') :] for line in again.output.splitlines() if '{"method"' in line]
    with sqlite3.connect(work / "store.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM response_judgments").fetchone()[0] == n


def test_loop_on_a_model_needs_its_prompts(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["loop", "--task", "model", "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2 and "--task model needs --prompts and --eval-prompts" in result.output
    assert not (tmp_path / "w").exists()
