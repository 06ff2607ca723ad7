"""Small shared helpers for the engine's tests."""

from __future__ import annotations

from pasture.annotate import PairToJudge


def short_pairs(n: int, *, tag: str = "") -> list[PairToJudge]:
    """``n`` distinct, very short pairs (the local judge takes ~1-2 s per call, so prompts stay tiny)."""
    return [
        PairToJudge(
            instruction=f"Say the number {i}{tag}.",
            output_1=f"{i}",
            generator_1="reference",
            output_2=f"The number is {i}.",
            generator_2="model",
            dataset="numbers",
        )
        for i in range(n)
    ]
