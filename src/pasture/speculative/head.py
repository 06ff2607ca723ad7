"""SpecDec++'s acceptance head: residual blocks and a 2-way linear layer on the frozen draft's last hidden state.

Each residual block is ``x + SiLU(W x + b)``. The blocks have **their own weights**: the official code builds
``[ResBlock(h)] * n``, a list holding one block ``n`` times, so its blocks share one weight matrix; here
``n`` distinct blocks are built (the paper's text describes a stack of blocks, and sharing was most likely not
intended). Output: logits over (rejected, accepted); :meth:`AcceptanceHead.accept_probability` is p̂.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pasture.errors import InputError

HEAD_WEIGHTS = "acceptance_head.pt"
HEAD_CONFIG = "acceptance_head.json"


class ResBlock(nn.Module):
    """``x + SiLU(Linear(x))``, the linear layer initialised to zero so a fresh block is the identity."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.act = nn.SiLU()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.act(self.linear(x))


class AcceptanceHead(nn.Module):
    """Predicts whether a draft token will be accepted from the draft's last hidden state at that token.

    Parameters
    ----------
    width:
        The draft's hidden size.
    n_blocks:
        Residual blocks (paper: 3), each with its own weights.
    """

    def __init__(self, width: int, n_blocks: int = 3) -> None:
        super().__init__()
        if width < 1 or n_blocks < 0:
            raise InputError(f"acceptance head needs width ≥ 1 and blocks ≥ 0, got {width} and {n_blocks}")
        self.width = width
        self.n_blocks = n_blocks
        self.blocks = nn.Sequential(*[ResBlock(width) for _ in range(n_blocks)])
        self.out = nn.Linear(width, 2)

    def forward(self, hidden: Tensor) -> Tensor:
        """Logits ``(..., 2)``: index 1 = accepted. ``hidden`` is moved to the head's device and dtype (the head
        may stay on the CPU while the draft runs on an accelerator)."""
        return self.out(self.blocks(hidden.to(self.out.weight)))

    @torch.no_grad()
    def accept_probability(self, hidden: Tensor) -> float:
        """p̂: the predicted probability that the draft token whose hidden state this is will be accepted."""
        return float(torch.softmax(self.forward(hidden), dim=-1)[..., 1])

    def save_checkpoint_files(self, path: str | Path) -> None:
        """Weights and shape into ``path`` (what :func:`pasture.train.core.save_checkpoint` calls)."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), folder / HEAD_WEIGHTS)
        config = {"width": self.width, "n_blocks": self.n_blocks, "draft_layers": getattr(self, "draft_layers", None)}
        (folder / HEAD_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> AcceptanceHead:
        """A head saved by :meth:`save_checkpoint_files` (``pasture train acceptance_head``)."""
        folder = Path(path)
        if not (folder / HEAD_CONFIG).is_file():
            raise InputError(
                f"not an acceptance head (no {HEAD_CONFIG}); train one with `pasture train acceptance_head`",
                path=folder,
            )
        config = json.loads((folder / HEAD_CONFIG).read_text(encoding="utf-8"))
        head = cls(int(config["width"]), int(config["n_blocks"]))
        head.load_state_dict(torch.load(folder / HEAD_WEIGHTS, map_location="cpu", weights_only=True))
        head.draft_layers = config.get("draft_layers")
        head.eval()
        return head


def layer_draft(target: nn.Module, n_layers: int) -> nn.Module:
    """A self-speculative draft: the target's embeddings, its first ``n_layers`` decoder layers, final norm and
    output head (weights copied; no training). Cheap to build, but its distribution is an early exit of the
    target, so acceptance is modest."""
    import copy

    config: Any = copy.deepcopy(target.config)
    total = int(config.num_hidden_layers)
    if not 1 <= n_layers < total:
        raise InputError(f"a layer draft needs 1 ≤ layers < {total} (the target's layer count), got {n_layers}")
    config.num_hidden_layers = n_layers
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = list(config.layer_types)[:n_layers]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    from transformers import AutoModelForCausalLM

    dtype = next(target.parameters()).dtype
    draft = AutoModelForCausalLM.from_config(config, dtype=dtype)
    state = {
        k: v
        for k, v in target.state_dict().items()
        if not k.startswith("model.layers.") or int(k.split(".")[2]) < n_layers
    }
    draft.load_state_dict(state)
    draft.eval()
    return draft
