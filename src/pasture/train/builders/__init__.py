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
    )
}
"""Every builder ``pasture loop`` knows, by name."""


def get_builder(name: str) -> Builder:
    """The registered builder ``name``; an unknown name is a one-line error listing the known ones."""
    if name not in BUILDERS:
        raise InputError(f"unknown builder {name!r}; choose one of {', '.join(BUILDERS)}")
    return BUILDERS[name]
