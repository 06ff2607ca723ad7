"""The policy as its own judge by prompt (Self-Rewarding's LLM-as-a-judge), for chat models such as SmolLM2.

Self-Rewarding and Temporal Self-Rewarding score each sample with the policy being trained, prompted as a judge
with an additive 0–5 rubric. :class:`PromptSelfJudge` is that judge source for the iterative driver
(:func:`pasture.train.loop.run_loop`): each round's judge is the *current* policy M_k reading
:data:`SELF_REWARD_JUDGE_V1` (the rubric in the team's own words) as a user turn of its chat template, with the
assistant turn begun as ``"Score: "``. The score is read from the next token, not generated:

    s(x, y) = Σ_{d=0..5} d · p(d) / Σ_{d=0..5} p(d),   p = softmax of M_k's next-token logits,

restricted to the six digit tokens ``0``..``5`` (each one token; the same expected-digit reading as Self-J's,
:func:`pasture.train.self_j.expected_digit`, on a 0–5 scale). One forward pass per judgment, deterministic, and
never unparsable. The input is the *head* (the chat template and the rubric up to the first field, the same for
every judgment) tokenized on its own, then the rest tokenized on its own; the head's keys and values are computed
once per judge and reused, so a judgment costs the forward pass of its own ~50 tokens, not of the ~180 of the
whole prompt. Differences from the paper: the paper's judge writes a justification and then a score, sampled
three times and averaged; here the score token's expectation is read directly (a 135M policy rarely writes the
score line when left to generate, and the expectation is what three samples estimate, without the sampling noise).

**In process, not behind the llama.cpp server.** The judge must be the current policy M_k, whose weights change
every round; the llama.cpp server of the same weights serves only the GGUF, i.e. M0. So the judge runs in process
on the torch model the loop trains (transformers), and its fingerprint digests that model's weights
(:func:`pasture.train.core.model_digest`), the template and the reading: a round's judgments are keyed by the
policy that made them, and a changed policy never reuses another's scores.

A 135M self-judge shows only the plumbing: its scores are not evidence about self-rewarding.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Sequence

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from pasture.annotate.responses import ResponseToJudge
from pasture.errors import InputError
from pasture.judges.base import ResponseRequest, ResponseVerdict
from pasture.judges.protocols import ProtocolKind
from pasture.records import JudgeFingerprint, canonical_json, sha256_text
from pasture.train.core import model_digest, prompt_text
from pasture.train.self_j import digit_token_ids

SELF_REWARD_JUDGE_V1 = """Read the request and the answer below, then score the answer on an additive scale from 0 to 5, \
adding one point for each statement that holds:
- The answer is on the subject of the request and gives some related information, even if it is incomplete.
- The answer deals with a substantial part of the request, even if it leaves some of it unanswered.
- The answer meets the basic need of the request in a useful way, even if it has flaws.
- The answer is clear and well organised, speaks to the request directly, and reads as an assistant's reply.
- The answer is accurate, focused and complete, with nothing beside the point.

Request:
{instruction}

Answer:
{output}

Reply with the total on one line, as "Score: N" with N from 0 to 5."""
"""The self-judge's rubric (Self-Rewarding's additive 0–5 scale, written by the team): filled with the request and
the answer, given to the policy as a user turn."""

PREFILL = "Score: "
"""The assistant turn begins with this; the next token is the score digit."""

SCALE = 5
_FIELD = "\ue000"
"""A private-use character standing for a field while the head is cut off the rendered prompt."""
READING = "expected-score-token-v1"
"""Name and version of how the score is read (enters the fingerprint as the parser)."""


class PolicyPromptJudge:
    """A single-response judge: ``policy`` scores (x, y) by the prompt (module docstring). Built by
    :meth:`PromptSelfJudge.for_policy`; ``counter`` (shared with its source) counts the judgments it computes."""

    kind: ProtocolKind = "response"

    def __init__(
        self,
        policy: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        template: str,
        counter: list[int],
        name: str = "policy self-judge (prompt)",
    ) -> None:
        self.policy = policy.eval()
        self.tokenizer = tokenizer
        self.template = template
        self.name = name
        self._counter = counter
        self._digits = digit_token_ids(tokenizer)[: SCALE + 1]
        self._head_cache: object | None = None
        self._fingerprint = JudgeFingerprint(
            provider="transformers",
            model="policy-in-process",
            weights_digest=model_digest(policy, tokenizer),
            template_digest=sha256_text(template),
            parser=READING,
            decoding={"prefill": PREFILL, "scale": [0, SCALE], "read": "expectation over the score digit"},
            protocol="self_reward_score",
        )

    @property
    def fingerprint(self) -> JudgeFingerprint:
        return self._fingerprint

    @property
    def reads(self) -> frozenset[str]:
        return frozenset()

    def text(self, instruction: str, output: str) -> str:
        """The full model input: the rubric as a user turn, then the assistant turn begun with :data:`PREFILL`."""
        user = self.template.replace("{instruction}", instruction).replace("{output}", output)
        return prompt_text(self.tokenizer, user) + PREFILL

    def head(self) -> str:
        """The start of every input: the rendered prompt up to its first field."""
        rendered = self.text(_FIELD, _FIELD)
        return rendered[: rendered.index(_FIELD)]

    def input_ids(self, instruction: str, output: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(head ids, rest ids) of the input: the head and the rest of :meth:`text`, each tokenized on its own."""
        head, full = self.head(), self.text(instruction, output)
        if not full.startswith(head):
            raise InputError("the self-judge's prompt does not start with its fixed head; check the template")
        tok = self.tokenizer
        return (
            tok(head, return_tensors="pt", add_special_tokens=False).input_ids,
            tok(full[len(head) :], return_tensors="pt", add_special_tokens=False).input_ids,
        )

    @torch.no_grad()
    def score(self, instruction: str, output: str) -> tuple[float, int]:
        """(s(x, y), prompt tokens): the expected score digit under the policy's next-token distribution."""
        head_ids, rest_ids = self.input_ids(instruction, output)
        if self._head_cache is None:
            self._head_cache = self.policy(input_ids=head_ids, use_cache=True, logits_to_keep=1).cache
        past = copy.deepcopy(self._head_cache)  # the forward pass extends the cache in place
        logits = self.policy(input_ids=rest_ids, cache=past, use_cache=True, logits_to_keep=1).logits[0, -1]
        p = torch.softmax(logits[self._digits].double(), dim=-1)
        return float((p * torch.arange(SCALE + 1, dtype=p.dtype)).sum()), int(head_ids.shape[1] + rest_ids.shape[1])

    async def judge_response(self, request: ResponseRequest) -> ResponseVerdict:
        t = time.perf_counter()
        value, n_prompt = self.score(request.instruction, request.output)
        self._counter[0] += 1
        return ResponseVerdict(
            status="ok",
            raw_completion=f"{PREFILL}{value:.4f} (expected digit)",
            score=value,
            prompt_tokens=n_prompt,
            completion_tokens=0,
            cost_usd=0.0,
            latency_s=time.perf_counter() - t,
        )

    def estimate_tokens(self, request: ResponseRequest) -> tuple[int, int]:
        return (len(self.text(request.instruction, request.output)) // 4, 0)

    def price_per_token(self) -> tuple[float, float] | None:
        return (0.0, 0.0)


class PromptSelfJudge:
    """A :class:`~pasture.train.loop.JudgeSource`: each round's judge is the current policy prompted with
    ``template`` (:class:`PolicyPromptJudge`). ``calls`` counts the judgments computed by every judge it made (a
    judgment the store already holds is not computed again, which is how a resumed loop is seen to re-judge
    nothing)."""

    def __init__(self, template: str = SELF_REWARD_JUDGE_V1) -> None:
        if "{instruction}" not in template or "{output}" not in template:
            raise InputError("a self-judge template needs the fields {instruction} and {output}", param="template")
        self.template = template
        self._counter = [0]
        payload = {"judge": "prompt-self-judge", "template": template, "reading": READING, "prefill": PREFILL}
        self._digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()

    @property
    def digest(self) -> str:
        return self._digest

    @property
    def calls(self) -> int:
        return self._counter[0]

    def prepare(self, items: Sequence[ResponseToJudge]) -> None:
        """Nothing to do ahead: each judgment is one forward pass, made only for judgments the store lacks."""
        return None

    def for_policy(self, policy: nn.Module, tokenizer: PreTrainedTokenizerBase) -> PolicyPromptJudge:
        return PolicyPromptJudge(policy, tokenizer, self.template, self._counter)
