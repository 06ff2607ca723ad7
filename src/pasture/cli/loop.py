"""``pasture loop``: the iterative self-improvement driver (pasture.train.loop) on the synthetic task."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from pasture.cli.methods import parse_settings
from pasture.cli.train import settings_options
from pasture.errors import InputError
from pasture.train.builders import BUILDERS, get_builder
from pasture.train.registry import TrainSettings, parse_setting, setting_fields, settings_from


def _builder_settings(builder: str, pairs: tuple[str, ...]) -> Any:
    cls = get_builder(builder).settings
    values: dict[str, Any] = {}
    for item in pairs:
        key, sep, text = item.partition("=")
        if not sep:
            raise InputError(f"--builder-setting {item!r}: write KEY=VALUE, e.g. --builder-setting n=8")
        name = key.strip().replace("-", "_")
        values[name] = parse_setting(cls, name, text.strip())
    return cls(**values)


def _builders_help() -> str:
    return "; ".join(
        f"{b.name}: {', '.join(f'{f.name}={f.default}' for f in setting_fields(b.settings))}" for b in BUILDERS.values()
    )


@click.command("loop")
@click.option(
    "--task",
    type=click.Choice(["synthetic", "model"]),
    default="synthetic",
    show_default=True,
    help="Where to run: the extended synthetic task (self-judge stand-in as judge, oracle as evaluator; builder "
    "farm: the oracle as a pairwise judge for both), or a real chat model (--model) that judges itself by prompt, "
    "with the same prompt on the start model as evaluator.",
)
@click.option("--model", default="smollm2", show_default=True, help="--task model: 'smollm2' or a checkpoint.")
@click.option(
    "--prompts", type=click.Path(path_type=Path), help="--task model: training prompts JSONL (instruction or prompt)."
)
@click.option("--eval-prompts", type=click.Path(path_type=Path), help="--task model: evaluation prompts JSONL.")
@click.option("--max-new-tokens", type=int, default=64, show_default=True, help="--task model: tokens per sample.")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="--task model: sampling temperature.")
@click.option("--builder", type=click.Choice(sorted(BUILDERS)), default="temporal_self_rewarding", show_default=True)
@click.option(
    "--builder-setting",
    "builder_values",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of the builder (repeatable); defaults: " + _builders_help() + ".",
)
@click.option(
    "--method",
    type=click.Choice(["dpo", "ipo", "cdpo", "robust_dpo", "simpo", "sft"]),
    default="dpo",
    show_default=True,
    help="The registered method each round trains with (sft for i_sheep, which builds demonstrations).",
)
@click.option(
    "--setting",
    "setting_values",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of the method (repeatable), e.g. --setting beta=0.2.",
)
@click.option("--rounds", type=int, default=2, show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), required=True, help="Store, checkpoints and rows.")
@click.option("--smoke", is_flag=True, help="CI sizes (a small start policy and few prompts).")
@settings_options(TrainSettings)
def command(
    task: str,
    model: str,
    prompts: Path | None,
    eval_prompts: Path | None,
    max_new_tokens: int,
    temperature: float,
    builder: str,
    builder_values: tuple[str, ...],
    method: str,
    setting_values: tuple[str, ...],
    rounds: int,
    workdir: Path,
    smoke: bool,
    **train_values: Any,
) -> None:
    """Rounds of sample → judge → build → train → evaluate, each stage stored and resumable (docs/train.md)."""
    from pasture.train import require_train_extra

    if task == "model" and (prompts is None or eval_prompts is None):
        raise InputError("--task model needs --prompts and --eval-prompts (JSONL files with an instruction per line)")
    require_train_extra()
    from pasture.train.loop import LoopConfig
    from pasture.train.loop_synthetic import SMOKE, LoopExperimentConfig, run_synthetic_loop
    from pasture.train.synthetic import MAX_RESPONSE_TOKENS

    cfg = LoopConfig(
        builder=builder,
        builder_settings=_builder_settings(builder, builder_values),
        method=method,
        settings=parse_settings(method, setting_values),
        train=settings_from(TrainSettings, train_values),
        rounds=rounds,
        max_new_tokens=MAX_RESPONSE_TOKENS if task == "synthetic" else max_new_tokens,
        temperature=1.0 if task == "synthetic" else temperature,
    )
    if task == "model":
        from pasture.train.loop_prompted import run_prompted_loop
        from pasture.train.models import read_prompts

        assert prompts is not None and eval_prompts is not None
        train_p, eval_p = read_prompts(prompts), read_prompts(eval_prompts)
        result = run_prompted_loop(cfg, model, train_p, eval_p, workdir)
    else:
        result = run_synthetic_loop(cfg, workdir, SMOKE if smoke else LoopExperimentConfig(), seed=cfg.train.seed)
    for row in result.rounds:
        click.echo(json.dumps({k: v for k, v in asdict(row).items() if k != "stage_seconds"}))
    click.echo(f"rows in {workdir} (pasture methods report {workdir})")
