"""Self-J's pieces on a real tiny Llama: score-token alignment, the loss's parts and gradients, the score, labels."""

from __future__ import annotations

import pytest
import torch

from pasture.errors import InputError
from pasture.train.self_j import (
    KL_WEIGHT,
    STUDENT_WEIGHT,
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


# -- the trainer and its registry entry ---------------------------------------------------------------------------


def test_self_j_is_registered_with_the_papers_weights() -> None:
    from click.testing import CliRunner

    from pasture.cli import main
    from pasture.train.registry import SelfJSettings, get_method, method_for_settings

    spec = get_method("self_j")
    assert spec.inputs == ("demonstrations",) and spec.produces == "judge"
    s = SelfJSettings()
    assert (s.student_weight, s.kl_weight) == (STUDENT_WEIGHT, KL_WEIGHT) == (0.3, 2.0)
    assert method_for_settings(SelfJSettings(kl_weight=0.0)) == "self_j"
    with pytest.raises(InputError, match="recalibration_weight"):
        SelfJSettings(recalibration_weight=1.5)
    result = CliRunner().invoke(main, ["train", "self_j", "--help"])
    assert result.exit_code == 0 and "--kl-weight" in result.output and "--demonstrations" in result.output


def test_word_f1_by_hand() -> None:
    from pasture.train.self_j import word_f1

    # 3 shared words of 3 and 4: precision 1, recall 3/4, F1 = 2·(3/4)/(1 + 3/4) = 6/7
    assert word_f1("the cat sat", "The cat sat down") == pytest.approx(6 / 7)
    assert word_f1("a b", "c d e f") == 0.0 and word_f1("", "") == 1.0
    assert word_f1("a a b", "a b b c") == pytest.approx(2 * (2 / 3) * (2 / 4) / (2 / 3 + 2 / 4))


def test_train_self_j_from_a_demonstrations_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from pasture.cli import main
    from pasture.judges.self_j import is_self_j_checkpoint, self_j_format
    from pasture.train.synthetic import extended_tokenizer, gold_reference, make_prompts

    torch.set_num_threads(1)
    tok = extended_tokenizer()
    ckpt = tmp_path / "tiny"
    tiny_llama(tok).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    prompts = make_prompts(8, seed=1)
    demos = tmp_path / "demos.jsonl"
    demos.write_text("".join(json.dumps({"instruction": p, "output": gold_reference(p)}) + "\n" for p in prompts))
    out = tmp_path / "judge"
    args = ["train", "self_j", "--model", str(ckpt), "--demonstrations", str(demos), "--steps", "2",
            "--batch-size", "4", "--prompt-format", "synthetic", "--similarity", "char_overlap",
            "--max-new-tokens", "10", "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["steps"] == 2 and stats["method"] == "self_j" and stats["metrics"]["n_examples"] == 16
    assert is_self_j_checkpoint(out) and self_j_format(out) == "synthetic"
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["settings"]["kl_weight"] == 2.0 and run["identity"]["settings"]["student_weight"] == 0.3


def test_no_kl_leaves_the_student_to_its_own_labels() -> None:
    """With kl_weight 0 the loss is the two likelihoods alone; with it, the KL part is added (hand check)."""
    torch.manual_seed(0)
    teacher, student = torch.randn(3, 1, 12), torch.randn(3, 1, 12, requires_grad=True)
    targets = torch.tensor([[1], [4], [7]])
    off = self_j_loss(teacher, student, targets, kl_weight=0.0)
    on = self_j_loss(teacher, student, targets)
    assert off.total.item() == pytest.approx((off.teacher_nll + 0.3 * off.student_nll).item())
    assert on.total.item() == pytest.approx((off.total + 2.0 * on.kl).item())
