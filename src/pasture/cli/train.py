"""``pasture train METHOD``: train one learning method (a thin layer over :mod:`pasture.train.run`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from pasture.train import METHODS, require_train_extra


@click.command("train")
@click.argument("method", type=click.Choice(sorted(METHODS)))
@click.option(
    "--task",
    type=click.Choice(["synthetic", "files"]),
    default="files",
    show_default=True,
    help="'synthetic': the keyword-inclusion task with its exact oracle (trains and evaluates); "
    "'files': a real model from JSONL files.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory for checkpoints and results; a finished run there is reused, not repeated.",
)
@click.option("--model", default="smollm2", show_default=True, help="'smollm2' or a checkpoint directory.")
@click.option("--pairs", type=click.Path(path_type=Path), default=None, help="Preference pairs (TRL JSONL).")
@click.option("--demonstrations", type=click.Path(path_type=Path), default=None, help="SFT data JSONL.")
@click.option("--prompts", type=click.Path(path_type=Path), default=None, help="Prompts JSONL (RL, expert iteration).")
@click.option("--reward-model", type=click.Path(path_type=Path), default=None, help="Reward-model checkpoint.")
@click.option("--steps", type=int, default=10, show_default=True)
@click.option("--lr", type=float, default=1e-5, show_default=True)
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--beta", type=float, default=0.1, show_default=True, help="DPO/IPO β, or SimPO β.")
@click.option("--epsilon", type=float, default=0.1, show_default=True, help="cDPO smoothing / robust DPO flip rate.")
@click.option("--gamma", type=float, default=0.5, show_default=True, help="SimPO margin γ.")
@click.option("--kl-coef", type=float, default=0.05, show_default=True, help="PPO/RLOO KL coefficient.")
@click.option("--n", type=int, default=4, show_default=True, help="Expert iteration: samples per prompt.")
@click.option("--k", type=int, default=4, show_default=True, help="RLOO: samples per prompt.")
@click.option("--max-new-tokens", type=int, default=64, show_default=True)
@click.option("--lora-r", type=int, default=None, help="Train LoRA adapters of this rank instead of all weights.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True, help="Synthetic task only: tiny sizes for a smoke run (figures not meaningful).")
def command(method: str, task: str, output: Path, quick: bool, **opts: object) -> None:
    """Train METHOD and store the result under --output (rerunning resumes).

    With --task synthetic every method is trained from the same SFT policy and evaluated by the exact
    oracle; `pasture methods report OUTPUT` then compares them.
    """
    require_train_extra()
    if task == "synthetic":
        from pasture.train.run import run_synthetic

        row = run_synthetic(method, output, seed=int(opts["seed"]), quick=quick)  # type: ignore[call-overload]
        click.echo(json.dumps(row, indent=2, sort_keys=True))
        return
    from pasture.train.run import TrainOptions, train_from_files

    stats = train_from_files(method, output, TrainOptions(**opts))  # type: ignore[arg-type]
    summary = {k: v for k, v in asdict(stats).items() if k != "history"}
    click.echo(json.dumps(summary, indent=2, sort_keys=True))
    click.echo(f"wrote {output}")
