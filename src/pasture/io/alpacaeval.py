"""Eval sets, model outputs and judgments in AlpacaEval's file formats (and any tabular file of that shape)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pasture.errors import InputError
from pasture.io.files import optional_text, read_rows, require_text, write_rows
from pasture.position import alpaca_eval_shown_first
from pasture.records import (
    EvalSet,
    Instruction,
    Judgment,
    ModelOutput,
    annotator_fingerprint,
    canonical_json,
)


def read_eval_set(path: str | Path, *, name: str | None = None, instruction_field: str = "instruction") -> EvalSet:
    """An eval set from any file with an instruction column; duplicated instructions are an error."""
    path = Path(path)
    rows = read_rows(path)
    seen: dict[str, int] = {}
    items = []
    for i, row in enumerate(rows, start=1):
        text = require_text(row, instruction_field, path=path, row_no=i)
        if text in seen:
            raise InputError(
                f"duplicated instruction (first seen at row {seen[text]})",
                path=path,
                row=i,
                field=instruction_field,
            )
        seen[text] = i
        items.append(Instruction(instruction=text, dataset=optional_text(row, "dataset")))
    return EvalSet(name=name or _stem(path), instructions=tuple(items))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".json", ".jsonl", ".csv", ".parquet"):
        name = name.removesuffix(suffix)
    if name in {"model_outputs", "annotations", "outputs"}:
        return path.parent.name
    return name


def read_model_outputs(
    path: str | Path,
    *,
    eval_set: EvalSet | None = None,
    generator: str | None = None,
) -> list[ModelOutput]:
    """Model outputs from an AlpacaEval ``model_outputs.json`` (or JSONL/CSV/Parquet of the same columns).

    ``generator`` overrides (or supplies, when the file has none) the generator column. An instruction that
    repeats for one generator needs a distinct ``sample_index``; one that is not in ``eval_set`` is an error.
    """
    path = Path(path)
    rows = read_rows(path)
    allowed = set(eval_set.texts()) if eval_set is not None else None
    seen: dict[tuple[str, str, int], int] = {}
    out = []
    for i, row in enumerate(rows, start=1):
        instruction = require_text(row, "instruction", path=path, row_no=i)
        output = _output_text(row, path, i)
        gen = generator or optional_text(row, "generator")
        if gen is None:
            raise InputError(
                "missing generator (add a 'generator' column or pass a generator name)",
                path=path,
                row=i,
                field="generator",
            )
        sample_index = _int_field(row, "sample_index", path, i, default=0)
        if allowed is not None and instruction not in allowed:
            raise InputError(
                f"instruction not in eval set '{eval_set.name}': {_clip(instruction)!r}",  # type: ignore[union-attr]
                path=path,
                row=i,
                field="instruction",
            )
        ident = (instruction, gen, sample_index)
        if ident in seen:
            raise InputError(
                f"duplicated instruction for generator '{gen}' (first at row {seen[ident]}); "
                "give repeated samples distinct 'sample_index' values",
                path=path,
                row=i,
                field="instruction",
            )
        seen[ident] = i
        out.append(
            ModelOutput(
                instruction=instruction,
                output=output,
                generator=gen,
                sample_index=sample_index,
                dataset=optional_text(row, "dataset"),
            )
        )
    return out


def _output_text(row: Mapping[str, Any], path: Path, i: int) -> str:
    if "output" not in row:
        raise InputError("missing required field", path=path, row=i, field="output")
    value = row["output"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""  # AlpacaEval writes null for empty generations; an empty answer is still an answer
    if not isinstance(value, str):
        raise InputError(f"expected text, got {type(value).__name__}", path=path, row=i, field="output")
    return value


def _int_field(row: Mapping[str, Any], field: str, path: Path, i: int, *, default: int) -> int:
    value = row.get(field)
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return default
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected a whole number, got {value!r}", path=path, row=i, field=field) from None
    if not as_float.is_integer() or as_float < 0:
        raise InputError(f"expected a non-negative whole number, got {value!r}", path=path, row=i, field=field)
    return int(as_float)


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


DRAW_PREFERENCE = 1.5
"""A draw in pasture's scale. AlpacaEval 1 files (and AlpacaEval's code, for backward compatibility) also
write a draw as ``0``; both are read as 1.5 and counted in ``n_draws`` and ``n_total``."""


def coerce_preference(value: Any, *, path: Path | str, row: int) -> float | None:
    """A preference in [1, 2], coerced from numbers or numeric strings; None marks a missing verdict.

    AlpacaEval's coding: 1 = reference wins, 2 = model wins, 1.5 **or 0** = draw (0 is how AlpacaEval 1's
    annotators wrote a draw; it becomes 1.5). Missing verdicts (null/NaN/empty) become ``parse_error``
    judgments, counted in ``n_failed`` and left out of ``n_total``, as on AlpacaEval's boards. Anything else
    (text, values in (0, 1) or above 2) is an input error.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "nan", "none", "null"}):
        return None
    if isinstance(value, bool):
        raise InputError(
            f"expected a number in [1, 2] or 0 (draw), got {value!r}", path=path, row=row, field="preference"
        )
    try:
        pref = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"expected a number in [1, 2] or 0 (draw), got {value!r}", path=path, row=row, field="preference"
        ) from None
    if math.isnan(pref):
        return None
    if pref == 0.0:
        return DRAW_PREFERENCE
    if not 1.0 <= pref <= 2.0:
        raise InputError(f"must be in [1, 2] or 0 (draw), got {pref}", path=path, row=row, field="preference")
    return pref


def annotators_in(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Rows per ``annotator`` value in an annotation file's rows (missing names counted under '')."""
    return dict(Counter(optional_text(row, "annotator") or "" for row in rows))


def split_by_annotator(path: str | Path, folder: str | Path) -> dict[str, Path]:
    """Write one ``<folder>/<annotator>/annotations.json`` per annotator of a mixed annotation file.

    Why: a file mixing two judges has no single judge to score or import under; splitting it keeps every
    row, under the judge that wrote it. Returns the written file per annotator name.
    """
    path = Path(path)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for i, row in enumerate(read_rows(path), start=1):
        name = optional_text(row, "annotator")
        if name is None:
            raise InputError("missing annotator (every row of a file to split needs one)", path=path, row=i)
        if not _SAFE_NAME.fullmatch(name):
            raise InputError(f"annotator name {name!r} is not usable as a folder name", path=path, row=i)
        groups.setdefault(name, []).append(row)
    return {name: write_rows(rows, Path(folder) / name / "annotations.json") for name, rows in groups.items()}


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _one_annotator(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    counts = annotators_in(rows)
    named = {k: v for k, v in counts.items() if k}
    if len(named) > 1:
        listing = ", ".join(f"{n} rows by {k!r}" for k, v in sorted(named.items()) for n in [v])
        raise InputError(
            f"mixed file: {len(named)} annotators ({listing}); a file must hold one judge's verdicts. Split it by "
            "the 'annotator' column, e.g. python -c \"from pasture.io import split_by_annotator; "
            f"split_by_annotator('{path}', 'split')\", and use each part",
            path=path,
            field="annotator",
        )


def read_annotations(
    path: str | Path,
    *,
    eval_set: EvalSet | None = None,
    annotator: str | None = None,
) -> list[Judgment]:
    """Judgments from an AlpacaEval ``annotations.json`` of any annotator, against any reference.

    The annotator name gives the judge: a documented fingerprint alias (``OFFICIAL_JUDGE_ALIASES``), so an
    identically configured judge finds the imported judgments again, or else an *imported* judge
    (:func:`pasture.records.imported_judge_fingerprint`: known by name, template unknown), kept apart from
    every configured judge. ``annotator`` overrides or supplies the name. A file with two annotators is an
    error that names them with their row counts (:func:`split_by_annotator` splits it). Preferences follow
    :func:`coerce_preference` (0 or 1.5 = draw, missing = failed). The order the judge saw is AlpacaEval's
    deterministic per-instruction order, recomputed here.
    """
    path = Path(path)
    rows = read_rows(path)
    _one_annotator(rows, path)  # even with ``annotator`` given: renaming would merge two judges' verdicts
    allowed = set(eval_set.texts()) if eval_set is not None else None
    seen: dict[tuple[str, str], int] = {}
    fingerprints: dict[str, str] = {}
    out = []
    for i, row in enumerate(rows, start=1):
        instruction = require_text(row, "instruction", path=path, row_no=i)
        output_1 = _text_or_empty(row, "output_1", path, i)
        output_2 = _text_or_empty(row, "output_2", path, i)
        generator_1 = require_text(row, "generator_1", path=path, row_no=i)
        generator_2 = require_text(row, "generator_2", path=path, row_no=i)
        name = annotator or optional_text(row, "annotator")
        if name is None:
            raise InputError("missing annotator (pass the judge's name)", path=path, row=i, field="annotator")
        if name not in fingerprints:
            fingerprints[name] = annotator_fingerprint(name).digest
        if "preference" not in row:
            raise InputError("missing required field", path=path, row=i, field="preference")
        pref = coerce_preference(row["preference"], path=path, row=i)
        if allowed is not None and instruction not in allowed:
            raise InputError(
                f"instruction not in eval set '{eval_set.name}': {_clip(instruction)!r}",  # type: ignore[union-attr]
                path=path,
                row=i,
                field="instruction",
            )
        ident = (instruction, generator_2)
        if ident in seen:
            raise InputError(
                f"duplicated instruction for generator '{generator_2}' (first at row {seen[ident]})",
                path=path,
                row=i,
                field="instruction",
            )
        seen[ident] = i
        raw = row.get("raw_completion")
        out.append(
            Judgment(
                judge_digest=fingerprints[name],
                judge_name=name,
                instruction=instruction,
                output_1=output_1,
                generator_1=generator_1,
                output_2=output_2,
                generator_2=generator_2,
                shown_first=alpaca_eval_shown_first(instruction),
                dataset=optional_text(row, "dataset"),
                status="ok" if pref is not None else "parse_error",
                preference=pref,
                raw_completion=None if raw is None else (raw if isinstance(raw, str) else canonical_json_or_str(raw)),
                cost_usd=_float_or_none(row.get("price_per_example")),
                latency_s=_float_or_none(row.get("time_per_example")),
                error=None if pref is not None else "no preference in imported annotation",
                attempts=0,
            )
        )
    return out


def canonical_json_or_str(value: Any) -> str:
    """A structured raw completion (the function-calling annotators write dicts) as JSON; else its text."""
    try:
        return canonical_json(value)
    except (TypeError, ValueError):
        return str(value)


def _text_or_empty(row: Mapping[str, Any], field: str, path: Path, i: int) -> str:
    if field not in row:
        raise InputError("missing required field", path=path, row=i, field=field)
    value = row[field]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not isinstance(value, str):
        raise InputError(f"expected text, got {type(value).__name__}", path=path, row=i, field=field)
    return value


def _float_or_none(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def write_model_outputs(outputs: Iterable[ModelOutput], path: str | Path) -> Path:
    """AlpacaEval-compatible ``model_outputs.json`` (adds ``sample_index`` only when some are non-zero)."""
    outputs = list(outputs)
    multi = any(o.sample_index for o in outputs)
    rows = []
    for o in outputs:
        row: dict[str, Any] = {
            "dataset": o.dataset,
            "instruction": o.instruction,
            "output": o.output,
            "generator": o.generator,
        }
        if multi:
            row["sample_index"] = o.sample_index
        rows.append(row)
    return write_rows(rows, path)


def write_annotations(judgments: Iterable[Judgment], path: str | Path) -> Path:
    """AlpacaEval-compatible ``annotations.json`` plus pasture's own columns (shown_first, status, ...)."""
    rows = [
        {
            "instruction": j.instruction,
            "output_1": j.output_1,
            "generator_1": j.generator_1,
            "output_2": j.output_2,
            "generator_2": j.generator_2,
            "dataset": j.dataset,
            "annotator": j.judge_name,
            "preference": j.preference,
            "price_per_example": j.cost_usd,
            "time_per_example": j.latency_s,
            "raw_completion": j.raw_completion,
            "shown_first": j.shown_first,
            "replicate": j.replicate,
            "status": j.status,
            "error": j.error,
            "judge_digest": j.judge_digest,
        }
        for j in judgments
    ]
    return write_rows(rows, path)
