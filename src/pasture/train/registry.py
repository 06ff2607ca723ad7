"""The training-method registry: each method's own settings class, the shared training settings, the trainer.

Why one registry: ``pasture train METHOD``, the synthetic recipe and the farm loop all look a method up here, so
the method → loss/trainer map is written once, and each method's defaults live with the method (SimPO's β is
not DPO's β). This module imports no torch: ``pasture train METHOD --help`` is built from it alone.

**Settings classes.** One frozen dataclass per method, subclassing :class:`MethodSettings`; every field is
declared with :func:`setting` (default + one-line help, shown by ``--help``). Defaults are the method's paper or
reference-implementation defaults, named in the class docstring. A value that is fixed by the method (the
DPO-family loss) is a ``ClassVar``, not a field, so no command line can change it.

**Adding a method** (e.g. CUT): write its settings class here, write ``pasture/train/cut.py`` with a trainer
``fit(model, tokenizer, data, settings, train) -> (policy, TrainStats)`` (see :data:`TRAINER_SIGNATURE`), and add
one :class:`Method` entry to :data:`METHODS`. The CLI, the identity and the docs table follow.

**Identity.** A run's identity is the SHA-256 of the canonical JSON of ``{method, settings, train, inputs}``:
the method name, every field of its settings, every shared training setting, and the content digests of its
inputs (model weights, data files). Every stored training result carries it and is reused only when it matches
(:func:`run_identity`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pasture.errors import InputError
from pasture.records import canonical_json


def setting(default: Any, help: str, *, keyed_when_set: bool = False) -> Any:
    """A settings field: its default and the help line ``--help`` shows (one declaration, no re-listing).

    ``keyed_when_set``: the field enters a run's identity only when it differs from its default, so adding an
    option later leaves the identities of runs stored before it (which all used the default) unchanged."""
    return field(default=default, metadata={"help": help, "keyed_when_set": keyed_when_set})


@dataclass(frozen=True)
class MethodSettings:
    """Base of every method's settings class (frozen; fields declared with :func:`setting`)."""


@dataclass(frozen=True)
class LoraSettings:
    """Low-rank adapters (PEFT) instead of full fine-tuning; ``target_modules`` None lets PEFT pick by model type."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OptimSettings:
    """AdamW settings every trainer's loop takes."""

    lr: float = 1e-4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    batch_size: int = 32
    steps: int = 100


@dataclass(frozen=True)
class ControlLLMSettings:
    """Control LLM (Wei et al. 2025): which transformer blocks get a trainable copy beside the frozen original, the
    lerp weight of the copy, whether that weight is learned, and the weight α of the divergence loss
    (:mod:`pasture.train.control_llm`; defaults are the official code's: mix σ(0) = 0.5 frozen, α = 1, MSE)."""

    expand_layers: str
    mix: float = 0.5
    learn_mix: bool = False
    alpha: float = 1.0


@dataclass(frozen=True)
class TrainSettings:
    """Settings every method shares: optimisation budget, seed and LoRA."""

    steps: int = setting(10, "Optimiser updates (PPO, RLOO: rollouts).")
    lr: float = setting(1e-5, "AdamW learning rate.")
    batch_size: int = setting(4, "Pairs, demonstrations or prompts per update.")
    seed: int = setting(0, "Seed of data order, sampling and initialisation.")
    lora_r: int | None = setting(None, "Train LoRA adapters of this rank (alpha = 2r) instead of all weights.")
    max_grad_norm: float = setting(1.0, "Gradient clipping norm (0: none).")
    expand_layers: str | None = setting(
        None,
        "Control LLM: copy these transformer blocks into trainable twins beside the frozen originals and train only "
        "the twins: a count N (evenly spaced, as the official code picks them) or indices 'i,j,...' ('3,' is block 3).",
        keyed_when_set=True,
    )
    control_mix: float = setting(
        0.5, "Control LLM: lerp weight of the trainable twin (0 = the original model exactly).", keyed_when_set=True
    )
    control_learn_mix: bool = setting(
        False, "Control LLM: learn the lerp weight (a sigmoid-squashed parameter per block).", keyed_when_set=True
    )
    control_alpha: float = setting(
        1.0, "Control LLM: weight α of the MSE divergence between twin and original hidden states.", keyed_when_set=True
    )

    def optim(self) -> OptimSettings:
        return OptimSettings(lr=self.lr, batch_size=self.batch_size, steps=self.steps, max_grad_norm=self.max_grad_norm)

    def lora(self) -> LoraSettings | None:
        return LoraSettings(r=self.lora_r, alpha=2 * self.lora_r) if self.lora_r else None

    def control_llm(self) -> ControlLLMSettings | None:
        """The Control LLM option, or None when ``expand_layers`` is unset (then the other ``control_*`` settings
        must keep their defaults: a one-line error otherwise, never a silently ignored option)."""
        if self.expand_layers is None:
            changed = [
                "--" + name.replace("_", "-")
                for name, default in (("control_mix", 0.5), ("control_learn_mix", False), ("control_alpha", 1.0))
                if getattr(self, name) != default
            ]
            if changed:
                raise InputError(f"{', '.join(changed)} apply to Control LLM only; add --expand-layers")
            return None
        if self.lora_r:
            raise InputError("--expand-layers (Control LLM) and --lora-r are alternatives; give one of them")
        return ControlLLMSettings(
            str(self.expand_layers), mix=self.control_mix, learn_mix=self.control_learn_mix, alpha=self.control_alpha
        )


# ---------------------------------------------------------------- each method's settings


@dataclass(frozen=True)
class SFTSettings(MethodSettings):
    """Supervised fine-tuning has no settings beyond the shared ones."""


@dataclass(frozen=True)
class RewardModelSettings(MethodSettings):
    """A Bradley–Terry reward model has no settings beyond the shared ones."""


@dataclass(frozen=True)
class BestOfNSettings(MethodSettings):
    """Best-of-n (inference only): candidates per prompt."""

    n: int = setting(16, "Samples per prompt; the scorer keeps the best.")
    max_new_tokens: int = setting(64, "Sampling budget per response in tokens.")
    temperature: float = setting(1.0, "Sampling temperature.")


@dataclass(frozen=True)
class ExpertIterationSettings(MethodSettings):
    """Expert iteration as AlpacaFarm ran it: one round of best-of-n by the reward model, then SFT."""

    n: int = setting(16, "Samples per prompt for best-of-n.")
    rounds: int = setting(1, "Rounds of best-of-n + SFT.")
    max_new_tokens: int = setting(64, "Sampling budget per response in tokens.")
    temperature: float = setting(1.0, "Sampling temperature of the candidates.")


DPOLoss = Literal["sigmoid", "cdpo", "robust", "ipo"]


@dataclass(frozen=True)
class DPOSettings(MethodSettings):
    """DPO (Rafailov et al. 2023): β = 0.1, the paper's value for dialogue (it used 0.5 for summarisation)."""

    LOSS: ClassVar[DPOLoss] = "sigmoid"
    beta: float = setting(0.1, "β: scale of the implicit reward (inverse KL strength).")


@dataclass(frozen=True)
class IPOSettings(DPOSettings):
    """IPO (Azar et al. 2023): loss (h − 1/(2β))²; the paper fixes no default, 0.1 is TRL's."""

    LOSS: ClassVar[DPOLoss] = "ipo"
    beta: float = setting(0.1, "β (the paper's τ): the target margin is 1/(2β).")


@dataclass(frozen=True)
class NoisyLabelDPOSettings(DPOSettings):
    """DPO variants that model label noise with a rate ε."""

    epsilon: float = setting(0.1, "ε: assumed label-flip rate.")


@dataclass(frozen=True)
class CDPOSettings(NoisyLabelDPOSettings):
    """Conservative DPO (label smoothing ε, Mitchell 2023): β = 0.1, ε = 0.1."""

    LOSS: ClassVar[DPOLoss] = "cdpo"
    epsilon: float = setting(0.1, "ε: label-smoothing rate (0 ≤ ε < 0.5).")


@dataclass(frozen=True)
class RobustDPOSettings(NoisyLabelDPOSettings):
    """Robust DPO (Chowdhury et al. 2024), unbiased under flip rate ε: β = 0.1, ε = 0.1 (set it to the known
    flip rate; AlpacaFarm's simulated annotators flip 25 %)."""

    LOSS: ClassVar[DPOLoss] = "robust"
    epsilon: float = setting(0.1, "ε: assumed label-flip rate (0 ≤ ε < 0.5).")


@dataclass(frozen=True)
class SimPOSettings(MethodSettings):
    """SimPO (Meng et al. 2024): β = 2.0 and γ = 0.5·β = 1.0, the reference recipe's ``beta`` and
    ``gamma_beta_ratio``."""

    beta: float = setting(2.0, "β: scale of the length-normalised reward.")
    gamma: float = setting(1.0, "γ: target reward margin.")
    sft_weight: float = setting(0.0, "Weight of the chosen responses' NLL (CPO's regulariser; 0 = plain SimPO).")


@dataclass(frozen=True)
class PPOSettings(MethodSettings):
    """PPO as AlpacaFarm ran it (clip 0.2, value clip 0.2, GAE γ = 1, λ = 0.95, 2 epochs per rollout);
    ``TrainSettings.steps`` is the number of rollouts and ``batch_size`` their size."""

    kl_coef: float = setting(0.05, "β of the per-token KL penalty to the reference.")
    clip_range: float = setting(0.2, "Ratio clipping 1 ± this.")
    value_clip: float = setting(0.2, "Value clipping ± this around the rollout's values.")
    gamma: float = setting(1.0, "Discount of GAE.")
    lam: float = setting(0.95, "λ of GAE.")
    epochs: int = setting(2, "Passes over each rollout.")
    minibatch_size: int = setting(32, "Sequences per PPO minibatch (the whole rollout when it is smaller).")
    value_lr: float | None = setting(None, "Value model learning rate (default: the policy's).")
    temperature: float = setting(1.0, "Sampling temperature; log-probabilities are scored at the same one.")
    max_new_tokens: int = setting(64, "Sampling budget per response in tokens.")
    whiten_scores: bool = setting(False, "Divide reward-model scores by their standard deviation per rollout.")
    missing_eos_penalty: float | None = setting(None, "Subtracted from the score of responses without EOS.")


@dataclass(frozen=True)
class RLOOSettings(MethodSettings):
    """RLOO (Ahmadian et al. 2024): k = 4 samples per prompt, KL coefficient 0.05 (TRL's default)."""

    k: int = setting(4, "Samples per prompt (≥ 2).")
    kl_coef: float = setting(0.05, "β of the sequence-level KL penalty.")
    temperature: float = setting(1.0, "Sampling temperature; log-probabilities are scored at the same one.")
    max_new_tokens: int = setting(64, "Sampling budget per response in tokens.")
    normalize_advantages: bool = setting(True, "Divide advantages by their standard deviation per rollout.")


@dataclass(frozen=True)
class GRPOSettings(MethodSettings):
    """GRPO (Shao et al. 2024, DeepSeekMath): 64 samples per prompt, KL coefficient β = 0.04, one update per
    rollout (μ = 1), learning rate 1e-6 (set it with ``--lr``); ε = 0.2 is PPO's clip, which the paper keeps."""

    k: int = setting(64, "Samples per prompt: the group (>= 2).")
    kl_coef: float = setting(0.04, "β of the k3 KL term to the reference in the loss.")
    clip_range: float = setting(0.2, "ε: ratio clipping 1 ± ε.")
    epochs: int = setting(1, "μ: passes over each rollout.")
    minibatch_size: int = setting(1024, "Sequences per update minibatch (the whole rollout when it is smaller).")
    temperature: float = setting(1.0, "Sampling temperature; log-probabilities are scored at the same one.")
    max_new_tokens: int = setting(64, "Sampling budget per response in tokens.")
    advantage_eps: float = setting(1e-4, "eps in (r - group mean) / (group std + eps).")
    scale_rewards: bool = setting(True, "Divide by the group's std (False: reward - group mean only).")


@dataclass(frozen=True)
class AcceptanceHeadSettings(MethodSettings):
    """SpecDec++'s acceptance head (Huang et al. 2024): 3 residual blocks (each with its own weights; the official
    code's ``[ResBlock(h)] * n`` shares one), rejections weighted 6. The draft is the target's first
    ``draft_layers`` layers (self-speculative). ``draft_share`` is an untuned choice here."""

    draft_layers: int = setting(8, "Self-speculative draft: the target's first this many decoder layers.")
    n_blocks: int = setting(3, "Residual blocks of the head.")
    rejection_weight: float = setting(6.0, "Weight of the rejection term of the weighted cross-entropy.")
    draft_share: float = setting(0.5, "Share of response tokens replaced by draft samples (only they carry loss).")
    temperature: float = setting(1.0, "Sampling temperature of the responses and of both models' distributions.")
    max_new_tokens: int = setting(64, "Target response length sampled per prompt.")


@dataclass(frozen=True)
class CUTSettings(MethodSettings):
    """CUT (Xu et al. 2023, "Reasons to Reject?"): the paper's presets, offline λ = 1.2, α = 0.5 (judgments of a fixed
    set of responses) and online λ = 1.1, α = 1 (judgments of the current policy's samples); good responses
    subsampled to 0.25× the bad ones. ``online_preset`` picks the preset; ``lam``/``alpha`` left None take the preset's
    values (filled in at construction, so a stored identity always shows the values used)."""

    online_preset: bool = setting(
        False, "Unset lam/alpha take the paper's online preset (λ 1.1, α 1) instead of the offline one (λ 1.2, α 0.5)."
    )
    lam: float | None = setting(
        None, "λ: flag a bad response's token when the critique raises its probability by more than λ× (inf: never)."
    )
    alpha: float | None = setting(None, "α: weight of the unlikelihood term.")
    good_ratio: float | None = setting(0.25, "Good responses kept per bad one (seeded draw); none keeps all.")

    PRESETS: ClassVar[dict[bool, tuple[float, float]]] = {False: (1.2, 0.5), True: (1.1, 1.0)}
    """(λ, α) of the paper's offline (False) and online (True) settings."""

    def __post_init__(self) -> None:
        lam, alpha = self.PRESETS[self.online_preset]
        if self.lam is None:
            object.__setattr__(self, "lam", lam)
        if self.alpha is None:
            object.__setattr__(self, "alpha", alpha)
        if not self.resolved_lam > 0 or math.isnan(self.resolved_lam):
            raise InputError(f"CUT's λ must be positive (inf disables unlikelihood), got {self.lam}", param="lam")
        if self.resolved_alpha < 0:
            raise InputError(f"CUT's α must be ≥ 0, got {self.alpha}", param="alpha")
        if self.good_ratio is not None and self.good_ratio < 0:
            raise InputError(f"good_ratio must be ≥ 0 or none, got {self.good_ratio}", param="good_ratio")

    @property
    def resolved_lam(self) -> float:
        """λ as used (the preset's when unset)."""
        return self.lam if self.lam is not None else self.PRESETS[self.online_preset][0]

    @property
    def resolved_alpha(self) -> float:
        """α as used (the preset's when unset)."""
        return self.alpha if self.alpha is not None else self.PRESETS[self.online_preset][1]

    @classmethod
    def offline(cls) -> CUTSettings:
        """The paper's offline setting: λ = 1.2, α = 0.5."""
        return cls(online_preset=False)

    @classmethod
    def online(cls) -> CUTSettings:
        """The paper's online setting: λ = 1.1, α = 1."""
        return cls(online_preset=True)


@dataclass(frozen=True)
class SelfJSettings(MethodSettings):
    """Self-J (Ye & Ng 2024, "Self-Judge: Selective Instruction Following with Alignment Self-Evaluation"): the
    paper's loss weights, student likelihood 0.3 and KL(teacher ‖ student) 2 on the score tokens. The
    recalibration weight, the similarity and the sampling sizes are pasture's untuned choices (docs/judges.md)."""

    student_weight: float = setting(0.3, "Weight of the student's (no reference) likelihood of the label.")
    kl_weight: float = setting(2.0, "Weight of KL(teacher ‖ student) on the score token (0: no distillation).")
    recalibration_weight: float = setting(0.5, "How far the label moves from the own rating to 9 × similarity.")
    similarity: Literal["char_overlap", "word_f1"] = setting("word_f1", "Similarity of a response to its reference.")
    prompt_format: Literal["plain", "synthetic"] = setting("plain", "Self-J prompt format (pasture.judges.self_j).")
    samples_per_prompt: int = setting(2, "Own samples rated per prompt.")
    max_new_tokens: int = setting(64, "Sampling budget per response in tokens.")
    temperature: float = setting(1.0, "Sampling temperature of the rated responses.")

    def __post_init__(self) -> None:
        for name in ("student_weight", "kl_weight"):
            if getattr(self, name) < 0:
                raise InputError(f"Self-J's {name} must be >= 0, got {getattr(self, name)}", param=name)
        if not 0.0 <= self.recalibration_weight <= 1.0:
            raise InputError(
                f"recalibration_weight is in [0, 1], got {self.recalibration_weight}", param="recalibration_weight"
            )
        if self.samples_per_prompt < 1:
            raise InputError(f"samples_per_prompt must be >= 1, got {self.samples_per_prompt}")


# ---------------------------------------------------------------- the registry

Input = Literal["demonstrations", "pairs", "prompts", "reward_model", "judgments"]
"""What a trainer reads: demonstrations (prompt + response), preference pairs, prompts, a reward-model checkpoint,
judged responses (verdict + critique of single responses)."""

TRAINER_SIGNATURE = "fit(model, tokenizer, data: TrainingData, settings: <its settings class>, train: TrainSettings)"
"""How every registered trainer is called; it returns ``(trained module, TrainStats)``."""


@dataclass(frozen=True)
class Method:
    """One registered method.

    ``trainer`` is ``"module:function"`` and imported only when a run starts (so nothing here needs torch);
    None for inference-only methods (best-of-n). ``inputs`` name what the trainer reads, so ``pasture train``
    asks for exactly those files. ``pairwise``: learns from preference pairs alone (the farm loop can run it).
    """

    name: str
    settings: type[MethodSettings]
    inputs: tuple[Input, ...]
    trainer: str | None
    summary: str
    produces: Literal["policy", "reward_model", "outputs", "acceptance_head", "judge"] = "policy"

    @property
    def pairwise(self) -> bool:
        return self.inputs == ("pairs",) and self.produces == "policy"

    def trainer_function(self) -> Any:
        """The trainer callable (imports its module; needs pasture[train])."""
        if self.trainer is None:
            raise InputError(f"{self.name} is inference-time only; it has no trainer (use --task synthetic)")
        import importlib

        module, _, name = self.trainer.partition(":")
        fit = getattr(importlib.import_module(module), name)
        produces = self.produces

        def fit_with_model_options(model: Any, tokenizer: Any, data: Any, settings: Any, train: TrainSettings) -> Any:
            # model options shared by every trainer (Control LLM) are applied here once, not in each trainer
            control = train.control_llm()
            if control is not None:
                if produces != "policy":
                    raise InputError(
                        f"--expand-layers (Control LLM) trains policies; {self.name} produces a {produces}"
                    )
                from pasture.train.control_llm import ensure_expanded

                model = ensure_expanded(model, control)
            return fit(model, tokenizer, data, settings, train)

        return fit_with_model_options


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("sft", SFTSettings, ("demonstrations",), "pasture.train.sft:fit", "mean NLL of demonstrations"),
        Method(
            "reward_model",
            RewardModelSettings,
            ("pairs",),
            "pasture.train.reward:fit",
            "Bradley–Terry reward model",
            produces="reward_model",
        ),
        Method(
            "best_of_n",
            BestOfNSettings,
            ("prompts", "reward_model"),
            None,
            "n samples, keep the best-scored",
            produces="outputs",
        ),
        Method(
            "expert_iteration",
            ExpertIterationSettings,
            ("prompts", "reward_model"),
            "pasture.train.expert_iteration:fit",
            "best-of-n by the reward model, then SFT",
        ),
        Method("dpo", DPOSettings, ("pairs",), "pasture.train.dpo:fit_dpo", "DPO: −log σ(βh)"),
        Method("ipo", IPOSettings, ("pairs",), "pasture.train.dpo:fit_dpo", "IPO: (h − 1/(2β))²"),
        Method("cdpo", CDPOSettings, ("pairs",), "pasture.train.dpo:fit_dpo", "conservative (label-smoothed) DPO"),
        Method("robust_dpo", RobustDPOSettings, ("pairs",), "pasture.train.dpo:fit_dpo", "DPO unbiased under flips"),
        Method("simpo", SimPOSettings, ("pairs",), "pasture.train.dpo:fit_simpo", "SimPO: reference-free, γ margin"),
        Method("ppo", PPOSettings, ("prompts", "reward_model"), "pasture.train.ppo:fit", "PPO with a KL penalty"),
        Method("rloo", RLOOSettings, ("prompts", "reward_model"), "pasture.train.rloo:fit", "REINFORCE, LOO baseline"),
        Method("grpo", GRPOSettings, ("prompts", "reward_model"), "pasture.train.grpo:fit", "group-relative, k3 KL"),
        Method(
            "acceptance_head",
            AcceptanceHeadSettings,
            ("prompts",),
            "pasture.train.acceptance_head:fit",
            "SpecDec++ acceptance head for speculative decoding",
            produces="acceptance_head",
        ),
        Method("cut", CUTSettings, ("judgments",), "pasture.train.cut:fit", "CUT: likelihood + λ-flagged unlikelihood"),
        Method(
            "self_j",
            SelfJSettings,
            ("demonstrations",),
            "pasture.train.self_j:fit",
            "Self-J judge: own ratings vs a gold reference, distilled to a reference-free student",
            produces="judge",
        ),
    )
}
"""Every method ``pasture train`` knows, by name (adding one: a settings class above + one entry here)."""


def get_method(name: str) -> Method:
    """The registered method ``name``; an unknown name is a one-line error listing the known ones."""
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]


def method_for_settings(settings: MethodSettings) -> str:
    """The registered method whose settings class is exactly ``type(settings)``."""
    for m in METHODS.values():
        if type(settings) is m.settings:
            return m.name
    raise InputError(f"no registered method takes {type(settings).__name__}")


def pairwise_methods() -> tuple[str, ...]:
    """Methods that learn from preference pairs alone (what the farm loop trains)."""
    return tuple(m.name for m in METHODS.values() if m.pairwise)


# ---------------------------------------------------------------- settings as data (CLI, identity)


@dataclass(frozen=True)
class SettingField:
    """One field of a settings class as the CLI sees it: name, value type, default, help, choices."""

    name: str
    type: type
    default: Any
    help: str
    optional: bool
    choices: tuple[str, ...] | None = None


def setting_fields(cls: type) -> list[SettingField]:
    """The fields of a settings dataclass with their resolved types (``X | None`` → X, optional)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp: Any = hints[f.name]
        optional = False
        args = typing.get_args(tp)
        if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
            non_none = [a for a in args if a is not type(None)]
            optional, tp = True, non_none[0]
        choices = None
        if typing.get_origin(tp) is Literal:
            choices, tp = tuple(str(a) for a in typing.get_args(tp)), str
        out.append(SettingField(f.name, tp, f.default, str(f.metadata.get("help", "")), optional, choices))
    return out


def parse_setting(cls: type, key: str, text: str) -> Any:
    """``text`` as the value of field ``key`` of settings class ``cls`` (for ``--setting KEY=VALUE``)."""
    by_name = {f.name: f for f in setting_fields(cls)}
    if key not in by_name:
        known = ", ".join(f"{f.name} (default {f.default})" for f in by_name.values()) or "none"
        raise InputError(f"{cls.__name__} has no setting {key!r}; its settings: {known}")
    f = by_name[key]
    if f.optional and text.lower() == "none":
        return None
    try:
        if f.type is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        value = f.type(text)
    except ValueError:
        raise InputError(f"setting {key}={text!r}: not a valid {f.type.__name__}") from None
    if f.choices is not None and value not in f.choices:
        raise InputError(f"setting {key}={text!r}: choose one of {', '.join(f.choices)}")
    return value


def settings_from(cls: type[Any], values: Mapping[str, Any]) -> Any:
    """An instance of ``cls`` from the values given for its fields (others keep their defaults)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def settings_dict(settings: Any) -> dict[str, Any]:
    """A settings object as plain JSON-able data (tuples become lists); fields declared ``keyed_when_set`` are left
    out while they hold their default (see :func:`setting`)."""
    data = dataclasses.asdict(settings)
    for f in dataclasses.fields(settings):
        if f.metadata.get("keyed_when_set") and data.get(f.name) == f.default:
            del data[f.name]
    return dict(canonical_json_ready(data))


def canonical_json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): canonical_json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical_json_ready(v) for v in value]
    return value


@dataclass(frozen=True)
class RunIdentity:
    """What produced a training result: the method, its settings, the shared settings and input digests.

    ``digest`` (SHA-256 of the canonical JSON of :meth:`describe`) is the key every stored result carries;
    ``short`` (its first 12 hex digits) names directories and generators.
    """

    method: str
    settings: dict[str, Any]
    train: dict[str, Any]
    inputs: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "settings": self.settings, "train": self.train, "inputs": self.inputs}

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.describe()).encode("utf-8")).hexdigest()

    @property
    def short(self) -> str:
        return self.digest[:12]

    def differences(self, other: Mapping[str, Any]) -> list[str]:
        """``key: stored → requested`` for every leaf that differs from a stored :meth:`describe` dict."""
        mine = _flatten(self.describe())
        theirs = _flatten(dict(other))
        keys = sorted(set(mine) | set(theirs))
        return [f"{k}: {theirs.get(k, '–')} → {mine.get(k, '–')}" for k in keys if mine.get(k) != theirs.get(k)]


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def run_identity(method: str, settings: MethodSettings, train: TrainSettings, inputs: Mapping[str, Any]) -> RunIdentity:
    """The identity of training ``method`` with ``settings`` and ``train`` on ``inputs`` (content digests of the
    model and data, plus anything else that changes the result, e.g. the farm's judge and flip rate)."""
    expected = get_method(method).settings
    if type(settings) is not expected:
        raise InputError(f"{method} takes {expected.__name__}, got {type(settings).__name__}")
    return RunIdentity(method, settings_dict(settings), settings_dict(train), dict(canonical_json_ready(dict(inputs))))


@dataclass(frozen=True)
class PUGCSettings:
    """Sizes and sampling of one PUGC pass (:mod:`pasture.train.pugc`; all of them name the stored samples). Here,
    beside the methods' settings, so that ``pasture pugc`` builds its options without importing torch."""

    questions_per_document: int = setting(3, "Questions the writer is asked for per document.")
    samples_per_question: int = setting(4, "Policy samples per kept question (best vs worst: at least 2).")
    max_new_tokens: int = setting(128, "Tokens per policy sample.")
    temperature: float = setting(1.0, "Sampling temperature of the policy samples.")
    seed: int = setting(0, "Seed of the policy samples.")

    def validate(self) -> None:
        if self.questions_per_document < 1:
            raise InputError(f"questions_per_document must be at least 1, got {self.questions_per_document}")
        if self.samples_per_question < 2:
            raise InputError(
                f"samples_per_question must be at least 2 (best vs worst), got {self.samples_per_question}"
            )
        if self.temperature <= 0:
            raise InputError(
                f"temperature must be > 0: the samples of one question must differ, got {self.temperature}"
            )
