"""Forgetting measures: the held-out team-written text scored by log-likelihood, the synthetic old task, and
`pasture train` recording both scores for a Control LLM run from files."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch
from click.testing import CliRunner

from pasture.cli import main
from pasture.train.control_llm import is_expanded
from pasture.train.models import load_policy
from pasture.train.retention import retention_passages, synthetic_old_task_score, text_score
from pasture.train.synthetic import extended_tokenizer, old_task_answer, old_task_prompts
from pasture.train.tiny import tiny_llama


def test_the_text_score_is_the_geometric_mean_token_probability() -> None:
    passages = retention_passages()
    assert len(passages) == 16 and all(len(p) > 100 for p in passages)
    tok = extended_tokenizer()
    model = tiny_llama(tok, seed=0)
    texts = ["12345~=54321", "8+a=8"]
    total, count = 0.0, 0
    with torch.no_grad():  # by hand: every token after the first given its prefix
        for t in texts:
            ids = torch.tensor([tok(t, add_special_tokens=False)["input_ids"]])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
            total += float(logp.gather(1, ids[0, 1:, None]).sum())
            count += ids.shape[1] - 1
    assert text_score(model, tok, texts) == pytest.approx(math.exp(total / count), rel=1e-5)
    assert 0 < text_score(model, tok) <= 1  # the bundled passages (unknown characters map to one token)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.2 * torch.randn_like(p))
    assert text_score(other, tok, texts) != text_score(model, tok, texts)
    score = synthetic_old_task_score(model, tok, n=8)
    assert 0 <= score <= 1


@pytest.mark.slow
def test_train_from_files_records_old_text_retention_with_expand_layers(tmp_path: Path) -> None:
    tok = extended_tokenizer()
    ckpt = tmp_path / "tiny"
    tiny_llama(tok).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    prompts = old_task_prompts(16, seed=1)
    demos = tmp_path / "demos.jsonl"
    demos.write_text("".join(json.dumps({"instruction": p, "output": old_task_answer(p)}) + "\n" for p in prompts))
    out = tmp_path / "sft"
    args = ["train", "sft", "--model", str(ckpt), "--demonstrations", str(demos), "--steps", "2", "--batch-size", "4"]
    result = CliRunner().invoke(main, [*args, "--expand-layers", "1", "--control-alpha", "0.5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    m = stats["metrics"]
    assert 0 < m["old_text_before"] <= 1 and 0 < m["old_text_after"] <= 1
    assert m["old_text_retention"] == pytest.approx(m["old_text_after"] / m["old_text_before"])
    assert m["auxiliary_loss"] >= 0
    train = json.loads((out / "run.json").read_text())["identity"]["train"]
    assert train["expand_layers"] == "1" and train["control_alpha"] == 0.5 and "control_mix" not in train
    model, _ = load_policy(out)
    assert is_expanded(model)
    plain = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "plain")])
    assert plain.exit_code == 0, plain.output
    assert "expand_layers" not in json.loads((tmp_path / "plain" / "run.json").read_text())["identity"]["train"]
    bad = CliRunner().invoke(main, [*args, "--control-mix", "0.2", "-o", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "add --expand-layers" in bad.output
