"""The acceptance head: its loss against a hand computation, its own weights per block, a few training steps,
save/load, and ``pasture generate --draft-model`` on a tiny checkpoint saved to tmp."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from pasture.speculative.head import AcceptanceHead  # noqa: E402
from pasture.train.acceptance_head import head_examples, train_acceptance_head, weighted_bce  # noqa: E402
from pasture.train.registry import AcceptanceHeadSettings, TrainSettings, get_method  # noqa: E402


def test_weighted_bce_by_hand() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p̂ = 3/4
    y = torch.tensor([0.5])
    expected = -(0.5 * math.log(0.75) + 6 * 0.5 * math.log(0.25))
    assert float(weighted_bce(logits, y, 6.0)) == pytest.approx(expected)


def test_blocks_have_their_own_weights() -> None:
    head = AcceptanceHead(8, 3)
    ids = {id(b.linear.weight) for b in head.blocks}  # type: ignore[union-attr]
    assert len(ids) == 3
    assert get_method("acceptance_head").settings is AcceptanceHeadSettings


def test_labels_are_acceptance_probabilities_and_training_runs(make_llama: Any, tmp_path: Path) -> None:
    target = make_llama(16, hidden=32, layers=2, seed=1)
    draft = make_llama(16, hidden=16, layers=1, seed=2)
    g = torch.Generator().manual_seed(0)
    seqs = [[3, 4, 5, 6, 7, 8, 9, 10], [5, 6, 7, 8, 9, 2]]
    hidden, labels = head_examples(target, draft, seqs, [3, 2], draft_share=1.0, temperature=1.0, pad_id=0, generator=g)
    assert hidden.shape == (5 + 4, 16)  # every response position is replaced at share 1
    assert bool(((labels >= 0) & (labels <= 1)).all())
    none, _ = head_examples(target, draft, seqs, [3, 2], draft_share=0.0, temperature=1.0, pad_id=0, generator=g)
    assert none.shape[0] == 0  # target tokens carry no loss
    settings = AcceptanceHeadSettings(temperature=1.0)
    head, stats = train_acceptance_head(
        target, draft, seqs * 4, [3, 2] * 4, settings, TrainSettings(steps=5, batch_size=4, lr=1e-2), pad_id=0
    )
    assert stats.steps == 5 and len(stats.history) == 5
    assert 0 < stats.metrics["mean_label"] < 1
    head.save_checkpoint_files(tmp_path / "head")
    loaded = AcceptanceHead.load(tmp_path / "head")
    x = torch.randn(16)
    assert loaded.accept_probability(x) == pytest.approx(head.accept_probability(x))


def test_cli_generate_with_draft_model(make_llama: Any, tmp_path: Path) -> None:
    """End to end on a tiny checkpoint with a chat template: greedy outputs equal the plain transformers ones."""
    from click.testing import CliRunner

    from pasture.cli import main
    from pasture.train.synthetic import task_tokenizer

    tok = task_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m['content'][:6] }}{% endfor %}="
    target = make_llama(len(tok), hidden=32, layers=2, seed=1).float()
    folder = tmp_path / "target"
    target.save_pretrained(folder)
    tok.save_pretrained(folder)
    rows = [{"instruction": s} for s in ("12345", "98765", "55555")]
    data = tmp_path / "evalset.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    args = ["generate", "--model", f"hf:{folder}", "--eval-set", str(data), "--temperature", "0", "--max-tokens", "6"]
    runner = CliRunner()
    spec = runner.invoke(
        main, [*args, "--name", "spec", "--draft-model", "layers:1", "--store", str(tmp_path / "s.db"), "--no-progress"]
    )
    assert spec.exit_code == 0, spec.output
    assert "target passes/token" in spec.output and "× plain decoding" in spec.output
    plain = runner.invoke(main, [*args, "--name", "plain", "--store", str(tmp_path / "s.db"), "--no-progress"])
    assert plain.exit_code == 0, plain.output
    from pasture.store import Store

    with Store(tmp_path / "s.db") as store:
        digest = store.eval_sets()[0][0]
        outs = {g: {o.instruction: o.output for o in store.get_outputs(digest, g)} for g in ("spec", "plain")}
    assert len(outs["spec"]) == 3 and outs["spec"] == outs["plain"]
    # the run's measures are stored for the report: the speculative generator has a row, the plain one none
    from pasture.cli.report import speculative_sections
    from pasture.report.html import section_html

    with Store(tmp_path / "s.db") as store:
        (section,) = speculative_sections(store, digest)
    row = section.table.loc["spec"]
    assert list(section.table.index) == ["spec"] and row["n_new"] == 3
    assert row["target_passes_per_token"] > 0 and 0 <= row["acceptance_rate"] <= 1 and row["tokens_per_s"] > 0
    html = section_html(section, "speculative")
    assert "Speculative decoding" in html and "target passes / token" in html
    bad = runner.invoke(main, [*args, "--name", "x", "--draft-model", "nowhere", "--store", str(tmp_path / "s.db")])
    assert bad.exit_code != 0 and "draft-model" in bad.output
