"""CUT's loss against hand computations, its batch invariance, and the trainer on a real tiny model."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from pasture.errors import InputError
from pasture.train.core import OptimSettings, encode_sequences, token_logprobs
from pasture.train.cut import (
    CUTSettings,
    JudgedResponse,
    cut_loss,
    judge_responses,
    response_logprobs,
    subsample_good,
    train_cut,
    train_cut_online,
)
from pasture.train.synthetic import critic, critique_prompt, extended_tokenizer, make_prompts
from pasture.train.tiny import tiny_llama

PLAIN = [0.5, 0.2, 0.9, 0.4, 0.1]  # p(y_t | x, y<t)
JUDGED = [0.5, 0.3, 0.95, 0.6, 0.05]  # p(y_t | x, j, y<t): ratios 1, 1.5, 1.056, 1.5, 0.5


def _five(bad: bool, lam: float = 1.2, alpha: float = 0.5):  # type: ignore[no-untyped-def]
    judged = torch.tensor([JUDGED]).log().requires_grad_(True)
    plain = torch.tensor([PLAIN]).log().requires_grad_(True)
    out = cut_loss(judged, plain, torch.ones(1, 5), torch.tensor([bad]), CUTSettings(lam=lam, alpha=alpha))
    return out, judged, plain


def test_unlikelihood_mask_and_loss_match_a_hand_computation_on_five_tokens() -> None:
    out, _, _ = _five(bad=True)
    # ratios 1, 1.5, 1.056, 1.5, 0.5 against λ = 1.2: tokens 1 and 3 are flagged
    assert out.flagged.tolist() == [[False, True, False, True, False]]
    likelihood = -sum(math.log(p) for p in JUDGED) / 5
    unlikelihood = 0.5 * (-math.log(1 - 0.2) - math.log(1 - 0.4)) / 5
    assert out.likelihood.item() == pytest.approx(likelihood, rel=1e-6)
    assert out.unlikelihood.item() == pytest.approx(unlikelihood, rel=1e-6)
    assert out.loss.item() == pytest.approx((likelihood + unlikelihood) / 2, rel=1e-6)
    # λ = 1.05 also flags token 2 (ratio 0.95 / 0.9 = 1.056)
    assert _five(bad=True, lam=1.05)[0].flagged.tolist() == [[False, True, True, True, False]]


def test_the_ratio_is_detached_and_gradients_match_the_formula() -> None:
    out, judged, plain = _five(bad=True)
    out.loss.backward()
    assert judged.grad is not None and plain.grad is not None
    # d/d log p_j of −(1/T) Σ log p_j / 2 is −1/(2T) on every token: nothing flows through the ratio
    assert torch.allclose(judged.grad, torch.full((1, 5), -1 / 10))
    # d/d log p of −α log(1 − p) / (2T) is α p / (1 − p) / (2T) on flagged tokens, zero elsewhere
    expected = [0.0, 0.5 * 0.2 / 0.8 / 10, 0.0, 0.5 * 0.4 / 0.6 / 10, 0.0]
    assert torch.allclose(plain.grad, torch.tensor([expected]), atol=1e-7)


def test_good_examples_and_infinite_lambda_get_no_unlikelihood() -> None:
    good, _, _ = _five(bad=False)
    off, _, _ = _five(bad=True, lam=math.inf)
    for out in (good, off):
        assert not out.flagged.any()
        assert out.unlikelihood.item() == 0.0
        assert out.loss.item() == pytest.approx(-sum(math.log(p) for p in JUDGED) / 10, rel=1e-6)


def test_padding_does_not_count() -> None:
    judged = torch.tensor([[*JUDGED, 0.01, 0.01]]).log()
    plain = torch.tensor([[*PLAIN, 0.001, 0.9]]).log()
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    padded = cut_loss(judged, plain, mask, torch.tensor([True]), CUTSettings())
    assert padded.loss.item() == pytest.approx(_five(bad=True)[0].loss.item(), rel=1e-6)
    assert not padded.flagged[0, 5:].any()


def _random_batch(seed: int, n: int = 7, width: int = 6):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    plain = torch.rand(n, width, generator=g).clamp(0.02, 0.98).log()
    judged = (plain + 0.6 * torch.randn(n, width, generator=g)).clamp(max=-1e-3)
    lengths = torch.randint(2, width + 1, (n,), generator=g)
    mask = (torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)).long()
    bad = torch.rand(n, generator=g) < 0.6
    bad[0] = False  # the first example good: the official code's batch weight is then 0 for everyone
    bad[1] = True
    return judged, plain, mask, bad


def _official_style(judged, plain, mask, bad, settings):  # type: ignore[no-untyped-def]
    """The official code's weighting as issue 12 describes it: token-pooled likelihood over the whole batch and the
    first example's unlikelihood weight applied to every example (here only to show the test catches it)."""
    m = mask.float()
    weight = settings.alpha if bool(bad[0]) else 0.0
    flagged = (mask > 0) & ((judged - plain) > math.log(settings.lam)) & bad.unsqueeze(1)
    ul = -(torch.log1p(-plain.exp()) * flagged).sum() / m.sum()
    return (-(judged * m).sum() / m.sum() + weight * ul) / 2


def _mean_of_examples(fn, judged, plain, mask, bad, settings) -> float:  # type: ignore[no-untyped-def]
    return sum(
        float(fn(judged[i : i + 1], plain[i : i + 1], mask[i : i + 1], bad[i : i + 1], settings))
        for i in range(len(bad))
    ) / len(bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_batch_loss_is_the_mean_of_its_examples_losses_whatever_its_mix(seed: int) -> None:
    judged, plain, mask, bad = _random_batch(seed)
    settings = CUTSettings()

    def ours(*args):  # type: ignore[no-untyped-def]
        return cut_loss(*args).loss

    batch = float(ours(judged, plain, mask, bad, settings))
    assert batch == pytest.approx(_mean_of_examples(ours, judged, plain, mask, bad, settings), rel=1e-6)
    # any reordering (another mix in front) gives the same loss
    perm = torch.randperm(len(bad), generator=torch.Generator().manual_seed(seed))
    assert float(ours(judged[perm], plain[perm], mask[perm], bad[perm], settings)) == pytest.approx(batch, rel=1e-6)
    # the official weighting fails the same check on the same data
    official = float(_official_style(judged, plain, mask, bad, settings))
    assert abs(official - _mean_of_examples(_official_style, judged, plain, mask, bad, settings)) > 1e-3


def test_settings_presets_and_validation() -> None:
    assert (CUTSettings.offline().lam, CUTSettings.offline().alpha) == (1.2, 0.5)
    assert (CUTSettings.online().lam, CUTSettings.online().alpha) == (1.1, 1.0)
    assert CUTSettings().good_ratio == 0.25 and CUTSettings() == CUTSettings.offline()
    for bad in ({"lam": 0.0}, {"lam": math.nan}, {"alpha": -1.0}, {"good_ratio": -0.1}):
        with pytest.raises(InputError):
            CUTSettings(**bad)  # type: ignore[arg-type]


def _examples(n_good: int, n_bad: int) -> list[JudgedResponse]:
    good = [JudgedResponse(f"g{i}", "1", True, f"g{i}!") for i in range(n_good)]
    bad = [JudgedResponse(f"b{i}", "2", False, f"b{i}!0") for i in range(n_bad)]
    return [e for pair in zip(good, bad, strict=False) for e in pair] + good[n_bad:] + bad[n_good:]


def test_good_examples_are_subsampled_to_a_quarter_of_the_bad_with_a_seeded_draw() -> None:
    examples = _examples(40, 40)
    a, b, c = (subsample_good(examples, 0.25, seed) for seed in (0, 0, 1))
    assert a == b and a != c
    assert sum(not e.good for e in a) == 40 and sum(e.good for e in a) == 10
    assert [examples.index(e) for e in a] == sorted(examples.index(e) for e in a)  # original order kept
    assert len(subsample_good(_examples(3, 40), 0.25, 0)) == 43  # fewer good than asked: all of them
    assert len(subsample_good(examples, None, 0)) == 80


@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    tok = extended_tokenizer()
    return tok, tiny_llama(tok, seed=0)


def test_response_logprobs_align_the_same_response_after_two_contexts(tiny) -> None:  # type: ignore[no-untyped-def]
    tok, model = tiny
    prompts, responses = ["12+a=", "1234567+b!0246="], ["3", "1212"]
    batch = encode_sequences(tok, prompts, responses)
    aligned, mask = response_logprobs(model, batch, 5)
    full = token_logprobs(model, batch)
    # EOS is learned: the mask covers every character and the EOS after it
    assert mask.sum(dim=1).tolist() == [2, 5]
    for b in range(2):
        expected = full[b][batch.response_mask[b, 1:] > 0]
        assert torch.allclose(aligned[b, : len(expected)], expected)
        assert (aligned[b, len(expected) :] == 0).all()


def test_train_cut_runs_on_judged_samples(tiny) -> None:  # type: ignore[no-untyped-def]
    tok, model = tiny
    prompts = make_prompts(48, seed=5)
    responses = [p[:4] for p in prompts]
    judged = judge_responses(prompts, responses, critic, critique_prompt)
    assert all(j.judged_prompt.startswith(j.prompt[:-1] + "!") for j in judged)
    policy, stats = train_cut(
        copy.deepcopy(model),
        tok,
        judged,
        settings=CUTSettings(good_ratio=None),
        optim=OptimSettings(lr=1e-2, batch_size=16, steps=6),
    )
    assert stats.steps == 6 and stats.train_tokens > 0 and all(math.isfinite(h) for h in stats.history)
    assert stats.history[-1] < stats.history[0]
    assert 0.0 <= stats.metrics["flagged_fraction"] <= 1.0
    assert stats.metrics["n_good"] + stats.metrics["n_bad"] == len(judged)
    changed = any(not torch.equal(a, b) for a, b in zip(policy.parameters(), model.parameters(), strict=True))
    assert changed
    with pytest.raises(InputError):
        train_cut(copy.deepcopy(model), tok, [], optim=OptimSettings(steps=1))
    with pytest.raises(InputError, match="good_ratio=None"):
        train_cut(
            copy.deepcopy(model), tok, [JudgedResponse(p, "1", True, p) for p in prompts], optim=OptimSettings(steps=1)
        )


def test_online_cut_samples_judges_and_trains_each_round(tiny) -> None:  # type: ignore[no-untyped-def]
    tok, model = tiny
    _policy, stats = train_cut_online(
        copy.deepcopy(model),
        tok,
        make_prompts(16, seed=9),
        critic,
        critique_prompt,
        rounds=2,
        optim=OptimSettings(lr=1e-2, batch_size=8, steps=4),
        max_new_tokens=10,
    )
    assert stats.method == "cut_online" and stats.steps == 4 and stats.generated_tokens > 0
    assert {"mean_good_round_0", "mean_good_round_1"} <= set(stats.metrics)


def test_judged_responses_are_read_from_jsonl_with_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pasture.train.cut import critique_context, read_judged_responses

    path = tmp_path / "judged.jsonl"
    path.write_text(
        '{"instruction": "Name a colour.", "output": "Blue.", "good": true}\n'
        '{"prompt": "Add 2+2.", "response": "5", "good": false, "critique": "The sum is wrong."}\n',
        encoding="utf-8",
    )
    rows = read_judged_responses(path)
    assert [(r.prompt, r.response, r.good) for r in rows] == [
        ("Name a colour.", "Blue.", True),
        ("Add 2+2.", "5", False),
    ]
    assert rows[1].judged_prompt == critique_context("Add 2+2.", "The sum is wrong.")
    assert "The sum is wrong." in rows[1].judged_prompt and rows[1].judged_prompt.startswith("Add 2+2.")
    for line, field in (
        ('{"instruction": "x", "output": "y", "good": "yes"}', "good"),
        ('{"instruction": "x", "output": "y", "good": false}', "critique"),
        ('{"instruction": "x", "good": true}', "output"),
    ):
        path.write_text(line + "\n", encoding="utf-8")
        with pytest.raises(InputError, match=field):
            read_judged_responses(path)
