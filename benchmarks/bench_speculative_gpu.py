"""PREPARED FOR A GPU, NEVER RUN ON ONE: no GPU was lent when this was written. Only ``--smoke`` (a tiny model on
the CPU) has run, to check that the script goes through; it measures nothing. The figures in docs/generate.md come
from bench_speculative.py on a CPU.

The same table as bench_speculative.py part B (greedy; plain transformers ``generate``, pasture's plain loop,
fixed K = 2 and 4, transformers' assisted generation with the same draft, SpecDec++ at h = 0.3; every method on
each prompt back to back; tokens/s as ratios to plain decoding in the same run; each output differing from plain
greedy with the target's top-2 logit gap), on a pair as large as the GPU holds. The device machine downloads
nothing and takes at most 64 MiB of files, so:

- the target is a **random-init** Llama built from a config (``--preset``, default ``8b``: 4096 wide, 32 layers,
  SmolLM2's 49 152-token vocabulary), in bfloat16;
- the draft is its own first ``--draft-layers`` layers (self-speculative), as in part B;
- prompts are seeded random token ids (no tokenizer is needed: everything runs on ids).

Random weights make the *timing* real (same shapes and kernels as a trained model) but not the *acceptance*: a
random model's later layers move the output as much as its first ones do, so an early exit rarely agrees with it.
``--late-scales`` scales the output projections (``o_proj``, ``down_proj``) of the layers the draft lacks; at 1.0
the pair is purely random, and at a small scale the late layers barely change the output, so the draft agrees
often. One table per scale. The acceptance rate reached is in every row; read each speed-up together with it.

SpecDec++'s head is trained here for ``--head-steps`` steps on greedy target continuations of other random prompts
(labels 0/1 at temperature 0), then kept on the CPU (it sees one hidden state per drafted token).

Run on the device (writes ``--out``, default ``$OUT/bench_speculative_gpu.json`` when ``$OUT`` is set):
``PYTHONPATH=src python benchmarks/bench_speculative_gpu.py``; check the logic anywhere with ``--smoke``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from bench_speculative import SEED, log, machine, speed_table
from pasture.speculative.head import layer_draft
from pasture.train.acceptance_head import train_acceptance_head
from pasture.train.registry import AcceptanceHeadSettings, TrainSettings

PRESETS: dict[str, dict[str, int]] = {
    "smoke": {"hidden": 64, "intermediate": 128, "layers": 4, "heads": 4, "kv_heads": 2, "vocab": 256},
    "1b": {"hidden": 2048, "intermediate": 8192, "layers": 16, "heads": 32, "kv_heads": 8, "vocab": 49152},
    "8b": {"hidden": 4096, "intermediate": 14336, "layers": 32, "heads": 32, "kv_heads": 8, "vocab": 49152},
}
"""Llama shapes: ``1b`` about 1.2 B parameters, ``8b`` about 7.4 B (Llama-3-8B's body with SmolLM2's vocabulary)."""


def random_llama(preset: dict[str, int], device: torch.device, dtype: torch.dtype) -> Any:
    """A random-init Llama built on ``device`` (seeded)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=preset["vocab"],
        hidden_size=preset["hidden"],
        intermediate_size=preset["intermediate"],
        num_hidden_layers=preset["layers"],
        num_attention_heads=preset["heads"],
        num_key_value_heads=preset["kv_heads"],
        max_position_embeddings=4096,
        bos_token_id=None,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,  # tied, a random model mostly repeats its last token and any draft agrees
    )
    torch.manual_seed(SEED)
    with device:
        model = LlamaForCausalLM(config).to(dtype)
    return model.eval()


@torch.no_grad()
def scale_late_layers(target: Any, first: int, scale: float, originals: dict[str, torch.Tensor]) -> None:
    """Set the output projections of layers ``first..`` to ``scale`` × their original weights."""
    for i, layer in enumerate(target.model.layers):
        if i < first:
            continue
        for name, lin in (("o", layer.self_attn.o_proj), ("down", layer.mlp.down_proj)):
            key = f"{i}.{name}"
            if key not in originals:
                originals[key] = lin.weight.detach().clone()
            lin.weight.copy_(originals[key] * scale)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(PRESETS), default="8b")
    ap.add_argument("--draft-layers", type=int, default=4)
    ap.add_argument("--late-scales", default="1.0,0.05", help="comma-separated; one table per scale")
    ap.add_argument("--prompts", type=int, default=10)
    ap.add_argument("--prompt-len", type=int, default=48)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--head-prompts", type=int, default=32)
    ap.add_argument("--head-steps", type=int, default=60)
    ap.add_argument("--smoke", action="store_true", help="tiny model on the CPU, 2 prompts: checks the script only")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.smoke:
        args.preset, args.prompts, args.max_new, args.head_prompts, args.head_steps = "smoke", 2, 8, 4, 2
        args.draft_layers, args.prompt_len = 1, 8
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type != "cuda" and not args.smoke:
        raise SystemExit("no CUDA device: this script times a large pair on a GPU (use --smoke to check it on a CPU)")
    out = args.out or Path(os.environ.get("OUT", Path(__file__).parent)) / "bench_speculative_gpu.json"
    preset = PRESETS[args.preset]
    result: dict[str, Any] = {"args": vars(args) | {"out": str(out)}}
    result["machine"] = machine() | (
        {"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda} if device.type == "cuda" else {}
    )
    t0 = time.perf_counter()
    target = random_llama(preset, device, dtype)
    with device:  # the draft is allocated where the target lives
        draft = layer_draft(target, args.draft_layers)
    result["build_s"] = round(time.perf_counter() - t0, 1)
    result["target_params"] = sum(p.numel() for p in target.parameters())
    result["draft_params"] = sum(p.numel() for p in draft.parameters())
    log(f"built target ({result['target_params'] / 1e9:.2f} B) and draft in {result['build_s']} s on {device}")
    g = torch.Generator().manual_seed(SEED)
    vocab = preset["vocab"]

    def prompts(n: int) -> list[list[int]]:
        return [[int(x) for x in torch.randint(3, vocab, (args.prompt_len,), generator=g)] for _ in range(n)]

    head_prompts, eval_prompts = prompts(args.head_prompts), prompts(args.prompts)
    originals: dict[str, torch.Tensor] = {}
    tables: dict[str, Any] = {}
    for scale in (float(x) for x in args.late_scales.split(",")):
        scale_late_layers(
            target, args.draft_layers, scale, originals
        )  # the draft (a copy of layers < first) is unchanged
        t0 = time.perf_counter()
        with torch.no_grad():  # equal-length prompts: one batch, no padding; no EOS so every row is full
            ids = torch.tensor(head_prompts, device=device)
            rows = target.generate(ids, max_new_tokens=args.max_new, do_sample=False, eos_token_id=None, pad_token_id=0)
        seqs = rows.cpu().tolist()
        settings = AcceptanceHeadSettings(draft_layers=args.draft_layers, temperature=0.0, max_new_tokens=args.max_new)
        train = TrainSettings(lr=1e-3, batch_size=4, steps=args.head_steps, seed=SEED)
        head, hstats = train_acceptance_head(
            target, draft, seqs, [args.prompt_len] * len(seqs), settings, train, pad_id=0
        )
        head_s = time.perf_counter() - t0
        log(f"scale {scale}: head trained in {head_s:.0f} s (mean label {hstats.metrics['mean_label']:.3f})")
        table = speed_table(
            target, draft, head, eval_prompts, eval_prompts[0][:16],
            max_new=args.max_new, eos=2, pad=0, label=f"scale {scale}",
        )  # fmt: skip
        tables[str(scale)] = {
            "head_train_s": round(head_s, 1),
            "head_stats": {k: round(v, 4) for k, v in hstats.metrics.items()},
        } | table
    result["tables"] = tables
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=True), encoding="utf-8")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
