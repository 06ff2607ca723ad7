"""Eval sets by name or path: the embedded demo set, AlpacaEval 2, any tabular file, any HF dataset.

Why one resolver: every command that takes ``--eval-set`` (generate, evaluate, demo) accepts the same
spellings, so a user learns them once:

* ``demo``: the embedded demo set written for pasture (115 instructions in 8 categories, package data);
* ``alpaca_eval``: AlpacaEval 2's 805 instructions, from the Hugging Face hub (or a local copy, see
  :func:`alpaca_eval_set`);
* a path to a JSON/JSONL/CSV/Parquet file (optionally gzipped) with an instruction column, or to a folder
  written by ``datasets.Dataset.save_to_disk``;
* ``hf:OWNER/NAME`` or ``hf:OWNER/NAME:SPLIT``: a Hugging Face dataset (needs the network or the local cache).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pasture.errors import InputError
from pasture.io import fetch_alpaca_eval_file, read_model_outputs, read_rows
from pasture.records import EvalSet, Instruction, ModelOutput

DEMO = "demo"
ALPACA_EVAL = "alpaca_eval"
DEMO_FILE = "demo_instructions.jsonl"
ALPACA_EVAL_REFERENCE = "gpt4_1106_preview"
"""Generator name of AlpacaEval 2's reference outputs (GPT-4 Turbo, Nov 2023)."""


def demo_eval_set(n: int | None = None) -> EvalSet:
    """The embedded demo set (written for pasture; categories in the ``dataset`` field).

    ``n`` takes a subset stratified by category: instructions are taken round-robin over the categories in
    file order (first writing item, first coding item, ..., then the second of each), so any ``n`` covers
    every category as evenly as possible. The subset's name says its size (``demo-30``).
    """
    text = resources.files("pasture").joinpath("data", DEMO_FILE).read_text(encoding="utf-8")
    items = [Instruction(**json.loads(line)) for line in text.splitlines() if line.strip()]
    if n is None or n >= len(items):
        return EvalSet(name=DEMO, instructions=tuple(items))
    if n < 1:
        raise InputError(f"a demo subset needs at least 1 instruction, got {n}")
    by_category: dict[str, list[Instruction]] = {}
    for item in items:
        by_category.setdefault(item.dataset or "", []).append(item)
    picked: list[Instruction] = []
    rank = 0
    while len(picked) < n:
        for group in by_category.values():
            if rank < len(group) and len(picked) < n:
                picked.append(group[rank])
        rank += 1
    return EvalSet(name=f"{DEMO}-{n}", instructions=tuple(picked))


def alpaca_eval_reference(path: str | Path | None = None) -> list[ModelOutput]:
    """AlpacaEval 2's reference outputs (GPT-4 Turbo), which also define its eval set.

    ``path`` is a local copy of the official eval set file (``alpaca_eval_gpt4_baseline.json``, or
    ``results/gpt4_1106_preview/model_outputs.json.gz`` from AlpacaEval's repository: the same rows). Without
    it the file comes from the Hugging Face hub; offline that fails with a message naming the local option.
    """
    source = Path(path) if path is not None else fetch_alpaca_eval_file("eval_set")
    has_generator = all(row.get("generator") for row in read_rows(source))
    return read_model_outputs(source, generator=None if has_generator else ALPACA_EVAL_REFERENCE)


def alpaca_eval_set(path: str | Path | None = None) -> EvalSet:
    """AlpacaEval 2's 805 instructions with their ``dataset`` (source subset), in the official order."""
    outputs = alpaca_eval_reference(path)
    items = tuple(Instruction(instruction=o.instruction, dataset=o.dataset) for o in outputs if o.sample_index == 0)
    return EvalSet(name="alpaca_eval_2", instructions=items)


def eval_set_from_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    name: str,
    instruction_field: str = "instruction",
    dataset_field: str | None = "dataset",
    source: str = "",
) -> EvalSet:
    """An eval set from dict rows (any source); a missing/empty instruction or a duplicate is an InputError."""
    seen: dict[str, int] = {}
    items = []
    for i, row in enumerate(rows, start=1):
        if instruction_field not in row:
            fields = ", ".join(sorted(map(str, row)))[:200]
            raise InputError(
                f"no instruction column (columns: {fields})", path=source or None, row=i, field=instruction_field
            )
        text = row[instruction_field]
        if not isinstance(text, str) or not text.strip():
            raise InputError("empty or non-text instruction", path=source or None, row=i, field=instruction_field)
        if text in seen:
            raise InputError(
                f"duplicated instruction (first seen at row {seen[text]})",
                path=source or None,
                row=i,
                field=instruction_field,
            )
        seen[text] = i
        category = row.get(dataset_field) if dataset_field else None
        if category is not None and (isinstance(category, float) and math.isnan(category)):
            category = None
        items.append(Instruction(instruction=text, dataset=None if category in (None, "") else str(category)))
    if not items:
        raise InputError("the eval set is empty", path=source or None)
    return EvalSet(name=name, instructions=tuple(items))


def resolve_eval_set(
    spec: str,
    *,
    instruction_field: str = "instruction",
    dataset_field: str | None = "dataset",
    limit: int | None = None,
    alpaca_eval_path: str | Path | None = None,
) -> EvalSet:
    """The eval set that ``spec`` names (see the module docstring for the spellings).

    Parameters
    ----------
    spec:
        ``demo``, ``alpaca_eval``, a file or ``save_to_disk`` folder path, or ``hf:OWNER/NAME[:SPLIT]``.
    instruction_field, dataset_field:
        Column names for the instruction and its category (files and HF datasets).
    limit:
        Keep only this many instructions: the first ``limit`` in file order, or for ``demo`` a subset
        stratified by category (:func:`demo_eval_set`). The subset is a different eval set (other digest).
    alpaca_eval_path:
        Local copy of AlpacaEval's eval set file, used for ``alpaca_eval`` instead of the hub.
    """
    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}", param="limit")
    if spec == DEMO:
        return demo_eval_set(limit)
    if spec == ALPACA_EVAL:
        eval_set = alpaca_eval_set(alpaca_eval_path)
    elif spec.startswith("hf:"):
        eval_set = _hub_dataset(spec, instruction_field=instruction_field, dataset_field=dataset_field)
    else:
        path = Path(spec)
        if path.is_dir():
            eval_set = _disk_dataset(path, instruction_field=instruction_field, dataset_field=dataset_field)
        else:
            if not path.exists():
                raise InputError(
                    "eval set not found (give 'demo', 'alpaca_eval', a file, a dataset folder or hf:OWNER/NAME)",
                    path=path,
                )
            eval_set = eval_set_from_rows(
                read_rows(path),
                name=_stem(path),
                instruction_field=instruction_field,
                dataset_field=dataset_field,
                source=str(path),
            )
    if limit is not None and limit < len(eval_set):
        eval_set = EvalSet(name=f"{eval_set.name}-{limit}", instructions=eval_set.instructions[:limit])
    return eval_set


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".json", ".jsonl", ".csv", ".parquet"):
        name = name.removesuffix(suffix)
    return path.parent.name if name in {"model_outputs", "outputs"} else name


def _hub_dataset(spec: str, *, instruction_field: str, dataset_field: str | None) -> EvalSet:
    parts = spec[3:].split(":")
    if not parts[0] or len(parts) > 2:
        raise InputError(f"expected hf:OWNER/NAME or hf:OWNER/NAME:SPLIT, got {spec!r}")
    name, split = parts[0], (parts[1] if len(parts) == 2 else "train")
    try:
        import datasets
    except ImportError:
        raise InputError("reading a Hugging Face dataset needs the 'datasets' package (pip install datasets)") from None
    try:
        data = datasets.load_dataset(name, split=split)
    except Exception as exc:  # offline, unknown name, unknown split: all mean "cannot read it"
        raise InputError(
            f"cannot load Hugging Face dataset {name!r} split {split!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); offline, pass a local file instead"
        ) from None
    return eval_set_from_rows(
        data, name=name.split("/")[-1], instruction_field=instruction_field, dataset_field=dataset_field, source=spec
    )


def _disk_dataset(path: Path, *, instruction_field: str, dataset_field: str | None) -> EvalSet:
    try:
        import datasets
    except ImportError:
        raise InputError("reading a dataset folder needs the 'datasets' package", path=path) from None
    try:
        data = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise InputError(f"not a dataset folder written by save_to_disk ({type(exc).__name__})", path=path) from None
    if isinstance(data, datasets.DatasetDict):
        split = "test" if "test" in data else next(iter(data))
        data = data[split]
    return eval_set_from_rows(
        data, name=path.name, instruction_field=instruction_field, dataset_field=dataset_field, source=str(path)
    )
