"""Prompt sets and policy samples kept in the pasture store, shared by the store-backed loops (``farm``, ``loop``,
``cut_online``).

Why in the store: a loop killed in the middle resumes from what it stored, and a rerun with the same settings
samples nothing again. The generator name carries the digest of the settings that made the samples (each loop
builds it), so samples of other settings are never reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.records import EvalSet, Instruction, ModelOutput
from pasture.store import Store
from pasture.train.core import generate


class Sampling(Protocol):
    """How a loop samples its policy (``FarmConfig`` and ``CUTOnlineConfig`` have these fields)."""

    @property
    def max_new_tokens(self) -> int: ...

    @property
    def temperature(self) -> float: ...


def prompt_set(name: str, prompts: Sequence[str]) -> EvalSet:
    """The prompts as an eval set named ``name``; none, or a repeated prompt, is an InputError (samples and
    judgments are stored per prompt, so a repeated one would be asked once and counted twice)."""
    if not prompts:
        raise InputError(f"{name}: no prompts")
    if len(set(prompts)) != len(prompts):
        raise InputError(f"{name}: prompts must be distinct")
    return EvalSet(name=name, instructions=tuple(Instruction(instruction=p) for p in prompts))


def stored_or_generate(
    store: Store,
    es: EvalSet,
    generator: str,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    cfg: Sampling,
    seed: int,
    sample_index: int = 0,
) -> list[str]:
    """One output per prompt of ``es`` under ``generator``, in the prompts' order: the stored ones, and the missing
    ones sampled from ``model`` (``cfg``'s token budget and temperature, ``seed``) and stored as ``sample_index``."""
    digest = store.put_eval_set(es)
    have = {o.instruction: o.output for o in store.get_outputs(digest, generator)}
    prompts = es.texts()
    missing = [p for p in prompts if p not in have]
    if missing:
        gens = generate(
            model, tokenizer, missing, n=1, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=seed
        )
        outs = [
            ModelOutput(
                instruction=p,
                output=g[0].text,
                generator=generator,
                sample_index=sample_index,
                completion_tokens=len(g[0].response_ids),
            )
            for p, g in zip(missing, gens, strict=True)
        ]
        store.put_outputs(digest, outs)
        have.update({o.instruction: o.output for o in outs})
    return [have[p] for p in prompts]
