"""The round-data builders of the iterative driver (:mod:`pasture.train.loop`): each turns one round's samples and
judgments into the data a registered method trains on.

A builder is a function ``build(ctx: RoundContext) -> BuiltRound`` (``ctx`` gives the round's prompts, the current
and starting policies, the round's judge and stored sampling/judging/training helpers) plus a frozen settings class,
registered here by name. This module imports no torch, so ``pasture loop --help`` is built from it alone.
Definitions and the formulas of each builder: docs/train.md ("Self-improvement loops").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from pasture.errors import InputError
from pasture.train.registry import setting


@dataclass(frozen=True)
class BuilderSettings:
    """Base of every builder's settings class (frozen; fields declared with :func:`setting`)."""


@dataclass(frozen=True)
class SelfRewardingSettings(BuilderSettings):
    """Self-Rewarding (Yuan et al. 2024): N = 4 samples per prompt, best vs worst by the policy's own score."""

    n: int = setting(4, "Samples per prompt from the current policy (≥ 2).")


@dataclass(frozen=True)
class TemporalSelfRewardingSettings(BuilderSettings):
    """Temporal Self-Rewarding: anchored rejection from the initial model M0, future-guided chosen from a temporary
    next model trained on the round's anchored pairs with the round's method and settings."""

    n: int = setting(4, "Samples per prompt from each of M0, the current policy and the temporary model (≥ 2).")
    future_steps: int | None = setting(
        None, "Optimiser steps of the temporary next model (None: the round's own steps)."
    )


@dataclass(frozen=True)
class ISheepSettings(BuilderSettings):
    """I-SHEEP (Liang et al. 2024): the policy writes instructions, answers them, rates each (instruction, answer)
    with the round's judge and keeps those rated at least C; SFT of the base model on the latest round's kept data
    (the paper's best schedule)."""

    threshold: float = setting(
        0.5, "C: keep a self-rated (instruction, answer) when the judge's score is at least C (the judge's scale)."
    )
    schedule: Literal["base_on_latest", "continued", "cumulative"] = setting(
        "base_on_latest",
        "base_on_latest: SFT of M0 on the latest round's data (paper default); continued: SFT of M_k on it; "
        "cumulative: SFT of M0 on every round's data so far.",
    )
    oversample: int = setting(
        2, "Instructions written per round = oversample × the number of seed prompts (before format/dedup filters)."
    )


@dataclass(frozen=True)
class EvolveSettings(BuilderSettings):
    """EVOLVE: N direct samples plus a filtered refinement chain of length L from the current policy; pairs
    (x, better ≻ worse) and (refine(x, worse), better ≻ worse), trained with the round's method (DPO)."""

    n: int = setting(4, "Direct samples per prompt from the current policy (≥ 2).")
    chain: int = setting(2, "Refinement steps y0 → y1 → … → y_L from the first sample (0: no chain).")
    refine_objective: Literal["dpo", "sft"] = setting(
        "dpo",
        "dpo: the refine pairs join the DPO data (EVOLVE); sft: the refine prompts are SFT demonstrations "
        "refine(x, worse) → better after DPO on the direct pairs, same budget (the exposure-matched baseline).",
    )


@dataclass(frozen=True)
class FarmSettings(BuilderSettings):
    """The farm loop (AlpacaFarm-style): two samples per prompt from the current policy, compared by a pairwise
    judge, each verdict flipped with probability p (simulated annotator noise)."""

    flip_p: float = setting(0.25, "Probability of flipping each decided verdict (AlpacaFarm's p = 0.25).")


@dataclass(frozen=True)
class Builder:
    """One registered builder: ``function`` is ``"module:function"``, imported only when a round runs; ``data`` is
    what it produces (preference pairs for DPO-family methods, demonstrations for SFT)."""

    name: str
    settings: type[BuilderSettings]
    function: str
    summary: str
    data: Literal["pairs", "demonstrations"] = "pairs"

    def build_function(self) -> Any:
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(module), name)


BUILDERS: dict[str, Builder] = {
    b.name: b
    for b in (
        Builder(
            "self_rewarding",
            SelfRewardingSettings,
            "pasture.train.builders.self_rewarding:build_self_rewarding",
            "best vs worst of N own samples, judged by the round's judge",
        ),
        Builder(
            "temporal_self_rewarding",
            TemporalSelfRewardingSettings,
            "pasture.train.builders.self_rewarding:build_temporal_self_rewarding",
            "anchored rejection (M0's worst) + future-guided chosen (a temporary next model's best)",
        ),
        Builder(
            "i_sheep",
            ISheepSettings,
            "pasture.train.builders.i_sheep:build_i_sheep",
            "self-written instructions and answers, self-rated, kept at score ≥ C; SFT (schedule selectable)",
            data="demonstrations",
        ),
        Builder(
            "evolve",
            EvolveSettings,
            "pasture.train.builders.evolve:build_evolve",
            "(x, better ≻ worse) and (refine(x, worse), better ≻ worse) from direct samples + a filtered refine chain",
        ),
        Builder(
            "farm",
            FarmSettings,
            "pasture.train.builders.farm:build_farm",
            "two own samples per prompt compared by a pairwise judge, verdicts flipped with probability p",
        ),
    )
}
"""Every builder ``pasture loop`` knows, by name."""


def get_builder(name: str) -> Builder:
    """The registered builder ``name``; an unknown name is a one-line error listing the known ones."""
    if name not in BUILDERS:
        raise InputError(f"unknown builder {name!r}; choose one of {', '.join(BUILDERS)}")
    return BUILDERS[name]
