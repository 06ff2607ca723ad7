"""Evaluating trained policies on one footing: the same prompts, the same judge, the same baselines.

For each method the comparison table (``pasture methods report``) shows, over a fixed evaluation prompt set:

* ``win_rate_vs_start`` / ``lc_vs_start``: win rate (and length-controlled win rate) of the method's samples
  against the starting policy's samples, judged by the evaluation judge (pasture's win-rate definitions,
  docs/metrics.md: 100 × mean(preference − 1), ties count one half);
* ``win_rate_vs_reference`` / ``lc_vs_reference``: the same against a fixed reference's outputs (e.g. the
  demonstrations, or another model's outputs), when given;
* ``reward_score``: mean reward-model score of the method's samples;
* ``kl_to_reference``: mean over samples of Σ_t (log π(y_t) − log π_ref(y_t)) on the method's own samples,
  π_ref being the starting (SFT) policy: a Monte-Carlo estimate of KL(π ‖ π_ref) in nats per response;
* ``avg_length``: mean response length in characters (as AlpacaEval);
* ``train_tokens``, ``generated_tokens``, ``wall_s``: the cost recorded by the trainer (:class:`TrainStats`);
* ``hacking_index``: :func:`pasture.train.hacking.hacking_index` of the run's proxy reward and true quality over
  steps (None when the run logged no true quality);
* ``old_task_before`` / ``old_task_after`` / ``retention``: the score on a held-out old task (one the starting
  policy learned first and training never sees) of the starting policy and of the method's policy, and
  after / before (:func:`pasture.train.table.retention_ratio`); None when the run had no old task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.judges.base import Judge, JudgeRequest
from pasture.position import alpaca_eval_shown_first
from pasture.records import Judgment
from pasture.scoring import score_judgments
from pasture.train.core import Generation, Reference, TrainStats, batch_from_ids, generate, token_logprobs
from pasture.train.table import TABLE_COLUMNS, retention_ratio


@dataclass(frozen=True)
class MethodRow:
    """One row of the comparison table; see the module docstring for each number's definition."""

    method: str
    win_rate_vs_start: float
    lc_vs_start: float | None
    win_rate_vs_reference: float | None
    lc_vs_reference: float | None
    n_failed: int
    reward_score: float | None
    kl_to_reference: float | None
    avg_length: float
    train_tokens: int
    generated_tokens: int
    wall_s: float
    hacking_index: float | None = None
    old_task_before: float | None = None
    old_task_after: float | None = None
    retention: float | None = None


def judge_all(
    judge: Judge,
    instructions: Sequence[str],
    reference_outputs: Sequence[str],
    model_outputs: Sequence[str],
    *,
    generator_1: str,
    generator_2: str,
) -> list[Judgment]:
    """Judge each (reference, model) pair once in AlpacaEval's shown order, in memory (no store).

    For cheap deterministic judges (programmatic oracles) in tests and sweeps; the farm loop uses the
    annotation engine and the store instead, so that paid judgments are never repeated.
    """
    if not len(instructions) == len(reference_outputs) == len(model_outputs):
        raise InputError("instructions, reference outputs and model outputs differ in length")
    digest = judge.fingerprint.digest

    async def run() -> list[Judgment]:
        out = []
        for ins, o1, o2 in zip(instructions, reference_outputs, model_outputs, strict=True):
            shown = alpaca_eval_shown_first(ins)
            v = await judge.judge(JudgeRequest(ins, o1, o2, shown))
            out.append(
                Judgment(
                    judge_digest=digest,
                    judge_name=judge.name,
                    instruction=ins,
                    output_1=o1,
                    generator_1=generator_1,
                    output_2=o2,
                    generator_2=generator_2,
                    shown_first=shown,
                    status=v.status,
                    preference=v.preference,
                    raw_completion=v.raw_completion,
                    error=v.error,
                )
            )
        return out

    return asyncio.run(run())


def win_rate_columns(judgments: Sequence[Judgment], *, lc: bool) -> tuple[float, float | None, int]:
    """(win rate, LC win rate or None, n_failed) of one model's judgments, via :func:`pasture.score_judgments`."""
    frame = score_judgments(judgments, lc=lc, bootstrap_resamples=0)
    if frame.empty:
        raise InputError("no scored judgments")
    row = frame.iloc[0]
    lc_value = float(row["length_controlled_winrate"]) if lc and "length_controlled_winrate" in frame else None
    return float(row["win_rate"]), lc_value, int(row["n_failed"])


@torch.no_grad()
def kl_to_reference(
    policy: nn.Module, reference: nn.Module, gens: Sequence[Generation], pad_id: int, *, batch_size: int = 64
) -> float:
    """Mean over samples of Σ_t (log π − log π_ref) on the policy's own samples (nats per response)."""
    ref = Reference(reference, use_adapter_off=False)
    total = 0.0
    for start in range(0, len(gens), batch_size):
        chunk = gens[start : start + batch_size]
        batch = batch_from_ids([g.prompt_ids for g in chunk], [g.response_ids for g in chunk], pad_id)
        device = next(policy.parameters()).device
        batch = batch.to(device)
        total += float((token_logprobs(policy.eval(), batch) - ref.token_logprobs(batch)).sum().item())
    return total / max(len(gens), 1)


def evaluate_method(
    method: str,
    policy: nn.Module,
    start_policy: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    judge: Judge,
    *,
    stats: TrainStats | None = None,
    start_outputs: Sequence[str] | None = None,
    reference_outputs: Sequence[str] | None = None,
    reward_fn: object | None = None,
    outputs: Sequence[str] | None = None,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    seed: int = 0,
    lc: bool = True,
    hacking_index: float | None = None,
    old_task: Callable[[nn.Module], float] | None = None,
    old_task_before: float | None = None,
) -> MethodRow:
    """Sample the method's policy on ``prompts`` (unless ``outputs`` are given, e.g. best-of-n selections),
    judge against the starting policy's samples (``start_outputs``, sampled with ``seed + 1`` when None) and
    against ``reference_outputs``, and fill one :class:`MethodRow`. ``old_task`` scores a policy on the held-out
    old task (higher is better); with it the row gets the start's score (``old_task_before``, computed when None),
    the method's and their ratio."""
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    flat: list[Generation] = []
    if outputs is None:
        gens = generate(
            policy, tokenizer, prompts, n=1, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed
        )
        flat = [g[0] for g in gens]
    texts = list(outputs) if outputs is not None else [g.text for g in flat]
    if start_outputs is None:
        start = generate(
            start_policy, tokenizer, prompts, n=1, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed + 1
        )
        start_outputs = [g[0].text for g in start]
    wr, lcv, failed = win_rate_columns(
        judge_all(judge, prompts, start_outputs, texts, generator_1="start", generator_2=method), lc=lc
    )
    wr_ref = lc_ref = None
    if reference_outputs is not None:
        wr_ref, lc_ref, failed_ref = win_rate_columns(
            judge_all(judge, prompts, reference_outputs, texts, generator_1="reference", generator_2=method), lc=lc
        )
        failed += failed_ref
    rscore = None
    if reward_fn is not None:
        scores = list(reward_fn(list(prompts), texts))  # type: ignore[operator]
        rscore = sum(scores) / len(scores)
    kl = kl_to_reference(policy, start_policy, flat, pad) if outputs is None else None
    s = stats or TrainStats(method=method)
    old_after = None
    if old_task is not None:
        old_task_before = old_task(start_policy) if old_task_before is None else old_task_before
        old_after = old_task(policy)
    return MethodRow(
        method=method,
        win_rate_vs_start=wr,
        lc_vs_start=lcv,
        win_rate_vs_reference=wr_ref,
        lc_vs_reference=lc_ref,
        n_failed=failed,
        reward_score=rscore,
        kl_to_reference=kl,
        avg_length=sum(len(t) for t in texts) / max(len(texts), 1),
        train_tokens=s.train_tokens,
        generated_tokens=s.generated_tokens,
        wall_s=s.wall_s,
        hacking_index=hacking_index,
        old_task_before=old_task_before if old_task is not None else None,
        old_task_after=old_after,
        retention=retention_ratio(old_task_before, old_after),
    )


def methods_table(rows: Sequence[MethodRow]) -> pd.DataFrame:
    """The comparison table: one row per method, indexed by method name, columns as :data:`TABLE_COLUMNS`."""
    frame = pd.DataFrame([asdict(r) for r in rows]).set_index("method")
    return frame[list(TABLE_COLUMNS)]
