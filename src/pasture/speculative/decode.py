"""The speculative decoding loop (batch size 1) with KV caches for target and draft, its candidate-length
policies (fixed K; SpecDec++'s acceptance-head stopping rule) and the per-run statistics.

Cache invariant: after each round both caches hold the keys/values of a prefix of the emitted sequence. The
next round feeds each model the emitted tokens its cache lacks (usually one: the token the target chose), so a
rejection only needs the caches cropped back to the accepted prefix (``DynamicCache.crop``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from pasture.errors import InputError
from pasture.speculative.core import sample, token_distribution, verify

if TYPE_CHECKING:
    from pasture.speculative.head import AcceptanceHead

Verifier = Callable[[Tensor, Tensor, list[int], torch.Generator], tuple[int, int]]
"""``verify(p, q, drafts, generator) -> (accepted, next token)``; :func:`pasture.speculative.core.verify` is the
exact one (tests pass a deliberately wrong one to show the χ² test can reject)."""


@dataclass(frozen=True)
class FixedK:
    """Draft exactly ``k`` tokens per round (fewer when the token budget or an EOS draft ends it)."""

    k: int = 4

    def __post_init__(self) -> None:
        if self.k < 1:
            raise InputError(f"candidate length must be at least 1, got {self.k}")

    @property
    def max_candidates(self) -> int:
        return self.k

    def describe(self) -> dict[str, Any]:
        return {"policy": "fixed", "k": self.k}


@dataclass(frozen=True)
class SpecDecPP:
    """SpecDec++ (Huang et al. 2024): stop drafting once the predicted chance that some candidate is rejected,
    ``1 − Π_i p̂_i`` (``p̂_i`` the acceptance head's probability that candidate ``i`` is accepted), exceeds
    ``threshold``; always draft at least ``min_candidates`` and at most ``max_candidates``. Defaults: the paper's
    h = 0.3 and candidate lengths 2 to 20."""

    threshold: float = 0.3
    min_candidates: int = 2
    max_candidates: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 1:
            raise InputError(f"stop threshold h must be in (0, 1), got {self.threshold}")
        if not 1 <= self.min_candidates <= self.max_candidates:
            raise InputError(
                f"need 1 ≤ min candidates ≤ max candidates, got {self.min_candidates} and {self.max_candidates}"
            )

    def stop(self, n_drafted: int, accept_product: float) -> bool:
        """Whether to stop drafting after ``n_drafted`` candidates whose predicted acceptance product is given."""
        if n_drafted >= self.max_candidates:
            return True
        return n_drafted >= self.min_candidates and 1.0 - accept_product > self.threshold

    def describe(self) -> dict[str, Any]:
        return {
            "policy": "specdec++",
            "threshold": self.threshold,
            "min_candidates": self.min_candidates,
            "max_candidates": self.max_candidates,
        }


Policy = FixedK | SpecDecPP


@dataclass(frozen=True)
class SpeculativeStats:
    """Counts of one or more speculative generations (definitions in docs/generate.md).

    ``tokens``: emitted tokens; ``rounds``: draft-then-verify rounds; ``target_passes`` / ``draft_passes``: forward
    calls of each model (the prompt's prefill included); ``drafted``: candidate tokens proposed; ``accepted``:
    candidates kept; ``wall_s``: decoding time.
    """

    tokens: int = 0
    rounds: int = 0
    target_passes: int = 0
    draft_passes: int = 0
    drafted: int = 0
    accepted: int = 0
    wall_s: float = 0.0

    def __add__(self, other: SpeculativeStats) -> SpeculativeStats:
        return SpeculativeStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def target_passes_per_token(self) -> float:
        """Target forward passes per emitted token (plain decoding: 1)."""
        return self.target_passes / self.tokens if self.tokens else float("nan")

    @property
    def acceptance_rate(self) -> float:
        """Accepted candidates / drafted candidates."""
        return self.accepted / self.drafted if self.drafted else float("nan")

    @property
    def mean_candidate_length(self) -> float:
        """Drafted candidates per round."""
        return self.drafted / self.rounds if self.rounds else float("nan")

    @property
    def discarded(self) -> int:
        """Drafted candidates the target rejected or that followed a rejection (wasted draft work)."""
        return self.drafted - self.accepted

    @property
    def discarded_per_token(self) -> float:
        return self.discarded / self.tokens if self.tokens else float("nan")

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else float("nan")

    def summary(self) -> dict[str, float]:
        """The reported measures, by name."""
        return {
            "tokens": self.tokens,
            "target_passes_per_token": self.target_passes_per_token,
            "acceptance_rate": self.acceptance_rate,
            "mean_candidate_length": self.mean_candidate_length,
            "discarded": self.discarded,
            "discarded_per_token": self.discarded_per_token,
            "tokens_per_s": self.tokens_per_s,
        }


@dataclass(frozen=True)
class SpeculativeResult:
    """The emitted token ids (EOS included when emitted) and the run's counts."""

    tokens: tuple[int, ...]
    stats: SpeculativeStats


def _decoder_parts(model: Any) -> tuple[Any, Any]:
    """(decoder body returning hidden states, output head) of a transformers causal LM."""
    return model.get_decoder(), model.get_output_embeddings()


class _Runner:
    """One model with its KV cache and the length of the emitted prefix the cache holds."""

    def __init__(self, model: Any) -> None:
        from transformers import DynamicCache

        self.body, self.head = _decoder_parts(model)
        self.device = next(model.parameters()).device
        self.cache = DynamicCache()
        self.length = 0
        self.passes = 0

    def feed(self, tokens: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Run ``tokens`` (appended to the cached prefix): (last hidden states, logits), each ``(len, ·)``."""
        ids = torch.tensor([list(tokens)], dtype=torch.long, device=self.device)
        out = self.body(input_ids=ids, cache=self.cache, use_cache=True)
        hidden = out.last_hidden_state[0]
        self.length += len(tokens)
        self.passes += 1
        return hidden, self.head(hidden)

    def crop(self, length: int) -> None:
        if length < self.length:
            self.cache.crop(length - self.length)  # negative: drop that many (old and new transformers agree)
            self.length = length


@torch.no_grad()
def speculative_generate(
    target: Any,
    draft: Any,
    prompt_ids: Sequence[int],
    *,
    max_new_tokens: int,
    policy: Policy,
    temperature: float = 0.0,
    top_p: float = 1.0,
    eos_token_id: int | None = None,
    seed: int = 0,
    head: AcceptanceHead | None = None,
    verifier: Verifier = verify,
) -> SpeculativeResult:
    """Decode up to ``max_new_tokens`` after ``prompt_ids`` with the target's distribution, drafting with ``draft``.

    ``target`` and ``draft`` are transformers causal LMs sharing a vocabulary (same ids, same size of output).
    Each round drafts candidates one by one from the draft's distribution (same ``temperature``/``top_p``),
    then runs the target once over all of them and keeps a prefix by :func:`~pasture.speculative.core.verify`.
    ``policy`` sets the candidate length: :class:`FixedK`, or :class:`SpecDecPP` with ``head`` (the draft's last
    hidden state after each candidate is scored by the head). ``seed`` seeds one generator for every draw, so
    reruns repeat on one machine.
    """
    if max_new_tokens < 1:
        raise InputError(f"max new tokens must be at least 1, got {max_new_tokens}")
    if isinstance(policy, SpecDecPP) and head is None:
        raise InputError("the SpecDec++ policy needs an acceptance head (pasture train acceptance_head)")
    if not prompt_ids:
        raise InputError("speculative decoding needs a non-empty prompt")
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    t, d = _Runner(target), _Runner(draft)
    seq = list(prompt_ids)
    n_prompt = len(seq)
    rounds = drafted = accepted = 0

    def dist(logits: Tensor) -> Tensor:
        return token_distribution(logits, temperature=temperature, top_p=top_p)

    while True:
        budget = max_new_tokens - (len(seq) - n_prompt)
        cap = min(policy.max_candidates, budget - 1)
        drafts: list[int] = []
        qs: list[Tensor] = []
        if cap > 0:
            _, logits = d.feed(seq[d.length :])
            product = 1.0
            while True:
                q = dist(logits[-1])
                x = sample(q, gen)
                drafts.append(x)
                qs.append(q)
                if x == eos_token_id or len(drafts) >= cap:
                    break
                if isinstance(policy, SpecDecPP):
                    assert head is not None
                    hidden, logits = d.feed([x])
                    product *= head.accept_probability(hidden[-1])
                    if policy.stop(len(drafts), product):
                        break
                else:
                    if len(drafts) >= policy.k:
                        break
                    _, logits = d.feed([x])
        old = len(seq)
        _, t_logits = t.feed(seq[t.length :] + drafts)
        p = dist(t_logits[-(len(drafts) + 1) :])
        q_stack = torch.stack(qs) if qs else p[:0]
        m, nxt = verifier(p, q_stack, drafts, gen)
        new = [*drafts[:m], nxt]
        if eos_token_id is not None and eos_token_id in new:
            new = new[: new.index(eos_token_id) + 1]
        seq.extend(new)
        rounds += 1
        drafted += len(drafts)
        accepted += m
        t.crop(old + m)
        d.crop(old + m)
        if (eos_token_id is not None and new[-1] == eos_token_id) or len(seq) - n_prompt >= max_new_tokens:
            break
    stats = SpeculativeStats(
        tokens=len(seq) - n_prompt,
        rounds=rounds,
        target_passes=t.passes,
        draft_passes=d.passes,
        drafted=drafted,
        accepted=accepted,
        wall_s=time.perf_counter() - start,
    )
    return SpeculativeResult(tuple(seq[n_prompt:]), stats)


@torch.no_grad()
def plain_generate(
    target: Any,
    prompt_ids: Sequence[int],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    eos_token_id: int | None = None,
    seed: int = 0,
) -> SpeculativeResult:
    """Token-by-token decoding with the same cache and sampling code (the reference the loop is compared with;
    its stats have one target pass per token and nothing drafted)."""
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    t = _Runner(target)
    seq = list(prompt_ids)
    out: list[int] = []
    while len(out) < max_new_tokens:
        _, logits = t.feed(seq[t.length :])
        x = sample(token_distribution(logits[-1], temperature=temperature, top_p=top_p), gen)
        seq.append(x)
        out.append(x)
        if x == eos_token_id:
            break
    stats = SpeculativeStats(
        tokens=len(out), rounds=len(out), target_passes=t.passes, wall_s=time.perf_counter() - start
    )
    return SpeculativeResult(tuple(out), stats)
