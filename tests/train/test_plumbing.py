"""Shared plumbing on a tiny model: tokenizer, collation, log-probabilities, sampling, LoRA, checkpoints, oracle."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from pasture.errors import InputError
from pasture.train.core import (
    LoraSettings,
    OptimSettings,
    Reference,
    checkpoint_done,
    encode_sequences,
    generate,
    load_stats,
    save_checkpoint,
    token_logprobs,
)
from pasture.train.reward import RewardModel
from pasture.train.sft import train_sft
from pasture.train.synthetic import (
    demonstrations,
    label_pairs,
    make_prompts,
    oracle_preference,
    oracle_score,
    task_tokenizer,
    win_rate_from_scores,
)
from pasture.train.tiny import n_parameters, tiny_llama


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    return task_tokenizer()


def test_char_tokenizer_round_trips_and_never_downloads(tok) -> None:  # type: ignore[no-untyped-def]
    ids = tok("40913+h=", add_special_tokens=False)["input_ids"]
    assert len(ids) == 8
    assert tok.decode(ids) == "40913+h="
    assert tok.decode([*ids, tok.eos_token_id], skip_special_tokens=True) == "40913+h="
    assert tok("x", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]


def test_tiny_model_size(tok) -> None:  # type: ignore[no-untyped-def]
    assert 100_000 < n_parameters(tiny_llama(tok)) < 1_000_000


def test_oracle_definition() -> None:
    assert oracle_score("1234+h=", "7777") == 1.0  # h = 7, n = 4
    assert oracle_score("1234+h=", "7177") == 0.75
    assert oracle_score("1234+h=", "77") == 0.5  # two missing positions
    assert oracle_score("1234+h=", "77777777") == 0.5  # padding dilutes: 4 hits / 8 chars
    assert oracle_preference("1234+a=", "0000", "0001") == 1.0
    assert oracle_preference("1234+a=", "0001", "0000") == 2.0
    assert oracle_preference("1234+a=", "0001", "1000") == 1.5
    with pytest.raises(InputError):
        oracle_score("hello", "0")
    assert win_rate_from_scores([1, 0, 0.5], [0, 0, 1]) == pytest.approx(0.5)


def test_label_pairs_flip_rate_and_ties() -> None:
    prompts = make_prompts(2000, seed=5)
    a = demonstrations(prompts, seed=1)
    b = demonstrations(prompts, seed=2)
    clean = label_pairs(prompts, a, b, p=0.0, seed=0)
    noisy = label_pairs(prompts, a, b, p=0.25, seed=0)
    assert clean.clean_agreement == 1.0
    assert clean.n_ties == noisy.n_ties > 0
    n = len(noisy.pairs)
    assert abs(noisy.clean_agreement - 0.75) < 3 * math.sqrt(0.25 * 0.75 / n)
    assert all(oracle_score(p.prompt, p.chosen) > oracle_score(p.prompt, p.rejected) for p in clean.pairs)
    assert noisy == label_pairs(prompts, a, b, p=0.25, seed=0)  # deterministic


def test_collation_masks_only_the_response(tok) -> None:  # type: ignore[no-untyped-def]
    batch = encode_sequences(tok, ["12+a=", "1234+b="], ["00", "1"])
    assert batch.input_ids.shape == (2, 9)
    assert batch.attention_mask.sum(dim=1).tolist() == [8, 9]  # 5 + 2 + eos, 7 + 1 + eos
    assert batch.response_mask[0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 0]
    assert batch.response_mask[1].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert batch.input_ids[0, 7].item() == tok.eos_token_id and batch.input_ids[0, 8].item() == tok.pad_token_id


def test_token_logprobs_match_a_manual_softmax(tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_llama(tok, seed=1).eval()
    batch = encode_sequences(tok, ["12+a="], ["00"])
    lp = token_logprobs(model, batch)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids).logits[0]
    ids = batch.input_ids[0]
    manual = sum(torch.log_softmax(logits[t], -1)[ids[t + 1]].item() for t in range(4, 7))
    assert lp.sum().item() == pytest.approx(manual, abs=1e-5)
    assert lp[0, :4].abs().sum().item() == 0.0


def test_generation_is_deterministic_in_the_seed(tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_llama(tok, seed=2)
    prompts = make_prompts(6, seed=3)
    a = generate(model, tok, prompts, n=2, max_new_tokens=6, seed=11)
    b = generate(model, tok, prompts, n=2, max_new_tokens=6, seed=11)
    c = generate(model, tok, prompts, n=2, max_new_tokens=6, seed=12)
    assert [[g.text for g in x] for x in a] == [[g.text for g in x] for x in b]
    assert [[g.text for g in x] for x in a] != [[g.text for g in x] for x in c]
    assert all(len(g.response_ids) <= 6 for x in a for g in x)


def test_sft_learns_and_checkpoints_resume(tok, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prompts = make_prompts(128, seed=1)
    demos = demonstrations(prompts, seed=2)
    model, stats = train_sft(
        tiny_llama(tok), tok, prompts, demos, optim=OptimSettings(lr=3e-3, batch_size=32, steps=12)
    )
    assert stats.history[-1] < stats.history[0]
    assert stats.train_tokens > 0 and stats.steps == 12
    out = save_checkpoint(tmp_path / "sft", model, tok, stats)
    assert checkpoint_done(out)
    assert load_stats(out).history == stats.history
    again = AutoModelForCausalLM.from_pretrained(out)
    batch = encode_sequences(tok, prompts[:4], demos[:4])
    assert torch.allclose(token_logprobs(again.eval(), batch), token_logprobs(model.eval(), batch), atol=1e-6)


def test_lora_trains_adapters_and_reference_is_the_base(tok) -> None:  # type: ignore[no-untyped-def]
    base = tiny_llama(tok, seed=4)
    frozen = copy.deepcopy(base).eval()
    prompts = make_prompts(64, seed=1)
    model, stats = train_sft(
        base,
        tok,
        prompts,
        demonstrations(prompts, seed=2),
        seed=0,
        optim=OptimSettings(lr=1e-2, batch_size=32, steps=4),
        lora=LoraSettings(r=4, alpha=8, target_modules=("q_proj", "v_proj")),
    )
    assert stats.steps == 4
    batch = encode_sequences(tok, prompts[:4], ["1", "2", "3", "4"])
    ref = Reference(model, use_adapter_off=True).token_logprobs(batch)
    assert torch.allclose(ref, token_logprobs(frozen, batch), atol=1e-6)  # adapters off = the untouched base
    assert not torch.allclose(token_logprobs(model.eval(), batch), ref, atol=1e-4)  # adapters learned something


def test_reward_model_checkpoint_round_trip(tok, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rm = RewardModel.from_policy(tiny_llama(tok, seed=3)).eval()
    from pasture.train.core import TrainStats

    save_checkpoint(tmp_path / "rm", rm, None, TrainStats(method="reward_model"))
    again = RewardModel.load(tmp_path / "rm").eval()
    prompts = make_prompts(4, seed=9)
    assert rm.score(tok, prompts, ["1", "22", "333", ""]) == pytest.approx(
        again.score(tok, prompts, ["1", "22", "333", ""]), abs=1e-6
    )
    with pytest.raises(InputError):
        RewardModel.load(tmp_path)


def test_token_logprobs_with_ragged_prompts_equal_the_full_head(tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_llama(tok, seed=5).eval()
    batch = encode_sequences(tok, ["12+a=", "1234567+b=", "3+c="], ["0", "111", "22"])
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
        full = torch.log_softmax(logits, -1).gather(2, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        full = full * batch.response_mask[:, 1:]
        assert torch.allclose(token_logprobs(model, batch), full, atol=1e-5)


def test_token_logprobs_at_a_temperature_are_log_softmax_of_scaled_logits(tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_llama(tok, seed=5).eval()
    batch = encode_sequences(tok, ["12+a=", "1234+b="], ["00", "1"])
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
    for t in (0.5, 2.0):
        want = torch.log_softmax(logits / t, -1).gather(2, batch.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        assert torch.allclose(token_logprobs(model, batch, temperature=t), want * batch.response_mask[:, 1:], atol=1e-5)
    with pytest.raises(InputError):
        token_logprobs(model, batch, temperature=0.0)
