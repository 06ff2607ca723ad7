"""Training SpecDec++'s acceptance head (``pasture train acceptance_head``) on a frozen target/draft pair.

Data (following SpecDec++, Huang et al. 2024): responses sampled from the target; in each, a random share
(``draft_share``) of the response tokens is replaced by tokens sampled from the draft. Only replaced tokens carry a
loss; the target tokens around them make the contexts look like the target's own text, as at decoding time. The
label of a draft token ``x`` at a position is its acceptance probability ``y = min(1, p(x)/q(x))`` with ``p``, ``q``
the target's and draft's next-token distributions after the (mixed) prefix, used as a soft target. The loss is a
weighted binary cross-entropy, rejections weighted up::

    loss = mean over draft tokens of  −[ y·log p̂ + w·(1 − y)·log(1 − p̂) ]          w = rejection_weight (paper: 6)

where p̂ is the head's acceptance probability from the draft's last hidden state at ``x``. The draft token ``x`` is
drawn from the draft's distribution after the *unmixed* prefix (one extra draft pass per batch instead of one per
token); its label is computed on the mixed prefix it actually sits in, so labels are exact for their contexts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.speculative.core import token_distribution
from pasture.speculative.head import AcceptanceHead, layer_draft
from pasture.train.core import TrainingData, TrainStats, cycle_batches, generate, set_seed, timed
from pasture.train.registry import AcceptanceHeadSettings, TrainSettings


def _pad(rows: Sequence[Sequence[int]], pad: int) -> tuple[Tensor, Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[i, : len(r)] = True
    return ids, mask


def _forward(model: Any, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(hidden states, logits) of a batch, returned on the CPU: the mixing, labels and the small head stay on the
    CPU (one seeded generator) whatever device the frozen models run on."""
    device = next(model.parameters()).device
    body, head = model.get_decoder(), model.get_output_embeddings()
    hidden = body(input_ids=ids.to(device), attention_mask=mask.long().to(device)).last_hidden_state
    return hidden.cpu(), head(hidden).cpu()


@torch.no_grad()
def head_examples(
    target: Any,
    draft: Any,
    sequences: Sequence[Sequence[int]],
    prompt_lengths: Sequence[int],
    *,
    draft_share: float,
    temperature: float,
    pad_id: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """(draft hidden states ``(N, d)``, soft labels ``(N,)``) for the draft tokens mixed into ``sequences``.

    ``sequences`` are prompt + target-sampled response ids; response positions (index ≥ prompt length) are
    replaced by a draft sample with probability ``draft_share``.
    """
    ids, mask = _pad(sequences, pad_id)
    _, q_logits = _forward(draft, ids, mask)
    q0 = token_distribution(q_logits[:, :-1], temperature=temperature)  # predicts positions 1..L-1
    positions = torch.arange(ids.shape[1]).unsqueeze(0)
    starts = torch.tensor(list(prompt_lengths)).unsqueeze(1)
    eligible = mask & (positions >= starts) & (positions >= 1)
    chosen = eligible & (torch.rand(ids.shape, generator=generator) < draft_share)
    mixed = ids.clone()
    b, t = chosen.nonzero(as_tuple=True)
    if len(b):
        drawn = torch.multinomial(q0[b, t - 1], 1, generator=generator).squeeze(1)
        mixed[b, t] = drawn
    hidden, q_logits = _forward(draft, mixed, mask)
    _, p_logits = _forward(target, mixed, mask)
    x = mixed[b, t]
    q = token_distribution(q_logits[b, t - 1], temperature=temperature).gather(1, x[:, None]).squeeze(1)
    p = token_distribution(p_logits[b, t - 1], temperature=temperature).gather(1, x[:, None]).squeeze(1)
    labels = torch.clamp(p / q.clamp_min(1e-300), max=1.0)
    return hidden[b, t].detach().float(), labels.float()


def weighted_bce(logits: Tensor, labels: Tensor, rejection_weight: float) -> Tensor:
    """``mean −[y·log p̂ + w·(1 − y)·log(1 − p̂)]`` with p̂ = softmax(logits)[..., 1] (computed in log space)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(labels * logp[:, 1] + rejection_weight * (1.0 - labels) * logp[:, 0]).mean()


def train_acceptance_head(
    target: Any,
    draft: Any,
    sequences: Sequence[Sequence[int]],
    prompt_lengths: Sequence[int],
    settings: AcceptanceHeadSettings,
    train: TrainSettings,
    *,
    pad_id: int,
) -> tuple[AcceptanceHead, TrainStats]:
    """Train a fresh head on ``sequences`` (prompt + target response ids) for ``train.steps`` AdamW steps of
    ``train.batch_size`` sequences; target and draft stay frozen. Returns the head and its stats (``metrics``:
    mean label = the draft's acceptance rate on this data, final loss, examples seen)."""
    if not sequences:
        raise InputError("no sequences to train the acceptance head on")
    set_seed(train.seed)
    for m in (target, draft):
        m.eval()
        m.requires_grad_(False)
    width = int(draft.get_output_embeddings().weight.shape[1])
    head = AcceptanceHead(width, settings.n_blocks)
    opt = torch.optim.AdamW(head.parameters(), lr=train.lr)
    gen = torch.Generator().manual_seed(train.seed)
    stats = TrainStats(method="acceptance_head")
    seen = 0
    label_sum = 0.0
    with timed(stats):
        for idx in cycle_batches(len(sequences), train.batch_size, train.steps, train.seed):
            rows = [sequences[i] for i in idx]
            hidden, labels = head_examples(
                target,
                draft,
                rows,
                [prompt_lengths[i] for i in idx],
                draft_share=settings.draft_share,
                temperature=settings.temperature,
                pad_id=pad_id,
                generator=gen,
            )
            if len(labels) == 0:
                continue
            loss = weighted_bce(head(hidden), labels, settings.rejection_weight)
            opt.zero_grad()
            loss.backward()
            if train.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(head.parameters(), train.max_grad_norm)
            opt.step()
            stats.steps += 1
            stats.train_tokens += sum(len(r) for r in rows)
            stats.history.append(float(loss.detach()))
            seen += len(labels)
            label_sum += float(labels.sum())
    stats.metrics = {
        "examples": float(seen),
        "mean_label": label_sum / seen if seen else float("nan"),
        "final_loss": stats.history[-1] if stats.history else float("nan"),
    }
    head.eval()
    return head, stats


def fit(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    settings: AcceptanceHeadSettings,
    train: TrainSettings,
) -> tuple[AcceptanceHead, TrainStats]:
    """The registry trainer: ``model`` is the target; the draft is its first ``settings.draft_layers`` layers
    (a self-speculative draft); responses to ``data.prompts`` are sampled from the target at
    ``settings.temperature``, then the head is trained on them (:func:`train_acceptance_head`)."""
    if not data.prompts:
        raise InputError("acceptance_head needs --prompts (JSONL with instruction)")
    draft = layer_draft(model, settings.draft_layers)
    gens = generate(
        model,
        tokenizer,
        list(data.prompts),
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        seed=train.seed,
        batch_size=8,
    )
    sequences = [list(g[0].prompt_ids) + list(g[0].response_ids) for g in gens]
    lengths = [len(g[0].prompt_ids) for g in gens]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    head, stats = train_acceptance_head(model, draft, sequences, lengths, settings, train, pad_id=int(pad))
    head.draft_layers = settings.draft_layers  # type: ignore[assignment]  # recorded for save(); nn.Module typing
    stats.generated_tokens = sum(len(g[0].response_ids) for g in gens)
    return head, stats
