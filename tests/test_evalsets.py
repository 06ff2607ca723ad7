"""Eval sets: the embedded demo set, AlpacaEval 2 from a local file, any tabular file, a dataset folder."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pasture.errors import InputError
from pasture.evalsets import alpaca_eval_reference, demo_eval_set, resolve_eval_set


def test_demo_set_is_varied_and_shipped_as_package_data() -> None:
    demo = demo_eval_set()
    assert len(demo) >= 100
    counts = Counter(i.dataset for i in demo.instructions)
    assert {"writing", "coding", "math", "advice", "extraction", "brainstorming", "multilingual"} <= set(counts)
    assert all(n >= 10 for n in counts.values())
    assert len(set(demo.texts())) == len(demo)
    # several languages: accented Latin, Chinese and Japanese scripts
    assert any("é" in t for t in demo.texts())
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in demo.texts())
    assert any(any("\u3040" <= ch <= "\u30ff" for ch in t) for t in demo.texts())


def test_demo_subset_is_stratified_and_a_different_eval_set() -> None:
    full, sub = demo_eval_set(), demo_eval_set(30)
    assert len(sub) == 30 and sub.name == "demo-30"
    counts = Counter(i.dataset for i in sub.instructions)
    assert len(counts) == len(Counter(i.dataset for i in full.instructions))
    assert max(counts.values()) - min(counts.values()) <= 1
    assert sub.digest != full.digest
    assert resolve_eval_set("demo", limit=30) == sub


def test_alpaca_eval_from_local_file(alpacaeval: Path) -> None:
    path = alpacaeval / "results/gpt4_1106_preview/model_outputs.json.gz"
    es = resolve_eval_set("alpaca_eval", alpaca_eval_path=path)
    assert len(es) == 805 and es.name == "alpaca_eval_2"
    assert es.instructions[0].dataset == "helpful_base"
    ref = alpaca_eval_reference(path)
    assert {o.generator for o in ref} == {"gpt4_1106_preview"}
    assert [o.instruction for o in ref] == es.texts()


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".parquet"])
def test_any_file_with_an_instruction_column(tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    frame = pd.DataFrame({"prompt": ["a?", "b?", "c?"], "dataset": ["x", "y", "x"]})
    path = tmp_path / f"set{suffix}"
    if suffix == ".json":
        frame.to_json(path, orient="records")
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    es = resolve_eval_set(str(path), instruction_field="prompt", limit=2)
    assert es.texts() == ["a?", "b?"] and es.name == "set-2"
    assert [i.dataset for i in es.instructions] == ["x", "y"]


def test_dataset_folder(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_dict({"instruction": ["one", "two"], "dataset": ["a", "b"]}).save_to_disk(tmp_path / "ds")
    es = resolve_eval_set(str(tmp_path / "ds"))
    assert es.texts() == ["one", "two"] and es.name == "ds"


def test_bad_eval_sets_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="eval set not found"):
        resolve_eval_set(str(tmp_path / "missing.json"))
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps({"instruction": "a"}) + "\n" + json.dumps({"instruction": "a"}) + "\n")
    with pytest.raises(InputError, match=r"row 2.*duplicated instruction"):
        resolve_eval_set(str(path))
    with pytest.raises(InputError, match="no instruction column"):
        resolve_eval_set(str(path), instruction_field="prompt")
    with pytest.raises(InputError, match="hf:OWNER/NAME"):
        resolve_eval_set("hf:")
    with pytest.raises(InputError, match="at least 1"):
        resolve_eval_set("demo", limit=0)
