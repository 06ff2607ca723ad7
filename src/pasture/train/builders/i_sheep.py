"""The I-SHEEP round builder (Liang et al. 2024, "I-SHEEP: Self-Alignment of LLM from Scratch through an Iterative
Self-Enhancement Paradigm"); formulas and choices: docs/train.md ("I-SHEEP").

Round k with policy M_k and the seed tasks S (the loop's training prompts):

1. **self-instruct**: M_k answers the instruction-writing prompt ``#=`` W = oversample·|S| times (one stored set of
   W samples); a written text t becomes the instruction x = t + "=" when it is well formed
   (:func:`~pasture.train.synthetic.written_instruction`); duplicates and copies of a seed task are dropped (the
   paper's format and diversity filters);
2. **respond**: one answer y ~ M_k(· | x) per instruction;
3. **self-assess**: the round's judge scores s(x, y) (the policy itself, or its stand-in, on the synthetic task);
4. **filter**: D_k = {(x, y) : s(x, y) ≥ C} (a failed judgment is dropped);
5. **SFT**, by ``schedule``: ``base_on_latest`` trains M0 on D_k (the paper's default and best); ``continued``
   trains M_k on D_k; ``cumulative`` trains M0 on D_0 ∪ … ∪ D_k.

On the synthetic task the seed tasks reach the policy through its SFT start (it learned the instruction format from
demonstrations, the analogue of the paper's few-shot seed prompts): the ``#=`` mode takes no in-context examples.
"""

from __future__ import annotations

from pasture.errors import InputError
from pasture.train.builders import ISheepSettings
from pasture.train.loop import BuiltRound, RoundContext
from pasture.train.synthetic import INSTRUCTION_PROMPT, written_instruction


def build_i_sheep(ctx: RoundContext) -> BuiltRound:
    """Self-written instructions and answers, self-rated, kept at score ≥ C (module docstring)."""
    s = ctx.settings
    assert isinstance(s, ISheepSettings)
    if s.oversample < 1:
        raise InputError(f"builder setting oversample={s.oversample}: write at least one instruction per seed task")
    written = ctx.sample_on(ctx.policy, [INSTRUCTION_PROMPT], "instructions", s.oversample * len(ctx.prompts))[0]
    seeds = set(ctx.prompts)
    instructions: list[str] = []
    for text in written:
        x = written_instruction(text)
        if x is not None and x not in seeds and x not in instructions:
            instructions.append(x)
    if not instructions:
        raise InputError(
            f"round {ctx.index}: the policy wrote no well-formed new instruction in {len(written)} tries "
            "(does the start policy know the instruction-writing mode '#='?)"
        )
    answers = ctx.sample_on(ctx.policy, instructions, "responses", 1)
    scored = ctx.score(answers, "responses", prompts=instructions)
    kept = [(x, row[0]) for x, row in zip(instructions, scored, strict=True) if row[0].score is not None]
    kept = [(x, a) for x, a in kept if float(a.score) >= s.threshold]  # type: ignore[arg-type]
    prompts = [x for x, _ in kept]
    responses = [a.text for _, a in kept]
    if s.schedule == "cumulative" and ctx.previous_dirs:
        # round k−1 trained on D_0 ∪ … ∪ D_{k−1} (its data.json), so the union grows by this round's D_k
        before = ctx.previous_data()[-1]
        prompts = list(before.prompts) + prompts
        responses = list(before.responses) + responses
    return BuiltRound(
        prompts=tuple(prompts),
        responses=tuple(responses),
        n_skipped=len(instructions) - len(kept),
        n_failed_judgments=ctx.n_failed_judgments,
        train_from="policy" if s.schedule == "continued" else "start",
    )
