"""``pasture pugc``: bad documents are refused with a one-line error before any model is loaded."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pasture.cli import main


def test_pugc_refuses_a_table_without_the_column(tmp_path):
    docs = tmp_path / "posts.jsonl"
    docs.write_text(json.dumps({"body": "A post."}) + "\n", encoding="utf-8")
    args = ["pugc", "--documents", str(docs), "--judge", "smollm2-graded-server", "--pairs-out", str(tmp_path / "p")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "no text in column 'text'" in result.output and "--column" in result.output
    assert not (tmp_path / "p").exists()


def test_pugc_help_names_every_step():
    result = CliRunner().invoke(main, ["pugc", "--help"])
    assert result.exit_code == 0
    for word in ("questions", "filtered", "samples", "document", "DPO", "--train-out"):
        assert word in result.output


def test_pugc_takes_the_option_groups_of_its_settings_and_of_pasture_train_dpo():
    """One flag per PUGCSettings field, DPO's and the shared training settings' flags as `pasture train dpo` has
    them, the policy as --model (the project's name for the model being sampled), one --seed for both."""
    import click

    from pasture.train.registry import DPOSettings, PUGCSettings, TrainSettings, setting_fields

    command = main.get_command(click.Context(main), "pugc")
    assert command is not None
    names = [p.name for p in command.params]
    for cls in (PUGCSettings, DPOSettings, TrainSettings):
        assert {f.name for f in setting_fields(cls)} <= set(names), cls.__name__
    assert names.count("seed") == 1 and "model" in names and "policy" not in names
    assert "judge_base_url" in names and "base_url" not in names  # --base-url is --model's server elsewhere
