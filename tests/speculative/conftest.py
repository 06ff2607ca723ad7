"""Tiny random float64 Llama pairs built from a config (never downloaded) for the speculative-decoding tests."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def random_llama(vocab: int, *, hidden: int, layers: int, seed: int, std: float = 0.4) -> Any:
    """A random Llama with weights drawn at ``std`` (large enough that distributions are far from uniform)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        tie_word_embeddings=False,
        initializer_range=std,
    )
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    return model.double().eval()


@pytest.fixture(scope="session")
def make_llama() -> Any:
    """:func:`random_llama`, for tests."""
    return random_llama


class _Out:
    def __init__(self, hidden: Any) -> None:
        self.last_hidden_state = hidden


class _BigramBody(torch.nn.Module):
    def __init__(self, table: Any) -> None:
        super().__init__()
        self.table = torch.nn.Embedding.from_pretrained(table, freeze=True)

    def forward(self, input_ids: Any, cache: Any = None, use_cache: bool = True) -> _Out:
        return _Out(self.table(input_ids))


class BigramLM(torch.nn.Module):
    """A real Markov language model (next-token logits depend on the last token only) with the two methods the
    decoding loop calls; it is cheap, so the χ² test can draw thousands of sequences through the real loop."""

    def __init__(self, logits: Any) -> None:
        super().__init__()
        self.body = _BigramBody(logits)
        self.out = torch.nn.Identity()

    def get_decoder(self) -> Any:
        return self.body

    def get_output_embeddings(self) -> Any:
        return self.out

    def parameters(self, recurse: bool = True) -> Any:  # type: ignore[override]
        return self.body.parameters(recurse)


@pytest.fixture(scope="session")
def make_bigram() -> Any:
    """A :class:`BigramLM` with logits ``scale·N(0, 1)`` drawn from ``seed``."""

    def make(seed: int, vocab: int, scale: float) -> BigramLM:
        g = torch.Generator().manual_seed(seed)
        return BigramLM(scale * torch.randn(vocab, vocab, generator=g, dtype=torch.float64))

    return make
