"""A jury: one judge made of several member judges whose verdicts are combined.

Why: one judge is one set of biases (position, length, its own family). A panel of different, often smaller,
judges averages some of them out, and costs less than one large judge when its members are cheap.

A :class:`JuryJudge` is an ordinary :class:`~pasture.judges.base.Judge` (name, fingerprint, ``judge``), so
it can be given to anything that takes a judge. Its verdict is a pure function of its members' verdicts
(:func:`aggregate`):

* ``majority``: each member votes for the slot it prefers (``preference > 1.5``: model, ``< 1.5``:
  reference, ``= 1.5``: abstains); the jury's preference is 2 if the model has more votes, 1 if the
  reference has, 1.5 on a tie;
* ``weighted``: the same with each vote counted at its member's weight;
* ``mean``: the weighted mean of the members' soft preferences (a soft verdict in [1, 2]).

A jury verdict needs every member's: when one member's reply is unparsable the jury's verdict is a
``parse_error`` naming it (a verdict from the members that happened to answer would change the jury item by
item). Its fingerprint (provider ``jury``, protocol ``jury``) is built from the members' fingerprint
digests, in order, the weights and the aggregation: changing any of them is another judge.

Through the engine (``pasture.annotate.jury.annotate_jury``, used by ``pasture evaluate``), each member is
judged as its own judge, cached under its own keys, and the jury's judgment is then derived from them and
stored under the jury's key with no call of its own; see docs/judges.md, "Juries".

A TOML definition names its members (built-in judge names or TOML paths, relative to the file)::

    name = "smol-jury"
    [provider]
    name = "jury"
    members = ["smollm2-logprob", "strict.toml", "lenient.toml"]
    aggregation = "majority"             # majority | weighted | mean
    # weights = [1.0, 2.0, 1.0]          # with weighted or mean
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast, get_args

from pasture.errors import JudgeError
from pasture.judges.base import Judge, JudgeRequest, Verdict
from pasture.records import JudgeFingerprint, canonical_json, sha256_text

Aggregation = Literal["majority", "weighted", "mean"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)

JURY_PROVIDER = "jury"
"""Provider name of a jury's fingerprint and of its TOML definition."""


def aggregate(preferences: Sequence[float], weights: Sequence[float], aggregation: Aggregation) -> float:
    """The jury's preference by slot (1 = reference wins .. 2 = model wins) from its members' preferences.

    See the module docstring for the three rules; ``majority`` ignores ``weights``.
    """
    if len(preferences) != len(weights) or not preferences:
        raise JudgeError(f"{len(preferences)} member preferences for {len(weights)} weights")
    if aggregation == "mean":
        return sum(w * p for w, p in zip(weights, preferences, strict=True)) / sum(weights)
    counted = [1.0] * len(preferences) if aggregation == "majority" else list(weights)
    score = sum(w * (1 if p > 1.5 else -1 if p < 1.5 else 0) for w, p in zip(counted, preferences, strict=True))
    return 2.0 if score > 0 else 1.0 if score < 0 else 1.5


class JuryJudge:
    """A judge whose verdict combines its ``members``' verdicts by ``aggregation`` (module docstring).

    ``weights`` (positive, one per member; equal when None) count in ``weighted`` and ``mean``. Members are
    asked concurrently; a member's :class:`~pasture.judges.base.TransientError` or
    :class:`~pasture.judges.base.PermanentError` is the jury's (the engine retries the jury as a whole when
    it is called directly; ``annotate_jury`` retries each member on its own instead).
    """

    def __init__(
        self,
        members: Sequence[Judge],
        *,
        aggregation: Aggregation = "majority",
        weights: Sequence[float] | None = None,
        name: str | None = None,
    ) -> None:
        if len(members) < 2:
            raise JudgeError(f"a jury needs at least two members, got {len(members)}", param="members")
        if aggregation not in AGGREGATIONS:
            raise JudgeError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or any(not w > 0 for w in weights):
            raise JudgeError(f"weights must be {len(members)} positive numbers, got {weights}", param="weights")
        digests = [m.fingerprint.digest for m in members]
        if len(set(digests)) != len(digests):
            raise JudgeError("two jury members have the same fingerprint: give each member once (or weight it)")
        self.members = tuple(members)
        self.aggregation: Aggregation = aggregation
        self.weights = tuple(weights)
        self.name = name or f"jury({aggregation}: {', '.join(m.name for m in members)})"
        definition = {"aggregation": aggregation, "members": digests, "weights": list(self.weights)}
        self._fingerprint = JudgeFingerprint(
            provider=JURY_PROVIDER,
            model=f"jury:{aggregation}",
            weights_digest=None,
            template_digest=sha256_text(canonical_json(definition)),
            parser="jury",
            decoding=definition,
            protocol="jury",
        )

    def __repr__(self) -> str:
        return f"JuryJudge({self.name})"

    @property
    def fingerprint(self) -> JudgeFingerprint:
        return self._fingerprint

    def combine(self, verdicts: Sequence[Verdict]) -> Verdict:
        """The jury's verdict from one verdict per member (in member order): a pure function, no call.

        ``raw_completion`` records each member's preference by name (JSON), so the jury's stored judgment
        says how it was reached; tokens and cost add up over the members (cost None if any is unknown).
        """
        raw = json.dumps({m.name: v.preference for m, v in zip(self.members, verdicts, strict=True)})
        tokens_in = [v.prompt_tokens for v in verdicts]
        tokens_out = [v.completion_tokens for v in verdicts]
        costs = [v.cost_usd for v in verdicts]
        usage: dict[str, Any] = {
            "prompt_tokens": None if None in tokens_in else sum(cast(list[int], tokens_in)),
            "completion_tokens": None if None in tokens_out else sum(cast(list[int], tokens_out)),
            "cost_usd": None if None in costs else sum(cast(list[float], costs)),
        }
        failed = [m.name for m, v in zip(self.members, verdicts, strict=True) if v.status != "ok"]
        if failed:
            return Verdict(
                preference=None, status="parse_error", raw_completion=raw,
                error=f"no verdict from member(s) {', '.join(failed)}", **usage,
            )  # fmt: skip
        preferences = [float(cast(float, v.preference)) for v in verdicts]
        return Verdict(
            preference=aggregate(preferences, self.weights, self.aggregation),
            status="ok",
            raw_completion=raw,
            **usage,
        )

    async def judge(self, request: JudgeRequest) -> Verdict:
        verdicts = await asyncio.gather(*(m.judge(request) for m in self.members))
        return self.combine(verdicts)

    def estimate_tokens(self, request: JudgeRequest) -> tuple[int, int]:
        estimates = [m.estimate_tokens(request) for m in self.members]
        return sum(e[0] for e in estimates), sum(e[1] for e in estimates)

    def price_per_token(self) -> tuple[float, float] | None:
        """None: members may be priced differently, so the jury has no single price (costs add up per member)."""
        return None


def jury_from_args(name: str, args: Mapping[str, Any]) -> JuryJudge:
    """Build a jury from a definition's ``[provider]`` arguments: ``members`` (judge names or TOML paths),
    ``aggregation`` and optional ``weights``; errors name the jury."""
    from pasture.judges.definitions import get_judge

    unknown = sorted(set(args) - {"members", "aggregation", "weights"})
    if unknown:
        raise JudgeError(f"jury {name!r}: unknown argument(s) {unknown}; allowed: members, aggregation, weights")
    members = args.get("members")
    if not isinstance(members, list | tuple) or not all(isinstance(m, str) for m in members):
        raise JudgeError(f"jury {name!r}: members must be a list of judge names or TOML paths")
    aggregation = str(args.get("aggregation", "majority"))
    if aggregation not in AGGREGATIONS:
        raise JudgeError(f"jury {name!r}: aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    weights = args.get("weights")
    try:
        return JuryJudge(
            [get_judge(m) for m in members],
            aggregation=cast(Aggregation, aggregation),
            weights=None if weights is None else [float(w) for w in weights],
            name=name,
        )
    except JudgeError as exc:
        raise JudgeError(f"jury {name!r}: {exc}") from None
