"""The transformers provider on a real (tiny, randomly initialised) Llama checkpoint built offline in a temp folder.

Nothing is downloaded: the tokenizer is a word-level one made with `tokenizers`, the model a 2-layer Llama
from a config. The test checks the machinery (chat template, decoding, logprobs, usage, digest), not quality.
"""

from __future__ import annotations

import asyncio
import json

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0)")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")

from pasture.judges import ChatRequest, JudgeRequest, LabelLogprobParser, LLMJudge, get_provider, get_spec  # noqa: E402
from pasture.judges.base import Completion  # noqa: E402
from pasture.judges.prompts import builtin_template  # noqa: E402

WORDS = ["A", "B", "the", "answer", "is", "yes", "no", "request", "which", "better", "?", ":", "reply", "letter"]
CHAT = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}<assistant>"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_llama")
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, "<system>": 3, "<user>": 4, "<assistant>": 5}
    for w in WORDS:
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tok.chat_template = CHAT
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=512, pad_token_id=0, eos_token_id=1, bos_token_id=1,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(folder)
    return folder


def test_generation_with_logprobs_and_usage(tiny_checkpoint):
    p = get_provider("transformers", model=str(tiny_checkpoint), local_files_only=True)
    assert p.trust_remote_code is False
    req = ChatRequest(
        ({"role": "user", "content": "which answer is better ?"},),
        {"max_tokens": 3, "temperature": 0},
    )
    c1 = asyncio.run(p.complete(req))
    c2 = asyncio.run(p.complete(req))
    assert c1.text == c2.text  # greedy decoding is deterministic
    assert 1 <= c1.completion_tokens <= 3 and c1.prompt_tokens == 7  # <user> + 5 words + <assistant>
    assert c1.cost_usd == 0.0


def test_logprob_judge_and_weights_digest(tiny_checkpoint):
    p = get_provider("transformers", model=str(tiny_checkpoint), local_files_only=True)
    judge = LLMJudge(
        "tiny", p, builtin_template("pairwise_logprob_v1"), LabelLogprobParser("A", "B"),
        get_spec("smollm2-logprob").decoding, "pairwise_logprob",
    )  # fmt: skip
    v = asyncio.run(judge.judge(JudgeRequest("which answer ?", "yes", "no", shown_first=2)))
    # a random model's favourite label is not asserted (it depends on the CPU's rounding), only the contract
    assert v.raw_completion and v.completion_tokens == 1
    if v.status == "ok":
        shown = judge.parser.parse(Completion(**json.loads(v.raw_completion)))  # re-read from the stored reply
        assert 1.0 <= v.preference <= 2.0 and v.preference == pytest.approx(3.0 - shown)  # shown_first=2
    else:
        assert v.status == "parse_error" and v.preference is None
    d1 = judge.fingerprint.weights_digest
    assert d1 and len(d1) == 64
    (tiny_checkpoint / "generation_config.json").write_text('{"eos_token_id": 1, "note": "edited"}')
    assert get_provider("transformers", model=str(tiny_checkpoint)).identity()["weights_digest"] != d1
