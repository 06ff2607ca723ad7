"""The demo end to end on a tiny slice (the full one is `make demo`): real generation, real judging, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.demo import REFERENCE, SETTINGS, run_demo
from pasture.judges import get_judge


@pytest.mark.slow
@pytest.mark.model
def test_demo_runs_offline_prints_the_caveat_and_reruns_for_free(
    tmp_path: Path, smollm2_gguf: Path, check_board: Any
) -> None:
    result = CliRunner().invoke(
        main, ["demo", "--workdir", str(tmp_path), "-n", "3", "--max-tokens", "8", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    for text in ("smollm2-default", "smollm2-verbose", "to try the tool", "--judge gpt-4o-mini-logprob", "report:"):
        assert text in result.output
    assert "3 outputs (3 new" in result.output
    # the rerun reuses the store: no generation and no judge call, the same board
    again = run_demo(tmp_path, n=3, max_tokens=8, progress=False)
    assert [g.generator for g in again.generations] == list(SETTINGS)
    assert all(len(g.outputs) == 3 and g.n_new == 0 for g in again.generations)
    assert again.evaluation.annotation.calls == 0
    board = again.evaluation.board
    assert board.reference == REFERENCE and set(board.frame.index) == set(SETTINGS) - {REFERENCE}
    check_board(board.frame, board.judgments, {m: 3 for m in SETTINGS if m != REFERENCE})
    html = again.report.html.read_text(encoding="utf-8")
    assert "SmolLM2-135M" in html and "try the tool" in html
    # the one-option switch to another judge re-judges the same stored outputs (no generation)
    switched = CliRunner().invoke(
        main,
        ["demo", "--workdir", str(tmp_path), "-n", "3", "--max-tokens", "8", "--judge", "longer-wins", "--no-progress"],
    )
    assert switched.exit_code == 0, switched.output
    assert "judged by longer-wins" in switched.output and "to try the tool" not in switched.output
    assert "3 outputs (0 new, 3 already stored)" in switched.output
    # longer-wins is computed here by hand from the stored outputs: the board must show exactly that
    longer = run_demo(tmp_path, n=3, max_tokens=8, judge=get_judge("longer-wins"), progress=False)
    assert longer.evaluation.annotation.calls == 0  # judged by the CLI run above, reused
    frame = longer.evaluation.board.frame
    for model in set(SETTINGS) - {REFERENCE}:
        pairs = [j for j in longer.evaluation.board.judgments if j.generator_2 == model]
        assert len(pairs) == 3
        by_hand = [
            1.5 + 0.5 * ((len(j.output_2) > len(j.output_1)) - (len(j.output_2) < len(j.output_1))) for j in pairs
        ]
        assert [j.preference for j in pairs] == by_hand
        assert frame.loc[model, "win_rate"] == pytest.approx(100 * sum(p - 1 for p in by_hand) / 3)
        assert (frame.loc[model, "n_total"], frame.loc[model, "n_failed"]) == (3, 0)
