"""leaderboard: membership by evaluate runs, recomputed metrics with LC and intervals, files, correlation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.errors import InputError
from pasture.evalsets import demo_eval_set
from pasture.evaluate import evaluate
from pasture.judges import get_judge
from pasture.leaderboard import boards, external_correlation, leaderboard, resolve_key
from pasture.records import ModelOutput
from pasture.store import Store

EVAL = demo_eval_set(12)
WINS = {"m1": 12, "m2": 8, "m3": 4, "m4": 0}
"""How many instructions each model answers with a longer text than the reference (longer-wins judge)."""


def _outputs(generator: str, longer: int) -> list[ModelOutput]:
    return [
        ModelOutput(
            instruction=t, output=("a much longer answer " if k < longer else "x") + str(k), generator=generator
        )
        for k, t in enumerate(EVAL.texts())
    ]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("board") / "s.db"
    reference = [ModelOutput(instruction=t, output=f"ref {k:02d}", generator="ref") for k, t in enumerate(EVAL.texts())]
    with Store(path) as store:
        for name, longer in WINS.items():
            evaluate(
                store,
                eval_set=EVAL,
                model_outputs=_outputs(name, longer),
                reference_outputs=reference,
                judge=get_judge("longer-wins"),
                progress=False,
            )
    return path


def test_board_recomputes_every_column(store_path: Path) -> None:
    with Store(store_path) as store:
        assert len(boards(store)) == 1
        board = leaderboard(store, resolve_key(store), sort_by="win_rate", bootstrap_resamples=200)
    frame = board.frame
    assert list(frame.index) == ["m1", "m2", "m3", "m4"]
    for name, longer in WINS.items():
        assert frame.loc[name, "win_rate"] == pytest.approx(100 * longer / 12)
        assert frame.loc[name, "n_total"] == 12 and frame.loc[name, "n_failed"] == 0
        assert frame.loc[name, "judge_cost_usd"] == 0.0
    # LC (12 instructions >= 10) and percentile intervals from the paired bootstrap are present
    assert {"length_controlled_winrate", "win_rate_ci_low", "win_rate_ci_high", "lc_ci_low", "lc_ci_high"} <= set(
        frame.columns
    )
    inner = frame.loc[["m2", "m3"]]
    assert (inner["win_rate_ci_low"] < inner["win_rate"]).all() and (
        inner["win_rate"] < inner["win_rate_ci_high"]
    ).all()
    assert any("200 paired resamples over instructions" in n for n in board.notes)
    assert board.manifests["m1"]["inputs"]["reference_generator"] == "ref"
    assert board.reference == "ref" and board.judge_name == "longer-wins"


def test_external_correlation_spearman_and_kendall(store_path: Path, tmp_path: Path) -> None:
    ranking = tmp_path / "arena.csv"
    pd.DataFrame({"model": ["m1", "m2", "m3", "m4", "other"], "elo": [4, 3, 1, 2, 9]}).to_csv(ranking, index=False)
    with Store(store_path) as store:
        frame = leaderboard(store, resolve_key(store), bootstrap_resamples=0, lc=False).frame
    (corr,) = external_correlation(frame, ranking, column="elo")
    # ranks (4,3,2,1) vs (4,3,1,2): rho = 1 - 6*2/(4*15) = 0.8; tau = (5 - 1)/6
    assert corr.n == 4 and corr.spearman == pytest.approx(0.8) and corr.kendall == pytest.approx(4 / 6)
    with pytest.raises(InputError, match="no column 'score'"):
        external_correlation(frame, ranking, column="score")


def test_leaderboard_cli_writes_csv_json_markdown(store_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["leaderboard", "--store", str(store_path), "--resamples", "0", "--sort-by", "win_rate"]
    for suffix in ("csv", "json", "md"):
        out = tmp_path / f"board.{suffix}"
        result = runner.invoke(main, [*base, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.is_file()
    assert list(pd.read_csv(tmp_path / "board.csv", index_col=0).index) == ["m1", "m2", "m3", "m4"]
    rows = json.loads((tmp_path / "board.json").read_text())
    assert rows[0]["model"] == "m1" and json.loads(rows[0]["manifest"])["judge_name"] == "longer-wins"
    assert (tmp_path / "board.md").read_text().startswith("| model |")
    result = runner.invoke(main, [*base, "--ascending"])
    assert result.output.index("m4") < result.output.index("m1")
    ranking = tmp_path / "arena.csv"
    pd.DataFrame({"model": ["m1", "m2", "m3", "m4"], "elo": [4, 3, 1, 2]}).to_csv(ranking, index=False)
    result = runner.invoke(main, [*base, "--correlate", str(ranking)])
    assert "win_rate vs elo over 4 models: Spearman 0.800, Kendall 0.667" in result.output
    listing = runner.invoke(main, ["leaderboard", "--store", str(store_path), "--list"])
    assert listing.exit_code == 0 and "longer-wins" in listing.output


def test_report_cli_writes_html_and_pngs(store_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", "--store", str(store_path), "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "LC win rate" in html and html.count('<figure class="plot"') >= 4
    assert len(list((tmp_path / "r_figures").glob("*.png"))) >= 4


def test_unknown_board_selector_lists_the_boards(store_path: Path) -> None:
    with Store(store_path) as store, pytest.raises(InputError, match=r"no leaderboard matches.*longer-wins"):
        resolve_key(store, judge="gpt-4")


def test_models_evaluated_with_different_position_policies(tmp_path: Path) -> None:
    reference = [ModelOutput(instruction=t, output=f"ref {k:02d}", generator="ref") for k, t in enumerate(EVAL.texts())]
    with Store(tmp_path / "s.db") as store:
        for name, position in (("one-order", "alpaca_eval"), ("both-orders", "both")):
            evaluate(
                store,
                eval_set=EVAL,
                model_outputs=_outputs(name, 6),
                reference_outputs=reference,
                judge=get_judge("longer-wins"),
                position=position,  # type: ignore[arg-type]
                progress=False,
            )
        board = leaderboard(store, resolve_key(store), bootstrap_resamples=0, lc=False)
    per_model = {m: sum(j.generator_2 == m for j in board.judgments) for m in board.frame.index}
    assert per_model == {"one-order": 12, "both-orders": 24}
    assert (board.frame["n_total"] == 12).all() and (board.frame["win_rate"] == 50.0).all()
