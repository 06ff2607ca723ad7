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

**The extended task** (second half of this module; METHODS.md): the same task with a critique in context, a refine
prompt, an instruction-writing mode, a good-but-imperfect gold reference, an old task learned first (reversal, for
forgetting checks), the programmatic :func:`critic` and the shared starting policy. It has its own tokenizer
(:func:`extended_tokenizer`), so today's recipes and their figures are untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn
from transformers import PreTrainedTokenizerFast

from pasture.errors import InputError
from pasture.simulate.noise import example_key, flip_labels
from pasture.train.core import OptimSettings, PreferencePair, TrainStats, generate
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


# ---------------------------------------------------------------------------------------------------------------
# The extended task (docs/train.md, "The extended synthetic task"): one grammar shared by every method that learns
# from judgments, refines its own answers or writes instructions (METHODS.md). Today's task above is unchanged:
# its prompts, oracle, tokenizer and recipes do not move; the extension has its own tokenizer (a superset whose
# first ids are today's) so that the existing recipes' weights, and the figures their tests pin, stay the same.
# ---------------------------------------------------------------------------------------------------------------

CRITIQUE_MARK = "!"
"""Starts a critique in a prompt: ``<ctx>+<c>!<wrong positions>=``."""
REFINE_MARK = "?"
"""Starts a previous answer to refine: ``<ctx>+<c>?<previous answer>=`` (optionally ``...?<prev>!<positions>=``)."""
WRITE_MARK = "#"
"""The instruction-writing prompt is ``#=``; its answer is a task instruction ``<ctx>+<c>`` (no ``=``)."""
OLD_TASK_MARK = "~"
"""The old task (learned first, for forgetting checks): ``<ctx>~=`` asks for ``ctx`` reversed."""

EXTENDED_ALPHABET = ALPHABET + CRITIQUE_MARK + REFINE_MARK + WRITE_MARK + OLD_TASK_MARK
"""Today's alphabet followed by the four marks, so every character keeps its token id in the extended tokenizer."""

INSTRUCTION_PROMPT = WRITE_MARK + "="
"""The prompt of the instruction-writing mode."""

GOOD_THRESHOLD = 0.5
"""The critic's verdict is *good* when the oracle score is at least this (at least half the positions right)."""

MAX_CRITIQUE_POSITIONS = 10
"""A critique names positions 0-9 by one digit each, so contexts and responses are at most 10 characters."""

_EXTENDED = re.compile(r"^([0-9]{1,32})\+([a-j])(?:\?([^!?#~]*))?(?:!([0-9]*))?=$")
_OLD = re.compile(r"^([0-9]{1,32})~=$")
_MARKS = CRITIQUE_MARK + REFINE_MARK + WRITE_MARK + OLD_TASK_MARK


def extended_tokenizer() -> PreTrainedTokenizerFast:
    """The character tokenizer of the extended task: today's ids unchanged, then one id per mark."""
    return char_tokenizer(EXTENDED_ALPHABET)


@dataclass(frozen=True)
class ExtendedPrompt:
    """A parsed prompt of the extended task.

    ``kind`` is ``"task"`` (today's prompt, possibly with a critique and/or a previous answer), ``"old"`` (the old
    reversal task) or ``"write"`` (instruction writing). ``base`` is today's prompt ``<ctx>+<c>=`` that an answer is
    scored against (empty for ``old`` and ``write``); ``previous`` and ``critique`` are None when absent.
    """

    kind: str
    ctx: str
    keyword: str
    base: str
    previous: str | None = None
    critique: str | None = None


def parse_extended(prompt: str) -> ExtendedPrompt:
    """Parse any prompt of the extended grammar; anything else is an InputError naming the forms."""
    if prompt == INSTRUCTION_PROMPT:
        return ExtendedPrompt("write", "", "", "")
    m = _OLD.match(prompt)
    if m is not None:
        return ExtendedPrompt("old", m.group(1), "", "")
    m = _EXTENDED.match(prompt)
    if m is None:
        raise InputError(
            "not a prompt of the extended synthetic task (want '<digits>+<a-j>=', '<digits>+<a-j>!<positions>=', "
            f"'<digits>+<a-j>?<previous>=', '<digits>~=' or '#='): {prompt[:40]!r}"
        )
    ctx, letter = m.group(1), m.group(2)
    return ExtendedPrompt(
        "task", ctx, str(KEY_LETTERS.index(letter)), f"{ctx}+{letter}=", previous=m.group(3), critique=m.group(4)
    )


def _check_answer_text(text: str, what: str) -> None:
    bad = sorted({ch for ch in text if ch in _MARKS})
    if bad:
        raise InputError(f"{what} contains the reserved mark(s) {''.join(bad)!r}; remove them before building a prompt")


def critique_prompt(prompt: str, critique: str) -> str:
    """``prompt`` (today's form, or a refine prompt) with ``critique`` (wrong positions as digits) in context."""
    p = parse_extended(prompt)
    if p.kind != "task" or p.critique is not None:
        raise InputError(f"a critique goes into a task or refine prompt without one: {prompt[:40]!r}")
    if not critique.isdigit() and critique != "":
        raise InputError(f"a critique is a string of position digits (e.g. '024'), got {critique[:20]!r}")
    return f"{prompt[:-1]}{CRITIQUE_MARK}{critique}="


def refine_prompt(prompt: str, previous: str, critique: str | None = None) -> str:
    """The refine prompt for today's ``prompt``: (x, previous answer), optionally with the previous answer's critique."""
    p = parse_extended(prompt)
    if p.kind != "task" or p.previous is not None or p.critique is not None:
        raise InputError(f"refine prompts are built from a plain task prompt '<digits>+<a-j>=': {prompt[:40]!r}")
    _check_answer_text(previous, "the previous answer")
    out = f"{prompt[:-1]}{REFINE_MARK}{previous}="
    return out if critique is None else critique_prompt(out, critique)


def old_task_prompts(n: int, *, seed: int, min_len: int = 4, max_len: int = 8) -> list[str]:
    """``n`` distinct prompts of the old task ``<ctx>~=`` (answer: ``ctx`` reversed)."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        length = int(rng.integers(min_len, max_len + 1))
        prompt = "".join(str(d) for d in rng.integers(0, 10, size=length)) + OLD_TASK_MARK + "="
        if prompt not in seen:
            seen.add(prompt)
            out.append(prompt)
    return out


def old_task_answer(prompt: str) -> str:
    """The exact answer of an old-task prompt: its digits reversed."""
    p = parse_extended(prompt)
    if p.kind != "old":
        raise InputError(f"not an old-task prompt '<digits>~=': {prompt[:40]!r}")
    return p.ctx[::-1]


def written_instruction(text: str) -> str | None:
    """The task prompt an instruction-writing answer describes (``text + '='``), or None when it is not one of
    today's prompts with a 4-8 digit context (the range the tasks are drawn from)."""
    m = _PROMPT.match(text + "=")
    return text + "=" if m is not None and 4 <= len(m.group(1)) <= 8 else None


def instruction_demonstrations(n: int, *, seed: int) -> list[str]:
    """Answers for the instruction-writing prompt: well-formed task instructions (today's prompts without '=')."""
    return [p[:-1] for p in make_prompts(n, seed=seed)]


def _target(p: ExtendedPrompt) -> tuple[int, Callable[[int, str], bool]]:
    """(length n, whether character ch at position i is right) of a task or old-task prompt."""
    if p.kind == "task":
        return len(p.ctx), lambda i, ch: ch == p.keyword
    rev = p.ctx[::-1]
    return len(p.ctx), lambda i, ch: i < len(rev) and ch == rev[i]


def wrong_positions(prompt: str, response: str) -> tuple[int, ...]:
    """Positions in ``range(max(n, len(response)))`` that are wrong: a wrong character, a missing one (the response
    is short) or an extra one (the response is long). The oracle score is ``1 - len(wrong) / max(n, len(response))``.
    """
    p = parse_extended(prompt)
    if p.kind == "write":
        raise InputError("instruction-writing answers have no positions to critique; use written_instruction")
    n, right = _target(p)
    width = max(n, len(response))
    return tuple(i for i in range(width) if i >= n or i >= len(response) or not right(i, response[i]))


def extended_oracle_score(prompt: str, response: str) -> float:
    """Exact score in [0, 1] of any prompt of the extended task.

    Task prompts (with or without critique or previous answer) score the answer against their base prompt with
    :func:`oracle_score`; the old task scores ``1 - #wrong / max(n, len(y))`` against the reversal; instruction
    writing scores 1 for a well-formed instruction (:func:`written_instruction`) and 0 otherwise.
    """
    p = parse_extended(prompt)
    if p.kind == "task":
        return oracle_score(p.base, response)
    if p.kind == "write":
        return 1.0 if written_instruction(response) is not None else 0.0
    width = max(len(p.ctx), len(response))
    return 1.0 - len(wrong_positions(prompt, response)) / width


def critic(instruction: str, response: str) -> tuple[bool, str]:
    """The programmatic critic of the extended task: (verdict, critique) for one response.

    The verdict is *good* when the exact score is at least :data:`GOOD_THRESHOLD`. The critique names every wrong
    position (:func:`wrong_positions`) as one digit each, in order, and never the correction (the keyword or the
    reversed digit); an empty critique means nothing is wrong. Contexts or responses longer than
    :data:`MAX_CRITIQUE_POSITIONS` characters cannot be named by one digit per position and are an InputError.
    """
    p = parse_extended(instruction)
    if p.kind == "write":
        raise InputError("the critic judges answers to task or old-task prompts, not instruction writing")
    if max(len(p.ctx), len(response)) > MAX_CRITIQUE_POSITIONS:
        raise InputError(
            f"the critic names positions 0-{MAX_CRITIQUE_POSITIONS - 1} by one digit; "
            f"this context or response is longer than {MAX_CRITIQUE_POSITIONS} characters"
        )
    wrong = wrong_positions(instruction, response)
    return extended_oracle_score(instruction, response) >= GOOD_THRESHOLD, "".join(str(i) for i in wrong)


def gold_reference(prompt: str) -> str:
    """A gold reference answer that is good but imperfect: every context digit replaced by the keyword except one.

    The kept position is drawn from a hash of the prompt among the positions whose digit is not the keyword, so
    the reference scores (n - 1) / n, never 1 (when every digit already is the keyword, the last one is dropped,
    scoring (n - 1) / n as well). It is not the oracle's criterion: a method that copies it stays below perfect.
    """
    p = parse_extended(prompt)
    if p.kind != "task":
        raise InputError(f"gold references exist for task prompts '<digits>+<a-j>=': {prompt[:40]!r}")
    candidates = [i for i, ch in enumerate(p.ctx) if ch != p.keyword]
    if not candidates:
        return p.keyword * (len(p.ctx) - 1)
    keep = candidates[int(example_key(p.base, "gold", "reference"), 16) % len(candidates)]
    return "".join(ch if i == keep else p.keyword for i, ch in enumerate(p.ctx))


@dataclass(frozen=True)
class StartConfig:
    """Sizes and seeds of the shared starting policy of the extended task (about 30 s on one CPU thread).

    The old task (reversal, exact demonstrations) is learned first for ``old_steps``; then today's task (mediocre
    demonstrations, q = 0.25) mixed with ``n_write`` instruction-writing demonstrations for ``sft_steps``.
    """

    seed: int = 0
    n_old_prompts: int = 2000
    old_steps: int = 300
    n_sft_prompts: int = 2000
    n_write: int = 200
    sft_steps: int = 300
    lr: float = 3e-3
    batch_size: int = 64
    n_old_eval: int = 200


@dataclass
class StartPolicy:
    """The shared SFT starting policy of the extended task, its tokenizer and what each stage cost.

    ``old_task_learned`` is the mean old-task score (one sample on each of ``n_old_eval`` fresh old-task prompts)
    right after the old stage: the level a forgetting check compares with.
    """

    config: StartConfig
    tokenizer: PreTrainedTokenizerFast
    model: nn.Module
    old_stats: TrainStats
    sft_stats: TrainStats
    old_task_learned: float


def train_start_policy(config: StartConfig | None = None) -> StartPolicy:
    """Train the shared starting policy: a tiny Llama with the extended tokenizer, old task first, then today's
    task and instruction writing. Deterministic in ``config.seed``."""
    from pasture.train.sft import train_sft
    from pasture.train.tiny import tiny_llama

    cfg = config or StartConfig()
    tok = extended_tokenizer()
    optim = OptimSettings(lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.old_steps)
    old = old_task_prompts(cfg.n_old_prompts, seed=cfg.seed + 31)
    model, old_stats = train_sft(
        tiny_llama(tok, seed=cfg.seed),
        tok,
        old,
        [old_task_answer(p) for p in old],
        optim=optim,
        seed=cfg.seed,
        method="sft_old_task",
    )
    learned = mean_score(model, tok, old_task_prompts(cfg.n_old_eval, seed=cfg.seed + 32), seed=cfg.seed + 33)
    prompts = make_prompts(cfg.n_sft_prompts, seed=cfg.seed + 1)
    answers = demonstrations(prompts, seed=cfg.seed + 2)
    prompts += [INSTRUCTION_PROMPT] * cfg.n_write
    answers += instruction_demonstrations(cfg.n_write, seed=cfg.seed + 3)
    model, sft_stats = train_sft(
        model,
        tok,
        prompts,
        answers,
        optim=OptimSettings(lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.sft_steps),
        seed=cfg.seed + 1,
    )
    model.eval()
    return StartPolicy(cfg, tok, model, old_stats, sft_stats, learned)


def mean_score(
    model: nn.Module, tokenizer: PreTrainedTokenizerFast, prompts: Sequence[str], *, seed: int, temperature: float = 1.0
) -> float:
    """Mean :func:`extended_oracle_score` of one sample per prompt (e.g. old-task prompts: the forgetting check)."""
    gens = generate(
        model, tokenizer, prompts, n=1, max_new_tokens=MAX_RESPONSE_TOKENS, temperature=temperature, seed=seed
    )
    return sum(extended_oracle_score(p, g[0].text) for p, g in zip(prompts, gens, strict=True)) / max(len(prompts), 1)
