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
from pasture.metrics.gamed import (
    GAMED_BASELINES,
    judged_gamed_rows,
    read_glm_weights,
    read_official_gamed,
    rebuild_gamed_rows,
)
from pasture.metrics.lc import DIFFICULTY_LOOKUPS, DifficultyLookup, LCInputs
from pasture.metrics.lc_shipped import (
    difficulty_for,
    instruction_digest,
    load_shipped,
    match_alpacaeval2,
    shipped_provenance,
)

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


ALPACA_EVAL_DIR_ENV = "PASTURE_ALPACA_EVAL_DIR"
"""Environment variable the CLI reads as ``--alpaca-eval-dir``."""


def _find_output_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name / "model_outputs.json", folder / name / "model_outputs.json.gz"):
        if candidate.is_file():
            return candidate
    return None


def _from_alpaca_eval_dir(
    root: Path, pairs: pd.DataFrame, keys: list[str], to_text: dict[str, str]
) -> tuple[pd.DataFrame | None, pd.Series | None, str, list[str]]:
    """Gamed rows / difficulty from a folder laid out like AlpacaEval's (its root, or its ``results/``).

    Official files (``df_gamed.csv``, ``instruction_difficulty.csv``, positional) are aligned through
    ``keys`` (the eval set in official order: texts or shipped digests); else the gamed baselines' outputs
    (``<results>/gpt4_1106_preview_{verbose,concise}/model_outputs.json[.gz]``) are rebuilt with the shipped
    published coefficients and difficulty. Returns (gamed rows, difficulty of the whole eval set by text
    where known, else by key; gamed source, notes).
    """
    if not root.is_dir():
        raise InputError("--alpaca-eval-dir is not a folder", path=root)
    if (root / "df_gamed.csv").is_file():
        gamed, d_keys = read_official_gamed(root / "df_gamed.csv", keys)
        d = d_keys.rename(index=lambda k: to_text.get(k, k))
        return gamed, d, "official", [f"gamed rows and difficulty from {root / 'df_gamed.csv'}"]
    d = None
    notes: list[str] = []
    if (root / "instruction_difficulty.csv").is_file():
        d_keys = read_difficulty_file(root / "instruction_difficulty.csv", keys)
        d = d_keys.rename(index=lambda k: to_text.get(k, k))
        notes.append(f"difficulty from {root / 'instruction_difficulty.csv'}")
    results = root / "results" if (root / "results").is_dir() else root
    found = {g: _find_output_file(results, g) for g in GAMED_BASELINES}
    if all(found.values()) and to_text:
        shipped = load_shipped()
        ref = shipped.table["len_reference"].astype(float)
        lengths = {}
        for g, path in found.items():
            by_text = output_lengths(path)  # type: ignore[arg-type]
            lengths[g] = pd.Series(by_text.to_numpy(), index=[instruction_digest(s) for s in by_text.index])
        gamed = rebuild_gamed_rows(ref, lengths, shipped.gamed_coefficients, shipped.difficulty)
        notes.append(f"gamed rows rebuilt from the outputs in {results} and their published coefficients")
        return gamed, d, "rebuilt", notes
    notes.append(
        f"no gamed rows from {root}: neither df_gamed.csv nor (on AlpacaEval 2's eval set) the gamed baselines' outputs"
    )
    return None, d, "none", notes


def prepare_lc_inputs(
    pairs: pd.DataFrame,
    *,
    difficulty: str | Path | pd.Series | None = None,
    gamed: str | Path | pd.DataFrame | None = None,
    eval_set: str | Path | Sequence[str] | None = None,
    glm_weights: str | Path | pd.DataFrame | None = None,
    gamed_outputs: dict[str, str | Path] | None = None,
    alpaca_eval_dir: str | Path | None = None,
    judged_gamed: pd.DataFrame | None = None,
    shipped: bool = True,
    estimate: bool = True,
    min_models: int = MIN_MODELS_FOR_DIFFICULTY,
    difficulty_lookup: DifficultyLookup = "text",
) -> LCInputs:
    """Choose the difficulty vector and gamed-baseline rows for LC, and record where they came from.

    Difficulty, in order of precedence: ``difficulty`` as a Series; the official ``gamed`` file's own
    difficulty column (the vector the official LC uses, so a difficulty file is then not used, and the notes
    say so); ``difficulty`` as a CSV path or ``"hub"`` (AlpacaEval's ``instruction_difficulty.csv``); the
    official files in ``alpaca_eval_dir``; on AlpacaEval 2's eval set with its reference, the **shipped**
    fixed vector (:mod:`pasture.metrics.lc_shipped`; ``shipped=False`` turns it off), so a model's LC never
    depends on which other models are scored; else, when ``estimate``, a joint fit over the models in
    ``pairs`` (:func:`~pasture.metrics.difficulty.estimate_difficulty`, calibrated to ``glm_weights`` when
    given; at least ``min_models`` models); else none, and LC is the length-only GLM.

    Gamed rows: ``gamed`` (a DataFrame in pasture's layout, a path to AlpacaEval's ``df_gamed.csv``, or
    ``"hub"``); else ``judged_gamed``, the board's own gamed baselines judged by its judge (AlpacaEval's method,
    rows as :func:`~pasture.metrics.gamed.judged_gamed_rows` takes them); else rebuilt from ``glm_weights`` and ``gamed_outputs`` (baseline name -> its
    model_outputs file) when a difficulty vector exists; else from ``alpaca_eval_dir`` (a folder laid out
    like AlpacaEval's: ``df_gamed.csv``, or ``results/<gamed baseline>/model_outputs.json``); else the
    shipped rows on AlpacaEval 2's eval set; else none, and every result's notes say so.

    ``eval_set`` (path, ``"hub"`` or instruction texts in official order) aligns AlpacaEval's positional
    files to instruction text; on AlpacaEval 2's eval set the shipped digests do it without it.

    The eval set's order (``eval_set``, else AlpacaEval 2's official order on its eval set) also gives
    ``eval_set_difficulty``, the chosen vector over the whole eval set in that order (None when the order is
    not known). ``difficulty_lookup="position"`` asks for AlpacaEval's board lookup (row k of a model's rows
    gets eval-set instruction k's difficulty; see :mod:`pasture.metrics.lc`): it needs a difficulty vector
    and the eval set's order, and is an InputError without them. The default ``"text"`` is correct.
    """
    if difficulty_lookup not in DIFFICULTY_LOOKUPS:
        raise InputError(
            f"unknown difficulty lookup {difficulty_lookup!r}; choose one of {', '.join(DIFFICULTY_LOOKUPS)}"
        )
    notes: list[str] = []
    texts: list[str] | None = None
    if eval_set is not None:
        if isinstance(eval_set, str | Path):
            texts = read_eval_set(_resolve(eval_set, "eval_set")).texts()
        else:
            texts = list(eval_set)
    digests, why = match_alpacaeval2(pairs) if (shipped or alpaca_eval_dir is not None) and len(pairs) else (None, "")
    on_ae2 = digests is not None
    # on AlpacaEval 2's eval set, positional files align through the shipped digests when no eval set is given
    keys: list[str] | None = texts
    to_text: dict[str, str] = {}
    if keys is None and on_ae2:
        keys = list(load_shipped().table.index)
        to_text = {instruction_digest(s): s for s in pairs["instruction"].astype(str).unique()}

    def need_keys(what: str) -> list[str]:
        if keys is None:
            raise InputError(f"{what} is positional: pass the eval set (--eval-set) to align it by instruction text")
        return keys

    def by_text(series: pd.Series) -> pd.Series:
        return series.rename(index=lambda k: to_text.get(k, k)) if to_text else series

    gamed_rows: pd.DataFrame | None = None
    gamed_source = "none"
    d: pd.Series | None = None
    d_full: pd.Series | None = None  # the chosen vector over the whole eval set, where the source has it
    d_source = "none"
    if isinstance(gamed, pd.DataFrame):
        gamed_rows, gamed_source = gamed, "user"
    elif gamed is not None:
        gamed_rows, d_official = read_official_gamed(_resolve(gamed, "gamed_baselines"), need_keys("df_gamed.csv"))
        gamed_source = "official"
        d, d_source = by_text(d_official), "official"
    use_judged = gamed_rows is None and judged_gamed is not None and len(judged_gamed) > 0
    if isinstance(difficulty, pd.Series):
        d, d_source = difficulty, "user"
    elif difficulty is not None and gamed_source == "official":
        notes.append(
            "difficulty file not used for LC: with the official gamed rows, LC uses their difficulty column, "
            "as AlpacaEval does"
        )
    elif difficulty is not None:
        d = by_text(read_difficulty_file(_resolve(difficulty, "instruction_difficulty"), keys))
        d_source = "official" if str(difficulty) == HUB else "user"
    if alpaca_eval_dir is not None and gamed_rows is None and keys is None:
        notes.append(f"--alpaca-eval-dir not used: {why} (or pass the eval set to align its positional files)")
    elif alpaca_eval_dir is not None and gamed_rows is None:
        assert keys is not None
        g_rows, d_dir, g_source, dir_notes = _from_alpaca_eval_dir(Path(alpaca_eval_dir), pairs, keys, to_text)
        notes.extend(dir_notes)
        if g_rows is not None and not use_judged:
            gamed_rows, gamed_source = g_rows, g_source
        if d is None and d_dir is not None:
            d_full = d_dir
            d, d_source = d_dir.loc[list(pairs["instruction"].astype(str).unique())], "official"
    if d is None and on_ae2 and shipped:
        d = difficulty_for(list(pairs["instruction"].astype(str).unique()), load_shipped().difficulty)
        d_source = "shipped"
        notes.append(f"difficulty: {shipped_provenance()}")
    weights = read_glm_weights(glm_weights) if isinstance(glm_weights, str | Path) else glm_weights
    if d is None and estimate:
        if why:
            notes.append(why)
        est = estimate_difficulty(pairs, instructions=texts, min_models=min_models, coefficients=weights)
        notes.extend(est.notes)
        if est.difficulty is not None:
            d, d_source = est.difficulty, "estimated"
            notes.append(
                f"difficulty estimated from the {est.n_models} models scored together: "
                "a model's LC depends on which models are scored with it"
            )
    elif d is None:
        notes.append("no instruction difficulty given and estimation off: length-only GLM")
    if use_judged:
        assert judged_gamed is not None
        judged_rows = judged_gamed_rows(judged_gamed, d)
        names = ", ".join(sorted(set(judged_gamed["model"])))
        if len(judged_rows):
            gamed_rows, gamed_source = judged_rows, "judged"
            notes.append(f"gamed rows: the board's own gamed baselines ({names}), judged by its judge")
        else:
            notes.append(f"gamed baselines {names} not used: fewer than 2 judged rows or no length spread")
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
    if gamed_rows is None and on_ae2 and shipped and d is not None:
        gamed_rows, gamed_source = load_shipped().gamed_rows(), "shipped"
        notes.append(
            "gamed rows rebuilt from shipped output lengths and the baselines' published coefficients "
            "(expected verdicts, not the judge's)"
        )
    if gamed_rows is None:
        notes.append("no gamed-baseline rows: the length slope is not regularised")
    in_order: pd.Series | None = None
    if d is not None and keys is not None:
        eval_names = [to_text.get(k, k) for k in keys]
        if d_source == "shipped":  # keyed by digest: every eval-set instruction has one, text known or not
            key_digests = keys if texts is None else [instruction_digest(t) for t in keys]
            values = load_shipped().difficulty.reindex(key_digests).to_numpy(float)
        else:
            vector = d_full if d_full is not None else d
            if not vector.index.is_unique:
                raise InputError("the difficulty vector repeats an instruction: give each instruction one value")
            values = vector.reindex(eval_names).to_numpy(float)
        in_order = pd.Series(values, index=pd.Index(eval_names, dtype=object), name="instruction_difficulty")
    if difficulty_lookup == "position":
        if d is None:
            raise InputError(
                "difficulty lookup 'position' needs a difficulty vector and none applies here (LC would be the "
                "length-only GLM): pass one (--difficulty; a positional file with --eval-set)"
            )
        if in_order is None:
            raise InputError(
                "difficulty lookup 'position' needs the eval set's order (row k gets instruction k's difficulty): "
                "pass the eval set (--eval-set); pasture knows AlpacaEval 2's order itself"
            )
    return LCInputs(
        difficulty=d,
        gamed=gamed_rows,
        difficulty_source=d_source,  # type: ignore[arg-type]
        gamed_source=gamed_source,  # type: ignore[arg-type]
        notes=tuple(notes),
        difficulty_lookup=difficulty_lookup,
        eval_set_difficulty=in_order,
    )
