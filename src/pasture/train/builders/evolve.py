"""The EVOLVE round builder: preference optimisation that also trains self-refinement; formulas and choices:
docs/train.md ("EVOLVE").

Round k with policy M_k, judge s and refine prompt r(x, y) (the task's refine mode, :func:`refine_prompt`):

1. **direct samples**: y_1..y_N ~ M_k(· | x), each judged s(x, y_i);
2. **refinement chain with a filter**: c_0 = y_1; for t = 1..L, y'_t ~ M_k(· | r(x, c_{t−1})) is judged s(x, y'_t)
   (against the *task* prompt x) and kept, c_t = y'_t, only when s(x, y'_t) > s(x, c_{t−1}); otherwise
   c_t = c_{t−1}. The kept refinements join the candidate pool (this is the inference-time chain of the paper feeding
   the round's pairs; M_k is the model the previous round trained);
3. **pairs**: with b = argmax and w = argmin of s over the pool (kept only when s(b) > s(w) and b ≠ w):
   (x, b ≻ w) and (r(x, w), b ≻ w), both trained with the round's method (DPO in the paper).

``refine_objective = "sft"`` builds the exposure-matched baseline instead: DPO on (x, b ≻ w) only, then SFT on the
demonstrations r(x, w) → b, the same examples and steps (the driver splits the steps in proportion).
An answer holding one of the task's reserved marks cannot be put into a refine prompt: its chain stops there and
its refine pair is skipped (counted in ``n_skipped`` only when the prompt gets no pair at all).
"""

from __future__ import annotations

from pasture.errors import InputError
from pasture.train.builders import EvolveSettings
from pasture.train.core import PreferencePair
from pasture.train.loop import BuiltRound, RoundContext, Scored
from pasture.train.synthetic import refine_prompt


def refinable(prompt: str, answer: str) -> str | None:
    """The refine prompt r(prompt, answer), or None when ``answer`` holds a reserved mark of the task grammar."""
    try:
        return refine_prompt(prompt, answer)
    except InputError:
        return None


def build_evolve(ctx: RoundContext) -> BuiltRound:
    """Direct samples + a filtered refinement chain → (x, b ≻ w) and (r(x, w), b ≻ w) (module docstring)."""
    s = ctx.settings
    assert isinstance(s, EvolveSettings)
    if s.n < 2:
        raise InputError(f"builder setting n={s.n}: need at least 2 samples per prompt to pick better and worse")
    if s.chain < 0:
        raise InputError(f"builder setting chain={s.chain}: the chain length is 0 (no chain) or more")
    direct = ctx.sample_scored(ctx.policy, "policy", s.n)
    pools: list[list[Scored]] = [[y for y in row if y.score is not None] for row in direct]
    current: dict[str, Scored] = {x: row[0] for x, row in zip(ctx.prompts, direct, strict=True)}
    position = {x: i for i, x in enumerate(ctx.prompts)}
    for t in range(1, s.chain + 1):
        todo = [(x, r) for x, c in current.items() if c.score is not None and (r := refinable(x, c.text)) is not None]
        if not todo:
            break
        texts = ctx.sample_on(ctx.policy, [r for _, r in todo], f"chain{t}", 1)
        scored = ctx.score(texts, f"chain{t}", prompts=[x for x, _ in todo])
        for (x, _), row in zip(todo, scored, strict=True):
            y = row[0]
            if y.score is not None and float(y.score) > float(current[x].score):  # type: ignore[arg-type]
                current[x] = y
                pools[position[x]].append(y)
    pairs: list[PreferencePair] = []
    chosen: list[float] = []
    rejected: list[float] = []
    aux_p: list[str] = []
    aux_r: list[str] = []
    n_without = 0
    for x, pool in zip(ctx.prompts, pools, strict=True):
        if len(pool) < 2:
            n_without += 1
            continue
        b = max(pool, key=lambda y: float(y.score))  # type: ignore[arg-type]
        w = min(pool, key=lambda y: float(y.score))  # type: ignore[arg-type]
        if not (float(b.score) > float(w.score) and b.text != w.text):  # type: ignore[arg-type]
            n_without += 1
            continue
        pairs.append(PreferencePair(x, b.text, w.text))
        chosen.append(float(b.score))  # type: ignore[arg-type]
        rejected.append(float(w.score))  # type: ignore[arg-type]
        r = refinable(x, w.text)
        if r is None:
            continue
        if s.refine_objective == "dpo":
            pairs.append(PreferencePair(r, b.text, w.text))
            chosen.append(float(b.score))  # type: ignore[arg-type]
            rejected.append(float(w.score))  # type: ignore[arg-type]
        else:
            aux_p.append(r)
            aux_r.append(b.text)
    return BuiltRound(
        pairs=tuple(pairs),
        chosen_scores=tuple(chosen),
        rejected_scores=tuple(rejected),
        n_skipped=n_without,
        n_failed_judgments=ctx.n_failed_judgments,
        aux_prompts=tuple(aux_p),
        aux_responses=tuple(aux_r),
    )
