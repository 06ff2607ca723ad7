"""Recipes: every method run end to end on the synthetic keyword-inclusion task with fixed seeds.

This is the reference experiment (AlpacaFarm's footing, shrunk to a CPU): a tiny Llama is SFT-trained on
mediocre demonstrations; its samples are paired and labelled by the exact oracle with flip noise p = 0.25
(the simulator); a reward model is trained on those labels; every method starts from the SFT policy; the
oracle (as pasture's programmatic judge) evaluates each against the SFT policy. The defaults below are the
settings the tests pin (docs/train.md lists the figures they reach).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import torch
from torch import nn
from transformers import PreTrainedTokenizerFast

from pasture.errors import InputError
from pasture.judges.judge import ProgrammaticJudge
from pasture.train.best_of_n import BestOfN, best_of_n
from pasture.train.compare import MethodRow, evaluate_method
from pasture.train.core import OptimSettings, PreferencePair, TrainingData, TrainStats, set_seed
from pasture.train.registry import (
    BestOfNSettings,
    CDPOSettings,
    CUTSettings,
    DPOSettings,
    ExpertIterationSettings,
    GRPOSettings,
    IPOSettings,
    MethodSettings,
    PPOSettings,
    RLOOSettings,
    RobustDPOSettings,
    SimPOSettings,
    TrainSettings,
    get_method,
)
from pasture.train.reward import RewardModel, train_reward_model
from pasture.train.sft import train_sft
from pasture.train.synthetic import (
    MAX_RESPONSE_TOKENS,
    demonstrations,
    make_prompts,
    oracle_preference,
    oracle_scores,
    sample_pairs,
    task_tokenizer,
)
from pasture.train.tiny import tiny_llama

if TYPE_CHECKING:
    from pasture.train.cut import JudgedResponse


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes, seeds and step counts of the synthetic experiment (defaults: about a minute per method on 1 core)."""

    seed: int = 0
    flip_p: float = 0.25
    n_sft_prompts: int = 2000
    sft_steps: int = 300
    n_pair_prompts: int = 12000
    rm_steps: int = 180
    n_rl_prompts: int = 2000
    n_eval_prompts: int = 400
    n_heldout_pair_prompts: int = 1000


@dataclass
class SyntheticSetup:
    """Everything the methods share: tokenizer, SFT policy, noisy pairs, reward model, evaluation prompts."""

    config: SyntheticConfig
    tokenizer: PreTrainedTokenizerFast
    sft: nn.Module
    sft_stats: TrainStats
    pairs: tuple[PreferencePair, ...]
    label_agreement: float
    reward_model: RewardModel
    rm_stats: TrainStats
    rl_prompts: list[str]
    eval_prompts: list[str]
    demonstrations_eval: list[str] = field(default_factory=list)

    @property
    def judge(self) -> ProgrammaticJudge:
        """The oracle as pasture's programmatic judge (preference by slot from the exact scores)."""
        return ProgrammaticJudge(oracle_preference, name="keyword_inclusion_oracle")

    def reward(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        return self.reward_model.score(self.tokenizer, prompts, responses)


def build_setup(config: SyntheticConfig | None = None) -> SyntheticSetup:
    """SFT policy, p-noisy preference pairs from its samples, and a reward model trained on them."""
    cfg = config or SyntheticConfig()
    set_seed(cfg.seed)
    tok = task_tokenizer()
    sft_prompts = make_prompts(cfg.n_sft_prompts, seed=cfg.seed + 1)
    model = tiny_llama(tok, seed=cfg.seed)
    sft, sft_stats = train_sft(
        model,
        tok,
        sft_prompts,
        demonstrations(sft_prompts, seed=cfg.seed + 2),
        optim=OptimSettings(lr=3e-3, batch_size=64, steps=cfg.sft_steps),
        seed=cfg.seed,
    )
    sft.eval()
    labelled = sample_pairs(
        sft, tok, make_prompts(cfg.n_pair_prompts, seed=cfg.seed + 11), p=cfg.flip_p, seed=cfg.seed + 7
    )
    rm, rm_stats = train_reward_model(
        sft, tok, labelled.pairs, optim=OptimSettings(lr=1e-3, batch_size=64, steps=cfg.rm_steps), seed=cfg.seed
    )
    rm.eval()
    eval_prompts = make_prompts(cfg.n_eval_prompts, seed=cfg.seed + 99)
    return SyntheticSetup(
        config=cfg,
        tokenizer=tok,
        sft=sft,
        sft_stats=sft_stats,
        pairs=labelled.pairs,
        label_agreement=labelled.clean_agreement,
        reward_model=rm,
        rm_stats=rm_stats,
        rl_prompts=make_prompts(cfg.n_rl_prompts, seed=cfg.seed + 21),
        eval_prompts=eval_prompts,
        demonstrations_eval=demonstrations(eval_prompts, seed=cfg.seed + 5),
    )


def heldout_pairs(setup: SyntheticSetup) -> tuple[PreferencePair, ...]:
    """Fresh pairs of SFT samples on unseen prompts, labelled by the oracle with no noise (ties dropped)."""
    cfg = setup.config
    return sample_pairs(
        setup.sft,
        setup.tokenizer,
        make_prompts(cfg.n_heldout_pair_prompts, seed=cfg.seed + 12),
        p=0.0,
        seed=cfg.seed + 8,
    ).pairs


def best_of_n_curve(setup: SyntheticSetup, ns: Sequence[int] = (1, 4, 16), *, seed: int = 3) -> dict[int, float]:
    """Mean oracle score of best-of-n (reranked by the reward model) over the evaluation prompts, per n
    (nested: best of the first n of the same max(ns) samples)."""
    bon = best_of_n_outputs(setup, seed, n=max(ns))
    return {n: sum(oracle_scores(setup.eval_prompts, bon.select(n))) / len(setup.eval_prompts) for n in ns}


def best_of_n_outputs(setup: SyntheticSetup, seed: int, *, n: int | None = None) -> BestOfN:
    """Best-of-n candidates of the SFT policy on the evaluation prompts, ranked by the reward model, with the
    recipe's settings (``n`` overrides its number of candidates)."""
    settings = cast(BestOfNSettings, recipe("best_of_n").settings)
    return best_of_n(
        setup.sft,
        setup.tokenizer,
        setup.eval_prompts,
        setup.reward,
        n=n if n is not None else settings.n,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        seed=seed,
    )


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).train()


@dataclass(frozen=True)
class Recipe:
    """A method's settings on the synthetic task: its settings object, the shared training settings (seed: the
    config's) and, for prompt-based methods, how many of the RL prompts it trains on (None: all)."""

    settings: MethodSettings
    train: TrainSettings
    n_prompts: int | None = None


def recipe(method: str, seed: int = 0) -> Recipe:
    """The recipe's settings for ``method`` (the values the tests pin; docs/train.md lists them)."""
    pairwise = TrainSettings(lr=1e-3, batch_size=64, steps=40, seed=seed)
    recipes: dict[str, Recipe] = {
        "dpo": Recipe(DPOSettings(beta=0.1), pairwise),
        "ipo": Recipe(IPOSettings(beta=0.5), pairwise),
        "cdpo": Recipe(CDPOSettings(beta=0.1, epsilon=0.1), pairwise),
        "robust_dpo": Recipe(RobustDPOSettings(beta=0.1, epsilon=0.25), pairwise),
        "simpo": Recipe(SimPOSettings(beta=2.0, gamma=0.5), TrainSettings(lr=3e-4, batch_size=64, steps=60, seed=seed)),
        "ppo": Recipe(
            PPOSettings(kl_coef=0.02, max_new_tokens=MAX_RESPONSE_TOKENS, epochs=2, minibatch_size=64),
            TrainSettings(lr=1e-3, batch_size=128, steps=12, seed=seed),
        ),
        "rloo": Recipe(
            RLOOSettings(k=4, kl_coef=0.02, max_new_tokens=MAX_RESPONSE_TOKENS),
            TrainSettings(lr=1e-3, batch_size=32, steps=25, seed=seed),
        ),
        "grpo": Recipe(
            GRPOSettings(k=4, kl_coef=0.04, max_new_tokens=MAX_RESPONSE_TOKENS, minibatch_size=128),
            TrainSettings(lr=1e-3, batch_size=32, steps=25, seed=seed),
        ),
        "expert_iteration": Recipe(
            ExpertIterationSettings(n=8, max_new_tokens=MAX_RESPONSE_TOKENS),
            TrainSettings(lr=1e-3, batch_size=64, steps=60, seed=seed),
            n_prompts=500,
        ),
        "best_of_n": Recipe(BestOfNSettings(n=16, max_new_tokens=MAX_RESPONSE_TOKENS), TrainSettings(seed=seed)),
        # CUT learns from the critic's judgments of two SFT samples per RL prompt (_recipe_judgments below)
        "cut": Recipe(CUTSettings.offline(), pairwise),
    }
    if method not in recipes:
        raise InputError(f"no synthetic recipe trains {method!r}; it has {', '.join(recipes)}")
    return recipes[method]


def train_synthetic_method(setup: SyntheticSetup, method: str) -> tuple[nn.Module, TrainStats]:
    """Train ``method`` from the SFT policy with the recipe's settings through the method's registered trainer."""
    r = recipe(method, setup.config.seed)
    spec = get_method(method)
    prompts = setup.rl_prompts[: r.n_prompts] if r.n_prompts is not None else setup.rl_prompts
    data = TrainingData(
        prompts=prompts if "prompts" in spec.inputs else (),
        pairs=setup.pairs if "pairs" in spec.inputs else (),
        reward_model=setup.reward_model if "reward_model" in spec.inputs else None,
        judged=_recipe_judgments(setup, prompts) if "judgments" in spec.inputs else (),
    )
    return spec.trainer_function()(_copy(setup.sft), setup.tokenizer, data, r.settings, r.train)  # type: ignore[no-any-return]


def _recipe_judgments(setup: SyntheticSetup, prompts: Sequence[str]) -> list[JudgedResponse]:
    """CUT's data on this task: two SFT samples per prompt judged by the exact critic (critique in context)."""
    from pasture.train.cut_synthetic import sample_judgments

    return sample_judgments(setup.sft, setup.tokenizer, prompts, samples_per_prompt=2, seed=setup.config.seed + 41)


def evaluate_synthetic(
    setup: SyntheticSetup,
    method: str,
    policy: nn.Module,
    stats: TrainStats,
    *,
    lc: bool = True,
    outputs: Sequence[str] | None = None,
) -> MethodRow:
    """The method's row of the comparison table on the evaluation prompts (oracle judge, fixed seeds)."""
    torch.manual_seed(setup.config.seed)
    return evaluate_method(
        method,
        policy,
        setup.sft,
        setup.tokenizer,
        setup.eval_prompts,
        setup.judge,
        stats=stats,
        reference_outputs=setup.demonstrations_eval,
        reward_fn=setup.reward,
        outputs=outputs,
        max_new_tokens=MAX_RESPONSE_TOKENS,
        seed=setup.config.seed + 1000,
        lc=lc,
    )
