"""Model outputs + reference outputs + a judge → judgments in the store → metrics → a leaderboard entry.

Why one function: this is the user's whole question ("how good is my model, with what certainty"). Every
step reuses the store: outputs are stored by (eval set, instruction, generator, sample), judgments by their
content key, so re-running with one new model judges only that model's pairs, and judgments imported from
AlpacaEval's annotation files are found again by an identically configured judge instead of being bought a
second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pasture.annotate import AnnotationReport, EngineSettings, PairToJudge, Position, annotate
from pasture.errors import InputError
from pasture.judges.base import Judge
from pasture.leaderboard import EVALUATE_RUN_KIND, BoardKey, Leaderboard, leaderboard
from pasture.records import EvalSet, ModelOutput, RunManifest
from pasture.scoring import score_judgments
from pasture.store import Store, outputs_digest


@dataclass(frozen=True)
class EvaluationResult:
    """What :func:`evaluate` did: the judging report, the board it updated, and the runs it recorded."""

    key: BoardKey
    generators: tuple[str, ...]
    annotation: AnnotationReport
    board: Leaderboard
    run_ids: dict[str, int]


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def check_outputs(eval_set: EvalSet, outputs: Sequence[ModelOutput], *, role: str) -> None:
    """Outputs must answer exactly the eval set's instructions: extra or missing ones are InputErrors.

    Why strict: a model scored on part of an eval set is not comparable with the others on the board, and an
    output for a foreign instruction means the wrong eval set was given.
    """
    known = set(eval_set.texts())
    foreign = [o.instruction for o in outputs if o.instruction not in known]
    if foreign:
        raise InputError(
            f"eval-set mismatch: {len(foreign)} of {len(outputs)} {role} outputs answer instructions that are not "
            f"in eval set '{eval_set.name}' (first: {_clip(foreign[0])!r}); pass the eval set they were made for"
        )
    by_generator: dict[str, set[str]] = {}
    for o in outputs:
        by_generator.setdefault(o.generator, set()).add(o.instruction)
    for generator, have in by_generator.items():
        missing = [t for t in eval_set.texts() if t not in have]
        if missing:
            raise InputError(
                f"eval-set mismatch: {role} '{generator}' has no output for {len(missing)} of {len(eval_set)} "
                f"instructions of eval set '{eval_set.name}' (first: {_clip(missing[0])!r})"
            )


def evaluate(
    store: Store,
    *,
    eval_set: EvalSet,
    model_outputs: Sequence[ModelOutput],
    reference_outputs: Sequence[ModelOutput],
    judge: Judge,
    position: Position = "alpaca_eval",
    replicates: int = 1,
    settings: EngineSettings | None = None,
    progress: bool = True,
    notes: Sequence[str] = (),
    inputs: dict[str, str] | None = None,
) -> EvaluationResult:
    """Judge ``model_outputs`` against ``reference_outputs`` with ``judge``; record each model on the board.

    Parameters
    ----------
    store:
        Receives the eval set, both sets of outputs, every judgment (as it completes) and one run per model.
    eval_set:
        The instructions; outputs for other instructions, or missing ones, are an InputError.
    model_outputs:
        Outputs of one or more models (``generator``); several samples per instruction are all judged.
    reference_outputs:
        One output per instruction from the reference (baseline) generator, slot 1 of every judgment.
    judge:
        Any :class:`pasture.judges.base.Judge` (e.g. ``pasture.judges.get_judge("smollm2-logprob")``).
    position:
        Which output the judge sees first (the engine's policy; ``alpaca_eval`` matches imported annotations).
    replicates:
        Independent judgments per pair and order (averaged into the pair's preference).
    settings:
        How the annotation engine runs (:class:`pasture.annotate.EngineSettings`: concurrency, quotas,
        retries, timeouts); its defaults when None. They do not change verdicts, so stored ones are reused.
    progress:
        Progress bar on stderr.
    notes:
        Caveats stored in every run manifest (and shown in reports), e.g. that the judge is a toy.
    inputs:
        Named inputs (file paths) recorded in the manifest.

    Failed or unparsable judgments are stored and counted in ``n_failed``; the run is still recorded, and a
    rerun retries only them.
    """
    import pasture

    if not model_outputs:
        raise InputError("no model outputs to evaluate")
    references = {o.generator for o in reference_outputs}
    if len(references) != 1:
        raise InputError(f"the reference must come from one generator, got {sorted(references) or 'none'}")
    reference = references.pop()
    reference_0 = [o for o in reference_outputs if o.sample_index == 0]
    check_outputs(eval_set, reference_0, role="reference")
    check_outputs(eval_set, model_outputs, role="model")
    generators = tuple(dict.fromkeys(o.generator for o in model_outputs))
    if reference in generators:
        raise InputError(f"'{reference}' is both the reference and a model; rename one of them")

    es_digest = store.put_eval_set(eval_set)
    stored_ref = [o for o in store.get_outputs(es_digest, reference) if o.sample_index == 0]
    if stored_ref and outputs_digest(stored_ref) != outputs_digest(reference_0):
        raise InputError(
            f"the store already holds other outputs under the reference name '{reference}' for this eval set; "
            "give the reference another generator name"
        )
    store.put_outputs(es_digest, reference_0)
    for generator in generators:
        mine = [o for o in model_outputs if o.generator == generator]
        stored = store.get_outputs(es_digest, generator)
        if stored and outputs_digest(stored) != outputs_digest(mine):
            raise InputError(
                f"the store already holds other outputs for model '{generator}' on this eval set; "
                "evaluate them under another generator name"
            )
        store.put_outputs(es_digest, mine)

    ref_by_instruction = {o.instruction: o for o in reference_0}
    pairs = [
        PairToJudge(
            instruction=o.instruction,
            output_1=ref_by_instruction[o.instruction].output,
            generator_1=reference,
            output_2=o.output,
            generator_2=o.generator,
            dataset=o.dataset if o.dataset is not None else ref_by_instruction[o.instruction].dataset,
        )
        for o in model_outputs
    ]
    report = annotate(
        store, judge, pairs, settings=settings, position=position, replicates=replicates, progress=progress
    )
    key = BoardKey(es_digest, outputs_digest(reference_0), judge.fingerprint.digest)
    run_ids: dict[str, int] = {}
    for generator in generators:
        manifest = RunManifest(
            pasture_version=pasture.__version__,
            eval_set_digest=es_digest,
            reference_digest=key.reference_digest,
            judge_digest=key.judge_digest,
            judge_name=judge.name,
            inputs={
                "eval_set": eval_set.name,
                "reference_generator": reference,
                "model_outputs_digest": outputs_digest([o for o in model_outputs if o.generator == generator]),
                "position": position,
                "replicates": str(replicates),
                **(inputs or {}),
            },
            notes=tuple(notes),
        )
        board_row = _row_of(report, generator)
        run_ids[generator] = store.put_run(
            eval_set_digest=key.eval_set_digest,
            reference_digest=key.reference_digest,
            judge_digest=key.judge_digest,
            generator=generator,
            kind=EVALUATE_RUN_KIND,
            result={
                **board_row,
                "calls": report.calls,
                "n_cached": report.n_cached,
                "n_new": report.n_new,
                "judge_fingerprint": judge.fingerprint.model_dump(mode="json"),
            },
            manifest=manifest,
        )
    return EvaluationResult(
        key=key, generators=generators, annotation=report, board=leaderboard(store, key), run_ids=run_ids
    )


def _row_of(report: AnnotationReport, generator: str) -> dict[str, Any]:
    """The model's scored row at evaluation time, recorded in its run (boards are always recomputed)."""
    frame = score_judgments(
        [j for j in report.judgments if j.generator_2 == generator], lc=False, bootstrap_resamples=0
    )
    if generator not in frame.index:
        return {}
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.loc[generator].to_dict().items()}
