"""``pasture methods report DIR``: the comparison table of trained methods (a thin layer over pasture.train.table)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from pasture.annotate import EngineSettings
from pasture.cli.common import print_frame, write_frame
from pasture.cli.options import JudgeOptions, engine_options, judge_options
from pasture.cli.train import settings_options
from pasture.errors import InputError
from pasture.train.registry import (
    METHODS,
    CUTSettings,
    MethodSettings,
    TrainSettings,
    pairwise_methods,
    parse_setting,
    setting_fields,
    settings_from,
)


def _defaults_text() -> str:
    parts = []
    for name in pairwise_methods():
        fields = ", ".join(f"{f.name}={f.default}" for f in setting_fields(METHODS[name].settings))
        parts.append(f"{name}: {fields}")
    return "; ".join(parts)


def parse_settings(method: str, pairs: Sequence[str]) -> MethodSettings:
    """The method's settings object from ``KEY=VALUE`` strings (typed by its settings class; unknown keys and
    bad values are one-line errors naming the method's settings)."""
    cls = METHODS[method].settings
    values: dict[str, Any] = {}
    for item in pairs:
        key, sep, text = item.partition("=")
        if not sep:
            raise InputError(f"--setting {item!r}: write KEY=VALUE, e.g. --setting beta=0.2")
        values[key.strip().replace("-", "_")] = parse_setting(cls, key.strip().replace("-", "_"), text.strip())
    return cls(**values)


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
    """Win rate and LC against the start policy and a reference, reward score, KL, length, tokens, wall time;
    gain against retention of an old task where the runs measured it."""
    from pasture.train.table import collect_rows, gain_retention, table_html

    frame = collect_rows(directory)
    print_frame(frame, title="pasture methods report")
    retained = gain_retention(frame)
    if retained is not None:
        print_frame(retained, title="gain against retention (old task before/after training)")
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
@click.option("--method", type=click.Choice(pairwise_methods()), default="dpo", show_default=True)
@click.option(
    "--setting",
    "setting_values",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of the method (repeatable), e.g. --setting beta=0.2; unset ones keep the method's own "
    "defaults: " + _defaults_text() + ".",
)
@click.option("--flip-p", type=float, default=0.25, show_default=True, help="Simulated label-flip probability.")
@click.option("--max-new-tokens", type=int, default=64, show_default=True)
@settings_options(TrainSettings)
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
    setting_values: tuple[str, ...],
    flip_p: float,
    max_new_tokens: int,
    model_cache: Path | None,
    **train_values: Any,
) -> None:
    """The farm loop: sample → label (judge + simulated flips) → train → generate → evaluate, resumable; one round
    of the iterative driver's farm builder (docs/train.md)."""
    from pasture.train import require_train_extra

    require_train_extra()
    import json
    from dataclasses import asdict

    from pasture.train.farm import FarmConfig, run_farm
    from pasture.train.models import load_policy, read_prompts

    cfg = FarmConfig(
        method=method,
        settings=parse_settings(method, setting_values),
        train=settings_from(TrainSettings, train_values),
        flip_p=flip_p,
        max_new_tokens=max_new_tokens,
    )
    train_p, eval_p = read_prompts(prompts), read_prompts(eval_prompts)
    policy, tok = load_policy(model, cache_dir=model_cache)
    result = run_farm(policy, tok, train_p, eval_p, judge.build(), store_path, workdir, cfg)
    summary = asdict(result)
    summary["stats"].pop("history", None)
    click.echo(json.dumps(summary, indent=2, default=str))


@command.command("cut-online")
@click.option("--model", default="smollm2", show_default=True, help="'smollm2' or a checkpoint directory.")
@judge_options(
    default="smollm2-critique-server",
    help="A single-response judge of protocol critique (built-in name or TOML file); it critiques the training "
    "samples and judges the evaluation samples.",
)
@engine_options(EngineSettings(concurrency=1))
@click.option("--prompts", type=click.Path(path_type=Path), required=True, help="Training prompts JSONL.")
@click.option("--eval-prompts", type=click.Path(path_type=Path), required=True, help="Evaluation prompts JSONL.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=Path("pasture.db"), show_default=True)
@click.option("--workdir", type=click.Path(path_type=Path), required=True, help="Checkpoints and results.")
@click.option("--rounds", type=int, default=3, show_default=True, help="Rounds of sample → critique → train.")
@click.option("--samples-per-prompt", type=int, default=1, show_default=True, help="Samples per training prompt.")
@click.option("--max-new-tokens", type=int, default=64, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True, help="Sampling temperature.")
@settings_options(CUTSettings)
@settings_options(TrainSettings)
@click.option(
    "--model-cache",
    type=click.Path(path_type=Path),
    default=None,
    help="With --model smollm2: keep the de-quantised checkpoint here for later runs.",
)
@click.pass_context
def cut_online(
    ctx: click.Context,
    model: str,
    judge: JudgeOptions,
    engine: EngineSettings,
    prompts: Path,
    eval_prompts: Path,
    store_path: Path,
    workdir: Path,
    rounds: int,
    samples_per_prompt: int,
    max_new_tokens: int,
    temperature: float,
    model_cache: Path | None,
    **values: Any,
) -> None:
    """Online CUT: rounds of sample → critique (the judge, through the store) → train CUT → generate → evaluate;
    resumable, every round keyed by the full configuration (docs/train.md). --online-preset is the default here
    (--no-online-preset: the offline one)."""
    from pasture.train import require_train_extra

    require_train_extra()
    import json
    from dataclasses import asdict

    from pasture.train.cut_online import CUTOnlineConfig, run_cut_online
    from pasture.train.models import load_policy, read_prompts

    if ctx.get_parameter_source("online_preset") in (None, click.core.ParameterSource.DEFAULT):
        values["online_preset"] = True
    critic = judge.build()
    if getattr(critic, "kind", None) != "response":
        raise InputError(
            f"judge {critic.name!r} compares pairs; online CUT needs a single-response judge of protocol critique",
            param="judge",
        )
    cfg = CUTOnlineConfig(
        settings=settings_from(CUTSettings, values),
        train=settings_from(TrainSettings, values),
        rounds=rounds,
        samples_per_prompt=samples_per_prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        engine=engine,
    )
    train_p, eval_p = read_prompts(prompts), read_prompts(eval_prompts)
    policy, tok = load_policy(model, cache_dir=model_cache)
    result = run_cut_online(policy, tok, train_p, eval_p, critic, store_path, workdir, cfg)  # type: ignore[arg-type]
    summary = asdict(result)
    for r in summary["rounds"]:
        r["stats"].pop("history", None)
    click.echo(json.dumps(summary, indent=2, default=str))
