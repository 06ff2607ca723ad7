"""The prompted self-judge on a tiny policy: the score is the expected digit by hand, the fingerprint follows the
policy's weights and the template, and judgments go through the real store (a rerun computes none)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pasture.annotate.responses import ResponseToJudge, annotate_responses
from pasture.errors import InputError
from pasture.store import Store
from pasture.train.builders.prompt_self_judge import PREFILL, SELF_REWARD_JUDGE_V1, PromptSelfJudge
from pasture.train.synthetic import extended_tokenizer, make_prompts
from pasture.train.tiny import tiny_llama


@pytest.fixture
def policy():  # type: ignore[no-untyped-def]
    tok = extended_tokenizer()
    torch.manual_seed(0)
    return tiny_llama(tok), tok


def test_score_is_the_expected_digit_of_the_next_token(policy) -> None:  # type: ignore[no-untyped-def]
    model, tok = policy
    judge = PromptSelfJudge().for_policy(model, tok)
    x, y = make_prompts(1, seed=3)[0], "12"
    text = judge.text(x, y)
    assert text.endswith(PREFILL) and x in text and y in text
    head, rest = judge.input_ids(x, y)
    assert text.startswith(judge.head()) and judge.head() == judge.text("a", "b")[: len(judge.head())]
    value, n = judge.score(x, y)
    again, _ = judge.score(x, y)  # the head's cached keys and values are not changed by a judgment
    assert again == value
    ids = torch.cat([head, rest], dim=1)  # one full forward pass, no cache
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1]
    digits = [tok.convert_tokens_to_ids(str(d)) for d in range(6)]
    p = torch.softmax(logits[digits].double(), dim=-1)
    assert value == pytest.approx(sum(d * float(p[d]) for d in range(6)), abs=1e-5)
    assert 0.0 <= value <= 5.0 and n == ids.shape[1]


def test_fingerprint_follows_weights_and_template(policy) -> None:  # type: ignore[no-untyped-def]
    model, tok = policy
    source = PromptSelfJudge()
    a = source.for_policy(model, tok).fingerprint
    assert a == source.for_policy(model, tok).fingerprint and a.protocol == "self_reward_score"
    other = tiny_llama(tok)
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    assert source.for_policy(other, tok).fingerprint.digest != a.digest  # another policy, other judgments
    changed = PromptSelfJudge(SELF_REWARD_JUDGE_V1 + "\nBe strict.")
    assert changed.digest != source.digest and changed.for_policy(model, tok).fingerprint.digest != a.digest
    with pytest.raises(InputError, match="instruction"):
        PromptSelfJudge("Score this: {output}")


def test_judgments_are_stored_and_never_computed_twice(policy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, tok = policy
    source = PromptSelfJudge()
    judge = source.for_policy(model, tok)
    items = [ResponseToJudge(p, o, "g") for p in make_prompts(3, seed=1) for o in ("1", "22")]
    with Store(tmp_path / "s.db") as store:
        first = annotate_responses(store, judge, items, progress=False)
        assert source.calls == len(items) == first.calls and all(j.status == "ok" for j in first.judgments)
        again = annotate_responses(store, source.for_policy(model, tok), items, progress=False)
    assert source.calls == len(items) and again.calls == 0
    assert [j.score for j in again.judgments] == [j.score for j in first.judgments]
