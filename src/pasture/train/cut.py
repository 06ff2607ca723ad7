"""CUT, Contrastive Unlikelihood Training (Xu et al., "Reasons to Reject? Aligning Language Models with
Judgments"): learning from a judge's verdict and critique of single responses.

Each training example is an instruction x, a response y = (y_1 .. y_T, EOS), a verdict (good or bad) and, for a bad
response, a judgment j (the critique). With p the policy and detached probabilities written p̄:

* a **good** response gets likelihood on (x, y):            L_lik = −(1/T) Σ_t log p(y_t | x, y_<t)
* a **bad** response gets likelihood on (x, j, y):          L_lik = −(1/T) Σ_t log p(y_t | x, j, y_<t)
  plus unlikelihood on (x, y) for the tokens the judgment explains, those whose probability rises by more than
  λ× when j is added to the context::

      F = { t : p̄(y_t | x, j, y_<t) / p̄(y_t | x, y_<t) > λ }
      L_ul = −(α/T) Σ_{t ∈ F} log(1 − p(y_t | x, y_<t))

* the example's loss is (L_lik + L_ul) / 2 (L_ul = 0 for a good response); a batch's loss is the mean of its
  examples' losses, so an example weighs the same whatever else its batch holds.

T counts the response tokens including EOS (EOS is learned, and can be flagged). λ = ∞ switches the unlikelihood
term off (the "CUT without unlikelihood" ablation). 1 − p is clamped below at :data:`MIN_ONE_MINUS_P` so that a
flagged token the policy is certain of costs at most −log(1e-6) ≈ 13.8 rather than infinity.

Defaults are the paper's: offline (judgments of a fixed set of responses) λ = 1.2, α = 0.5; online (judgments of the
current policy's samples) λ = 1.1, α = 1; good examples are subsampled to 0.25× the number of bad ones.

Deviations from the official code (each a fix; docs/train.md): the unlikelihood weight is per example (the official
code applies the first example's to the whole batch); the loss is normalised per example (the official code's scale
depends on how many good and bad examples, and tokens, a batch holds); the subsampling of good examples is seeded;
EOS is learned (the official code never trains it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.core import (
    Loop,
    LoraSettings,
    OptimSettings,
    SequenceBatch,
    TrainingData,
    TrainStats,
    apply_lora,
    cycle_batches,
    encode_sequences,
    generate,
    set_seed,
    timed,
    token_logprobs,
)
from pasture.train.registry import CUTSettings, TrainSettings

MIN_ONE_MINUS_P = 1e-6
"""Lower clamp of 1 − p in the unlikelihood term (see the module docstring)."""


@dataclass(frozen=True)
class JudgedResponse:
    """One response with its single-response judgment: the verdict and, for the model, the judged context.

    ``judged_prompt`` is the model input holding (x, j): the instruction with the critique in context, rendered by
    the task's format (:func:`pasture.train.synthetic.critique_prompt` on the synthetic task,
    :func:`critique_context` for chat models). Good responses never use it.
    """

    prompt: str
    response: str
    good: bool
    judged_prompt: str


@dataclass(frozen=True)
class CUTLoss:
    """CUT's loss of a batch and how it was made (shapes: B examples, L response positions).

    ``loss`` = mean of ``per_example``; ``likelihood`` and ``unlikelihood`` are the per-example terms before the
    division by 2; ``flagged`` marks the tokens that got unlikelihood.
    """

    loss: Tensor
    per_example: Tensor
    likelihood: Tensor
    unlikelihood: Tensor
    flagged: Tensor


def cut_loss(judged_logp: Tensor, plain_logp: Tensor, mask: Tensor, bad: Tensor, settings: CUTSettings) -> CUTLoss:
    """CUT's loss from response-aligned token log-probabilities (definitions in the module docstring).

    ``judged_logp[b, t]`` = log p(y_t | c_b, y_<t) with c_b = (x, j) for a bad example and x for a good one;
    ``plain_logp[b, t]`` = log p(y_t | x, y_<t) (for good examples it may equal ``judged_logp``); ``mask`` [B, L] is
    1 on response tokens (EOS included); ``bad`` [B] is True for bad verdicts. Gradients flow through both
    log-probabilities; the ratio that selects the flagged tokens uses their detached values.
    """
    m = mask.to(judged_logp.dtype)
    n_tokens = m.sum(dim=1).clamp(min=1)
    likelihood = -(judged_logp * m).sum(dim=1) / n_tokens
    log_ratio = (judged_logp.detach() - plain_logp.detach()).masked_fill(m == 0, -math.inf)
    flagged = bad.unsqueeze(1) & (mask > 0) & (log_ratio > math.log(settings.resolved_lam))
    one_minus_p = (-torch.expm1(plain_logp)).clamp(min=MIN_ONE_MINUS_P)
    ul_tokens = -torch.log(one_minus_p) * flagged.to(plain_logp.dtype)
    unlikelihood = settings.resolved_alpha * ul_tokens.sum(dim=1) / n_tokens
    per_example = (likelihood + unlikelihood) / 2
    return CUTLoss(per_example.mean(), per_example, likelihood, unlikelihood, flagged)


def response_logprobs(model: nn.Module, batch: SequenceBatch, width: int) -> tuple[Tensor, Tensor]:
    """Token log-probabilities of the responses aligned at their first token: ([B, width], mask [B, width]).

    The same response after two different contexts (x and (x, j)) lands at different positions of its sequence;
    aligning both at the response start lets :func:`cut_loss` compare them token by token.
    """
    logp = token_logprobs(model, batch)  # [B, S-1]; entry t scores token t+1
    resp = batch.response_mask[:, 1:]
    starts = resp.float().argmax(dim=1)
    offsets = torch.arange(width, device=logp.device)
    index = (starts.unsqueeze(1) + offsets.unsqueeze(0)).clamp(max=logp.shape[1] - 1)
    mask = offsets.unsqueeze(0) < resp.sum(dim=1, keepdim=True)
    return torch.gather(logp, 1, index) * mask.to(logp.dtype), mask


def critique_context(instruction: str, critique: str) -> str:
    """The judged context (x, j) for chat models: the instruction followed by the critique of a previous answer.

    pasture's own wording; the critique is untrusted model text and is only ever placed in the model's input.
    """
    return (
        f"{instruction}\n\nA reviewer judged an answer to this request and gave these reasons to reject it: {critique}"
    )


def subsample_good(examples: Sequence[JudgedResponse], good_ratio: float | None, seed: int) -> list[JudgedResponse]:
    """All bad examples plus a seeded draw (without replacement) of round(good_ratio × #bad) good ones (all of them
    when fewer, or when ``good_ratio`` is None), in their original order."""
    good = [i for i, e in enumerate(examples) if e.good]
    n_bad = len(examples) - len(good)
    if good_ratio is not None:
        k = min(len(good), round(good_ratio * n_bad))
        good = sorted(np.random.default_rng(seed).choice(good, size=k, replace=False).tolist()) if k else []
    keep = set(good)
    return [e for i, e in enumerate(examples) if not e.good or i in keep]


def _step_loss(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    chunk: Sequence[JudgedResponse],
    settings: CUTSettings,
    device: Any,
    enc: dict[str, int],
) -> tuple[CUTLoss, int, int]:
    """CUT's loss on one batch: one forward for every example in its own context, one more for the bad ones on
    (x, y) when the unlikelihood term is on. Returns the loss, the number of tokens forwarded and the number of
    bad-response tokens (the denominator of the flagged fraction)."""
    contexts = [e.prompt if e.good else e.judged_prompt for e in chunk]
    batch = encode_sequences(tokenizer, contexts, [e.response for e in chunk], **enc).to(device)
    width = int(batch.response_mask.sum(dim=1).max().item())
    judged, mask = response_logprobs(model, batch, width)
    bad = torch.tensor([not e.good for e in chunk], device=judged.device)
    n_tokens = batch.n_tokens
    plain = judged
    bad_idx = [i for i, e in enumerate(chunk) if not e.good]
    if bad_idx and math.isfinite(settings.resolved_lam) and settings.resolved_alpha > 0:
        plain_batch = encode_sequences(
            tokenizer, [chunk[i].prompt for i in bad_idx], [chunk[i].response for i in bad_idx], **enc
        ).to(device)
        bad_plain, _ = response_logprobs(model, plain_batch, width)
        index = torch.tensor(bad_idx, device=judged.device)
        plain = judged.index_copy(0, index, bad_plain)
        n_tokens += plain_batch.n_tokens
    n_bad_tokens = int(mask[bad].sum().item())
    return cut_loss(judged, plain, mask, bad, settings), n_tokens, n_bad_tokens


def train_cut(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[JudgedResponse],
    *,
    settings: CUTSettings | None = None,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    max_prompt_tokens: int = 256,
    max_response_tokens: int = 256,
    accelerator: Any = None,
) -> tuple[nn.Module, TrainStats]:
    """Offline CUT on judged responses for ``optim.steps`` steps (good ones subsampled by ``settings.good_ratio``).

    ``stats.metrics``: ``initial_loss``, ``n_good`` and ``n_bad`` (examples trained on), ``flagged_fraction`` (mean
    over steps of the fraction of bad-response tokens that got unlikelihood), ``final_flagged_fraction``.
    """
    settings = settings or CUTSettings()
    optim = optim or OptimSettings(lr=1e-5)
    if not examples:
        raise InputError("no judged responses to train CUT on")
    if all(e.good for e in examples) and settings.good_ratio is not None:
        raise InputError(
            "no bad verdicts: CUT keeps good_ratio × #bad good responses, i.e. none; "
            "pass CUTSettings(good_ratio=None) to train on the good ones alone"
        )
    data = subsample_good(examples, settings.good_ratio, seed)
    n_bad = sum(not e.good for e in data)
    set_seed(seed)
    stats = TrainStats(method="cut" if math.isfinite(settings.resolved_lam) else "cut_no_unlikelihood")
    enc = {"max_prompt_tokens": max_prompt_tokens, "max_response_tokens": max_response_tokens}
    model = apply_lora(model, lora)  # type: ignore[arg-type]
    fractions: list[float] = []
    with timed(stats):
        loop = Loop(model, optim, stats, accelerator=accelerator)
        loop.model.train()
        for idx in map(loop.shard, cycle_batches(len(data), optim.batch_size, optim.steps, seed)):
            chunk = [data[i] for i in idx]
            parts, n_tokens, n_bad_tokens = _step_loss(loop.model, tokenizer, chunk, settings, loop.device, enc)
            if n_bad_tokens:
                fractions.append(float(parts.flagged.sum().item()) / n_bad_tokens)
            loop.step(parts.loss, n_tokens=n_tokens)
    stats.metrics["initial_loss"] = stats.history[0]
    stats.metrics["n_good"] = float(len(data) - n_bad)
    stats.metrics["n_bad"] = float(n_bad)
    stats.metrics["flagged_fraction"] = float(np.mean(fractions)) if fractions else 0.0
    stats.metrics["final_flagged_fraction"] = fractions[-1] if fractions else 0.0
    return loop.accelerator.unwrap_model(loop.model), stats


def fit(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: CUTSettings,
    train: TrainSettings,
) -> tuple[nn.Module, TrainStats]:
    """The registry's trainer (:data:`pasture.train.registry.TRAINER_SIGNATURE`): offline CUT on ``data.judged``."""
    return train_cut(
        model,
        tokenizer,
        data.judged,
        settings=settings,
        optim=train.optim(),
        lora=train.lora(),
        seed=train.seed,
    )


Critic = Callable[[str, str], tuple[bool, str]]
"""A single-response judge: (instruction, response) → (verdict good?, critique text)."""


def judge_responses(
    prompts: Sequence[str],
    responses: Sequence[str],
    critic: Critic,
    render: Callable[[str, str], str],
) -> list[JudgedResponse]:
    """Judge each (prompt, response) with ``critic`` and render the judged context with ``render(prompt, critique)``."""
    out = []
    for p, r in zip(prompts, responses, strict=True):
        good, critique = critic(p, r)
        out.append(JudgedResponse(p, r, good, render(p, critique)))
    return out


def train_cut_online(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    critic: Critic,
    render: Callable[[str, str], str],
    *,
    rounds: int = 2,
    settings: CUTSettings | None = None,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    max_new_tokens: int = 64,
    max_prompt_tokens: int = 256,
    max_response_tokens: int = 256,
    accelerator: Any = None,
) -> tuple[nn.Module, TrainStats]:
    """Online CUT: ``rounds`` times, sample one response per prompt from the current policy, judge it with ``critic``,
    and train offline CUT on those judgments for ``optim.steps // rounds`` steps (defaults: the online preset).

    Each round starts a fresh optimiser state (AdamW moments are not carried across rounds). ``stats`` sums the
    rounds; ``metrics['mean_good_round_<r>']`` is the fraction of good verdicts among round r's samples.
    """
    if rounds < 1 or not prompts:
        raise InputError("online CUT needs at least one round and one prompt")
    settings = settings or CUTSettings.online()
    optim = optim or OptimSettings(lr=1e-5)
    per_round = OptimSettings(
        lr=optim.lr,
        weight_decay=optim.weight_decay,
        max_grad_norm=optim.max_grad_norm,
        batch_size=optim.batch_size,
        steps=max(1, optim.steps // rounds),
    )
    total = TrainStats(method="cut_online")
    policy = apply_lora(model, lora)  # type: ignore[arg-type]
    for r in range(rounds):
        with timed(total):
            gens = generate(policy, tokenizer, prompts, n=1, max_new_tokens=max_new_tokens, seed=seed + 7919 * r)
        texts = [g[0].text for g in gens]
        total.generated_tokens += sum(len(g[0].response_ids) for g in gens)
        judged = judge_responses(prompts, texts, critic, render)
        total.metrics[f"mean_good_round_{r}"] = sum(j.good for j in judged) / len(judged)
        policy, stats = train_cut(
            policy,
            tokenizer,
            judged,
            settings=settings,
            optim=per_round,
            seed=seed + r,
            max_prompt_tokens=max_prompt_tokens,
            max_response_tokens=max_response_tokens,
            accelerator=accelerator,
        )
        total.steps += stats.steps
        total.train_tokens += stats.train_tokens
        total.wall_s += stats.wall_s
        total.history += stats.history
        for key, value in stats.metrics.items():
            total.metrics[f"{key}_round_{r}"] = value
    return policy, total


def read_judged_responses(
    path: str | Path, render: Callable[[str, str], str] = critique_context
) -> list[JudgedResponse]:
    """Judged responses from JSONL, one per line: ``instruction`` (or ``prompt``), ``output`` (or ``response``),
    ``good`` (true/false, the verdict) and ``critique`` (text; required when ``good`` is false). The judged context
    is ``render(instruction, critique)`` (:func:`critique_context` for chat models)."""
    from pasture.train.models import _jsonl, _text

    p = Path(path)
    out = []
    for i, r in enumerate(_jsonl(p), start=1):
        instruction = _text(r.get("instruction", r.get("prompt")), p, i, "instruction")
        response = _text(r.get("output", r.get("response")), p, i, "output")
        good = r.get("good")
        if not isinstance(good, bool):
            raise InputError("'good' must be true or false (the verdict)", path=p, row=i, field="good")
        critique = r.get("critique", "")
        if not isinstance(critique, str) or (not good and not critique.strip()):
            raise InputError("a bad verdict needs its critique as text", path=p, row=i, field="critique")
        out.append(JudgedResponse(instruction, response, good, render(instruction, critique)))
    return out
