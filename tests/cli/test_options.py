"""The shared option groups: every engine setting reachable from every judging command, one name per judge
option, errors naming the running command's own flag, and the flags acting on a real server."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pasture.annotate.engine import EngineSettings
from pasture.cli import main
from pasture.io import write_model_outputs
from pasture.local_models import free_port
from pasture.records import ModelOutput
from test_resources import load_module

REPO = Path(__file__).resolve().parents[2]
JUDGING_COMMANDS = [["annotate"], ["evaluate"], ["simulate"], ["methods", "farm"]]
ENGINE_COMMANDS = [["annotate"], ["evaluate"], ["simulate"]]


def _command(path: list[str]) -> click.Command:
    command: click.Command | None = main
    ctx = click.Context(main)
    for name in path:
        assert isinstance(command, click.Group)
        command = command.get_command(ctx, name)
    assert command is not None
    return command


def _options(command: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name}


@pytest.mark.parametrize("path", ENGINE_COMMANDS, ids=" ".join)
def test_every_engine_setting_has_a_flag(path: list[str]) -> None:
    """Derived from the dataclass: a field added to EngineSettings without a flag fails here."""
    command = _command(path)
    options = _options(command)
    help_text = CliRunner().invoke(main, [*path, "--help"], terminal_width=200).output
    for field in dataclasses.fields(EngineSettings):
        assert field.name in options, f"`pasture {' '.join(path)}` has no flag for EngineSettings.{field.name}"
        option = options[field.name]
        assert option.opts[0] in help_text
        assert option.help, field.name


def test_engine_flags_build_the_settings_the_engine_gets() -> None:
    """Each flag sets its own field (not a neighbour's), and the command's defaults are the dataclass's."""
    options = _options(_command(["evaluate"]))
    for field in dataclasses.fields(EngineSettings):
        assert options[field.name].default == getattr(EngineSettings(), field.name)
    # the simulator keeps its one-call-at-a-time default
    assert _options(_command(["simulate"]))["concurrency"].default == 1


def test_judge_options_have_one_name_everywhere() -> None:
    expected = {"--judge", "--judge-template", "--judge-model", "--judge-base-url", "--judge-arg"}
    for path in JUDGING_COMMANDS:
        flags = {opt for p in _command(path).params for opt in p.opts if opt.startswith("--judge")}
        assert flags == expected, path


def test_model_means_the_model_not_the_judge() -> None:
    """--model is the model generated, evaluated or trained; the judge's model is --judge-model."""
    assert "model" not in _options(_command(["annotate"]))  # annotate generates nothing
    for path in (["generate"], ["evaluate"], ["simulate"]):
        options = _options(_command(path))
        assert {"model", "base_url", "provider_args"} <= set(options), path
        assert "judge" not in (options["model"].help or "").lower(), path


# -- errors name the running command's flag ------------------------------------------------------------------


def _tiny(tmp_path: Path) -> list[str]:
    instructions = ["Name a fruit.", "Say hello.", "What is 2+2?"]
    (tmp_path / "tiny.jsonl").write_text("".join(json.dumps({"instruction": t}) + "\n" for t in instructions))
    ref = [ModelOutput(instruction=t, output="ok", generator="ref") for t in instructions]
    mine = [ModelOutput(instruction=t, output=f"answer {i}", generator="mine") for i, t in enumerate(instructions)]
    write_model_outputs(ref, tmp_path / "ref.json")
    write_model_outputs(mine, tmp_path / "mine.json")
    return [str(tmp_path / "mine.json"), "--eval-set", str(tmp_path / "tiny.jsonl"),
            "--reference", str(tmp_path / "ref.json"), "--store", str(tmp_path / "s.db"), "--no-progress"]  # fmt: skip


def _error_line(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    return lines[-1]


def test_a_models_name_is_one_option_in_every_command() -> None:
    """annotate and import said --generator, evaluate and generate --name: now each takes both for one parameter, and
    no other option of these commands sets ``generator``."""
    for path in (["annotate"], ["evaluate"], ["generate"], ["import"]):
        options = [p for p in _command(path).params if isinstance(p, click.Option) and p.name == "generator"]
        assert len(options) == 1, path
        assert options[0].opts == ["--generator", "--name"], path


def test_both_spellings_of_the_generator_name_import_the_same_rows(tmp_path: Path) -> None:
    from pasture.store import Store

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps([{"instruction": "Say hi.", "output": "hi"}]))
    eval_set = tmp_path / "set.json"
    eval_set.write_text(json.dumps([{"instruction": "Say hi."}]))
    for flag, name in (("--generator", "a"), ("--name", "b")):
        db = tmp_path / f"{name}.db"
        args = [
            "import",
            str(outputs),
            "--kind",
            "outputs",
            "--eval-set",
            str(eval_set),
            flag,
            name,
            "--store",
            str(db),
        ]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        with Store(db) as store:
            ((digest, _, _),) = store.eval_sets()
            assert store.generators(digest) == [name]


def test_missing_template_names_the_commands_own_flag(tmp_path: Path) -> None:
    line = _error_line(["evaluate", *_tiny(tmp_path), "--judge", "weighted_alpaca_eval_gpt4_turbo"])
    assert "needs a template file" in line and "--judge-template PATH" in line
    assert "--template" not in line.replace("--judge-template", "")


def test_out_of_range_setting_names_its_flag(tmp_path: Path) -> None:
    line = _error_line(["evaluate", *_tiny(tmp_path), "--judge", "longer-wins", "--timeout", "0"])
    assert "timeout_s must be positive" in line and "--timeout" in line
    line = _error_line(["annotate", *_tiny(tmp_path)[:1], "--reference", str(tmp_path / "ref.json"),
                        "--judge", "longer-wins", "--concurrency", "0", "--store", str(tmp_path / "s.db")])  # fmt: skip
    assert "concurrency must be at least 1" in line and "--concurrency" in line


def test_did_you_mean(tmp_path: Path) -> None:
    line = _error_line(["evaluate", *_tiny(tmp_path), "--judge", "smollm2-logprb"])
    assert "unknown judge 'smollm2-logprb'" in line and "did you mean 'smollm2-logprob'" in line
    result = CliRunner().invoke(main, ["annotate", "x.json", "--reference", "r.json", "--template", "t.txt"])
    assert result.exit_code == 2 and "did you mean --judge-template" in result.output
    result = CliRunner().invoke(main, ["simulate", "--instructions", "demo", "--policy", "smollm2", "--out", "o"])
    assert result.exit_code == 2 and "did you mean --model" in result.output


# -- the flags act on a real server ---------------------------------------------------------------------------


@pytest.fixture
def unparsable_server():  # type: ignore[no-untyped-def]
    """The benchmarks' stub OpenAI server behind the fault proxy, which makes every answer unparsable."""
    stub = load_module(REPO / "benchmarks" / "stub_openai_server.py")
    proxy_mod = load_module(REPO / "tests" / "annotate" / "faultproxy.py")
    with stub.StubProcess(free_port()) as server, proxy_mod.FaultProxy(f"http://127.0.0.1:{server.port}") as proxy:
        proxy.set_schedule(lambda i: "unparsable")
        yield server, proxy


def test_parse_and_transient_retries_reach_the_engine(unparsable_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`pasture evaluate --parse-retries N --max-retries M`: exactly 3 x (1 + N) calls for 3 unparsable replies."""
    server, proxy = unparsable_server
    args = ["evaluate", *_tiny(tmp_path), "--judge", "smollm2-logprob-server", "--judge-base-url", proxy.base_url,
            "--parse-retries", "0", "--max-retries", "0", "--backoff-base", "0.01"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert proxy.requests == 3 == server.requests()  # one call per judgment, no retry
    assert "3 unparsable" in result.output
    # the failed judgments are retried by a rerun, now with two parse retries each
    proxy.set_schedule(lambda i: "unparsable")
    result = CliRunner().invoke(main, [*args[:-6], "--parse-retries", "2", "--max-retries", "0"])
    assert result.exit_code == 0, result.output
    assert proxy.requests == 9 and "(0 transient retries, 6 parse retries)" in result.output
    # transient failures: --max-retries 1 makes one retry per judgment, then stores the error
    proxy.set_schedule(lambda i: "500")
    result = CliRunner().invoke(main, [*args[:-6], "--max-retries", "1", "--backoff-base", "0.01"])
    assert result.exit_code == 0, result.output
    assert proxy.requests == 6 and proxy.forwarded == 0 and "(3 transient retries, 0 parse retries)" in result.output
