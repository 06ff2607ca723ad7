"""Speculative decoding: exactness and speed, in one run (output: bench_speculative.md beside this script).

Part A, the synthetic task (seeded; figures stable across machines up to float rounding): the target is the
synthetic task's SFT model (tiny Llama, 128 wide, 2 layers) and the draft a smaller one (32 wide, 1 layer), both
trained here on the same mediocre demonstrations; SpecDec++'s head is trained on target samples. Sampling at
temperature 1 on held-out prompts: target passes per token against discarded draft tokens per token, for fixed
K ∈ {2, 4, 8} and for SpecDec++ at the paper's untuned h = 0.3.

Part B, SmolLM2-135M-Instruct (de-quantised from the bundled GGUF, float32, CPU) as the target; the draft is its
own first ``draft_layers`` layers (self-speculative, untrained). Greedy: (1) exactness — speculative output against
plain greedy output token for token, each mismatch shown with the target's top-2 logit gap at the first
divergence; (2) speed — plain decoding (transformers' generate), fixed K, transformers' assisted generation with
the same draft, and SpecDec++ with a head trained here, as tokens/s ratios to plain decoding in the same run.

Run: ``PYTHONPATH=src python benchmarks/bench_speculative.py [--part a|b|all] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from pasture.speculative.decode import FixedK, SpecDecPP, SpeculativeStats, plain_generate, speculative_generate
from pasture.speculative.head import layer_draft
from pasture.train.acceptance_head import train_acceptance_head
from pasture.train.core import generate, set_seed
from pasture.train.registry import AcceptanceHeadSettings, TrainSettings

HERE = Path(__file__).parent
SEED = 0


def fmt(stats: SpeculativeStats) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in stats.summary().items()}


def part_a(quick: bool) -> dict[str, Any]:
    from pasture.train.sft import train_sft
    from pasture.train.synthetic import MAX_RESPONSE_TOKENS, demonstrations, make_prompts, task_tokenizer
    from pasture.train.tiny import tiny_llama

    set_seed(SEED)
    tok = task_tokenizer()
    prompts = make_prompts(300 if quick else 2000, seed=SEED + 1)
    demos = demonstrations(prompts, seed=SEED + 2)
    steps = 30 if quick else 300
    optim = TrainSettings(lr=3e-3, batch_size=64, steps=steps).optim()
    t0 = time.perf_counter()
    target, _ = train_sft(tiny_llama(tok, seed=SEED), tok, prompts, demos, optim=optim, seed=SEED)
    small = tiny_llama(tok, hidden_size=32, layers=1, heads=2, intermediate_size=64, seed=SEED + 1)
    draft, _ = train_sft(small, tok, prompts, demos, optim=optim, seed=SEED)
    target.eval()
    draft.eval()
    sft_s = time.perf_counter() - t0
    head_prompts = make_prompts(200 if quick else 1000, seed=SEED + 21)
    gens = generate(target, tok, head_prompts, max_new_tokens=MAX_RESPONSE_TOKENS, temperature=1.0, seed=SEED + 3)
    seqs = [list(g[0].prompt_ids) + list(g[0].response_ids) for g in gens]
    lens = [len(g[0].prompt_ids) for g in gens]
    settings = AcceptanceHeadSettings(draft_share=0.5, temperature=1.0)
    train = TrainSettings(lr=1e-3, batch_size=32, steps=40 if quick else 300, seed=SEED)
    t0 = time.perf_counter()
    head, hstats = train_acceptance_head(target, draft, seqs, lens, settings, train, pad_id=tok.pad_token_id)
    head_s = time.perf_counter() - t0
    eval_prompts = make_prompts(30 if quick else 100, seed=SEED + 31)
    encoded = [tok(p, add_special_tokens=False)["input_ids"] for p in eval_prompts]
    rows: dict[str, Any] = {}
    policies: dict[str, Any] = {f"fixed K={k}": FixedK(k) for k in (2, 4, 8)}
    policies["SpecDec++ h=0.3"] = SpecDecPP()
    torch.set_num_threads(1)
    plain = SpeculativeStats()
    for i, ids in enumerate(encoded):
        plain += plain_generate(
            target, ids, max_new_tokens=MAX_RESPONSE_TOKENS, temperature=1.0, eos_token_id=tok.eos_token_id, seed=i
        ).stats
    rows["plain"] = fmt(plain)
    for name, policy in policies.items():
        total = SpeculativeStats()
        for i, ids in enumerate(encoded):
            total += speculative_generate(
                target,
                draft,
                ids,
                max_new_tokens=MAX_RESPONSE_TOKENS,
                policy=policy,
                temperature=1.0,
                eos_token_id=tok.eos_token_id,
                seed=i,
                head=head if isinstance(policy, SpecDecPP) else None,
            ).stats
        rows[name] = fmt(total)
    return {
        "sft_s": round(sft_s, 1),
        "head_train_s": round(head_s, 1),
        "head_stats": {k: round(v, 4) for k, v in hstats.metrics.items()},
        "head_steps": hstats.steps,
        "n_eval_prompts": len(encoded),
        "rows": rows,
    }


def _chat_ids(tok: Any, instruction: str) -> list[int]:
    text = tok.apply_chat_template(
        [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
    )
    return list(tok(text, add_special_tokens=False)["input_ids"])


def part_b(quick: bool, draft_layers: int) -> dict[str, Any]:
    from pasture.evalsets import resolve_eval_set
    from pasture.train.models import load_policy

    t0 = time.perf_counter()
    target, tok = load_policy("smollm2", cache_dir=Path("/tmp/pasture-smollm2-f32"))
    target.eval()
    load_s = time.perf_counter() - t0
    draft = layer_draft(target, draft_layers)
    instructions = [i.instruction for i in resolve_eval_set("demo").instructions]
    head_instr, eval_instr = instructions[:60], instructions[60:]
    n_eval = 4 if quick else 12
    max_new = 32 if quick else 64
    eos = tok.eos_token_id
    # the head: greedy target responses to 60 instructions not used below
    settings = AcceptanceHeadSettings(draft_layers=draft_layers, temperature=0.0, max_new_tokens=max_new)
    t0 = time.perf_counter()
    gens = generate(
        target, tok, head_instr[: 16 if quick else 60], max_new_tokens=max_new, temperature=0.0, batch_size=8
    )
    seqs = [list(g[0].prompt_ids) + list(g[0].response_ids) for g in gens]
    lens = [len(g[0].prompt_ids) for g in gens]
    train = TrainSettings(lr=1e-3, batch_size=4, steps=10 if quick else 120, seed=SEED)
    head, hstats = train_acceptance_head(target, draft, seqs, lens, settings, train, pad_id=int(tok.pad_token_id))
    head_s = time.perf_counter() - t0
    encoded = [_chat_ids(tok, s) for s in eval_instr[:n_eval]]

    # exactness: plain greedy (transformers' generate) against speculative greedy, token for token
    mismatches: list[dict[str, Any]] = []
    plain_time = 0.0
    plain_tokens = 0
    plain_outputs = []
    for ids in encoded:
        t1 = time.perf_counter()
        with torch.no_grad():
            out = target.generate(
                torch.tensor([ids]), max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id
            )
        plain_time += time.perf_counter() - t1
        new = out[0, len(ids) :].tolist()
        plain_tokens += len(new)
        plain_outputs.append(new)
    rows: dict[str, Any] = {
        "plain (transformers generate)": {
            "tokens": plain_tokens,
            "tokens_per_s": plain_tokens / plain_time,
            "ratio": 1.0,
        }
    }
    runs: dict[str, Any] = {"fixed K=2": FixedK(2), "fixed K=4": FixedK(4), "SpecDec++ h=0.3": SpecDecPP()}
    for name, policy in runs.items():
        total = SpeculativeStats()
        for ids, ref in zip(encoded, plain_outputs, strict=True):
            res = speculative_generate(
                target, draft, ids, max_new_tokens=max_new, policy=policy, eos_token_id=eos,
                head=head if isinstance(policy, SpecDecPP) else None,
            )  # fmt: skip
            total += res.stats
            got = list(res.tokens)
            if got != ref:
                j = next((k for k, (a, b) in enumerate(zip(got, ref, strict=False)) if a != b), min(len(got), len(ref)))
                with torch.no_grad():
                    logits = target(torch.tensor([ids + ref[:j]])).logits[0, -1]
                top = logits.topk(2).values
                mismatches.append({"run": name, "position": j, "top2_logit_gap": float(top[0] - top[1])})
        row = fmt(total)
        row["ratio"] = round(total.tokens_per_s / rows["plain (transformers generate)"]["tokens_per_s"], 3)
        rows[name] = row
    # transformers' assisted generation with the same draft
    t1 = time.perf_counter()
    n_tok = 0
    assisted_mismatch = 0
    for ids, ref in zip(encoded, plain_outputs, strict=True):
        with torch.no_grad():
            out = target.generate(
                torch.tensor([ids]), assistant_model=draft, max_new_tokens=max_new, do_sample=False,
                pad_token_id=tok.pad_token_id,
            )  # fmt: skip
        new = out[0, len(ids) :].tolist()
        n_tok += len(new)
        assisted_mismatch += new != ref
    dt = time.perf_counter() - t1
    rows["assisted (transformers)"] = {
        "tokens": n_tok,
        "tokens_per_s": n_tok / dt,
        "ratio": round(n_tok / dt / rows["plain (transformers generate)"]["tokens_per_s"], 3),
        "outputs_differing_from_plain": assisted_mismatch,
    }
    return {
        "load_s": round(load_s, 1),
        "draft_layers": draft_layers,
        "target_layers": int(target.config.num_hidden_layers),
        "head_train_s": round(head_s, 1),
        "head_steps": hstats.steps,
        "head_stats": {k: round(v, 4) for k, v in hstats.metrics.items()},
        "n_eval_prompts": len(encoded),
        "max_new_tokens": max_new,
        "threads": torch.get_num_threads(),
        "rows": rows,
        "mismatches": mismatches,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["a", "b", "all"], default="all")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--draft-layers", type=int, default=AcceptanceHeadSettings().draft_layers)
    args = ap.parse_args()
    result: dict[str, Any] = {"quick": args.quick, "seed": SEED, "torch": torch.__version__}
    if args.part in ("a", "all"):
        result["synthetic"] = part_a(args.quick)
        print(json.dumps(result["synthetic"], indent=1), flush=True)
    if args.part in ("b", "all"):
        torch.set_num_threads(2)
        result["smollm2"] = part_b(args.quick, args.draft_layers)
        print(json.dumps(result["smollm2"], indent=1), flush=True)
    name = f"bench_speculative_{args.part}{'_quick' if args.quick else ''}.json"
    (HERE / name).write_text(json.dumps(result, indent=1, sort_keys=True), encoding="utf-8")
    _ = (replace, sys)


if __name__ == "__main__":
    main()
