"""Option groups shared by commands, so one thing has one flag name everywhere.

* :func:`engine_options`: one flag per :class:`~pasture.annotate.EngineSettings` field, built from the
  dataclass (flag name, type, default, and help from its docstring), so a field added there reaches every
  command; the command receives ``engine: EngineSettings``.
* :func:`judge_options`: ``--judge``, ``--judge-template``, ``--judge-model``, ``--judge-base-url``,
  ``--judge-arg KEY=VALUE``; the command receives ``judge: JudgeOptions``.
* :func:`model_options`: ``--model``, ``--base-url``, ``--provider-arg KEY=VALUE`` for the model being
  generated, evaluated or trained (never the judge); the command receives ``model: ModelOptions``.
* :func:`reference_options`: ``--reference FILE`` or ``--reference-generator NAME``, a board's reference; the
  command receives ``reference: ReferenceOptions``.
* :func:`generator_option`: ``--generator NAME`` (also spelled ``--name``), the name a model's outputs go by on
  boards and in the store; the command receives ``generator``.

Errors are mapped to flags: deep code raises a :class:`~pasture.errors.PastureError` naming the Python
parameter at fault (``param``), never a flag; :func:`tag_errors` (applied to every command by
``pasture.cli``, and inside each group) finds the running command's own option for it, and
:func:`describe_error` names that flag (``template`` is ``--judge-template`` in ``evaluate``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from pasture.annotate import EngineSettings
from pasture.errors import InputError, PastureError

if typing.TYPE_CHECKING:
    from pasture.judges.base import Judge
    from pasture.providers import Provider
    from pasture.records import EvalSet, ModelOutput
    from pasture.store import Store

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

DEFAULT_JUDGE = "smollm2-logprob"

ENGINE_FLAGS: dict[str, str] = {"requests_per_minute": "--rpm", "tokens_per_minute": "--tpm"}
"""Flags that are not the field name (other fields: ``max_retries`` -> ``--max-retries``, ``timeout_s`` ->
``--timeout``: underscores become dashes and a trailing ``_s`` unit is dropped)."""

RENAMED_FLAGS: dict[str, str] = {
    "--template": "--judge-template (the judge's prompt template)",
    "--policy": "--model (the model being sampled)",
    "--policy-base-url": "--base-url (the server of --model)",
}
"""Flags some commands had before the option groups, and what replaced them (shown as 'did you mean')."""


def parse_kv(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    """KEY=VALUE strings into a dict; numbers and true/false are converted, anything else stays text."""
    out: dict[str, Any] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{option} expects KEY=VALUE, got {item!r}")
        low = value.lower()
        if low in {"true", "false"}:
            out[key] = low == "true"
            continue
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


# -- errors -> flags ----------------------------------------------------------------------------------------


def flag_of(command: click.Command | None, param: str) -> str | None:
    """The option of ``command`` that sets ``param`` (its flag and metavar, e.g. ``--judge-template PATH``)."""
    if command is None:
        return None
    for p in command.params:
        if isinstance(p, click.Option) and p.name == param:
            flag = max(p.opts, key=len)
            if p.is_flag:
                return flag
            metavar = p.metavar or (
                "PATH" if isinstance(p.type, click.Path) else "KEY=VALUE" if p.multiple else p.type.name.upper()
            )
            return f"{flag} {metavar}"
    return None


def describe_error(exc: PastureError) -> str:
    """The one-line message for ``exc``, naming the flag the running command has for its parameter."""
    return str(exc) if exc.flag is None else f"{exc.message} (set it with {exc.flag})"


def tag_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn``, attaching to any PastureError the current command's flag for its ``param``."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PastureError as exc:
            if exc.param is not None and exc.flag is None:
                ctx = click.get_current_context(silent=True)
                exc.flag = flag_of(ctx.command if ctx else None, exc.param)
            raise

    return run


def _collapse(fn: Callable[..., Any], names: tuple[str, ...], into: str, build: Callable[..., Any]) -> Any:
    """Wrap ``fn`` so the options ``names`` arrive as one argument ``into`` = ``build(**those options)``."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        kwargs[into] = build(**{n: kwargs.pop(n) for n in names})
        return fn(*args, **kwargs)

    return tag_errors(run)


def _apply(fn: Callable[..., Any], options: list[Decorator]) -> Any:
    for option in reversed(options):
        fn = option(fn)
    return fn


# -- engine -------------------------------------------------------------------------------------------------


def engine_flag(field: str) -> str:
    """The command-line flag of an :class:`EngineSettings` field."""
    return ENGINE_FLAGS.get(field) or "--" + re.sub(r"_s$", "", field).replace("_", "-")


def field_docs(cls: type) -> dict[str, str]:
    """Attribute descriptions from a numpy-style ``Attributes`` section of ``cls``'s docstring."""
    doc = (cls.__doc__ or "").split("Attributes\n", 1)[-1]
    docs: dict[str, str] = {}
    current: list[str] = []
    for line in doc.splitlines():
        head = re.fullmatch(r"    ([a-z_][a-z0-9_, ]*):", line)
        if head:
            current = [name.strip() for name in head.group(1).split(",")]
            for name in current:
                docs[name] = ""
        elif line.startswith("        ") and current:
            for name in current:
                docs[name] = (docs[name] + " " + line.strip()).strip()
    return docs


def _plain_type(annotation: Any) -> type:
    """``int`` / ``float`` / ``str`` out of ``X`` or ``X | None``."""
    if isinstance(annotation, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return inner  # type: ignore[no-any-return]
    return annotation  # type: ignore[no-any-return]


def engine_options(defaults: EngineSettings | None = None) -> Decorator:
    """One option per :class:`EngineSettings` field; the command gets ``engine: EngineSettings``.

    ``defaults`` are the command's defaults (e.g. ``EngineSettings(concurrency=1)`` where the judge is a
    local model). Values are checked by :meth:`EngineSettings.validate`, whose errors name the flag.
    """
    base = defaults if defaults is not None else EngineSettings()
    hints = typing.get_type_hints(EngineSettings)
    docs = field_docs(EngineSettings)
    fields = dataclasses.fields(EngineSettings)
    options: list[Decorator] = []
    for f in fields:
        if not docs.get(f.name):
            raise TypeError(f"EngineSettings.{f.name} has no description in the class docstring's Attributes")
        default = getattr(base, f.name)
        options.append(
            click.option(
                engine_flag(f.name),
                f.name,
                type=_plain_type(hints[f.name]),
                default=default,
                show_default=default is not None,
                help=docs[f.name],
            )
        )

    def build(**values: Any) -> EngineSettings:
        settings = EngineSettings(**values)
        settings.validate()
        return settings

    def decorate(fn: Callable[..., Any]) -> Any:
        return _apply(_collapse(fn, tuple(f.name for f in fields), "engine", build), options)

    return decorate


# -- judge --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeOptions:
    """The judge as given on the command line: a name or TOML file and provider overrides."""

    name: str
    template: Path | None = None
    model: str | None = None
    base_url: str | None = None
    args: tuple[str, ...] = ()

    def overrides(self) -> dict[str, Any]:
        """Keyword overrides for :func:`pasture.judges.get_judge` (and pool members)."""
        out: dict[str, Any] = parse_kv(self.args, "--judge-arg")
        if self.template is not None:
            if not self.template.is_file():
                raise InputError("judge template not found", path=self.template, param="judge_template")
            out["template"] = str(self.template)
        if self.base_url is not None:
            out["base_url"] = self.base_url
        if self.model is not None:
            out["model"] = self.model
        return out

    def build(self) -> Judge:
        """The judge; an error about one of its parameters is re-labelled as the matching judge option."""
        from pasture.judges import get_judge

        try:
            return get_judge(self.name, **self.overrides())
        except PastureError as exc:
            if exc.param is not None and exc.param != "judge" and not exc.param.startswith("judge_"):
                exc.param = f"judge_{exc.param}"
            raise


def judge_options(*, default: str | None = DEFAULT_JUDGE, help: str | None = None) -> Decorator:
    """``--judge`` and its overrides; the command gets ``judge: JudgeOptions``."""
    options: list[Decorator] = [
        click.option(
            "--judge",
            "judge",
            default=default,
            required=default is None,
            show_default=default is not None,
            help=help or "A built-in judge (`pasture judges` lists them) or a judge TOML file.",
        ),
        click.option(
            "--judge-template",
            "judge_template",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Prompt template file for the judge (e.g. AlpacaEval's alpaca_eval_clf.txt).",
        ),
        click.option("--judge-model", "judge_model", default=None, help="Model id of the judge's provider."),
        click.option(
            "--judge-base-url", "judge_base_url", default=None, help="Server URL of the judge's provider (ends in /v1)."
        ),
        click.option(
            "--judge-arg",
            "judge_args",
            multiple=True,
            metavar="KEY=VALUE",
            help="Other judge provider argument (repeatable).",
        ),
    ]

    def build(
        judge: str, judge_template: Path | None, judge_model: str | None, judge_base_url: str | None, judge_args: Any
    ) -> JudgeOptions:
        return JudgeOptions(judge, judge_template, judge_model, judge_base_url, tuple(judge_args))

    names = ("judge", "judge_template", "judge_model", "judge_base_url", "judge_args")

    def decorate(fn: Callable[..., Any]) -> Any:
        return _apply(_collapse(fn, names, "judge", build), options)

    return decorate


# -- model --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelOptions:
    """The model being generated, evaluated or trained: a spec (see MODEL_SPEC_HELP) and provider options."""

    spec: str | None
    base_url: str | None = None
    provider_args: tuple[str, ...] = ()

    def provider(self) -> Provider:
        from pasture.generate import provider_from_spec

        if self.spec is None:
            raise InputError("no model given", param="model")
        return provider_from_spec(self.spec, base_url=self.base_url, **parse_kv(self.provider_args, "--provider-arg"))


def model_options(*, required: bool = False, help: str) -> Decorator:
    """``--model``, ``--base-url``, ``--provider-arg``; the command gets ``model: ModelOptions``."""
    options: list[Decorator] = [
        click.option("--model", "model", required=required, default=None, help=help),
        click.option("--base-url", "base_url", default=None, help="Server URL of --model's provider (ends in /v1)."),
        click.option(
            "--provider-arg",
            "provider_args",
            multiple=True,
            metavar="KEY=VALUE",
            help="Other argument of --model's provider (repeatable).",
        ),
    ]

    def build(model: str | None, base_url: str | None, provider_args: Any) -> ModelOptions:
        return ModelOptions(model, base_url, tuple(provider_args))

    def decorate(fn: Callable[..., Any]) -> Any:
        return _apply(_collapse(fn, ("model", "base_url", "provider_args"), "model", build), options)

    return decorate


def generator_option(*, required: bool = False, help: str) -> Decorator:
    """``--generator`` (``--name`` is the same option): one flag for a model's name in every command that takes one
    (annotate, evaluate, generate, import), where commands had grown one spelling each."""
    return click.option("--generator", "--name", "generator", required=required, default=None, help=help)


# -- reference ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceOptions:
    """Where a board's reference outputs come from: a file (``--reference``) or a generator already in the store
    (``--reference-generator``); neither means the official reference, which only ``alpaca_eval`` has."""

    path: Path | None
    generator: str | None

    def outputs(
        self,
        store: Store,
        eval_set: EvalSet,
        *,
        official: bool,
        alpaca_eval_file: Path | None,
        file_eval_set: EvalSet | None = None,
    ) -> list[ModelOutput]:
        """:func:`pasture.evaluate.load_reference_outputs` from these options (``official``: the set is alpaca_eval)."""
        from pasture.evaluate import load_reference_outputs

        if self.path is None and self.generator is None and not official:
            raise click.UsageError("give the reference outputs: --reference FILE or --reference-generator NAME")
        return load_reference_outputs(
            store, eval_set, reference_generator=self.generator, reference_path=self.path, official=official,
            alpaca_eval_file=alpaca_eval_file, file_eval_set=file_eval_set,
        )  # fmt: skip


def reference_options(fn: Callable[..., Any]) -> Any:
    """``--reference``, ``--reference-generator`` (not both); the command gets ``reference: ReferenceOptions``."""
    options: list[Decorator] = [
        click.option(
            "--reference",
            "reference_path",
            type=click.Path(path_type=Path),
            default=None,
            help="Reference outputs file (model_outputs.json shape). Default for alpaca_eval: the official GPT-4 "
            "Turbo outputs.",
        ),
        click.option(
            "--reference-generator",
            default=None,
            help="Use the reference outputs already in the store under this name.",
        ),
    ]

    def build(reference_path: Path | None, reference_generator: str | None) -> ReferenceOptions:
        if reference_path is not None and reference_generator is not None:
            raise click.UsageError("give --reference or --reference-generator, not both")
        return ReferenceOptions(reference_path, reference_generator)

    return _apply(_collapse(fn, ("reference_path", "reference_generator"), "reference", build), options)
