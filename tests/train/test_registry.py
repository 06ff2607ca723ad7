"""The method registry: settings classes, identities, and the CLI built from them (no torch for --help)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

from pasture.errors import InputError
from pasture.train.registry import (
    METHODS,
    DPOSettings,
    MethodSettings,
    SimPOSettings,
    TrainSettings,
    parse_setting,
    run_identity,
    setting_fields,
)


def _perturbed(value: object) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if value is None:
        return 3
    raise AssertionError(f"no perturbation for {value!r}")


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_registers_a_complete_settings_class(name: str) -> None:
    method = METHODS[name]
    assert issubclass(method.settings, MethodSettings) and method.settings.__dataclass_params__.frozen  # type: ignore[attr-defined]
    shared = {f.name for f in setting_fields(TrainSettings)}
    for f in setting_fields(method.settings):
        assert f.help, f"{name}.{f.name} has no help text"
        assert f.name not in shared, f"{name}.{f.name} shadows a shared training setting"
    if method.trainer is not None:
        import importlib.util

        module = method.trainer.partition(":")[0]
        assert importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("name", list(METHODS))
def test_identity_changes_with_every_setting(name: str) -> None:
    method = METHODS[name]
    base_settings, base_train = method.settings(), TrainSettings()
    inputs = {"model": "m" * 64, "pairs": "p" * 64}
    base = run_identity(name, base_settings, base_train, inputs).digest
    assert run_identity(name, base_settings, base_train, dict(inputs)).digest == base  # a rebuilt key is equal
    for f in setting_fields(method.settings):
        other = next((c for c in f.choices if c != f.default), None) if f.choices else _perturbed(f.default)
        changed = dataclasses.replace(base_settings, **{f.name: other})  # type: ignore[type-var]
        assert run_identity(name, changed, base_train, inputs).digest != base, f.name
    for f in setting_fields(TrainSettings):
        changed_train = dataclasses.replace(base_train, **{f.name: _perturbed(f.default)})
        assert run_identity(name, base_settings, changed_train, inputs).digest != base, f.name
    assert run_identity(name, base_settings, base_train, {**inputs, "pairs": "q" * 64}).digest != base


def test_the_same_settings_under_another_method_is_another_identity() -> None:
    # cdpo and robust_dpo share beta/epsilon but not the loss: the method name is part of the key
    cdpo = run_identity("cdpo", METHODS["cdpo"].settings(), TrainSettings(), {}).describe()
    robust = run_identity("robust_dpo", METHODS["robust_dpo"].settings(), TrainSettings(), {}).describe()
    assert cdpo["settings"] == robust["settings"] and cdpo != robust
    with pytest.raises(InputError, match="takes DPOSettings"):
        run_identity("dpo", SimPOSettings(), TrainSettings(), {})


def test_differences_name_what_changed() -> None:
    old = run_identity("dpo", DPOSettings(beta=0.1), TrainSettings(), {"model": "a"})
    new = run_identity("dpo", DPOSettings(beta=0.3), TrainSettings(seed=2), {"model": "a"})
    assert new.differences(old.describe()) == ["settings.beta: 0.1 → 0.3", "train.seed: 0 → 2"]


def test_parse_setting_is_typed_by_the_settings_class() -> None:
    from pasture.train.registry import PPOSettings

    assert parse_setting(SimPOSettings, "gamma", "1.5") == 1.5
    assert parse_setting(PPOSettings, "epochs", "3") == 3
    assert parse_setting(PPOSettings, "whiten_scores", "true") is True
    assert parse_setting(PPOSettings, "value_lr", "none") is None
    with pytest.raises(InputError, match="not a valid float"):
        parse_setting(SimPOSettings, "beta", "high")
    with pytest.raises(InputError, match=r"no setting 'epsilon'.*beta \(default 2.0\)"):
        parse_setting(SimPOSettings, "epsilon", "0.1")


_HELP_SCRIPT = """
import sys
from typing import Any
from click.testing import CliRunner
from pasture.cli import main
for m in sys.argv[1:]:
    r = CliRunner().invoke(main, ['train', m, '--help'], terminal_width=200)
    assert r.exit_code == 0, r.output
    print('=== ' + m)
    print(r.output)
print('torch imported:', 'torch' in sys.modules)
"""


def test_each_method_help_shows_its_own_defaults_without_torch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _HELP_SCRIPT, "simpo", "dpo", "rloo"], capture_output=True, text=True, check=True
    ).stdout
    simpo, dpo, rloo = (part.split("=== ")[0] for part in out.split("=== ")[1:])
    assert "torch imported: False" in out

    def line(text: str, option: str) -> str:
        return next(x for x in text.splitlines() if x.strip().startswith(option))

    assert "[default: 2.0]" in line(simpo, "--beta") and "[default: 1.0]" in line(simpo, "--gamma")
    assert "[default: 0.1]" in line(dpo, "--beta") and "--gamma" not in dpo and "--pairs" in dpo
    assert "--temperature" in rloo and "--reward-model" in rloo and "--pairs" not in rloo
