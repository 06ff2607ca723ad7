"""``openai``: any OpenAI-compatible server (OpenAI, vLLM, llama.cpp server, Ollama) via the official SDK.

The SDK's own retries are switched off (``max_retries=0``): the annotation engine owns retries, backoff and
Retry-After, and must count every call it makes. Errors are mapped onto the two kinds the engine knows:

* :class:`TransientError` — HTTP 408/409/425/429 and 5xx (with the server's Retry-After), timeouts,
  refused or dropped connections, and bodies that are truncated, not JSON or lack ``choices``;
* :class:`PermanentError` — bad credentials, unknown model, any other 4xx, unknown decoding parameters.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from pasture.errors import JudgeError
from pasture.providers import register_provider
from pasture.providers._common import ClientPerLoop, check_decoding, sdk_error, short, stop_list
from pasture.providers.base import ChatRequest, Completion, PermanentError, TransientError
from pasture.providers.pricing import Price, price_for

NO_KEY_PLACEHOLDER = "no-key"
"""Sent as the API key to a user's own server (base_url set) when the key variable is unset: local
servers need none, and the SDK refuses to run without one."""


@register_provider("openai")
class OpenAIProvider:
    """Chat or text completions from an OpenAI-compatible endpoint.

    Parameters
    ----------
    model:
        Model id sent with each request (and named in the fingerprint).
    base_url:
        Server URL ending in ``/v1``; default ``$OPENAI_BASE_URL``, else OpenAI's API.
    api_key_env:
        Name of the environment variable holding the key (default ``OPENAI_API_KEY``). Keys are read from
        the environment at call time and never stored on the object's repr, fingerprints or logs.
    api_key:
        A key passed directly from Python code (never from a judge file); takes precedence over the env.
    endpoint:
        ``"chat"`` (``/chat/completions``) or ``"completions"`` (``/completions``; the prompt is the
        message contents joined by blank lines, for base models).
    timeout_s:
        Per-call timeout in seconds; a call past it raises :class:`TransientError`. The default equals the
        annotation engine's, so the engine's ``timeout_s`` is the one a user sets; raise both for slow models.
    weights_path:
        For a local server serving a known file (e.g. a GGUF): its SHA-256 becomes the fingerprint's
        ``weights_digest``, so a judge served from other weights never reuses these judgments.
    weights_digest:
        The same, given directly.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        api_key: str | None = None,
        endpoint: Literal["chat", "completions"] = "chat",
        timeout_s: float = 120.0,
        weights_path: str | Path | None = None,
        weights_digest: str | None = None,
    ) -> None:
        if endpoint not in ("chat", "completions"):
            raise JudgeError(f"endpoint must be 'chat' or 'completions', not {endpoint!r}")
        self.model = model
        self.base_url = base_url if base_url is not None else os.environ.get("OPENAI_BASE_URL") or None
        self.api_key_env = api_key_env
        self._api_key = api_key
        self.endpoint = endpoint
        self.timeout_s = float(timeout_s)
        self.weights_path = Path(weights_path) if weights_path is not None else None
        self._weights_digest = weights_digest
        self._clients: ClientPerLoop[Any] = ClientPerLoop(self._make_client)

    def __repr__(self) -> str:
        return (
            f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r}, endpoint={self.endpoint!r}, "
            f"api_key_env={self.api_key_env!r})"
        )

    @property
    def hosted_by_vendor(self) -> bool:
        return self.base_url is None or "api.openai.com" in self.base_url

    def identity(self) -> dict[str, Any]:
        digest = self._weights_digest
        if digest is None and self.weights_path is not None:
            from pasture.local_models import file_digest

            digest = file_digest(self.weights_path)
        return {"model": self.model, "weights_digest": digest}

    def price(self) -> Price | None:
        return price_for(self.name, self.model, hosted_by_vendor=self.hosted_by_vendor)

    def _key(self) -> str | None:
        return self._api_key or os.environ.get(self.api_key_env)

    def _make_client(self) -> Any:
        import openai

        key = self._key()
        if not key:
            if self.hosted_by_vendor:
                raise PermanentError(f"${self.api_key_env} is not set (needed for {self.model} at OpenAI)")
            key = NO_KEY_PLACEHOLDER
        return openai.AsyncOpenAI(api_key=key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s)

    async def aclose(self) -> None:
        """Close the running event loop's client (its connections); the next call opens a new one.

        Optional: a loop ended by ``asyncio.run`` closes its client itself (:class:`ClientPerLoop`).
        """
        await self._clients.aclose()

    async def complete(self, request: ChatRequest) -> Completion:
        import httpx
        import openai

        check_decoding(request.decoding)
        client = await self._clients.get()
        payload = self._body(request)
        start = time.perf_counter()
        try:
            # the SDK's plain POST: its connection pool, headers, timeout and status errors, without the typed
            # ``create``, whose walk over every message to transform the parameters cost more CPU per call than
            # pasture's own work on a judgment (the body here is plain JSON already; the reply is read raw)
            response = await client.post(
                "/chat/completions" if self.endpoint == "chat" else "/completions",
                cast_to=httpx.Response,
                body=payload,
                options={"timeout": self.timeout_s},
            )
            body = response.text
        except openai.OpenAIError as exc:
            raise sdk_error(exc, openai, timeout_s=self.timeout_s, secret=self._key()) from None
        latency = time.perf_counter() - start
        return self._completion(body, latency)

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body of the request: the model, the decoding parameters the API knows (``top_k`` as the
        extra field local servers read) and the messages, or their contents as one prompt."""
        d = dict(request.decoding)
        kwargs: dict[str, Any] = {"model": self.model}
        for key in ("max_tokens", "temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
            if key in d:
                kwargs[key] = d[key]
        if "stop" in d:
            kwargs["stop"] = stop_list(d["stop"])
        if "top_k" in d:
            kwargs["top_k"] = d["top_k"]
        want_logprobs = bool(d.get("logprobs")) or bool(d.get("top_logprobs"))
        if self.endpoint == "chat":
            kwargs["messages"] = [dict(m) for m in request.messages]
            if want_logprobs:
                kwargs["logprobs"] = True
                kwargs["top_logprobs"] = int(d.get("top_logprobs") or 1)
        else:
            kwargs["prompt"] = "\n\n".join(m["content"] for m in request.messages)
            if want_logprobs:
                kwargs["logprobs"] = int(d.get("top_logprobs") or 1)
        return kwargs

    def _completion(self, body: str, latency: float) -> Completion:
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            if self.endpoint == "chat":
                text = (choice.get("message") or {}).get("content") or ""
                top = _chat_top_logprobs(choice.get("logprobs"))
            else:
                text = choice.get("text") or ""
                top = _text_top_logprobs(choice.get("logprobs"))
            usage = data.get("usage") or {}
            prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
            completion_tokens = _int_or_none(usage.get("completion_tokens"))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise TransientError(f"malformed response body ({type(exc).__name__}): {short(body, 200)}") from None
        if not isinstance(text, str):
            raise TransientError(f"malformed response body (text is {type(text).__name__})")
        price = self.price()
        return Completion(
            text=text,
            top_logprobs=top,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=price.cost(prompt_tokens, completion_tokens) if price else None,
            latency_s=latency,
            raw=body,
        )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _chat_top_logprobs(logprobs: Any) -> tuple[dict[str, float], ...]:
    if not logprobs or not logprobs.get("content"):
        return ()
    out = []
    for position in logprobs["content"]:
        alts = {str(a["token"]): float(a["logprob"]) for a in position.get("top_logprobs") or []}
        if not alts and "token" in position:
            alts = {str(position["token"]): float(position["logprob"])}
        out.append(alts)
    return tuple(out)


def _text_top_logprobs(logprobs: Any) -> tuple[dict[str, float], ...]:
    if not logprobs or not logprobs.get("top_logprobs"):
        return ()
    return tuple({str(t): float(lp) for t, lp in (pos or {}).items()} for pos in logprobs["top_logprobs"])
