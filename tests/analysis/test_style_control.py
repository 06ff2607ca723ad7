"""Style control on real AlpacaEval battles: feature columns, stability when models are added, spreads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pasture.analysis.bradley_terry import fit_bradley_terry
from pasture.analysis.style import (
    STYLE_FEATURES,
    markdown_counts,
    style_controlled_leaderboard,
    style_features,
    style_profile,
)
from pasture.errors import InputError

GAMED = ("NullModel", "gpt4_gamed")
FAMILY = ("gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106_verbose", "gpt-3.5-turbo-1106_concise")


def test_markdown_counts_outside_code_blocks() -> None:
    text = (
        "# Title\n\nSome **bold** and __also bold__ text.\n\n## Part\n- one\n* two\n  3. three\n"
        "```python\n# not a header\n- not a list\n**not bold**\n```\n#nospace is not a header\n"
    )
    assert markdown_counts(text) == (2, 3, 2)
    prof = style_profile([text, ""])
    assert prof.loc[0, "length"] == len(text)
    assert prof.loc[0, "headers"] == pytest.approx(2 * 1000 / len(text))
    assert prof.loc[1].tolist() == [0, 0.0, 0.0, 0.0]


def test_features_are_raw_per_battle_differences(shared_pairs: pd.DataFrame) -> None:
    feats = style_features(shared_pairs)
    assert list(feats.columns) == [f"style_{f}" for f in STYLE_FEATURES]
    i = shared_pairs.index[123]
    a, b = shared_pairs.loc[i, "output_1"], shared_pairs.loc[i, "output_2"]
    assert feats.loc[i, "style_length"] == pytest.approx((len(b) - len(a)) / (len(b) + len(a)))
    pa, pb = style_profile([a]).iloc[0], style_profile([b]).iloc[0]
    for f in ("headers", "lists", "bold"):
        assert feats.loc[i, f"style_{f}"] == pytest.approx(pb[f] - pa[f])
    # not centred over the battle set: one model's battles have the same features alone or among all
    sub = shared_pairs[shared_pairs.generator_2 == "claude-2"]
    pd.testing.assert_frame_equal(style_features(sub), feats.loc[sub.index])
    assert abs(feats["style_length"].mean()) > 0.05


@pytest.mark.parametrize("feature", STYLE_FEATURES)
def test_a_single_feature_uses_its_own_column(shared_pairs: pd.DataFrame, feature: str) -> None:
    # arena-hard-auto's single-feature flags sliced the wrong columns; here the fit with one feature must
    # equal a fit on exactly that column computed independently, and differ from every other column's fit.
    sub = shared_pairs[shared_pairs.generator_2 == "gpt-3.5-turbo-1106"]
    board = style_controlled_leaderboard(sub, features=(feature,), pooling="per_model", n_bootstrap=0)
    assert list(board.coefficients.columns) == [f"style_{feature}"]
    p1 = style_profile(sub["output_1"].tolist())
    p2 = style_profile(sub["output_2"].tolist())
    if feature == "length":
        col = ((p2.length - p1.length) / (p2.length + p1.length)).to_numpy()
    else:
        col = (p2[feature] - p1[feature]).to_numpy()
    manual = fit_bradley_terry(sub.assign(x=col), feature_columns=["x"])
    got = board.coefficients.loc["gpt-3.5-turbo-1106", f"style_{feature}"]
    assert got == pytest.approx(manual.coefficients["x"], rel=1e-6)
    assert board.table.loc["gpt-3.5-turbo-1106", "strength"] == pytest.approx(manual.strengths.iloc[0], rel=1e-6)
    for other in STYLE_FEATURES:
        if other != feature:
            o = style_controlled_leaderboard(sub, features=(other,), pooling="per_model", n_bootstrap=0)
            assert o.coefficients.iloc[0, 0] != pytest.approx(got, rel=1e-3)


def test_feature_subsets_and_bad_selections(shared_pairs: pd.DataFrame) -> None:
    sub = shared_pairs[shared_pairs.generator_2 == "claude-2"]
    two = style_controlled_leaderboard(sub, features=("bold", "length"), pooling="per_model", n_bootstrap=0)
    assert list(two.coefficients.columns) == ["style_bold", "style_length"]
    with pytest.raises(InputError, match="unknown style feature"):
        style_controlled_leaderboard(sub, features=("emoji",))
    with pytest.raises(InputError, match="at least one"):
        style_controlled_leaderboard(sub, features=())
    with pytest.raises(InputError, match="repeated"):
        style_controlled_leaderboard(sub, features=("bold", "bold"))


def _scores_with_and_without(pairs: pd.DataFrame, added: str, **kw: object) -> tuple[pd.Series, pd.Series]:
    """Two real fits: the 8 honest shared models, then the same plus ``added``."""
    base = pairs[~pairs.generator_2.isin(GAMED)]
    before = style_controlled_leaderboard(base, n_bootstrap=0, **kw).table["score"]  # type: ignore[arg-type]
    with_it = pairs[pairs.generator_2.isin([*base.generator_2.unique(), added])]
    after = style_controlled_leaderboard(with_it, n_bootstrap=0, **kw).table["score"]  # type: ignore[arg-type]
    assert len(before) == 8 and added in after.index and added not in before.index
    return before, after.drop(added).reindex(before.index)


@pytest.mark.parametrize("added", GAMED)
@pytest.mark.slow
def test_adding_a_gamed_model_moves_no_other_score_by_default(shared_pairs: pd.DataFrame, added: str) -> None:
    # The same harness detects movement: with one coefficient set over every model (shared pooling) the
    # gamed model pulls the coefficients and the other scores move by points. The default refits from
    # scratch too; it moves nothing only because the audit keeps the gamed model out of the anchors.
    before, after = _scores_with_and_without(shared_pairs, added, pooling="shared")
    assert (after - before).abs().max() > 1.0
    before, after = _scores_with_and_without(shared_pairs, added)
    assert (after - before).abs().max() < 0.1, (after - before).abs().sort_values().tail(3)
    with_it = shared_pairs[~shared_pairs.generator_2.isin([g for g in GAMED if g != added])]
    board = style_controlled_leaderboard(with_it, n_bootstrap=0)
    assert board.pooling == "audited" and added not in board.anchors and len(board.anchors) == 8
    assert any(n.startswith(f"{added}: not an anchor") for n in board.notes)


@pytest.mark.slow
def test_a_gamed_model_cannot_ride_style_control_to_the_top(shared_pairs: pd.DataFrame) -> None:
    raw = (shared_pairs.groupby("generator_2")["preference"].mean() - 1) * 100
    default = style_controlled_leaderboard(shared_pairs, n_bootstrap=0).table["score"]
    per_model = style_controlled_leaderboard(shared_pairs, pooling="per_model", n_bootstrap=0).table["score"]
    honest = default.drop(index=list(GAMED))
    # per-model coefficients let answers cut to ~68 characters extrapolate from 3.7 raw to 76.6, above every
    # honest model; with the audited anchors it scores with the honest models' coefficients, far from the top
    assert raw["gpt4_gamed"] < 4 and per_model["gpt4_gamed"] > per_model.drop(index=list(GAMED)).max()
    assert (honest > default["gpt4_gamed"]).sum() >= 3
    assert default["gpt4_gamed"] < honest.max() - 30
    assert default["gpt4_gamed"] < per_model["gpt4_gamed"] - 40


def test_anchored_pooling_with_a_gamed_anchor_is_not_stable(shared_pairs: pd.DataFrame) -> None:
    # what the audited default protects against: a gamed model among the anchors moves the others
    honest = sorted(m for m in shared_pairs.generator_2.unique() if m not in GAMED)
    both = style_controlled_leaderboard(
        shared_pairs[shared_pairs.generator_2 != "NullModel"],
        pooling="anchored",
        anchors=[*honest, "gpt4_gamed"],
        n_bootstrap=0,
    ).table["score"]
    clean = style_controlled_leaderboard(
        shared_pairs[shared_pairs.generator_2 != "NullModel"], pooling="anchored", anchors=honest, n_bootstrap=0
    ).table["score"]
    assert (both.reindex(honest) - clean.reindex(honest)).abs().max() > 1.0


def test_verbose_concise_spreads(shared_pairs: pd.DataFrame, official_board: pd.DataFrame) -> None:
    family = shared_pairs[shared_pairs.generator_2.isin(FAMILY)]
    sc = style_controlled_leaderboard(family, pooling="per_model", n_bootstrap=30)
    raw = {m: (shared_pairs.loc[shared_pairs.generator_2 == m, "preference"].mean() - 1) * 100 for m in FAMILY}
    raw_spread = max(raw.values()) - min(raw.values())
    assert raw_spread == pytest.approx(
        official_board.loc[list(FAMILY), "win_rate"].max() - official_board.loc[list(FAMILY), "win_rate"].min(),
        abs=1e-6,
    )
    scores = sc.table.loc[list(FAMILY), "score"]
    # at zero style difference the verbose variant no longer beats the plain one, as its raw rate does
    assert raw["gpt-3.5-turbo-1106_verbose"] > raw["gpt-3.5-turbo-1106"]
    assert scores["gpt-3.5-turbo-1106_verbose"] - scores["gpt-3.5-turbo-1106"] < (
        raw["gpt-3.5-turbo-1106_verbose"] - raw["gpt-3.5-turbo-1106"]
    )
    # every style-controlled score is above its raw rate: the reference's outputs are far longer
    for m in FAMILY:
        assert scores[m] > raw[m]
        assert sc.table.loc[m, "ci_low"] <= scores[m] <= sc.table.loc[m, "ci_high"]
    assert 0 < sc.table.loc["gpt-3.5-turbo-1106_concise", "support"] < sc.table.loc["gpt-3.5-turbo-1106", "support"]
    assert np.isfinite(sc.separability)


def test_anchored_pooling_scores_others_with_the_anchors_coefficients(shared_pairs: pd.DataFrame) -> None:
    anchors = sorted(m for m in shared_pairs.generator_2.unique() if m not in GAMED)
    anchored = style_controlled_leaderboard(shared_pairs, pooling="anchored", anchors=anchors, n_bootstrap=10)
    only_anchors = shared_pairs[shared_pairs.generator_2.isin(anchors)]
    shared = style_controlled_leaderboard(only_anchors, pooling="shared", n_bootstrap=0)
    # the anchors' coefficients and scores are exactly the shared fit over the anchors alone
    np.testing.assert_allclose(anchored.coefficients.to_numpy(), shared.coefficients.to_numpy(), rtol=1e-6)
    pd.testing.assert_series_equal(
        anchored.table["score"].reindex(anchors), shared.table["score"].reindex(anchors), rtol=1e-6
    )
    # a non-anchor model is fit with those coefficients held fixed: its own one-parameter fit
    sub = shared_pairs[shared_pairs.generator_2 == "gpt4_gamed"]
    feats = style_features(sub)
    gamma = anchored.coefficients.iloc[0][feats.columns].to_numpy()
    manual = fit_bradley_terry(sub)  # without style control
    assert manual.strengths.iloc[0] < anchored.table.loc["gpt4_gamed", "strength"]
    y = sub.preference.to_numpy() - 1
    s = anchored.table.loc["gpt4_gamed", "strength"]
    p = 1 / (1 + np.exp(-(s + feats.to_numpy() @ gamma)))
    assert abs(np.mean(y - p)) < 1e-6  # the score equation of the one-parameter fit
    with pytest.raises(InputError, match="anchor"):
        style_controlled_leaderboard(shared_pairs, pooling="anchored", anchors=["nobody"], n_bootstrap=0)
    with pytest.raises(InputError, match="anchors"):
        style_controlled_leaderboard(shared_pairs, pooling="anchored", n_bootstrap=0)


DOCUMENTED = {  # docs/trust.md §2, all four features
    "audited": {  # = anchored on the 8 models the audit leaves unflagged
        "gpt-3.5-turbo-1106": 24.75,
        "gpt-3.5-turbo-1106_verbose": 23.84,
        "gpt-3.5-turbo-1106_concise": 29.44,
        "NullModel": 86.30,
        "gpt4_gamed": 27.49,
    },
    "per_model": {
        "gpt-3.5-turbo-1106": 26.04,
        "gpt-3.5-turbo-1106_verbose": 28.53,
        "gpt-3.5-turbo-1106_concise": 35.82,
        "NullModel": 81.80,
        "gpt4_gamed": 76.55,
    },
    "shared": {
        "gpt-3.5-turbo-1106": 25.02,
        "gpt-3.5-turbo-1106_verbose": 23.79,
        "gpt-3.5-turbo-1106_concise": 30.02,
        "NullModel": 87.35,
        "gpt4_gamed": 29.55,
    },
    "anchored": {
        "gpt-3.5-turbo-1106": 24.75,
        "gpt-3.5-turbo-1106_verbose": 23.84,
        "gpt-3.5-turbo-1106_concise": 29.44,
        "NullModel": 86.30,
        "gpt4_gamed": 27.49,
    },
}


@pytest.mark.parametrize("pooling", list(DOCUMENTED))
def test_documented_scores(shared_pairs: pd.DataFrame, pooling: str) -> None:
    anchors = sorted(m for m in shared_pairs.generator_2.unique() if m not in GAMED) if pooling == "anchored" else []
    board = style_controlled_leaderboard(shared_pairs, pooling=pooling, anchors=anchors, n_bootstrap=0)
    for model, value in DOCUMENTED[pooling].items():
        assert board.table.loc[model, "score"] == pytest.approx(value, abs=0.005), model
    assert board.table.loc["gpt4_gamed", "support"] == pytest.approx(0.037, abs=0.001)
    if pooling == "audited":
        assert list(board.anchors) == sorted(m for m in shared_pairs.generator_2.unique() if m not in GAMED)
