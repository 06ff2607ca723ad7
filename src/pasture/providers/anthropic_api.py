"""``anthropic``: Claude models through the official ``anthropic`` SDK (Messages API).

As for ``openai``: the SDK's retries are off (the engine retries and counts calls), HTTP 408/409/429/5xx
(529 "overloaded" included) and timeouts/connection failures/malformed bodies are :class:`TransientError`
(with Retry-After), other 4xx are :class:`PermanentError`. The Messages API gives no logprobs and no
seed: a request for either is refused rather than silently ignored. System turns become the ``system``
parameter. Sampling parameters (temperature, top_p, top_k) are sent only when a request sets them, as
some recent models accept none of them.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pasture.providers import register_provider
from pasture.providers._common import ClientPerLoop, check_decoding, sdk_error, short, stop_list
from pasture.providers.base import ChatRequest, Completion, PermanentError, TransientError
from pasture.providers.pricing import Price, price_for

NO_KEY_PLACEHOLDER = "no-key"
UNSUPPORTED = ("logprobs", "top_logprobs", "seed", "presence_penalty", "frequency_penalty")


@register_provider("anthropic")
class AnthropicProvider:
    """Chat completions from Anthropic's Messages API.

    Parameters
    ----------
    model:
        Model id, e.g. ``claude-haiku-4-5``.
    base_url:
        API URL; default ``$ANTHROPIC_BASE_URL``, else Anthropic's.
    api_key_env:
        Environment variable holding the key (default ``ANTHROPIC_API_KEY``), read at call time.
    api_key:
        A key from Python code; takes precedence over the environment. Never shown in reprs.
    timeout_s:
        Per-call timeout in seconds.
    default_max_tokens:
        ``max_tokens`` when a request does not set it (the API requires one).
    """

    name = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "ANTHROPIC_API_KEY",
        api_key: str | None = None,
        timeout_s: float = 120.0,
        default_max_tokens: int = 1024,
    ) -> None:
        self.model = model
        self.base_url = base_url if base_url is not None else os.environ.get("ANTHROPIC_BASE_URL") or None
        self.api_key_env = api_key_env
        self._api_key = api_key
        self.timeout_s = float(timeout_s)
        self.default_max_tokens = default_max_tokens
        self._clients: ClientPerLoop[Any] = ClientPerLoop(self._make_client)

    def __repr__(self) -> str:
        return f"AnthropicProvider(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    @property
    def hosted_by_vendor(self) -> bool:
        return self.base_url is None or "api.anthropic.com" in self.base_url

    def identity(self) -> dict[str, Any]:
        return {"model": self.model, "weights_digest": None}

    def price(self) -> Price | None:
        return price_for(self.name, self.model, hosted_by_vendor=self.hosted_by_vendor)

    def _key(self) -> str | None:
        return self._api_key or os.environ.get(self.api_key_env)

    def _make_client(self) -> Any:
        import anthropic

        key = self._key()
        if not key:
            if self.hosted_by_vendor:
                raise PermanentError(f"${self.api_key_env} is not set (needed for {self.model} at Anthropic)")
            key = NO_KEY_PLACEHOLDER
        return anthropic.AsyncAnthropic(api_key=key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s)

    async def aclose(self) -> None:
        """Close the running event loop's client (its connections); the next call opens a new one.

        Optional: a loop ended by ``asyncio.run`` closes its client itself (:class:`ClientPerLoop`).
        """
        await self._clients.aclose()

    def _kwargs(self, request: ChatRequest) -> dict[str, Any]:
        d = request.decoding
        refused = [k for k in UNSUPPORTED if d.get(k)]
        if refused:
            raise PermanentError(f"the Anthropic Messages API does not support {refused}")
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        messages = [{"role": m["role"], "content": m["content"]} for m in request.messages if m["role"] != "system"]
        if not messages:
            raise PermanentError("an Anthropic request needs at least one user message")
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": int(d.get("max_tokens", self.default_max_tokens)),
            "messages": messages,
            "timeout": self.timeout_s,
        }
        if system:
            kwargs["system"] = system
        if d.get("stop") is not None:
            kwargs["stop_sequences"] = stop_list(d["stop"])
        sampling = {k: d[k] for k in ("temperature", "top_p", "top_k") if k in d}
        if sampling:
            kwargs["extra_body"] = sampling
        return kwargs

    async def complete(self, request: ChatRequest) -> Completion:
        import anthropic

        check_decoding(request.decoding)
        kwargs = self._kwargs(request)
        client = await self._clients.get()
        start = time.perf_counter()
        try:
            raw = await client.messages.with_raw_response.create(**kwargs)
            body = raw.http_response.text
        except anthropic.AnthropicError as exc:
            raise sdk_error(exc, anthropic, timeout_s=self.timeout_s, secret=self._key()) from None
        latency = time.perf_counter() - start
        try:
            data = json.loads(body)
            if data.get("type") == "error":
                err = data.get("error") or {}
                raise TransientError(f"error in a 200 response: {short(err.get('message', err))}")
            blocks = data["content"]
            text = "".join(b["text"] for b in blocks if b.get("type") == "text")
            usage = data.get("usage") or {}
            prompt_tokens = usage.get("input_tokens")
            completion_tokens = usage.get("output_tokens")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TransientError(f"malformed response body ({type(exc).__name__}): {short(body, 200)}") from None
        price = self.price()
        return Completion(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=price.cost(prompt_tokens, completion_tokens) if price else None,
            latency_s=latency,
            raw=body,
        )
