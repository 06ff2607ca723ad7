"""Online CUT in rounds, every stage stored and keyed by the full configuration (the farm loop's style).

Each round r (0-based) of :func:`run_cut_online`:

1. **sample**: ``samples_per_prompt`` samples per training prompt from the current policy (the starting policy in
   round 0, round r−1's in round r) → the store (eval set ``cut-online-train``, generators
   ``<name>/round<r>-<K_r>/s<i>``; K_r = the round key below);
2. **critique**: the judge (any judge of protocol ``critique``, or the programmatic critic of the synthetic task,
   :func:`pasture.train.cut_synthetic.synthetic_critic_judge`) judges each sample on its own through
   :func:`pasture.annotate.responses.annotate_responses`: stored, cached, fingerprinted and resumable like every
   judgment. A verdict good/bad with its critique becomes a CUT example; a failed judgment is counted
   (``n_failed``) and trains nothing;
3. **train**: CUT (:func:`pasture.train.cut.train_cut`, settings from the registry's ``CUTSettings``, by default the
   paper's online preset λ = 1.1, α = 1) from the current policy for ``train.steps`` steps →
   ``workdir/rounds/<r>-<K_r>`` (``run.json`` holds the identity, ``stats.json`` marks it complete);
4. **generate**: one sample per evaluation prompt from the round's policy (generator ``<name>/eval-<K_r>``) and,
   once, from the starting policy (``<name>/start-<S>``), all at the same seed → the store (eval set
   ``cut-online-eval``);
5. **evaluate**: the same judge judges every evaluation sample (stored): ``good_rate`` = good verdicts / evaluation
   prompts (a failed judgment counts as not good and is reported in ``n_failed_eval``). With an exact ``score``
   function (the synthetic oracle) also the mean score and the paired oracle win rate against the starting
   policy on the same prompts (:func:`pasture.train.cut_synthetic.paired_win_rate`).

**Keys.** K_r = SHA-256 of the canonical JSON of: the starting policy's weights and tokenizer
(:func:`pasture.train.core.model_digest`), the training prompts, the judge's fingerprint, the critique renderer,
every CUT setting, every shared training setting, samples per prompt, token budget, temperature, and r. Round r's
data depend on rounds 0..r−1, which depend on exactly these, so a changed setting gives new keys for every round
(nothing stale is reused) and the same configuration reuses everything. The number of rounds is not in the key:
running 3 rounds and then 5 reuses the first 3. The engine's settings (concurrency, retries) are not either: they
change how judgments are obtained, not what they are.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.annotate.engine import EngineSettings
from pasture.annotate.responses import ResponseToJudge, annotate_responses
from pasture.errors import InputError
from pasture.judges.base import ResponseJudge
from pasture.records import EvalSet, ResponseJudgment, canonical_json
from pasture.store import Store
from pasture.train.core import TrainStats, checkpoint_done, load_stats, model_digest, save_checkpoint
from pasture.train.cut import JudgedResponse, critique_context, train_cut
from pasture.train.models import load_checkpoint_model
from pasture.train.registry import CUTSettings, TrainSettings, run_identity, settings_dict
from pasture.train.run import check_stored, write_identity
from pasture.train.stored import prompt_set, stored_or_generate

Render = Callable[[str, str], str]
"""(instruction, critique) → the judged context (x, j) the policy reads."""
Score = Callable[[str, str], float]
"""(instruction, response) → an exact score (the synthetic oracle), for the oracle win rate."""


@dataclass(frozen=True)
class CUTOnlineConfig:
    """Settings of one online CUT run (every field but ``name``, ``rounds`` and ``engine`` enters the round keys).

    ``train.steps`` is the number of optimiser steps **per round**; ``train.seed`` seeds round r's sampling
    (seed + 7919·r), its training (seed + r) and the evaluation samples (seed + 1000).
    """

    settings: CUTSettings = field(default_factory=CUTSettings.online)
    train: TrainSettings = field(default_factory=TrainSettings)
    rounds: int = 3
    samples_per_prompt: int = 1
    max_new_tokens: int = 64
    temperature: float = 1.0
    name: str = "cut-online"
    engine: EngineSettings = field(default_factory=lambda: EngineSettings(concurrency=1))

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise InputError(f"online CUT needs at least one round, got {self.rounds}", param="rounds")
        if self.samples_per_prompt < 1:
            raise InputError(
                f"samples_per_prompt must be ≥ 1, got {self.samples_per_prompt}", param="samples_per_prompt"
            )


@dataclass(frozen=True)
class RoundResult:
    """One round: its key, what the judge said about its samples, the training stats, and the evaluation.

    ``good_rate`` (%) = evaluation samples judged good / evaluation prompts; ``mean_score`` and
    ``win_rate_vs_start`` (paired oracle win rate in %, ties ½, with its 95 % normal interval over prompts) are
    None without a score function. ``seconds``: wall time of each stage (sample, critique, train, generate,
    evaluate) in this process (a stored stage costs only its lookup).
    """

    round: int
    key: str
    n_samples: int
    n_good: int
    n_bad: int
    n_failed: int
    judge_calls: int
    stats: TrainStats
    good_rate: float
    n_failed_eval: int
    mean_score: float | None
    win_rate_vs_start: float | None
    win_rate_low: float | None
    win_rate_high: float | None
    seconds: dict[str, float]


@dataclass(frozen=True)
class CUTOnlineResult:
    """Every round's result and the starting policy's evaluation (same prompts, seed and judge)."""

    start_good_rate: float
    start_mean_score: float | None
    rounds: list[RoundResult]


def round_keys(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train_set: EvalSet,
    judge: ResponseJudge,
    render: Render,
    cfg: CUTOnlineConfig,
) -> list[str]:
    """K_0 .. K_{rounds−1} (module docstring)."""
    base = {
        "start": model_digest(model, tokenizer),
        "train_prompts": train_set.digest,
        "judge": judge.fingerprint.digest,
        "render": f"{getattr(render, '__module__', '?')}.{getattr(render, '__qualname__', repr(render))}",
        "settings": settings_dict(cfg.settings),
        "train": settings_dict(cfg.train),
        "samples_per_prompt": cfg.samples_per_prompt,
        "max_new_tokens": cfg.max_new_tokens,
        "temperature": cfg.temperature,
    }
    return [hashlib.sha256(canonical_json({**base, "round": r}).encode("utf-8")).hexdigest() for r in range(cfg.rounds)]


def _good(j: ResponseJudgment, judge: ResponseJudge) -> bool:
    if j.verdict not in ("good", "bad"):
        raise InputError(
            f"judge {judge.name!r} gave verdict {j.verdict!r}; online CUT needs a good/bad verdict (protocol critique "
            "or the synthetic critic)",
            param="judge",
        )
    return j.verdict == "good"


def _judge(
    store: Store, judge: ResponseJudge, items: Sequence[ResponseToJudge], cfg: CUTOnlineConfig
) -> tuple[dict[tuple[str, str], ResponseJudgment], int]:
    """Every item's stored-or-new judgment by (instruction, output), and the calls this run made."""
    report = annotate_responses(store, judge, items, settings=cfg.engine, progress=False)
    return {(j.instruction, j.output): j for j in report.judgments}, report.calls


def _ok_judgments(
    store: Store,
    judge: ResponseJudge,
    prompts: Sequence[str],
    outputs: Sequence[str],
    generator: str,
    cfg: CUTOnlineConfig,
) -> list[ResponseJudgment]:
    """The judge's 'ok' judgments of one sample per prompt (failed or unresolved ones left out: the caller counts
    them against its denominator)."""
    items = [ResponseToJudge(p, o, generator) for p, o in zip(prompts, outputs, strict=True)]
    by, _ = _judge(store, judge, items, cfg)
    found = [by.get((p, o)) for p, o in zip(prompts, outputs, strict=True)]
    return [j for j in found if j is not None and j.status == "ok"]


def run_cut_online(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    train_prompts: Sequence[str],
    eval_prompts: Sequence[str],
    judge: ResponseJudge,
    store_path: str | Path,
    workdir: str | Path,
    config: CUTOnlineConfig | None = None,
    *,
    render: Render = critique_context,
    score: Score | None = None,
) -> CUTOnlineResult:
    """Run (or resume) ``config.rounds`` rounds of online CUT from ``model``; stages and keys in the module docstring.

    ``render`` puts a critique into the policy's context (:func:`pasture.train.cut.critique_context` for chat
    models, :func:`pasture.train.synthetic.critique_prompt` on the synthetic task); ``score`` is an exact score
    for the oracle win rate (None: judge-only evaluation). Writes ``workdir/result.json``.
    """
    from pasture.train.cut_synthetic import paired_win_rate

    cfg = config or CUTOnlineConfig()
    seed = cfg.train.seed
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    train_es, eval_es = prompt_set("cut-online-train", train_prompts), prompt_set("cut-online-eval", eval_prompts)
    keys = round_keys(model, tokenizer, train_es, judge, render, cfg)
    sampling = {"start": model_digest(model, tokenizer), "seed": seed, "t": cfg.temperature, "n": cfg.max_new_tokens}
    start_name = f"{cfg.name}/start-{hashlib.sha256(canonical_json(sampling).encode()).hexdigest()[:12]}"
    results: list[RoundResult] = []
    policy = model
    with Store(store_path) as store:
        start_out = stored_or_generate(store, eval_es, start_name, model, tokenizer, cfg, seed + 1000)
        start_ok = _ok_judgments(store, judge, eval_prompts, start_out, start_name, cfg)
        start_good = sum(_good(j, judge) for j in start_ok)
        start_scores = [score(p, o) for p, o in zip(eval_prompts, start_out, strict=True)] if score else None
        for r, key in enumerate(keys):
            times: dict[str, float] = {}
            gen_name = f"{cfg.name}/round{r}-{key[:12]}"

            t = time.perf_counter()
            samples = [
                stored_or_generate(store, train_es, f"{gen_name}/s{i}", policy, tokenizer, cfg, seed + 7919 * r + i)
                for i in range(cfg.samples_per_prompt)
            ]
            items = [
                ResponseToJudge(p, out[k], f"{gen_name}/s{i}")
                for k, p in enumerate(train_es.texts())
                for i, out in enumerate(samples)
            ]
            times["sample"] = time.perf_counter() - t

            t = time.perf_counter()
            judged_by, calls = _judge(store, judge, items, cfg)
            judged: list[JudgedResponse] = []
            failed = 0
            for item in items:
                j = judged_by.get((item.instruction, item.output))
                if j is None or j.status != "ok":
                    failed += 1
                    continue
                good = _good(j, judge)
                judged.append(
                    JudgedResponse(item.instruction, item.output, good, render(item.instruction, j.critique or ""))
                )
            times["critique"] = time.perf_counter() - t

            t = time.perf_counter()
            ckpt = work / "rounds" / f"{r}-{key[:12]}"
            identity = run_identity("cut", cfg.settings, cfg.train, {"online_round": r, "round_key": key})
            if check_stored(ckpt, identity, checkpoint_done(ckpt)):
                stats = load_stats(ckpt)
            else:
                if not judged:
                    raise InputError(f"round {r}: every judgment failed ({failed}); nothing to train on")
                write_identity(ckpt, identity)
                start = copy.deepcopy(policy)
                control = cfg.train.control_llm()
                if control is not None:  # Control LLM (--expand-layers); later rounds keep training the same twins
                    from pasture.train.control_llm import ensure_expanded

                    start = ensure_expanded(start, control)
                trained, stats = train_cut(
                    start,
                    tokenizer,
                    judged,
                    settings=cfg.settings,
                    optim=cfg.train.optim(),
                    lora=cfg.train.lora(),
                    seed=seed + r,
                )
                save_checkpoint(ckpt, trained, tokenizer, stats)
            policy = load_checkpoint_model(ckpt).eval()
            times["train"] = time.perf_counter() - t

            t = time.perf_counter()
            eval_name = f"{cfg.name}/eval-{key[:12]}"
            outs = stored_or_generate(store, eval_es, eval_name, policy, tokenizer, cfg, seed + 1000)
            times["generate"] = time.perf_counter() - t

            t = time.perf_counter()
            ok = _ok_judgments(store, judge, eval_prompts, outs, eval_name, cfg)
            n_good_eval = sum(_good(j, judge) for j in ok)
            wr = None
            mean_score = None
            if score is not None and start_scores is not None:
                scores = [score(p, o) for p, o in zip(eval_prompts, outs, strict=True)]
                wr = paired_win_rate(scores, start_scores)
                mean_score = sum(scores) / len(scores)
            times["evaluate"] = time.perf_counter() - t

            n_good = sum(e.good for e in judged)
            results.append(
                RoundResult(
                    round=r,
                    key=key,
                    n_samples=len(items),
                    n_good=n_good,
                    n_bad=len(judged) - n_good,
                    n_failed=failed,
                    judge_calls=calls,
                    stats=stats,
                    good_rate=100 * n_good_eval / len(eval_prompts),
                    n_failed_eval=len(eval_prompts) - len(ok),
                    mean_score=mean_score,
                    win_rate_vs_start=wr.win_rate if wr else None,
                    win_rate_low=wr.low if wr else None,
                    win_rate_high=wr.high if wr else None,
                    seconds=times,
                )
            )
    result = CUTOnlineResult(
        start_good_rate=100 * start_good / len(eval_prompts),
        start_mean_score=sum(start_scores) / len(start_scores) if start_scores else None,
        rounds=results,
    )
    record = asdict(result)
    for rr in record["rounds"]:
        rr["stats"].pop("history", None)
    (work / "result.json").write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    return result
