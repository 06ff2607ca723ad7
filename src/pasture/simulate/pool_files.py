"""Annotator pools from small TOML files, and the built-in pools.

A pool file::

    name = "local-personas"
    p = 0.25                  # label-flip probability (0.25 as AlpacaFarm, for training labels; 0 for eval)
    seed = 0                  # seed of assignment, output order and flips

    [[member]]
    name = "concise"          # unique within the pool
    judge = "smollm2-logprob-server"   # a built-in judge (pasture judges) or a judge TOML file (relative path)
    persona = "concise"       # optional: read with one of pasture's personas (balanced, concise, thorough, strict)
    weight = 1.0              # optional: relative assignment probability
    independent = true        # optional: verdicts never shared with other members (default: if it samples)
    batch_size = 4            # optional: judge up to 4 pairs in one call (pasture.judges.BatchedJudge);
                              # model judges only, not with a persona
    [member.overrides]        # optional: get_judge overrides (base_url, model, template, decoding, ...)
    base_url = "http://127.0.0.1:8080/v1"

    [[member]]
    name = "oracle"
    judge = "path/to/oracle_judge.toml"  # e.g. a programmatic judge: [provider] name = "python"

``overrides`` given to :func:`load_pool` (e.g. ``base_url`` from the command line) apply to every member
whose judge is a model (not to programmatic judges).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pasture.errors import InputError, JudgeError
from pasture.judges.base import Judge
from pasture.judges.batched import BatchedJudge
from pasture.judges.definitions import BUILTIN_JUDGES, get_spec
from pasture.judges.judge import LLMJudge
from pasture.simulate.personas import PERSONAS, persona_judge
from pasture.simulate.pool import DEFAULT_FLIP_P, AnnotatorPool, PoolMember

_POOL_KEYS = {"name", "p", "seed", "member", "description"}
_MEMBER_KEYS = {"name", "judge", "persona", "weight", "overrides", "batch_size", "independent"}


def member_judge(
    judge: str,
    *,
    name: str,
    persona: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
) -> Judge:
    """Build one member's judge: ``judge`` (built-in name or TOML path) with overrides, read with ``persona``.

    A persona replaces the judge's prompt and parser with the persona's (``pairwise_logprob``, labels A/B)
    and keeps its provider and decoding; it needs a judge that asks a model. ``batch_size`` (> 1) makes
    the member a :class:`~pasture.judges.batched.BatchedJudge` on the judge's provider: several pairs per
    call with pasture's batch prompt (the judge's own prompt, parser and decoding are not used); it cannot
    be combined with a persona. ``batch_size = 1`` is the judge itself.
    """
    spec = get_spec(judge).with_overrides(name=name, **dict(overrides or {}))
    built = spec.build()
    if batch_size is not None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise JudgeError(f"member {name!r}: batch_size must be an integer >= 1, got {batch_size!r}")
        if batch_size > 1:
            if persona is not None:
                raise JudgeError(f"member {name!r}: batch_size > 1 cannot be combined with a persona")
            if not isinstance(built, LLMJudge):
                raise JudgeError(
                    f"member {name!r}: batch_size needs a judge that asks a model, not {type(built).__name__}"
                )
            return BatchedJudge(name, built.provider, batch_size=batch_size)
    if persona is None:
        return built
    if persona not in PERSONAS:
        raise JudgeError(f"member {name!r}: unknown persona {persona!r}; known: {', '.join(sorted(PERSONAS))}")
    if not isinstance(built, LLMJudge):
        raise JudgeError(f"member {name!r}: a persona needs a judge that asks a model, not {type(built).__name__}")
    if built.protocol != "pairwise_logprob":
        raise JudgeError(
            f"member {name!r}: personas are pairwise_logprob prompts; judge {judge!r} uses {built.protocol!r}"
        )
    return persona_judge(persona, built.provider, name=name, decoding=built.decoding)


def load_pool(path: str | Path, *, p: float | None = None, seed: int | None = None, **overrides: Any) -> AnnotatorPool:
    """Read a pool file; ``p``/``seed`` replace the file's values, ``overrides`` go to every model judge."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read pool file: {exc.strerror or exc}", path=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid TOML: {exc}", path=path) from None
    unknown = set(data) - _POOL_KEYS
    if unknown:
        raise InputError(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_POOL_KEYS)}", path=path)
    rows = data.get("member")
    if not isinstance(rows, list) or not rows:
        raise InputError("a pool needs at least one [[member]] table", path=path, field="member")
    members = []
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise InputError("must be a table", path=path, row=i, field="member")
        bad = set(row) - _MEMBER_KEYS
        if bad:
            raise InputError(f"unknown member key(s) {sorted(bad)}; allowed: {sorted(_MEMBER_KEYS)}", path=path, row=i)
        if "judge" not in row or not isinstance(row["judge"], str):
            raise InputError("a member needs judge = <built-in name or judge file>", path=path, row=i, field="judge")
        judge_ref = row["judge"]
        if judge_ref not in BUILTIN_JUDGES:
            candidate = Path(judge_ref).expanduser()
            judge_ref = str(candidate if candidate.is_absolute() else path.parent / candidate)
        name = str(row.get("name") or row.get("persona") or Path(row["judge"]).stem)
        member_overrides = row.get("overrides", {})
        if not isinstance(member_overrides, dict):
            raise InputError("must be a table", path=path, row=i, field="overrides")
        merged = dict(member_overrides)
        if overrides and get_spec(judge_ref).provider != "python":
            merged.update({k: v for k, v in overrides.items() if v is not None})
        try:
            judge = member_judge(
                judge_ref,
                name=name,
                persona=row.get("persona"),
                overrides=merged,
                batch_size=row.get("batch_size"),
            )
            independent = row.get("independent")
            if independent is not None and not isinstance(independent, bool):
                raise InputError("must be true or false", path=path, row=i, field="independent")
            members.append(
                PoolMember(judge=judge, name=name, weight=float(row.get("weight", 1.0)), independent=independent)
            )
        except (JudgeError, InputError) as exc:
            raise InputError(str(exc), path=path, row=i) from None
    try:
        return AnnotatorPool(
            members=tuple(members),
            p=float(data.get("p", DEFAULT_FLIP_P)) if p is None else p,
            seed=int(data.get("seed", 0)) if seed is None else seed,
            name=str(data.get("name", path.stem)),
        )
    except InputError as exc:
        raise InputError(str(exc), path=path) from None


def persona_pool(
    judge: str = "smollm2-logprob-server",
    personas: tuple[str, ...] = ("balanced", "concise", "thorough", "strict"),
    *,
    p: float = DEFAULT_FLIP_P,
    seed: int = 0,
    name: str = "personas",
    **overrides: Any,
) -> AnnotatorPool:
    """A pool of one model read with several personas (equal weights): the local default.

    ``overrides`` go to the judge (e.g. ``base_url`` of the llama.cpp server).
    """
    base = get_spec(judge).with_overrides(**overrides).build()
    if not isinstance(base, LLMJudge) or base.protocol != "pairwise_logprob":
        raise JudgeError(f"a persona pool needs a pairwise_logprob model judge; {judge!r} is not one")
    for persona in personas:
        if persona not in PERSONAS:
            raise JudgeError(f"unknown persona {persona!r}; known: {', '.join(sorted(PERSONAS))}")
    # one provider shared by every persona: a local model is loaded (or a server connected to) once
    members = tuple(
        PoolMember(judge=persona_judge(persona, base.provider, name=persona, decoding=base.decoding), name=persona)
        for persona in personas
    )
    return AnnotatorPool(members=members, p=p, seed=seed, name=name)
