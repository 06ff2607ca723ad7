"""Leaderboards: every model evaluated on one (eval set, reference outputs, judge), recomputed from judgments.

Why recompute: metrics are pure functions of stored judgments (docs/metrics.md), so a leaderboard is always
consistent with the judgments it shows, and a better metric never needs a judge call. A model belongs to a
board once ``pasture evaluate`` or ``pasture import`` has recorded a run for it (kind ``evaluate`` or
``import``); the board then takes exactly
the judgments whose instruction is in the eval set, whose slot-1 text is the stored reference output for
that instruction and whose slot-2 text is one of the model's stored outputs for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pasture.errors import InputError
from pasture.io import read_rows
from pasture.metrics.correlation import CorrelationResult, rank_correlation
from pasture.metrics.lc_inputs import prepare_lc_inputs
from pasture.metrics.pairs import pair_table
from pasture.records import Judgment, RunRecord
from pasture.scoring import score_judgments
from pasture.store import Store

EVALUATE_RUN_KIND = "evaluate"
"""Kind of the run that ``pasture evaluate`` records for each model (the board's membership list)."""

IMPORT_RUN_KIND = "import"
"""Kind of the run that ``pasture import`` records for each model of imported AlpacaEval annotations."""

BOARD_RUN_KINDS = (EVALUATE_RUN_KIND, IMPORT_RUN_KIND)
"""Runs that make a model a member of a board; a model's newest such run is the one shown."""

LC_MIN_INSTRUCTIONS = 10
"""Below this many instructions the LC fit (5-fold cross-validation over instructions) is not attempted."""

SORT_COLUMNS = (
    "length_controlled_winrate",
    "win_rate",
    "discrete_win_rate",
    "avg_length",
    "n_total",
    "n_failed",
    "judge_cost_usd",
)


@dataclass(frozen=True)
class BoardKey:
    """A leaderboard's identity: the digests of its eval set, reference outputs and judge fingerprint."""

    eval_set_digest: str
    reference_digest: str
    judge_digest: str

    def short(self) -> str:
        return f"{self.eval_set_digest[:12]}/{self.reference_digest[:12]}/{self.judge_digest[:12]}"


@dataclass(frozen=True)
class Leaderboard:
    """A computed leaderboard: the table, the judgments behind it, and each model's run (``runs``, typed) with
    its manifest as JSON (``manifests``, for files and reports)."""

    key: BoardKey
    eval_set_name: str
    reference: str
    judge_name: str
    frame: pd.DataFrame
    judgments: tuple[Judgment, ...]
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, RunRecord] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def title(self) -> str:
        return f"{self.eval_set_name}: models vs {self.reference}, judged by {self.judge_name}"


def boards(store: Store) -> pd.DataFrame:
    """Every leaderboard in the store: key digests, eval-set name, reference, judge and number of models."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    names = {d: n for d, n, _ in store.eval_sets()}
    judges = dict(store.judges())
    for run in store.runs(kinds=BOARD_RUN_KINDS):
        row = rows.setdefault(
            (run.eval_set_digest, run.reference_digest, run.judge_digest),
            {
                "eval_set": names.get(run.eval_set_digest, "?"),
                "reference": run.manifest.inputs.get("reference_generator", "?"),
                "judge": judges.get(run.judge_digest, "?"),
                "models": set(),
            },
        )
        row["models"].add(run.generator)
    out = [
        {
            "eval_set_digest": k[0],
            "reference_digest": k[1],
            "judge_digest": k[2],
            **{**v, "models": len(v["models"])},
        }
        for k, v in rows.items()
    ]
    return pd.DataFrame(
        out, columns=["eval_set_digest", "reference_digest", "judge_digest", "eval_set", "reference", "judge", "models"]
    )


def board_runs(store: Store, key: BoardKey) -> dict[str, RunRecord]:
    """Each member model's newest ``evaluate`` or ``import`` run on the board ``key``."""
    newest: dict[str, RunRecord] = {}
    for run in store.runs(
        kinds=BOARD_RUN_KINDS,
        eval_set_digest=key.eval_set_digest,
        reference_digest=key.reference_digest,
        judge_digest=key.judge_digest,
    ):
        newest[run.generator] = run  # runs come oldest first
    return newest


def resolve_key(
    store: Store,
    *,
    eval_set: str | None = None,
    reference: str | None = None,
    judge: str | None = None,
) -> BoardKey:
    """The one board matching the given digest prefixes or names; an InputError lists the candidates otherwise."""
    table = boards(store)
    if table.empty:
        raise InputError(f"{store.path}: no leaderboard yet; run `pasture evaluate` or `pasture import` first")
    mask = np.ones(len(table), dtype=bool)
    for value, digest_col, name_col in (
        (eval_set, "eval_set_digest", "eval_set"),
        (reference, "reference_digest", "reference"),
        (judge, "judge_digest", "judge"),
    ):
        if value:
            mask &= table[digest_col].str.startswith(value).to_numpy() | (table[name_col] == value).to_numpy()
    found = table[mask]
    if len(found) != 1:
        listing = "; ".join(
            f"eval set {r.eval_set} ({r.eval_set_digest[:12]}), reference {r.reference} ({r.reference_digest[:12]}), "
            f"judge {r.judge} ({r.judge_digest[:12]})"
            for r in (found if len(found) else table).itertuples()
        )
        what = "no leaderboard matches" if found.empty else "several leaderboards match"
        raise InputError(f"{what}; pick one with --eval-set/--reference/--judge: {listing}")
    r = found.iloc[0]
    return BoardKey(r.eval_set_digest, r.reference_digest, r.judge_digest)


def board_judgments(
    store: Store,
    key: BoardKey,
    reference_generator: str,
    models: Sequence[str],
    *,
    position: str = "alpaca_eval",
    replicates: int = 1,
) -> list[Judgment]:
    """The judgments that make up ``models``' rows on the board ``key``, found by their content keys.

    Why by key, not by generator: a judgment's key has no generator in it (docs/conventions.md), so when two
    models give the same output for an instruction, one stored judgment answers both. Each judgment is
    returned relabelled with the model (slot 2) and reference (slot 1) it is asked for here. Keys follow the
    position policy and replicates the models were evaluated with.
    """
    from pasture.annotate import PairToJudge, build_tasks

    eval_set = store.get_eval_set(key.eval_set_digest)
    datasets = {i.instruction: i.dataset for i in eval_set.instructions}
    reference = {
        o.instruction: o.output
        for o in store.get_outputs(key.eval_set_digest, reference_generator)
        if o.sample_index == 0 and o.instruction in datasets
    }
    out: list[Judgment] = []
    for model in models:
        pairs = [
            PairToJudge(
                instruction=o.instruction,
                output_1=reference[o.instruction],
                generator_1=reference_generator,
                output_2=o.output,
                generator_2=model,
                dataset=o.dataset if o.dataset is not None else datasets[o.instruction],
            )
            for o in store.get_outputs(key.eval_set_digest, model)
            if o.instruction in reference
        ]
        tasks = build_tasks(key.judge_digest, pairs, position=position, replicates=replicates)  # type: ignore[arg-type]
        found = store.get_judgments_by_key(t.key for t in tasks)
        for t in tasks:
            j = found.get(t.key)
            if j is not None:
                out.append(
                    j.model_copy(
                        update={"generator_1": reference_generator, "generator_2": model, "dataset": t.pair.dataset}
                    )
                )
    return out


def member_judgments(store: Store, key: BoardKey, runs: dict[str, RunRecord] | None = None) -> list[Judgment]:
    """Every member model's judgments on the board ``key`` (:func:`board_judgments`, per model with the position
    policy and replicates of its run): a judgment that answers several models' identical question is
    returned once per model, as each model's file counted it."""
    runs = board_runs(store, key) if runs is None else runs
    judgments: list[Judgment] = []
    for model in sorted(runs):
        inputs = runs[model].manifest.inputs
        judgments += board_judgments(
            store,
            key,
            inputs.get("reference_generator", ""),
            [model],
            position=inputs.get("position", "alpaca_eval"),
            replicates=int(inputs.get("replicates", "1")),
        )
    return judgments


GAMED_RUN_KIND = "gamed"
"""Kind of the run recorded for each gamed variant on its board (``pasture gamed-baselines``; not a member)."""

GAMED_ROW_COLUMNS = ["model", "instruction", "len_1", "len_2", "preference"]
"""Columns of :func:`gamed_rows`: what the LC fit needs of a board's judged gamed variants."""


def gamed_rows(store: Store, key: BoardKey) -> pd.DataFrame:
    """The judged rows of the board's gamed variants, in the shape the LC fit needs.

    One row per (variant, instruction) with a parsed verdict: ``model`` (the variant's generator name),
    ``instruction``, ``len_1`` (reference output, characters), ``len_2`` (variant output, characters) and
    ``preference`` (mean over the pair's 'ok' judgments, 1 = reference wins .. 2 = variant wins). Empty
    (with these columns) when the board has no gamed runs. Each variant is read with the position policy
    its run recorded.
    """
    runs = {r.generator: r for r in store.runs(kinds=[GAMED_RUN_KIND], **_key_filters(key))}
    parts = []
    for name, run in sorted(runs.items()):
        inputs = run.manifest.inputs
        found = board_judgments(
            store,
            key,
            inputs["reference_generator"],
            [name],
            position=inputs.get("position", "alpaca_eval"),
            replicates=int(inputs.get("replicates", "1")),
        )
        pairs = pair_table(found).dropna(subset=["preference"])
        parts.append(
            pd.DataFrame(
                {
                    "model": name,
                    "instruction": pairs["instruction"],
                    "len_1": pairs["len_1"],
                    "len_2": pairs["len_2"],
                    "preference": pairs["preference"],
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=GAMED_ROW_COLUMNS)
    return pd.concat(parts, ignore_index=True)[GAMED_ROW_COLUMNS]


def _key_filters(key: BoardKey) -> dict[str, str]:
    return {
        "eval_set_digest": key.eval_set_digest,
        "reference_digest": key.reference_digest,
        "judge_digest": key.judge_digest,
    }


def leaderboard(
    store: Store,
    key: BoardKey,
    *,
    sort_by: str = "length_controlled_winrate",
    ascending: bool = False,
    bootstrap_resamples: int = 1000,
    seed: int = 0,
    lc: bool = True,
) -> Leaderboard:
    """The leaderboard ``key``: one row per evaluated model, recomputed from the stored judgments.

    Columns (definitions in docs/metrics.md and docs/evaluate.md): the win-rate columns of
    :func:`pasture.scoring.score_judgments` (``win_rate``, ``standard_error``, counts, ``avg_length``,
    ``n_failed``, and the LC and interval columns where the scoring provides them), plus ``judge_cost_usd``
    (sum of the recorded price of the model's judgments; imported ones carry AlpacaEval's price; NaN,
    shown as unknown, when none of them has a price),
    ``gaming_flags`` (names of the gaming-audit checks that fired, ``pasture.analysis.gaming``),
    ``gaming_explanations`` (one sentence per flag, with its threshold; docs/trust.md) and
    ``evaluated_at`` (the latest ``evaluate`` run), and, when a model's run was budget-aware
    (:func:`pasture.evaluate.evaluate_budgeted`), ``n_used`` and ``calls_saved`` (NaN for the others). Sorted by ``sort_by`` (falls back to ``win_rate`` when
    the column is absent, which the notes say).

    ``bootstrap_resamples`` and ``seed`` set the paired bootstrap over instructions behind the intervals
    (0 resamples: no intervals); ``lc`` switches the LC columns. LC needs at least
    :data:`LC_MIN_INSTRUCTIONS` instructions; on smaller eval sets it is left out and a note says so.
    """
    runs = board_runs(store, key)
    if not runs:
        raise InputError(f"no models evaluated on leaderboard {key.short()}")
    ref_names = {r.manifest.inputs.get("reference_generator") for r in runs.values()}
    if len(ref_names) != 1 or None in ref_names:
        raise InputError(f"leaderboard {key.short()}: runs disagree on the reference generator ({ref_names})")
    reference = str(next(iter(ref_names)))
    models = sorted(runs)
    judgments = member_judgments(store, key, runs)
    notes: list[str] = []
    n_instructions = len(store.get_eval_set(key.eval_set_digest))
    if lc and n_instructions < LC_MIN_INSTRUCTIONS:
        notes.append(f"LC not computed: {n_instructions} instructions < {LC_MIN_INSTRUCTIONS}")
        lc = False
    lc_inputs = None
    judged_gamed = gamed_rows(store, key) if lc else None
    if judged_gamed is not None and len(judged_gamed):  # the board's own gamed baselines (AlpacaEval's method)
        lc_inputs = prepare_lc_inputs(pair_table(judgments), judged_gamed=judged_gamed)
    frame = score_judgments(judgments, lc=lc, lc_inputs=lc_inputs, bootstrap_resamples=bootstrap_resamples, seed=seed)
    for attr in ("lc_inputs", "bootstrap"):
        if attr in frame.attrs:
            notes.append(str(frame.attrs[attr]))
    if frame.empty:
        frame = pd.DataFrame(index=pd.Index([], name="model"))
    costs: dict[str, float] = {}  # only models with at least one priced judgment: no price is unknown, not $0
    for j in judgments:
        if j.cost_usd is not None:
            costs[j.generator_2] = costs.get(j.generator_2, 0.0) + j.cost_usd
    frame["judge_cost_usd"] = [costs.get(str(m), math.nan) for m in frame.index]
    frame["gaming_flags"], frame["gaming_explanations"] = _gaming_flags(judgments, frame)
    frame["evaluated_at"] = [runs[str(m)].created_at.isoformat() if str(m) in runs else "" for m in frame.index]
    budgeted = {m: r.result for m, r in runs.items() if "budget_population" in r.result}
    if budgeted:  # budget-aware runs (pasture.evaluate.evaluate_budgeted): the prefix used, the calls saved
        frame["n_used"] = [budgeted[str(m)]["budget_n_used"] if str(m) in budgeted else math.nan for m in frame.index]
        frame["calls_saved"] = [
            budgeted[str(m)]["budget_calls_saved"] if str(m) in budgeted else math.nan for m in frame.index
        ]
        notes.append(
            "n_used: instructions in the seeded-order prefix where the budget rule stopped; calls_saved: judgments "
            "a full run would have bought; LC of those rows is not covered by the rule's guarantee"
        )
    missing = [m for m in models if m not in frame.index]
    if missing:
        notes.append(f"no judgments found for: {', '.join(missing)}")
    column = sort_by if sort_by in frame.columns else "win_rate"
    if column != sort_by:
        notes.append(f"sorted by win_rate: no {sort_by} column")
    if column in frame.columns:
        frame = frame.sort_values(column, ascending=ascending, na_position="last")
    judges = dict(store.judges())
    return Leaderboard(
        key=key,
        eval_set_name=store.get_eval_set(key.eval_set_digest).name,
        reference=reference,
        judge_name=judges.get(key.judge_digest, key.judge_digest[:12]),
        frame=frame,
        judgments=tuple(judgments),
        manifests={m: r.manifest.model_dump(mode="json") for m, r in runs.items()},
        runs=runs,
        notes=tuple(notes),
    )


def _gaming_flags(judgments: Sequence[Judgment], frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Comma-joined audit flags per model row (empty string when clean), and their explanations ('; '-joined)."""
    if frame.empty:
        return [], []
    from pasture.analysis.gaming import audit

    headline = None
    if "length_controlled_winrate" in frame.columns:
        headline = {str(m): float(v) for m, v in frame["length_controlled_winrate"].items() if pd.notna(v)}
    pairs = pair_table(judgments).dropna(subset=["preference"])
    if pairs.empty:  # every judgment failed: nothing to audit (and the rows already say n_failed)
        return [""] * len(frame), [""] * len(frame)
    result = audit(pairs, headline=headline, headline_name="LC win rate")
    flags = [", ".join(result.at[m, "flags"]) if m in result.index else "" for m in frame.index]
    explanations = ["; ".join(result.at[m, "explanations"]) if m in result.index else "" for m in frame.index]
    return flags, explanations


def read_ranking(path: str | Path, *, column: str, model_column: str = "model") -> pd.Series:
    """An external ranking (e.g. Chatbot Arena Elo) from any table file: score per model name, NaNs dropped."""
    rows = read_rows(path)
    if rows and model_column not in rows[0]:
        raise InputError(f"no column {model_column!r} in the ranking file", path=path)
    if rows and column not in rows[0]:
        raise InputError(f"no column {column!r} in the ranking file", path=path)
    values = pd.to_numeric(pd.Series({str(r[model_column]): r[column] for r in rows}, dtype=object), errors="coerce")
    return values.dropna().astype(float)


def external_correlation(
    frame: pd.DataFrame,
    ranking_path: str | Path,
    *,
    column: str,
    model_column: str = "model",
    metrics: Sequence[str] = ("win_rate", "length_controlled_winrate"),
) -> list[CorrelationResult]:
    """Spearman and Kendall (tau-b) correlation of each board metric with ``column`` of an external ranking.

    Models are matched by exact name; only models present in both with a value count
    (:func:`pasture.metrics.correlation.rank_correlation`; fewer than 3 is an InputError).
    """
    reference = read_ranking(ranking_path, column=column, model_column=model_column)
    return [
        rank_correlation(frame[m].astype(float), reference, metric=m, reference_name=column)
        for m in metrics
        if m in frame.columns
    ]
