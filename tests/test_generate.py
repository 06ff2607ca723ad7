"""Generation against a real llama.cpp server (SmolLM2): stored as it goes, resumable, AlpacaEval file out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pasture.errors import InputError
from pasture.generate import GenerationSettings, generate, missing_outputs
from pasture.io import read_model_outputs
from pasture.judges.base import ChatRequest, Completion, PermanentError, Provider
from pasture.records import EvalSet, Instruction
from pasture.store import Store

EVAL = EvalSet(
    name="tiny",
    instructions=(
        Instruction(instruction="Say hello.", dataset="greeting"),
        Instruction(instruction="Name a colour.", dataset="knowledge"),
        Instruction(instruction="What is 2 + 2?", dataset="math"),
    ),
)
FAST = GenerationSettings(max_tokens=8, temperature=0.0)


@dataclass
class Counting:
    """Delegates to a real provider, counts calls, and refuses the instructions in ``refuse``."""

    inner: Provider
    refuse: frozenset[str] = frozenset()
    calls: int = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model(self) -> str:
        return self.inner.model

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        if request.messages[-1]["content"] in self.refuse:
            raise PermanentError("refused for the test")
        return await self.inner.complete(request)


@pytest.fixture
def provider(llama_server: Any, smollm2_gguf: Path) -> Provider:
    from pasture.providers import get_provider

    return get_provider("openai", model="smollm2", base_url=llama_server.base_url, weights_path=smollm2_gguf)


@pytest.mark.slow
@pytest.mark.model
def test_generate_stores_resumes_and_writes_model_outputs(tmp_path: Path, provider: Provider) -> None:
    first = Counting(provider, refuse=frozenset({"Name a colour."}))
    with Store(tmp_path / "s.db") as store:
        report = generate(store, EVAL, first, generator="smol", settings=FAST, concurrency=2, progress=False)
        assert (report.n_new, report.n_failed, first.calls) == (2, 1, 3)
        assert "refused for the test" in report.errors[0]
        assert missing_outputs(report.outputs, EVAL) == 1
        # the rerun makes only the missing call, and the file has every output in eval-set order
        second = Counting(provider)
        out = tmp_path / "model_outputs.json"
        report = generate(store, EVAL, second, generator="smol", settings=FAST, output_path=out, progress=False)
        assert (report.n_new, report.n_cached, report.n_failed, second.calls) == (1, 2, 0, 1)
        rows = read_model_outputs(out, eval_set=EVAL)
        assert [r.instruction for r in rows] == EVAL.texts()
        assert all(r.generator == "smol" and r.output for r in rows)
        assert [r.dataset for r in rows] == ["greeting", "knowledge", "math"]
        stored = store.get_outputs(EVAL.digest, "smol")
        assert all(o.completion_tokens and o.completion_tokens <= 8 for o in stored)
        # a third run is free, and the same name with other settings is refused
        third = Counting(provider)
        assert generate(store, EVAL, third, generator="smol", settings=FAST, progress=False).n_new == 0
        assert third.calls == 0
        with pytest.raises(InputError, match="other settings"):
            generate(store, EVAL, provider, generator="smol", settings=GenerationSettings(max_tokens=9), progress=False)


@pytest.mark.slow
@pytest.mark.model
def test_several_samples_with_a_system_prompt(tmp_path: Path, provider: Provider) -> None:
    settings = GenerationSettings(max_tokens=6, temperature=1.0, samples=2, system_prompt="Answer in French.")
    small = EvalSet(name="one", instructions=EVAL.instructions[:1])
    with Store(tmp_path / "s.db") as store:
        report = generate(store, small, provider, generator="fr", settings=settings, progress=False)
    assert sorted(o.sample_index for o in report.outputs) == [0, 1]
    path = tmp_path / "mo.json"
    with Store(tmp_path / "s.db") as store:
        again = generate(store, small, provider, generator="fr", settings=settings, output_path=path, progress=False)
    assert again.n_new == 0
    assert len(read_model_outputs(path)) == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (GenerationSettings(max_tokens=0), "max tokens"),
        (GenerationSettings(samples=0), "samples"),
        (GenerationSettings(samples=2, temperature=0.0), "temperature > 0"),
        (GenerationSettings(top_p=0.0), "top_p"),
    ],
)
def test_bad_settings_are_input_errors(settings: GenerationSettings, message: str) -> None:
    with pytest.raises(InputError, match=message):
        settings.validate()


def test_messages_and_decoding_per_sample() -> None:
    s = GenerationSettings(system_prompt="Be brief.", seed=7, stop=("\n\n",))
    assert s.messages("hi") == ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"})
    assert GenerationSettings().messages("hi") == ({"role": "user", "content": "hi"},)
    assert s.decoding(2)["seed"] == 9 and s.decoding(0)["stop"] == ["\n\n"]


@pytest.mark.slow
def test_generate_with_a_local_transformers_checkpoint(tmp_path: Path) -> None:
    """`--model hf:FOLDER` through the CLI: a tiny random Llama built offline, with its own chat template."""
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0)")
    pytest.importorskip("transformers", reason="transformers is not installed")
    from click.testing import CliRunner
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from pasture.cli import main

    folder = tmp_path / "tiny"
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, "<user>": 3, "<assistant>": 4, "Say": 5, "hello.": 6, "2": 7}
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tok.chat_template = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}<assistant>"
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, eos_token_id=1, bos_token_id=1,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    eval_set = tmp_path / "set.csv"
    eval_set.write_text("instruction\nSay hello.\n2\n")
    out = tmp_path / "model_outputs.json"
    result = CliRunner().invoke(
        main,
        [
            "generate",
            "--model",
            f"hf:{folder}",
            "--provider-arg",
            "local_files_only=true",
            "--name",
            "tiny",
            "--eval-set",
            str(eval_set),
            "--max-tokens",
            "3",
            "--temperature",
            "0",
            "--store",
            str(tmp_path / "s.db"),
            "-o",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = read_model_outputs(out)
    assert [r.instruction for r in rows] == ["Say hello.", "2"] and {r.generator for r in rows} == {"tiny"}
    with Store(tmp_path / "s.db") as store:
        ((digest, name, size),) = store.eval_sets()
        stored = store.get_outputs(digest, "tiny")
    assert (name, size, len(stored)) == ("set", 2, 2)
    assert all(1 <= (o.completion_tokens or 0) <= 3 for o in stored)


@pytest.mark.slow
@pytest.mark.model
def test_a_refinement_chain_follows_the_filter_stores_each_step_and_resumes(tmp_path: Path, provider: Provider) -> None:
    from pasture.generate import refine_chain

    seen: list[tuple[str, str, str]] = []

    def keep_second_only(x: str, previous: str, refined: str) -> bool:  # a filter that keeps exactly one instruction
        seen.append((x, previous, refined))
        return x == EVAL.texts()[1]

    with Store(tmp_path / "s.db") as store:
        rep = refine_chain(
            store, EVAL, provider, generator="smol", steps=2, settings=FAST, keep=keep_second_only, progress=False
        )
        assert rep.ok and rep.final_generator == "smol+refine2" and rep.kept == (1, 1)
        y0 = {o.instruction: o.output for o in store.get_outputs(EVAL.digest, "smol")}
        step2 = {seen[k][0]: seen[k][2] for k in range(3, 6)}
        final = {o.instruction: o.output for o in rep.outputs}
        assert [o.instruction for o in rep.outputs] == EVAL.texts()
        for x in EVAL.texts():  # rejected refinements leave y0; the kept chain ends at its last refinement
            assert final[x] == (step2[x] if x == EVAL.texts()[1] else y0[x])
        # step 2 refined step 1's kept answer, and its prompts hold the instruction and that answer
        assert all(prev == (seen[1][2] if x == EVAL.texts()[1] else y0[x]) for x, prev, _ in seen[3:])
        assert len(rep.steps) == 3 and all(s.n_new == 3 for s in rep.steps)
        again = refine_chain(
            store, EVAL, provider, generator="smol", steps=2, settings=FAST, keep=keep_second_only, progress=False
        )
        assert all(s.n_new == 0 for s in again.steps) and again.outputs == rep.outputs  # resumed, nothing new
        with pytest.raises(InputError, match="already holds other chain answers"):
            refine_chain(store, EVAL, provider, generator="smol", steps=2, settings=FAST, progress=False)


def test_refine_chain_settings_are_checked_before_any_call(tmp_path: Path) -> None:
    from pasture.generate import refine_chain

    class Never:
        name, model = "never", "never"

        def identity(self) -> dict[str, Any]:
            return {}

        async def complete(self, request: ChatRequest) -> Completion:
            raise AssertionError("no call expected")

    with Store(tmp_path / "s.db") as store:
        for kw, msg in (
            ({"steps": 0}, "at least 1"),
            ({"steps": 1, "settings": GenerationSettings(samples=2)}, "one answer per instruction"),
            ({"steps": 1, "template": "{instruction} only"}, "placeholders"),
        ):
            with pytest.raises(InputError, match=msg):
                refine_chain(store, EVAL, Never(), generator="g", progress=False, **kw)  # type: ignore[arg-type]
