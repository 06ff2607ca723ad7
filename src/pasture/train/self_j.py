"""Self-J's pieces (Self-Judge, selective instruction following): labels, the aligned loss, the expected-digit score.

The trainer (:func:`train_self_j`, registered as ``pasture train self_j`` through :func:`fit`) samples the model's
own responses to prompts that have gold references, labels them (:func:`label_examples`), and trains teacher and
student together on the loss below. The result is a judge checkpoint (``pasture.judges.self_j``). The synthetic
comparison is ``pasture.train.self_j_synthetic``.

A Self-J judge rates a response 0-9. The **teacher** sees instruction, response and a gold reference; the
**student** sees no reference. Both are the same model with two prompts. The training target of each example is
a rating (:func:`recalibrated_label`: the model's own rating given the reference, moved towards the response's
similarity to the reference by a pluggable similarity function). The loss on the score tokens is::

    loss = NLL_teacher(label) + 0.3 · NLL_student(label) + 2 · KL(p_teacher ‖ p_student)

with ``p_teacher`` detached (the student is pulled towards the teacher, never the reverse). Teacher and student
sequences differ in length (the reference is in one prompt only), so their positions are **aligned by the score
tokens** (:func:`score_logits` picks, per row, the logits that predict each score token) rather than by offsets
from either end, which misalign when padding or truncation differ. The judge's score is the **expected digit**
over the first score token's probabilities restricted to ``0``..``9`` (:func:`expected_digit`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.judges.self_j import SELF_J_CONFIG_KEY, SELF_J_FORMATS, render
from pasture.train.core import (
    Loop,
    LoraSettings,
    OptimSettings,
    TrainingData,
    TrainStats,
    apply_lora,
    cycle_batches,
    generate,
    set_seed,
    timed,
)
from pasture.train.registry import SelfJSettings, TrainSettings

DIGITS = "0123456789"
STUDENT_WEIGHT = 0.3
"""Weight of the student's own likelihood term (Self-J's)."""
KL_WEIGHT = 2.0
"""Weight of KL(teacher ‖ student) on the score tokens (Self-J's)."""

Similarity = Callable[[str, str], float]
"""``similarity(response, reference) -> [0, 1]``: how close a response is to the gold reference."""


def char_overlap(response: str, reference: str) -> float:
    """Share of positions where ``response`` and ``reference`` hold the same character, over the longer length
    (1 = identical, 0 = nothing in place); the default similarity for character-level tasks."""
    n = max(len(response), len(reference))
    if n == 0:
        return 1.0
    return sum(a == b for a, b in zip(response, reference, strict=False)) / n


def recalibrated_label(
    rating: float, response: str, reference: str, *, similarity: Similarity = char_overlap, weight: float = 0.5
) -> int:
    """The training rating 0-9: ``round((1 - weight) · rating + weight · 9 · similarity(response, reference))``.

    ``rating`` is the model's own 0-9 rating given the reference; ``weight`` in [0, 1] is how far the similarity
    moves it (pasture's form of Self-J's recalibration, docs/judges.md).
    """
    if not 0.0 <= rating <= 9.0:
        raise InputError(f"a rating is on 0-9, got {rating}")
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"the recalibration weight is in [0, 1], got {weight}")
    sim = float(similarity(response, reference))
    if not 0.0 <= sim <= 1.0:
        raise InputError(f"similarity must be in [0, 1], got {sim} from {getattr(similarity, '__name__', similarity)}")
    return round((1.0 - weight) * rating + weight * 9.0 * sim)


def digit_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids of ``0``..``9``; each digit must be one token of ``tokenizer``."""
    ids = []
    for d in DIGITS:
        got = tokenizer.encode(d, add_special_tokens=False)
        if len(got) != 1:
            raise InputError(f"digit {d!r} is {len(got)} tokens in this tokenizer; Self-J scores need one token each")
        ids.append(int(got[0]))
    return ids


def score_logits(logits: Tensor, score_mask: Tensor) -> Tensor:
    """The logits that predict each score token, aligned by the score tokens: shape [B, S, V].

    ``logits`` [B, T, V] are a causal LM's outputs; ``score_mask`` [B, T] marks the score tokens of each row
    (every row the same number S of them, none at position 0). The logits predicting the token at position t
    sit at t - 1, wherever the row's prompt made the score tokens land.
    """
    if score_mask.shape != logits.shape[:2]:
        raise InputError(f"score_mask {tuple(score_mask.shape)} does not match logits {tuple(logits.shape[:2])}")
    counts = score_mask.sum(dim=1)
    if len(counts) == 0 or int(counts.min()) == 0 or int(counts.min()) != int(counts.max()):
        raise InputError(f"every row needs the same, non-zero number of score tokens, got {counts.tolist()}")
    if bool(score_mask[:, 0].any()):
        raise InputError("a score token at position 0 has no logits predicting it")
    rows, cols = score_mask.nonzero(as_tuple=True)  # row-major: each row's positions in order
    return logits[rows, cols - 1].reshape(logits.shape[0], int(counts[0]), logits.shape[-1])


@dataclass(frozen=True)
class SelfJLoss:
    """The loss and its three parts (means over score tokens)."""

    total: Tensor
    teacher_nll: Tensor
    student_nll: Tensor
    kl: Tensor


def self_j_loss(
    teacher: Tensor,
    student: Tensor,
    targets: Tensor,
    *,
    student_weight: float = STUDENT_WEIGHT,
    kl_weight: float = KL_WEIGHT,
) -> SelfJLoss:
    """Self-J's loss from aligned score-token logits (``score_logits``) of teacher and student, [B, S, V] each,
    and the score tokens ``targets`` [B, S]. ``kl_weight = 0`` is the student trained on its labels alone."""
    if teacher.shape != student.shape or teacher.shape[:2] != targets.shape:
        raise InputError(
            f"teacher {tuple(teacher.shape)}, student {tuple(student.shape)} and targets {tuple(targets.shape)} "
            "must be aligned by the score tokens"
        )
    vocab = teacher.shape[-1]
    t_nll = F.cross_entropy(teacher.reshape(-1, vocab).float(), targets.reshape(-1))
    s_nll = F.cross_entropy(student.reshape(-1, vocab).float(), targets.reshape(-1))
    t_logp = F.log_softmax(teacher.detach().float(), dim=-1)
    s_logp = F.log_softmax(student.float(), dim=-1)
    kl = (t_logp.exp() * (t_logp - s_logp)).sum(dim=-1).mean()
    return SelfJLoss(total=t_nll + student_weight * s_nll + kl_weight * kl, teacher_nll=t_nll, student_nll=s_nll, kl=kl)


def expected_digit(first_score_logits: Tensor, digit_ids: list[int]) -> Tensor:
    """Σ_d d · p(d) with p the softmax of the first score token's logits over the ten digit tokens only: [B]."""
    if len(digit_ids) != len(DIGITS):
        raise InputError(f"need the ten digit token ids, got {len(digit_ids)}")
    p = torch.softmax(first_score_logits[..., digit_ids].float(), dim=-1)
    return (p * torch.arange(10, dtype=p.dtype, device=p.device)).sum(dim=-1)


def word_f1(response: str, reference: str) -> float:
    """F1 of the word multisets of ``response`` and ``reference`` (case-folded; 1 = same words, 0 = none shared;
    two empty texts = 1): a similarity for natural-language answers, with no model to download."""
    a = response.lower().split()
    b = reference.lower().split()
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    common = sum(min(a.count(w), b.count(w)) for w in set(a))
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


SIMILARITIES: dict[str, Similarity] = {"char_overlap": char_overlap, "word_f1": word_f1}
"""The similarity functions :class:`~pasture.train.registry.SelfJSettings` can name; any other
``Similarity`` can be passed to :func:`label_examples` from Python."""


@dataclass(frozen=True)
class SelfJExample:
    """One training example: an instruction, a response, its gold reference, the model's own rating of it given
    the reference (0-9, expected digit) and the training label (the rating recalibrated, 0-9)."""

    prompt: str
    response: str
    reference: str
    rating: float
    label: int


def _format(name: str) -> tuple[str, str]:
    if name not in SELF_J_FORMATS:
        raise InputError(f"unknown Self-J prompt format {name!r}; choose one of {', '.join(SELF_J_FORMATS)}")
    return SELF_J_FORMATS[name]


def student_text(fmt: str, prompt: str, response: str) -> str:
    """The student's prompt text (no reference), exactly as the judge sends it."""
    return render(_format(fmt)[0], instruction=prompt, output=response)


def teacher_text(fmt: str, prompt: str, response: str, reference: str) -> str:
    """The teacher's prompt text: the student's with the gold reference."""
    return render(_format(fmt)[1], instruction=prompt, output=response, reference=reference)


def _encode(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], labels: Sequence[int] | None, max_tokens: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Right-padded ids of each text (its last ``max_tokens - 1`` tokens, as a completions provider encodes it)
    followed by the label's digit token, the attention mask, and the score mask marking that digit. With
    ``labels`` None a placeholder digit is appended and only the logits before it are meant to be read."""
    digits = digit_token_ids(tokenizer)
    rows = []
    for i, t in enumerate(texts):
        ids = list(tokenizer(t, add_special_tokens=True)["input_ids"])[-(max_tokens - 1) :]
        rows.append([*ids, digits[labels[i] if labels is not None else 0]])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(map(len, rows))
    ids_t = torch.full((len(rows), width), int(pad), dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    score = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids_t[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        attn[i, : len(r)] = 1
        score[i, len(r) - 1] = True
    return ids_t, attn, score


@torch.no_grad()
def expected_digits(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    max_tokens: int = 1024,
) -> list[float]:
    """The expected digit (0-9) the model gives after each prompt text: the Self-J score of a judge checkpoint
    in memory (the same number the ``expected_digit`` judge reads from the saved checkpoint, up to digits
    missing from its top alternatives)."""
    digits = digit_token_ids(tokenizer)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[float] = []
    for start in range(0, len(texts), batch_size):
        ids, attn, score = _encode(tokenizer, texts[start : start + batch_size], None, max_tokens)
        logits = model(input_ids=ids.to(device), attention_mask=attn.to(device)).logits
        first = score_logits(logits, score.to(device))[:, 0]
        out += expected_digit(first, digits).tolist()
    model.train(was_training)
    return out


def label_examples(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    references: Sequence[str],
    *,
    fmt: str,
    similarity: Similarity = char_overlap,
    weight: float = 0.5,
) -> list[SelfJExample]:
    """Self-J's labels: the model's own rating of each response given its gold reference (the expected digit
    under the teacher prompt), recalibrated towards the response's similarity to the reference
    (:func:`recalibrated_label`)."""
    if not (len(prompts) == len(responses) == len(references)) or not prompts:
        raise InputError("need equally many, and at least one, prompts, responses and references")
    ratings = expected_digits(
        model, tokenizer, [teacher_text(fmt, p, r, g) for p, r, g in zip(prompts, responses, references, strict=True)]
    )
    return [
        SelfJExample(p, r, g, a, recalibrated_label(a, r, g, similarity=similarity, weight=weight))
        for p, r, g, a in zip(prompts, responses, references, ratings, strict=True)
    ]


def sample_examples(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    references: Sequence[str],
    settings: SelfJSettings,
    *,
    seed: int,
    similarity: Similarity | None = None,
) -> list[SelfJExample]:
    """The model's own samples (``settings.samples_per_prompt`` per prompt) labelled by :func:`label_examples`."""
    gens = generate(
        model,
        tokenizer,
        prompts,
        n=settings.samples_per_prompt,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        seed=seed,
    )
    flat_p = [p for p, g in zip(prompts, gens, strict=True) for _ in g]
    flat_g = [ref for ref, g in zip(references, gens, strict=True) for _ in g]
    flat_r = [x.text for g in gens for x in g]
    return label_examples(
        model,
        tokenizer,
        flat_p,
        flat_r,
        flat_g,
        fmt=settings.prompt_format,
        similarity=similarity or SIMILARITIES[settings.similarity],
        weight=settings.recalibration_weight,
    )


def train_self_j(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[SelfJExample],
    *,
    settings: SelfJSettings | None = None,
    optim: OptimSettings | None = None,
    lora: LoraSettings | None = None,
    seed: int = 0,
    max_tokens: int = 1024,
    accelerator: Any = None,
) -> tuple[nn.Module, TrainStats]:
    """Train teacher and student (one model, two prompts) on labelled examples for ``optim.steps`` steps.

    Each step forwards the batch once with the teacher prompt and once with the student prompt, picks each
    row's logits predicting its score digit (:func:`score_logits`: aligned by the score token, wherever the
    two prompts put it) and minimises :func:`self_j_loss`. The returned model's config records the prompt
    format (``config.self_j``) so a saved checkpoint is recognised as a Self-J judge. ``stats.metrics``:
    ``initial_loss`` and the final step's ``teacher_nll``, ``student_nll``, ``kl``; ``mean_label``.
    """
    settings = settings or SelfJSettings()
    optim = optim or OptimSettings(lr=1e-5)
    if not examples:
        raise InputError("no labelled examples to train Self-J on")
    fmt = settings.prompt_format
    _format(fmt)
    set_seed(seed)
    stats = TrainStats(method="self_j" if settings.kl_weight > 0 else "self_j_no_kl")
    model = apply_lora(model, lora)  # type: ignore[arg-type]
    last: SelfJLoss | None = None
    with timed(stats):
        loop = Loop(model, optim, stats, accelerator=accelerator)
        loop.model.train()
        for idx in map(loop.shard, cycle_batches(len(examples), optim.batch_size, optim.steps, seed)):
            chunk = [examples[i] for i in idx]
            labels = [e.label for e in chunk]
            t_ids, t_attn, t_score = _encode(
                tokenizer, [teacher_text(fmt, e.prompt, e.response, e.reference) for e in chunk], labels, max_tokens
            )
            s_ids, s_attn, s_score = _encode(
                tokenizer, [student_text(fmt, e.prompt, e.response) for e in chunk], labels, max_tokens
            )
            dev = loop.device
            t_logits = loop.model(input_ids=t_ids.to(dev), attention_mask=t_attn.to(dev)).logits
            s_logits = loop.model(input_ids=s_ids.to(dev), attention_mask=s_attn.to(dev)).logits
            targets = t_ids.to(dev)[t_score.to(dev)].reshape(len(chunk), 1)
            last = self_j_loss(
                score_logits(t_logits, t_score.to(dev)),
                score_logits(s_logits, s_score.to(dev)),
                targets,
                student_weight=settings.student_weight,
                kl_weight=settings.kl_weight,
            )
            loop.step(last.total, n_tokens=int(t_attn.sum() + s_attn.sum()))
    assert last is not None
    stats.metrics["initial_loss"] = stats.history[0]
    stats.metrics["teacher_nll"] = float(last.teacher_nll.item())
    stats.metrics["student_nll"] = float(last.student_nll.item())
    stats.metrics["kl"] = float(last.kl.item())
    stats.metrics["mean_label"] = float(np.mean([e.label for e in examples]))
    trained = loop.accelerator.unwrap_model(loop.model)
    config = getattr(trained, "config", None)
    if config is not None:
        setattr(config, SELF_J_CONFIG_KEY, {"format": fmt, "version": 1})
    return trained, stats


def fit(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: SelfJSettings,
    train: TrainSettings,
) -> tuple[nn.Module, TrainStats]:
    """The registry's trainer (:data:`pasture.train.registry.TRAINER_SIGNATURE`): ``data.prompts`` with their gold
    references ``data.responses`` (the demonstrations file); the model samples, rates and is trained."""
    if not data.prompts or len(data.prompts) != len(data.responses):
        raise InputError("Self-J needs demonstrations: instructions with their gold reference answers")
    examples = sample_examples(model, tokenizer, data.prompts, data.responses, settings, seed=train.seed)
    trained, stats = train_self_j(
        model, tokenizer, examples, settings=settings, optim=train.optim(), lora=train.lora(), seed=train.seed
    )
    stats.generated_tokens = 0
    stats.metrics["n_examples"] = float(len(examples))
    return trained, stats
