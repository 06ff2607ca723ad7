"""Self-J's pieces (Self-Judge, selective instruction following): labels, the aligned loss, the expected-digit score.

Status: the loss, the score and the labels are here and tested; the trainer, its registry entry
(``pasture train self_j``) and the synthetic-task experiment are not written yet (docs/judges.md says so).

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

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError

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
