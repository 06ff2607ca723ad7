"""The extended synthetic task: grammar, tokenizer, critic, gold reference, old task and instruction writing."""

from __future__ import annotations

import numpy as np
import pytest

from pasture.errors import InputError
from pasture.train.synthetic import (
    ALPHABET,
    EXTENDED_ALPHABET,
    GOOD_THRESHOLD,
    INSTRUCTION_PROMPT,
    critic,
    critique_prompt,
    extended_oracle_score,
    extended_tokenizer,
    gold_reference,
    instruction_demonstrations,
    make_prompts,
    old_task_answer,
    old_task_prompts,
    oracle_score,
    parse_extended,
    refine_prompt,
    task_tokenizer,
    written_instruction,
)


def test_the_extended_tokenizer_keeps_every_id_of_todays_task() -> None:
    old, new = task_tokenizer(), extended_tokenizer()
    assert len(old) == 3 + len(ALPHABET)  # today's vocabulary (and so today's recipes) unchanged
    assert len(new) == len(old) + 4
    text = ALPHABET
    assert new(text)["input_ids"] == old(text)["input_ids"]
    marks = new("!?#~")["input_ids"]
    assert len(set(marks)) == 4 and min(marks) >= len(old)
    assert new.decode(new("12+a!03?4#~=")["input_ids"]) == "12+a!03?4#~="
    assert set(EXTENDED_ALPHABET) - set(ALPHABET) == set("!?#~")


def test_the_critic_names_wrong_positions_and_gives_the_verdict() -> None:
    # ctx 12345, keyword 2: '2232' has a wrong digit at 2 and misses position 4 → score 3/5
    assert critic("12345+c=", "2232") == (True, "24")
    assert critic("12345+c=", "22222") == (True, "")
    assert critic("12345+c=", "12345678") == (False, "0234567")  # wrong digits, then three extra positions
    assert critic("1234~=", "4321") == (True, "")  # the old task: reversal
    assert critic("1234~=", "1234") == (False, "0123")
    with pytest.raises(InputError):
        critic("1234567+c=", "22222222222")  # position 10 has no one-digit name
    with pytest.raises(InputError):
        critic(INSTRUCTION_PROMPT, "1234+a")


def test_the_critique_is_exact_and_never_carries_the_correction() -> None:
    rng = np.random.default_rng(0)
    for prompt in make_prompts(300, seed=3):
        n = len(prompt) - 3
        response = "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(1, 11))))
        good, text = critic(prompt, response)
        wrong = [int(c) for c in text]
        assert wrong == sorted(set(wrong))
        score = oracle_score(prompt, response)
        assert score == pytest.approx(1 - len(wrong) / max(n, len(response)))
        assert good == (score >= GOOD_THRESHOLD)
        # the same wrong positions with other wrong digits, or under another keyword, give the same critique:
        # the text depends on where the errors are, never on what the right character is
        ctx, letter = prompt[:-3], prompt[-2]
        other = "abcdefghij"[("abcdefghij".index(letter) + 1) % 10]
        k, k2 = str("abcdefghij".index(letter)), str("abcdefghij".index(other))
        swapped = "".join(k2 if ch == k else (k if ch == k2 else ch) for ch in response)
        assert critic(f"{ctx}+{other}=", swapped)[1] == text


def test_prompts_with_critique_or_previous_answer_parse_back() -> None:
    p = "12345+c="
    assert critique_prompt(p, "03") == "12345+c!03="
    assert refine_prompt(p, "1232") == "12345+c?1232="
    assert refine_prompt(p, "12=3", "04") == "12345+c?12=3!04="
    parsed = parse_extended(refine_prompt(p, "12=3", "04"))
    assert (parsed.kind, parsed.base, parsed.previous, parsed.critique) == ("task", p, "12=3", "04")
    assert parse_extended(critique_prompt(p, "")).critique == ""
    for bad in (
        lambda: critique_prompt(p, "0a"),
        lambda: critique_prompt(critique_prompt(p, "0"), "1"),
        lambda: refine_prompt(p, "12!3"),
        lambda: refine_prompt(critique_prompt(p, "0"), "1"),
        lambda: parse_extended("12345+k="),
    ):
        with pytest.raises(InputError):
            bad()
    # answers to every task-prompt form are scored against the base prompt, as today
    for q in (p, critique_prompt(p, "1"), refine_prompt(p, "1111", "0123")):
        assert extended_oracle_score(q, "2232") == oracle_score(p, "2232") == pytest.approx(0.6)


def test_the_gold_reference_is_good_but_imperfect() -> None:
    prompts = make_prompts(300, seed=4)
    for p in prompts:
        ref = gold_reference(p)
        n = len(p) - 3
        assert oracle_score(p, ref) == pytest.approx((n - 1) / n)
        assert critic(p, ref)[0] and oracle_score(p, ref) < 1.0
        assert gold_reference(p) == ref
    kept = {next(i for i, ch in enumerate(gold_reference(p)) if ch != str("abcdefghij".index(p[-2]))) for p in prompts}
    assert len(kept) > 3  # the imperfection is not always at the same position
    assert gold_reference("2222+c=") == "222"  # nothing to keep: one position short instead


def test_old_task_and_instruction_writing() -> None:
    prompts = old_task_prompts(50, seed=1)
    assert len(set(prompts)) == 50 and all(p.endswith("~=") for p in prompts)
    assert old_task_answer("1234~=") == "4321"
    for p in prompts:
        assert extended_oracle_score(p, old_task_answer(p)) == 1.0
    assert extended_oracle_score("1234~=", "4320") == pytest.approx(0.75)
    assert extended_oracle_score("1234~=", "43210") == pytest.approx(0.8)  # one extra position
    assert written_instruction("1234+a") == "1234+a="
    assert written_instruction("12+a") is None and written_instruction("1234+k") is None
    assert extended_oracle_score(INSTRUCTION_PROMPT, "1234+a") == 1.0
    assert extended_oracle_score(INSTRUCTION_PROMPT, "1234") == 0.0
    assert all(written_instruction(t) for t in instruction_demonstrations(20, seed=2))
