"""The audit and the verbose/concise spreads with pasture's own LC (pasture.metrics.lc), not the board's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pasture.analysis.gaming import audit
from pasture.analysis.style import style_controlled_leaderboard
from pasture.io import read_eval_set
from pasture.metrics.gamed import GAMED_BASELINES
from pasture.metrics.lc import length_controlled_winrates
from pasture.metrics.lc_inputs import prepare_lc_inputs

REF = "gpt4_1106_preview"
FAMILY = ["gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106_verbose", "gpt-3.5-turbo-1106_concise"]
GAMED = ("NullModel", "gpt4_gamed")


@pytest.fixture(scope="module")
def pasture_lc(alpacaeval: Path, shared_pairs: pd.DataFrame) -> dict[str, float]:
    """pasture's LC for the 10 shared models, with inputs from shared files only (difficulty estimated over
    the 58 models of preferences_58_models.csv.gz, gamed baselines rebuilt), as tests/metrics do."""
    texts = read_eval_set(alpacaeval / "results" / REF / "model_outputs.json.gz").texts()
    prefs = pd.read_csv(alpacaeval / "preferences_58_models.csv.gz").sort_values(["model", "index"], kind="mergesort")
    all_pairs = pd.DataFrame(
        {
            "instruction": np.asarray(texts, dtype=object)[prefs["ref_pos"].to_numpy()],
            "generator_1": REF,
            "generator_2": prefs["model"].to_numpy(),
            "len_1": prefs["len_1"].to_numpy(),
            "len_2": prefs["len_2"].to_numpy(),
            "preference": prefs["preference"].to_numpy(float),
        }
    )
    inputs = prepare_lc_inputs(
        all_pairs,
        shipped=False,  # the joint-fit estimate over all models the docs/trust.md figures were computed with
        eval_set=texts,
        glm_weights=alpacaeval / "leaderboards" / "lc_glm_weights_baseline_gpt4_1106_preview.csv",
        gamed_outputs={g: alpacaeval / "results" / g / "model_outputs.json.gz" for g in GAMED_BASELINES},
    )
    models = set(shared_pairs["generator_2"])
    results = length_controlled_winrates(all_pairs[all_pairs["generator_2"].isin(models)], inputs)
    assert len(results) == 10
    return {r.generator: r.length_controlled_winrate for r in results}


def test_audit_with_pasture_lc_flags_exactly_the_gamed_models(
    shared_pairs: pd.DataFrame, pasture_lc: dict[str, float]
) -> None:
    flags = audit(shared_pairs, headline=pasture_lc, headline_name="LC")
    assert set(flags.loc["NullModel", "flags"]) == {"constant_output", "repeated_block", "judge_injection"}
    assert set(flags.loc["gpt4_gamed", "flags"]) == {"extreme_length"}
    assert flags.loc["gpt4_gamed", "headline_lift"] == pytest.approx(3.78, abs=0.01)  # information only
    assert flags.drop(index=list(GAMED))["flags"].map(len).sum() == 0


def test_verbose_concise_spread_of_raw_lc_and_style_control(
    shared_pairs: pd.DataFrame, pasture_lc: dict[str, float]
) -> None:
    fam = shared_pairs[shared_pairs["generator_2"].isin(FAMILY)]
    raw = (fam.groupby("generator_2")["preference"].mean() - 1) * 100
    lc = pd.Series(pasture_lc).reindex(FAMILY)
    sc = style_controlled_leaderboard(fam, pooling="per_model", n_bootstrap=0).table["score"].reindex(FAMILY)
    anchors = sorted(m for m in shared_pairs["generator_2"].unique() if m not in GAMED)
    sca = style_controlled_leaderboard(shared_pairs, pooling="anchored", anchors=anchors, n_bootstrap=0)
    sca_scores = sca.table["score"].reindex(FAMILY)

    def spread(s: pd.Series) -> float:
        return float(s.max() - s.min())

    # the figures quoted in docs/trust.md
    assert spread(raw) == pytest.approx(5.35, abs=0.01)
    assert spread(lc) == pytest.approx(8.48, abs=0.01)
    assert spread(sc) == pytest.approx(9.78, abs=0.01)
    assert spread(sca_scores) == pytest.approx(5.60, abs=0.01)
    # LC and style control both lift every member far above its raw rate (the reference is much longer)
    assert (lc > raw.reindex(FAMILY) + 5).all() and (sc > raw.reindex(FAMILY) + 10).all()
    # ordering: LC keeps verbose > plain > concise like the raw rate; style control puts concise first
    assert list(lc.sort_values().index) == list(raw.sort_values().index)
    assert sc.idxmax() == "gpt-3.5-turbo-1106_concise"
