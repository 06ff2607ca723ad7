"""Prompt sets and policy samples kept in the store (shared by farm, loop and online CUT): a real SQLite store and
the tiny synthetic policy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pasture.errors import InputError
from pasture.records import ModelOutput
from pasture.store import Store
from pasture.train.stored import prompt_set, stored_or_generate
from pasture.train.synthetic import make_prompts, task_tokenizer
from pasture.train.tiny import tiny_llama


@dataclass(frozen=True)
class _Sampling:
    max_new_tokens: int = 4
    temperature: float = 1.0


def test_prompt_sets_refuse_no_prompts_and_repeats() -> None:
    assert prompt_set("x-train", ["a", "b"]).texts() == ["a", "b"]
    with pytest.raises(InputError, match="x-train: no prompts"):
        prompt_set("x-train", [])
    with pytest.raises(InputError, match="x-eval: prompts must be distinct"):
        prompt_set("x-eval", ["a", "b", "a"])


def test_samples_are_stored_once_and_read_back_in_prompt_order(tmp_path: Path) -> None:
    tok = task_tokenizer()
    prompts = make_prompts(6, seed=3)
    es = prompt_set("t", prompts)
    with Store(tmp_path / "s.db") as store:
        # two prompts already answered under this generator: only the other four are sampled
        kept = [ModelOutput(instruction=p, output=f"kept {i}", generator="g") for i, p in enumerate(prompts[:2])]
        store.put_outputs(store.put_eval_set(es), kept)
        got = stored_or_generate(store, es, "g", tiny_llama(tok), tok, _Sampling(), 1, sample_index=1)
        assert len(got) == len(prompts) and got[:2] == ["kept 0", "kept 1"]
        stored = {o.instruction: o for o in store.get_outputs(es.digest, "g")}
        assert [stored[p].output for p in prompts] == got  # read back in the prompts' order
        assert [stored[p].sample_index for p in prompts] == [0, 0, 1, 1, 1, 1]
        # everything stored: no model is needed (None would fail if it were asked)
        assert stored_or_generate(store, es, "g", None, tok, _Sampling(), 2) == got  # type: ignore[arg-type]
