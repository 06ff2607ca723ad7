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


@pytest.fixture(scope="session")
def writer_start():  # type: ignore[no-untyped-def]
    """A tiny policy of the extended task that has learned the instruction-writing mode ``#=`` and (poorly) the task,
    for loops whose builders need the policy to write instructions (i_sheep); built once, in about a second."""
    from pasture.train.core import OptimSettings
    from pasture.train.sft import train_sft
    from pasture.train.synthetic import (
        INSTRUCTION_PROMPT,
        demonstrations,
        extended_tokenizer,
        instruction_demonstrations,
        make_prompts,
    )
    from pasture.train.tiny import tiny_llama

    torch.set_num_threads(1)
    tok = extended_tokenizer()
    prompts = make_prompts(150, seed=71)
    answers = demonstrations(prompts, seed=72)
    prompts += [INSTRUCTION_PROMPT] * 100
    answers += instruction_demonstrations(100, seed=73)
    model, _ = train_sft(
        tiny_llama(tok, hidden_size=32, intermediate_size=64, seed=0),
        tok,
        prompts,
        answers,
        optim=OptimSettings(lr=1e-2, batch_size=32, steps=40),
    )
    return model.eval(), tok


@pytest.fixture(scope="session")
def smollm2_policy_dir(smollm2_gguf, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """SmolLM2-135M-Instruct de-quantised once per session into a plain float checkpoint (``load_policy``'s cache),
    so the SmolLM2 training tests share the ~20 s conversion and their subprocesses load it in about a second."""
    from pasture.train.models import load_policy

    folder = tmp_path_factory.mktemp("smollm2-float")
    load_policy("smollm2", cache_dir=folder)
    return folder
