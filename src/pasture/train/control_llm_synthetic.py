"""Continual SFT from task A to task B on the extended synthetic task: full fine-tuning, LoRA and Control LLM.

Why: the comparison issue 17 asks for (METHODS.md). A tiny Llama learns task A, the extended task's old task
(reversal, ``<ctx>~=`` → ``ctx`` reversed, exact demonstrations), for ``a_steps``; from that one policy each method
then learns task B (keyword inclusion, the mediocre q = 0.25 demonstrations every synthetic recipe starts from) for
the same ``b_steps`` on the same batches (same seed): equal examples and optimiser steps from the same start. Task A
is never seen again. Measured on fresh prompts of each task (one sample per prompt at temperature 1, exact oracle
score; the same sampling seed for every method):

* gain on B: mean B score after − before (before: the A policy's score on B);
* retention of A: mean A score after / before;
* paired win rates against full fine-tuning on A and on B (per prompt, ties ½).

Settings are the paper's defaults where it has them (Control LLM: mix σ(0) = 0.5 frozen, α = 1, MSE; the count of
twins picks the last block of the two, as the official rule does) and the shared starting policy's otherwise
(lr 3e-3, batch 64; LoRA r = 8, α = 16), untuned and equal for every method. ``control_no_div`` (α = 0) is the
ablation that shows what the divergence loss itself does; ``control_all`` puts a twin beside both blocks (the most
capacity Control LLM can give task B here). Driven by ``experiments/control_llm_synthetic.py``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerFast

from pasture.train.compare import MethodRow
from pasture.train.core import OptimSettings, TrainingData, generate, set_seed
from pasture.train.registry import SFTSettings, TrainSettings, get_method
from pasture.train.sft import train_sft
from pasture.train.synthetic import (
    MAX_RESPONSE_TOKENS,
    demonstrations,
    extended_oracle_score,
    extended_tokenizer,
    make_prompts,
    old_task_answer,
    old_task_prompts,
    win_rate_from_scores,
)
from pasture.train.table import retention_ratio
from pasture.train.tiny import tiny_llama


@dataclass(frozen=True)
class ContinualConfig:
    """Sizes and the equal budget of the comparison: task A at the shared starting policy's stage size (300 steps),
    task B at half of it (150 steps, sized to the CPU budget of a shared machine)."""

    n_a_prompts: int = 2000
    a_steps: int = 300
    n_b_prompts: int = 2000
    b_steps: int = 150
    lr: float = 3e-3
    batch_size: int = 64
    n_eval: int = 300
    lora_r: int = 8
    expand_layers: str = "1"
    methods: tuple[str, ...] = ("full", "lora", "control", "control_no_div", "control_all")


SMOKE = ContinualConfig(n_a_prompts=64, a_steps=4, n_b_prompts=64, b_steps=3, batch_size=16, n_eval=16)
"""CI size: every code path once, figures meaningless."""


def method_settings(method: str, cfg: ContinualConfig, seed: int) -> TrainSettings:
    """The shared training settings of one compared method on task B."""
    base = TrainSettings(steps=cfg.b_steps, lr=cfg.lr, batch_size=cfg.batch_size, seed=seed, max_grad_norm=1.0)
    if method == "full":
        return base
    if method == "lora":
        return TrainSettings(**{**base.__dict__, "lora_r": cfg.lora_r})
    if method == "control":
        return TrainSettings(**{**base.__dict__, "expand_layers": cfg.expand_layers})
    if method == "control_no_div":
        return TrainSettings(**{**base.__dict__, "expand_layers": cfg.expand_layers, "control_alpha": 0.0})
    if method == "control_all":  # a twin beside every block: the most capacity Control LLM can give the new task
        return TrainSettings(**{**base.__dict__, "expand_layers": "2"})
    raise ValueError(f"unknown method {method!r}")


def scores(model: nn.Module, tok: PreTrainedTokenizerFast, prompts: Sequence[str], seed: int) -> list[float]:
    """Exact score of one sample per prompt (temperature 1, seeded)."""
    gens = generate(model, tok, prompts, n=1, max_new_tokens=MAX_RESPONSE_TOKENS, temperature=1.0, seed=seed)
    return [extended_oracle_score(p, g[0].text) for p, g in zip(prompts, gens, strict=True)]


@dataclass
class SeedResult:
    """One seed: the A policy's scores and, per method, its scores on A and B and its cost."""

    seed: int
    a_learned: float
    b_before: float
    rows: dict[str, dict[str, float]] = field(default_factory=dict)


def run_seed(cfg: ContinualConfig, seed: int) -> SeedResult:
    """Train A, then every method on B from the A policy; score both tasks before and after."""
    set_seed(seed)
    tok = extended_tokenizer()
    a_prompts = old_task_prompts(cfg.n_a_prompts, seed=seed + 31)
    a_model, _ = train_sft(
        tiny_llama(tok, seed=seed),
        tok,
        a_prompts,
        [old_task_answer(p) for p in a_prompts],
        optim=OptimSettings(lr=cfg.lr, batch_size=cfg.batch_size, steps=cfg.a_steps),
        seed=seed,
        method="sft_task_a",
    )
    a_model.eval()
    a_eval = old_task_prompts(cfg.n_eval, seed=seed + 32)
    a_eval = [p for p in a_eval if p not in set(a_prompts)] or a_eval
    b_eval = make_prompts(cfg.n_eval, seed=seed + 99)
    a_before = scores(a_model, tok, a_eval, seed + 1000)
    b_before = scores(a_model, tok, b_eval, seed + 2000)
    b_prompts = make_prompts(cfg.n_b_prompts, seed=seed + 1)
    data = TrainingData(prompts=b_prompts, responses=demonstrations(b_prompts, seed=seed + 2))
    result = SeedResult(seed, float(np.mean(a_before)), float(np.mean(b_before)))
    per_prompt: dict[str, tuple[list[float], list[float]]] = {}
    for method in cfg.methods:
        train = method_settings(method, cfg, seed)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        policy, stats = get_method("sft").trainer_function()(copy.deepcopy(a_model), tok, data, SFTSettings(), train)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        policy.eval()
        a_after, b_after = scores(policy, tok, a_eval, seed + 1000), scores(policy, tok, b_eval, seed + 2000)
        per_prompt[method] = (a_after, b_after)
        n_trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
        result.rows[method] = {
            "a_after": float(np.mean(a_after)),
            "b_after": float(np.mean(b_after)),
            "gain_b": float(np.mean(b_after)) - result.b_before,
            "retention_a": retention_ratio(result.a_learned, float(np.mean(a_after))) or float("nan"),
            "train_wall_s": wall,
            "train_cpu_s": cpu,
            "trainable_params": float(n_trainable),
            "final_nll": stats.metrics.get("final_nll", float("nan")),
        }
    full_a, full_b = per_prompt.get("full", (None, None))
    for method, (a_after, b_after) in per_prompt.items():
        if full_a is not None and full_b is not None and method != "full":
            result.rows[method]["win_a_vs_full"] = 100 * win_rate_from_scores(a_after, full_a)
            result.rows[method]["win_b_vs_full"] = 100 * win_rate_from_scores(b_after, full_b)
    return result


def run_comparison(cfg: ContinualConfig, seeds: Sequence[int]) -> list[SeedResult]:
    """:func:`run_seed` for every seed, torch on one thread (the CPU budget of the project's runs)."""
    torch.set_num_threads(1)
    return [run_seed(cfg, s) for s in seeds]


def method_rows(result: SeedResult) -> list[MethodRow]:
    """One seed's methods as rows of the methods table (retention columns filled; gain here is the B score, the
    win-rate columns stay empty because no judge compared samples in this experiment)."""
    out = []
    for method, r in result.rows.items():
        out.append(
            MethodRow(
                method=f"continual_{method}",
                win_rate_vs_start=float("nan"),
                lc_vs_start=None,
                win_rate_vs_reference=None,
                lc_vs_reference=None,
                n_failed=0,
                reward_score=r["b_after"],
                kl_to_reference=None,
                avg_length=float("nan"),
                train_tokens=0,
                generated_tokens=0,
                wall_s=r["train_wall_s"],
                old_task_before=result.a_learned,
                old_task_after=r["a_after"],
                retention=r["retention_a"],
            )
        )
    return out


def _summary(values: Sequence[float]) -> str:
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return f"{v.mean():.3f}"
    from scipy import stats as st

    half = float(st.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f} [{v.mean() - half:.3f}, {v.mean() + half:.3f}]"


def comparison_markdown(results: Sequence[SeedResult]) -> str:
    """Per-seed table and the summary over seeds (mean ± sd [95% t-interval])."""
    methods = list(results[0].rows)
    lines = [
        "## Per seed",
        "",
        "| seed | method | A before | A after | retention A | B before | B after | gain B | win A vs full (%) | "
        "win B vs full (%) | trainable params | train CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for m in methods:
            r = res.rows[m]
            win_a = f"{r['win_a_vs_full']:.1f}" if "win_a_vs_full" in r else "–"
            win_b = f"{r['win_b_vs_full']:.1f}" if "win_b_vs_full" in r else "–"
            lines.append(
                f"| {res.seed} | {m} | {res.a_learned:.3f} | {r['a_after']:.3f} | {r['retention_a']:.3f} | "
                f"{res.b_before:.3f} | {r['b_after']:.3f} | {r['gain_b']:.3f} | {win_a} | {win_b} | "
                f"{int(r['trainable_params'])} | {r['train_cpu_s']:.1f} |"
            )
    lines += [
        "",
        f"## Summary over {len(results)} seeds (mean ± sd [95% t-interval])",
        "",
        "| method | retention A | gain B | win A vs full (%) | win B vs full (%) |",
        "|---|---|---|---|---|",
    ]
    for m in methods:
        rows = [res.rows[m] for res in results]
        win_a = _summary([r["win_a_vs_full"] for r in rows]) if "win_a_vs_full" in rows[0] else "–"
        win_b = _summary([r["win_b_vs_full"] for r in rows]) if "win_b_vs_full" in rows[0] else "–"
        lines.append(
            f"| {m} | {_summary([r['retention_a'] for r in rows])} | {_summary([r['gain_b'] for r in rows])} | "
            f"{win_a} | {win_b} |"
        )
    return "\n".join(lines) + "\n"
