"""The audit's flags and explanations on a real leaderboard (official annotations reused, no judge call)
and in the HTML report's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from pasture.annotate import EngineSettings
from pasture.evalsets import alpaca_eval_reference, alpaca_eval_set
from pasture.evaluate import evaluate
from pasture.io import read_model_outputs
from pasture.judges import get_judge
from pasture.leaderboard import leaderboard, resolve_key
from pasture.local_models import free_port
from pasture.records import ModelOutput
from pasture.report.html import board_html
from pasture.store import Store
from pasture.transfer import import_annotations

OFFICIAL = "weighted_alpaca_eval_gpt4_turbo"
MODELS = ("NullModel", "gpt4_gamed", "claude-2", "alpaca-7b", "gpt-3.5-turbo-1106")


@pytest.mark.slow
def test_leaderboard_shows_flags_with_explanations(alpacaeval: Path, tmp_path: Path) -> None:
    ref_file = alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz"
    with Store(tmp_path / "s.db") as store:
        import_annotations(store, [alpacaeval / "results" / m / OFFICIAL / "annotations.json.gz" for m in MODELS])
        # nothing listens on this port: a judge call would fail, so every verdict must come from the import
        judge = get_judge(
            OFFICIAL,
            template=str(alpacaeval / "judge_config/alpaca_eval_clf.txt"),
            base_url=f"http://127.0.0.1:{free_port()}/v1",
        )
        outputs: list[ModelOutput] = []
        for m in MODELS:
            outputs += read_model_outputs(alpacaeval / "results" / m / "model_outputs.json.gz")
        result = evaluate(
            store,
            eval_set=alpaca_eval_set(ref_file),
            model_outputs=outputs,
            reference_outputs=alpaca_eval_reference(ref_file),
            judge=judge,
            settings=EngineSettings(max_retries=0),
            progress=False,
        )
        assert result.annotation.calls == 0
        board = leaderboard(store, resolve_key(store), bootstrap_resamples=0).frame
    # NullModel's outputs file names its generator 'example'
    assert board.loc["example", "gaming_flags"] == "constant_output, repeated_block, judge_injection"
    assert board.loc["gpt4_gamed", "gaming_flags"].startswith("extreme_length")
    for clean in ("claude-2", "alpaca-7b", "gpt-3.5-turbo-1106"):
        assert board.loc[clean, "gaming_flags"] == "" and board.loc[clean, "gaming_explanations"] == ""
    assert "100% of its 805 outputs are the same text" in board.loc["example", "gaming_explanations"]
    page = board_html(board)
    assert 'class="flag-why"' in page and "median output is 0.00523x the reference&#x27;s length" in page
