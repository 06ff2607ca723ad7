"""Best-of-n: sample n responses per prompt and keep the one a scorer (reward model, oracle or judge) likes best.

Inference-time only: the policy is unchanged. With nested candidate sets (the first m of the same n samples)
the curve over m = 1, 4, 16 ... shows what reranking buys at each budget without resampling noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.core import ScoreFn, generate

if TYPE_CHECKING:
    from pasture.judges.base import ResponseJudge
    from pasture.store import Store


@dataclass(frozen=True)
class BestOfN:
    """Candidates per prompt (``candidates[i][j]``) and the scorer's score for each (``scores[i][j]``)."""

    prompts: tuple[str, ...]
    candidates: tuple[tuple[str, ...], ...]
    scores: tuple[tuple[float, ...], ...]
    generated_tokens: int

    def select(self, n: int) -> list[str]:
        """For each prompt, the best-scored of its first ``n`` candidates (the earliest on a tie)."""
        if not 1 <= n <= min(len(c) for c in self.candidates):
            raise InputError(f"n must be between 1 and the number of candidates, got {n}")
        out = []
        for cands, scores in zip(self.candidates, self.scores, strict=True):
            best = max(range(n), key=lambda j: (scores[j], -j))
            out.append(cands[best])
        return out


def best_of_n(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    score: ScoreFn,
    *,
    n: int,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
) -> BestOfN:
    """Sample ``n`` candidates per prompt and score them all with ``score(prompts, responses)``."""
    if n < 1:
        raise InputError(f"best-of-n needs n >= 1, got {n}")
    gens = generate(
        model,
        tokenizer,
        prompts,
        n=n,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
        batch_size=batch_size,
    )
    flat_p = [p for p, g in zip(prompts, gens, strict=True) for _ in g]
    flat_r = [x.text for g in gens for x in g]
    flat_s = list(score(flat_p, flat_r))
    if len(flat_s) != len(flat_r):
        raise InputError(f"the score function returned {len(flat_s)} scores for {len(flat_r)} responses")
    scores = tuple(tuple(float(s) for s in flat_s[i * n : (i + 1) * n]) for i in range(len(prompts)))
    cands = tuple(tuple(x.text for x in g) for g in gens)
    tokens = sum(len(x.response_ids) for g in gens for x in g)
    return BestOfN(tuple(prompts), cands, scores, tokens)


def judge_scorer(store: Store, judge: ResponseJudge, *, generator: str = "best-of-n") -> ScoreFn:
    """A score function for :func:`best_of_n` from a single-response judge that grades (``response_score``,
    ``expected_digit``, e.g. a Self-J checkpoint's ``pasture.judges.get_response_judge``): every candidate is
    judged through the annotation engine, so its judgments are stored, cached and resumable like any other.

    A candidate whose judgment did not come back with a score (unparsable, failed) scores -inf: it is picked
    only when no candidate of its prompt has a score, and the count is never hidden (it is in the store).
    """
    from pasture.annotate.responses import ResponseToJudge, annotate_responses

    def score(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        items = [ResponseToJudge(p, r, generator) for p, r in zip(prompts, responses, strict=True)]
        report = annotate_responses(store, judge, items, progress=False)
        got = {(j.instruction, j.output): j.score for j in report.judgments if j.status == "ok" and j.score is not None}
        return [float(got.get((p, r), -math.inf)) for p, r in zip(prompts, responses, strict=True)]

    return score
