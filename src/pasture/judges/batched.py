"""A judge that answers several pairs in one provider call, like AlpacaFarm's batched annotators.

AlpacaFarm's annotator pool had members with ``batch_size > 1``: one prompt listed several pairs and the
model answered one verdict per pair. That is cheaper (the instructions of the prompt are paid once per
batch) and changes the annotator: a verdict may depend on the pairs it was shown with. :class:`BatchedJudge`
reproduces such a member without changing the annotation engine. It implements the ordinary
:class:`~pasture.judges.base.Judge` protocol; concurrent ``judge()`` calls are collected, up to
``batch_size`` of them or until ``linger_s`` seconds pass after the first one, and sent as ONE call.

Consequences a user must know:

* **Concurrency.** Batches fill only when the engine has at least ``batch_size`` questions in flight:
  run ``annotate(..., settings=EngineSettings(concurrency=c))`` with ``c >= batch_size`` (the simulator's labeling raises its
  concurrency to the largest batch size of its pool). With ``concurrency=1`` every batch holds one pair.
* **Batch-mates.** A verdict may depend on the other pairs of its batch (as in AlpacaFarm). The judgment
  key does NOT include them: it is the usual key (fingerprint, texts, shown order), so a cached verdict is
  reused whatever it was batched with. The fingerprint includes ``batch_size`` (as ``decoding.batch_size``)
  and the batch template's digest, under protocol ``pairwise_batched``.
* **Reply format.** One line per pair, ``N: A`` or ``N: B`` (N = the pair's number in the prompt, A =
  the answer shown first). Lines may come in any order and may carry extra text around them; a pair
  without a readable line (missing, garbled, or two lines that disagree) is that pair's ``parse_error``,
  with the whole raw completion kept. A failed call raises its Transient/PermanentError to every caller
  of the batch.
* **Usage.** Prompt tokens, completion tokens and cost of the shared call are split evenly across the
  batch's verdicts (tokens as integers whose sum is the call's total); ``latency_s`` is the call's wall
  time, the same for each.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pasture.errors import JudgeError
from pasture.judges.base import ChatRequest, Completion, JudgeRequest, Provider, Verdict
from pasture.judges.judge import CHARS_PER_TOKEN, normalize_decoding
from pasture.judges.prompts import PAIRWISE_BATCHED_V1
from pasture.judges.protocols import slot_preference
from pasture.judges.templates import PromptTemplate
from pasture.records import JudgeFingerprint

PROTOCOL = "pairwise_batched"
"""Protocol name in the fingerprint of a :class:`BatchedJudge`."""

PARSER_NAME = "batched_lines"
PARSER_VERSION = 1

DEFAULT_LINGER_S = 0.05
"""Seconds a partial batch waits for more questions before it is sent anyway."""

TOKENS_PER_VERDICT_LINE = 6
"""Completion tokens budgeted per pair by the default ``max_tokens`` (``"12: B\\n"`` is ~4 tokens)."""

_LINE = re.compile(r"^\W*(?:pair\s*)?(\d+)\s*[:.)\-=]\s*\W*([AB])\b", re.IGNORECASE)


def batched_template() -> PromptTemplate:
    """pasture's built-in batch template (``{pairs}`` placeholder)."""
    return PromptTemplate.from_text(PAIRWISE_BATCHED_V1, source="<built-in pairwise_batched_v1>")


def format_pairs(requests: Sequence[JudgeRequest]) -> str:
    """The ``{pairs}`` text: each pair numbered from 1, its answers labelled A/B in shown order."""
    blocks = []
    for i, r in enumerate(requests, start=1):
        first, second = (r.output_1, r.output_2) if r.shown_first == 1 else (r.output_2, r.output_1)
        blocks.append(f"Pair {i}\nRequest:\n{r.instruction}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}")
    return "\n\n".join(blocks)


@dataclass(frozen=True)
class LineVerdict:
    """One pair's reading of a batched reply: shown-order preference (1 = A, 2 = B) or an error."""

    shown_preference: float | None
    error: str | None = None


def parse_batch_lines(text: str, n: int) -> list[LineVerdict]:
    """Read ``n`` verdicts, in shown order, from a reply of lines ``N: A`` / ``N: B``.

    Only lines that start (after punctuation such as ``-`` or ``**``) with a number, a separator and a
    letter A/B count; other text is ignored. Numbers outside 1..n are ignored. A pair with no such line, or
    with lines that disagree, gets an error.
    """
    seen: dict[int, set[str]] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m is None:
            continue
        number = int(m.group(1))
        if 1 <= number <= n:
            seen.setdefault(number, set()).add(m.group(2).upper())
    out = []
    for number in range(1, n + 1):
        letters = seen.get(number)
        if not letters:
            out.append(LineVerdict(None, f"no verdict line for pair {number}"))
        elif len(letters) > 1:
            out.append(LineVerdict(None, f"conflicting verdict lines for pair {number}"))
        else:
            out.append(LineVerdict(1.0 if letters == {"A"} else 2.0))
    return out


def split_evenly(total: int | None, n: int) -> list[int | None]:
    """``total`` as ``n`` integers whose sum is ``total`` (the first ``total % n`` get one more)."""
    if total is None:
        return [None] * n
    base, extra = divmod(total, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


@dataclass
class _Pending:
    request: JudgeRequest
    future: asyncio.Future[Verdict]


class BatchedJudge:
    """Ask ``provider`` about up to ``batch_size`` pairs in one call (protocol ``pairwise_batched``).

    Parameters
    ----------
    name:
        Human-readable name (not part of the fingerprint).
    provider:
        Who answers (``pasture.providers.get_provider``).
    batch_size:
        Most pairs per call (>= 1). Part of the fingerprint.
    linger_s:
        How long a partial batch waits for more concurrent questions after its first one (seconds, >= 0).
        Not part of the fingerprint: like the engine's concurrency it changes batch composition, not the
        question asked of each pair.
    template:
        The batch prompt; must contain ``{pairs}``. Defaults to pasture's ``pairwise_batched_v1``.
    decoding:
        Decoding parameters of every call; default greedy with ``max_tokens = TOKENS_PER_VERDICT_LINE *
        batch_size + 8``.
    """

    def __init__(
        self,
        name: str,
        provider: Provider,
        *,
        batch_size: int,
        linger_s: float = DEFAULT_LINGER_S,
        template: PromptTemplate | None = None,
        decoding: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise JudgeError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not (isinstance(linger_s, int | float) and linger_s >= 0):
            raise JudgeError(f"linger_s must be a number >= 0, got {linger_s!r}")
        self.name = name
        self.provider = provider
        self.batch_size = batch_size
        self.linger_s = float(linger_s)
        self.template = (template if template is not None else batched_template()).require("pairs")
        default = {"max_tokens": TOKENS_PER_VERDICT_LINE * batch_size + 8, "temperature": 0}
        self.decoding = normalize_decoding(decoding if decoding is not None else default)
        self._fingerprint: JudgeFingerprint | None = None
        self._pending: list[_Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"BatchedJudge(name={self.name!r}, provider={self.provider!r}, batch_size={self.batch_size})"

    @property
    def fingerprint(self) -> JudgeFingerprint:
        if self._fingerprint is None:
            identity = self.provider.identity()
            self._fingerprint = JudgeFingerprint(
                provider=self.provider.name,
                model=str(identity["model"]),
                weights_digest=identity.get("weights_digest"),
                template_digest=self.template.digest,
                parser=PARSER_NAME,
                parser_version=PARSER_VERSION,
                decoding={**self.decoding, "batch_size": self.batch_size},
                protocol=PROTOCOL,
            )
        return self._fingerprint

    def messages(self, requests: Sequence[JudgeRequest]) -> tuple[dict[str, str], ...]:
        """The chat messages of one call about ``requests`` (numbered 1.. in this order)."""
        return self.template.fill(pairs=format_pairs(requests))

    async def judge(self, request: JudgeRequest) -> Verdict:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (e.g. a new ``annotate`` run): start afresh
            self._loop, self._pending, self._timer = loop, [], None
        future: asyncio.Future[Verdict] = loop.create_future()
        self._pending.append(_Pending(request, future))
        if len(self._pending) >= self.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.linger_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
            live = [p for p in batch if not p.future.done()]  # a caller may have been cancelled meanwhile
            if not live:
                continue
            task = asyncio.ensure_future(self._run(live))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            completion = await self.provider.complete(
                ChatRequest(messages=self.messages([p.request for p in batch]), decoding=dict(self.decoding))
            )
            verdicts = self.verdicts([p.request for p in batch], completion)
        except Exception as exc:  # TransientError/PermanentError (or a bug): every caller of the batch sees it
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): so are the callers
            for p in batch:
                p.future.cancel()
            raise
        for p, v in zip(batch, verdicts, strict=True):
            if not p.future.done():
                p.future.set_result(v)

    def verdicts(self, requests: Sequence[JudgeRequest], completion: Completion) -> list[Verdict]:
        """Each request's verdict from the shared ``completion`` (by slot; usage split evenly)."""
        n = len(requests)
        lines = parse_batch_lines(completion.text, n)
        prompt = split_evenly(completion.prompt_tokens, n)
        generated = split_evenly(completion.completion_tokens, n)
        cost = None if completion.cost_usd is None else completion.cost_usd / n
        out = []
        for i, (request, line) in enumerate(zip(requests, lines, strict=True)):
            status: Literal["ok", "parse_error"] = "ok" if line.shown_preference is not None else "parse_error"
            out.append(
                Verdict(
                    preference=None
                    if line.shown_preference is None
                    else slot_preference(line.shown_preference, request.shown_first),
                    status=status,
                    raw_completion=completion.text,
                    prompt_tokens=prompt[i],
                    completion_tokens=generated[i],
                    cost_usd=cost,
                    latency_s=completion.latency_s,
                    error=line.error,
                )
            )
        return out

    def estimate_tokens(self, request: JudgeRequest) -> tuple[int, int]:
        """This request's share of a full batch: its own pair text plus 1/batch_size of the instructions."""
        pair_chars = len(format_pairs([request]))
        frame_chars = sum(len(m["content"]) + 8 for m in self.template.fill(pairs=""))
        prompt = (pair_chars + frame_chars / self.batch_size) / CHARS_PER_TOKEN
        max_tokens = int(self.decoding.get("max_tokens", TOKENS_PER_VERDICT_LINE * self.batch_size))
        return int(prompt) + 1, -(-max_tokens // self.batch_size)

    def price_per_token(self) -> tuple[float, float] | None:
        price_fn = getattr(self.provider, "price", None)
        price = price_fn() if callable(price_fn) else None
        return price.per_token() if price is not None else None
