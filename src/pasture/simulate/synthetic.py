"""A synthetic task with an exact oracle, to check a simulated pool against known truth.

The task: "What is A + B?" with one correct and one wrong answer per instruction. The oracle knows which
is right, so every simulated label can be compared with the truth, and the measured flip rate and
agreement can be checked against their expected values (see tests/simulate).
"""

from __future__ import annotations

import re

from pasture.errors import InputError
from pasture.records import ModelOutput
from pasture.simulate.noise import uniform_draw

_QUESTION = re.compile(r"^What is (-?\d+) \+ (-?\d+)\?$")
_ANSWER = re.compile(r"(-?\d+)\s*\.?\s*$")


def arithmetic_outputs(n: int, *, seed: int = 0) -> list[ModelOutput]:
    """``2 n`` outputs: for each of ``n`` sums, generator ``correct`` answers right and ``wrong`` is off by 1-9.

    Operands and errors come from SHA-256 draws of ``seed`` (stable everywhere). Answers vary in wording and
    length so that length is not a proxy for correctness.
    """
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    outputs: list[ModelOutput] = []
    for i in range(n):
        a = int(uniform_draw(str(i), seed, "arith_a") * 1000)
        b = int(uniform_draw(str(i), seed, "arith_b") * 1000)
        delta = 1 + int(uniform_draw(str(i), seed, "arith_delta") * 9)
        sign = 1 if uniform_draw(str(i), seed, "arith_sign") < 0.5 else -1
        verbose = uniform_draw(str(i), seed, "arith_verbose") < 0.5
        instruction = f"What is {a} + {b}?"
        right, wrong = a + b, a + b + sign * delta
        for gen, value, long in (("correct", right, verbose), ("wrong", wrong, not verbose)):
            text = f"Adding {a} and {b} step by step gives {value}." if long else f"{value}"
            outputs.append(ModelOutput(instruction=f"{instruction}", output=text, generator=gen))
    return outputs


def arithmetic_oracle(instruction: str, output_1: str, output_2: str) -> float:
    """The exact preference by slot: 1 if only output_1 states the right sum, 2 if only output_2 does,
    1.5 otherwise (both or neither right). Raises InputError for an instruction not of this task."""
    m = _QUESTION.match(instruction)
    if m is None:
        raise InputError(f"not an arithmetic instruction: {instruction[:60]!r}")
    truth = int(m.group(1)) + int(m.group(2))

    def right(text: str) -> bool:
        found = _ANSWER.search(text)
        return found is not None and int(found.group(1)) == truth

    r1, r2 = right(output_1), right(output_2)
    if r1 == r2:
        return 1.5
    return 1.0 if r1 else 2.0
