"""The provider ``pasture generate --draft-model`` uses: a transformers target decoded speculatively.

Same ``complete(ChatRequest) -> Completion`` contract as every provider, so generation, storage and resumption are
unchanged. Its identity names the target's weights, the draft and the candidate-length policy: outputs of one
configuration are never mixed with another's (the law is the target's either way, but the seeded draws differ).
The first request is also decoded plainly (same cache code, one target pass per token), timed, so the summary
gives tokens/s as a ratio to plain decoding in the same run.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pasture.errors import InputError
from pasture.providers._common import check_decoding, stop_list
from pasture.providers.base import ChatRequest, Completion, PermanentError
from pasture.providers.pricing import Price

LAYER_DRAFT_PREFIX = "layers:"
DRAFT_SPEC_HELP = (
    "draft model for speculative decoding: a transformers checkpoint folder sharing the target's vocabulary, or "
    "'layers:N' (the target's own first N layers, a self-speculative draft)"
)


@dataclass(frozen=True)
class SpeculativeConfig:
    """What ``--draft-model`` and its options say: the draft, fixed K or SpecDec++ with a head."""

    draft: str
    candidates: int = 4
    acceptance_head: str | None = None
    stop_threshold: float = 0.3
    max_candidates: int = 20

    def policy(self) -> Any:
        from pasture.speculative.decode import FixedK, SpecDecPP

        if self.acceptance_head is None:
            return FixedK(self.candidates)
        return SpecDecPP(threshold=self.stop_threshold, max_candidates=self.max_candidates)


def _target_digest(spec: str) -> str:
    from pasture.train.run import _model_digest

    return _model_digest(spec)


class SpeculativeProvider:
    """Completions from a transformers target (``smollm2`` or a checkpoint folder) with a draft model."""

    name = "speculative"

    def __init__(self, model: str, config: SpeculativeConfig) -> None:
        self.model = model[3:] if model.startswith("hf:") else model
        self.config = config
        self._loaded: tuple[Any, Any, Any, Any] | None = None
        self._lock = threading.Lock()
        self._stats: Any = None
        self._plain_tokens_per_s: float | None = None
        if not config.draft.startswith(LAYER_DRAFT_PREFIX) and not (Path(config.draft) / "config.json").is_file():
            raise InputError(f"--draft-model {config.draft!r}: not a checkpoint folder (no config.json) nor 'layers:N'")
        if config.acceptance_head is not None and not Path(config.acceptance_head).is_dir():
            raise InputError("--acceptance-head: folder not found", path=Path(config.acceptance_head))
        config.policy()  # validates K / h now, before any model loads

    def identity(self) -> dict[str, Any]:
        from pasture.train.run import content_digest

        draft = self.config.draft
        return {
            "model": self.model,
            "weights_digest": _target_digest(self.model),
            "draft": draft if draft.startswith(LAYER_DRAFT_PREFIX) else content_digest(Path(draft)),
            "policy": self.config.policy().describe(),
            "acceptance_head": content_digest(Path(self.config.acceptance_head))
            if self.config.acceptance_head
            else None,
        }

    def price(self) -> Price:
        return Price(0.0, 0.0)

    def _load(self) -> tuple[Any, Any, Any, Any]:
        if self._loaded is None:
            from pasture.speculative.head import AcceptanceHead, layer_draft
            from pasture.train.models import load_policy

            target, tok = load_policy(self.model)
            target.eval()
            if self.config.draft.startswith(LAYER_DRAFT_PREFIX):
                try:
                    n = int(self.config.draft[len(LAYER_DRAFT_PREFIX) :])
                except ValueError:
                    raise InputError(f"--draft-model {self.config.draft!r}: want layers:N with N an integer") from None
                draft = layer_draft(target, n)
            else:
                draft, _ = load_policy(self.config.draft)
                draft.eval()
            if draft.get_output_embeddings().weight.shape[0] != target.get_output_embeddings().weight.shape[0]:  # type: ignore[operator]
                raise InputError("--draft-model: its vocabulary size differs from the target's; they must share one")
            head = AcceptanceHead.load(self.config.acceptance_head) if self.config.acceptance_head else None
            self._loaded = (target, tok, draft, head)
        return self._loaded

    def _call(self, request: ChatRequest) -> tuple[str, int, int, float]:
        from pasture.speculative.decode import plain_generate, speculative_generate

        d = request.decoding
        if stop_list(d.get("stop")):
            raise PermanentError("speculative decoding does not support stop sequences yet; drop --stop")
        with self._lock:
            target, tok, draft, head = self._load()
            text = tok.apply_chat_template(
                [dict(m) for m in request.messages], tokenize=False, add_generation_prompt=True
            )
            ids = list(tok(text, add_special_tokens=False)["input_ids"])
            kwargs = {
                "max_new_tokens": int(d.get("max_tokens", 512)),
                "temperature": float(d.get("temperature", 1.0)),
                "top_p": float(d.get("top_p", 1.0)),
                "eos_token_id": tok.eos_token_id,
                "seed": int(d.get("seed") or 0),
            }
            if self._plain_tokens_per_s is None:
                self._plain_tokens_per_s = plain_generate(target, ids, **kwargs).stats.tokens_per_s
            res = speculative_generate(target, draft, ids, policy=self.config.policy(), head=head, **kwargs)
            self._stats = res.stats if self._stats is None else self._stats + res.stats
            out = tok.decode(list(res.tokens), skip_special_tokens=True)
            return out, len(ids), len(res.tokens), res.stats.wall_s

    async def complete(self, request: ChatRequest) -> Completion:
        check_decoding(request.decoding)
        out, n_prompt, n_new, latency = await asyncio.to_thread(self._call, request)
        return Completion(
            text=out, top_logprobs=(), prompt_tokens=n_prompt, completion_tokens=n_new, cost_usd=0.0,
            latency_s=latency, raw="",
        )  # fmt: skip

    def speculative_summary(self) -> dict[str, float] | None:
        """The measures of every request so far (docs/generate.md), with tokens/s as a ratio to plain decoding."""
        if self._stats is None:
            return None
        out = dict(self._stats.summary())
        if self._plain_tokens_per_s:
            out["speedup_vs_plain"] = out["tokens_per_s"] / self._plain_tokens_per_s
        return out
