"""Judging ONE response at a time (critiques, scores, rule checks) through the annotation engine.

Everything the engine does for pairs holds here too (``engine.run_tasks`` is shared): answers the store
already holds with status 'ok' cost no call, other keys are claimed so processes sharing a store split the
work, transient failures are retried with backoff, unparsable replies are retried ``parse_retries`` times
and then stored with their raw text, failures are stored and retried by the next run, and every judgment is
written as it completes, so a killed run resumes where it stopped. Records are
:class:`~pasture.records.ResponseJudgment`, keyed by :func:`~pasture.records.response_judgment_key`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pasture.annotate.engine import RESPONSE_RECORDS, AnnotationReport, EngineSettings, Outcome, run_tasks
from pasture.errors import InputError
from pasture.judges.base import ResponseJudge, ResponseRequest, ResponseVerdict
from pasture.records import ModelOutput, ResponseJudgment, response_judgment_key
from pasture.store import Store


@dataclass(frozen=True, slots=True)
class ResponseToJudge:
    """One output to judge on its own.

    Attributes
    ----------
    instruction:
        The prompt the output answers.
    output, generator:
        The output and who wrote it.
    reference:
        A reference answer, for judges that read one (reference-guided scoring); ignored by the others.
    subject:
        What the output is checked against beyond the instruction (e.g. a rule's full text), for judges that
        read one; ignored by the others.
    dataset:
        Category of the instruction, carried into the judgment.
    """

    instruction: str
    output: str
    generator: str
    reference: str | None = None
    subject: str | None = None
    dataset: str | None = None


def responses_from_outputs(outputs: Iterable[ModelOutput]) -> list[ResponseToJudge]:
    """One item per model output (instruction, output, generator, dataset), in order."""
    return [
        ResponseToJudge(instruction=o.instruction, output=o.output, generator=o.generator, dataset=o.dataset)
        for o in outputs
    ]


@dataclass(frozen=True, slots=True)
class ResponseTask:
    """One single-response judgment to obtain: the item as the judge sees it, its replicate, and its key.

    ``reference``/``subject`` hold only what the judge reads (the rest is None), so the key covers exactly
    what can change the verdict.
    """

    key: str
    item: ResponseToJudge
    reference: str | None
    subject: str | None
    replicate: int
    annotator: str | None = None

    def request(self) -> ResponseRequest:
        return ResponseRequest(
            instruction=self.item.instruction,
            output=self.item.output,
            reference=self.reference,
            subject=self.subject,
            replicate=self.replicate,
        )

    async def ask(self, judge: ResponseJudge) -> ResponseVerdict:
        return await judge.judge_response(self.request())

    def estimate(self, judge: ResponseJudge) -> tuple[int, int]:
        return judge.estimate_tokens(self.request())

    def record(
        self, judge_digest: str, judge_name: str, outcome: Outcome, verdict: ResponseVerdict | None
    ) -> ResponseJudgment:
        ok = verdict is not None and outcome.status == "ok"
        return ResponseJudgment(
            judge_digest=judge_digest,
            judge_name=judge_name,
            instruction=self.item.instruction,
            output=self.item.output,
            generator=self.item.generator,
            reference=self.reference,
            subject=self.subject,
            replicate=self.replicate,
            annotator=self.annotator,
            dataset=self.item.dataset,
            status=outcome.status,
            score=verdict.score if ok and verdict is not None else None,
            verdict=verdict.verdict if ok and verdict is not None else None,
            critique=verdict.critique if ok and verdict is not None else None,
            raw_completion=outcome.raw_completion,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cost_usd=outcome.cost_usd,
            latency_s=outcome.latency_s,
            error=outcome.error,
            attempts=outcome.attempts,
        )


def _check_judge(judge: Any) -> None:
    if not callable(getattr(judge, "judge_response", None)) or getattr(judge, "kind", "response") != "response":
        raise InputError(
            f"judge {getattr(judge, 'name', judge)!r} compares pairs; annotate_responses needs a single-response "
            "judge (protocol critique, response_score, or a ProgrammaticResponseJudge)"
        )


def build_response_tasks(
    judge: ResponseJudge,
    items: Iterable[ResponseToJudge],
    *,
    replicates: int = 1,
    annotator: str | None = None,
) -> list[ResponseTask]:
    """The distinct single-response judgments needed for ``items``, in item order (repeats judged once).

    Fields the judge does not read are dropped (an unused reference never splits the cache); a field it
    reads must be present: an item without it is an :class:`InputError` naming the item.
    """
    _check_judge(judge)
    if replicates < 1:
        raise InputError(f"replicates must be at least 1, got {replicates}")
    digest = judge.fingerprint.digest
    reads = judge.reads
    tasks: dict[str, ResponseTask] = {}
    for i, item in enumerate(items):
        reference = item.reference if "reference" in reads else None
        subject = item.subject if "subject" in reads else None
        for name, value in (("reference", reference), ("subject", subject)):
            if name in reads and value is None:
                raise InputError(
                    f"item {i} (generator {item.generator!r}, instruction {item.instruction[:60]!r}) has no {name}, "
                    f"which judge {judge.name!r} reads; give every item a {name}"
                )
        for replicate in range(replicates):
            key = response_judgment_key(
                digest,
                item.instruction,
                item.output,
                reference=reference,
                subject=subject,
                replicate=replicate,
                annotator=annotator,
            )
            if key not in tasks:
                tasks[key] = ResponseTask(
                    key=key, item=item, reference=reference, subject=subject, replicate=replicate, annotator=annotator
                )
    return list(tasks.values())


async def annotate_responses_async(
    store: Store,
    judge: ResponseJudge,
    items: Sequence[ResponseToJudge],
    *,
    settings: EngineSettings | None = None,
    replicates: int = 1,
    annotator: str | None = None,
    progress: bool = True,
) -> AnnotationReport[ResponseJudgment]:
    """:func:`annotate_responses` for callers already inside an event loop."""
    tasks = build_response_tasks(judge, items, replicates=replicates, annotator=annotator)
    return await run_tasks(
        store, judge, tasks, settings if settings is not None else EngineSettings(), kind=RESPONSE_RECORDS,
        progress=progress,
    )  # fmt: skip


def annotate_responses(
    store: Store,
    judge: ResponseJudge,
    items: Sequence[ResponseToJudge],
    *,
    settings: EngineSettings | None = None,
    replicates: int = 1,
    annotator: str | None = None,
    progress: bool = True,
) -> AnnotationReport[ResponseJudgment]:
    """Judge each output of ``items`` on its own with ``judge`` and store every judgment; returns what happened.

    Parameters
    ----------
    store:
        The pasture store: read for cached judgments, written as each judgment completes, used for claims.
    judge:
        A single-response judge (:class:`~pasture.judges.base.ResponseJudge`: an ``LLMJudge`` of protocol
        ``critique`` or ``response_score``, a :class:`~pasture.judges.ProgrammaticResponseJudge`, ...); its
        fingerprint digest is part of every key.
    items:
        The outputs to judge (:class:`ResponseToJudge`); a repeated question is judged once.
    settings:
        The engine's knobs (concurrency, rate limits, retries, timeouts, claims; :class:`EngineSettings`);
        its defaults when None.
    replicates:
        Independent judgments per output (the replicate index is part of the key).
    annotator:
        An independent annotator's name, part of every key when given (docs/simulate.md).
    progress:
        Show a progress bar on stderr.

    The report counts every judgment asked for (``report.ok`` is False when any failed); failed judgments
    are stored with their error and raw reply and retried by the next run.
    """
    return asyncio.run(
        annotate_responses_async(
            store, judge, items, settings=settings, replicates=replicates, annotator=annotator, progress=progress
        )
    )
