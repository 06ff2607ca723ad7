"""Scoring stored or imported judgments into leaderboard rows, without a single judge call."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd

from pasture.errors import InputError
from pasture.io import read_annotations
from pasture.metrics.bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    bootstrap_lc,
    bootstrap_win_rate,
    resample_counts,
)
from pasture.metrics.difficulty import MIN_MODELS_FOR_DIFFICULTY
from pasture.metrics.lc import DifficultyLookup, LCInputs, length_controlled_winrate
from pasture.metrics.lc_inputs import prepare_lc_inputs
from pasture.metrics.pairs import pair_table
from pasture.metrics.winrate import win_rates
from pasture.records import Judgment
from pasture.store import Store

LC_COLUMNS = ["length_controlled_winrate", "lc_standard_error", "lc_method", "lc_note"]
CI_COLUMNS = ["win_rate_ci_low", "win_rate_ci_high", "lc_ci_low", "lc_ci_high"]


def score_pairs(
    pairs: pd.DataFrame,
    *,
    lc: bool = True,
    difficulty: str | Path | pd.Series | None = None,
    gamed: str | Path | pd.DataFrame | None = None,
    eval_set: str | Path | Sequence[str] | None = None,
    glm_weights: str | Path | pd.DataFrame | None = None,
    gamed_outputs: Mapping[str, str | Path] | None = None,
    alpaca_eval_dir: str | Path | None = None,
    shipped_inputs: bool = True,
    estimate_difficulty: bool = True,
    min_models: int = MIN_MODELS_FOR_DIFFICULTY,
    lc_inputs: LCInputs | None = None,
    difficulty_lookup: DifficultyLookup | None = None,
    bootstrap_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """Leaderboard rows from a :func:`~pasture.metrics.pairs.pair_table` (see :func:`score_judgments`).

    With ``difficulty_lookup="position"`` each model's rows are taken in the table's order (a pair table
    keeps its judgments' first-seen order, i.e. a file's order).
    """
    if pairs.empty:
        return pd.DataFrame(columns=["win_rate"])
    frame = pd.DataFrame([r.model_dump() for r in win_rates(pairs)]).set_index("generator")
    frame.index.name = "model"
    if lc_inputs is not None and difficulty_lookup is not None and difficulty_lookup != lc_inputs.difficulty_lookup:
        raise InputError(
            f"difficulty lookup {difficulty_lookup!r} asked for, but the given LC inputs look up by "
            f"{lc_inputs.difficulty_lookup!r}: build them with prepare_lc_inputs(..., difficulty_lookup=...)"
        )
    if lc:
        inputs = lc_inputs or prepare_lc_inputs(
            pairs,
            difficulty=difficulty,
            gamed=gamed,
            eval_set=eval_set,
            glm_weights=glm_weights,
            gamed_outputs=dict(gamed_outputs) if gamed_outputs else None,
            alpaca_eval_dir=alpaca_eval_dir,
            shipped=shipped_inputs,
            estimate=estimate_difficulty,
            min_models=min_models,
            difficulty_lookup=difficulty_lookup or "text",
        )
        order = pd.Index(sorted(pairs["instruction"].unique()))
        counts = resample_counts(len(order), bootstrap_resamples, seed) if bootstrap_resamples > 0 else None
        extra = []
        for gen, rows in pairs.groupby("generator_2", sort=True):
            is_ref = bool((rows["generator_1"] == gen).all())
            res = length_controlled_winrate(rows, inputs, generator=str(gen), is_reference=is_ref)
            row: dict[str, object] = {
                "model": gen,
                "length_controlled_winrate": res.length_controlled_winrate,
                "lc_standard_error": res.lc_standard_error,
                "lc_method": res.method,
                "lc_note": res.note,
            }
            if counts is not None:
                wr, _ = bootstrap_win_rate(rows, counts, order, generator=str(gen), level=level, seed=seed)
                lcb, _ = bootstrap_lc(rows, inputs, res, counts, order, level=level, seed=seed)
                row.update(win_rate_ci_low=wr.low, win_rate_ci_high=wr.high, lc_ci_low=lcb.low, lc_ci_high=lcb.high)
            extra.append(row)
        frame = frame.join(pd.DataFrame(extra).set_index("model"))
        frame.attrs["lc_inputs"] = inputs.describe()
        if counts is not None:
            frame.attrs["bootstrap"] = f"{bootstrap_resamples} paired resamples over instructions, seed {seed}"
    return frame.sort_values("win_rate", ascending=False)


def score_judgments(
    judgments: Iterable[Judgment],
    *,
    lc: bool = True,
    difficulty: str | Path | pd.Series | None = None,
    gamed: str | Path | pd.DataFrame | None = None,
    eval_set: str | Path | Sequence[str] | None = None,
    glm_weights: str | Path | pd.DataFrame | None = None,
    gamed_outputs: Mapping[str, str | Path] | None = None,
    alpaca_eval_dir: str | Path | None = None,
    shipped_inputs: bool = True,
    estimate_difficulty: bool = True,
    min_models: int = MIN_MODELS_FOR_DIFFICULTY,
    lc_inputs: LCInputs | None = None,
    difficulty_lookup: DifficultyLookup | None = None,
    bootstrap_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """One row per model (``generator_2``) with AlpacaEval 2's leaderboard columns plus ``n_failed``, LC and
    bootstrap intervals. Sorted by win rate, best first; the index is the model name, as on AlpacaEval's board.

    LC columns (``lc=True``): ``length_controlled_winrate``, ``lc_standard_error`` (AlpacaEval's definition),
    ``lc_method`` and ``lc_note`` (what a reader must know: no gamed rows, no difficulty term, difficulty
    estimated from the models scored together, not identified; empty for the official GLM on fixed inputs).
    Their inputs, chosen by :func:`pasture.metrics.lc_inputs.prepare_lc_inputs`: ``difficulty`` (Series,
    CSV path or ``"hub"``), ``gamed`` (AlpacaEval's ``df_gamed.csv`` path, ``"hub"`` or rows), ``eval_set``
    (aligns those positional files by text), ``glm_weights`` + ``gamed_outputs`` (rebuild the gamed
    baselines offline), ``alpaca_eval_dir`` (a folder laid out like AlpacaEval's), ``shipped_inputs`` (on
    AlpacaEval 2's eval set, pasture's fixed difficulty and gamed rows: a model's LC then never depends on
    the other models scored), ``estimate_difficulty``/``min_models`` (joint fit over the models present, for
    other eval sets; below ``min_models`` LC is the length-only GLM), or a ready ``lc_inputs``. Which inputs
    were used is in ``frame.attrs["lc_inputs"]``.

    ``difficulty_lookup`` (default ``"text"``, or the one ``lc_inputs`` was built with): ``"text"`` gives each
    row its instruction's difficulty (correct); ``"position"`` gives row k of a model's rows eval-set
    instruction k's, as AlpacaEval's board does, so that files with missing or reordered rows get the board's
    (misaligned) number; the order is the order the judgments come in (:func:`score_files`: the file's).
    Either way ``lc_note`` says when the two lookups differ for a model (docs/metrics.md).

    CI columns (``bootstrap_resamples > 0``): percentile intervals at ``level`` from a paired bootstrap over
    instructions with ``seed`` (``win_rate_ci_*``, ``lc_ci_*``; see docs/metrics.md).
    """
    return score_pairs(
        pair_table(judgments),
        lc=lc,
        difficulty=difficulty,
        gamed=gamed,
        eval_set=eval_set,
        glm_weights=glm_weights,
        gamed_outputs=gamed_outputs,
        alpaca_eval_dir=alpaca_eval_dir,
        shipped_inputs=shipped_inputs,
        estimate_difficulty=estimate_difficulty,
        min_models=min_models,
        lc_inputs=lc_inputs,
        difficulty_lookup=difficulty_lookup,
        bootstrap_resamples=bootstrap_resamples,
        seed=seed,
        level=level,
    )


def _positional(options: Mapping[str, object]) -> bool:
    """Whether scoring ``options`` ask for the positional difficulty lookup (directly or through lc_inputs)."""
    inputs = options.get("lc_inputs")
    return options.get("difficulty_lookup") == "position" or (
        isinstance(inputs, LCInputs) and inputs.difficulty_lookup == "position"
    )


def _one_file_per_model(paths: Sequence[str | Path]) -> Iterator[Judgment]:
    """The files' judgments in file order, refusing a model whose rows come from two files (a row's position
    is its place in one file, so rows split over files have none)."""
    first_file: dict[str, Path] = {}
    for path in paths:
        for j in read_annotations(path):
            first = first_file.setdefault(j.generator_2, Path(path))
            if first != Path(path):
                raise InputError(
                    f"difficulty lookup 'position': model {j.generator_2!r} has rows in {first} and {path}; "
                    "a row's position is its place in one file: score the model from one file, or look up by text"
                )
            yield j


def score_files(paths: Sequence[str | Path], **options: object) -> pd.DataFrame:
    """:func:`score_judgments` over AlpacaEval annotation files (plain or .gz); ``options`` as there.

    Each model's rows keep their file's order, which is what ``difficulty_lookup="position"`` reads (row k
    of a model = its k-th row in the file, failed rows included); that lookup refuses a model with rows in
    two files.
    """
    # one file's Judgment objects at a time: the pair table keeps only what the metrics need
    if _positional(options):
        judgments: Iterable[Judgment] = _one_file_per_model(paths)
    else:
        judgments = (j for path in paths for j in read_annotations(path))
    return score_judgments(judgments, **options)  # type: ignore[arg-type]


def store_judgments(store: Store, *, judge: str | None = None) -> list[Judgment]:
    """The judgments a store holds for scoring, one per (model, question) as the models' files had them.

    Why not the stored rows: the store keeps one judgment per key, and a key has no generator in it, so two
    models with the same output for an instruction share one stored row. Models on a board (``pasture
    evaluate``/``pasture import``) get their judgments through their outputs' keys
    (:func:`pasture.leaderboard.member_judgments`), once per model. Judgments of models on no board (e.g.
    from ``pasture annotate``) are taken as stored. ``judge`` (a name or a digest prefix) picks one judge;
    without it a store holding several judges is an InputError that lists them.
    """
    from pasture.leaderboard import BoardKey, boards, member_judgments

    judge_names = dict(store.judges())
    table = boards(store)
    stored = {d: store.get_judgments(judge_digest=d) for d in judge_names}
    present = set(table["judge_digest"]) | {d for d, js in stored.items() if js}
    if judge is not None:
        chosen = {d for d in present if d.startswith(judge) or judge_names.get(d) == judge}
        if not chosen:
            listing = ", ".join(f"{judge_names.get(d, '?')} ({d[:12]})" for d in sorted(present)) or "none"
            raise InputError(f"{store.path}: no judgments of judge {judge!r}; judges here: {listing}")
        present = chosen
    if len(present) > 1:
        listing = ", ".join(f"{judge_names.get(d, '?')} ({d[:12]})" for d in sorted(present))
        raise InputError(f"{store.path}: judgments of {len(present)} judges ({listing}); pick one with --judge")
    out: list[Judgment] = []
    members: set[tuple[str, str]] = set()
    for r in table[table["judge_digest"].isin(present)].itertuples():
        key = BoardKey(r.eval_set_digest, r.reference_digest, r.judge_digest)
        found = member_judgments(store, key)
        members |= {(j.judge_digest, j.generator_2) for j in found}
        out += found
    for digest in sorted(present):
        out += [j for j in stored.get(digest, []) if (digest, j.generator_2) not in members]
    return out


def score_store(store: Store, *, judge: str | None = None, **options: object) -> pd.DataFrame:
    """:func:`score_judgments` over :func:`store_judgments` (one judge's); ``options`` as there.

    On the same data it gives the rows :func:`score_files` gives, except where one stored verdict answers
    several models' identical question and their files disagreed on it (the store keeps the first).
    ``difficulty_lookup="position"`` is refused: a store keeps no file's row order, so a row has no position.
    """
    if _positional(options):
        raise InputError(
            f"{store.path}: difficulty lookup 'position' needs each model's rows in its annotation file's order, "
            "which a store does not keep: score the files instead (pasture score FILES --difficulty-lookup position)"
        )
    return score_judgments(store_judgments(store, judge=judge), **options)  # type: ignore[arg-type]


__all__ = [
    "CI_COLUMNS",
    "LC_COLUMNS",
    "score_files",
    "score_judgments",
    "score_pairs",
    "score_store",
    "store_judgments",
]
