"""Control LLM: twins beside frozen blocks, lerp, the divergence loss, the trainers' option and checkpoints."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pasture.errors import InputError
from pasture.train.control_llm import (
    ControlledBlock,
    controlled_blocks,
    divergence_loss,
    expand,
    is_expanded,
    mixes,
    parse_expand_layers,
)
from pasture.train.core import Loop, OptimSettings, PreferencePair, TrainingData, TrainStats, encode_sequences
from pasture.train.registry import ControlLLMSettings, DPOSettings, SFTSettings, TrainSettings, get_method
from pasture.train.sft import sft_loss
from pasture.train.synthetic import extended_tokenizer
from pasture.train.tiny import tiny_llama


def _tiny() -> tuple[LlamaForCausalLM, object]:
    tok = extended_tokenizer()
    return tiny_llama(tok, seed=0), tok


def _smollm2_shaped(tok: object) -> LlamaForCausalLM:
    """SmolLM2-135M's block shape (hidden 576, 9 query heads over 3 KV heads, MLP 1536, tied embeddings, RoPE θ 1e5)
    with 3 blocks and the task vocabulary: its architecture at test size."""
    config = LlamaConfig(
        vocab_size=len(tok),  # type: ignore[arg-type]
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=3,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=64,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id,  # type: ignore[attr-defined]
        eos_token_id=tok.eos_token_id,  # type: ignore[attr-defined]
    )
    torch.manual_seed(1)
    return LlamaForCausalLM(config)


def _perturb_twins(model: torch.nn.Module, scale: float = 0.5) -> None:
    with torch.no_grad():
        for block in controlled_blocks(model):
            for p in block.twin.parameters():
                p.add_(scale * torch.randn_like(p))


def test_a_count_picks_evenly_spaced_blocks_and_indices_are_checked() -> None:
    assert parse_expand_layers("8", 32) == (3, 7, 11, 15, 19, 23, 27, 31)  # the official concat choice
    assert parse_expand_layers(1, 2) == (1,)
    assert parse_expand_layers("2", 2) == (0, 1)
    assert parse_expand_layers("3,0", 4) == (0, 3)
    assert parse_expand_layers("3,", 4) == (3,)
    for bad, needle in (
        ("5", "count 1-4"),
        ("0", "count 1-4"),
        ("4,", "do not exist"),
        ("1,1", "twice"),
        ("x", "count N"),
    ):
        with pytest.raises(InputError, match=needle):
            parse_expand_layers(bad, 4)


def test_divergence_loss_matches_a_hand_computation() -> None:
    h_pre = torch.tensor([[[1.0, 2.0], [0.0, 0.0]], [[3.0, -1.0], [1.0, 1.0]]])  # [B=2, T=2, d=2]
    h_exp = torch.tensor([[[1.0, 4.0], [1.0, 1.0]], [[3.0, -1.0], [0.0, 3.0]]])
    # per (b, t): mean over d of squared differences: (0 + 4)/2, (1 + 1)/2, 0, (1 + 4)/2 → mean 5.5 / 4
    assert divergence_loss(h_pre, h_exp).item() == pytest.approx(5.5 / 4)
    assert divergence_loss(h_pre, h_pre).item() == 0.0


@pytest.mark.parametrize("shape", ["tiny", "smollm2"])
def test_at_mix_0_the_expanded_model_is_the_original_exactly(shape: str) -> None:
    model, tok = _tiny()
    if shape == "smollm2":
        model = _smollm2_shaped(tok)
    original = copy.deepcopy(model).eval()
    expand(model, ControlLLMSettings("0,", mix=0.0))
    _perturb_twins(model)  # the twin now computes something else; at w = 0 it must not show
    model.eval()
    ids = torch.randint(0, len(tok), (3, 9))  # type: ignore[arg-type]
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, original(input_ids=ids).logits)
        # at w = 0.5 with twins equal to the originals (a fresh expansion) it is the original too
        fresh = expand(copy.deepcopy(original), ControlLLMSettings("1", mix=0.5)).eval()
        assert torch.equal(fresh(input_ids=ids).logits, original(input_ids=ids).logits)
        # and with a trained twin at w = 0.5 it is not
        _perturb_twins(fresh)
        assert not torch.allclose(fresh(input_ids=ids).logits, original(input_ids=ids).logits)


def test_only_twins_train_and_the_loss_is_task_plus_alpha_divergence() -> None:
    model, tok = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    alpha = 0.7
    expand(model, ControlLLMSettings("1", mix=0.5, alpha=alpha))
    _perturb_twins(model, 0.1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".twin." in n for n in trainable)
    block = model.model.layers[1]
    assert isinstance(block, ControlledBlock)
    captured: dict[str, torch.Tensor] = {}
    block.original.register_forward_hook(lambda m, i, o: captured.__setitem__("pre", o.detach().clone()))
    block.twin.register_forward_hook(lambda m, i, o: captured.__setitem__("exp", o.detach().clone()))
    stats = TrainStats(method="sft")
    loop = Loop(model, OptimSettings(lr=1e-2, steps=3, batch_size=4), stats)
    loop.model.train()
    batch = encode_sequences(tok, ["12~=", "3456~=", "7+a="], ["21", "6543", "7"])  # type: ignore[arg-type]
    for _ in range(3):
        task = sft_loss(loop.model, batch)
        expected = task.item() + alpha * (captured["exp"] - captured["pre"]).pow(2).mean().item()
        assert loop.step(task, n_tokens=batch.n_tokens) == pytest.approx(expected, rel=1e-5)
    assert stats.metrics["auxiliary_loss"] > 0
    after = model.state_dict()
    for name, value in before.items():  # every original weight is where it was
        moved = name.replace("model.layers.1.", "model.layers.1.original.")
        assert torch.equal(after[moved], value), name
    assert any(
        not torch.equal(after[n.replace(".original.", ".twin.")], before[n.replace(".original.", ".")])
        for n in after
        if ".original." in n
    )


def test_the_trainers_take_expand_layers_and_the_checkpoint_round_trips(tmp_path: Path) -> None:
    from pasture.train.core import save_checkpoint
    from pasture.train.models import load_checkpoint_model, load_policy

    model, tok = _tiny()
    frozen = copy.deepcopy(model)
    train = TrainSettings(steps=3, lr=1e-2, batch_size=4, expand_layers="2", control_learn_mix=True, control_mix=0.3)
    data = TrainingData(prompts=["12~=", "3456~=", "7+a=", "98~="], responses=["21", "6543", "7", "89"])
    trained, stats = get_method("sft").trainer_function()(model, tok, data, SFTSettings(), train)
    assert is_expanded(trained) and set(mixes(trained)) == {0, 1}
    assert all(w != pytest.approx(0.3, abs=1e-9) for w in mixes(trained).values())  # the learned mix moved
    for name, value in frozen.state_dict().items():
        parts = name.split(".")
        if parts[:2] == ["model", "layers"]:
            name = ".".join([*parts[:3], "original", *parts[3:]])
        assert torch.equal(trained.state_dict()[name], value), name
    save_checkpoint(tmp_path / "ckpt", trained, tok, stats)  # type: ignore[arg-type]
    loaded, _ = load_policy(tmp_path / "ckpt")
    assert is_expanded(loaded) and mixes(loaded) == pytest.approx(mixes(trained))
    ids = torch.randint(0, len(tok), (2, 8))  # type: ignore[arg-type]
    with torch.no_grad():
        assert torch.equal(loaded.eval()(input_ids=ids).logits, trained.eval()(input_ids=ids).logits)
    # a loop's next round reloads the checkpoint (twins kept) and keeps training the same twins; other settings fail
    again = load_checkpoint_model(tmp_path / "ckpt")
    assert is_expanded(again)
    more, _ = get_method("sft").trainer_function()(again, tok, data, SFTSettings(), train)
    assert is_expanded(more) and len(controlled_blocks(more)) == 2
    with pytest.raises(InputError, match="other settings"):
        get_method("sft").trainer_function()(more, tok, data, SFTSettings(), TrainSettings(expand_layers="1"))
    # DPO through the same option: its frozen reference is a copy of the expanded start
    pairs = [PreferencePair("12+a=", "00", "12"), PreferencePair("34+b=", "11", "34")]
    dpo_model, dpo_stats = get_method("dpo").trainer_function()(
        tiny_llama(tok, seed=0),
        tok,
        TrainingData(pairs=pairs),
        DPOSettings(),
        TrainSettings(steps=2, expand_layers="1"),  # type: ignore[arg-type]
    )
    assert is_expanded(dpo_model) and dpo_stats.steps == 2


def test_cached_generation_matches_uncached_with_a_trained_twin() -> None:
    model, tok = _tiny()
    expand(model, ControlLLMSettings("0,1", mix=0.5))
    _perturb_twins(model, 0.3)
    model.eval()
    ids = torch.tensor([tok("1234~=")["input_ids"]])  # type: ignore[operator]
    kw = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": tok.pad_token_id}  # type: ignore[attr-defined]
    with torch.no_grad():
        cached = model.generate(input_ids=ids, use_cache=True, **kw)
        uncached = model.generate(input_ids=ids, use_cache=False, **kw)
    assert torch.equal(cached, uncached)


def test_bad_settings_are_one_line_errors() -> None:
    model, tok = _tiny()
    with pytest.raises(InputError, match="alternatives"):
        TrainSettings(expand_layers="1", lora_r=4).control_llm()
    with pytest.raises(InputError, match="add --expand-layers"):
        TrainSettings(control_alpha=0.5).control_llm()
    with pytest.raises(InputError, match="strictly between"):
        expand(copy.deepcopy(model), ControlLLMSettings("1", mix=0.0, learn_mix=True))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        expand(copy.deepcopy(model), ControlLLMSettings("1", mix=1.5))
    expand(model, ControlLLMSettings("1"))
    with pytest.raises(InputError, match="already expanded"):
        expand(model, ControlLLMSettings("1"))
    with pytest.raises(InputError, match="trains policies"):
        get_method("reward_model").trainer_function()(
            tiny_llama(tok, seed=0),
            tok,
            TrainingData(),
            None,
            TrainSettings(expand_layers="1"),  # type: ignore[arg-type]
        )
    assert TrainSettings().control_llm() is None


@pytest.mark.model
@pytest.mark.slow
def test_on_the_real_smollm2_the_original_is_exact_at_mix_0_and_only_twins_train(smollm2_gguf: Path) -> None:
    from pasture.train.core import generate
    from pasture.train.models import load_policy
    from pasture.train.retention import text_score

    model, tok = load_policy("smollm2")
    original = copy.deepcopy(model).eval()
    before = text_score(original, tok)
    ids = tok(["Name three colours.", "What is the capital of France?"], return_tensors="pt", padding=True)
    expanded = expand(copy.deepcopy(model), ControlLLMSettings("2", mix=0.0))
    assert [b.index for b in controlled_blocks(expanded)] == [14, 29]  # 30 blocks, 2 twins: the official rule
    _perturb_twins(expanded, 0.05)
    with torch.no_grad():
        assert torch.equal(expanded.eval()(**ids).logits, original(**ids).logits)
    data = TrainingData(prompts=["Say hello.", "Count to three."], responses=["Hello!", "One, two, three."])
    train = TrainSettings(steps=2, lr=1e-4, batch_size=2, expand_layers="2")
    trained, stats = get_method("sft").trainer_function()(model, tok, data, SFTSettings(), train)
    assert stats.steps == 2 and "auxiliary_loss" in stats.metrics
    state = trained.state_dict()
    for name, value in original.state_dict().items():
        parts = name.split(".")
        if parts[:2] == ["model", "layers"] and int(parts[2]) in (14, 29):
            name = ".".join([*parts[:3], "original", *parts[3:]])
        assert torch.equal(state[name], value), name
    assert 0 < text_score(trained, tok) <= 1 and 0 < before <= 1
    out = generate(trained, tok, ["Say hello."], max_new_tokens=8, temperature=0)
    assert out[0][0].response_ids  # cached generation runs through the twins
