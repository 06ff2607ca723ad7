"""``pasture judges``: list the built-in judges, or show one judge's full fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pasture.cli.common import print_frame, wide_option
from pasture.judges.definitions import get_judge, list_judges


@click.command("judges")
@wide_option
@click.argument("judge", required=False)
@click.option(
    "--template",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Template file for judges that need one (the official AlpacaEval judge: alpaca_eval_clf.txt).",
)
def command(judge: str | None, template: Path | None, wide: bool) -> None:
    """List built-in judges (provider, model, protocol, fingerprint digest), or show JUDGE's fingerprint.

    JUDGE is a built-in name or a TOML judge file. Building a judge makes no call and needs no key.
    """
    if judge is None:
        print_frame(list_judges(template), title="pasture judges", wide=wide)
        return
    overrides = {"template": str(template)} if template is not None else {}
    built = get_judge(judge, **overrides)
    fp = built.fingerprint
    click.echo(f"judge: {built.name}")
    click.echo(f"digest: {fp.digest}")
    click.echo(json.dumps(fp.model_dump(mode="json"), indent=2, sort_keys=True))
