"""The I-SHEEP / EVOLVE comparison at smoke size (one seed; the full run is experiments/loop_isheep_evolve.py), and
both builders through ``pasture loop`` into the methods table with their per-round diagnostics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.train.loop_isheep_evolve import RUNS, SMOKE, markdown_table, run_comparison


@pytest.mark.slow
def test_the_comparison_runs_every_loop_and_reports_the_paired_figures(tmp_path: Path) -> None:
    (r,) = run_comparison(SMOKE, [0], tmp_path)
    for name in RUNS:
        rows = r.results[name].rounds
        assert [row.round for row in rows] == list(range(SMOKE.rounds))
        for row in rows:
            assert row.n_train_examples > 0 and 0.0 <= row.win_rate_vs_start <= 100.0
            assert not math.isnan(row.eval_score) and row.kl_to_reference == row.kl_to_reference
            if name == "i_sheep":
                assert row.sigmoid_weight is None and row.chosen_rejected_gap is None
            else:
                assert row.sigmoid_weight is not None and 0.0 < row.sigmoid_weight < 1.0
                assert row.judge_gap is not None and row.judge_gap > 0  # better beats worse by the round judge
    for wr in (r.isheep_r1_vs_start, r.isheep_r2_vs_r1, r.gain_win_rate):
        assert 0.0 <= wr <= 100.0
    assert all(len(m) == SMOKE.chain_eval + 1 and all(0 <= x <= 1 for x in m) for m in r.chain_means.values())
    table = markdown_table([r], SMOKE)
    assert table.count("| 0 | evolve_sft_baseline |") == SMOKE.rounds + 1  # the rounds and the chain row
    assert "I-SHEEP round 2 over round 1" in table


@pytest.mark.slow
@pytest.mark.parametrize(
    ("builder", "extra"),
    [
        (
            "i_sheep",
            ["--method", "sft", "--builder-setting", "threshold=0.2", "--builder-setting", "schedule=cumulative"],
        ),
        ("evolve", ["--builder-setting", "chain=1", "--builder-setting", "n=3"]),
    ],
)
def test_pasture_loop_runs_the_new_builders_into_the_methods_table(
    tmp_path: Path, builder: str, extra: list[str]
) -> None:
    args = ["loop", "--smoke", "--builder", builder, "--rounds", "1", "--steps", "2", "--lr", "1e-3"]
    res = CliRunner().invoke(main, [*args, "--batch-size", "8", *extra, "--workdir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    row = json.loads((tmp_path / f"{builder}-r0" / "row.json").read_text())
    assert row["builder"] == builder and row["n_train_examples"] > 0
    rep = CliRunner().invoke(main, ["methods", "report", str(tmp_path), "--output", str(tmp_path / "t.csv")])
    assert rep.exit_code == 0, rep.output
    csv = (tmp_path / "t.csv").read_text()
    assert f"{builder} r0" in csv and "sigmoid_weight" in csv and "kl_to_reference" in csv
    bad = CliRunner().invoke(
        main,
        [
            "loop",
            "--smoke",
            "--builder",
            builder,
            *extra[:2],
            "--builder-setting",
            "schedule=sometimes" if builder == "i_sheep" else "refine_objective=ppo",
            "--workdir",
            str(tmp_path),
        ],
    )
    assert bad.exit_code == 2 and "choose one of" in bad.output
