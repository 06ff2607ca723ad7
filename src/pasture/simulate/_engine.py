"""The simulator's adapter to the annotation engine (``pasture.annotate``).

The engine owns keys, the store cache, claims, retries and resume; the simulator only needs each question
asked in the order its pool drew (``shown_first`` per example). The engine takes a position policy per
call, so questions are sent in two batches: those shown slot 1 first (``reference_first``) and those shown
slot 2 first (``model_first``). Keys, and so cached verdicts, are the same as for any other caller, plus the
``annotator`` of an independent pool member (docs/simulate.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pasture.annotate import PairToJudge
from pasture.annotate.engine import PAIRWISE_RECORDS, EngineSettings, build_tasks, run_tasks
from pasture.judges.base import Judge
from pasture.records import Judgment, judgment_key
from pasture.store import Store

_POSITION = {1: "reference_first", 2: "model_first"}

SIMULATOR_ENGINE = EngineSettings(concurrency=1)
"""The simulator's engine settings when none are given: one call at a time, since pool members are often
local models running in this process, where calls in parallel only compete for the same cores."""


@dataclass(frozen=True)
class Question:
    """One pair to ask a judge, by slot, with the order it is shown in."""

    instruction: str
    output_1: str
    generator_1: str
    output_2: str
    generator_2: str
    shown_first: Literal[1, 2]
    dataset: str | None = None

    def key(self, judge_digest: str, annotator: str | None = None) -> str:
        return judgment_key(
            judge_digest, self.instruction, self.output_1, self.output_2, self.shown_first, annotator=annotator
        )

    def pair(self) -> PairToJudge:
        return PairToJudge(
            instruction=self.instruction,
            output_1=self.output_1,
            generator_1=self.generator_1,
            output_2=self.output_2,
            generator_2=self.generator_2,
            dataset=self.dataset,
        )


async def judge_cached(
    store: Store,
    judge: Judge,
    questions: Sequence[Question],
    *,
    settings: EngineSettings | None = None,
    progress: bool = False,
    annotator: str | None = None,
) -> tuple[list[Judgment | None], int]:
    """Judgments for ``questions`` (in order; None where the run left one unresolved) and the judge calls
    this process made (retries included; what the store already held costs none). ``annotator`` (an
    independent member's name) enters every key when given."""
    digest = judge.fingerprint.digest
    found: dict[str, Judgment] = {}
    calls = 0
    for shown_first, position in _POSITION.items():
        batch = [q.pair() for q in questions if q.shown_first == shown_first]
        if not batch:
            continue
        tasks = build_tasks(digest, batch, position=position, annotator=annotator)  # type: ignore[arg-type]
        report = await run_tasks(
            store,
            judge,
            tasks,
            settings if settings is not None else SIMULATOR_ENGINE,
            kind=PAIRWISE_RECORDS,
            progress=progress,
        )
        calls += report.calls
        found.update({j.key: j for j in report.judgments})
    return [found.get(q.key(digest, annotator)) for q in questions], calls
