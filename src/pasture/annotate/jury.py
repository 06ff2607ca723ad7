"""Judging with a jury through the engine: each member as its own judge, then the jury's verdict derived.

Why not call the jury as one judge: its members would then be cached only inside the jury's key, so a jury
with one member changed, re-weighted or aggregated differently would buy every member's verdict again, and
one member's transient failure would repeat every other member's call. Here each member runs through the
engine (:func:`pasture.annotate.annotate_async`), all members concurrently, each under its own judgment keys
(cached, claimed, retried as any judge's); the jury's judgment is then derived from them with no call
(:meth:`pasture.judges.jury.JuryJudge.combine`) and **stored** under the jury's own key, so boards, exports
and ``pasture analyze-judge`` see the jury as one judge. The stored jury judgment can always be derived again
from its members' stored judgments; ``attempts`` is 0 on it (its calls are the members').
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Literal

from pasture.annotate.engine import AnnotationReport, EngineSettings, Position, annotate_async, build_tasks
from pasture.annotate.pairs import PairToJudge
from pasture.judges.base import Verdict
from pasture.judges.jury import JuryJudge
from pasture.records import Judgment
from pasture.store import Store


def _verdict(j: Judgment) -> Verdict:
    return Verdict(
        preference=j.preference,
        status="ok" if j.status == "ok" else "parse_error",
        raw_completion=j.raw_completion,
        prompt_tokens=j.prompt_tokens,
        completion_tokens=j.completion_tokens,
        cost_usd=j.cost_usd,
    )


async def annotate_jury_async(
    store: Store,
    jury: JuryJudge,
    pairs: Sequence[PairToJudge],
    *,
    settings: EngineSettings | None = None,
    position: Position = "alpaca_eval",
    replicates: int = 1,
    progress: bool = True,
) -> tuple[AnnotationReport, dict[str, AnnotationReport]]:
    """:func:`annotate_jury` inside an event loop."""
    start = time.monotonic()
    members = await asyncio.gather(
        *(
            annotate_async(
                store, m, pairs, settings=settings, position=position, replicates=replicates, progress=progress
            )
            for m in jury.members
        )
    )
    jury_tasks = build_tasks(jury.fingerprint.digest, pairs, position=position, replicates=replicates)
    member_tasks = [
        build_tasks(m.fingerprint.digest, pairs, position=position, replicates=replicates) for m in jury.members
    ]
    found = [{j.key: j for j in report.judgments} for report in members]
    before = store.get_judgments_by_key(t.key for t in jury_tasks)
    out: list[Judgment] = []
    n_cached = n_new = n_error = n_parse = n_missing = 0
    for i, task in enumerate(jury_tasks):
        old = before.get(task.key)
        if old is not None and old.status == "ok":
            out.append(old)
            n_cached += 1
            continue
        got = [found[m].get(member_tasks[m][i].key) for m in range(len(jury.members))]
        if any(g is None for g in got):  # a member's run was aborted or interrupted first
            n_missing += 1
            continue
        judgments = [g for g in got if g is not None]
        verdict = jury.combine([_verdict(g) for g in judgments])
        errors = [f"{m.name}: {g.error}" for m, g in zip(jury.members, judgments, strict=True) if g.status == "error"]
        status: Literal["ok", "parse_error", "error"] = (
            "ok" if verdict.status == "ok" else "error" if errors else "parse_error"
        )
        record = Judgment(
            judge_digest=jury.fingerprint.digest,
            judge_name=jury.name,
            instruction=task.pair.instruction,
            output_1=task.pair.output_1,
            generator_1=task.pair.generator_1,
            output_2=task.pair.output_2,
            generator_2=task.pair.generator_2,
            shown_first=task.shown_first,
            replicate=task.replicate,
            dataset=task.pair.dataset,
            status=status,
            preference=verdict.preference if status == "ok" else None,
            raw_completion=verdict.raw_completion,
            prompt_tokens=verdict.prompt_tokens,
            completion_tokens=verdict.completion_tokens,
            cost_usd=verdict.cost_usd,
            error="; ".join(errors) or verdict.error,
            attempts=0,
        )
        out.append(record)
        n_new += status == "ok"
        n_error += status == "error"
        n_parse += status == "parse_error"
    store.put_judge(jury.name, jury.fingerprint)
    store.put_judgments([j for j in out if j.key not in before or before[j.key].status != "ok"])
    costs = [r.cost_usd for r in members if r.calls]
    report = AnnotationReport(
        judge_name=jury.name,
        judge_digest=jury.fingerprint.digest,
        judgments=tuple(out),
        n_judgments=len(jury_tasks),
        n_cached=n_cached,
        n_new=n_new,
        n_by_others=0,
        n_parse_error=n_parse,
        n_error=n_error,
        n_missing=n_missing,
        calls=sum(r.calls for r in members),
        transient_retries=sum(r.transient_retries for r in members),
        parse_retries=sum(r.parse_retries for r in members),
        prompt_tokens=sum(r.prompt_tokens for r in members),
        completion_tokens=sum(r.completion_tokens for r in members),
        cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        wall_s=time.monotonic() - start,
        aborted=next((f"member {r.judge_name}: {r.aborted}" for r in members if r.aborted), None),
    )
    return report, {m.name: r for m, r in zip(jury.members, members, strict=True)}


def annotate_jury(
    store: Store,
    jury: JuryJudge,
    pairs: Sequence[PairToJudge],
    *,
    settings: EngineSettings | None = None,
    position: Position = "alpaca_eval",
    replicates: int = 1,
    progress: bool = True,
) -> tuple[AnnotationReport, dict[str, AnnotationReport]]:
    """Judge ``pairs`` with every member of ``jury`` (concurrently, each cached under its own keys), then
    derive and store the jury's judgments; returns the jury's report and each member's, by member name.

    The jury's report counts like any :class:`AnnotationReport`: ``n_cached`` are jury judgments already
    stored, ``n_new`` the ones derived now, ``calls`` and tokens add up over the members' runs. A jury
    judgment whose member failed is stored failed (``error`` when a member's call failed, ``parse_error``
    when its reply was unreadable) and derived again by the next run once the member is retried.
    """
    return asyncio.run(
        annotate_jury_async(
            store, jury, pairs, settings=settings, position=position, replicates=replicates, progress=progress
        )
    )
