"""Self-J's pieces on a real tiny Llama: score-token alignment, the loss's parts and gradients, the score, labels."""

from __future__ import annotations

import pytest
import torch

from pasture.errors import InputError
from pasture.train.self_j import (
    char_overlap,
    digit_token_ids,
    expected_digit,
    recalibrated_label,
    score_logits,
    self_j_loss,
)
from pasture.train.synthetic import task_tokenizer
from pasture.train.tiny import tiny_llama


def _padded(tok, texts: list[str], n_score: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[no-untyped-def]
    """Left-pad some rows, right-pad others (both happen across batches), marking the last n_score tokens."""
    rows = [tok.encode(t, add_special_tokens=False) for t in texts]
    width = max(map(len, rows)) + 2
    ids = torch.full((len(rows), width), tok.pad_token_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    score = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        start = 2 if i % 2 else 0
        ids[i, start : start + len(r)] = torch.tensor(r)
        mask[i, start : start + len(r)] = 1
        score[i, start + len(r) - n_score : start + len(r)] = True
    return ids, mask, score


def test_score_logits_are_aligned_by_the_score_tokens_whatever_the_prompt_length() -> None:
    tok = task_tokenizer()
    model = tiny_llama(tok, seed=0)
    teacher_texts = ["1234+c=3333+3233=7", "98765+a=0000+00765=42"]  # with a reference: longer prompts
    student_texts = ["1234+c=3233=7", "98765+a=00765=42"]
    for texts, n_score in ((teacher_texts, 1), (student_texts, 1), (["98765+a=00765=42"], 2)):
        ids, mask, score = _padded(tok, texts, n_score)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
            picked = score_logits(logits, score)
            for i, text in enumerate(texts):
                alone = torch.tensor([tok.encode(text, add_special_tokens=False)])
                want = model(input_ids=alone).logits[0, -n_score - 1 : -1]
                assert torch.allclose(picked[i], want, atol=1e-4)


def test_score_logits_refuse_unequal_or_missing_score_tokens() -> None:
    logits = torch.zeros((2, 5, 3))
    score = torch.zeros((2, 5), dtype=torch.bool)
    score[0, 4] = True
    with pytest.raises(InputError, match="same, non-zero number"):
        score_logits(logits, score)
    score[1, 0] = True
    with pytest.raises(InputError, match="position 0"):
        score_logits(logits, score)


def test_loss_parts_and_the_detached_teacher() -> None:
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn((4, 1, 12), generator=g, requires_grad=True)
    student = torch.randn((4, 1, 12), generator=g, requires_grad=True)
    targets = torch.tensor([[3], [5], [7], [9]])
    loss = self_j_loss(teacher, student, targets)
    nll = torch.nn.functional.cross_entropy
    assert torch.isclose(loss.teacher_nll, nll(teacher[:, 0], targets[:, 0]))
    assert torch.isclose(loss.total, loss.teacher_nll + 0.3 * loss.student_nll + 2.0 * loss.kl)
    assert loss.kl > 0
    loss.total.backward()
    teacher_grad = teacher.grad.clone()  # type: ignore[union-attr]
    teacher.grad = None
    nll(teacher[:, 0], targets[:, 0]).backward()
    assert torch.allclose(teacher_grad, teacher.grad)  # type: ignore[arg-type]  # KL sends nothing to the teacher
    same = self_j_loss(student.detach(), student.detach(), targets)
    assert float(same.kl) == pytest.approx(0.0, abs=1e-7)
    without = self_j_loss(teacher, student, targets, kl_weight=0.0)
    assert torch.isclose(without.total, without.teacher_nll + 0.3 * without.student_nll)
    with pytest.raises(InputError, match="aligned"):
        self_j_loss(teacher, student[:3], targets)


def test_expected_digit_and_digit_tokens() -> None:
    tok = task_tokenizer()
    ids = digit_token_ids(tok)
    assert tok.decode(ids) == "0123456789"
    logits = torch.zeros((2, len(tok)))
    logits[1, ids[7]] = 50.0
    logits[:, 0] = 100.0  # a non-digit token never counts
    got = expected_digit(logits, ids)
    assert got[0] == pytest.approx(4.5) and got[1] == pytest.approx(7.0, abs=1e-6)


def test_recalibrated_label() -> None:
    assert char_overlap("3333", "3333") == 1.0 and char_overlap("3233", "3333") == 0.75
    assert recalibrated_label(8, "3233", "3333") == round(0.5 * 8 + 0.5 * 9 * 0.75)
    assert recalibrated_label(8, "3233", "3333", weight=0.0) == 8
    assert recalibrated_label(2, "3333", "3333", weight=1.0) == 9
    with pytest.raises(InputError, match="0-9"):
        recalibrated_label(10, "1", "1")
