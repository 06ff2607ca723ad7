"""Which output a judge is shown first: deterministic, stable across processes (no Python ``hash()``)."""

from __future__ import annotations

import random
from typing import Literal

ALPACA_EVAL_SEED = 123
"""AlpacaEval's default processor seed; with it, pasture's order equals the official judge's order."""


def alpaca_eval_shown_first(instruction: str, seed: int = ALPACA_EVAL_SEED) -> Literal[1, 2]:
    """The slot AlpacaEval's pairwise annotator shows first for ``instruction``.

    AlpacaEval draws "switched or not" from ``random.Random(str_seed)`` where the string seed is a fixed
    tag, the instruction and the processor seed. ``random.Random`` hashes string seeds with SHA-512, so the
    draw is identical in every process and Python version >= 3.2. Switched means the model output (slot 2)
    is shown first.
    """
    switched = random.Random("is_switched_outputs" + instruction + str(seed)).choices([False, True], k=1)[0]
    return 2 if switched else 1
