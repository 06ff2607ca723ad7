"""The synthetic comparison at smoke size (one seed; the full run is experiments/loop_synthetic.py) and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.train.loop_synthetic import BUILDERS, SMOKE, markdown_table, run_comparison


@pytest.mark.slow
def test_the_comparison_runs_both_builders_and_reports_every_round(tmp_path: Path) -> None:
    runs = run_comparison(SMOKE, [0], tmp_path)
    (r,) = runs
    assert 0.0 <= r.paired_win_rate <= 100.0
    for b in BUILDERS:
        rows = r.results[b].rounds
        assert [row.round for row in rows] == list(range(SMOKE.rounds))
        for row in rows:
            assert row.n_train_examples + row.n_skipped == SMOKE.n_train_prompts
            assert row.judge_gap is not None and row.judge_gap > 0  # chosen beats rejected by the round's judge
            assert row.sigmoid_weight is not None and 0.0 < row.sigmoid_weight < 1.0
            assert row.pair_accuracy is not None and 0.0 <= row.pair_accuracy <= 1.0
            assert 0.0 <= row.win_rate_vs_start <= 100.0 and not math.isnan(row.eval_score)
            assert row.n_failed_eval == 0
    table = markdown_table(runs)
    assert table.count("| 0 | temporal_self_rewarding |") == SMOKE.rounds


@pytest.mark.slow
def test_pasture_loop_runs_and_its_rows_join_the_methods_table(tmp_path: Path) -> None:
    args = ["loop", "--smoke", "--builder", "self_rewarding", "--rounds", "1", "--steps", "2", "--lr", "1e-3"]
    args += ["--batch-size", "8", "--setting", "beta=0.2", "--workdir", str(tmp_path)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert '"builder": "self_rewarding"' in res.output  # the round's row is printed (among progress bars)
    row = json.loads((tmp_path / "self_rewarding-r0" / "row.json").read_text())
    assert row["builder"] == "self_rewarding" and row["round"] == 0
    rep = CliRunner().invoke(main, ["methods", "report", str(tmp_path), "--output", str(tmp_path / "t.csv")])
    assert rep.exit_code == 0, rep.output
    assert (
        "self_rewarding r0" in (tmp_path / "t.csv").read_text() and "sigmoid_weight" in (tmp_path / "t.csv").read_text()
    )
    bad = CliRunner().invoke(main, ["loop", "--smoke", "--builder-setting", "k=3", "--workdir", str(tmp_path)])
    assert bad.exit_code == 2 and "has no setting 'k'" in bad.output
