"""Assembling the LC GLM's inputs (difficulty, gamed baselines) from files, the hub or an estimate.

Why a module of its own: the LC numbers depend on which difficulty vector and which gamed-baseline rows
were used, so choosing them is an explicit, recorded step (:class:`pasture.metrics.lc.LCInputs`), never a
hidden download or a silent default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pasture.errors import InputError
from pasture.io import fetch_alpaca_eval_file, read_eval_set, read_model_outputs
from pasture.metrics.difficulty import MIN_MODELS_FOR_DIFFICULTY, estimate_difficulty, read_difficulty_file
from pasture.metrics.gamed import read_glm_weights, read_official_gamed, rebuild_gamed_rows
from pasture.metrics.lc import LCInputs

HUB = "hub"
"""Pass this instead of a path to fetch AlpacaEval's official file from the Hugging Face hub."""


def _resolve(source: str | Path, kind: str) -> Path:
    return fetch_alpaca_eval_file(kind) if str(source) == HUB else Path(source)


def reference_lengths(pairs: pd.DataFrame) -> pd.Series:
    """Character length of the reference output per instruction (first pair seen), from a pair table."""
    ref = pairs.drop_duplicates("instruction")
    return pd.Series(ref["len_1"].to_numpy(float), index=ref["instruction"].to_numpy())


def output_lengths(path: str | Path) -> pd.Series:
    """Character length of each output (sample 0) in a model_outputs file, indexed by instruction."""
    outs = [o for o in read_model_outputs(path, generator="gamed") if o.sample_index == 0]
    return pd.Series([len(o.output) for o in outs], index=[o.instruction for o in outs], dtype=float)


def prepare_lc_inputs(
    pairs: pd.DataFrame,
    *,
    difficulty: str | Path | pd.Series | None = None,
    gamed: str | Path | pd.DataFrame | None = None,
    eval_set: str | Path | Sequence[str] | None = None,
    glm_weights: str | Path | pd.DataFrame | None = None,
    gamed_outputs: dict[str, str | Path] | None = None,
    estimate: bool = True,
    min_models: int = MIN_MODELS_FOR_DIFFICULTY,
) -> LCInputs:
    """Choose the difficulty vector and gamed-baseline rows for LC, and record where they came from.

    Difficulty, in order of precedence: ``difficulty`` as a Series; the official ``gamed`` file's own
    difficulty column (the vector the official LC uses, so a difficulty file is then not used, and the notes
    say so); ``difficulty`` as a CSV path or ``"hub"`` (AlpacaEval's ``instruction_difficulty.csv``); else, when ``estimate``, a joint fit over the models in ``pairs``
    (:func:`~pasture.metrics.difficulty.estimate_difficulty`, calibrated to ``glm_weights`` when given);
    else none, and LC is the length-only GLM.

    Gamed rows: ``gamed`` (a DataFrame in pasture's layout, a path to AlpacaEval's ``df_gamed.csv``, or
    ``"hub"``); else rebuilt from ``glm_weights`` and ``gamed_outputs`` (baseline name -> its
    model_outputs file) when a difficulty vector exists; else none.

    ``eval_set`` (path, ``"hub"`` or instruction texts in official order) aligns AlpacaEval's positional
    files to instruction text; it is needed only for those.
    """
    notes: list[str] = []
    texts: list[str] | None = None
    if eval_set is not None:
        if isinstance(eval_set, str | Path):
            texts = read_eval_set(_resolve(eval_set, "eval_set")).texts()
        else:
            texts = list(eval_set)

    def need_texts(what: str) -> list[str]:
        if texts is None:
            raise InputError(f"{what} is positional: pass the eval set (--eval-set) to align it by instruction text")
        return texts

    gamed_rows: pd.DataFrame | None = None
    gamed_source = "none"
    d: pd.Series | None = None
    d_source = "none"
    if isinstance(gamed, pd.DataFrame):
        gamed_rows, gamed_source = gamed, "user"
    elif gamed is not None:
        gamed_rows, d_official = read_official_gamed(_resolve(gamed, "gamed_baselines"), need_texts("df_gamed.csv"))
        gamed_source = "official"
        d, d_source = d_official, "official"
    if isinstance(difficulty, pd.Series):
        d, d_source = difficulty, "user"
    elif difficulty is not None and gamed_source == "official":
        notes.append(
            "difficulty file not used for LC: with the official gamed rows, LC uses their difficulty column, "
            "as AlpacaEval does"
        )
    elif difficulty is not None:
        d = read_difficulty_file(_resolve(difficulty, "instruction_difficulty"), texts)
        d_source = "official" if str(difficulty) == HUB else "user"
    weights = read_glm_weights(glm_weights) if isinstance(glm_weights, str | Path) else glm_weights
    if d is None and estimate:
        est = estimate_difficulty(pairs, instructions=texts, min_models=min_models, coefficients=weights)
        notes.extend(est.notes)
        if est.difficulty is not None:
            d, d_source = est.difficulty, "estimated"
    elif d is None:
        notes.append("no instruction difficulty given and estimation off: length-only GLM")
    if gamed_rows is None and gamed_outputs:
        if weights is None:
            raise InputError("rebuilding the gamed baselines needs the published GLM weights (--glm-weights)")
        if d is None:
            notes.append("gamed baselines not rebuilt: they need a difficulty vector")
        else:
            lengths = {name: output_lengths(path) for name, path in gamed_outputs.items()}
            gamed_rows = rebuild_gamed_rows(reference_lengths(pairs), lengths, weights, d)
            gamed_source = "rebuilt"
            notes.append(
                f"gamed baselines rebuilt from published coefficients and outputs ({', '.join(lengths)}): "
                "expected verdicts, not the judge's"
            )
    if gamed_rows is None:
        notes.append("no gamed-baseline rows: the length slope is not regularised")
    return LCInputs(
        difficulty=d,
        gamed=gamed_rows,
        difficulty_source=d_source,  # type: ignore[arg-type]
        gamed_source=gamed_source,  # type: ignore[arg-type]
        notes=tuple(notes),
    )
