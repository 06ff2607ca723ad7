"""A gaming audit for every leaderboard entry: named checks, each with a documented threshold.

Why: an automatic evaluator can be gamed. A constant prompt-injection "NullModel" reaches 86.5% LC on
AlpacaEval 2; answers cut to about 68 characters (gpt4_gamed) triple their score under LC; verbose
prompting moves raw win rates. A number should never be shown without the evidence that it was not gamed.
Every check and threshold is defined in docs/trust.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

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

HEADLINE_RATIO = 3.0
"""`headline_inflation`: flagged when headline >= this x raw win rate ..."""

HEADLINE_MIN_GAIN = 5.0
"""... and headline - raw win rate >= this many points ..."""

HEADLINE_RELATIVE = 1.5
"""... and the model's headline/raw ratio >= this x the median ratio over the audited models. Length control
lifts every model when the reference writes long answers (and more so when LC's inputs are estimated from few
models); gaming shows as a lift far beyond the board's typical one."""

INJECTION_SHARE = 0.02
"""`judge_injection`: flagged when at least this share of outputs (and at least INJECTION_MIN_COUNT) match."""

INJECTION_MIN_COUNT = 2

VERBOSITY_SPREAD = 10.0
"""`verbosity_sensitive`: flagged when a metric moves by more than this many points across a model's
verbose/concise variants (max - min over the base model and its variants)."""

VARIANT_SUFFIXES = ("_verbose", "_concise")
"""Generator-name suffixes that mark prompted-style variants of a base model (AlpacaEval's convention)."""

INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    "ignore_instructions": re.compile(
        r"\b(?:ignore|disregard|forget)\b[^.\n]{0,40}\b(?:above|previous|prior|preceding|earlier|all)\b"
        r"[^.\n]{0,40}\b(?:instructions?|prompts?|outputs?|text|context|rules|messages?)\b",
        re.IGNORECASE,
    ),
    "judge_template_markers": re.compile(
        r"^\s*#{1,4}\s*(?:model outputs?|instruction|evaluation|ranking)\s*$|\"instruction\"\s*:\s*\"\"\"",
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
"""Patterns of text addressed to a judge rather than to the user (prompt injection); each named."""

FLAG_COLUMNS = ["flags", "explanations"]


@dataclass(frozen=True)
class CheckThresholds:
    """Every threshold of the audit, named; defaults are the documented ones (docs/trust.md)."""

    constant_share: float = CONSTANT_SHARE
    block_chars: int = BLOCK_CHARS
    block_share: float = BLOCK_SHARE
    short_length_ratio: float = SHORT_LENGTH_RATIO
    long_length_ratio: float = LONG_LENGTH_RATIO
    headline_ratio: float = HEADLINE_RATIO
    headline_min_gain: float = HEADLINE_MIN_GAIN
    headline_relative: float = HEADLINE_RELATIVE
    injection_share: float = INJECTION_SHARE
    injection_min_count: int = INJECTION_MIN_COUNT
    verbosity_spread: float = VERBOSITY_SPREAD


def normalise_output(text: str) -> str:
    """Text compared by the constant-output check: NFKC, lower case, digits as 0, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\d", "0", text)
    return " ".join(text.split())


def injection_hits(text: str) -> list[str]:
    """Names of the INJECTION_PATTERNS that ``text`` matches."""
    return [name for name, pattern in INJECTION_PATTERNS.items() if pattern.search(text)]


def base_model(name: str) -> str:
    """The base model of a prompted-style variant (``x_verbose`` -> ``x``); other names unchanged."""
    for suffix in VARIANT_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def verbosity_spreads(
    metrics: Mapping[str, Mapping[str, float]], *, present_models: set[str] | None = None
) -> pd.DataFrame:
    """How far each metric moves across a base model and its verbose/concise variants.

    ``metrics`` maps a metric name (e.g. 'win_rate', 'length_controlled_winrate', 'style_controlled') to
    {model: value}. Rows: one per base model that has at least one variant present in some metric; columns:
    ``<metric>_spread`` = max - min over the base model and its variants that the metric has (points), plus
    ``<metric>_<variant>`` values for the record. Models without variants do not appear.
    """
    families: dict[str, set[str]] = {}
    for values in metrics.values():
        for model in values:
            if present_models is not None and model not in present_models:
                continue
            families.setdefault(base_model(model), set()).add(model)
    rows = {}
    for base, members in sorted(families.items()):
        if not any(m != base for m in members):
            continue
        row: dict[str, float] = {}
        for metric, values in metrics.items():
            present = {m: float(values[m]) for m in sorted(members) if m in values and pd.notna(values[m])}
            for m, v in present.items():
                row[f"{metric}[{m}]"] = v
            row[f"{metric}_spread"] = max(present.values()) - min(present.values()) if len(present) > 1 else np.nan
        rows[base] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "base_model"
    return frame


def audit(
    pairs: pd.DataFrame,
    *,
    headline: Mapping[str, float] | None = None,
    headline_name: str = "headline",
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    thresholds: CheckThresholds | None = None,
) -> pd.DataFrame:
    """Gaming audit of every model (``generator_2``) in a pair table; one row per model.

    Parameters
    ----------
    pairs:
        A :func:`~pasture.metrics.pairs.pair_table` of models (slot 2) against a reference (slot 1).
    headline:
        The leaderboard's headline metric per model in points (e.g. LC win rate); enables
        ``headline_inflation``. Absent models are not checked by it.
    headline_name:
        What the headline is called in explanations.
    metrics:
        Metrics per model for ``verbosity_sensitive`` ({metric: {model: points}}); raw ``win_rate`` from
        ``pairs`` is always included.
    thresholds:
        Check thresholds; the documented defaults when None.

    Returns a DataFrame indexed by model with ``flags`` (list of flag names, empty when clean),
    ``explanations`` (one sentence per flag) and each check's measurement: ``modal_share``, ``block_share``,
    ``length_ratio``, ``injection_share``, ``win_rate``, ``headline``, ``headline_lift`` (headline / raw),
    ``median_lift`` (median lift over the audited models) and ``verbosity_spread``.
    """
    t = thresholds or CheckThresholds()
    for col in ("generator_2", "output_1", "output_2", "preference"):
        if col not in pairs.columns:
            raise InputError(f"the audit needs a pair table with column {col!r}")
    raw = (pairs.groupby("generator_2")["preference"].mean() - 1) * 100
    ratios = pd.Series(
        {
            str(m): float(headline[str(m)]) / float(w)
            for m, w in raw.items()
            if headline is not None and str(m) in headline and pd.notna(headline[str(m)]) and w > 0
        },
        dtype=float,
    )
    median_ratio = float(ratios.median()) if len(ratios) else np.nan
    all_metrics: dict[str, Mapping[str, float]] = {"win_rate": raw.to_dict()}
    all_metrics.update(metrics or {})
    spreads = verbosity_spreads(all_metrics, present_models={str(m) for m in raw.index})
    rows = []
    for model, sub in pairs.groupby("generator_2", sort=True):
        model = str(model)
        flags: list[str] = []
        why: list[str] = []
        outputs = sub["output_2"].astype(str)
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

        len1 = sub["output_1"].astype(str).str.len().to_numpy(dtype=float)
        len2 = outputs.str.len().to_numpy(dtype=float)
        ratio = float(np.median((len2 + 1) / (len1 + 1))) if n else np.nan
        if ratio < t.short_length_ratio or ratio > t.long_length_ratio:
            flags.append("extreme_length")
            why.append(
                f"median output is {ratio:.3g}x the reference's length "
                f"(allowed {t.short_length_ratio:g}x to {t.long_length_ratio:g}x)"
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

        wr = float(raw.get(model, np.nan))
        head = float(headline[model]) if headline is not None and model in headline else np.nan
        ratio_h = head / wr if pd.notna(head) and pd.notna(wr) and wr > 0 else (np.inf if head > 0 else np.nan)
        if (
            pd.notna(head)
            and pd.notna(wr)
            and head - wr >= t.headline_min_gain
            and ratio_h >= t.headline_ratio
            and not ratio_h < t.headline_relative * median_ratio
        ):
            flags.append("headline_inflation")
            why.append(
                f"{headline_name} {head:.1f} is {ratio_h:.1f}x the raw win rate {wr:.1f}, "
                f"{ratio_h / median_ratio:.1f}x the board's median lift of {median_ratio:.2f}x "
                f"(thresholds {t.headline_ratio:g}x, +{t.headline_min_gain:g} points, "
                f"{t.headline_relative:g}x the median)"
            )

        base = base_model(model)
        spread_cols = [c for c in spreads.columns if c.endswith("_spread")] if base in spreads.index else []
        worst = np.nan
        for col in spread_cols:
            value = spreads.at[base, col]
            if pd.notna(value):
                worst = value if pd.isna(worst) else max(worst, value)
                if value > t.verbosity_spread:
                    if "verbosity_sensitive" not in flags:
                        flags.append("verbosity_sensitive")
                    why.append(
                        f"{col.removesuffix('_spread')} moves {value:.1f} points across {base}'s "
                        f"verbose/concise variants (threshold {t.verbosity_spread:g})"
                    )
        rows.append(
            {
                "model": model,
                "flags": flags,
                "explanations": why,
                "modal_share": modal_share,
                "block_share": block_share,
                "length_ratio": ratio,
                "injection_share": inj_share,
                "win_rate": wr,
                "headline": head,
                "headline_lift": ratio_h,
                "median_lift": median_ratio,
                "verbosity_spread": worst,
            }
        )
    return pd.DataFrame(rows).set_index("model")
