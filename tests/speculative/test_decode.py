"""The decoding loop: greedy exactness on float64 models, the sampled law by χ², the SpecDec++ path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
scipy_stats = pytest.importorskip("scipy.stats")

from pasture.errors import InputError  # noqa: E402
from pasture.speculative.core import sample  # noqa: E402
from pasture.speculative.decode import (  # noqa: E402
    FixedK,
    SpecDecPP,
    plain_generate,
    speculative_generate,
)
from pasture.speculative.head import AcceptanceHead  # noqa: E402

EOS = 1


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """Tiny models run fastest on one thread (and the CI machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _near_draft(target: Any, noise: float, seed: int) -> Any:
    """A draft that mostly agrees with the target: its weights plus Gaussian noise (both paths get exercised)."""
    import copy

    draft = copy.deepcopy(target)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(noise * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return draft


def test_greedy_speculative_equals_plain_greedy_on_50_prompts(make_llama: Any) -> None:
    """float64: token for token equal to transformers' own greedy generate, with accepts and rejects both seen."""
    target = make_llama(16, hidden=32, layers=2, seed=1)
    draft = _near_draft(target, 0.15, seed=3)
    rng = np.random.default_rng(0)
    totals = {"accepted": 0, "rejected": 0}
    for i in range(50):
        prompt = [int(x) for x in rng.integers(2, 16, size=int(rng.integers(2, 7)))]
        ref = target.generate(
            torch.tensor([prompt]), max_new_tokens=8, do_sample=False, eos_token_id=EOS, pad_token_id=0
        )[0, len(prompt) :].tolist()
        res = speculative_generate(target, draft, prompt, max_new_tokens=8, policy=FixedK(1 + i % 4), eos_token_id=EOS)
        assert list(res.tokens) == ref, f"prompt {i}"
        assert res.stats.tokens == len(ref)
        totals["accepted"] += res.stats.accepted
        totals["rejected"] += res.stats.discarded
    assert totals["accepted"] > 0 and totals["rejected"] > 0  # both branches were exercised


def test_stats_add_up(make_llama: Any) -> None:
    target = make_llama(16, hidden=32, layers=2, seed=1)
    draft = make_llama(16, hidden=16, layers=1, seed=2)
    res = speculative_generate(target, draft, [3, 4, 5], max_new_tokens=9, policy=FixedK(3), eos_token_id=None)
    s = res.stats
    assert s.tokens == 9 == len(res.tokens)
    assert s.tokens == s.accepted + s.rounds  # each round emits its accepted drafts plus one target token
    assert s.target_passes == s.rounds
    assert s.discarded == s.drafted - s.accepted
    assert s.mean_candidate_length == pytest.approx(s.drafted / s.rounds)
    plain = plain_generate(target, [3, 4, 5], max_new_tokens=9).stats
    assert plain.target_passes_per_token == 1.0


def _exact_law(model: Any, prompt: list[int], length: int, vocab: int) -> dict[tuple[int, ...], float]:
    """Probability of every output sequence of ``length`` tokens (shorter when EOS comes first)."""
    table = torch.softmax(model.body.table.weight, dim=-1)
    law: dict[tuple[int, ...], float] = {}

    def walk(prefix: tuple[int, ...], last: int, prob: float) -> None:
        if len(prefix) == length or (prefix and prefix[-1] == EOS):
            law[prefix] = law.get(prefix, 0.0) + prob
            return
        for x in range(vocab):
            walk((*prefix, x), x, prob * float(table[last, x]))

    walk((), prompt[-1], 1.0)
    return law


def _wrong_verify(p: Any, q: Any, drafts: list[int], generator: Any) -> tuple[int, int]:
    """A classic bug: on rejection resample from the target p instead of the residual (biased towards q)."""
    from pasture.speculative.core import acceptance_probability

    for i, x in enumerate(drafts):
        if float(torch.rand((), generator=generator, dtype=torch.float64)) < acceptance_probability(p[i], q[i], x):
            continue
        return i, sample(p[i], generator)
    return len(drafts), sample(p[len(drafts)], generator)


def _chi2_pvalue(make_bigram: Any, verifier: Any, n: int) -> float:
    vocab, length, prompt = 5, 3, [2]
    target, draft = make_bigram(11, vocab, 1.5), make_bigram(12, vocab, 1.5)
    law = _exact_law(target, prompt, length, vocab)
    assert sum(law.values()) == pytest.approx(1.0)
    counts = dict.fromkeys(law, 0)
    for s in range(n):
        kw: dict[str, Any] = {"verifier": verifier} if verifier is not None else {}
        res = speculative_generate(
            target, draft, prompt, max_new_tokens=length, policy=FixedK(2), temperature=1.0, eos_token_id=EOS,
            seed=1000 + s, **kw,
        )  # fmt: skip
        counts[res.tokens] += 1
    cells = sorted(law, key=lambda c: law[c])
    observed, expected = [], []
    acc_o, acc_e = 0.0, 0.0
    for c in cells:  # pool the least likely cells until each pooled cell expects ≥ 5
        acc_o += counts[c]
        acc_e += law[c] * n
        if acc_e >= 5:
            observed.append(acc_o)
            expected.append(acc_e)
            acc_o = acc_e = 0.0
    observed[-1] += acc_o
    expected[-1] += acc_e
    return float(scipy_stats.chisquare(observed, expected).pvalue)


def test_sampled_sequences_follow_the_target_law_and_a_wrong_sampler_is_caught(make_bigram: Any) -> None:
    """χ² goodness of fit of 3-token sequences (5-token vocabulary) against the target's exact law; the same
    sample size and seeds reject a sampler that resamples from p instead of the residual."""
    n = 2000
    assert _chi2_pvalue(make_bigram, None, n) > 0.01
    assert _chi2_pvalue(make_bigram, _wrong_verify, n) < 1e-3


def test_specdecpp_policy_is_exact_under_greedy_and_stops_by_the_rule(make_llama: Any) -> None:
    target = make_llama(16, hidden=32, layers=2, seed=1)
    draft = _near_draft(target, 0.15, seed=3)
    head = AcceptanceHead(32, 3).double()
    with torch.no_grad():  # a head that always predicts acceptance 0.9: 1 − 0.9^k > 0.3 first at k = 4
        head.out.weight.zero_()
        head.out.bias.copy_(torch.tensor([0.0, float(np.log(9.0))]))
    prompt = [3, 4, 5, 6]
    ref = target.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False, eos_token_id=EOS, pad_token_id=0)
    res = speculative_generate(
        target, draft, prompt, max_new_tokens=20, policy=SpecDecPP(), head=head, eos_token_id=EOS
    )
    assert list(res.tokens) == ref[0, len(prompt) :].tolist()
    assert res.stats.drafted <= 4 * res.stats.rounds
    assert SpecDecPP().stop(3, 0.9**3) is False and SpecDecPP().stop(4, 0.9**4) is True
    assert SpecDecPP().stop(1, 0.1) is False  # below the minimum candidate length
    assert SpecDecPP(max_candidates=5).stop(5, 1.0) is True
    with pytest.raises(InputError):
        speculative_generate(target, draft, prompt, max_new_tokens=5, policy=SpecDecPP())
    with pytest.raises(InputError):
        SpecDecPP(threshold=1.5)
