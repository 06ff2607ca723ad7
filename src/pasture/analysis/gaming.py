"""A gaming audit for every leaderboard entry: named checks, each with a documented threshold.

Why: an automatic evaluator can be gamed. A constant prompt-injection "NullModel" reaches 86.5% LC on
AlpacaEval 2; answers cut to about 68 characters (gpt4_gamed) triple their score under LC; a note to the
grader can be attached to real answers. A number should never be shown without the evidence that it was
not gamed. Every check and threshold is defined in docs/trust.md, with how it was set (on the 10 shared
models with texts) and validated (the 57-model board, the 40 community models' outputs). How far a metric
moves between verbose and concise variants is information about the metric, in
:mod:`pasture.analysis.verbosity`, never a flag.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pasture.analysis.recurring import recurring_text
from pasture.errors import InputError

CONSTANT_SHARE = 0.2
"""`constant_output`: flagged when at least this share of a model's outputs are one same (normalised) text."""

BLOCK_CHARS = 100
"""`repeated_block`: length of the opening / closing block (normalised characters) compared across outputs."""

BLOCK_SHARE = 0.2
"""`repeated_block`: flagged when at least this share of outputs open or close with one same block."""

SHORT_LENGTH_RATIO = 0.05
"""`extreme_length`: flagged when the median per-instruction length ratio model/reference is below this..."""

LONG_LENGTH_RATIO = 10.0
"""...or above this."""

INJECTION_SHARE = 0.02
"""`judge_injection`: flagged when at least this share of outputs (and at least INJECTION_MIN_COUNT) match."""

INJECTION_MIN_COUNT = 2

NOTE_SHARE = 0.1
"""`recurring_note`: flagged when at least this share of outputs hold recurring text about the evaluation
(:mod:`pasture.analysis.recurring`) ..."""

NOTE_MIN_COUNT = 3
"""... and at least this many outputs."""

INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    "ignore_instructions": re.compile(
        r"\b(?:ignore|disregard|forget)\b[^.\n]{0,40}\b(?:above|previous|prior|preceding|earlier|all)\b"
        r"[^.\n]{0,40}\b(?:instructions?|prompts?|outputs?|text|context|rules|messages?)\b",
        re.IGNORECASE,
    ),
    "judge_template_markers": re.compile(
        r"^\s*#{1,4}\s*model outputs?\s*$|\"instruction\"\s*:\s*\"\"\"",
        re.IGNORECASE | re.MULTILINE,
    ),
    "addresses_the_judge": re.compile(
        r"\b(?:dear|attention|note to (?:the)?|hey)\s+(?:judge|evaluator|grader|annotator|reviewer)\b"
        r"|\b(?:as|you are) (?:the|an?) (?:judge|evaluator|grader|annotator)\b",
        re.IGNORECASE,
    ),
    "demands_a_verdict": re.compile(
        r"\b(?:you (?:must|should|will) (?:prefer|choose|select|pick|rank|rate) (?:this|my|the (?:first|second))"
        r" (?:output|response|answer|model)"
        r"|(?:output|model|response|answer) \(?(?:a|b|1|2|m|m)\)? is (?:the )?(?:better|best|preferred|winner)"
        r"|(?:rank|rate|score) (?:this|me|my) (?:output|response|answer)? ?(?:first|highest|as (?:the )?best))\b",
        re.IGNORECASE,
    ),
}
"""Patterns of text addressed to a judge rather than to the user (prompt injection); each named.

``judge_template_markers`` matches only what belongs to a judge's prompt and never to an answer: a
``## Model Outputs`` header or an ``"instruction":`` field opened with three quotes. A lone header that an answer can carry
(``## Evaluation``, ``## Instruction``, ``## Ranking``) counts only when two different ones sit in the same
output (:data:`TEMPLATE_HEADERS`), the shape of a forged template."""

TEMPLATE_HEADERS = re.compile(r"^\s*#{1,4}\s*(instructions?|evaluation|ranking|model outputs?)\s*$", re.I | re.M)
"""Header lines of a judge's template; two different ones in one output match ``judge_template_markers``."""


@dataclass(frozen=True)
class CheckThresholds:
    """Every threshold of the audit, named; defaults are the documented ones (docs/trust.md)."""

    constant_share: float = CONSTANT_SHARE
    block_chars: int = BLOCK_CHARS
    block_share: float = BLOCK_SHARE
    short_length_ratio: float = SHORT_LENGTH_RATIO
    long_length_ratio: float = LONG_LENGTH_RATIO
    injection_share: float = INJECTION_SHARE
    injection_min_count: int = INJECTION_MIN_COUNT
    note_share: float = NOTE_SHARE
    note_min_count: int = NOTE_MIN_COUNT


TEXT_CHECKS = ("constant_output", "repeated_block", "judge_injection", "recurring_note")
"""Checks that read the outputs' text; they run only when the pair table has ``output_2``."""

LENGTH_CHECKS = ("extreme_length",)
"""Checks that need the two outputs' lengths (from the texts, or ``len_1``/``len_2`` columns)."""


def normalise_output(text: str) -> str:
    """Text compared by the constant-output check: NFKC, lower case, digits as 0, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\d", "0", text)
    return " ".join(text.split())


def injection_hits(text: str) -> list[str]:
    """Names of the INJECTION_PATTERNS that ``text`` matches (with the two-header rule of TEMPLATE_HEADERS)."""
    hits = [name for name, pattern in INJECTION_PATTERNS.items() if pattern.search(text)]
    if "judge_template_markers" not in hits:
        headers = {h.lower().rstrip("s") for h in TEMPLATE_HEADERS.findall(text)}
        if len(headers) >= 2:
            hits.insert(1 if "ignore_instructions" in hits else 0, "judge_template_markers")
    return hits


def headline_lifts(raw: Mapping[str, float], headline: Mapping[str, float]) -> pd.Series:
    """headline / raw win rate per model with both (raw > 0): how much the headline metric lifts the model.

    Information, not a flag: on the official 57-model AlpacaEval 2 board an honest model (text_davinci_001,
    3.27x) is lifted as much as the truncated gpt4_gamed (3.26x), so no threshold on the lift separates
    gaming from short honest answers (docs/trust.md §4).
    """
    return pd.Series(
        {m: float(headline[m]) / float(w) for m, w in raw.items() if m in headline and pd.notna(headline[m]) and w > 0},
        dtype=float,
    )


def audit(
    pairs: pd.DataFrame,
    *,
    headline: Mapping[str, float] | None = None,
    headline_name: str = "headline",
    thresholds: CheckThresholds | None = None,
) -> pd.DataFrame:
    """Gaming audit of every model (``generator_2``) in a pair table; one row per model.

    Parameters
    ----------
    pairs:
        A :func:`~pasture.metrics.pairs.pair_table` of models (slot 2) against a reference (slot 1): columns
        ``generator_2`` and ``preference``, plus ``output_1``/``output_2`` (every check) or only
        ``len_1``/``len_2`` in characters (the length check; text checks are then not run and their
        measurements are NaN, e.g. on AlpacaEval's preference extract).
    headline:
        The leaderboard's headline metric per model in points (e.g. LC win rate): reported as
        ``headline_lift`` beside the raw win rate, for information (never a flag, see
        :func:`headline_lifts`).
    headline_name:
        What the headline is called in the table's notes.
    thresholds:
        Check thresholds; the documented defaults when None.

    Returns a DataFrame indexed by model with ``flags`` (list of flag names, empty when clean),
    ``explanations`` (one sentence per flag), ``checks_run`` (the names of the checks that ran) and each
    measurement: ``modal_share``, ``block_share``, ``length_ratio``, ``injection_share``, ``recurring_share``
    (information: honest habits count), ``note_share``, ``win_rate``, ``headline``, ``headline_lift`` and
    ``median_lift`` (median lift over the audited models).
    """
    t = thresholds or CheckThresholds()
    for col in ("generator_2", "preference"):
        if col not in pairs.columns:
            raise InputError(f"the audit needs a pair table with column {col!r}")
    has_text = "output_2" in pairs.columns and "output_1" in pairs.columns
    has_lengths = has_text or {"len_1", "len_2"} <= set(pairs.columns)
    if not has_lengths:
        raise InputError("the audit needs output_1 and output_2 (or len_1 and len_2) in the pair table")
    raw = ((pairs.groupby("generator_2")["preference"].mean() - 1) * 100).rename(index=str)
    lifts = headline_lifts(raw.to_dict(), headline or {})
    median_lift = float(lifts.median()) if len(lifts) else np.nan
    rows = []
    for model, sub in pairs.groupby("generator_2", sort=True):
        model = str(model)
        flags: list[str] = []
        why: list[str] = []
        n = len(sub)
        row: dict[str, object] = {"model": model}
        checks = list(LENGTH_CHECKS) + (list(TEXT_CHECKS) if has_text else [])
        if has_text:
            outputs = sub["output_2"].astype(str)
            _text_checks(outputs, sub, t, flags, why, row)
            len1 = sub["output_1"].astype(str).str.len().to_numpy(dtype=float)
            len2 = outputs.str.len().to_numpy(dtype=float)
        else:
            row.update(dict.fromkeys(("modal_share", "block_share", "injection_share", "recurring_share"), np.nan))
            row["note_share"] = np.nan
            len1 = sub["len_1"].to_numpy(dtype=float)
            len2 = sub["len_2"].to_numpy(dtype=float)
        ratio = float(np.median((len2 + 1) / (len1 + 1))) if n else np.nan
        if ratio < t.short_length_ratio or ratio > t.long_length_ratio:
            flags.append("extreme_length")
            why.append(
                f"median output is {ratio:.3g}x the reference's length "
                f"(allowed {t.short_length_ratio:g}x to {t.long_length_ratio:g}x)"
            )
        head = float(headline[model]) if headline is not None and model in headline else np.nan
        row.update(
            flags=flags,
            explanations=why,
            checks_run=checks,
            length_ratio=ratio,
            win_rate=float(raw.get(model, np.nan)),
            headline=head,
            headline_lift=float(lifts.get(model, np.nan)),
            median_lift=median_lift,
        )
        rows.append(row)
    columns = [
        "flags", "explanations", "checks_run", "modal_share", "block_share", "length_ratio", "injection_share",
        "recurring_share", "note_share", "win_rate", "headline", "headline_lift", "median_lift",
    ]  # fmt: skip
    frame = pd.DataFrame(rows).set_index("model")[columns]
    frame.attrs["headline_name"] = headline_name
    return frame


def _text_checks(
    outputs: pd.Series,
    sub: pd.DataFrame,
    t: CheckThresholds,
    flags: list[str],
    why: list[str],
    row: dict[str, object],
) -> None:
    """The checks that read one model's outputs; appends to ``flags``/``why`` and records measurements."""
    n = len(outputs)
    normalised = outputs.map(normalise_output)
    counts = normalised.value_counts()
    modal_share = float(counts.iloc[0] / n) if n else np.nan
    if n and modal_share >= t.constant_share:
        flags.append("constant_output")
        why.append(f"{modal_share:.0%} of its {n} outputs are the same text (threshold {t.constant_share:.0%})")

    long_enough = normalised[normalised.str.len() >= t.block_chars]
    block_share = 0.0
    for block in (long_enough.str[: t.block_chars], long_enough.str[-t.block_chars :]):
        if len(block):
            block_share = max(block_share, float(block.value_counts().iloc[0] / n))
    if block_share >= t.block_share:
        flags.append("repeated_block")
        why.append(
            f"{block_share:.0%} of its outputs open or close with the same {t.block_chars}-character block "
            f"(threshold {t.block_share:.0%}): fixed text added to every answer"
        )

    hits = outputs.map(injection_hits)
    n_hit = int((hits.map(len) > 0).sum())
    inj_share = n_hit / n if n else np.nan
    if n_hit >= t.injection_min_count and inj_share >= t.injection_share:
        names = sorted({h for hs in hits for h in hs})
        flags.append("judge_injection")
        why.append(
            f"{inj_share:.0%} of outputs contain text addressed to the judge ({', '.join(names)}; "
            f"threshold {t.injection_share:.0%} and {t.injection_min_count} outputs)"
        )

    instructions = sub["instruction"].astype(str).tolist() if "instruction" in sub.columns else None
    found = recurring_text(outputs.tolist(), instructions)
    n_note = int(found.evaluative.sum())
    if n_note >= t.note_min_count and found.note_share >= t.note_share:
        example = found.examples[0] if found.examples else ""
        flags.append("recurring_note")
        why.append(
            f"{found.note_share:.0%} of outputs carry text that recurs across answers to different instructions "
            f"and talks about the evaluation (threshold {t.note_share:.0%} and {t.note_min_count} outputs), "
            f'e.g. "{example[:120]}"'
        )
    row.update(
        modal_share=modal_share,
        block_share=block_share,
        injection_share=inj_share,
        recurring_share=found.recurring_share,
        note_share=found.note_share,
    )
