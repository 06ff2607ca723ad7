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
from pathlib import Path
from typing import Any

import numpy as np

from pasture.annotate import AnnotationReport, EngineSettings, PairToJudge, Position, annotate
from pasture.errors import InputError
from pasture.evalsets import alpaca_eval_reference
from pasture.io import read_model_outputs
from pasture.judges.base import Judge
from pasture.judges.jury import JuryJudge
from pasture.leaderboard import EVALUATE_RUN_KIND, BoardKey, Leaderboard, leaderboard
from pasture.metrics.sequential import SequentialResult, run_to_decision, run_to_width, seeded_order
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


def judge_pairs(
    store: Store,
    judge: Judge,
    pairs: Sequence[PairToJudge],
    *,
    settings: EngineSettings | None,
    position: Position,
    replicates: int,
    progress: bool,
) -> AnnotationReport:
    """:func:`pasture.annotate.annotate`, except that a :class:`~pasture.judges.jury.JuryJudge` is judged
    member by member (:func:`pasture.annotate.jury.annotate_jury`: each member cached under its own keys)."""
    if isinstance(judge, JuryJudge):
        from pasture.annotate.jury import annotate_jury

        jury_report, _ = annotate_jury(
            store, judge, pairs, settings=settings, position=position, replicates=replicates, progress=progress
        )
        return jury_report
    return annotate(store, judge, pairs, settings=settings, position=position, replicates=replicates, progress=progress)


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


def check_reference(eval_set: EvalSet, reference_outputs: Sequence[ModelOutput]) -> tuple[str, list[ModelOutput]]:
    """The reference's generator name and its first sample per instruction, checked to answer the eval set
    (:func:`check_outputs`); more than one generator is an InputError. Every board's reference goes through it."""
    references = {o.generator for o in reference_outputs}
    if len(references) != 1:
        raise InputError(f"the reference must come from one generator, got {sorted(references) or 'none'}")
    reference_0 = [o for o in reference_outputs if o.sample_index == 0]
    check_outputs(eval_set, reference_0, role="reference")
    return references.pop(), reference_0


def _refuse_reference_as_model(reference: str, generators: Sequence[str]) -> None:
    """A model named like the reference would share its outputs' identity in the store, so its verdicts
    would be the reference judged against itself: an error, never a silent 50 %."""
    if reference in generators:
        raise InputError(f"'{reference}' is both the reference and a model; rename one of them")


def load_reference_outputs(
    store: Store,
    eval_set: EvalSet,
    *,
    reference_generator: str | None = None,
    reference_path: str | Path | None = None,
    official: bool = False,
    alpaca_eval_file: str | Path | None = None,
    file_eval_set: EvalSet | None = None,
) -> list[ModelOutput]:
    """A board's reference outputs for ``eval_set``, from one source: ``reference_generator`` (its outputs
    already in the store for this eval set), ``reference_path`` (a ``model_outputs.json``-shaped file), or
    ``official`` (AlpacaEval 2's reference, from ``alpaca_eval_file`` when given, else the hub).

    Why one function: every command that judges against a reference (``pasture evaluate``,
    ``pasture gamed-baselines``) must find the same reference for the same options, or their runs would not
    share a board.

    A file is checked against ``file_eval_set`` (default ``eval_set``; a whole eval set of which ``eval_set``
    is a subset lets a full file serve ``--limit``); a file's and the official outputs are then cut to
    ``eval_set``'s instructions. Outputs from the store are returned as stored: the pipeline checks them.
    """
    if reference_generator is not None and reference_path is not None:
        raise InputError("give a reference file or a reference generator, not both", param="reference_generator")
    if reference_generator is not None:
        stored = store.get_outputs(eval_set.digest, reference_generator)
        if not stored:
            raise InputError(
                f"no outputs of '{reference_generator}' on eval set '{eval_set.name}' in {store.path}",
                param="reference_generator",
            )
        return stored
    if reference_path is not None:
        rows = read_model_outputs(reference_path, eval_set=file_eval_set or eval_set)
    elif official:
        rows = alpaca_eval_reference(alpaca_eval_file)
    else:
        raise InputError(
            "give the reference outputs: a file, a generator in the store, or the official ones", param="reference_path"
        )
    keep = set(eval_set.texts())
    return [o for o in rows if o.instruction in keep]


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
    if not model_outputs:
        raise InputError("no model outputs to evaluate")
    reference, reference_0 = check_reference(eval_set, reference_outputs)
    check_outputs(eval_set, model_outputs, role="model")
    generators = tuple(dict.fromkeys(o.generator for o in model_outputs))
    _refuse_reference_as_model(reference, generators)

    es_digest = _store_inputs(store, eval_set, reference, reference_0, model_outputs, generators)
    pairs = _pairs_against(reference, reference_0, model_outputs)
    report = judge_pairs(
        store, judge, pairs, settings=settings, position=position, replicates=replicates, progress=progress
    )
    return _record_runs(
        store,
        report,
        judge=judge,
        eval_set=eval_set,
        es_digest=es_digest,
        reference=reference,
        reference_0=reference_0,
        model_outputs=model_outputs,
        generators=generators,
        run_inputs={"position": position, "replicates": str(replicates), **(inputs or {})},
        run_result={"calls": report.calls, "n_cached": report.n_cached, "n_new": report.n_new},
        notes=tuple(notes),
    )


def _pairs_against(
    reference: str, reference_0: Sequence[ModelOutput], outputs: Sequence[ModelOutput]
) -> list[PairToJudge]:
    """One pair per output, the reference's output in slot 1; the dataset is the output's, else the reference's."""
    ref = {o.instruction: o for o in reference_0}
    return [
        PairToJudge(
            instruction=o.instruction,
            output_1=ref[o.instruction].output,
            generator_1=reference,
            output_2=o.output,
            generator_2=o.generator,
            dataset=o.dataset if o.dataset is not None else ref[o.instruction].dataset,
        )
        for o in outputs
    ]


def _record_runs(
    store: Store,
    report: AnnotationReport,
    *,
    judge: Judge,
    eval_set: EvalSet,
    es_digest: str,
    reference: str,
    reference_0: Sequence[ModelOutput],
    model_outputs: Sequence[ModelOutput],
    generators: tuple[str, ...],
    run_inputs: dict[str, str],
    run_result: dict[str, Any],
    notes: tuple[str, ...],
) -> EvaluationResult:
    """Record an ``evaluate`` run per generator (its manifest, and its scored row from ``report``), then read
    the board back.

    Why one place: a plain and a budget-aware evaluation put the same run on the same board, and the board
    reads both the same way; they differ only in ``run_inputs`` (manifest inputs after the eval set, the
    reference and the outputs' digest) and ``run_result`` (between the scored row and the judge's fingerprint).
    """
    import pasture

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
                **run_inputs,
            },
            notes=notes,
        )
        run_ids[generator] = store.put_run(
            eval_set_digest=key.eval_set_digest,
            reference_digest=key.reference_digest,
            judge_digest=key.judge_digest,
            generator=generator,
            kind=EVALUATE_RUN_KIND,
            result={
                **_row_of(report, generator),
                **run_result,
                "judge_fingerprint": judge.fingerprint.model_dump(mode="json"),
            },
            manifest=manifest,
        )
    return EvaluationResult(
        key=key, generators=generators, annotation=report, board=leaderboard(store, key), run_ids=run_ids
    )


def _store_inputs(
    store: Store,
    eval_set: EvalSet,
    reference: str,
    reference_0: Sequence[ModelOutput],
    model_outputs: Sequence[ModelOutput],
    generators: Sequence[str],
) -> str:
    """Store the eval set and both sets of outputs; outputs stored earlier under the same name must be equal.

    Returns the eval set's digest.
    """
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
    return es_digest


def _row_of(report: AnnotationReport, generator: str) -> dict[str, Any]:
    """The model's scored row at evaluation time, recorded in its run (boards are always recomputed)."""
    frame = score_judgments(
        [j for j in report.judgments if j.generator_2 == generator], lc=False, bootstrap_resamples=0
    )
    if generator not in frame.index:
        return {}
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.loc[generator].to_dict().items()}


# -- budget-aware evaluation ------------------------------------------------------------------------------------

BUDGET_RUN_NOTE = (
    "budget-aware run: the confidence sequence's guarantee covers the raw win rate and the paired difference "
    "at the stop; LC is computed afterwards on the judged instructions and is not covered by it"
)


@dataclass(frozen=True)
class BudgetRule:
    """When a budget-aware evaluation stops (docs/evaluate.md, "Budget-aware evaluation").

    Exactly one of ``target_ci`` and ``decide_against`` is set.

    Attributes
    ----------
    target_ci:
        Stop once the 95%-style (1 − alpha) confidence sequence of the raw win rate is at most ± this many
        points (0–100 scale).
    decide_against:
        Stop once the paired difference between the model and this model (same reference, same judge) is
        decided: its confidence sequence excludes 0.
    seed:
        Seed of the judging order (:func:`pasture.metrics.sequential.seeded_order`); recorded in the manifest.
    alpha:
        Error rate the confidence sequence guarantees at any stopping time.
    min_n:
        The rule is not checked before this many instructions.
    chunk:
        Instructions judged per round (None: four times the engine's concurrency). Only a round's overshoot
        past the stop depends on it, never the result.
    """

    target_ci: float | None = None
    decide_against: str | None = None
    seed: int = 0
    alpha: float = 0.05
    min_n: int = 10
    chunk: int | None = None

    def validate(self) -> None:
        """Raise an InputError naming the first setting out of range (its ``param`` is the attribute)."""
        if (self.target_ci is None) == (self.decide_against is None):
            raise InputError("give exactly one of target_ci and decide_against", param="target_ci")
        if self.target_ci is not None and not 0 < self.target_ci < 50:
            raise InputError(
                f"target_ci is a half-width in points, in (0, 50); got {self.target_ci}", param="target_ci"
            )
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha must be in (0, 1), got {self.alpha}", param="alpha")
        if self.min_n < 1:
            raise InputError(f"min_n must be at least 1, got {self.min_n}", param="min_n")
        if self.chunk is not None and self.chunk < 1:
            raise InputError(f"chunk must be at least 1, got {self.chunk}", param="chunk")

    @property
    def name(self) -> str:
        """The rule as the manifest records it."""
        if self.target_ci is not None:
            return f"target_ci={self.target_ci:g}"
        return f"decide_against={self.decide_against}"


@dataclass(frozen=True)
class BudgetedEvaluation:
    """What :func:`evaluate_budgeted` did.

    ``sequential`` is the stopping rule's result on the prefix of the seeded order (None when not one
    instruction of the order has a verdict); ``n_judged`` the instructions of the order whose judgments were
    asked for (the stopping prefix plus the last round's overshoot); ``n_failed`` the judgments in that part
    still without a verdict; ``calls`` the judge calls made (retries included) over all rounds.
    """

    evaluation: EvaluationResult
    rule: BudgetRule
    sequential: SequentialResult | None
    population: int
    n_judged: int
    judgments_per_instruction: int
    n_failed: int
    calls: int
    rounds: int

    @property
    def calls_saved(self) -> int:
        """Judgments a full run would have asked for that this one did not."""
        return (self.population - self.n_judged) * self.judgments_per_instruction

    def summary(self) -> str:
        seq = self.sequential
        lines = [f"budget rule {self.rule.name} (order seed {self.rule.seed}, alpha {self.rule.alpha:g}):"]
        if seq is None:
            lines.append(f"no verdict yet in the order's prefix ({self.n_failed} failed judgments; rerun to retry)")
        else:
            what = "stopped" if seq.stopped else "not met; the whole eval set was used"
            if seq.rule == "decide":
                verdict = {1: "better", -1: "worse", 0: "undecided"}[seq.decision]
                what += f": {verdict} than {self.rule.decide_against}, difference"
            else:
                what += ": win rate"
            lines.append(
                f"{what} {seq.estimate:.1f} [{seq.low:.1f}, {seq.high:.1f}] on the first {seq.n_used} of "
                f"{self.population} instructions"
            )
        lines.append(
            f"{self.n_judged} of {self.population} instructions judged in {self.rounds} rounds, {self.calls} calls; "
            f"{self.calls_saved} judgments saved; {self.n_failed} failed"
        )
        return "\n".join(lines)


def _per_instruction(
    report: AnnotationReport, pairs: Sequence[PairToJudge], texts: Sequence[str]
) -> tuple[np.ndarray, int]:
    """``preference - 1`` per instruction of ``texts`` (mean over its judgments; NaN while any of them has no
    verdict) for the model of ``pairs``, and the number of judgments without a verdict.

    Judgments are matched by their content (instruction, model output), not by generator: a key has no
    generator in it, so two models with the same output share one judgment.
    """
    prefs: dict[tuple[str, str], list[float | None]] = {}
    for j in report.judgments:
        prefs.setdefault((j.instruction, j.output_2), []).append(j.preference if j.status == "ok" else None)
    by_text = {p.instruction: p for p in pairs}
    x = np.full(len(texts), np.nan)
    failed = 0
    for i, text in enumerate(texts):
        got = prefs.get((text, by_text[text].output_2), [])
        failed += sum(v is None for v in got)
        if got and all(v is not None for v in got):
            x[i] = float(np.mean([v for v in got if v is not None])) - 1.0
    return x, failed


def _verdict_prefix(*xs: np.ndarray) -> int:
    """Length of the longest prefix of the order in which every instruction has a verdict (for every model)."""
    bad = np.zeros(len(xs[0]), dtype=bool)
    for x in xs:
        bad |= np.isnan(x)
    hits = np.flatnonzero(bad)
    return int(hits[0]) if len(hits) else len(bad)


def evaluate_budgeted(
    store: Store,
    *,
    eval_set: EvalSet,
    model_outputs: Sequence[ModelOutput],
    reference_outputs: Sequence[ModelOutput],
    judge: Judge,
    rule: BudgetRule,
    against_outputs: Sequence[ModelOutput] = (),
    position: Position = "alpaca_eval",
    replicates: int = 1,
    settings: EngineSettings | None = None,
    progress: bool = True,
    notes: Sequence[str] = (),
    inputs: dict[str, str] | None = None,
) -> BudgetedEvaluation:
    """Judge one model in a seeded random order of the eval set and stop as soon as ``rule`` is met.

    Why: a user who wants an interval of a given width, or to know whether this model beats another, gets it
    from a prefix of the eval set; the confidence sequence (:mod:`pasture.metrics.sequential`) keeps its
    error rate whatever the stopping time.

    How: the instructions are put in the order ``seeded_order(N, rule.seed)`` and judged in rounds of
    ``rule.chunk``; after each round the rule (:func:`~pasture.metrics.sequential.run_to_width` or
    :func:`~pasture.metrics.sequential.run_to_decision`) is run on the longest **prefix of that order** whose
    instructions all have verdicts, never on what happened to finish first. With ``decide_against`` the other
    model's outputs come from ``against_outputs`` or, when none are given, from the store; its judgments
    (same reference, same judge) are reused from the store or bought in the same order.

    A failed judgment is never skipped: it ends the prefix the rule sees, is asked again in every later round
    (only 'ok' judgments are final in the store), and is counted in ``n_failed``. If it still fails when the
    order runs out, the rule stops short of it and the result says so; a rerun retries it. Everything judged
    is in the store, so a rerun with the same seed replays the order from the store without a call.

    The model gets an ``evaluate`` run on the board (and so does ``against_outputs``' model when given), whose
    result records the rule and ``n_used``/``n_judged``/``population``/``calls_saved``; the board's row
    scores every judged instruction, and its LC win rate is not covered by the rule's guarantee (a note says
    so). Other parameters are those of :func:`evaluate`.
    """
    rule.validate()
    engine = settings if settings is not None else EngineSettings()
    engine.validate()
    generators = tuple(dict.fromkeys(o.generator for o in model_outputs))
    if len(generators) != 1:
        raise InputError(f"a budget-aware evaluation judges one model; got {len(generators)}: {list(generators)}")
    model = generators[0]
    reference, reference_0 = check_reference(eval_set, reference_outputs)
    check_outputs(eval_set, model_outputs, role="model")
    _refuse_reference_as_model(reference, generators)
    if len(model_outputs) != len(eval_set):
        raise InputError(
            f"a budget-aware evaluation needs one output per instruction; '{model}' has {len(model_outputs)} "
            f"for {len(eval_set)} instructions (samples > 1?)"
        )
    against = rule.decide_against
    if against is not None and against in (model, reference):
        raise InputError(
            f"decide_against names '{against}', which is the model or the reference", param="decide_against"
        )
    if against_outputs:
        if {o.generator for o in against_outputs} != {against}:
            raise InputError(f"against_outputs must all come from '{against}'", param="decide_against")
        check_outputs(eval_set, against_outputs, role="decide-against")
    mine = [*model_outputs, *against_outputs]
    recorded = (model, against) if against_outputs and against is not None else (model,)
    es_digest = _store_inputs(store, eval_set, reference, reference_0, mine, recorded)
    other: list[ModelOutput] = []
    if against is not None:
        other = [o for o in store.get_outputs(es_digest, against) if o.sample_index == 0]
        if not other:
            raise InputError(
                f"no outputs of '{against}' on eval set '{eval_set.name}' in the store: evaluate it first, or "
                "pass its outputs",
                param="decide_against",
            )
        check_outputs(eval_set, other, role="decide-against")

    # one output per instruction (checked above): the pairs by instruction
    pairs_a = {p.instruction: p for p in _pairs_against(reference, reference_0, model_outputs)}
    pairs_b = {p.instruction: p for p in _pairs_against(reference, reference_0, other)}
    texts = eval_set.texts()
    population = len(texts)
    ordered = [texts[i] for i in seeded_order(population, rule.seed)]
    chunk = rule.chunk if rule.chunk is not None else 4 * engine.concurrency
    end, calls, rounds = 0, 0, 0
    seq: SequentialResult | None = None
    while True:
        end = min(population, end + chunk)
        prefix = ordered[:end]
        asked = [pairs_a[t] for t in prefix] + [pairs_b[t] for t in prefix if pairs_b]
        report = judge_pairs(
            store, judge, asked, settings=engine, position=position, replicates=replicates, progress=progress
        )
        calls += report.calls
        rounds += 1
        x_a, failed = _per_instruction(report, list(pairs_a.values()), prefix)
        xs = [x_a]
        if pairs_b:
            x_b, failed_b = _per_instruction(report, list(pairs_b.values()), prefix)
            xs.append(x_b)
            failed += failed_b
        n_ok = _verdict_prefix(*xs)
        seq = None
        if n_ok:
            if pairs_b:
                seq = run_to_decision(xs[0][:n_ok], xs[1][:n_ok], population, alpha=rule.alpha, min_n=rule.min_n)
            else:
                seq = run_to_width(xs[0][:n_ok], population, half_width=float(rule.target_ci or 0), alpha=rule.alpha,
                                   min_n=rule.min_n)  # fmt: skip
        if (seq is not None and seq.stopped) or end == population or report.aborted:
            break

    per_instruction = (2 if position == "both" else 1) * replicates
    budget: dict[str, Any] = {
        "budget_rule": rule.name,
        "budget_seed": rule.seed,
        "budget_alpha": rule.alpha,
        "budget_population": population,
        "budget_n_judged": end,
        "budget_calls_saved": (population - end) * per_instruction,
        "budget_n_failed": failed,
        "budget_n_used": seq.n_used if seq is not None else 0,
        "budget_stopped": bool(seq is not None and seq.stopped),
        "budget_sequential": seq.model_dump(mode="json") if seq is not None else None,
    }
    evaluation = _record_runs(
        store,
        report,
        judge=judge,
        eval_set=eval_set,
        es_digest=es_digest,
        reference=reference,
        reference_0=reference_0,
        model_outputs=mine,
        generators=recorded,
        run_inputs={
            "position": position,
            "replicates": str(replicates),
            "budget_rule": rule.name,
            "budget_seed": str(rule.seed),
            "budget_alpha": str(rule.alpha),
            **(inputs or {}),
        },
        run_result={"calls": calls, **budget},
        notes=(*notes, BUDGET_RUN_NOTE),
    )
    return BudgetedEvaluation(
        evaluation=evaluation,
        rule=rule,
        sequential=seq,
        population=population,
        n_judged=end,
        judgments_per_instruction=per_instruction,
        n_failed=failed,
        calls=calls,
        rounds=rounds,
    )
