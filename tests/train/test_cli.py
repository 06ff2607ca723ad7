"""`pasture train` and `pasture methods report` end to end on the tiny model: stored, resumable, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.evalsets import demo_eval_set
from pasture.evaluate import evaluate
from pasture.judges import get_judge
from pasture.records import ModelOutput
from pasture.store import Store
from pasture.train.core import checkpoint_done
from pasture.train.synthetic import demonstrations, make_prompts, task_tokenizer
from pasture.train.tiny import tiny_llama


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.slow
def test_synthetic_train_then_methods_report(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    code, text = _run("train", "dpo", "--task", "synthetic", "--quick", "-o", str(out))
    assert code == 0, text
    row = json.loads((out / "dpo" / "row.json").read_text())
    assert row["method"] == "dpo" and row["train_tokens"] > 0 and 0 <= row["win_rate_vs_start"] <= 100
    assert checkpoint_done(out / "dpo" / "checkpoint") and (out / "setup" / "setup.json").is_file()
    mtime = (out / "dpo" / "row.json").stat().st_mtime
    code, _ = _run("train", "dpo", "--task", "synthetic", "--quick", "-o", str(out))  # resumes: nothing redone
    assert code == 0 and (out / "dpo" / "row.json").stat().st_mtime == mtime
    # the full-size task is another configuration: the quick row is never returned for it
    code, text = _run("train", "dpo", "--task", "synthetic", "-o", str(out))
    assert code == 2 and "other settings" in text and "synthetic_task.n_sft_prompts: 300 → 2000" in text
    code, text = _run("train", "dpo", "--task", "synthetic", "--quick", "--beta", "0.3", "-o", str(out))
    assert code == 2 and "recipe's settings" in text and "--beta" in text
    code, text = _run("train", "sft", "--task", "synthetic", "--quick", "-o", str(out))
    assert code == 0, text
    code, text = _run("train", "reward_model", "--task", "synthetic", "--quick", "-o", str(out))
    assert code == 0, text
    accuracy = json.loads((out / "reward_model" / "accuracy.json").read_text())
    assert 0 <= accuracy["heldout_accuracy"] <= 1 and not (out / "reward_model" / "row.json").exists()
    code, text = _run("train", "best_of_n", "--task", "synthetic", "--quick", "-o", str(out))
    assert code == 0, text
    bon = json.loads((out / "best_of_n" / "row.json").read_text())
    assert set(bon["curve"]) == {"1", "4", "16"} and bon["generated_tokens"] > 0 and bon["wall_s"] > 0
    code, text = _run("methods", "report", str(out), "-o", str(tmp_path / "t.html"))
    assert code == 0, text
    page = (tmp_path / "t.html").read_text()
    assert "<td>dpo</td>" in page and "<td>sft</td>" in page and "KL to reference" in page
    assert "<td>best_of_n</td>" in page and "<td>reward_model</td>" not in page
    code, text = _run("methods", "report", str(out), "-o", str(tmp_path / "t.csv"))
    assert code == 0
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith("method,win_rate_vs_start,lc_vs_start")
    # the same rows as a section of the main report, next to a real (tiny) leaderboard; a hostile method name
    # (the name lives in row.json, not in the folder name) is escaped
    evil = dict(row, method=EVIL_METHOD)
    (out / "evil").mkdir()
    (out / "evil" / "row.json").write_text(json.dumps(evil), encoding="utf-8")
    store = _tiny_store(tmp_path / "s.db")
    code, text = _run("report", "--store", str(store), "--methods", str(out), "-o", str(tmp_path / "r.html"))
    assert code == 0, text
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = page[page.index('<table id="section-1"') :]
    section = section[: section.index("</table>")]
    assert EVIL_METHOD not in page and "<td>&lt;script&gt;x&lt;/script&gt;</td>" in section
    for name in ("dpo", "sft", "best_of_n"):
        assert f"<td>{name}</td>" in section
    assert f'<td data-v="{row["train_tokens"]!r}.0">{row["train_tokens"]}</td>' in section
    assert "KL to reference (nats)" in section and page.index('id="board"') < page.index('id="section-1"')


EVIL_METHOD = "<script>x</script>"


def _tiny_store(path: Path) -> Path:
    """A store with one real leaderboard: two outputs sets on the demo eval set, judged by the longer-wins judge."""
    eval_set = demo_eval_set(6)
    texts = eval_set.texts()
    with Store(path) as store:
        evaluate(
            store,
            eval_set=eval_set,
            model_outputs=[
                ModelOutput(instruction=t, output=f"a longer answer {k}", generator="m") for k, t in enumerate(texts)
            ],
            reference_outputs=[
                ModelOutput(instruction=t, output=f"ref {k}", generator="ref") for k, t in enumerate(texts)
            ],
            judge=get_judge("longer-wins"),
            progress=False,
        )
    return path


def test_train_from_files_on_a_tiny_checkpoint(tmp_path: Path) -> None:
    tok = task_tokenizer()
    ckpt = tmp_path / "tiny"
    tiny_llama(tok).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    prompts = make_prompts(16, seed=1)
    a, b = demonstrations(prompts, seed=1), demonstrations(prompts, seed=2)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"prompt": p, "chosen": x, "rejected": y}) + "\n" for p, x, y in zip(prompts, a, b, strict=True)
        )
    )
    out = tmp_path / "dpo"
    code, text = _run(
        "train", "dpo", "--model", str(ckpt), "--pairs", str(pairs), "--steps", "2", "--batch-size", "4", "-o", str(out)
    )
    assert code == 0, text
    stats = json.loads((out / "stats.json").read_text())
    assert stats["steps"] == 2 and stats["method"] == "dpo"
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["settings"] == {"beta": 0.1} and run["identity"]["train"]["steps"] == 2
    mtime = (out / "stats.json").stat().st_mtime_ns
    dpo_args = ["train", "dpo", "--model", str(ckpt), "--pairs", str(pairs), "--steps", "2", "--batch-size", "4"]
    code, text = _run(*dpo_args, "-o", str(out))  # the same settings: the stored run, not retrained
    assert code == 0 and (out / "stats.json").stat().st_mtime_ns == mtime
    code, text = _run(*dpo_args, "--beta", "0.3", "-o", str(out))  # other settings: never the old stats
    assert code == 2 and "settings.beta: 0.1 → 0.3" in text and (out / "stats.json").stat().st_mtime_ns == mtime
    code, text = _run(*dpo_args, "--beta", "0.3", "-o", str(tmp_path / "dpo-beta"))
    assert code == 0, text
    other = json.loads((tmp_path / "dpo-beta" / "stats.json").read_text())
    assert other["history"][0] == stats["history"][0] and other["history"][1:] != stats["history"][1:]
    pairs.write_text(pairs.read_text() + json.dumps({"prompt": "1+a=", "chosen": "0", "rejected": "1"}) + "\n")
    code, text = _run(*dpo_args, "-o", str(out))  # the data changed under the same path
    assert code == 2 and "inputs.pairs" in text
    (out / "run.json").unlink()
    code, text = _run(*dpo_args, "-o", str(out))
    assert code == 2 and "no run.json" in text
    code, text = _run(
        "train", "reward_model", "--model", str(ckpt), "--pairs", str(pairs), "--steps", "2", "-o", str(tmp_path / "rm")
    )
    assert code == 0, text
    prompts_file = tmp_path / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"instruction": p}) + "\n" for p in prompts[:8]))
    code, text = _run(
        "train",
        "rloo",
        "--model",
        str(ckpt),
        "--prompts",
        str(prompts_file),
        "--reward-model",
        str(tmp_path / "rm"),
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--max-new-tokens",
        "4",
        "-o",
        str(tmp_path / "rloo"),
    )
    assert code == 0, text
    assert checkpoint_done(tmp_path / "rloo")


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    code, text = _run("methods", "report", str(tmp_path))
    assert code == 2 and "pasture: error:" in text and "row.json" in text
    # the methods folder is read before the store is opened: a bad one fails first and writes nothing
    report = tmp_path / "r.html"
    code, text = _run("report", "--store", str(tmp_path / "none.db"), "--methods", str(tmp_path), "-o", str(report))
    assert code == 2 and "row.json" in text and not report.exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\nnot json\n')
    tok = task_tokenizer()
    ckpt = tmp_path / "tiny"
    tiny_llama(tok).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    code, text = _run("train", "dpo", "--model", str(ckpt), "--pairs", str(bad), "-o", str(tmp_path / "o"))
    assert code == 2 and "row 2" in text and "invalid JSON" in text
    assert not (tmp_path / "o").exists()
    code, text = _run("train", "dpo", "--model", str(tmp_path / "nope"), "--pairs", str(bad), "-o", str(tmp_path / "o"))
    assert code == 2 and "no config.json" in text
    code, text = _run("train", "ppo", "--model", str(ckpt), "-o", str(tmp_path / "o"))
    assert code == 2 and "--prompts" in text
    farm = ["methods", "farm", "--prompts", str(bad), "--eval-prompts", str(bad), "--workdir", str(tmp_path / "w")]
    code, text = _run(*farm, "--method", "simpo", "--setting", "epsilon=0.1")
    assert code == 2 and "SimPOSettings has no setting 'epsilon'" in text and "gamma (default 1.0)" in text
    code, text = _run(*farm, "--method", "dpo", "--setting", "beta")
    assert code == 2 and "KEY=VALUE" in text and not (tmp_path / "w").exists()
