"""What the engine is asked to judge: typed pairs, and how they are built from output files.

A :class:`PairToJudge` is one comparison by slot: ``output_1`` is the reference (baseline) output and
``output_2`` the model output under evaluation, as everywhere in pasture (docs/conventions.md). Which of
the two the judge sees first is not part of the pair: the engine decides it from the ``position`` policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pasture.errors import InputError
from pasture.records import ModelOutput


@dataclass(frozen=True, slots=True)
class PairToJudge:
    """One reference-vs-model comparison to judge.

    Attributes
    ----------
    instruction:
        The prompt both outputs answer.
    output_1, generator_1:
        The reference (baseline) output and who wrote it: slot 1.
    output_2, generator_2:
        The model output under evaluation and who wrote it: slot 2.
    dataset:
        Category of the instruction (AlpacaEval's ``dataset`` column), carried into the judgment.
    """

    instruction: str
    output_1: str
    generator_1: str
    output_2: str
    generator_2: str
    dataset: str | None = None


def pairs_from_outputs(
    model_outputs: Sequence[ModelOutput], reference_outputs: Sequence[ModelOutput]
) -> list[PairToJudge]:
    """Pair each model output with the reference output for the same instruction.

    The reference must hold one output per instruction (its ``sample_index`` is ignored): every sample of
    the model is judged against it. A model output whose instruction has no reference output is an
    :class:`~pasture.errors.InputError` (a silently skipped pair would shrink the denominator), and so is a
    reference that answers one instruction twice. Order follows ``model_outputs``.
    """
    reference: dict[str, ModelOutput] = {}
    for given in reference_outputs:
        if given.instruction in reference:
            raise InputError(
                f"reference '{given.generator}' has more than one output for the instruction {_clip(given.instruction)!r}"
            )
        reference[given.instruction] = given
    pairs = []
    for out in model_outputs:
        ref = reference.get(out.instruction)
        if ref is None:
            raise InputError(
                f"no reference output for the instruction {_clip(out.instruction)!r} of generator '{out.generator}'"
            )
        pairs.append(
            PairToJudge(
                instruction=out.instruction,
                output_1=ref.output,
                generator_1=ref.generator,
                output_2=out.output,
                generator_2=out.generator,
                dataset=out.dataset if out.dataset is not None else ref.dataset,
            )
        )
    return pairs


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
