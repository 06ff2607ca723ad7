"""Dry check of the shipped accelerate configs: parsed as `accelerate launch` parses them, plugins built, no GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from pasture.errors import InputError
from pasture.train.distributed import CONFIGS, config_path, dry_check


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_config_builds_its_plugin(name: str) -> None:
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    dry = dry_check(config_path(name))
    assert dry.num_processes >= 2 and dry.mixed_precision == "bf16"
    if name.startswith("deepspeed"):
        assert isinstance(dry.plugin, DeepSpeedPlugin)
        stage = 3 if "zero3" in name else 2
        assert dry.plugin.deepspeed_config["zero_optimization"]["stage"] == stage
        assert dry.plugin.deepspeed_config["gradient_clipping"] == 1.0
    elif name == "fsdp.yaml":
        assert isinstance(dry.plugin, FullyShardedDataParallelPlugin)
        assert dry.plugin.fsdp_version == 2 and dry.plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
    else:
        assert dry.distributed_type == "MULTI_GPU" and dry.plugin is None


def test_misspelt_fsdp_key_is_an_error(tmp_path: Path) -> None:
    text = config_path("fsdp").read_text().replace("fsdp_reshard_after_forward", "fsdp_reshard_after_forwrd")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="fsdp_reshard_after_forwrd"):
        dry_check(path)
    with pytest.raises(InputError):
        config_path("nope")
