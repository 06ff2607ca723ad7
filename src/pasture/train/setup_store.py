"""Storing the synthetic experiment's shared setup so every method run (and every rerun) reuses it.

Layout of ``<dir>``: ``config.json`` (the :class:`SyntheticConfig`), ``sft/`` (policy checkpoint),
``reward_model/`` (reward-model checkpoint), ``pairs.jsonl`` (the noisy training pairs), ``setup.json``
(label agreement and stats; written last, it marks the setup complete). A directory whose config differs
from the requested one is an error rather than silently reused.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from transformers import AutoModelForCausalLM

from pasture.errors import InputError
from pasture.train.core import PreferencePair, TrainStats, save_checkpoint
from pasture.train.recipes import SyntheticConfig, SyntheticSetup, build_setup
from pasture.train.reward import RewardModel
from pasture.train.synthetic import demonstrations, make_prompts, task_tokenizer


def save_setup(path: str | Path, setup: SyntheticSetup) -> None:
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    (p / "config.json").write_text(json.dumps(asdict(setup.config), sort_keys=True), encoding="utf-8")
    save_checkpoint(p / "sft", setup.sft, setup.tokenizer, setup.sft_stats)
    save_checkpoint(p / "reward_model", setup.reward_model, None, setup.rm_stats)
    with open(p / "pairs.jsonl", "w", encoding="utf-8") as f:
        for pair in setup.pairs:
            f.write(json.dumps(asdict(pair)) + "\n")
    (p / "setup.json").write_text(
        json.dumps(
            {
                "label_agreement": setup.label_agreement,
                "sft_stats": asdict(setup.sft_stats),
                "rm_stats": asdict(setup.rm_stats),
            },
            sort_keys=True,
        ),
        encoding="utf-8",
    )


def load_or_build_setup(path: str | Path, config: SyntheticConfig) -> SyntheticSetup:
    """The stored setup at ``path`` when complete and built with ``config``; otherwise build and store it."""
    p = Path(path)
    if (p / "setup.json").is_file():
        stored = json.loads((p / "config.json").read_text(encoding="utf-8"))
        if stored != asdict(config):
            raise InputError("holds a synthetic setup built with other settings; use another --output", path=p)
        meta = json.loads((p / "setup.json").read_text(encoding="utf-8"))
        tok = task_tokenizer()
        sft = AutoModelForCausalLM.from_pretrained(p / "sft").eval()
        rm = RewardModel.load(p / "reward_model").eval()
        pairs = tuple(
            PreferencePair(**json.loads(line))
            for line in (p / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
            if line
        )
        eval_prompts = make_prompts(config.n_eval_prompts, seed=config.seed + 99)
        return SyntheticSetup(
            config=config,
            tokenizer=tok,
            sft=sft,
            sft_stats=TrainStats(**meta["sft_stats"]),
            pairs=pairs,
            label_agreement=meta["label_agreement"],
            reward_model=rm,
            rm_stats=TrainStats(**meta["rm_stats"]),
            rl_prompts=make_prompts(config.n_rl_prompts, seed=config.seed + 21),
            eval_prompts=eval_prompts,
            demonstrations_eval=demonstrations(eval_prompts, seed=config.seed + 5),
        )
    setup = build_setup(config)
    save_setup(p, setup)
    return setup
