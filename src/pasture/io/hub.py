"""Fetching AlpacaEval's public files from the Hugging Face hub, with a clear way out when offline."""

from __future__ import annotations

from pathlib import Path

from pasture.errors import InputError

ALPACA_EVAL_REPO = "tatsu-lab/alpaca_eval"
"""The hub dataset holding AlpacaEval's eval set, instruction difficulty and gamed-baseline annotations."""

HUB_FILES = {
    "eval_set": "alpaca_eval_gpt4_baseline.json",
    "instruction_difficulty": "instruction_difficulty.csv",
    "gamed_baselines": "df_gamed.csv",
}


def fetch_alpaca_eval_file(kind: str, *, revision: str | None = None) -> Path:
    """Download (or take from the local hub cache) one of AlpacaEval's public files and return its path.

    ``kind`` is a key of :data:`HUB_FILES`. Offline, or without ``huggingface_hub``, this raises an
    :class:`InputError` that says which local file to pass instead.
    """
    if kind not in HUB_FILES:
        raise InputError(f"unknown AlpacaEval hub file {kind!r}; known: {', '.join(HUB_FILES)}")
    filename = HUB_FILES[kind]
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise InputError(
            f"cannot fetch {filename} from the hub: huggingface_hub is not installed; "
            "pass a local copy of the file instead"
        ) from None
    try:
        return Path(hf_hub_download(ALPACA_EVAL_REPO, filename, repo_type="dataset", revision=revision))
    except Exception as exc:  # network, auth and cache errors all mean the same thing to the user
        raise InputError(
            f"cannot fetch {filename} from the Hugging Face hub dataset {ALPACA_EVAL_REPO} "
            f"({type(exc).__name__}); pass a local copy of the file instead "
            "(for the eval set, e.g. results/gpt4_1106_preview/model_outputs.json.gz from AlpacaEval's repository)"
        ) from None
