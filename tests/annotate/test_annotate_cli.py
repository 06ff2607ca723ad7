"""``pasture annotate``: dry run, a run, a rerun, bad input, and a failing server (exit status 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from faultproxy import FaultProxy

from pasture.cli import main
from pasture.store import Store


def _files(tmp_path: Path, n: int = 5) -> tuple[Path, Path]:
    ref = [
        {"instruction": f"Name {i} fruit.", "output": "Apple.", "generator": "ref", "dataset": "d"} for i in range(n)
    ]
    model = [{"instruction": f"Name {i} fruit.", "output": "A pear" + "!" * i, "generator": "m"} for i in range(n)]
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    (tmp_path / "model.json").write_text(json.dumps(model))
    return tmp_path / "model.json", tmp_path / "ref.json"


def test_dry_run_then_run_then_rerun(tmp_path: Path) -> None:
    model, ref = _files(tmp_path)
    db = tmp_path / "s.db"
    base = ["annotate", str(model), "--reference", str(ref), "--judge", "longer-wins", "--store", str(db)]
    dry = CliRunner().invoke(main, [*base, "--position", "both", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "10 judgments" in dry.output and "calls: 10" in dry.output
    assert Store(db).count_judgments() == 0
    out = tmp_path / "annotations.json"
    run = CliRunner().invoke(main, [*base, "--position", "both", "--no-progress", "--output", str(out)])
    assert run.exit_code == 0, run.output
    assert "10 new" in run.output
    rows = json.loads(out.read_text())
    assert len(rows) == 10 and {r["status"] for r in rows} == {"ok"}
    assert {r["preference"] for r in rows} == {1.5, 2.0}  # "A pear" ties "Apple." (6 chars) at i=0, then wins
    rerun = CliRunner().invoke(main, [*base, "--position", "both", "--dry-run"])
    assert "calls: 0" in rerun.output
    again = CliRunner().invoke(main, [*base, "--position", "both"])  # with the progress bar
    assert again.exit_code == 0 and "10 cached, 0 new" in again.output


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    model, ref = _files(tmp_path)
    db = tmp_path / "s.db"
    ref.write_text(json.dumps([{"instruction": "Something else.", "output": "x", "generator": "ref"}]))
    res = CliRunner().invoke(
        main, ["annotate", str(model), "--reference", str(ref), "--judge", "longer-wins", "--store", str(db)]
    )
    assert res.exit_code == 2
    assert "pasture: error:" in res.output and "no reference output" in res.output
    res = CliRunner().invoke(main, ["annotate", str(model), "--reference", str(ref), "--judge", "no-such-judge"])
    assert res.exit_code == 2 and "unknown judge" in res.output


@pytest.mark.model
def test_failed_judgments_exit_non_zero_and_are_listed(proxy: FaultProxy, tmp_path: Path) -> None:
    model, ref = _files(tmp_path, n=3)
    db = tmp_path / "s.db"
    proxy.set_schedule(lambda i: "500")  # the server is down
    args = ["annotate", str(model), "--reference", str(ref), "--judge", "smollm2-logprob-server"]
    args += ["--judge-base-url", proxy.base_url, "--store", str(db), "--max-retries", "0", "--no-progress"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output
    assert "3 of 3 judgments failed" in res.output and "500" in res.output
    assert proxy.requests == 3 and proxy.forwarded == 0
    with Store(db) as store:
        assert len(store.get_judgments(status="error")) == 3
