"""Verbosity sensitivity per family on the real gpt-3.5-turbo-1106 variants: measured roles, never a flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pasture.analysis.gaming import audit
from pasture.analysis.verbosity import name_families, verbosity_families

FAMILY = ("gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106_verbose", "gpt-3.5-turbo-1106_concise")


def test_roles_are_measured_not_read_from_names(shared_pairs: pd.DataFrame, official_board: pd.DataFrame) -> None:
    fam = shared_pairs[shared_pairs["generator_2"].isin(FAMILY)]
    lc = official_board["length_controlled_winrate"].dropna().to_dict()
    result = verbosity_families(fam, {"lc": lc})
    members = result.members
    assert members.loc["gpt-3.5-turbo-1106_verbose", "role"] == "longer"
    assert members.loc["gpt-3.5-turbo-1106_concise", "role"] == "shorter"
    assert members.loc["gpt-3.5-turbo-1106", "length_vs_base"] == 1.0
    row = result.families.loc["gpt-3.5-turbo-1106"]
    board = official_board.loc[list(FAMILY)]
    assert row["win_rate_spread"] == pytest.approx(board["win_rate"].max() - board["win_rate"].min(), abs=1e-6)
    assert row["lc_spread"] == pytest.approx(6.23, abs=0.01)
    # the figures quoted in docs/trust.md §4
    assert members.loc["gpt-3.5-turbo-1106_concise", "length_vs_base"] == pytest.approx(0.63, abs=0.005)
    assert members.loc["gpt-3.5-turbo-1106_verbose", "length_vs_base"] == pytest.approx(1.39, abs=0.005)
    assert row["win_rate_per_doubling"] == pytest.approx(4.59, abs=0.01)
    assert row["lc_per_doubling"] == pytest.approx(5.49, abs=0.01)
    x = np.log2(members.loc[list(FAMILY), "length_vs_base"].to_numpy())
    assert row["lc_per_doubling"] == pytest.approx(np.polyfit(x, board["length_controlled_winrate"], 1)[0])
    # swap the names: the roles follow the measured lengths, not the suffixes
    swap = {"gpt-3.5-turbo-1106_verbose": "gpt-3.5-turbo-1106_concise", "gpt-3.5-turbo-1106_concise": "x_verbose"}
    renamed = fam.assign(generator_2=fam["generator_2"].replace(swap))
    groups = dict.fromkeys(renamed["generator_2"].unique(), "the family")
    swapped = verbosity_families(renamed, families=groups).members
    assert swapped.loc["gpt-3.5-turbo-1106_concise", "role"] == "longer"
    assert swapped.loc["x_verbose", "role"] == "shorter"
    # and the variants are never flagged by the audit
    assert audit(fam)["flags"].map(len).sum() == 0


def test_name_families_groups_extensions_only() -> None:
    names = ["a", "a_verbose", "a_concise_v2", "a_concise", "claude-2", "claude-2.1", "solo"]
    fams = name_families(names)
    assert fams["a_verbose"] == fams["a_concise"] == fams["a_concise_v2"] == "a"
    assert fams["claude-2.1"] == "claude-2.1" and fams["solo"] == "solo"


def test_no_family_gives_empty_tables(shared_pairs: pd.DataFrame) -> None:
    sub = shared_pairs[shared_pairs["generator_2"].isin(["claude-2", "alpaca-7b"])]
    result = verbosity_families(sub)
    assert result.members.empty and result.families.empty
