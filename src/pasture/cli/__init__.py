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
}
"""Registry of commands; adding one touches this dict and one new module."""


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(f"pasture.cli.{module}").command  # type: ignore[no-any-return]

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PastureError as exc:
            click.echo(f"pasture: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pasture")
def main() -> None:
    """pasture: evaluate and improve instruction-following models from pairwise feedback."""
