"""Tiny causal language models built from a config, never downloaded: the test bed for every method.

Why Llama: it is the architecture of SmolLM2 (the local instruction model), so a method that works on the
tiny model exercises the same code paths (RoPE, RMSNorm, KV cache in ``generate``) as on the real one.
"""

from __future__ import annotations

from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase


def tiny_llama(
    tokenizer: PreTrainedTokenizerBase,
    *,
    hidden_size: int = 128,
    layers: int = 2,
    heads: int = 4,
    intermediate_size: int = 256,
    max_positions: int = 64,
    seed: int = 0,
) -> LlamaForCausalLM:
    """A randomly initialised Llama (about 0.3 M parameters with the defaults and a 15-token vocabulary).

    Weights depend only on ``seed`` and the arguments. Dropout is zero, so training and evaluation forward
    passes agree (DPO's loss at initialisation is then exactly log 2).
    """
    import torch

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
        attention_dropout=0.0,
    )
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    return model


def n_parameters(model: object) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())  # type: ignore[attr-defined]
