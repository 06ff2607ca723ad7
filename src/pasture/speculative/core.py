"""The speculative-sampling maths (Leviathan et al. 2023; Chen et al. 2023) as small pure tensor functions.

Why it is exact: a draft token ``x ~ q`` is kept with probability ``min(1, p(x)/q(x))``; on rejection a token is
drawn from the residual ``r = max(p − q, 0) / Σ max(p − q, 0)``. The probability of emitting ``y`` is then::

    q(y)·min(1, p(y)/q(y)) + (1 − β)·r(y) = min(p(y), q(y)) + max(p(y) − q(y), 0) = p(y)

with ``β = Σ_x min(p(x), q(x))`` the acceptance probability, because ``1 − β = Σ max(p − q, 0)``. Applied token by
token (each later position is only reached after every earlier one was accepted), the emitted sequence has
exactly the target's distribution. Greedy decoding is the special case where ``p`` and ``q`` are one-hot on
their argmax: the draft token is kept iff it is the target's argmax, and the residual is the target's argmax.
"""

from __future__ import annotations

import torch
from torch import Tensor


def token_distribution(logits: Tensor, *, temperature: float, top_p: float = 1.0) -> Tensor:
    """Next-token probabilities (float64) from logits ``(..., V)``: the distribution sampling actually uses.

    ``temperature == 0`` gives a one-hot vector on the argmax (greedy; ties go to the lowest id, as ``argmax``).
    Otherwise softmax of ``logits / temperature``, then nucleus filtering: the smallest set of most likely
    tokens whose mass reaches ``top_p`` is kept and renormalised (``top_p = 1`` keeps all).
    Target and draft are both passed through this, so exactness holds for the processed target distribution.
    """
    logits = logits.to(torch.float64)
    if temperature == 0:
        out = torch.zeros_like(logits)
        return out.scatter_(-1, logits.argmax(dim=-1, keepdim=True), 1.0)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p >= 1.0:
        return probs
    sorted_p, order = probs.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(dim=-1) - sorted_p  # mass of the strictly more likely tokens
    keep_sorted = before < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    kept = probs * keep
    return kept / kept.sum(dim=-1, keepdim=True)


def acceptance_probability(p: Tensor, q: Tensor, token: int) -> float:
    """``min(1, p(x)/q(x))`` for the draft token ``x`` (``q(x) > 0`` since ``x`` was drawn from ``q``)."""
    qx = float(q[token])
    if qx <= 0.0:
        raise ValueError(f"draft token {token} has probability 0 under the draft distribution")
    return min(1.0, float(p[token]) / qx)


def residual_distribution(p: Tensor, q: Tensor) -> Tensor:
    """``max(p − q, 0)`` normalised: where the target puts more mass than the draft.

    When ``p == q`` there is no residual mass, but then every draft token is accepted and this is never sampled;
    ``p`` is returned so the function is total.
    """
    r = (p - q).clamp_min(0.0)
    total = r.sum()
    return p if float(total) <= 0.0 else r / total


def sample(probs: Tensor, generator: torch.Generator) -> int:
    """One token id from a probability vector (on any device; drawn on the CPU, where the loop's one seeded
    generator lives, so a run repeats whatever device the models are on)."""
    return int(torch.multinomial(probs.to("cpu", torch.float64), 1, generator=generator).item())


def verify(p: Tensor, q: Tensor, drafts: list[int], generator: torch.Generator) -> tuple[int, int]:
    """Check ``K`` draft tokens against the target: ``(accepted count m, next token)``.

    ``p`` is ``(K + 1, V)``: the target's distributions after the context and after each draft token; ``q`` is
    ``(K, V)``: the draft's distributions each draft token was drawn from. Draft tokens are accepted left to
    right with probability ``min(1, p_i(x_i)/q_i(x_i))``; at the first rejection the next token is drawn from the
    residual ``norm(max(p_i − q_i, 0))``; when all ``K`` are accepted it is drawn from ``p_K`` (the bonus token).
    The emitted tokens are ``drafts[:m] + [next token]``.
    """
    for i, x in enumerate(drafts):
        a = acceptance_probability(p[i], q[i], x)
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        if u < a:
            continue
        return i, sample(residual_distribution(p[i], q[i]), generator)
    return len(drafts), sample(p[len(drafts)], generator)
