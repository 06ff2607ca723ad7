"""An annotator pool: several judges (models, prompts, personas), each example labeled by one of them.

How an example is labeled (every draw is :func:`pasture.simulate.noise.uniform_draw`, SHA-256 based, so the
same seed gives the same labels in every process):

1. **Assignment**: the member is chosen with probability proportional to its ``weight`` by the draw
   ``u = uniform_draw(example_key, seed, "assign")`` against the members' cumulative weights (in the order
   the pool lists them).
2. **Output order**: the member is shown slot 2 first when
   ``uniform_draw(f"{example_key}|{member name}", seed, "order") < 0.5``, else slot 1 first. The verdict
   is always stored by slot.
3. **Clean label**: the member's verdict, cached in the store under the usual judgment key (judge
   fingerprint, texts, shown_first), so a rerun or another pool that asks the same question pays nothing.
   An **independent** member (one whose judge samples its verdict, or one marked ``independent=True``)
   adds its name to the key as the ``annotator``: two copies of one sampling judge are two annotators with
   verdicts of their own, never one cached verdict read twice.
4. **Noise**: the clean label flips (``x -> 3 - x``) when
   ``uniform_draw(f"{example_key}|{member name}", seed, "flip") < p``. Keying by member too keeps flips
   independent when every member labels every example (cross-annotation, used for measuring the pool).

``p`` is label noise for *training* data (AlpacaFarm used 0.25); evaluation labels should use ``p = 0``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Literal

from pasture.errors import InputError
from pasture.judges.base import Judge
from pasture.judges.protocols import verdict_is_sampled
from pasture.simulate.noise import FLIP_STREAM, uniform_draw

ASSIGN_STREAM = "assign"
"""Stream name of the member-assignment draw."""
ORDER_STREAM = "order"
"""Stream name of the shown-first draw."""

DEFAULT_FLIP_P = 0.25
"""AlpacaFarm's label-flip probability for simulated training preferences."""


@dataclass(frozen=True)
class PoolMember:
    """One annotator of a pool.

    Attributes
    ----------
    judge:
        Any :class:`~pasture.judges.base.Judge` (a model with a persona prompt, a programmatic oracle, ...).
    name:
        The member's name in labels and reports; unique within a pool. Defaults to ``judge.name``.
    weight:
        Relative probability of being assigned an example (> 0).
    independent:
        Whether the member's verdicts are its own (never shared with another member's through the cache):
        True for an annotator meant as an independent person, False for members that may share a cached
        verdict (identical deterministic judges give the same one anyway). None (default): independent
        exactly when its judge samples its verdict (``verdict_is_sampled``: temperature above 0 or unset).
    """

    judge: Judge
    name: str = ""
    weight: float = 1.0
    independent: bool | None = None

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.judge.name)
        if not (isinstance(self.weight, int | float) and math.isfinite(self.weight) and self.weight > 0):
            raise InputError(f"pool member {self.name!r}: weight must be a positive number, got {self.weight!r}")
        if "|" in self.name:
            raise InputError(f"pool member name must not contain '|': {self.name!r}")
        if self.independent is None:
            object.__setattr__(self, "independent", verdict_is_sampled(self.judge.fingerprint))

    @property
    def annotator(self) -> str | None:
        """The annotator id in this member's judgment keys: its name when independent, else None (shared)."""
        return self.name if self.independent else None


@dataclass(frozen=True)
class AnnotatorPool:
    """A set of judges that label examples like a crowd of people would: one random member per example.

    Attributes
    ----------
    members:
        The annotators, in a fixed order (the order is part of the assignment definition).
    p:
        Label-flip probability in [0, 1] applied to every clean label (0.25 as in AlpacaFarm for training
        labels; use 0 for evaluation).
    seed:
        Seed of all the pool's draws: assignment, output order and flips.
    name:
        A name for reports and manifests.
    """

    members: tuple[PoolMember, ...]
    p: float = DEFAULT_FLIP_P
    seed: int = 0
    name: str = "pool"
    _cumulative: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        members = tuple(m if isinstance(m, PoolMember) else PoolMember(judge=m) for m in self.members)
        object.__setattr__(self, "members", members)
        if not members:
            raise InputError(f"pool {self.name!r} has no members")
        names = [m.name for m in members]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputError(f"pool {self.name!r}: member names must be unique, repeated: {', '.join(dupes)}")
        if not isinstance(self.p, int | float) or math.isnan(self.p) or not 0.0 <= self.p <= 1.0:
            raise InputError(f"pool {self.name!r}: flip probability p must be in [0, 1], got {self.p!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise InputError(f"pool {self.name!r}: seed must be an integer, got {self.seed!r}")
        total = sum(m.weight for m in members)
        object.__setattr__(self, "_cumulative", tuple(w / total for w in accumulate(m.weight for m in members)))

    def with_options(self, *, p: float | None = None, seed: int | None = None) -> AnnotatorPool:
        """The same members with another flip probability and/or seed."""
        return AnnotatorPool(
            members=self.members,
            p=self.p if p is None else p,
            seed=self.seed if seed is None else seed,
            name=self.name,
        )

    def assign(self, example_key: str) -> int:
        """Index of the member that labels ``example_key`` (weighted, deterministic in the seed)."""
        u = uniform_draw(example_key, self.seed, ASSIGN_STREAM)
        return min(bisect.bisect_right(self._cumulative, u), len(self.members) - 1)

    def shown_first(self, example_key: str, member_name: str) -> Literal[1, 2]:
        """Which slot ``member_name`` sees first for ``example_key``.

        Drawn per (example, member): in cross-annotation each member gets its own order, so members with
        the same position bias do not agree merely because they were shown the same order.
        """
        return 2 if uniform_draw(f"{example_key}|{member_name}", self.seed, ORDER_STREAM) < 0.5 else 1

    def flips(self, example_key: str, member_name: str) -> bool:
        """Whether ``member_name``'s clean label of ``example_key`` is flipped (probability ``p``)."""
        return uniform_draw(f"{example_key}|{member_name}", self.seed, FLIP_STREAM) < self.p

    def member(self, name: str) -> PoolMember:
        for m in self.members:
            if m.name == name:
                return m
        raise InputError(f"pool {self.name!r} has no member {name!r}")

    def describe(self) -> list[dict[str, object]]:
        """Members as plain rows (name, judge fingerprint digest, weight, independent) for manifests."""
        total = sum(m.weight for m in self.members)
        return [
            {
                "name": m.name,
                "judge_digest": m.judge.fingerprint.digest,
                "weight": m.weight / total,
                "independent": bool(m.independent),
            }
            for m in self.members
        ]


def make_pool(
    members: Sequence[Judge | PoolMember], *, p: float = DEFAULT_FLIP_P, seed: int = 0, name: str = "pool"
) -> AnnotatorPool:
    """A pool from judges (equal weights) or :class:`PoolMember` objects."""
    return AnnotatorPool(
        members=tuple(m if isinstance(m, PoolMember) else PoolMember(judge=m) for m in members),
        p=p,
        seed=seed,
        name=name,
    )
