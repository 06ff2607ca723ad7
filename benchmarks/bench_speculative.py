"""Speculative decoding: exactness and speed, in one run (output: bench_speculative_*.json beside this script).

Part A, the synthetic task (seeded; figures stable across machines up to float rounding): the target is the
synthetic task's SFT model (tiny Llama, 128 wide, 2 layers) and the draft a smaller one (32 wide, 1 layer), both
trained here on the same mediocre demonstrations; SpecDec++'s head is trained on target samples. Sampling at
temperature 1 on held-out prompts: target passes per token against discarded draft tokens per token, for fixed
K ∈ {2, 4, 8} and for SpecDec++ at the paper's untuned h = 0.3.

Part B, SmolLM2-135M-Instruct (de-quantised from the bundled GGUF, float32, CPU) as the target; the draft is its
own first ``draft_layers`` layers (self-speculative, untrained). Greedy: (1) exactness — speculative output against
plain greedy output token for token, each mismatch shown with the target's top-2 logit gap at the first
divergence; (2) speed — plain decoding (transformers' generate, and pasture's own cached loop), fixed K = 2 and 4,
transformers' assisted generation with the same draft, and SpecDec++ with a head trained here, as tokens/s and
CPU-s/token ratios to transformers' plain decoding. All methods run on each prompt back to back, in an order rotated
per prompt, so load changes on a shared machine hit them alike; one torch thread (see ``main``).

Diagnostic (``--part depth``): how often a first-N-layers early exit of SmolLM2 agrees with the full model's greedy
token, for N from 4 to 29, on the target's own greedy responses; it explains part B's acceptance rate.

Run: ``PYTHONPATH=src python benchmarks/bench_speculative.py [--part a|b|depth|all] [--size quick|full]``; it
writes ``bench_speculative_<part>[_<size>].json`` beside itself (sizes: ``SIZES``; ``full`` is the default).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
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

SIZES: dict[str, dict[str, dict[str, int]]] = {
    "quick": {
        "a": {"train_prompts": 300, "sft_steps": 30, "head_prompts": 200, "head_steps": 40, "eval_prompts": 30},
        "b": {"head_prompts": 8, "head_steps": 4, "eval_prompts": 2, "max_new_tokens": 16},
    },
    "full": {
        "a": {"train_prompts": 2000, "sft_steps": 300, "head_prompts": 1000, "head_steps": 300, "eval_prompts": 100},
        "b": {"head_prompts": 24, "head_steps": 30, "eval_prompts": 24, "max_new_tokens": 32},
    },
}
"""Named run sizes (``--size``); the committed JSON records which one produced it. Part B's "full" is small on
purpose: on the shared 2-core CPU one SmolLM2 token step costs ~0.07 CPU-s on one thread (measured), each prompt
runs six methods, and the head's training passes cover whole batches; it fits in ~20 minutes there."""


def log(msg: str) -> None:
    """Progress on stderr (the runs are long on a shared CPU)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt(stats: SpeculativeStats) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in stats.summary().items()}


def part_a(size: dict[str, int]) -> dict[str, Any]:
    from pasture.train.sft import train_sft
    from pasture.train.synthetic import MAX_RESPONSE_TOKENS, demonstrations, make_prompts, task_tokenizer
    from pasture.train.tiny import tiny_llama

    set_seed(SEED)
    tok = task_tokenizer()
    prompts = make_prompts(size["train_prompts"], seed=SEED + 1)
    demos = demonstrations(prompts, seed=SEED + 2)
    steps = size["sft_steps"]
    optim = TrainSettings(lr=3e-3, batch_size=64, steps=steps).optim()
    t0 = time.perf_counter()
    target, _ = train_sft(tiny_llama(tok, seed=SEED), tok, prompts, demos, optim=optim, seed=SEED)
    small = tiny_llama(tok, hidden_size=32, layers=1, heads=2, intermediate_size=64, seed=SEED + 1)
    draft, _ = train_sft(small, tok, prompts, demos, optim=optim, seed=SEED)
    target.eval()
    draft.eval()
    sft_s = time.perf_counter() - t0
    log(f"part A: SFT of target and draft done in {sft_s:.0f} s")
    head_prompts = make_prompts(size["head_prompts"], seed=SEED + 21)
    gens = generate(target, tok, head_prompts, max_new_tokens=MAX_RESPONSE_TOKENS, temperature=1.0, seed=SEED + 3)
    seqs = [list(g[0].prompt_ids) + list(g[0].response_ids) for g in gens]
    lens = [len(g[0].prompt_ids) for g in gens]
    settings = AcceptanceHeadSettings(draft_share=0.5, temperature=1.0)
    train = TrainSettings(lr=1e-3, batch_size=32, steps=size["head_steps"], seed=SEED)
    t0 = time.perf_counter()
    head, hstats = train_acceptance_head(target, draft, seqs, lens, settings, train, pad_id=tok.pad_token_id)
    head_s = time.perf_counter() - t0
    log(f"part A: head trained in {head_s:.0f} s (mean label {hstats.metrics['mean_label']:.3f})")
    eval_prompts = make_prompts(size["eval_prompts"], seed=SEED + 31)
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
        log(f"part A: {name}: {rows[name]}")
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


NEAR_TIE = 1e-3
"""A greedy mismatch counts as a near-tie when the target's top-2 logit gap at the first divergence is below this
(fixed before any run, not tuned). Each mismatch also records how far the same logits move when the target merely
runs a longer chunk (``logit_shift_longer_chunk``): the scale of float32 rounding the gap is compared with."""


class PassCounter:
    """Counts forward calls of a model's decoder body: our loop and transformers' ``generate`` both call it once
    per forward pass, so target and draft passes are counted the same way for every method."""

    def __init__(self, model: Any) -> None:
        self.n = 0
        self.handle = model.get_decoder().register_forward_hook(self._hook)

    def _hook(self, *_: Any) -> None:
        self.n += 1


def _first_divergence(got: list[int], ref: list[int]) -> int:
    return next((k for k, (a, b) in enumerate(zip(got, ref, strict=False)) if a != b), min(len(got), len(ref)))


@torch.no_grad()
def _tie_evidence(target: Any, ids: list[int], ref: list[int], got: list[int], j: int) -> dict[str, Any]:
    """At the first divergence ``j``: the target's top-2 logit gap after ``ids + ref[:j]`` (one uncached pass),
    and how much those same logits move when the pass also covers the next few speculative tokens (a chunk
    shape the verification pass uses); a mismatch is explained by rounding when the gap is of that order."""
    prefix = ids + ref[:j]
    device = next(target.parameters()).device
    logits = target(torch.tensor([prefix], device=device)).logits[0, -1].float()
    top = logits.topk(2)
    longer = target(torch.tensor([prefix + got[j : j + 4]], device=device)).logits[0, len(prefix) - 1].float()
    return {
        "position": j,
        "top2_logit_gap": float(top.values[0] - top.values[1]),
        "top2_tokens": [int(t) for t in top.indices],
        "plain_token": ref[j] if j < len(ref) else None,
        "method_token": got[j] if j < len(got) else None,
        "logit_shift_longer_chunk": float((longer - logits).abs().max()),
        "near_tie": float(top.values[0] - top.values[1]) < NEAR_TIE,
    }


def speed_table(
    target: Any,
    draft: Any,
    head: Any,
    encoded: list[list[int]],
    warmup_ids: list[int],
    *,
    max_new: int,
    eos: int,
    pad: int,
    label: str,
) -> dict[str, Any]:
    """Greedy decoding of ``encoded`` by every method, interleaved (each prompt runs all methods back to back, in
    an order rotated per prompt, so load changes hit all methods alike): tokens/s and CPU s/token as ratios to
    transformers' plain ``generate``, passes per token, the speculative counts, and every output that differs
    from plain greedy with its tie evidence."""
    t_passes, d_passes = PassCounter(target), PassCounter(draft)
    last_stats: list[SpeculativeStats] = []
    device = next(target.parameters()).device

    def hf(ids: list[int], assistant: Any = None) -> list[int]:
        kw: dict[str, Any] = {"assistant_model": assistant} if assistant is not None else {}
        with torch.no_grad():
            out = target.generate(
                torch.tensor([ids], device=device),
                max_new_tokens=max_new,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=pad,
                **kw,
            )
        return list(out[0, len(ids) :].tolist())

    def ours(policy: Any) -> Any:
        def run(ids: list[int]) -> list[int]:
            res = speculative_generate(
                target, draft, ids, max_new_tokens=max_new, policy=policy, eos_token_id=eos,
                head=head if isinstance(policy, SpecDecPP) else None,
            )  # fmt: skip
            last_stats.append(res.stats)
            return list(res.tokens)

        return run

    def ours_plain(ids: list[int]) -> list[int]:
        res = plain_generate(target, ids, max_new_tokens=max_new, eos_token_id=eos)
        last_stats.append(res.stats)
        return list(res.tokens)

    plain_name = "plain (transformers generate)"
    methods: dict[str, Any] = {
        plain_name: hf,
        "plain (pasture loop)": ours_plain,
        "fixed K=2": ours(FixedK(2)),
        "fixed K=4": ours(FixedK(4)),
        "assisted (transformers, same draft)": lambda ids: hf(ids, draft),
        "SpecDec++ h=0.3": ours(SpecDecPP()),
    }
    for run in methods.values():  # warm-up (first-call allocations), untimed
        run(warmup_ids)
    names = list(methods)
    per: dict[str, dict[str, Any]] = {
        n: {"tokens": [], "wall": [], "cpu": [], "t_passes": 0, "d_passes": 0, "stats": SpeculativeStats(), "out": []}
        for n in names
    }
    for i, ids in enumerate(encoded):  # interleaved: every method on each prompt, order rotated per prompt
        for name in names[i % len(names) :] + names[: i % len(names)]:
            last_stats.clear()
            t_before, d_before = t_passes.n, d_passes.n
            w0, c0 = time.perf_counter(), time.process_time()
            got = methods[name](ids)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            rec = per[name]
            rec["tokens"].append(len(got))
            rec["wall"].append(wall)
            rec["cpu"].append(cpu)
            rec["t_passes"] += t_passes.n - t_before
            rec["d_passes"] += d_passes.n - d_before
            rec["out"].append(got)
            if last_stats:
                rec["stats"] += last_stats[0]
        log(f"{label}: prompt {i + 1}/{len(encoded)} done")
    t_passes.handle.remove()
    d_passes.handle.remove()

    base = per[plain_name]
    base_tps = sum(base["tokens"]) / sum(base["wall"])
    base_cpt = sum(base["cpu"]) / sum(base["tokens"])
    rows: dict[str, Any] = {}
    mismatches: list[dict[str, Any]] = []
    for name in names:
        rec = per[name]
        n_tok = sum(rec["tokens"])
        tps = n_tok / sum(rec["wall"])
        # per-prompt speed ratio (same prompt, same minute): its spread shows the load noise
        prompt_ratios = sorted(
            (bw / bt) / (w / t) for w, t, bw, bt in zip(rec["wall"], rec["tokens"], base["wall"], base["tokens"], strict=True)
        )  # fmt: skip
        row: dict[str, Any] = {
            "tokens": n_tok,
            "wall_s": round(sum(rec["wall"]), 2),
            "cpu_s": round(sum(rec["cpu"]), 2),
            "tokens_per_s": round(tps, 2),
            "ratio": round(tps / base_tps, 3),
            "cpu_s_per_token": round(sum(rec["cpu"]) / n_tok, 4),
            "cpu_ratio": round(base_cpt / (sum(rec["cpu"]) / n_tok), 3),
            "per_prompt_ratio_q25_median_q75": [
                round(prompt_ratios[int(q * (len(prompt_ratios) - 1))], 3) for q in (0.25, 0.5, 0.75)
            ],
            "target_passes_per_token": round(rec["t_passes"] / n_tok, 4),
            "draft_passes_per_token": round(rec["d_passes"] / n_tok, 4),
        }
        st: SpeculativeStats = rec["stats"]
        if st.drafted:
            row |= {k: round(float(v), 4) for k, v in st.summary().items() if k in SPEC_KEYS}
        differing = 0
        for k, (ids, got, ref) in enumerate(zip(encoded, rec["out"], base["out"], strict=True)):
            if got != ref:
                differing += 1
                j = _first_divergence(got, ref)
                mismatches.append({"run": name, "prompt": k} | _tie_evidence(target, ids, ref, got, j))
        row["outputs_differing_from_plain"] = differing
        rows[name] = row
    return {"rows": rows, "mismatches": mismatches}


def part_b(size: dict[str, int], draft_layers: int) -> dict[str, Any]:
    from pasture.evalsets import resolve_eval_set
    from pasture.train.models import load_policy

    t0 = time.perf_counter()
    target, tok = load_policy("smollm2", cache_dir=Path("/tmp/pasture-smollm2-f32"))
    target.eval()
    load_s = time.perf_counter() - t0
    draft = layer_draft(target, draft_layers)
    instructions = [i.instruction for i in resolve_eval_set("demo").instructions]
    head_instr, eval_instr = instructions[:60], instructions[60:]
    if len(eval_instr) < size["eval_prompts"]:
        raise SystemExit(f"the demo eval set has {len(eval_instr)} instructions after the head's 60; asked for more")
    max_new = size["max_new_tokens"]
    eos = int(tok.eos_token_id)
    pad = int(tok.pad_token_id)
    log(f"part B: SmolLM2 loaded in {load_s:.0f} s; draft = first {draft_layers} of {target.config.num_hidden_layers}")

    # SpecDec++'s head: greedy target responses to instructions not used below
    settings = AcceptanceHeadSettings(draft_layers=draft_layers, temperature=0.0, max_new_tokens=max_new)
    t0 = time.perf_counter()
    gens = generate(
        target, tok, head_instr[: size["head_prompts"]], max_new_tokens=max_new, temperature=0.0, batch_size=8
    )
    seqs = [list(g[0].prompt_ids) + list(g[0].response_ids) for g in gens]
    lens = [len(g[0].prompt_ids) for g in gens]
    train = TrainSettings(lr=1e-3, batch_size=4, steps=size["head_steps"], seed=SEED)
    head, hstats = train_acceptance_head(target, draft, seqs, lens, settings, train, pad_id=pad)
    head_s = time.perf_counter() - t0
    log(f"part B: head trained in {head_s:.0f} s (mean label {hstats.metrics['mean_label']:.3f})")

    encoded = [_chat_ids(tok, s) for s in eval_instr[: size["eval_prompts"]]]
    table = speed_table(
        target, draft, head, encoded, _chat_ids(tok, head_instr[0])[:24],
        max_new=max_new, eos=eos, pad=pad, label="part B",
    )  # fmt: skip
    gc = copy.deepcopy(draft.generation_config)  # what assisted generation used: the draft's, library defaults filled
    gc.update(**gc._get_default_generation_params(), defaults_only=True)
    return {
        "load_s": round(load_s, 1),
        "draft_layers": draft_layers,
        "target_layers": int(target.config.num_hidden_layers),
        "dtype": str(next(target.parameters()).dtype),
        "head_train_s": round(head_s, 1),
        "head_steps": hstats.steps,
        "head_stats": {k: round(v, 4) for k, v in hstats.metrics.items()},
        "n_eval_prompts": len(encoded),
        "max_new_tokens": max_new,
        "threads": torch.get_num_threads(),
        "assisted_settings": {
            "num_assistant_tokens": getattr(gc, "num_assistant_tokens", None),
            "num_assistant_tokens_schedule": getattr(gc, "num_assistant_tokens_schedule", None),
            "assistant_confidence_threshold": getattr(gc, "assistant_confidence_threshold", None),
        },
        "near_tie_threshold": NEAR_TIE,
    } | table


@torch.no_grad()
def draft_depth(n_prompts: int = 8, max_new: int = 32) -> dict[str, Any]:
    """Why part B's draft is poor, and what depth a self-speculative draft would need: how often the first-N-layers
    early exit's argmax equals the full SmolLM2's, on the target's own greedy responses to held-out demo
    instructions (the positions a greedy speculative run drafts). A diagnostic, not a speed run."""
    from pasture.evalsets import resolve_eval_set
    from pasture.train.models import load_policy

    target, tok = load_policy("smollm2", cache_dir=Path("/tmp/pasture-smollm2-f32"))
    target.eval()
    instr = [i.instruction for i in resolve_eval_set("demo").instructions][60 : 60 + n_prompts]
    gens = generate(target, tok, instr, max_new_tokens=max_new, temperature=0.0, batch_size=8)
    seqs = [(list(g[0].prompt_ids) + list(g[0].response_ids), len(g[0].prompt_ids)) for g in gens]
    total = int(target.config.num_hidden_layers)
    agreement: dict[str, float] = {}
    positions = 0
    for n in (4, 8, 12, 16, 20, 24, 28, total - 1):
        draft = layer_draft(target, n)
        agree = positions = 0
        for ids, n_prompt in seqs:
            x = torch.tensor([ids])
            want = target(x).logits[0, n_prompt - 1 : -1].argmax(-1)
            got = draft(x).logits[0, n_prompt - 1 : -1].argmax(-1)
            agree += int((want == got).sum())
            positions += len(want)
        agreement[str(n)] = round(agree / positions, 4)
        log(f"depth: first {n} of {total} layers agree on {agreement[str(n)]:.3f} of {positions} positions")
    return {"target_layers": total, "n_prompts": n_prompts, "positions": positions, "argmax_agreement": agreement}


SPEC_KEYS = ("acceptance_rate", "mean_candidate_length", "discarded_per_token")


def machine() -> dict[str, Any]:
    """Where and when the run happened: the figures are only comparable with this context."""
    import datetime
    import os
    import platform

    import transformers

    model = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor() or "unknown",
    ) if Path("/proc/cpuinfo").is_file() else platform.processor() or "unknown"  # fmt: skip
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "loadavg_1_5_15_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def timed_part(fn: Any, *args: Any) -> dict[str, Any]:
    """Run one part, adding its wall time, this process's CPU time (all threads) and the load average after it."""
    import os

    w0, c0 = time.perf_counter(), time.process_time()
    out: dict[str, Any] = fn(*args)
    out["part_wall_s"] = round(time.perf_counter() - w0, 1)
    out["part_cpu_s"] = round(time.process_time() - c0, 1)
    out["loadavg_1_5_15_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["a", "b", "depth", "all"], default="all")
    ap.add_argument("--size", choices=sorted(SIZES), default="full", help="named sizes: see SIZES")
    ap.add_argument("--quick", action="store_true", help="same as --size quick")
    ap.add_argument("--draft-layers", type=int, default=AcceptanceHeadSettings().draft_layers)
    args = ap.parse_args()
    size = "quick" if args.quick else args.size
    ran = {"a": ["a"], "b": ["b"], "depth": [], "all": ["a", "b"]}[args.part]
    sizes = {k: v for k, v in SIZES[size].items() if k in ran}
    result: dict[str, Any] = {"size": size, "sizes": sizes, "seed": SEED, "machine": machine()}
    if args.part in ("a", "all"):
        result["synthetic"] = timed_part(part_a, SIZES[size]["a"])
        print(json.dumps(result["synthetic"], indent=1), flush=True)
    if args.part in ("b", "all"):
        torch.set_num_threads(1)  # on the shared 2-core machine 2 threads were 2.7x slower per token than 1
        result["smollm2"] = timed_part(part_b, SIZES[size]["b"], args.draft_layers)
        print(json.dumps(result["smollm2"], indent=1), flush=True)
    if args.part in ("depth", "all"):
        torch.set_num_threads(1)
        result["draft_depth"] = timed_part(draft_depth)
    name = f"bench_speculative_{args.part}{'' if size == 'full' else '_' + size}.json"
    (HERE / name).write_text(json.dumps(result, indent=1, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main()
