"""The accelerate configurations pasture ships for several GPUs, and a dry check of them.

``pasture train`` builds an :class:`accelerate.Accelerator` from the environment, so the same command scales by
launching it with ``accelerate launch --config_file <one of CONFIGS> -m pasture train ...``. The dry check
parses a config file exactly as ``accelerate launch`` does and builds the DeepSpeed/FSDP plugin objects from
it, which catches misspelt keys and bad values on a machine without GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pasture.errors import InputError

CONFIG_DIR = Path(__file__).parent / "configs"
CONFIGS = ("ddp.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml", "fsdp.yaml")


def config_path(name: str) -> Path:
    """Path of a shipped config (``ddp``, ``deepspeed_zero2``, ``deepspeed_zero3``, ``fsdp``, with or without .yaml)."""
    file = name if name.endswith(".yaml") else f"{name}.yaml"
    path = CONFIG_DIR / file
    if not path.is_file():
        raise InputError(f"no accelerate config {name!r}; shipped: {', '.join(CONFIGS)}")
    return path


@dataclass(frozen=True)
class DryConfig:
    """What a config file asks for: the distributed type, process count, precision and the plugin it builds."""

    distributed_type: str
    num_processes: int
    mixed_precision: str
    plugin: Any


def dry_check(path: str | Path) -> DryConfig:
    """Parse an accelerate config file and build its plugin (DeepSpeedPlugin / FullyShardedDataParallelPlugin)
    without starting processes or touching a GPU."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DeepSpeedPlugin, FullyShardedDataParallelPlugin

    p = Path(path)
    if not p.is_file():
        raise InputError("accelerate config not found", path=p)
    cfg = load_config_from_file(str(p))
    kind = str(getattr(cfg.distributed_type, "value", cfg.distributed_type))
    plugin: Any = None
    if kind == "DEEPSPEED":
        ds = dict(cfg.deepspeed_config or {})
        plugin = DeepSpeedPlugin(
            zero_stage=int(ds["zero_stage"]),
            gradient_accumulation_steps=int(ds.get("gradient_accumulation_steps", 1)),
            gradient_clipping=float(ds["gradient_clipping"]) if "gradient_clipping" in ds else None,
            offload_optimizer_device=ds.get("offload_optimizer_device", "none"),
            offload_param_device=ds.get("offload_param_device", "none"),
            zero3_init_flag=bool(ds.get("zero3_init_flag", False)),
            zero3_save_16bit_model=bool(ds.get("zero3_save_16bit_model", False)),
        )
    elif kind == "FSDP":
        fs = dict(cfg.fsdp_config or {})
        known = {
            "fsdp_version": "fsdp_version",
            "fsdp_reshard_after_forward": "reshard_after_forward",
            "fsdp_state_dict_type": "state_dict_type",
            "fsdp_cpu_ram_efficient_loading": "cpu_ram_efficient_loading",
            "fsdp_activation_checkpointing": "activation_checkpointing",
            "fsdp_transformer_layer_cls_to_wrap": "transformer_cls_names_to_wrap",
        }
        unknown = set(fs) - set(known) - {"fsdp_auto_wrap_policy", "fsdp_offload_params"}
        if unknown:
            raise InputError(f"unknown fsdp_config keys: {', '.join(sorted(unknown))}", path=p)
        kwargs = {known[k]: v for k, v in fs.items() if k in known}
        if "transformer_cls_names_to_wrap" in kwargs:
            kwargs["transformer_cls_names_to_wrap"] = [str(kwargs["transformer_cls_names_to_wrap"])]
        policy = str(fs.get("fsdp_auto_wrap_policy", "")).lower()
        plugin = FullyShardedDataParallelPlugin(
            auto_wrap_policy=policy or None,
            cpu_offload=bool(fs.get("fsdp_offload_params", False)),
            **kwargs,
        )
    elif kind not in ("MULTI_GPU", "NO"):
        raise InputError(f"unsupported distributed_type {kind}", path=p)
    return DryConfig(
        kind, int(cfg.num_processes), str(getattr(cfg.mixed_precision, "value", cfg.mixed_precision)), plugin
    )
