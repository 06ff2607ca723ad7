"""Moving AlpacaEval files into and out of the store.

Import validates a whole file before writing any of it, so a bad row never leaves a half-imported file,
and never touches what the store already holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pasture.io import read_annotations, read_eval_set, read_model_outputs, write_annotations
from pasture.records import OFFICIAL_JUDGE_ALIASES, EvalSet, Judgment
from pasture.store import Store


@dataclass(frozen=True)
class ImportReport:
    """What an import did: rows read, rows newly written (re-imports write nothing), failed verdicts."""

    path: str
    rows: int
    written: int
    failed: int


def import_annotations(
    store: Store,
    paths: Sequence[str | Path],
    *,
    eval_set: EvalSet | None = None,
    annotator: str | None = None,
) -> list[ImportReport]:
    """Import AlpacaEval ``annotations.json`` files under their judge's fingerprint alias.

    Every file is read and validated before anything is written.
    """
    parsed: list[tuple[Path, list[Judgment]]] = [
        (Path(p), read_annotations(p, eval_set=eval_set, annotator=annotator)) for p in paths
    ]
    reports = []
    for path, judgments in parsed:
        for name in {j.judge_name for j in judgments}:
            store.put_judge(name, OFFICIAL_JUDGE_ALIASES[name])
        written = store.put_judgments(judgments)
        failed = sum(j.status != "ok" for j in judgments)
        reports.append(ImportReport(path=str(path), rows=len(judgments), written=written, failed=failed))
    return reports


def import_outputs(store: Store, path: str | Path, *, eval_set: EvalSet, generator: str | None = None) -> ImportReport:
    """Import a ``model_outputs.json`` against an eval set (stored too); unknown instructions are errors."""
    outputs = read_model_outputs(path, eval_set=eval_set, generator=generator)
    digest = store.put_eval_set(eval_set)
    written = store.put_outputs(digest, outputs)
    return ImportReport(path=str(path), rows=len(outputs), written=written, failed=0)


def load_eval_set(path: str | Path, *, name: str | None = None) -> EvalSet:
    """An eval set from a file (any supported format with an ``instruction`` column)."""
    return read_eval_set(path, name=name)


def export_annotations(
    store: Store, path: str | Path, *, judge_digest: str | None = None, generator_2: str | None = None
) -> Path:
    """Write stored judgments as an AlpacaEval-compatible ``annotations.json``."""
    return write_annotations(store.get_judgments(judge_digest=judge_digest, generator_2=generator_2), path)
