"""The Python functions behind ``pasture train``: one method, from files or on the synthetic task, resumable.

A finished run leaves a checkpoint directory with ``stats.json`` (written last); running the same command
again finds it and returns the stored result instead of training again. The synthetic task additionally
stores its shared setup (SFT policy, noisy pairs, reward model) under ``<output>/setup`` and each method's row
of the comparison table as ``<output>/<method>/row.json``, which ``pasture methods report`` collects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pasture.errors import InputError
from pasture.train.core import (
    LoraSettings,
    OptimSettings,
    PreferencePair,
    TrainStats,
    checkpoint_done,
    load_stats,
    save_checkpoint,
    timed,
)

FILE_METHODS = ("sft", "reward_model", "expert_iteration", "dpo", "ipo", "cdpo", "robust_dpo", "simpo", "ppo", "rloo")
"""Methods ``pasture train`` runs on a real model from files (best-of-n is inference-time: see the docs)."""


@dataclass(frozen=True)
class TrainOptions:
    """Options of one ``pasture train`` run on a real model; each maps to the trainer argument of that name."""

    model: str = "smollm2"
    pairs: Path | None = None
    demonstrations: Path | None = None
    prompts: Path | None = None
    reward_model: Path | None = None
    steps: int = 10
    lr: float = 1e-5
    batch_size: int = 4
    beta: float = 0.1
    epsilon: float = 0.1
    gamma: float = 0.5
    kl_coef: float = 0.05
    n: int = 4
    k: int = 4
    max_new_tokens: int = 64
    lora_r: int | None = None
    seed: int = 0


def _need(path: Path | None, what: str, method: str) -> Path:
    if path is None:
        raise InputError(f"{method} needs {what}")
    return path


def train_from_files(method: str, output: str | Path, options: TrainOptions) -> TrainStats:
    """Train ``method`` on ``options.model`` from JSONL files and save the result to ``output``.

    Inputs per method: sft ← demonstrations; reward_model, dpo/ipo/cdpo/robust_dpo, simpo ← pairs;
    expert_iteration, ppo, rloo ← prompts + a reward model checkpoint (from ``pasture train reward_model``).
    Returns the stored stats when ``output`` already holds a finished run (resume).
    """
    from pasture.train.dpo import DPOSettings, SimPOSettings, train_dpo, train_simpo
    from pasture.train.expert_iteration import train_expert_iteration
    from pasture.train.models import load_policy, read_demonstrations, read_preference_pairs, read_prompts
    from pasture.train.ppo import PPOSettings, train_ppo
    from pasture.train.reward import RewardModel, train_reward_model
    from pasture.train.rloo import RLOOSettings, train_rloo
    from pasture.train.sft import train_sft

    if method not in FILE_METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(FILE_METHODS)}")
    out = Path(output)
    if checkpoint_done(out):
        return load_stats(out)
    model, tok = load_policy(options.model)
    lora = LoraSettings(r=options.lora_r, alpha=2 * options.lora_r) if options.lora_r else None
    optim = OptimSettings(lr=options.lr, batch_size=options.batch_size, steps=options.steps)
    seed = options.seed
    pairs: list[PreferencePair] = []
    if method in ("reward_model", "dpo", "ipo", "cdpo", "robust_dpo", "simpo"):
        pairs = read_preference_pairs(_need(options.pairs, "--pairs (JSONL with prompt/chosen/rejected)", method))
    if method == "sft":
        prompts, responses = read_demonstrations(_need(options.demonstrations, "--demonstrations", method))
        policy, stats = train_sft(model, tok, prompts, responses, optim=optim, lora=lora, seed=seed)
    elif method == "reward_model":
        rm, stats = train_reward_model(model, tok, pairs, optim=optim, lora=lora, seed=seed)
        save_checkpoint(out, rm, tok, stats)
        return stats
    elif method in ("dpo", "ipo", "cdpo", "robust_dpo"):
        loss = {"dpo": "sigmoid", "ipo": "ipo", "cdpo": "cdpo", "robust_dpo": "robust"}[method]
        eps = options.epsilon if loss in ("cdpo", "robust") else 0.0
        settings = DPOSettings(beta=options.beta, loss=loss, epsilon=eps)  # type: ignore[arg-type]
        policy, stats = train_dpo(model, tok, pairs, settings=settings, optim=optim, lora=lora, seed=seed)
    elif method == "simpo":
        policy, stats = train_simpo(
            model,
            tok,
            pairs,
            settings=SimPOSettings(beta=options.beta, gamma=options.gamma),
            optim=optim,
            lora=lora,
            seed=seed,
        )
    else:
        prompts = read_prompts(_need(options.prompts, "--prompts (JSONL with instruction)", method))
        rm_model = RewardModel.load(_need(options.reward_model, "--reward-model (a reward_model checkpoint)", method))
        if method == "expert_iteration":

            def score(p: Sequence[str], r: Sequence[str]) -> list[float]:
                return rm_model.score(tok, p, r)

            policy, stats = train_expert_iteration(
                model,
                tok,
                prompts,
                score,
                n=options.n,
                optim=optim,
                lora=lora,
                max_new_tokens=options.max_new_tokens,
                seed=seed,
            )
        elif method == "ppo":
            policy, stats = train_ppo(
                model,
                tok,
                prompts,
                rm_model,
                optim=optim,
                lora=lora,
                seed=seed,
                settings=PPOSettings(
                    kl_coef=options.kl_coef,
                    max_new_tokens=options.max_new_tokens,
                    minibatch_size=max(1, options.batch_size // 2),
                ),
            )
        else:
            policy, stats = train_rloo(
                model,
                tok,
                prompts,
                rm_model,
                optim=optim,
                lora=lora,
                seed=seed,
                settings=RLOOSettings(k=options.k, kl_coef=options.kl_coef, max_new_tokens=options.max_new_tokens),
            )
    save_checkpoint(out, policy, tok, stats)
    return stats


def run_synthetic(method: str, output: str | Path, *, seed: int = 0, quick: bool = False) -> dict[str, object]:
    """Train and evaluate ``method`` on the synthetic task; store and return its comparison-table row.

    ``quick`` shrinks every size (for smoke tests; the figures are then not the documented ones).
    """
    from pasture.train import METHODS
    from pasture.train.compare import MethodRow
    from pasture.train.recipes import (
        SyntheticConfig,
        best_of_n_curve,
        evaluate_synthetic,
        train_synthetic_method,
    )
    from pasture.train.setup_store import load_or_build_setup

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    out = Path(output)
    row_path = out / method / "row.json"
    for done in (row_path, out / method / "accuracy.json"):
        if done.is_file():
            return dict(json.loads(done.read_text(encoding="utf-8")))
    cfg = SyntheticConfig(seed=seed)
    if quick:
        cfg = SyntheticConfig(
            seed=seed,
            n_sft_prompts=300,
            sft_steps=30,
            n_pair_prompts=400,
            rm_steps=10,
            n_rl_prompts=64,
            n_eval_prompts=32,
            n_heldout_pair_prompts=32,
        )
    setup = load_or_build_setup(out / "setup", cfg)
    row: MethodRow
    extra: dict[str, object] = {}
    if method == "sft":
        row = evaluate_synthetic(setup, method, setup.sft, setup.sft_stats)
    elif method == "reward_model":
        from pasture.train.recipes import heldout_pairs
        from pasture.train.reward import pair_accuracy

        # a reward model is not a policy: it gets no row in the comparison table, its accuracy is stored instead
        record = {
            "method": method,
            "heldout_accuracy": pair_accuracy(setup.reward_model, setup.tokenizer, heldout_pairs(setup)),
            "train_accuracy": setup.rm_stats.metrics.get("train_accuracy"),
            "train_tokens": setup.rm_stats.train_tokens,
            "wall_s": setup.rm_stats.wall_s,
        }
        path = out / method / "accuracy.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
        return record
    elif method == "best_of_n":
        from pasture.train.recipes import _bon

        extra["curve"] = {str(k): v for k, v in best_of_n_curve(setup).items()}
        stats = TrainStats(method="best_of_n")
        with timed(stats):
            bon = _bon(setup, 16, seed + 3)
        stats.generated_tokens = bon.generated_tokens
        row = evaluate_synthetic(setup, method, setup.sft, stats, outputs=bon.select(16))
    else:
        policy, stats = train_synthetic_method(setup, method)
        save_checkpoint(out / method / "checkpoint", policy, setup.tokenizer, stats)
        row = evaluate_synthetic(setup, method, policy, stats)
    record = {**asdict(row), **extra}
    row_path.parent.mkdir(parents=True, exist_ok=True)
    row_path.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    return record
