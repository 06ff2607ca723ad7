"""Reference methods that learn from pairwise feedback (pasture[train]): SFT, reward models, best-of-n, expert
iteration, DPO and variants, SimPO, PPO and RLOO over shared plumbing, the synthetic keyword-inclusion task with
an exact oracle, the farm loop, and the methods comparison table. See docs/train.md.

Import the submodules directly (``pasture.train.dpo``, ``pasture.train.ppo``, ...); this package imports
nothing heavy by itself so that ``import pasture`` never needs torch. The methods, their settings classes and
trainers are listed once, in the torch-free :mod:`pasture.train.registry`.
"""

from __future__ import annotations

import importlib.util

from pasture.errors import PastureError

TRAIN_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "tokenizers")


def require_train_extra() -> None:
    """Raise a one-line :class:`PastureError` naming the missing packages when pasture[train] is not installed."""
    missing = [name for name in TRAIN_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise PastureError(
            f"training needs pasture[train] (missing: {', '.join(missing)}): pip install 'pasture[train]'"
        )
