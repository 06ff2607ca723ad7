"""The ``pasture`` command line: each command is a thin layer over a documented Python function.

Commands live one per module in this package and are imported only when used, so ``pasture --help``
stays fast and a broken optional dependency cannot break unrelated commands.
"""

from __future__ import annotations

import importlib
import sys

import click

from pasture.errors import PastureError

COMMANDS: dict[str, str] = {
    # command name -> module in pasture.cli (each module defines a click command named `command`)
    "analyze-judge": "analyze_judge",
    "analyze-pool": "analyze_pool",
    "audit": "audit",
    "bradley-terry": "bradley_terry",
    "style-control": "style_control",
    "demo": "demo",
    "distill-judge": "distill_judge",
    "evaluate": "evaluate",
    "gamed-baselines": "gamed_baselines",
    "generate": "generate",
    "annotate": "annotate",
    "import": "import_",
    "judges": "judges",
    "leaderboard": "leaderboard",
    "report": "report",
    "score": "score",
    "simulate": "simulate",
    "train": "train",
    "methods": "methods",
    "synthesize": "synthesize",
    "translate": "translate",
    "rules": "rules",
    "pugc": "pugc",
    "loop": "loop",
}
"""Registry of commands; adding one touches this dict and one new module."""


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command: click.Command = importlib.import_module(f"pasture.cli.{module}").command
        _map_errors(command)
        return command

    def invoke(self, ctx: click.Context) -> object:
        from pasture.cli.options import RENAMED_FLAGS, describe_error

        try:
            return super().invoke(ctx)
        except PastureError as exc:
            click.echo(f"pasture: error: {describe_error(exc)}", err=True)
            sys.exit(2)
        except OSError as exc:  # a file the user named cannot be read or written: their input, not a bug
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"pasture: error: {exc.strerror or exc}{where}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("pasture: interrupted; what completed is in the store and a rerun resumes", err=True)
            sys.exit(130)
        except click.NoSuchOption as exc:
            if exc.option_name in RENAMED_FLAGS:
                raise click.NoSuchOption(
                    exc.option_name,
                    f"No such option {exc.option_name!r}: did you mean {RENAMED_FLAGS[exc.option_name]}?",
                    ctx=exc.ctx,
                ) from None
            raise


def _map_errors(command: click.Command) -> None:
    """Make every callback of ``command`` (and its subcommands) name its own flag for an error's ``param``."""
    from pasture.cli.options import tag_errors

    if getattr(command, "_pasture_maps_errors", False):
        return
    if command.callback is not None:
        command.callback = tag_errors(command.callback)
    for sub in getattr(command, "commands", {}).values():
        _map_errors(sub)
    command._pasture_maps_errors = True  # type: ignore[attr-defined]


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pasture")
def main() -> None:
    """pasture: evaluate and improve instruction-following models from pairwise feedback."""
