"""pasture distill-judge end to end on a real store: import, distil, judge with the head, analyze-judge."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from pasture.annotate import annotate
from pasture.annotate.pairs import PairToJudge
from pasture.cli import main
from pasture.judges import get_judge
from pasture.judges.trained import DistilledJudge
from pasture.store import Store

TEACHER = "weighted_alpaca_eval_gpt4_turbo"


def test_distil_from_a_store_then_judge_and_analyze(alpacaeval: Path, tmp_path: Path) -> None:
    store_path = tmp_path / "s.sqlite"
    files = [
        str(alpacaeval / "results" / m / TEACHER / "annotations.json.gz")
        for m in ("alpaca-7b", "claude-2", "gpt4_gamed")
    ]
    runner = CliRunner()
    imported = runner.invoke(main, ["import", *files, "--store", str(store_path)])
    assert imported.exit_code == 0, imported.output
    out = tmp_path / "judge"
    args = ["distill-judge", "--store", str(store_path), "--judge", TEACHER, "--max-pairs", "300", "--folds", "3"]
    result = runner.invoke(main, [*args, "--feature-set", "style", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "heldout.csv")
    assert set(table["split"]) == {"by_instruction", "by_model"}
    assert (table["n_pairs"] == 300).all()
    assert table["winner_agreement"].between(0, 100).all()
    judge = get_judge(out / "head.json")
    assert isinstance(judge, DistilledJudge)
    assert judge.fingerprint.digest[:12] in result.output

    with Store(store_path) as store:
        teacher = [j for j in store.get_judgments() if j.judge_name == TEACHER][:120]
        pairs = [PairToJudge(j.instruction, j.output_1, j.generator_1, j.output_2, j.generator_2) for j in teacher]
        report = annotate(store, judge, pairs, position="both", progress=False)
    assert report.n_new == 240 and report.n_error == 0
    analyzed = runner.invoke(
        main, ["analyze-judge", "--store", str(store_path), "--judge", judge.name, "--gold-judge", TEACHER]
    )
    assert analyzed.exit_code == 0, analyzed.output
    assert "Gold agreement" in analyzed.output and "prefer longer" in analyzed.output


def test_one_line_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["distill-judge", "--store", str(tmp_path / "none.sqlite"), "--judge", "x",
                                       "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no such store" in lines[0]
