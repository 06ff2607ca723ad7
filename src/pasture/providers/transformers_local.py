"""``transformers``: a Hugging Face causal LM (hub id or local folder) run in this process.

``trust_remote_code`` is off unless the user turns it on: a checkpoint's own Python code never runs
by default. The fingerprint's ``weights_digest`` is a SHA-256 over the checkpoint folder's files (weights,
config, tokenizer, chat template), so any change to what produces the verdict changes the judge. Calls
block, so they run in a worker thread under one lock per provider; the model loads on the first call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pasture.errors import JudgeError
from pasture.providers import register_provider
from pasture.providers._common import check_decoding, short, stop_list
from pasture.providers.base import ChatRequest, Completion, PermanentError
from pasture.providers.pricing import Price

SKIPPED_SUFFIXES = frozenset({".md", ".lock", ".gitattributes"})
"""Files that cannot change a verdict and are left out of the weights digest (READMEs, locks)."""


@lru_cache(maxsize=4096)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, cached by (path, size, mtime) so an edited file is hashed again."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_digest(folder: Path) -> str:
    """SHA-256 over (relative path, SHA-256 of the file) for every file of a checkpoint folder, sorted."""
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel or path.suffix in SKIPPED_SUFFIXES or path.name in SKIPPED_SUFFIXES:
            continue
        st = path.stat()
        entries.append([rel, _file_sha256(str(path), st.st_size, st.st_mtime_ns)])
    if not entries:
        raise JudgeError(f"no files in checkpoint folder {folder}")
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()


@register_provider("transformers")
class TransformersProvider:
    """Completions from a transformers causal LM on CPU or GPU.

    Parameters
    ----------
    model:
        A local checkpoint folder or a Hugging Face hub id (downloaded to the HF cache on first use unless
        ``local_files_only``).
    revision:
        Hub revision (branch, tag or commit) when ``model`` is a hub id.
    trust_remote_code:
        Run the checkpoint's own modelling code. Off by default; turn on only for checkpoints you trust.
    local_files_only:
        Never touch the network (the checkpoint must be in a folder or the HF cache).
    device:
        Torch device, e.g. ``"cpu"`` or ``"cuda"``.
    dtype:
        Torch dtype name (``"float32"``, ``"bfloat16"``, ...); None: the checkpoint's default.
    endpoint:
        ``"chat"`` applies the tokenizer's chat template; ``"completions"`` joins message contents.
    """

    name = "transformers"

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        trust_remote_code: bool = False,
        local_files_only: bool = False,
        device: str = "cpu",
        dtype: str | None = None,
        endpoint: Literal["chat", "completions"] = "chat",
    ) -> None:
        if endpoint not in ("chat", "completions"):
            raise JudgeError(f"endpoint must be 'chat' or 'completions', not {endpoint!r}")
        self.model = model
        self.revision = revision
        self.trust_remote_code = bool(trust_remote_code)
        self.local_files_only = bool(local_files_only)
        self.device = device
        self.dtype = dtype
        self.endpoint = endpoint
        self._folder: Path | None = None
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TransformersProvider(model={self.model!r}, revision={self.revision!r}, device={self.device!r})"

    def folder(self) -> Path:
        """The checkpoint folder (a hub id is resolved through the HF cache, downloading if allowed)."""
        if self._folder is None:
            local = Path(self.model).expanduser()
            if local.is_dir():
                self._folder = local
            else:
                from huggingface_hub import snapshot_download

                try:
                    self._folder = Path(
                        snapshot_download(self.model, revision=self.revision, local_files_only=self.local_files_only)
                    )
                except Exception as exc:  # hub errors are many and version-dependent
                    raise JudgeError(f"cannot resolve checkpoint {self.model!r}: {short(exc)}") from None
        return self._folder

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the loaded model and its lock: a copy (e.g. in a Ray worker) loads the same
        checkpoint itself, on first use."""
        state = dict(self.__dict__)
        state["_loaded"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        return {"model": self.model, "weights_digest": folder_digest(self.folder())}

    def price(self) -> Price:
        return Price(0.0, 0.0)

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError:
                raise PermanentError("transformers and torch are needed: pip install transformers torch") from None
            folder = str(self.folder())
            tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=self.trust_remote_code)
            kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
            if self.dtype is not None:
                kwargs["dtype"] = getattr(torch, self.dtype)
            model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
            model = model.to(self.device)  # type: ignore[arg-type]
            model.eval()
            self._loaded = (tok, model)
        return self._loaded

    def _call(self, request: ChatRequest) -> tuple[str, tuple[dict[str, float], ...], int, int, float]:
        import torch

        d = request.decoding
        with self._lock:
            tok, model = self._load()
            if self.endpoint == "chat":
                if not getattr(tok, "chat_template", None):
                    raise PermanentError(f"{self.model} has no chat template; use endpoint='completions'")
                prompt = tok.apply_chat_template(
                    [dict(m) for m in request.messages], tokenize=False, add_generation_prompt=True
                )
            else:
                prompt = "\n\n".join(m["content"] for m in request.messages)
            ids = tok(prompt, return_tensors="pt", add_special_tokens=self.endpoint != "chat").to(self.device)
            temperature = float(d.get("temperature", 1.0))
            gen: dict[str, Any] = {
                "max_new_tokens": int(d.get("max_tokens", 512)),
                "do_sample": temperature > 0,
                "return_dict_in_generate": True,
                "output_logits": True,
                "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            }
            if temperature > 0:
                gen["temperature"] = temperature
                gen["top_p"] = float(d.get("top_p", 1.0))
                gen["top_k"] = int(d.get("top_k", 0))
            stops = stop_list(d.get("stop"))
            if stops:
                gen["stop_strings"] = stops
                gen["tokenizer"] = tok
            if d.get("seed") is not None:
                torch.manual_seed(int(d["seed"]))
            start = time.perf_counter()
            with torch.no_grad():
                out = model.generate(**ids, **gen)
            latency = time.perf_counter() - start
            n_prompt = int(ids["input_ids"].shape[1])
            new = out.sequences[0, n_prompt:]
            text = tok.decode(new, skip_special_tokens=True)
            k = int(d.get("top_logprobs") or 0) if (d.get("logprobs") or d.get("top_logprobs")) else 0
            top: list[dict[str, float]] = []
            if k:
                for logits in out.logits:
                    logprobs = torch.log_softmax(logits[0].float(), dim=-1)
                    values, indices = logprobs.topk(k)
                    top.append({tok.decode([int(i)]): float(v) for v, i in zip(values, indices, strict=True)})
            return text, tuple(top), n_prompt, int(new.shape[0]), latency

    async def complete(self, request: ChatRequest) -> Completion:
        check_decoding(request.decoding)
        try:
            text, top, n_prompt, n_new, latency = await asyncio.to_thread(self._call, request)
        except (PermanentError, JudgeError):
            raise
        except (ValueError, RuntimeError, TypeError) as exc:
            raise PermanentError(f"transformers refused the request: {short(exc)}") from None
        raw = json.dumps({"text": text, "top_logprobs": list(top)}, ensure_ascii=False)
        return Completion(
            text=text,
            top_logprobs=top,
            prompt_tokens=n_prompt,
            completion_tokens=n_new,
            cost_usd=0.0,
            latency_s=latency,
            raw=raw,
        )
