"""Judge analysis end to end: the real SmolLM2 judge on a llama.cpp server, both orders and replicates,
stored by the annotation engine, against the official AlpacaEval annotations as gold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pasture.analysis.judge_analysis import analyze_judge, labels_from_judgments
from pasture.annotate import EngineSettings, PairToJudge, annotate
from pasture.judges import get_judge
from pasture.records import Judgment
from pasture.store import Store

N_PER_MODEL = 5
MODELS = ("alpaca-7b", "claude-2", "gpt-3.5-turbo-1106", "FuseChat-Gemma-2-9B-Instruct")
REPLICATES = 2


def short_pairs(judgments: list[Judgment]) -> list[Judgment]:
    """The N_PER_MODEL shortest distinct official judgments (instruction + both outputs) of each model."""
    chosen: list[Judgment] = []
    seen: set[tuple[str, str, str]] = set()
    for model in MODELS:
        mine = [j for j in judgments if j.generator_2 == model and j.status == "ok"]
        mine.sort(key=lambda j: len(j.instruction) + len(j.output_1) + len(j.output_2))
        taken = 0
        for j in mine:
            ident = (j.instruction, j.output_1, j.output_2)
            if ident in seen or taken == N_PER_MODEL:
                continue  # another model gave the very same answer: the same question to the judge
            seen.add(ident)
            chosen.append(j)
            taken += 1
    return chosen


@pytest.mark.slow
def test_smollm2_judge_against_the_official_annotations(
    shared_judgments: list[Judgment], llama_server, tmp_path: Path
) -> None:
    gold = short_pairs(shared_judgments)
    assert len(gold) == 20
    pairs = [
        PairToJudge(
            instruction=g.instruction,
            output_1=g.output_1,
            generator_1=g.generator_1,
            output_2=g.output_2,
            generator_2=g.generator_2,
            dataset=g.dataset,
        )
        for g in gold
    ]
    judge = get_judge("smollm2-logprob-server", base_url=llama_server.base_url)
    with Store(tmp_path / "live.db") as store:
        report = annotate(
            store,
            judge,
            pairs,
            settings=EngineSettings(concurrency=2),
            position="both",
            replicates=REPLICATES,
            progress=False,
        )
        stored = store.get_judgments(judge_digest=judge.fingerprint.digest)
    assert report.n_judgments == 20 * 2 * REPLICATES and report.n_missing == 0
    assert len(stored) == 80

    result = analyze_judge(stored, gold, judge_name="smollm2", family_generators=["SmolLM2-135M-Instruct"])
    row = result.table.loc["smollm2"]
    print("\nlive judge analysis (SmolLM2-135M vs official annotations, 20 pairs):")
    print(result.table.T.to_string())
    print("\n".join(result.notes))

    labels = labels_from_judgments(stored)
    assert row["# parsed"] + row["# failed"] == 80
    assert result.n_pairs == 20
    ok = labels.dropna(subset=["preference"])
    # flip rate, recomputed independently: per pair and order the mean verdict's winner, compared across orders
    per = ok.groupby(["instruction", "output_1", "output_2", "shown_first"])["preference"].mean().unstack()
    both = per.dropna()
    win = np.sign(both - 1.5)
    assert row["Flip rate"] == pytest.approx(float((win[1] != win[2]).mean()))
    first = np.where(ok.shown_first == 1, 2 - ok.preference, ok.preference - 1)
    assert row["P(first wins)"] == pytest.approx(float(first.mean()))
    assert 0 <= row["Gold agreement"] <= 100 and -1 <= row["Cohen's kappa"] <= 1
    assert "Variance" in row.index and row["Variance"] >= 0
    assert row["Time [seconds/1000 examples]"] > 0
    assert "Price [$/1000 examples]" not in result.table.columns  # a local server has no list price: absent
    assert len(result.leaderboards) == 4
    if result.leaderboards["judge"].nunique() > 1:
        assert "Spearman corr." in row.index
    else:  # a judge that only follows the shown order gives every model 50: no ranking to correlate
        assert any("rank correlations absent" in n for n in result.notes)
    assert "Self-preference" not in result.table.columns  # no SmolLM2 output among the generators
    # the leaderboard the judge produces, from its stored judgments
    judge_board = (ok.groupby("generator_2").preference.mean() - 1) * 100
    pd.testing.assert_series_equal(
        judge_board.sort_index(), result.leaderboards["judge"].sort_index(), check_names=False
    )
