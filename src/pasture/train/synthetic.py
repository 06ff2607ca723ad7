"""A synthetic instruction task with an exact oracle, for testing learning methods in seconds on a CPU.

**Keyword inclusion.** A prompt ``"<ctx>+<c>="`` (``ctx`` a string of 4-8 digits, ``c`` one letter a-j naming the
keyword digit ``k`` = 0-9) asks for a rewrite of ``ctx`` of the same length that contains ``k`` as often as
possible. The keyword is named by a letter so that a two-layer model can find it by content alone (one
attention step to match each response digit to the keyword, one to count the matches).
The oracle score of a response ``y`` is::

    score = #{ i < n : y[i] == k } / max(n, len(y))        n = len(ctx)

so it lies in [0, 1]: 1 is all keyword at the right length, padding a response with extra characters dilutes
it and a short response loses the missing positions. The oracle preference between two responses is
2 (the second wins), 1 (the first wins) or 1.5 (equal scores).

Demonstrations (the SFT data) are deliberately mediocre, like AlpacaFarm's: each position of ``ctx`` is kept
with probability 1 - q and replaced by ``k`` with probability q (q = 0.25), so the SFT policy scores about
0.3 and methods that learn from preferences have room to improve. Preference labels come from the oracle
and are flipped with probability p (AlpacaFarm's p = 0.25) by :func:`pasture.simulate.noise.flip_labels`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn
from transformers import PreTrainedTokenizerFast

from pasture.errors import InputError
from pasture.simulate.noise import example_key, flip_labels
from pasture.train.core import PreferencePair, generate
from pasture.train.tokenizer import char_tokenizer

KEY_LETTERS = "abcdefghij"
"""Letter i names keyword digit i."""

ALPHABET = "0123456789" + KEY_LETTERS + "+="
"""Every character the task uses; the tokenizer has one token per character plus pad/eos/unk."""

_PROMPT = re.compile(r"^([0-9]{1,32})\+([a-j])=$")

MAX_RESPONSE_TOKENS = 10
"""Generation budget in tokens: the longest correct answer (8 digits) plus EOS, plus one spare."""


def task_tokenizer() -> PreTrainedTokenizerFast:
    """The character-level tokenizer of the task (built offline)."""
    return char_tokenizer(ALPHABET)


def parse_prompt(prompt: str) -> tuple[str, str]:
    """(ctx, keyword digit) of a task prompt; a prompt not of the form ``<digits>+<a-j>=`` is an InputError."""
    m = _PROMPT.match(prompt)
    if m is None:
        raise InputError(f"not a keyword-inclusion prompt (want '<digits>+<letter a-j>='): {prompt[:40]!r}")
    return m.group(1), str(KEY_LETTERS.index(m.group(2)))


def oracle_score(prompt: str, response: str) -> float:
    """The exact task score in [0, 1] (definition in the module docstring)."""
    ctx, k = parse_prompt(prompt)
    n = len(ctx)
    hits = sum(1 for ch in response[:n] if ch == k)
    return hits / max(n, len(response))


def oracle_scores(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
    """:func:`oracle_score` for aligned lists (a pointwise score function for best-of-n and evaluation)."""
    return [oracle_score(p, r) for p, r in zip(prompts, responses, strict=True)]


def oracle_preference(prompt: str, output_1: str, output_2: str) -> float:
    """Preference by slot from the oracle: 2 when output_2 scores higher, 1 when lower, 1.5 on a tie."""
    s1, s2 = oracle_score(prompt, output_1), oracle_score(prompt, output_2)
    return 2.0 if s2 > s1 else 1.0 if s2 < s1 else 1.5


def make_prompts(n: int, *, seed: int, min_len: int = 4, max_len: int = 8) -> list[str]:
    """``n`` distinct random prompts; different seeds give (almost surely) disjoint sets."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        length = int(rng.integers(min_len, max_len + 1))
        ctx = "".join(str(d) for d in rng.integers(0, 10, size=length))
        prompt = f"{ctx}+{KEY_LETTERS[int(rng.integers(0, 10))]}="
        if prompt not in seen:
            seen.add(prompt)
            out.append(prompt)
    return out


def demonstrations(prompts: Sequence[str], *, seed: int, q: float = 0.25) -> list[str]:
    """Mediocre demonstrations: ``ctx`` with each digit replaced by the keyword with probability ``q``."""
    rng = np.random.default_rng(seed)
    out = []
    for p in prompts:
        ctx, k = parse_prompt(p)
        out.append("".join(k if rng.random() < q else ch for ch in ctx))
    return out


@dataclass(frozen=True)
class LabelledPairs:
    """Preference pairs from a policy's samples, labelled by the oracle and then flipped with probability p.

    ``pairs`` are the noisy training pairs; ``clean_agreement`` is the fraction whose noisy label agrees with
    the oracle (about 1 - p); ``n_ties`` pairs with equal oracle scores were dropped (no preference to learn).
    """

    pairs: tuple[PreferencePair, ...]
    clean_agreement: float
    n_ties: int


def label_pairs(
    prompts: Sequence[str], outputs_1: Sequence[str], outputs_2: Sequence[str], *, p: float, seed: int
) -> LabelledPairs:
    """Oracle labels for (output_1, output_2) per prompt, flipped with probability ``p`` by the simulator."""
    kept: list[tuple[str, str, str, float]] = []
    ties = 0
    for prompt, a, b in zip(prompts, outputs_1, outputs_2, strict=True):
        label = oracle_preference(prompt, a, b)
        if label == 1.5:
            ties += 1
            continue
        kept.append((prompt, a, b, label))
    keys = [example_key(pr, a, b) for pr, a, b, _ in kept]
    noisy = flip_labels([lab for *_, lab in kept], keys, p=p, seed=seed)
    pairs = []
    agree = 0
    for (prompt, a, b, clean), lab in zip(kept, noisy, strict=True):
        agree += int(lab == clean)
        chosen, rejected = (b, a) if lab == 2.0 else (a, b)
        pairs.append(PreferencePair(prompt, chosen, rejected))
    return LabelledPairs(tuple(pairs), agree / max(len(kept), 1), ties)


def sample_pairs(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerFast,
    prompts: Sequence[str],
    *,
    p: float,
    seed: int,
    temperature: float = 1.0,
) -> LabelledPairs:
    """Two samples per prompt from ``model``, labelled by the oracle with flip noise ``p`` (the simulator)."""
    gens = generate(
        model, tokenizer, prompts, n=2, max_new_tokens=MAX_RESPONSE_TOKENS, temperature=temperature, seed=seed
    )
    return label_pairs(prompts, [g[0].text for g in gens], [g[1].text for g in gens], p=p, seed=seed)


def win_rate_from_scores(scores: Sequence[float], baseline_scores: Sequence[float]) -> float:
    """Fraction of prompts where the model's score beats the baseline's, ties counting one half."""
    if len(scores) != len(baseline_scores) or not scores:
        raise InputError("need equally many, and at least one, scores and baseline scores")
    total = sum(1.0 if s > b else 0.5 if s == b else 0.0 for s, b in zip(scores, baseline_scores, strict=True))
    return total / len(scores)
