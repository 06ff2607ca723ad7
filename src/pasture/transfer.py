"""Moving AlpacaEval files into and out of the store.

Import validates a whole file before writing any of it, so a bad row never leaves a half-imported file,
and never touches what the store already holds. Importing annotations also records the board they make:
the eval set, the reference's and each model's outputs (read from the annotation rows) and one ``import``
run per model, so ``pasture leaderboard`` and ``pasture report`` work right after ``pasture import``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pasture.errors import InputError
from pasture.io import read_annotations, read_eval_set, read_model_outputs, write_annotations
from pasture.leaderboard import IMPORT_RUN_KIND, BoardKey
from pasture.records import EvalSet, Instruction, Judgment, ModelOutput, RunManifest, annotator_fingerprint
from pasture.store import Store, outputs_digest


@dataclass(frozen=True)
class ImportReport:
    """What an import did: rows read, rows newly written (re-imports write nothing), failed verdicts, and the
    board (``key``) and judge the file's models were recorded on."""

    path: str
    rows: int
    written: int
    failed: int
    judge_name: str = ""
    models: tuple[str, ...] = ()
    key: BoardKey | None = None


IMPORTED_JUDGE_NOTE = "judge imported by name from AlpacaEval annotations: its prompt template is unknown"


def import_annotations(
    store: Store,
    paths: Sequence[str | Path],
    *,
    eval_set: EvalSet | None = None,
    annotator: str | None = None,
    record_board: bool = True,
) -> list[ImportReport]:
    """Import AlpacaEval ``annotations.json`` files of any annotator and record the boards they make.

    Every file is read and validated before anything is written. The judge is the annotator's documented
    alias or an imported judge (:func:`pasture.records.annotator_fingerprint`). With ``record_board``, the
    rows of each (judge, reference generator) make one board: its eval set is ``eval_set`` or else the
    instructions the rows cover (in first-seen order; an earlier import's eval set is reused when it holds
    them all), the reference outputs and each model's outputs come from the rows' ``output_1``/``output_2``
    (two files disagreeing about one generator's output for an instruction is an InputError), and every
    model gets an ``import`` run naming the judge. A model with missing rows is recorded with the rows it has.
    """
    parsed: list[tuple[Path, list[Judgment]]] = [
        (Path(p), read_annotations(p, eval_set=eval_set, annotator=annotator)) for p in paths
    ]
    boards: dict[tuple[str, str], BoardKey] = {}
    if record_board:
        boards = _record_boards(store, parsed, eval_set)
    reports = []
    for path, judgments in parsed:
        names = sorted({j.judge_name for j in judgments})
        for name in names:
            store.put_judge(name, annotator_fingerprint(name))
        written = store.put_judgments(judgments)
        failed = sum(j.status != "ok" for j in judgments)
        keys = {boards.get((j.judge_digest, j.generator_1)) for j in judgments}
        reports.append(
            ImportReport(
                path=str(path),
                rows=len(judgments),
                written=written,
                failed=failed,
                judge_name=", ".join(names),
                models=tuple(dict.fromkeys(j.generator_2 for j in judgments)),
                key=next(iter(keys)) if len(keys) == 1 else None,
            )
        )
    return reports


def _record_boards(
    store: Store, parsed: Sequence[tuple[Path, Sequence[Judgment]]], eval_set: EvalSet | None
) -> dict[tuple[str, str], BoardKey]:
    """Eval set, outputs and one ``import`` run per model for each (judge digest, reference generator)."""
    import pasture

    groups: dict[tuple[str, str], list[tuple[Path, Judgment]]] = {}
    for path, judgments in parsed:
        for j in judgments:
            groups.setdefault((j.judge_digest, j.generator_1), []).append((path, j))
    # validate every group before writing anything
    plans = []
    for (judge_digest, reference), rows in groups.items():
        ref_out = _outputs_of(reference, ((p, j.instruction, j.output_1, j.dataset) for p, j in rows))
        models: dict[str, dict[str, ModelOutput]] = {}
        files: dict[str, set[str]] = {}
        for path, j in rows:
            models.setdefault(j.generator_2, {})
            files.setdefault(j.generator_2, set()).add(str(path))
        for model in models:
            models[model] = _outputs_of(
                model, ((p, j.instruction, j.output_2, j.dataset) for p, j in rows if j.generator_2 == model)
            )
            if model == reference and models[model] != ref_out:
                raise InputError(
                    f"'{reference}' is both the reference and a model with other outputs; rename one of them"
                )
        es = eval_set or _eval_set_for(store, judge_digest, reference, ref_out)
        for generator, outs in [(reference, ref_out), *models.items()]:
            _check_consistent(store, es.digest, generator, outs.values())
        plans.append((judge_digest, reference, ref_out, models, files, es, rows[0][1].judge_name))
    keys: dict[tuple[str, str], BoardKey] = {}
    for judge_digest, reference, ref_out, models, files, es, judge_name in plans:
        es_digest = store.put_eval_set(es)
        store.put_outputs(es_digest, list(ref_out.values()))
        for model, outs in models.items():
            if model != reference:
                store.put_outputs(es_digest, list(outs.values()))
        stored_ref = [o for o in store.get_outputs(es_digest, reference) if o.sample_index == 0]
        key = BoardKey(es_digest, outputs_digest(stored_ref), judge_digest)
        keys[(judge_digest, reference)] = key
        imported = annotator_fingerprint(judge_name).imported
        for model, outs in models.items():
            manifest = RunManifest(
                pasture_version=pasture.__version__,
                eval_set_digest=es_digest,
                reference_digest=key.reference_digest,
                judge_digest=judge_digest,
                judge_name=judge_name,
                inputs={
                    "eval_set": es.name,
                    "reference_generator": reference,
                    "model_outputs_digest": outputs_digest(outs.values()),
                    "position": "alpaca_eval",
                    "replicates": "1",
                    "files": ", ".join(sorted(files[model])),
                    "source": "import",
                },
                notes=(IMPORTED_JUDGE_NOTE,) if imported else (),
            )
            store.put_run(
                eval_set_digest=es_digest,
                reference_digest=key.reference_digest,
                judge_digest=judge_digest,
                generator=model,
                kind=IMPORT_RUN_KIND,
                result={"rows": len(outs)},
                manifest=manifest,
            )
    return keys


def _outputs_of(generator: str, rows: Iterable[tuple[Path, str, str, str | None]]) -> dict[str, ModelOutput]:
    """One output per instruction for ``generator`` from annotation rows; disagreeing texts are an error."""
    out: dict[str, ModelOutput] = {}
    where: dict[str, Path] = {}
    for path, instruction, text, dataset in rows:
        have = out.get(instruction)
        if have is None:
            out[instruction] = ModelOutput(instruction=instruction, output=text, generator=generator, dataset=dataset)
            where[instruction] = path
        elif have.output != text:
            raise InputError(
                f"two different outputs of '{generator}' for one instruction ({where[instruction]} and this file): "
                f"{instruction[:60]!r}; give the generators distinct names",
                path=path,
            )
    return out


def _eval_set_for(store: Store, judge_digest: str, reference: str, ref_out: dict[str, ModelOutput]) -> EvalSet:
    """An earlier import's eval set for this judge and reference if it holds every instruction, else a new one."""
    texts = set(ref_out)
    for run in reversed(store.runs(kinds=[IMPORT_RUN_KIND], judge_digest=judge_digest)):
        if run.manifest.inputs.get("reference_generator") != reference:
            continue
        stored = store.get_eval_set(run.eval_set_digest)
        if texts <= set(stored.texts()):
            return stored
    return EvalSet(
        name=f"imported-vs-{reference}",
        instructions=tuple(Instruction(instruction=t, dataset=o.dataset) for t, o in ref_out.items()),
    )


def _check_consistent(store: Store, es_digest: str, generator: str, outputs: Iterable[ModelOutput]) -> None:
    """Refuse a generator name whose stored outputs on this eval set say otherwise for an instruction."""
    stored = {o.instruction: o.output for o in store.get_outputs(es_digest, generator) if o.sample_index == 0}
    for o in outputs:
        if o.instruction in stored and stored[o.instruction] != o.output:
            raise InputError(
                f"the store already holds another output of '{generator}' for {o.instruction[:60]!r}; "
                "import under another generator name or into another store"
            )


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
