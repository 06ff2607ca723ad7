"""Plumbing every trainer shares: seeds, prompt formatting, collation, log-probabilities, sampling,
the optimisation loop (through accelerate, so one code path runs on a laptop CPU and on several GPUs),
LoRA, checkpoints, and the bookkeeping of tokens and wall time that the comparison table reports.

Conventions: a *prompt* is the user instruction; :func:`prompt_text` turns it into the model's input string
(the chat template when the tokenizer has one, the instruction itself otherwise). A *response* is the text
after it, always followed by the tokenizer's end-of-sequence token in training batches so that the policy
learns when to stop. Batches are right-padded; ``response_mask`` marks the tokens whose log-probability
counts (the response and its EOS, never the prompt or padding).
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.registry import LoraSettings as LoraSettings  # re-exported: defined torch-free
from pasture.train.registry import OptimSettings as OptimSettings

if TYPE_CHECKING:
    from pasture.train.cut import JudgedResponse
    from pasture.train.reward import RewardModel


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): every trainer calls it before anything random."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@dataclass(frozen=True)
class PreferencePair:
    """One labelled comparison: for ``prompt``, ``chosen`` was preferred over ``rejected``."""

    prompt: str
    chosen: str
    rejected: str


@dataclass
class TrainStats:
    """What one training run cost and how it went, as stored next to a checkpoint.

    ``train_tokens`` counts non-padding tokens in every forward pass with gradients (prompt and response);
    ``generated_tokens`` counts tokens sampled during training (rollouts, best-of-n candidates);
    ``wall_s`` is the elapsed wall time of the run in seconds. ``metrics`` holds method-specific final
    numbers (e.g. reward accuracy, mean KL), ``history`` the loss per logged step.
    """

    method: str
    steps: int = 0
    train_tokens: int = 0
    generated_tokens: int = 0
    wall_s: float = 0.0
    history: list[float] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainStats:
        return cls(**json.loads(text))


@contextmanager
def timed(stats: TrainStats) -> Iterator[None]:
    """Add the wall time of the block to ``stats.wall_s``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        stats.wall_s += time.perf_counter() - start


def prompt_text(tokenizer: PreTrainedTokenizerBase, instruction: str) -> str:
    """The model input for an instruction: the chat template with a generation prompt when the tokenizer
    has one (instruction-tuned models), else the instruction unchanged (tiny models on synthetic tasks)."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
        )
        return str(text)
    return instruction


@dataclass
class SequenceBatch:
    """Right-padded prompt+response token ids; ``response_mask`` is 1 on response tokens (incl. EOS)."""

    input_ids: Tensor
    attention_mask: Tensor
    response_mask: Tensor

    def to(self, device: torch.device | str) -> SequenceBatch:
        return SequenceBatch(self.input_ids.to(device), self.attention_mask.to(device), self.response_mask.to(device))

    def select(self, index: Tensor | np.ndarray | Sequence[int]) -> SequenceBatch:
        idx = torch.as_tensor(index, device=self.input_ids.device, dtype=torch.long)
        return SequenceBatch(self.input_ids[idx], self.attention_mask[idx], self.response_mask[idx])

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum().item())

    @property
    def response_lengths(self) -> Tensor:
        return self.response_mask.sum(dim=1)


def batch_from_ids(
    prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]], pad_id: int
) -> SequenceBatch:
    """Collate token ids into a right-padded :class:`SequenceBatch`."""
    if len(prompt_ids) != len(response_ids):
        raise ValueError("prompt_ids and response_ids differ in length")
    lengths = [len(p) + len(r) for p, r in zip(prompt_ids, response_ids, strict=True)]
    width = max(lengths) if lengths else 0
    n = len(lengths)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    resp = torch.zeros((n, width), dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        seq = list(p) + list(r)
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attn[i, : len(seq)] = 1
        resp[i, len(p) : len(seq)] = 1
    return SequenceBatch(ids, attn, resp)


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], max_prompt_tokens: int
) -> list[list[int]]:
    """Token ids of each formatted prompt, keeping the last ``max_prompt_tokens`` (the end holds the question)."""
    out = []
    for p in prompts:
        ids = tokenizer(prompt_text(tokenizer, p), add_special_tokens=False)["input_ids"]
        out.append(list(ids[-max_prompt_tokens:]))
    return out


def encode_responses(
    tokenizer: PreTrainedTokenizerBase, responses: Sequence[str], max_response_tokens: int
) -> list[list[int]]:
    """Token ids of each response followed by EOS, truncated to ``max_response_tokens`` (EOS kept only if it fits)."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("the tokenizer has no EOS token; training needs one to learn when to stop")
    out = []
    for r in responses:
        ids = [*tokenizer(r, add_special_tokens=False)["input_ids"], eos]
        out.append(ids[:max_response_tokens])
    return out


def encode_sequences(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    max_prompt_tokens: int = 256,
    max_response_tokens: int = 256,
) -> SequenceBatch:
    """Tokenise (prompt, response) pairs into one right-padded batch."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return batch_from_ids(
        encode_prompts(tokenizer, prompts, max_prompt_tokens),
        encode_responses(tokenizer, responses, max_response_tokens),
        int(pad),
    )


def token_logprobs(model: nn.Module, batch: SequenceBatch, *, temperature: float = 1.0) -> Tensor:
    """Log-probability of each next token under ``model``: shape [B, T-1], zero outside the response.

    Entry ``[b, t]`` is log p(input_ids[b, t+1] | input_ids[b, :t+1]) when token t+1 is a response token, with
    p = softmax(logits / ``temperature``): the distribution that :func:`generate` samples from at that
    temperature (RL trainers score their own samples with it, so ratios and KL terms are those of the sampler).
    Only the positions from the earliest response start onwards go through the LM head (``logits_to_keep``):
    with a large vocabulary the head over prompt tokens would dominate time and memory for nothing.
    """
    n, width = batch.input_ids.shape
    starts = batch.response_mask.float().argmax(dim=1)  # first response token per row
    first = max(int(starts.min().item()), 1) if n else 1
    keep = min(max(width - first + 1, 2), width)  # logits at positions first-1 .. width-1
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, logits_to_keep=keep).logits
    if temperature <= 0:
        raise InputError(f"log-probabilities need a temperature > 0, got {temperature}")
    logits = logits[:, :-1].float()  # positions width-keep .. width-2 predict tokens width-keep+1 .. width-1
    targets = batch.input_ids[:, width - keep + 1 :]
    if temperature != 1.0:
        logits = logits / temperature
    picked = torch.gather(logits, 2, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    logp = torch.zeros((n, width - 1), dtype=picked.dtype, device=picked.device)
    logp[:, width - keep :] = picked
    return logp * batch.response_mask[:, 1:].to(logp.dtype)


def sequence_logprobs(model: nn.Module, batch: SequenceBatch, *, temperature: float = 1.0) -> Tensor:
    """Sum of response-token log-probabilities per sequence, shape [B]."""
    return token_logprobs(model, batch, temperature=temperature).sum(dim=1)


@dataclass(frozen=True)
class Generation:
    """One sampled response: its text (special tokens removed) and token ids (EOS included when emitted)."""

    prompt: str
    text: str
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]


def _unwrap(model: nn.Module) -> Any:
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    *,
    n: int = 1,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    max_prompt_tokens: int = 256,
) -> list[list[Generation]]:
    """Sample ``n`` responses per prompt (pure ancestral sampling at ``temperature``; 0 = greedy).

    Deterministic for a fixed seed on one device. Returns one list of ``n`` generations per prompt, in order.
    """
    net = _unwrap(model)
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = tokenizer.eos_token_id
    encoded = encode_prompts(tokenizer, prompts, max_prompt_tokens)
    flat = [(i, ids) for i, ids in enumerate(encoded) for _ in range(n)]
    do_sample = temperature > 0
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature if do_sample else None,
        top_p=top_p if do_sample else None,
        top_k=0 if do_sample else None,
        pad_token_id=pad,
        eos_token_id=eos,
    )
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out: list[list[Generation]] = [[] for _ in prompts]
    for start in range(0, len(flat), batch_size):
        chunk = flat[start : start + batch_size]
        width = max(len(ids) for _, ids in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for j, (_, p) in enumerate(chunk):  # left padding for generation
            ids[j, width - len(p) :] = torch.tensor(p)
            attn[j, width - len(p) :] = 1
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen).item()))
        seqs = net.generate(input_ids=ids.to(device), attention_mask=attn.to(device), generation_config=config).cpu()
        for j, (i, p) in enumerate(chunk):
            new = seqs[j, width:].tolist()
            # a finished sequence is EOS then padding; an unfinished one ran to max_new_tokens (no padding)
            new = new[: new.index(eos) + 1] if eos in new else new
            text = cast(str, tokenizer.decode(new, skip_special_tokens=True))  # one sequence in: one str out
            out[i].append(Generation(prompts[i], text, tuple(p), tuple(new)))
    net.train(was_training)
    return out


class Reference:
    """The frozen reference policy for KL terms and DPO: a frozen copy, or (with LoRA) the base model with
    the adapters switched off, so no second copy of the weights is held."""

    def __init__(self, policy: nn.Module, *, use_adapter_off: bool, frozen: nn.Module | None = None) -> None:
        """``frozen``: a separate reference model (not copied, used in eval mode without gradients)."""
        self._policy = policy
        self._copy: nn.Module | None = None
        if frozen is not None:
            self._copy = frozen.eval()
        elif not use_adapter_off:
            self._copy = copy.deepcopy(_unwrap(policy)).eval()
            for p in self._copy.parameters():
                p.requires_grad_(False)

    @torch.no_grad()
    def token_logprobs(self, batch: SequenceBatch, *, temperature: float = 1.0) -> Tensor:
        if self._copy is not None:
            return token_logprobs(self._copy, batch, temperature=temperature)
        net = _unwrap(self._policy)
        with net.disable_adapter():
            return token_logprobs(net, batch, temperature=temperature)


def apply_lora(model: PreTrainedModel, lora: LoraSettings | None) -> nn.Module:
    """Wrap ``model`` with PEFT LoRA adapters when ``lora`` is given; return it unchanged otherwise."""
    if lora is None:
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules) if lora.target_modules else None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def merged(model: nn.Module) -> PreTrainedModel:
    """The plain transformers model: LoRA adapters merged in, accelerate/DDP wrappers removed."""
    net = _unwrap(model)
    if hasattr(net, "merge_and_unload"):
        net = net.merge_and_unload()
    return net  # type: ignore[no-any-return]


class Loop:
    """The shared optimisation loop: AdamW + gradient clipping through an :class:`accelerate.Accelerator`.

    Under ``accelerate launch`` (DDP, DeepSpeed or FSDP from a config file) the same code shards the model
    and optimiser; on one CPU it is plain PyTorch. ``step(loss)`` does backward, clipping and the update.
    """

    def __init__(
        self, params_owner: nn.Module, optim: OptimSettings, stats: TrainStats, *, accelerator: Any = None
    ) -> None:
        from accelerate import Accelerator

        self.accelerator = accelerator if accelerator is not None else Accelerator()
        params = [p for p in params_owner.parameters() if p.requires_grad]
        if not params:
            raise InputError("nothing to train: the model has no trainable parameters")
        # fused AdamW on CUDA: one kernel, no per-step temporaries the size of the parameters
        fused = self.accelerator.device.type == "cuda"
        opt = torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay, fused=fused)
        self.model, self.optimizer = self.accelerator.prepare(params_owner, opt)
        self.optim = optim
        self.stats = stats
        # modules that add a term to every loss (Control LLM's divergence, pasture.train.control_llm)
        self._auxiliary = [m for m in _unwrap(self.model).modules() if hasattr(m, "pop_auxiliary_loss")]

    @property
    def device(self) -> torch.device:
        return self.accelerator.device  # type: ignore[no-any-return]

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This process's share of a global batch (every process draws the same global batches from the
        seed; process r takes rows r, r + world, ...). One process: the batch unchanged."""
        world = int(self.accelerator.num_processes)
        if world <= 1:
            return idx
        part = idx[int(self.accelerator.process_index) :: world]
        return part if len(part) else idx[:1]

    def step(self, loss: Tensor, *, n_tokens: int) -> float:
        terms = [t for m in self._auxiliary if (t := m.pop_auxiliary_loss()) is not None]
        if terms:  # the mean over modules of their terms since the last step, added to the trainer's loss
            auxiliary = torch.stack(terms).mean()
            loss = loss + auxiliary
            self.stats.metrics["auxiliary_loss"] = float(auxiliary.detach().item())
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if self.optim.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.optim.max_grad_norm)
        self.optimizer.step()
        self.stats.steps += 1
        self.stats.train_tokens += n_tokens
        value = float(loss.detach().item())
        self.stats.history.append(value)
        return value


def minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled index batches covering ``range(n)`` once (the last batch may be smaller)."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def cycle_batches(n: int, batch_size: int, steps: int, seed: int) -> Iterator[np.ndarray]:
    """``steps`` index batches, reshuffling each epoch; deterministic in ``seed``."""
    if n == 0:
        raise InputError("no training examples")
    rng = np.random.default_rng(seed)
    made = 0
    while made < steps:
        for idx in minibatches(n, min(batch_size, n), rng):
            if made >= steps:
                return
            yield idx
            made += 1


def save_checkpoint(
    path: str | Path, model: nn.Module, tokenizer: PreTrainedTokenizerBase | None, stats: TrainStats
) -> Path:
    """Write model (LoRA merged), tokenizer and ``stats.json``; ``stats.json`` is written last and marks
    the checkpoint complete, so an interrupted save is never mistaken for a finished stage."""
    from accelerate import PartialState

    path = Path(path)
    state = PartialState()
    if not state.is_main_process:  # under accelerate launch only the main process writes
        state.wait_for_everyone()
        return path
    path.mkdir(parents=True, exist_ok=True)
    marker = path / "stats.json"
    if marker.exists():
        marker.unlink()
    net = _unwrap(model)
    if hasattr(net, "save_checkpoint_files"):
        net.save_checkpoint_files(path)
    else:
        merged(copy.deepcopy(net)).save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    marker.write_text(stats.to_json(), encoding="utf-8")
    state.wait_for_everyone()
    return path


def checkpoint_done(path: str | Path) -> bool:
    """Whether ``path`` holds a complete checkpoint (its ``stats.json`` exists)."""
    return (Path(path) / "stats.json").is_file()


def load_stats(path: str | Path) -> TrainStats:
    return TrainStats.from_json((Path(path) / "stats.json").read_text(encoding="utf-8"))


def no_grad_if(flag: bool) -> Any:
    return torch.no_grad() if flag else nullcontext()


@dataclass(frozen=True)
class TrainingData:
    """What a registered trainer reads (:data:`pasture.train.registry.TRAINER_SIGNATURE`); each method uses the
    parts its registry entry names in ``inputs``: ``prompts`` + ``responses`` (demonstrations), ``pairs``,
    ``prompts`` + ``reward_model``, or ``judged`` (single-response judgments, for CUT)."""

    prompts: Sequence[str] = ()
    responses: Sequence[str] = ()
    pairs: Sequence[PreferencePair] = ()
    reward_model: RewardModel | None = None
    judged: Sequence[JudgedResponse] = ()

    def need_reward_model(self, method: str) -> RewardModel:
        if self.reward_model is None:
            raise InputError(f"{method} needs a reward model")
        return self.reward_model


def model_digest(model: nn.Module, tokenizer: PreTrainedTokenizerBase | None = None) -> str:
    """SHA-256 of a model's weights (every state-dict tensor: name, dtype, shape, bytes) and, when given, of the
    tokenizer's vocabulary, special tokens and chat template: the content identity of a starting policy."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(_unwrap(model).state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    if tokenizer is not None:
        vocab = sorted(tokenizer.get_vocab().items())
        meta = [vocab, tokenizer.eos_token_id, tokenizer.pad_token_id, getattr(tokenizer, "chat_template", None)]
        h.update(json.dumps(meta, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


ScoreFn = Callable[[Sequence[str], Sequence[str]], Sequence[float]]
"""Scores (prompts, responses) -> one float per response; larger is better (a reward model, an oracle)."""
