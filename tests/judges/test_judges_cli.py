from __future__ import annotations

from click.testing import CliRunner

from pasture.cli import main
from pasture.judges import BUILTIN_JUDGES, get_judge
from pasture.judges.definitions import list_judges
from pasture.records import OFFICIAL_JUDGE_ALIASES


def test_list_judges_table_has_every_builtin_with_its_digest(alpacaeval):
    table = list_judges(alpacaeval / "judge_config" / "alpaca_eval_clf.txt")
    assert list(table.index) == list(BUILTIN_JUDGES)
    official = OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"].digest[:12]
    assert table.loc["weighted_alpaca_eval_gpt4_turbo", "fingerprint"] == official
    assert table.loc["gpt-4o-mini-logprob", "fingerprint"] == get_judge("gpt-4o-mini-logprob").fingerprint.digest[:12]
    assert set(table["protocol"]) >= {"pairwise_logprob", "pairwise_graded", "single_score", "programmatic"}


def test_cli_lists_and_shows(alpacaeval):
    runner = CliRunner()
    out = runner.invoke(main, ["judges"])
    assert out.exit_code == 0, out.output
    assert "claude-graded" in out.output and "pairwise_logprob" in out.output
    tpl = str(alpacaeval / "judge_config" / "alpaca_eval_clf.txt")
    out = runner.invoke(main, ["judges", "weighted_alpaca_eval_gpt4_turbo", "--template", tpl])
    assert out.exit_code == 0, out.output
    assert OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"].digest in out.output
    assert '"parser": "logprob_mM"' in out.output


def test_cli_errors_are_one_line():
    out = CliRunner().invoke(main, ["judges", "weighted_alpaca_eval_gpt4_turbo"])
    assert out.exit_code == 2
    assert out.output.strip().startswith("pasture: error:") and "needs a template file" in out.output
    out = CliRunner().invoke(main, ["judges", "no-such-judge"])
    assert out.exit_code == 2 and "unknown judge" in out.output
