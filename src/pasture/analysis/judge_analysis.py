"""How far to trust a judge: its judgments against gold preferences.

Gold is whatever the user has: human labels (several per pair allowed, which also gives the humans'
leave-one-out agreement) or a reference judge's judgments (e.g. the official AlpacaEval annotations).
Columns are named like AlpacaEval's ``judges_leaderboard.csv`` where they mean the same thing; a column
whose data the user did not give is absent, never guessed. Every column is defined in docs/trust.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pasture.analysis.style import markdown_counts
from pasture.errors import InputError
from pasture.io.alpacaeval import coerce_preference
from pasture.io.files import optional_text, read_rows, require_text
from pasture.records import Judgment

GoldKind = Literal["human", "judge"]
PAIR_KEY = ["instruction", "output_1", "output_2"]
LABEL_COLUMNS = [*PAIR_KEY, "generator_1", "generator_2", "preference", "shown_first"]

SIGNIFICANT_LENGTH_DELTA = 30
"""Characters by which one output must be longer for 'Proba. prefer longer' to count the pair (AlpacaEval's)."""

MIN_LEADERBOARD_MODELS = 3
"""Fewest models for which rank correlations are reported."""


@dataclass(frozen=True)
class JudgeAnalysis:
    """A judge against gold. ``table`` has one row for the judge and, where the gold has several labels per
    pair, one for the gold itself (its leave-one-out agreement and variance), like AlpacaEval's 'humans'
    row. ``leaderboards`` holds the per-model win rates behind the rank correlations. ``notes`` says which
    columns are absent and why."""

    table: pd.DataFrame
    leaderboards: pd.DataFrame
    n_pairs: int
    gold_kind: GoldKind
    notes: tuple[str, ...] = field(default=())


def labels_from_judgments(judgments: Iterable[Judgment]) -> pd.DataFrame:
    """One row per judgment: the pair's key, generators, ``preference`` (NaN when not parsed), ``shown_first``,
    ``cost_usd``, ``latency_s``."""
    rows = [
        (
            j.instruction,
            j.output_1,
            j.output_2,
            j.generator_1,
            j.generator_2,
            j.preference if j.status == "ok" and j.preference is not None else np.nan,
            j.shown_first,
            j.cost_usd,
            j.latency_s,
        )
        for j in judgments
    ]
    return pd.DataFrame(rows, columns=[*LABEL_COLUMNS, "cost_usd", "latency_s"])


def read_gold_labels(path: str | Path) -> pd.DataFrame:
    """Human (or any) gold labels from a table file: ``instruction``, ``output_1``, ``output_2``,
    ``preference`` in [1, 2] (one row per label; several rows per pair for several annotators), optional
    ``generator_1``/``generator_2``. A missing preference is kept as NaN and counted, never dropped."""
    path = Path(path)
    rows = read_rows(path)
    out = []
    for i, row in enumerate(rows, start=1):
        if "preference" not in row:
            raise InputError("missing required field", path=path, row=i, field="preference")
        pref = coerce_preference(row["preference"], path=path, row=i)
        out.append(
            (
                require_text(row, "instruction", path=path, row_no=i),
                _text(row, "output_1", path, i),
                _text(row, "output_2", path, i),
                optional_text(row, "generator_1") or "",
                optional_text(row, "generator_2") or "",
                np.nan if pref is None else pref,
                np.nan,
            )
        )
    if not out:
        raise InputError("no gold labels in file", path=path)
    return pd.DataFrame(out, columns=LABEL_COLUMNS)


def _text(row: Mapping[str, object], name: str, path: Path, i: int) -> str:
    if name not in row:
        raise InputError("missing required field", path=path, row=i, field=name)
    value = row[name]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if not isinstance(value, str):
        raise InputError(f"expected text, got {type(value).__name__}", path=path, row=i, field=name)
    return value


def _winner(p: np.ndarray | pd.Series) -> np.ndarray:
    """Discrete verdict of a (mean/median) preference: 1, 1.5 (tie) or 2."""
    p = np.asarray(p, dtype=float)
    return np.where(p < 1.5, 1.0, np.where(p > 1.5, 2.0, 1.5))


def cohen_kappa(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cohen's kappa of two discrete labelings (values compared for equality); NaN when undefined."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0:
        return float("nan")
    cats = np.union1d(a, b)
    po = float(np.mean(a == b))
    pe = float(sum(np.mean(a == c) * np.mean(b == c) for c in cats))
    return float("nan") if pe == 1 else (po - pe) / (1 - pe)


def loo_agreement(labels: pd.DataFrame, *, by_order: bool = False) -> tuple[float, float, int]:
    """Leave-one-out agreement over pairs with >= 2 parsed labels: each label against the median of the
    pair's other labels, scored 1 - |difference| (AlpacaEval's 'absolute' rule). With ``by_order`` the
    groups are (pair, shown_first), so only replicates in the same order are compared and position bias
    does not count as variance. Returns (agreement in %, variance = 100 - agreement, groups used)."""
    ok = labels.dropna(subset=["preference"])
    keys = [*PAIR_KEY, "shown_first"] if by_order else PAIR_KEY
    per_pair = []
    for _, grp in ok.groupby(keys, sort=False, dropna=False):
        p = grp["preference"].to_numpy(dtype=float)
        if p.size < 2:
            continue
        scores = [1 - abs(p[i] - np.median(np.delete(p, i))) for i in range(p.size)]
        per_pair.append(np.mean(scores))
    if not per_pair:
        return float("nan"), float("nan"), 0
    agree = 100 * float(np.mean(per_pair))
    return agree, 100 - agree, len(per_pair)


def prefer_longer(labels: pd.DataFrame, delta: int = SIGNIFICANT_LENGTH_DELTA) -> float:
    """P(the preferred output is the longer one) over parsed, non-tied labels whose outputs differ in length
    by more than ``delta`` characters; NaN when there are none."""
    ok = labels.dropna(subset=["preference"])
    ok = ok[ok["preference"] != 1.5]
    l1, l2 = ok["output_1"].str.len(), ok["output_2"].str.len()
    sig = (l1 - l2).abs() > delta
    if not sig.any():
        return float("nan")
    longer_is_2 = (l2 > l1)[sig]
    chose_2 = (ok["preference"] > 1.5)[sig]
    return float((longer_is_2 == chose_2).mean())


def prefer_lists(labels: pd.DataFrame) -> float:
    """P(the preferred output is the one with a markdown list) over parsed, non-tied labels where exactly one
    output has a list; NaN when there are none."""
    ok = labels.dropna(subset=["preference"])
    ok = ok[ok["preference"] != 1.5]
    has1 = ok["output_1"].map(lambda t: markdown_counts(t)[1] > 0)
    has2 = ok["output_2"].map(lambda t: markdown_counts(t)[1] > 0)
    one = has1 != has2
    if not one.any():
        return float("nan")
    return float(((ok["preference"] > 1.5)[one] == has2[one]).mean())


def _pair_median(labels: pd.DataFrame) -> pd.Series:
    return labels.dropna(subset=["preference"]).groupby(PAIR_KEY, sort=False)["preference"].median()


def _win_rates(labels: pd.DataFrame) -> pd.Series:
    per_pair = labels.dropna(subset=["preference"]).groupby([*PAIR_KEY, "generator_2"], sort=False)["preference"]
    return (per_pair.mean().groupby("generator_2").mean() - 1) * 100


def analyze_judge(
    judgments: Iterable[Judgment] | pd.DataFrame,
    gold: Iterable[Judgment] | pd.DataFrame,
    *,
    gold_kind: GoldKind = "judge",
    judge_name: str | None = None,
    gold_name: str | None = None,
    family_generators: Sequence[str] = (),
    reference_leaderboard: Mapping[str, float] | None = None,
    significant_length_delta: int = SIGNIFICANT_LENGTH_DELTA,
) -> JudgeAnalysis:
    """Compare a judge's judgments with gold preferences on the pairs both cover.

    Parameters
    ----------
    judgments:
        The judge's judgments (several per pair allowed: both orders, replicates), or a table from
        :func:`labels_from_judgments`.
    gold:
        Gold labels: a reference judge's judgments, or a table from :func:`read_gold_labels` (human labels,
        one row per label).
    gold_kind:
        ``"human"`` names agreement 'Human agreement' as AlpacaEval does; ``"judge"`` names it
        'Gold agreement' (agreement with a reference judge is not agreement with people).
    family_generators:
        Generators from the judge's own model family; enables 'Self-preference'.
    reference_leaderboard:
        {model: score} to rank-correlate with the judge's leaderboard; by default the gold's win rates on
        the same pairs.
    significant_length_delta:
        Characters for 'Proba. prefer longer' (AlpacaEval: 30).
    """
    jl = judgments if isinstance(judgments, pd.DataFrame) else labels_from_judgments(judgments)
    gl = gold if isinstance(gold, pd.DataFrame) else labels_from_judgments(gold)
    if gold_kind not in ("human", "judge"):
        raise InputError(f"gold_kind must be 'human' or 'judge', got {gold_kind!r}")
    for name, frame in (("judgments", jl), ("gold", gl)):
        missing = [c for c in [*PAIR_KEY, "preference"] if c not in frame.columns]
        if missing:
            raise InputError(f"{name} table lacks columns {missing}")
    gold_pairs = set(map(tuple, gl[PAIR_KEY].itertuples(index=False, name=None)))
    judge_pairs = set(map(tuple, jl[PAIR_KEY].itertuples(index=False, name=None)))
    common = gold_pairs & judge_pairs
    if not common:
        raise InputError("the judge and the gold share no pair (same instruction, output_1 and output_2)")
    in_common = pd.MultiIndex.from_frame(jl[PAIR_KEY]).isin(list(common))
    jl = jl.loc[in_common].reset_index(drop=True)
    gl = gl.loc[pd.MultiIndex.from_frame(gl[PAIR_KEY]).isin(list(common))].reset_index(drop=True)
    notes: list[str] = []
    agreement_col = "Human agreement" if gold_kind == "human" else "Gold agreement"

    gold_median = _pair_median(gl)
    jok = jl.dropna(subset=["preference"])
    row: dict[str, float] = {}

    # agreement: each single judgment against the gold's per-pair median, averaged per pair then over pairs
    merged = jok.join(gold_median.rename("gold"), on=PAIR_KEY, how="inner")
    merged["score"] = 1 - (merged["preference"] - merged["gold"]).abs()
    row[agreement_col] = 100 * float(merged.groupby(PAIR_KEY, sort=False)["score"].mean().mean())

    judge_mean = jok.groupby(PAIR_KEY, sort=False)["preference"].mean()
    both = pd.concat([judge_mean.rename("judge"), gold_median.rename("gold")], axis=1, join="inner")
    row["Cohen's kappa"] = cohen_kappa(_winner(both["judge"]), _winner(both["gold"]))

    for col, src in (("Price [$/1000 examples]", "cost_usd"), ("Time [seconds/1000 examples]", "latency_s")):
        if src in jl.columns and jl[src].notna().any():
            row[col] = 1000 * float(jl[src].dropna().mean())
        else:
            notes.append(f"'{col}' absent: the judgments carry no {src}")

    # rank correlation of the leaderboards
    judge_board = _win_rates(jl)
    ref_board = pd.Series(reference_leaderboard, dtype=float) if reference_leaderboard is not None else _win_rates(gl)
    boards = pd.concat([judge_board.rename("judge"), ref_board.rename("reference")], axis=1, join="inner").dropna()
    if len(boards) >= MIN_LEADERBOARD_MODELS and boards.nunique().min() > 1:
        from scipy.stats import pearsonr, spearmanr  # scipy.stats is slow to import; only needed here

        row["Spearman corr."] = float(spearmanr(boards["judge"], boards["reference"]).statistic)
        row["Pearson corr."] = float(pearsonr(boards["judge"], boards["reference"]).statistic)
    elif len(boards) < MIN_LEADERBOARD_MODELS:
        notes.append(
            f"rank correlations absent: {len(boards)} models in both leaderboards (need {MIN_LEADERBOARD_MODELS})"
        )
    else:
        notes.append("rank correlations absent: one of the leaderboards gives every model the same score")

    per_pair_n = jok.groupby(PAIR_KEY, sort=False).size()
    if (per_pair_n >= 2).any():
        judge_median = _pair_median(jl)
        mm = pd.concat([judge_median.rename("j"), gold_median.rename("g")], axis=1, join="inner")
        row["Bias"] = 100 * float((mm["j"] - mm["g"]).abs().mean())
    else:
        notes.append("'Bias' absent: no pair was judged more than once")
    has_order = "shown_first" in jl.columns and jl["shown_first"].notna().all()
    _, variance, n_groups = loo_agreement(jl, by_order=has_order)
    if n_groups:
        row["Variance"] = variance
    else:
        notes.append("'Variance' absent: no pair was judged more than once in the same order (replicates)")

    row["Proba. prefer longer"] = prefer_longer(jl, significant_length_delta)
    row["Proba. prefer lists"] = prefer_lists(jl)
    row["Proba. prefer 1"] = 2 - float(jok["preference"].mean())

    # position bias from shown order
    if "shown_first" in jl.columns and jok["shown_first"].notna().all() and len(jok):
        sf = jok["shown_first"].astype(float)
        first_wins = np.where(sf == 1, 2 - jok["preference"], jok["preference"] - 1)
        row["P(first wins)"] = float(np.mean(first_wins))
        by_order = jok.groupby([*PAIR_KEY, "shown_first"], sort=False)["preference"].mean().unstack("shown_first")
        if {1, 2} <= set(by_order.columns):
            two = by_order[[1, 2]].dropna()
            if len(two):
                row["Flip rate"] = float(np.mean(_winner(two[1]) != _winner(two[2])))
        if "Flip rate" not in row:
            notes.append("'Flip rate' absent: no pair was judged in both orders")

    if family_generators:
        fam = set(family_generators)
        row_sp = _self_preference(jok, gl.dropna(subset=["preference"]), fam)
        if np.isnan(row_sp):
            notes.append("'Self-preference' absent: no common pair has exactly one output from the judge's family")
        else:
            row["Self-preference"] = row_sp
    else:
        notes.append("'Self-preference' absent: the judge's family generators were not given")

    row["# parsed"] = len(jok)
    row["# failed"] = int(jl["preference"].isna().sum())
    row["# pairs"] = len(common)

    rows = {judge_name or "judge": row}
    g_agree, g_var, g_pairs = loo_agreement(gl)
    if g_pairs:
        gold_row: dict[str, float] = {agreement_col: g_agree, "Bias": 0.0, "Variance": g_var}
        gold_row["Proba. prefer longer"] = prefer_longer(gl, significant_length_delta)
        gold_row["Proba. prefer lists"] = prefer_lists(gl)
        gold_row["Proba. prefer 1"] = 2 - float(gl["preference"].mean())
        gold_row["# parsed"] = int(gl["preference"].notna().sum())
        gold_row["# failed"] = int(gl["preference"].isna().sum())
        gold_row["# pairs"] = g_pairs
        rows[gold_name or ("humans" if gold_kind == "human" else "gold")] = gold_row
    else:
        notes.append("gold row absent: the gold has one label per pair (no leave-one-out agreement)")
        rows[gold_name or "gold"] = {
            "Proba. prefer longer": prefer_longer(gl, significant_length_delta),
            "Proba. prefer lists": prefer_lists(gl),
            "Proba. prefer 1": 2 - float(gl["preference"].mean()),
            "# parsed": int(gl["preference"].notna().sum()),
            "# failed": int(gl["preference"].isna().sum()),
            "# pairs": len(common),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "annotator"
    return JudgeAnalysis(table=table, leaderboards=boards, n_pairs=len(common), gold_kind=gold_kind, notes=tuple(notes))


def _self_preference(judge: pd.DataFrame, gold: pd.DataFrame, family: set[str]) -> float:
    """100 x (judge's mean P(family output wins) - gold's), on pairs with exactly one family output."""

    def family_win(frame: pd.DataFrame) -> pd.Series:
        f1 = frame["generator_1"].isin(family)
        f2 = frame["generator_2"].isin(family)
        sel = frame[f1 != f2]
        p = np.where(sel["generator_2"].isin(family), sel["preference"] - 1, 2 - sel["preference"])
        return pd.Series(p, index=pd.MultiIndex.from_frame(sel[PAIR_KEY])).groupby(level=[0, 1, 2]).mean()

    j, g = family_win(judge), family_win(gold)
    both = pd.concat([j.rename("j"), g.rename("g")], axis=1, join="inner")
    if both.empty:
        return float("nan")
    return 100 * float((both["j"] - both["g"]).mean())


def jury_members(members: Mapping[str, pd.DataFrame], jury: pd.DataFrame) -> pd.DataFrame:
    """One row per jury member (labels as :func:`labels_from_judgments`), then one for the jury itself: its
    biases and how it agrees with the jury and with the other members, on the pairs they share.

    Columns (docs/trust.md, "Juries"): ``n`` (parsed labels), ``P(first wins)`` (shown-order position bias;
    0.5 is none), ``Flip rate`` (pairs judged in both orders whose winner changes with the order; NaN without
    both orders), ``Proba. prefer longer`` (:func:`prefer_longer`), ``Agreement with jury`` (% of the
    member's labels whose discrete winner equals the jury's on the same pair and order) and ``Mean kappa with
    members`` (Cohen's kappa of discrete winners with each other member, averaged; for the jury: with each
    member).
    """
    keys = [*PAIR_KEY, "shown_first"]

    def winners(labels: pd.DataFrame) -> pd.Series:
        mean = labels.dropna(subset=["preference"]).groupby(keys, sort=False)["preference"].mean()
        return pd.Series(_winner(mean), index=mean.index)

    won = {name: winners(labels) for name, labels in members.items()}
    jury_won = winners(jury)
    rows: dict[str, dict[str, float]] = {}
    for name, labels in [*members.items(), ("jury", jury)]:
        ok = labels.dropna(subset=["preference"])
        row: dict[str, float] = {"n": float(len(ok))}
        if len(ok):
            sf = ok["shown_first"].astype(float)
            row["P(first wins)"] = float(np.mean(np.where(sf == 1, 2 - ok["preference"], ok["preference"] - 1)))
            two = ok.groupby(keys, sort=False)["preference"].mean().unstack("shown_first")
            if {1, 2} <= set(two.columns):
                both = two[[1, 2]].dropna()
                row["Flip rate"] = float(np.mean(_winner(both[1]) != _winner(both[2]))) if len(both) else np.nan
            else:
                row["Flip rate"] = np.nan
        row["Proba. prefer longer"] = prefer_longer(labels)
        mine = jury_won if name == "jury" else won[name]
        common = mine.index.intersection(jury_won.index)
        row["Agreement with jury"] = 100 * float(np.mean(mine[common] == jury_won[common])) if len(common) else np.nan
        kappas = []
        for other, theirs in won.items():
            if other == name:
                continue
            shared = mine.index.intersection(theirs.index)
            if len(shared):
                kappas.append(cohen_kappa(mine[shared].to_numpy(), theirs[shared].to_numpy()))
        row["Mean kappa with members"] = (
            float(np.nanmean(kappas)) if kappas and not np.all(np.isnan(kappas)) else np.nan
        )
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
