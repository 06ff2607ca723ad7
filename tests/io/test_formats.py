"""Readers and writers round-trip real AlpacaEval data through every supported format."""

from __future__ import annotations

from pathlib import Path

import pytest

from pasture import InputError, read_annotations, read_eval_set, read_model_outputs, write_annotations
from pasture.io import fetch_alpaca_eval_file, write_model_outputs


@pytest.fixture(scope="module")
def reference(alpacaeval: Path) -> Path:
    return alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz"


def test_official_eval_set_reads(reference: Path) -> None:
    eval_set = read_eval_set(reference)
    assert len(eval_set) == 805
    assert eval_set.name == "gpt4_1106_preview"
    assert {i.dataset for i in eval_set.instructions} >= {"helpful_base", "koala", "oasst", "selfinstruct", "vicuna"}


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".parquet", ".json.gz", ".jsonl.gz"])
def test_model_outputs_round_trip(suffix: str, reference: Path, tmp_path: Path) -> None:
    eval_set = read_eval_set(reference)
    outputs = read_model_outputs(reference, eval_set=eval_set)
    path = write_model_outputs(outputs, tmp_path / f"model_outputs{suffix}")
    again = read_model_outputs(path, eval_set=eval_set)
    assert again == outputs
    assert read_eval_set(path).digest == eval_set.digest


def test_annotations_round_trip(alpacaeval: Path, tmp_path: Path) -> None:
    path = alpacaeval / "results/claude-2/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz"
    judgments = read_annotations(path)
    assert len(judgments) == 805
    out = write_annotations(judgments, tmp_path / "annotations.json")
    again = read_annotations(out)
    assert [(j.key, j.preference, j.shown_first) for j in again] == [
        (j.key, j.preference, j.shown_first) for j in judgments
    ]


def test_eval_set_digest_ignores_order_but_not_content(reference: Path, tmp_path: Path) -> None:
    eval_set = read_eval_set(reference)
    outputs = read_model_outputs(reference)
    shuffled = write_model_outputs(list(reversed(outputs)), tmp_path / "rev.jsonl")
    assert read_eval_set(shuffled).digest == eval_set.digest
    edited = write_model_outputs(outputs[:-1], tmp_path / "short.jsonl")
    assert read_eval_set(edited).digest != eval_set.digest


def test_hub_loader_fails_clearly_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real download code runs; this machine cannot reach the hub, so it must say what to do instead.
    # huggingface_hub reads HF_HUB_OFFLINE once, when first imported (transformers may have imported it
    # already in this process): set both, or the call waits for network timeouts before failing.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(InputError, match="pass a local copy of the file instead"):
        fetch_alpaca_eval_file("eval_set")
    with pytest.raises(InputError, match="unknown AlpacaEval hub file"):
        fetch_alpaca_eval_file("nonsense")
