"""The board's own judged gamed baselines as rows of the LC fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def test_judged_gamed_rows_standardise_length_per_variant_and_look_up_difficulty() -> None:
    from pasture.metrics.gamed import GAMED_COLUMNS, judged_gamed_rows

    judged = pd.DataFrame(
        {
            "model": ["v", "v", "v", "c", "c", "solo"],
            "instruction": ["a", "b", "c", "a", "b", "a"],
            "len_1": [100, 100, 100, 100, 100, 100],
            "len_2": [300, 200, 100, 50, 50, 10],
            "preference": [2.0, 1.5, 1.0, 1.0, 1.0, 1.0],
        }
    )
    rows = judged_gamed_rows(judged, pd.Series({"a": 0.5, "b": -1.0}))
    assert list(rows.columns) == GAMED_COLUMNS
    # 'c' has no length spread and 'solo' one row: neither can be standardised, both are left out
    assert list(rows["model"]) == ["v", "v", "v"]
    delta = np.array([-200.0, -100.0, 0.0])
    assert rows["std_delta_len"].to_numpy() == pytest.approx(delta / np.std(delta, ddof=1))
    assert rows["difficulty"].tolist() == [0.5, -1.0, 0.0]  # 'c' has no difficulty: 0
    assert judged_gamed_rows(judged, None)["difficulty"].eq(0.0).all()
