"""``pasture train METHOD``: train one registered method (a thin layer over :mod:`pasture.train.run`).

One subcommand per method of :mod:`pasture.train.registry`, its options built from the method's own settings
class and the shared :class:`~pasture.train.registry.TrainSettings`, so ``pasture train simpo --help`` shows
SimPO's defaults and ``pasture train dpo --help`` DPO's. Only the input files a method reads are offered.
Building these commands imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from pasture.errors import InputError
from pasture.train.registry import METHODS, Method, SettingField, TrainSettings, setting_fields, settings_from

_INPUT_OPTIONS: dict[str, tuple[str, str]] = {
    "demonstrations": ("--demonstrations", "SFT data JSONL (instruction/output or prompt/completion)."),
    "pairs": ("--pairs", "Preference pairs JSONL (TRL format: prompt/chosen/rejected)."),
    "prompts": ("--prompts", "Prompts JSONL (instruction or prompt)."),
    "reward_model": ("--reward-model", "Reward-model checkpoint (from `pasture train reward_model`)."),
    "judgments": (
        "--judgments",
        "Judged responses JSONL: instruction, output, good (true/false) and critique (required when bad).",
    ),
}


def _option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


class _OrNone(click.ParamType):
    """A value of ``inner``'s type or the word ``none`` (for ``X | None`` settings, e.g. ``--good-ratio none``)."""

    def __init__(self, inner: click.ParamType) -> None:
        self.inner = inner
        self.name = f"{inner.name}|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        return self.inner.convert(value, param, ctx)


def setting_option(f: SettingField) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option for one settings field (bool: an on/off flag; Literal: a choice; ``X | None``: default none)."""
    if f.type is bool:
        flag = f"{_option_name(f.name)}/--no-{f.name.replace('_', '-')}"
        return click.option(flag, f.name, default=f.default, show_default=True, help=f.help)
    kind: Any = click.Choice(list(f.choices)) if f.choices else f.type
    if f.optional:
        kind = _OrNone(click.types.convert_type(kind))
    return click.option(
        _option_name(f.name), f.name, type=kind, default=f.default, show_default=f.default is not None, help=f.help
    )


def settings_options(cls: type, *, exclude: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command with one option per field of settings class ``cls`` (but ``exclude``: fields another
    group of the same command already has a flag for, e.g. ``seed``)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(setting_fields(cls)):
            if f.name not in exclude:
                fn = setting_option(f)(fn)
        return fn

    return decorate


def _explicit(ctx: click.Context, names: list[str]) -> list[str]:
    return [n for n in names if ctx.get_parameter_source(n) not in (None, click.core.ParameterSource.DEFAULT)]


def _method_command(method: Method) -> click.Command:
    method_fields = [f.name for f in setting_fields(method.settings)]
    train_fields = [f.name for f in setting_fields(TrainSettings)]
    clash = set(method_fields) & {*train_fields, *method.inputs, "task", "output", "quick", "model"}
    if clash:  # a registration error, caught by the CLI tests
        raise TypeError(f"{method.settings.__name__} redefines shared option(s) {sorted(clash)}")

    @click.pass_context
    def run(ctx: click.Context, task: str, output: Path, quick: bool, model: str, **values: Any) -> None:
        from pasture.train import require_train_extra

        require_train_extra()
        if task == "synthetic":
            given = _explicit(ctx, [*method_fields, *train_fields, *method.inputs, "model"])
            given = [g for g in given if g != "seed"]
            if given:
                names = ", ".join(_option_name(g) for g in given)
                raise InputError(f"--task synthetic trains with the recipe's settings; drop {names} (docs/train.md)")
            from pasture.train.run import run_synthetic

            row = run_synthetic(method.name, output, seed=int(values["seed"]), quick=quick)
            click.echo(json.dumps(row, indent=2, sort_keys=True))
            return
        if quick:
            raise InputError("--quick applies to --task synthetic only")
        from pasture.train.run import FileInputs, train_from_files

        inputs = FileInputs(model=model, **{k: values[k] for k in method.inputs})
        stats = train_from_files(
            method.name,
            output,
            inputs,
            settings_from(method.settings, values),
            settings_from(TrainSettings, values),
        )
        summary = {k: v for k, v in asdict(stats).items() if k != "history"}
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
        click.echo(f"wrote {output}")

    fn: Callable[..., Any] = run
    fn = settings_options(method.settings)(fn)
    fn = settings_options(TrainSettings)(fn)
    for name in reversed(method.inputs):
        flag, help_text = _INPUT_OPTIONS[name]
        fn = click.option(flag, name, type=click.Path(path_type=Path), default=None, help=help_text)(fn)
    fn = click.option("--model", default="smollm2", show_default=True, help="'smollm2' or a checkpoint directory.")(fn)
    fn = click.option(
        "--quick", is_flag=True, help="Synthetic task only: tiny sizes for a smoke run (figures not meaningful)."
    )(fn)
    fn = click.option(
        "--output",
        "-o",
        type=click.Path(path_type=Path),
        required=True,
        help="Directory for checkpoints and results; a finished run of the same settings there is reused, "
        "one of other settings is an error.",
    )(fn)
    fn = click.option(
        "--task",
        type=click.Choice(["synthetic", "files"]),
        default="files",
        show_default=True,
        help="'synthetic': the keyword-inclusion task with its exact oracle and the recipe's settings (trains and "
        "evaluates); 'files': a real model from JSONL files with the options below.",
    )(fn)
    doc = (method.settings.__doc__ or "").strip().replace("``", "")
    return click.command(
        method.name, help=f"{method.summary}. {doc}", short_help=method.summary, no_args_is_help=False
    )(fn)


class _MethodGroup(click.Group):
    """Subcommands built from the registry on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(METHODS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        method = METHODS.get(cmd_name)
        return _method_command(method) if method is not None else None


@click.group("train", cls=_MethodGroup)
def command() -> None:
    """Train METHOD and store the result under --output (rerunning with the same settings resumes).

    Each method has its own settings and defaults (`pasture train METHOD --help`). With --task synthetic every
    method is trained from the same SFT policy and evaluated by the exact oracle; `pasture methods report
    OUTPUT` then compares them.
    """
