"""The gamed baselines of the LC GLM: the reference prompted to be verbose and to be concise.

Why: a model's own rows barely pin down how much the judge rewards length. AlpacaEval appends the judged
rows of two "gamed" versions of the reference (same model, told to be verbose / concise), with the model
term off and a small weight, so that every fit learns the length slope partly from them. Their annotations
are published only on the Hugging Face hub (``df_gamed.csv``); offline pasture rebuilds the rows from their
published GLM coefficients and their outputs (docs/metrics.md, "Gamed baselines").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from pasture.errors import InputError

GAMED_BASELINES = ("gpt4_1106_preview_verbose", "gpt4_1106_preview_concise")
"""AlpacaEval 2's gamed baselines of the gpt4_1106_preview reference, in the official order."""

GLM_WEIGHT_COLUMNS = {
    "np.tanh(std_delta_len)": "length",
    "instruction_difficulty": "difficulty",
    "not_gamed_baseline.astype(float)": "model",
}
"""AlpacaEval's coefficient column names -> pasture's (see :class:`pasture.metrics.lc.LCResult`)."""

GAMED_COLUMNS = ["model", "instruction", "preference", "std_delta_len", "difficulty"]


def read_glm_weights(path: str | Path) -> pd.DataFrame:
    """Published per-model LC coefficients (AlpacaEval's ``lc_glm_weights_*.csv``), indexed by model, with
    columns ``length``, ``difficulty`` and ``model``. A model listed twice keeps its last row."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, index_col=0)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read GLM weights CSV ({type(exc).__name__})", path=path) from None
    missing = [c for c in GLM_WEIGHT_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"not a GLM weights file: missing column(s) {', '.join(missing)}", path=path)
    frame = frame.rename(columns=GLM_WEIGHT_COLUMNS)[list(GLM_WEIGHT_COLUMNS.values())].astype(float)
    return frame[~frame.index.duplicated(keep="last")]


def rebuild_gamed_rows(
    reference_lengths: pd.Series,
    gamed_lengths: Mapping[str, pd.Series],
    coefficients: pd.DataFrame,
    difficulty: pd.Series,
) -> pd.DataFrame:
    """Rows of the gamed baselines with soft labels predicted by their published coefficients.

    For baseline g on instruction i: ``std_delta_len = (len_ref_i - len_g_i) / sd_g`` (sd over g's rows,
    ddof=1) and ``preference = 1 + sigmoid(a_g tanh(std_delta_len) + b_g d_i + c_g)``: the judge's expected
    verdict under the GLM the official fit found for g. This reproduces the regulariser in expectation (the
    real verdicts are not published offline); ``difficulty`` must be on the published coefficients' scale.
    Lengths are Series indexed by instruction text; rows follow ``reference_lengths``' order, baselines the
    mapping's order.
    """
    parts = []
    for name, lengths in gamed_lengths.items():
        if name not in coefficients.index:
            raise InputError(f"no published GLM coefficients for gamed baseline {name!r}")
        common = [s for s in reference_lengths.index if s in lengths.index and s in difficulty.index]
        if len(common) < 2:
            raise InputError(f"gamed baseline {name!r} shares fewer than 2 instructions with the reference")
        delta = reference_lengths.loc[common].to_numpy(float) - lengths.loc[common].to_numpy(float)
        std = delta / np.std(delta, ddof=1)
        d = difficulty.loc[common].to_numpy(float)
        a, b, c = coefficients.loc[name, ["length", "difficulty", "model"]].to_numpy(float)
        parts.append(
            pd.DataFrame(
                {
                    "model": name,
                    "instruction": common,
                    "preference": 1.0 + expit(a * np.tanh(std) + b * d + c),
                    "std_delta_len": std,
                    "difficulty": d,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[GAMED_COLUMNS]


def judged_gamed_rows(judged: pd.DataFrame, difficulty: pd.Series | None) -> pd.DataFrame:
    """The fit's rows of gamed baselines that were generated and judged for this board (``pasture
    gamed-baselines``), AlpacaEval's own method: real verdicts of the board's judge, not expected ones.

    ``judged`` has one row per (variant, instruction): ``model``, ``instruction``, ``len_1`` (reference),
    ``len_2`` (variant) and ``preference`` (1 = reference wins .. 2 = variant wins). Per variant,
    ``std_delta_len = (len_1 - len_2) / sd`` (sd over that variant's rows, ddof=1), as for a model's own rows;
    ``difficulty`` is looked up by instruction text (0 where there is no difficulty vector, i.e. the
    length-only GLM, or the instruction has none). Variants with fewer than 2 rows or no length spread are
    left out.
    """
    parts = []
    for name, rows in judged.groupby("model", sort=True):
        delta = rows["len_1"].to_numpy(float) - rows["len_2"].to_numpy(float)
        if len(rows) < 2 or not np.std(delta, ddof=1) > 0:
            continue
        d = (
            rows["instruction"].map(difficulty).fillna(0.0).to_numpy(float)
            if difficulty is not None
            else np.zeros(len(rows))
        )
        parts.append(
            pd.DataFrame(
                {
                    "model": name,
                    "instruction": rows["instruction"].to_numpy(),
                    "preference": rows["preference"].to_numpy(float),
                    "std_delta_len": delta / np.std(delta, ddof=1),
                    "difficulty": d,
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=GAMED_COLUMNS)
    return pd.concat(parts, ignore_index=True)[GAMED_COLUMNS]


def read_official_gamed(path: str | Path, instructions: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    """AlpacaEval's ``df_gamed.csv`` (positional ``index`` column) aligned to the eval set by text.

    Returns the gamed rows (pasture columns, preference shifted to [1, 2]) and the difficulty vector the
    official LC fit actually uses (the file's first difficulty value per position), in eval-set order.
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read gamed-baselines CSV ({type(exc).__name__})", path=path) from None
    need = ["model", "index", "preference", "std_delta_len", "instruction_difficulty"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputError(f"not a gamed-baselines file: missing column(s) {', '.join(missing)}", path=path)
    pos = frame["index"].to_numpy(int)
    if pos.min() < 0 or pos.max() >= len(instructions):
        raise InputError(f"gamed rows point outside the {len(instructions)}-instruction eval set", path=path)
    texts = np.asarray(list(instructions), dtype=object)
    gamed = pd.DataFrame(
        {
            "model": frame["model"].astype(str),
            "instruction": texts[pos],
            "preference": frame["preference"].to_numpy(float) + 1.0,
            "std_delta_len": frame["std_delta_len"].to_numpy(float),
            "difficulty": frame["instruction_difficulty"].to_numpy(float),
        }
    )
    first = frame.drop_duplicates("index").set_index("index")["instruction_difficulty"]
    if len(first) != len(instructions):
        raise InputError(f"gamed rows cover {len(first)} of {len(instructions)} eval-set positions", path=path)
    difficulty = pd.Series(first.sort_index().to_numpy(float), index=texts, name="instruction_difficulty")
    return gamed, difficulty


def write_official_gamed(gamed: pd.DataFrame, instructions: Sequence[str], path: str | Path) -> Path:
    """Write gamed rows in AlpacaEval's ``df_gamed.csv`` layout (positional index, preference in [0, 1]).

    Used to feed AlpacaEval itself the very rows pasture uses (benchmarks/lc_exactness.py)."""
    position = {s: i for i, s in enumerate(instructions)}
    out = pd.DataFrame(
        {
            "model": gamed["model"].to_numpy(),
            "index": [position[s] for s in gamed["instruction"]],
            "preference": gamed["preference"].to_numpy(float) - 1.0,
            "std_delta_len": gamed["std_delta_len"].to_numpy(float),
            "instruction_difficulty": gamed["difficulty"].to_numpy(float),
            "not_gamed_baseline": False,
        }
    )
    path = Path(path)
    out.to_csv(path, index=False, float_format="%.17g")
    return path
