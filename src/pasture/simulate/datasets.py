"""Writing simulated preferences as training data: TRL / HF datasets and AlpacaFarm's pairwise format.

Formats (one JSON object per line, UTF-8, keys in a fixed order, ``\\n`` line ends, rows in label order,
so the same labels always give the same bytes):

* ``trl`` - TRL's standard preference format: ``{"prompt": str, "chosen": str, "rejected": str}``.
* ``trl_chat`` - TRL's conversational format: ``prompt`` is ``[{"role": "user", "content": ...}]``,
  ``chosen`` and ``rejected`` are ``[{"role": "assistant", "content": ...}]``.
* ``alpaca_farm`` - AlpacaFarm's pairwise rows: ``instruction``, ``input`` (always ``""``: pasture
  instructions carry their input inline), ``output_1``, ``output_2``, ``preference`` (int 1 or 2).

Only usable labels become rows: a failed judgment (error or parse error) or a tie (preference exactly
1.5) cannot say which output is chosen; they are counted in :class:`DatasetSummary`, never dropped silently.
A soft label counts for the slot it leans to (> 1.5: slot 2 is chosen).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pasture.errors import InputError
from pasture.simulate.labels import SimulatedLabel

DatasetFormat = Literal["trl", "trl_chat", "alpaca_farm"]
FORMATS: tuple[str, ...] = ("trl", "trl_chat", "alpaca_farm")


@dataclass(frozen=True)
class DatasetSummary:
    """Counts for one written dataset."""

    n_rows: int
    n_ties: int
    n_failed: int


def _winner(label: SimulatedLabel) -> Literal[1, 2] | None:
    if label.status != "ok" or label.preference is None or label.preference == 1.5:
        return None
    return 2 if label.preference > 1.5 else 1


def preference_rows(
    labels: Sequence[SimulatedLabel], fmt: DatasetFormat = "trl"
) -> tuple[list[dict[str, Any]], DatasetSummary]:
    """Rows of a preference dataset in format ``fmt`` from the (noisy) labels, and the counts."""
    if fmt not in FORMATS:
        raise InputError(f"unknown dataset format {fmt!r}; use one of {', '.join(FORMATS)}")
    rows: list[dict[str, Any]] = []
    ties = failed = 0
    for lab in labels:
        if lab.status != "ok" or lab.preference is None:
            failed += 1
            continue
        win = _winner(lab)
        if win is None:
            ties += 1
            continue
        pair = lab.pair
        chosen, rejected = (pair.output_2, pair.output_1) if win == 2 else (pair.output_1, pair.output_2)
        if fmt == "trl":
            rows.append({"prompt": pair.instruction, "chosen": chosen, "rejected": rejected})
        elif fmt == "trl_chat":
            rows.append(
                {
                    "prompt": [{"role": "user", "content": pair.instruction}],
                    "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                }
            )
        else:
            rows.append(
                {
                    "instruction": pair.instruction,
                    "input": "",
                    "output_1": pair.output_1,
                    "output_2": pair.output_2,
                    "preference": win,
                }
            )
    return rows, DatasetSummary(n_rows=len(rows), n_ties=ties, n_failed=failed)


def write_preference_dataset(
    labels: Sequence[SimulatedLabel], path: str | Path, fmt: DatasetFormat = "trl"
) -> DatasetSummary:
    """Write the labels as a JSONL preference dataset (``datasets.load_dataset("json", data_files=path)``)."""
    rows, summary = preference_rows(labels, fmt)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text.encode("utf-8"))
    tmp.replace(path)
    return summary


def write_labels(labels: Sequence[SimulatedLabel], path: str | Path) -> None:
    """Every label with its provenance (annotator, judge digest, judgment key, shown_first, clean and noisy
    preference, flipped, status) as JSONL: the full record from which any dataset format is derived."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(lab.model_dump_json() + "\n" for lab in labels)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text.encode("utf-8"))
    tmp.replace(path)
