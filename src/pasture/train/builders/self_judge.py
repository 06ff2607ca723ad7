"""The self-judge stand-in of the synthetic task (METHODS.md): a judge derived from the policy being trained.

A 135M-or-smaller policy on the synthetic task cannot follow an LLM-as-judge prompt, so self-rewarding there uses a
**stand-in**: a linear score head on the policy's own features. The feature of (x, y) is the policy's last hidden
state averaged over the response tokens, φ_π(x, y). The head is fitted by ridge regression (closed form, centred
features, penalty λ) on a fixed *judge-training set*: ``n_prompts`` held-out prompts, ``samples`` samples each from
the starting policy M0, labelled by the oracle (the analogue of the paper's seed evaluation-fine-tuning data). Each
round refits the head on the *current* policy's features, so the judge changes with the policy as a self-judge
does; its fingerprint digests the policy's weights, the judge-training data and λ. It is a stand-in, not the
paper's prompted judge: on SmolLM2 the policy judges itself with a prompt instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.annotate.responses import ResponseToJudge
from pasture.judges.base import ResponseReading, ResponseRequest
from pasture.judges.judge import ProgrammaticResponseJudge
from pasture.records import canonical_json
from pasture.train.core import encode_sequences, generate, model_digest
from pasture.train.synthetic import MAX_RESPONSE_TOKENS, extended_oracle_score, make_prompts


@dataclass(frozen=True)
class SelfJudgeSettings:
    """Size of the judge-training set and the ridge penalty of the stand-in self-judge."""

    n_prompts: int = 200
    samples: int = 4
    ridge: float = 1e-2
    seed: int = 777


@torch.no_grad()
def response_features(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], responses: Sequence[str]
) -> torch.Tensor:
    """φ(x, y): the model's last hidden state averaged over the response tokens (EOS included), one row each."""
    rows = []
    model.eval()
    for i in range(0, len(prompts), 128):
        batch = encode_sequences(tokenizer, prompts[i : i + 128], responses[i : i + 128])
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
        h = out.hidden_states[-1].float()
        m = batch.response_mask.unsqueeze(-1).float()
        rows.append((h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0))
    return torch.cat(rows)


class SyntheticSelfJudge:
    """A :class:`~pasture.train.loop.JudgeSource` whose judge is a ridge head on the current policy's features
    (module docstring). Build it once from the starting policy; ``for_policy`` refits the head each round."""

    def __init__(self, start: nn.Module, tokenizer: PreTrainedTokenizerBase, settings: SelfJudgeSettings | None = None):
        self.settings = settings or SelfJudgeSettings()
        s = self.settings
        prompts = make_prompts(s.n_prompts, seed=s.seed)
        gens = generate(start, tokenizer, prompts, n=s.samples, max_new_tokens=MAX_RESPONSE_TOKENS, seed=s.seed + 1)
        self.prompts = [p for p in prompts for _ in range(s.samples)]
        self.responses = [g.text for row in gens for g in row]
        self.targets = torch.tensor(
            [extended_oracle_score(p, r) for p, r in zip(self.prompts, self.responses, strict=True)]
        )
        payload = {"prompts": self.prompts, "responses": self.responses, "ridge": s.ridge, "stand_in": "ridge-head-v1"}
        self._score_all: Callable[[Sequence[str], Sequence[str]], None] | None = None
        self._digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()

    @property
    def digest(self) -> str:
        return self._digest

    def prepare(self, items: Sequence[ResponseToJudge]) -> None:
        """Score ``items`` in batched forward passes with the head of the latest :meth:`for_policy` (the engine
        then reads them from memory instead of one forward pass per judgment)."""
        if self._score_all is not None and items:
            self._score_all([i.instruction for i in items], [i.output for i in items])

    def fit(self, policy: nn.Module, tokenizer: PreTrainedTokenizerBase) -> tuple[torch.Tensor, torch.Tensor, float]:
        """(w, feature mean, target mean) of the ridge head on ``policy``'s features of the judge-training set."""
        x = response_features(policy, tokenizer, self.prompts, self.responses).double()
        y = self.targets.double()
        mu, ybar = x.mean(dim=0), float(y.mean())
        xc = x - mu
        a = xc.T @ xc + self.settings.ridge * len(y) * torch.eye(x.shape[1], dtype=torch.float64)
        w = torch.linalg.solve(a, xc.T @ (y - ybar))
        return w, mu, ybar

    def for_policy(self, policy: nn.Module, tokenizer: PreTrainedTokenizerBase) -> ProgrammaticResponseJudge:
        w, mu, ybar = self.fit(policy, tokenizer)
        cache: dict[tuple[str, str], float] = {}

        def score_all(prompts: Sequence[str], outputs: Sequence[str]) -> None:
            phi = response_features(policy, tokenizer, prompts, outputs).double()
            for p, o, v in zip(prompts, outputs, (ybar + (phi - mu) @ w).tolist(), strict=True):
                cache[(p, o)] = float(v)

        def self_judge_score(request: ResponseRequest) -> ResponseReading:
            if (request.instruction, request.output) not in cache:
                score_all([request.instruction], [request.output])
            return ResponseReading(score=cache[(request.instruction, request.output)])

        self._score_all = score_all

        version = hashlib.sha256(f"{self._digest}|{model_digest(policy, tokenizer)}".encode()).hexdigest()
        return ProgrammaticResponseJudge(self_judge_score, name="self-judge stand-in (ridge head)", version=version)
