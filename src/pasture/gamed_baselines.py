"""Gamed baselines for any eval set: the reference's own model told to be verbose and to be concise, judged
against the reference.

Why: the LC GLM learns how much a judge rewards length mostly from models that differ in length for other
reasons too. AlpacaEval regularises every fit with the judged rows of two "gamed" versions of the reference
(the same model, prompted to answer at length and briefly), whose only intended difference is length. Their
annotations exist only for AlpacaEval's own eval set, reference and judge; this module makes them for any
(eval set, reference, judge) board. Generation and judging both go through the store, so a rerun resumes
where it stopped and a finished one makes no call.

The variants are stored as ordinary generators named ``<reference>_verbose`` and ``<reference>_concise``,
with their judgments, and a ``gamed`` run each on the board (not a board member: they are not models under
evaluation). :func:`gamed_rows` returns them in the shape the LC fit needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pasture.annotate import AnnotationReport, EngineSettings, PairToJudge, Position, annotate
from pasture.errors import InputError
from pasture.evaluate import check_reference
from pasture.generate import GenerationReport, GenerationSettings, generate
from pasture.judges.base import Judge, Provider
from pasture.leaderboard import GAMED_ROW_COLUMNS, GAMED_RUN_KIND, BoardKey, gamed_rows
from pasture.records import EvalSet, ModelOutput, RunManifest, sha256_text
from pasture.store import Store, outputs_digest

VERBOSE_PROMPT = (
    "Give the fullest answer you can. Explain your reasoning step by step, add background, examples and "
    "caveats, cover related points the reader may also want, and close with a summary. Length is welcome."
)
CONCISE_PROMPT = (
    "Answer as briefly as possible while staying correct: only the essential content, no introduction, "
    "no explanation unless asked, no repetition, no closing remarks."
)
GAMED_PROMPTS: dict[str, str] = {"verbose": VERBOSE_PROMPT, "concise": CONCISE_PROMPT}
"""System prompts of the gamed variants, by variant name (written for pasture)."""


def gamed_name(reference: str, variant: str) -> str:
    """The stored generator name of a gamed variant of ``reference``, e.g. ``gpt4_1106_preview_verbose``."""
    return f"{reference}_{variant}"


@dataclass(frozen=True)
class GamedBaselinesResult:
    """What :func:`make_gamed_baselines` did: the board, the variants' names, and the generation and judging
    reports (``n_new``/``calls`` say how much was made now; a finished rerun has none)."""

    key: BoardKey
    generators: dict[str, str]
    generation: tuple[GenerationReport, ...]
    annotation: AnnotationReport

    def summary(self) -> str:
        made = sum(g.n_new for g in self.generation)
        return (
            f"gamed baselines {', '.join(self.generators.values())}: {made} outputs generated now, "
            f"{self.annotation.n_new} judged now ({self.annotation.calls} judge calls, "
            f"{self.annotation.n_cached} already stored)"
        )


def make_gamed_baselines(
    store: Store,
    *,
    eval_set: EvalSet,
    reference_outputs: Sequence[ModelOutput],
    provider: Provider,
    judge: Judge,
    settings: GenerationSettings | None = None,
    prompts: dict[str, str] | None = None,
    position: Position = "alpaca_eval",
    engine: EngineSettings | None = None,
    gen_concurrency: int = 4,
    progress: bool = True,
) -> GamedBaselinesResult:
    """Generate the gamed variants of the reference with ``provider`` and judge them against the reference.

    Parameters
    ----------
    store:
        Receives the eval set, the reference and the variants' outputs, the judgments and a ``gamed`` run per
        variant; everything already there is reused (resumable, cached).
    eval_set, reference_outputs:
        The board's instructions and its reference (one generator, one output per instruction).
    provider:
        The reference's own model (the variants differ from it only by the system prompt).
    judge:
        The board's judge.
    settings:
        Sampling settings of the variants (their ``system_prompt`` is replaced by the variant's prompt).
    prompts:
        Variant name -> system prompt (default :data:`GAMED_PROMPTS`).
    position, engine, gen_concurrency, progress:
        As for :func:`pasture.evaluate.evaluate` (the judge engine's settings) and :func:`pasture.generate.generate`
        (generation uses the engine's ``max_retries``).

    Failed generations are an InputError after the run (a rerun retries them); failed judgments are stored
    and counted, and retried by a rerun.
    """
    import pasture

    prompts = dict(GAMED_PROMPTS if prompts is None else prompts)
    settings = settings or GenerationSettings()
    reference, reference_0 = check_reference(eval_set, reference_outputs)
    es_digest = store.put_eval_set(eval_set)
    stored_ref = [o for o in store.get_outputs(es_digest, reference) if o.sample_index == 0]
    if stored_ref and outputs_digest(stored_ref) != outputs_digest(reference_0):
        raise InputError(
            f"the store already holds other outputs under the reference name '{reference}' for this eval set"
        )
    store.put_outputs(es_digest, reference_0)
    names = {variant: gamed_name(reference, variant) for variant in prompts}
    reports = []
    for variant, name in names.items():
        report = generate(
            store,
            eval_set,
            provider,
            generator=name,
            settings=replace(settings, system_prompt=prompts[variant], samples=1),
            concurrency=gen_concurrency,
            max_retries=(engine or EngineSettings()).max_retries,
            progress=progress,
        )
        if not report.ok:
            raise InputError(f"{report.n_failed} generations of {name} failed (first: {report.errors[0]}); rerun")
        reports.append(report)
    ref_by_instruction = {o.instruction: o for o in reference_0}
    pairs = [
        PairToJudge(
            instruction=o.instruction,
            output_1=ref_by_instruction[o.instruction].output,
            generator_1=reference,
            output_2=o.output,
            generator_2=o.generator,
            dataset=ref_by_instruction[o.instruction].dataset,
        )
        for report in reports
        for o in report.outputs
    ]
    annotation = annotate(store, judge, pairs, settings=engine, position=position, progress=progress)
    key = BoardKey(es_digest, outputs_digest(reference_0), judge.fingerprint.digest)
    for report, (variant, name) in zip(reports, names.items(), strict=True):
        store.put_run(
            eval_set_digest=key.eval_set_digest,
            reference_digest=key.reference_digest,
            judge_digest=key.judge_digest,
            generator=name,
            kind=GAMED_RUN_KIND,
            result={"variant": variant, "outputs": len(report.outputs)},
            manifest=RunManifest(
                pasture_version=pasture.__version__,
                eval_set_digest=key.eval_set_digest,
                reference_digest=key.reference_digest,
                judge_digest=key.judge_digest,
                judge_name=judge.name,
                inputs={
                    "eval_set": eval_set.name,
                    "reference_generator": reference,
                    "variant": variant,
                    "system_prompt_digest": sha256_text(prompts[variant]),
                    "position": position,
                    "replicates": "1",
                },
            ),
        )
    return GamedBaselinesResult(key=key, generators=names, generation=tuple(reports), annotation=annotation)


__all__ = [
    "CONCISE_PROMPT",
    "GAMED_PROMPTS",
    "GAMED_ROW_COLUMNS",
    "GAMED_RUN_KIND",
    "VERBOSE_PROMPT",
    "GamedBaselinesResult",
    "gamed_name",
    "gamed_rows",
    "make_gamed_baselines",
]
