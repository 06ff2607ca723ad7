"""`pasture train cut`: registered like every method, from a judgments file or in the synthetic recipe, and shown by
`pasture methods report`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.train.core import checkpoint_done
from pasture.train.registry import CUTSettings, get_method, method_for_settings
from pasture.train.synthetic import critic, demonstrations, extended_tokenizer, make_prompts
from pasture.train.tiny import tiny_llama


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_cut_is_registered_with_its_presets() -> None:
    assert get_method("cut").inputs == ("judgments",) and method_for_settings(CUTSettings.online()) == "cut"
    online = CUTSettings(online_preset=True)
    assert (online.lam, online.alpha) == (1.1, 1.0) and (CUTSettings().lam, CUTSettings().alpha) == (1.2, 0.5)
    assert (
        CUTSettings(online_preset=True, alpha=0.3).alpha == 0.3
        and CUTSettings(online_preset=True, alpha=0.3).lam == 1.1
    )
    code, text = _run("train", "cut", "--help")
    assert (
        code == 0
        and "--online-preset / --no-online-preset" in text
        and "--judgments" in text
        and "--good-ratio" in text
    )


def test_train_cut_from_a_judgments_file(tmp_path: Path) -> None:
    tok = extended_tokenizer()
    ckpt = tmp_path / "tiny"
    tiny_llama(tok).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    prompts = make_prompts(12, seed=1)
    rows = []
    for p, y in zip(prompts, demonstrations(prompts, seed=3), strict=True):
        good, critique = critic(p, y)
        rows.append({"instruction": p, "output": y, "good": good, "critique": critique})
    assert any(not r["good"] for r in rows)
    judgments = tmp_path / "judged.jsonl"
    judgments.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["train", "cut", "--model", str(ckpt), "--judgments", str(judgments), "--steps", "2", "--batch-size", "4"]
    out = tmp_path / "cut"
    code, text = _run(*args, "--online-preset", "-o", str(out))
    assert code == 0, text
    stats = json.loads((out / "stats.json").read_text())
    assert stats["steps"] == 2 and stats["method"] == "cut" and stats["metrics"]["n_bad"] > 0
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["settings"] == {"online_preset": True, "lam": 1.1, "alpha": 1.0, "good_ratio": 0.25}
    code, text = _run(*args, "--online-preset", "--alpha", "0.3", "-o", str(out))  # never the stored run
    assert code == 2 and "settings.alpha: 1.0 → 0.3" in text
    code, text = _run(*args, "--good-ratio", "none", "-o", str(tmp_path / "all-good"))  # an `X | None` setting
    assert code == 0, text
    assert json.loads((tmp_path / "all-good" / "run.json").read_text())["identity"]["settings"]["good_ratio"] is None
    code, text = _run(*args, "--good-ratio", "some", "-o", str(tmp_path / "x"))
    assert code == 2 and "--good-ratio" in text and "'some'" in text
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": prompts[0], "output": "1", "good": False}) + "\n")
    code, text = _run("train", "cut", "--model", str(ckpt), "--judgments", str(bad), "-o", str(tmp_path / "x"))
    assert code == 2 and "a bad verdict needs its critique" in text and "bad.jsonl: row 1" in text


@pytest.mark.slow
def test_synthetic_cut_then_methods_report(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    code, text = _run("train", "cut", "--task", "synthetic", "--quick", "-o", str(out))
    assert code == 0, text
    row = json.loads((out / "cut" / "row.json").read_text())
    assert row["method"] == "cut" and row["train_tokens"] > 0 and 0 <= row["win_rate_vs_start"] <= 100
    assert checkpoint_done(out / "cut" / "checkpoint")
    run = json.loads((out / "cut" / "run.json").read_text())
    assert run["identity"]["settings"] == {"online_preset": False, "lam": 1.2, "alpha": 0.5, "good_ratio": 0.25}
    code, text = _run("methods", "report", str(out), "-o", str(tmp_path / "t.csv"))
    assert code == 0, text
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert any(line.startswith("cut,") for line in lines[1:])


def test_cut_online_command_needs_a_single_response_judge(tmp_path: Path) -> None:
    code, text = _run("methods", "cut-online", "--help")
    assert code == 0 and "--judge-base-url" in text and "--concurrency" in text and "--rounds" in text
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"instruction": "1234+b="}) + "\n")
    args = ["--prompts", str(prompts), "--eval-prompts", str(prompts), "--workdir", str(tmp_path / "w")]
    code, text = _run("methods", "cut-online", "--judge", "longer-wins", *args)
    assert code == 2 and "single-response judge of protocol critique" in text and "--judge" in text
    assert not (tmp_path / "w").exists()
