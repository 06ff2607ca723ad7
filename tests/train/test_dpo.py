"""DPO and SimPO trainers against losses computed by hand on a tiny model, with a reference that differs from
the policy (so the value is not the trivial log 2), one unpadded sequence at a time (so padding, the prompt
mask and the EOS all have to be handled right to match)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from pasture.train.core import OptimSettings, PreferencePair
from pasture.train.dpo import train_dpo, train_simpo
from pasture.train.registry import DPOSettings, SimPOSettings
from pasture.train.synthetic import task_tokenizer
from pasture.train.tiny import tiny_llama

# ragged prompts and responses: rows get padded to different lengths inside the trainer's batch
PAIRS = [
    PreferencePair("12+a=", "00", "1"),
    PreferencePair("1234567+b=", "111", "22"),
    PreferencePair("3+c=", "2", "3333"),
]


def _logp(model: torch.nn.Module, prompt: str, response: str, *, with_prompt: bool = False, eos: bool = True) -> float:
    """Sum of log-probabilities of the response tokens (and EOS), or of every predicted token with_prompt."""
    tok = task_tokenizer()
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    r = tok(response, add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if eos else [])
    ids = torch.tensor([p + r])
    with torch.no_grad():
        logits = model.eval()(input_ids=ids).logits[0, :-1]
    lp = torch.log_softmax(logits, -1).gather(1, ids[0, 1:].unsqueeze(-1)).squeeze(-1)
    return float(lp[(0 if with_prompt else len(p) - 1) :].sum())


def _n_tokens(prompt: str, response: str, *, with_prompt: bool = False) -> int:
    return len(response) + 1 + (len(prompt) - 1 if with_prompt else 0)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_dpo_first_loss_is_the_hand_computation_with_a_separate_reference() -> None:
    tok = task_tokenizer()
    policy, reference = tiny_llama(tok, seed=8), tiny_llama(tok, seed=9)
    beta = 0.5

    def loss(**kw: bool) -> float:
        total = 0.0
        for pair in PAIRS:
            h = (_logp(policy, pair.prompt, pair.chosen, **kw) - _logp(policy, pair.prompt, pair.rejected, **kw)) - (
                _logp(reference, pair.prompt, pair.chosen, **kw) - _logp(reference, pair.prompt, pair.rejected, **kw)
            )
            total += _softplus(-beta * h)  # −log σ(βh)
        return total / len(PAIRS)

    expected = loss()
    _, stats = train_dpo(
        copy.deepcopy(policy),
        tok,
        PAIRS,
        settings=DPOSettings(beta=beta),
        optim=OptimSettings(lr=1e-3, batch_size=len(PAIRS), steps=2),
        reference=reference,
    )
    print(f"DPO first loss {stats.history[0]!r}, by hand {expected!r}, log 2 = {math.log(2)!r}")
    assert stats.history[0] == pytest.approx(expected, abs=1e-5)
    assert stats.metrics["initial_loss"] == stats.history[0] and "log2" not in stats.metrics
    # the example can tell the cases apart: a different reference is not log 2, and dropping the EOS moves it
    assert abs(expected - math.log(2)) > 1e-3 and abs(loss(eos=False) - expected) > 1e-3
    assert stats.history[1] != stats.history[0]  # the first update changed the policy


def test_simpo_first_loss_averages_over_response_tokens_only() -> None:
    tok = task_tokenizer()
    policy = tiny_llama(tok, seed=10)
    settings = SimPOSettings(beta=2.0, gamma=0.7)

    def loss(with_prompt: bool) -> float:
        total = 0.0
        for pair in PAIRS:
            c = _logp(policy, pair.prompt, pair.chosen, with_prompt=with_prompt)
            r = _logp(policy, pair.prompt, pair.rejected, with_prompt=with_prompt)
            nc = _n_tokens(pair.prompt, pair.chosen, with_prompt=with_prompt)
            nr = _n_tokens(pair.prompt, pair.rejected, with_prompt=with_prompt)
            total += _softplus(-(settings.beta * (c / nc - r / nr) - settings.gamma))
        return total / len(PAIRS)

    _, stats = train_simpo(
        copy.deepcopy(policy), tok, PAIRS, settings=settings, optim=OptimSettings(lr=1e-3, batch_size=3, steps=1)
    )
    assert stats.history[0] == pytest.approx(loss(False), abs=1e-5)
    assert abs(loss(True) - loss(False)) > 1e-3  # averaging over prompt tokens too would be caught
