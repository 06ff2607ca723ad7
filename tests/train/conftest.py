"""The synthetic experiment's shared setup (SFT policy, p = 0.25 noisy pairs, reward model), built once.

Torch runs on one thread: the CI machine has 2 cores shared with other test processes, and OpenMP threads
that spin-wait under contention make tiny-model steps an order of magnitude slower.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synthetic_setup():  # type: ignore[no-untyped-def]
    from pasture.train.recipes import SyntheticConfig, build_setup

    torch.set_num_threads(1)
    return build_setup(SyntheticConfig(seed=0))
