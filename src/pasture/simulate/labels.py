"""Simulated preference labels: sampling pairs of outputs and labeling them with an annotator pool."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pasture.annotate import EngineSettings
from pasture.errors import InputError
from pasture.judges.base import Judge
from pasture.judges.batched import BatchedJudge
from pasture.records import JudgmentStatus, ModelOutput, canonical_json, sha256_text
from pasture.simulate._engine import SIMULATOR_ENGINE, Question, judge_cached
from pasture.simulate.noise import example_key, flip_label, uniform_draw
from pasture.simulate.pool import AnnotatorPool, PoolMember
from pasture.store import Store

PAIR_STREAM = "pair"
"""Stream name of the draw that ranks candidate pairs of one instruction."""
SLOT_STREAM = "slot"
"""Stream name of the draw that decides which output of a sampled pair goes in slot 1."""


class OutputPair(BaseModel):
    """Two outputs for one instruction, by slot (slot 1 and slot 2 are symmetric in simulation)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instruction: str
    output_1: str
    generator_1: str
    output_2: str
    generator_2: str
    sample_index_1: int = 0
    sample_index_2: int = 0
    dataset: str | None = None

    @property
    def key(self) -> str:
        """The example key: SHA-256 of (instruction, output_1, output_2); every draw about the pair uses it."""
        return example_key(self.instruction, self.output_1, self.output_2)


class SimulatedLabel(BaseModel):
    """One pair labeled by one pool member: the clean verdict, and the noisy label derived from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pair: OutputPair
    example_key: str = Field(description="OutputPair.key.")
    annotator: str = Field(description="Name of the pool member that labeled the pair.")
    judge_digest: str = Field(description="Fingerprint digest of that member's judge.")
    judgment_key: str = Field(description="Key of the cached clean judgment in the store.")
    shown_first: Literal[1, 2] = Field(description="Slot the member saw first.")
    status: JudgmentStatus = Field(description="Status of the clean judgment; only 'ok' labels are usable.")
    clean_preference: float | None = Field(description="The member's verdict by slot (1..2); None unless ok.")
    flipped: bool = Field(description="Whether the noise draw flipped the label (decided for every label).")
    preference: float | None = Field(description="The noisy label: 3 - clean if flipped else clean.")


@dataclass(frozen=True)
class PairSample:
    """Pairs sampled from outputs, and what could not be paired (never silently dropped)."""

    pairs: list[OutputPair]
    n_instructions: int
    skipped_instructions: list[str]
    """Instructions with fewer than two distinct output texts: nothing to compare."""


def sample_pairs(outputs: Sequence[ModelOutput], *, seed: int = 0, pairs_per_instruction: int = 1) -> PairSample:
    """Sample pairs of distinct outputs per instruction, deterministically from ``seed``.

    For each instruction (in first-seen order) every unordered pair of outputs with different texts is a
    candidate; candidates are ranked by ``uniform_draw(candidate_id, seed, "pair")`` and the first
    ``pairs_per_instruction`` are kept. The slot order of a kept pair is another draw (``"slot"``), so
    slot 1 is not biased toward one generator. A candidate's id is the SHA-256 of the canonical JSON of the
    two outputs' (generator, sample_index, text), sorted, so the result does not depend on input order.
    """
    if pairs_per_instruction < 1:
        raise InputError(f"pairs_per_instruction must be >= 1, got {pairs_per_instruction}")
    groups: dict[str, list[ModelOutput]] = defaultdict(list)
    seen: set[tuple[str, str, int]] = set()
    for out in outputs:
        ident = (out.instruction, out.generator, out.sample_index)
        if ident in seen:
            raise InputError(
                f"output of generator '{out.generator}' with sample_index {out.sample_index} is repeated for "
                f"the instruction {out.instruction[:60]!r}"
            )
        seen.add(ident)
        groups[out.instruction].append(out)
    pairs: list[OutputPair] = []
    skipped: list[str] = []
    for instruction, group in groups.items():
        ranked = sorted(group, key=lambda o: (o.generator, o.sample_index))
        candidates = []
        for a, b in combinations(ranked, 2):
            if a.output == b.output:
                continue
            cid = sha256_text(
                canonical_json([[a.generator, a.sample_index, a.output], [b.generator, b.sample_index, b.output]])
            )
            candidates.append((uniform_draw(cid, seed, PAIR_STREAM), cid, a, b))
        if not candidates:
            skipped.append(instruction)
            continue
        candidates.sort(key=lambda c: (c[0], c[1]))
        for _, cid, a, b in candidates[:pairs_per_instruction]:
            if uniform_draw(cid, seed, SLOT_STREAM) < 0.5:
                a, b = b, a
            pairs.append(
                OutputPair(
                    instruction=instruction,
                    output_1=a.output,
                    generator_1=a.generator,
                    output_2=b.output,
                    generator_2=b.generator,
                    sample_index_1=a.sample_index,
                    sample_index_2=b.sample_index,
                    dataset=a.dataset if a.dataset is not None else b.dataset,
                )
            )
    return PairSample(pairs=pairs, n_instructions=len(groups), skipped_instructions=skipped)


@dataclass(frozen=True)
class LabelRun:
    """Labels in the order of the pairs given, and what the run cost."""

    labels: list[SimulatedLabel]
    n_calls: int
    """Judge calls made; the other labels came from the store."""

    @property
    def n_ok(self) -> int:
        return sum(lab.status == "ok" for lab in self.labels)

    @property
    def n_failed(self) -> int:
        """Labels whose judgment errored or could not be parsed: reported, never used as data."""
        return len(self.labels) - self.n_ok

    @property
    def n_flipped(self) -> int:
        """Usable labels that the noise flipped."""
        return sum(lab.flipped for lab in self.labels if lab.status == "ok")


def batch_size_of(judge: Judge) -> int:
    """Pairs ``judge`` answers per call: ``batch_size`` of a :class:`~pasture.judges.BatchedJudge`, else 1."""
    return judge.batch_size if isinstance(judge, BatchedJudge) else 1


async def _label_with(
    store: Store,
    pool: AnnotatorPool,
    member: PoolMember,
    pairs: Sequence[OutputPair],
    *,
    settings: EngineSettings,
    progress: bool,
) -> tuple[list[SimulatedLabel], int]:
    keys = [p.key for p in pairs]
    questions = [
        Question(
            instruction=p.instruction,
            output_1=p.output_1,
            generator_1=p.generator_1,
            output_2=p.output_2,
            generator_2=p.generator_2,
            shown_first=pool.shown_first(k, member.name),
            dataset=p.dataset,
        )
        for p, k in zip(pairs, keys, strict=True)
    ]
    # a batched member fills its batches only with at least batch_size questions in flight
    settings = replace(settings, concurrency=max(settings.concurrency, batch_size_of(member.judge)))
    judgments, n_calls = await judge_cached(
        store,
        member.judge,
        questions,
        settings=settings,
        progress=progress,
        annotator=member.annotator,  # an independent member's verdicts are its own
    )
    digest = member.judge.fingerprint.digest
    labels = []
    for p, k, q, j in zip(pairs, keys, questions, judgments, strict=True):
        flipped = pool.flips(k, member.name)
        status: JudgmentStatus = "error" if j is None else j.status  # None: the run stopped before it
        clean = j.preference if j is not None and j.status == "ok" else None
        noisy = None if clean is None else (flip_label(clean) if flipped else clean)
        labels.append(
            SimulatedLabel(
                pair=p,
                example_key=k,
                annotator=member.name,
                judge_digest=digest,
                judgment_key=q.key(digest, member.annotator),
                shown_first=q.shown_first,
                status=status,
                clean_preference=clean,
                flipped=flipped,
                preference=noisy,
            )
        )
    return labels, n_calls


def label_pairs(
    pairs: Sequence[OutputPair],
    pool: AnnotatorPool,
    store: Store,
    *,
    settings: EngineSettings | None = None,
    progress: bool = False,
) -> LabelRun:
    """Label each pair with the one pool member it is assigned to (the simulated crowd).

    Clean verdicts come from the annotation engine (``pasture.annotate``): cached in ``store`` (a rerun
    makes no calls for what is stored, and resumes after a kill), retried, shareable between processes.
    Noisy labels are recomputed from them and ``pool.seed``/``pool.p`` every time. ``settings`` is how the
    engine runs (:class:`~pasture.annotate.EngineSettings`, ``SIMULATOR_ENGINE`` when None); its
    concurrency is raised, per member, to a batched member's ``batch_size`` so its batches fill.
    ``progress`` shows the engine's progress bar per member.
    """
    settings = settings if settings is not None else SIMULATOR_ENGINE
    by_member: dict[int, list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        by_member[pool.assign(pair.key)].append(i)

    async def run_all() -> tuple[list[SimulatedLabel | None], int]:
        out: list[SimulatedLabel | None] = [None] * len(pairs)
        calls = 0
        for m_index in sorted(by_member):
            idx = by_member[m_index]
            labels, n = await _label_with(
                store,
                pool,
                pool.members[m_index],
                [pairs[i] for i in idx],
                settings=settings,
                progress=progress,
            )
            calls += n
            for i, lab in zip(idx, labels, strict=True):
                out[i] = lab
        return out, calls

    out, calls = asyncio.run(run_all())
    return LabelRun(labels=[lab for lab in out if lab is not None], n_calls=calls)


def cross_annotate(
    pairs: Sequence[OutputPair],
    pool: AnnotatorPool,
    store: Store,
    *,
    settings: EngineSettings | None = None,
    progress: bool = False,
) -> LabelRun:
    """Every member labels every pair (for measuring the pool): labels grouped by member, in pool order.

    Output order and flips use the same draws as :func:`label_pairs`, so a member's label here equals its
    label there whenever it is the assigned member. ``settings`` as for :func:`label_pairs`.
    """
    settings = settings if settings is not None else SIMULATOR_ENGINE

    async def run_all() -> tuple[list[SimulatedLabel], int]:
        labels: list[SimulatedLabel] = []
        calls = 0
        for member in pool.members:
            got, n = await _label_with(store, pool, member, pairs, settings=settings, progress=progress)
            labels += got
            calls += n
        return labels, calls

    labels, calls = asyncio.run(run_all())
    return LabelRun(labels=labels, n_calls=calls)
