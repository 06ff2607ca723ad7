"""Control LLM (Wei et al. 2025, "Control LLM: Controlled Evolution for Intelligence Retention in LLM").

Why: fine-tuning all weights on a new task overwrites what the model knew (catastrophic forgetting). Control LLM
keeps every original weight frozen and learns the new task in trainable *twins* of a few transformer blocks that
run beside their originals:

* selected blocks ``l`` get a copy ``B'_l`` initialised to the original ``B_l`` (so training starts exactly at the
  original model); everything else (embeddings, other blocks, norms, LM head, and ``B_l`` itself) is frozen;
* both see the same input ``x`` and their outputs are interpolated (lerp):
  ``h = h_pre + w · (h_exp − h_pre)`` with ``h_pre = B_l(x)``, ``h_exp = B'_l(x)`` and mix ``w`` (fixed, or
  learned as ``w = σ(θ)``); ``w = 0`` is the original model exactly;
* a divergence loss keeps the twin's hidden state near the original's:
  ``L = L_task + α · mean_l mean_{b,t} (1/d) Σ_k (h_exp − h_pre)²_{b,t,k}`` (MSE over the hidden size, then the
  mean over batch and positions, then the mean over expanded blocks, as the official code reduces it).

Defaults are the official code's (``configs/loading_sft.py`` of linkedin/ControlLLM): interpolation factor 0, i.e.
``w = σ(0) = 0.5``, frozen; ``interpolation_loss_alpha = 1``; ``interpolation_loss_type = "mse"``. A count of
expanded blocks picks them evenly spaced, the last block of each group (32 blocks, 8 twins: 3, 7, ..., 31), as the
official ``concat`` expansion does. Deviations and the official code's options that do nothing: docs/train.md.

The expansion is applied in place to a Hugging Face decoder (Llama family: the tiny test model and SmolLM2): each
selected entry of ``model.model.layers`` becomes a :class:`ControlledBlock`. Generation works with the KV cache:
the twin keeps its keys and values in a side cache attached to the model's cache. The divergence terms are
collected during training forwards and added to the loss by the shared optimisation loop
(:class:`pasture.train.core.Loop`), so every trainer (SFT, DPO, ...) gets Control LLM from one option.
A checkpoint is the expanded model with ``control_llm`` in its config; :func:`load_expanded` (and
:func:`pasture.train.models.load_policy`) rebuild it.
"""

from __future__ import annotations

import copy
import json
import math
import weakref
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from pasture.errors import InputError
from pasture.train.registry import ControlLLMSettings

CONFIG_KEY = "control_llm"
"""The key of the expansion settings in an expanded model's config (and its ``config.json``)."""

_CACHE_KEYS = ("cache", "past_key_values", "past_key_value")
"""Keyword names decoder layers take the KV cache under (transformers 5 and 4)."""

_PENDING: weakref.WeakKeyDictionary[nn.Module, list[Tensor]] = weakref.WeakKeyDictionary()
"""Divergence terms per block since the last optimiser step. Kept outside the modules' state so that copying a
model (a reference policy, a checkpoint) never copies autograd graphs."""

_SIDE_CACHES: weakref.WeakKeyDictionary[nn.Module, weakref.WeakKeyDictionary[Any, Any]] = weakref.WeakKeyDictionary()
"""Per block: the twin's KV cache beside each model cache in use (freed with the model cache)."""


def parse_expand_layers(spec: str | int, n_layers: int) -> tuple[int, ...]:
    """The block indices ``spec`` names in a model with ``n_layers`` blocks, sorted.

    A bare integer ``N`` is a count: ``N`` blocks evenly spaced, the last of each of ``N`` equal groups
    (``(k + 1)·n_layers // N − 1``), the official code's choice when ``n_layers`` divides by ``N``. A comma-separated
    list (``"0,3"``, or ``"3,"`` for block 3 alone) names the blocks. Anything else is a one-line error.
    """
    text = str(spec).strip()
    if "," not in text:
        try:
            count = int(text)
        except ValueError:
            raise InputError(
                f"--expand-layers {text!r}: give a count N or block indices 'i,j' (e.g. 2 or '0,3')"
            ) from None
        if not 1 <= count <= n_layers:
            raise InputError(f"--expand-layers {count}: the model has {n_layers} blocks; give a count 1-{n_layers}")
        return tuple((k + 1) * n_layers // count - 1 for k in range(count))
    try:
        indices = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--expand-layers {text!r}: block indices must be integers, e.g. '0,3'") from None
    if not indices:
        raise InputError(f"--expand-layers {text!r}: name at least one block")
    bad = [i for i in indices if not 0 <= i < n_layers]
    if bad:
        raise InputError(f"--expand-layers {text!r}: blocks {bad} do not exist (the model has 0-{n_layers - 1})")
    if len(set(indices)) != len(indices):
        raise InputError(f"--expand-layers {text!r}: a block is named twice")
    return tuple(sorted(indices))


def divergence_loss(h_pre: Tensor, h_exp: Tensor) -> Tensor:
    """MSE divergence between the original's and the twin's hidden states ``[B, T, d]``: the squared difference
    averaged over the hidden size, then over batch and positions (padding included, as the official code does)."""
    return (h_exp.float() - h_pre.float()).pow(2).mean(dim=-1).mean()


class ControlledBlock(nn.Module):
    """A frozen block and its trainable twin, their outputs interpolated; collects divergence terms in training."""

    def __init__(self, original: nn.Module, index: int, settings: ControlLLMSettings) -> None:
        super().__init__()
        self.index = index
        self.original = original
        self.twin = copy.deepcopy(original)
        for p in self.original.parameters():
            p.requires_grad_(False)
        for p in self.twin.parameters():
            p.requires_grad_(True)
        self.alpha = float(settings.alpha)
        self.learn_mix = bool(settings.learn_mix)
        dtype = next(original.parameters()).dtype
        if self.learn_mix:
            logit = math.log(settings.mix / (1.0 - settings.mix))
            self.mix_logit = nn.Parameter(torch.tensor(logit, dtype=dtype))
        else:
            self.register_buffer("fixed_mix", torch.tensor(float(settings.mix), dtype=dtype))

    @property
    def mix(self) -> Tensor:
        """The lerp weight ``w`` of the twin (σ(θ) when learned)."""
        return torch.sigmoid(self.mix_logit) if self.learn_mix else cast(Tensor, self.fixed_mix)

    def _side_cache(self, cache: Any) -> Any:
        """The twin's own KV cache beside the model's ``cache`` (the twin's attention has the original's layer
        index, so sharing one cache would mix their keys)."""
        from transformers import DynamicCache

        caches = _SIDE_CACHES.setdefault(self, weakref.WeakKeyDictionary())
        side = caches.get(cache)
        if side is None:
            side = DynamicCache()
            caches[cache] = side
        return side

    def forward(self, hidden_states: Tensor, *args: Any, **kwargs: Any) -> Any:
        out_pre = self.original(hidden_states, *args, **kwargs)
        twin_kwargs = dict(kwargs)
        for key in _CACHE_KEYS:
            if twin_kwargs.get(key) is not None:
                twin_kwargs[key] = self._side_cache(twin_kwargs[key])
        out_exp = self.twin(hidden_states, *args, **twin_kwargs)
        h_pre = out_pre[0] if isinstance(out_pre, tuple) else out_pre
        h_exp = out_exp[0] if isinstance(out_exp, tuple) else out_exp
        if self.training and torch.is_grad_enabled() and self.alpha != 0:
            _PENDING.setdefault(self, []).append(divergence_loss(h_pre, h_exp))
        mixed = torch.lerp(h_pre, h_exp, self.mix.to(h_pre.dtype))
        return (mixed, *out_pre[1:]) if isinstance(out_pre, tuple) else mixed

    def pop_auxiliary_loss(self) -> Tensor | None:
        """α × the mean divergence of the training forwards since the last call (None when there were none);
        :class:`pasture.train.core.Loop` averages these over blocks and adds them to the loss."""
        terms = _PENDING.pop(self, [])
        if not terms:
            return None
        return self.alpha * torch.stack(terms).mean()


def _layers(model: nn.Module) -> nn.ModuleList:
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise InputError(
            f"Control LLM expands decoder blocks at model.model.layers (Llama-style models); "
            f"{type(model).__name__} has none"
        )
    return layers


def is_expanded(model: nn.Module) -> bool:
    """Whether ``model`` carries Control LLM twins."""
    return any(isinstance(m, ControlledBlock) for m in model.modules())


def expand(model: nn.Module, settings: ControlLLMSettings) -> nn.Module:
    """Expand ``model`` in place (and return it): twins beside the selected blocks, everything else frozen.

    The settings are recorded in ``model.config.control_llm`` so a saved checkpoint can be rebuilt. Bad settings
    (no such block, a mix outside [0, 1], a learned mix at 0 or 1 where σ has no finite logit, negative α) are
    one-line errors; expanding an expanded model is an error too.
    """
    if is_expanded(model):
        raise InputError("the model is already expanded by Control LLM; expand the original model once")
    if not 0.0 <= settings.mix <= 1.0 or math.isnan(settings.mix):
        raise InputError(f"--control-mix {settings.mix}: the lerp weight lies in [0, 1]")
    if settings.learn_mix and not 0.0 < settings.mix < 1.0:
        raise InputError(f"--control-mix {settings.mix}: a learned mix starts strictly between 0 and 1 (σ's range)")
    if not settings.alpha >= 0:
        raise InputError(f"--control-alpha {settings.alpha}: the divergence weight is ≥ 0")
    layers = _layers(model)
    indices = parse_expand_layers(settings.expand_layers, len(layers))
    for p in model.parameters():
        p.requires_grad_(False)
    for i in indices:
        layers[i] = ControlledBlock(layers[i], i, settings)
    config = getattr(model, "config", None)
    if config is not None:
        setattr(config, CONFIG_KEY, {**asdict(settings), "layers": list(indices)})
    return model


def ensure_expanded(model: nn.Module, settings: ControlLLMSettings) -> nn.Module:
    """``model`` expanded with ``settings``: expanded now if plain; unchanged if already expanded with the same
    blocks and settings (a later round of a loop continues training the same twins); an error if expanded
    otherwise."""
    if not is_expanded(model):
        return expand(model, settings)
    recorded = settings_of(getattr(model, "config", None))
    wanted = parse_expand_layers(settings.expand_layers, len(_layers(model)))
    have = tuple(b.index for b in controlled_blocks(model))
    if (
        recorded is None
        or have != wanted
        or (recorded.mix, recorded.learn_mix, recorded.alpha)
        != (
            settings.mix,
            settings.learn_mix,
            settings.alpha,
        )
    ):
        raise InputError(
            f"the model is already expanded by Control LLM with other settings (blocks {list(have)}); "
            "start from the original model or give the same --expand-layers and --control-* settings"
        )
    return model


def controlled_blocks(model: nn.Module) -> list[ControlledBlock]:
    """The model's expanded blocks, in order."""
    return [m for m in model.modules() if isinstance(m, ControlledBlock)]


def mixes(model: nn.Module) -> dict[int, float]:
    """The current lerp weight of each expanded block, by block index (for logs and learned-mix runs)."""
    return {b.index: float(b.mix.detach()) for b in controlled_blocks(model)}


def settings_of(config: Any) -> ControlLLMSettings | None:
    """The Control LLM settings recorded in a model config (None for a plain model)."""
    raw = getattr(config, CONFIG_KEY, None)
    if raw is None:
        return None
    if not isinstance(raw, dict) or "expand_layers" not in raw:
        raise InputError(f"the model config's {CONFIG_KEY!r} entry is not a Control LLM record: {str(raw)[:80]}")
    return ControlLLMSettings(
        expand_layers=",".join(str(i) for i in raw.get("layers", [])) + ","
        if raw.get("layers")
        else raw["expand_layers"],
        mix=float(raw.get("mix", 0.5)),
        learn_mix=bool(raw.get("learn_mix", False)),
        alpha=float(raw.get("alpha", 1.0)),
    )


def is_expanded_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` holds a checkpoint of an expanded model (its config.json has ``control_llm``)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return CONFIG_KEY in json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", path=config) from None


def load_expanded(path: str | Path) -> nn.Module:
    """Rebuild an expanded model saved by ``save_pretrained``/``pasture train``: the base architecture from its
    config, expanded with the recorded settings, then every saved tensor loaded (a missing or unexpected tensor,
    other than a tied LM head, is an error)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    p = Path(path)
    config = AutoConfig.from_pretrained(p)
    settings = settings_of(config)
    if settings is None:
        raise InputError("not a Control LLM checkpoint (no control_llm in config.json)", path=p)
    delattr(config, CONFIG_KEY)
    model = AutoModelForCausalLM.from_config(config)
    expand(model, settings)
    files = sorted(p.glob("*.safetensors"))
    if not files:
        raise InputError("no *.safetensors weights in the checkpoint", path=p)
    state: dict[str, Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    result = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    missing = [k for k in result.missing_keys if k not in tied]
    if missing or result.unexpected_keys:
        raise InputError(
            f"checkpoint does not match its Control LLM config: missing {missing[:3]}, "
            f"unexpected {list(result.unexpected_keys)[:3]}",
            path=p,
        )
    if tied:
        model.tie_weights()
    model.eval()
    return model
