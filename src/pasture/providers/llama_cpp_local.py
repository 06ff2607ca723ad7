"""``llama_cpp``: a GGUF model run in this process through llama-cpp-python.

llama.cpp calls block and a ``Llama`` object is not thread-safe, so each call runs in a worker thread
(the event loop stays responsive) under one lock per provider (calls are serialized). The model loads on
the first call, not at construction, so listing judges stays cheap.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any, Literal

from pasture.errors import JudgeError
from pasture.providers import register_provider
from pasture.providers._common import check_decoding, short, stop_list
from pasture.providers.base import ChatRequest, Completion, PermanentError, TransientError
from pasture.providers.pricing import Price


@register_provider("llama_cpp")
class LlamaCppProvider:
    """Completions from a local GGUF file.

    Parameters
    ----------
    model_path:
        The GGUF file; its SHA-256 is the fingerprint's ``weights_digest``.
    model:
        Model id in the fingerprint; default: the file name.
    n_ctx:
        Context window in tokens; a prompt longer than it is a :class:`PermanentError`.
    n_threads:
        CPU threads (None: llama.cpp's default).
    endpoint:
        ``"chat"`` (the GGUF's chat template) or ``"completions"`` (message contents joined by blank lines).
    """

    name = "llama_cpp"

    def __init__(
        self,
        model_path: str | Path,
        *,
        model: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        endpoint: Literal["chat", "completions"] = "chat",
    ) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise JudgeError(f"GGUF file not found: {self.model_path}")
        if endpoint not in ("chat", "completions"):
            raise JudgeError(f"endpoint must be 'chat' or 'completions', not {endpoint!r}")
        self.model = model or self.model_path.name
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.endpoint = endpoint
        self._llama: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LlamaCppProvider(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the loaded model and its lock: a copy (e.g. in a Ray worker) loads the same
        model file itself, on first use."""
        state = dict(self.__dict__)
        state["_llama"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        from pasture.local_models import file_digest

        return {"model": self.model, "weights_digest": file_digest(self.model_path)}

    def price(self) -> Price:
        return Price(0.0, 0.0)

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise PermanentError("llama-cpp-python is not installed: pip install 'pasture[local]'") from None
            self._llama = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                logits_all=True,
                verbose=False,
            )
        return self._llama

    def _call(self, request: ChatRequest) -> tuple[dict[str, Any], float]:
        d = request.decoding
        kwargs: dict[str, Any] = {
            "max_tokens": d.get("max_tokens", 512),
            "temperature": d.get("temperature", 1.0),
            "top_p": d.get("top_p", 1.0),
            "seed": d.get("seed"),
            "stop": stop_list(d.get("stop")),
        }
        if "top_k" in d:
            kwargs["top_k"] = d["top_k"]
        for key in ("presence_penalty", "frequency_penalty"):
            if key in d:
                kwargs[key] = d[key]
        want_logprobs = bool(d.get("logprobs")) or bool(d.get("top_logprobs"))
        with self._lock:
            llama = self._load()
            start = time.perf_counter()
            if self.endpoint == "chat":
                if want_logprobs:
                    kwargs["logprobs"] = True
                    kwargs["top_logprobs"] = int(d.get("top_logprobs") or 1)
                result = llama.create_chat_completion(messages=[dict(m) for m in request.messages], **kwargs)
            else:
                if want_logprobs:
                    kwargs["logprobs"] = int(d.get("top_logprobs") or 1)
                prompt = "\n\n".join(m["content"] for m in request.messages)
                result = llama.create_completion(prompt=prompt, **kwargs)
            return result, time.perf_counter() - start

    async def complete(self, request: ChatRequest) -> Completion:
        check_decoding(request.decoding)
        try:
            result, latency = await asyncio.to_thread(self._call, request)
        except PermanentError:
            raise
        except ValueError as exc:  # llama-cpp-python: prompt longer than the context, bad arguments
            raise PermanentError(f"llama.cpp refused the request: {short(exc)}") from None
        except RuntimeError as exc:  # decode failures inside llama.cpp
            raise TransientError(f"llama.cpp failed: {short(exc)}") from None
        choice = result["choices"][0]
        if self.endpoint == "chat":
            text = (choice.get("message") or {}).get("content") or ""
            lp = choice.get("logprobs") or {}
            top = tuple(
                {str(a["token"]): float(a["logprob"]) for a in pos.get("top_logprobs") or []}
                for pos in lp.get("content") or []
            )
        else:
            text = choice.get("text") or ""
            lp = choice.get("logprobs") or {}
            top = tuple({str(t): float(v) for t, v in (pos or {}).items()} for pos in lp.get("top_logprobs") or [])
        usage = result.get("usage") or {}
        return Completion(
            text=text,
            top_logprobs=top,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            cost_usd=0.0,
            latency_s=latency,
            raw=json.dumps(result, ensure_ascii=False, default=str),
        )
