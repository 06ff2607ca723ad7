"""The continual-SFT comparison (task A then task B: full fine-tuning, LoRA, Control LLM) at smoke size, through
the same code and script as experiments/control_llm_synthetic.py (the full multi-seed run lives there, not in CI)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

pytest.importorskip("torch")

from pasture.train.control_llm_synthetic import SMOKE, method_rows, method_settings, run_seed
from pasture.train.table import collect_rows, gain_retention


def test_each_method_trains_what_it_should() -> None:
    assert method_settings("full", SMOKE, 0).control_llm() is None and method_settings("full", SMOKE, 0).lora() is None
    assert method_settings("lora", SMOKE, 0).lora() is not None
    control = method_settings("control", SMOKE, 0).control_llm()
    assert control is not None and (control.mix, control.alpha, control.learn_mix) == (0.5, 1.0, False)
    no_div = method_settings("control_no_div", SMOKE, 0).control_llm()
    assert no_div is not None and no_div.alpha == 0.0
    every = method_settings("control_all", SMOKE, 0).control_llm()
    assert every is not None and every.expand_layers == "2" and every.alpha == 1.0
    budgets = {m: method_settings(m, SMOKE, 3).optim() for m in SMOKE.methods}
    assert len(set(budgets.values())) == 1  # equal steps, batch, lr for every method


@pytest.mark.slow
def test_one_seed_at_smoke_size_fills_gain_and_retention_for_every_method(tmp_path: Path) -> None:
    result = run_seed(SMOKE, 0)
    assert set(result.rows) == set(SMOKE.methods)
    params = {m: r["trainable_params"] for m, r in result.rows.items()}
    assert params["lora"] < params["control"] < params["full"]  # one block's twin: fewer than all weights
    for m, r in result.rows.items():
        assert 0 <= r["a_after"] <= 1 and 0 <= r["b_after"] <= 1
        assert r["gain_b"] == pytest.approx(r["b_after"] - result.b_before)
        if result.a_learned > 0:
            assert r["retention_a"] == pytest.approx(r["a_after"] / result.a_learned)
        assert ("win_a_vs_full" in r) == (m != "full")
    for row in method_rows(result):  # the methods table's reader shows retention for every method
        folder = tmp_path / row.method
        folder.mkdir()
        (folder / "row.json").write_text(json.dumps(asdict(row)), encoding="utf-8")
    table = gain_retention(collect_rows(tmp_path))
    if result.a_learned > 0:
        assert table is not None and set(table.index) == {f"continual_{m}" for m in SMOKE.methods}
        from click.testing import CliRunner

        from pasture.cli import main

        shown = CliRunner().invoke(main, ["methods", "report", str(tmp_path), "-o", str(tmp_path / "t.html")])
        assert shown.exit_code == 0, shown.output
        assert (
            "gain against retention" in shown.output and "Gain against retention" in (tmp_path / "t.html").read_text()
        )


@pytest.mark.slow
def test_the_script_writes_its_markdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_resources import load_module

    script = load_module(Path(__file__).parents[2] / "experiments" / "control_llm_synthetic.py")
    out = tmp_path / "out.md"
    monkeypatch.setattr(sys, "argv", ["control_llm_synthetic.py", "--smoke", "--seeds", "0", "--output", str(out)])
    script.main()
    text = out.read_text(encoding="utf-8")
    assert "## Summary over 1 seeds" in text and "| control |" in text and "smoke size" in text
