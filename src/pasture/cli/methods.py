"""``pasture methods report DIR``: the comparison table of trained methods (a thin layer over pasture.train.table)."""

from __future__ import annotations

from pathlib import Path

import click

from pasture.cli.common import print_frame, write_frame
from pasture.cli.options import JudgeOptions, judge_options


@click.group("methods")
def command() -> None:
    """Compare learning methods trained with `pasture train`."""


@command.command("report")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the table: .csv, .json, .md, or .html (a standalone page).",
)
def report(directory: Path, output: Path | None) -> None:
    """Win rate and LC against the start policy and a reference, reward score, KL, length, tokens, wall time."""
    from pasture.train.table import collect_rows, table_html

    frame = collect_rows(directory)
    print_frame(frame, title="pasture methods report")
    if output is not None:
        if output.suffix.lower() == ".html":
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(table_html(frame), encoding="utf-8")
        else:
            write_frame(frame, output)
        click.echo(f"wrote {output}")


@command.command("farm")
@click.option("--model", default="smollm2", show_default=True, help="'smollm2' or a checkpoint directory.")
@judge_options(help="Judge (built-in name or TOML file) used both to label and to evaluate.")
@click.option("--prompts", type=click.Path(path_type=Path), required=True, help="Training prompts JSONL.")
@click.option("--eval-prompts", type=click.Path(path_type=Path), required=True, help="Evaluation prompts JSONL.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=Path("pasture.db"), show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), required=True, help="Checkpoints and results.")
@click.option(
    "--method", type=click.Choice(["dpo", "ipo", "cdpo", "robust_dpo", "simpo"]), default="dpo", show_default=True
)
@click.option("--flip-p", type=float, default=0.25, show_default=True, help="Simulated label-flip probability.")
@click.option("--steps", type=int, default=10, show_default=True)
@click.option("--lr", type=float, default=1e-5, show_default=True)
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--beta", type=float, default=0.1, show_default=True)
@click.option("--max-new-tokens", type=int, default=64, show_default=True)
@click.option("--lora-r", type=int, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--model-cache",
    type=click.Path(path_type=Path),
    default=None,
    help="With --model smollm2: keep the de-quantised checkpoint here for later runs.",
)
def farm(
    model: str,
    judge: JudgeOptions,
    prompts: Path,
    eval_prompts: Path,
    store_path: Path,
    workdir: Path,
    method: str,
    flip_p: float,
    steps: int,
    lr: float,
    batch_size: int,
    beta: float,
    max_new_tokens: int,
    lora_r: int | None,
    seed: int,
    model_cache: Path | None,
) -> None:
    """The farm loop: sample → label (judge + simulated flips) → train → generate → evaluate, resumable."""
    from pasture.train import require_train_extra

    require_train_extra()
    import json
    from dataclasses import asdict

    from pasture.train.farm import FarmConfig, run_farm
    from pasture.train.models import load_policy, read_prompts

    train_p, eval_p = read_prompts(prompts), read_prompts(eval_prompts)
    policy, tok = load_policy(model, cache_dir=model_cache)
    cfg = FarmConfig(
        method=method,
        flip_p=flip_p,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        beta=beta,
        max_new_tokens=max_new_tokens,
        lora_r=lora_r,
        seed=seed,
    )
    result = run_farm(policy, tok, train_p, eval_p, judge.build(), store_path, workdir, cfg)
    summary = asdict(result)
    summary["stats"].pop("history", None)
    click.echo(json.dumps(summary, indent=2, default=str))
