"""AutoRule's rule extraction from 100 real AlpacaEval pairs with SmolLM2-135M as the reasoner, end to end.

Outside CI (the CI test runs two pairs: tests/train/test_rules_llm.py). Starts a real llama.cpp server on 127.0.0.1
serving the bundled SmolLM2-135M-Instruct GGUF, draws the pairs from a shared AlpacaEval annotation file with texts
(``../shared/alpacaeval/results/<model>/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz``: chosen = the output
GPT-4 Turbo preferred), and runs explain → extract → merge (:mod:`pasture.train.rules_llm`). Every model call is a
single-response judgment in the store (``--store``): a killed run resumes, a finished one reruns for free. Writes
the rule file (with provenance) and a Markdown note with the step counts and timings beside this script.

A 135M-parameter reasoner shows the plumbing only: its explanations and rules are not evidence about what makes
AlpacaEval answers good.

    PYTHONPATH=src nice -n 10 python experiments/rules_smollm2.py --pairs 100
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from pasture.local_models import LlamaServer
from pasture.store import Store
from pasture.train.rules_llm import LLMReasoner, alpacaeval_pairs, extract_rules_llm

HERE = Path(__file__).parent
DEFAULT_ANNOTATIONS = (
    HERE.parent.parent / "shared" / "alpacaeval" / "results" / "alpaca-7b" / "weighted_alpaca_eval_gpt4_turbo"
    / "annotations.json.gz"
)  # fmt: skip


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--annotations", type=Path, default=DEFAULT_ANNOTATIONS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-chars", type=int, default=900, help="skip pairs longer than this (prompt + outputs)")
    parser.add_argument("-k", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64, help="reply budget of each step")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    parser.add_argument("--store", type=Path, default=HERE / "out" / "rules_smollm2.db")
    parser.add_argument("--output", type=Path, default=HERE / "rules_smollm2.md")
    args = parser.parse_args()
    args.store.parent.mkdir(parents=True, exist_ok=True)
    rules_path = args.output.with_suffix(".rules.json")
    pairs = alpacaeval_pairs(args.annotations, args.pairs, seed=args.seed, max_chars=args.max_chars)
    began, cpu0 = time.perf_counter(), _cpu_s()
    with LlamaServer(n_threads=args.threads, log_path=args.store.with_suffix(".server.log")) as server:
        reasoner = LLMReasoner.from_judge("smollm2-graded-server", base_url=server.base_url, max_tokens=args.max_tokens)
        with Store(args.store) as store:
            n_before = store.count_response_judgments()
            out = extract_rules_llm(store, reasoner, pairs, k=args.k, source=str(args.annotations), progress=True)
            n_after = store.count_response_judgments()
    wall, cpu = time.perf_counter() - began, _cpu_s() - cpu0
    out.rules.write(rules_path)
    steps = "\n".join(f"| {name} | {c.asked} | {c.cached} | {c.failed} |" for name, c in out.steps.items())
    rules = "\n".join(f"| {r.id} | {r.support} | {r.statement} |" for r in out.rules.rules)
    notes = {k: v for k, v in out.rules.notes.items() if k not in ("candidates", "steps", "judges")}
    top = list(out.rules.notes["candidates"].items())[:10]
    cands = "\n".join(f"| {n} | {c} |" for c, n in top)
    text = f"""# AutoRule extraction with SmolLM2-135M as the reasoner (100 AlpacaEval pairs)

Written by `experiments/rules_smollm2.py` ({len(pairs)} pairs from `{args.annotations.name}` of
`{args.annotations.parent.parent.name}` vs GPT-4 Turbo, chosen = the output the official judge preferred, pairs with
prompt + outputs over {args.max_chars} characters skipped, drawn with seed {args.seed}; K = {args.k}; {args.max_tokens}
tokens per reply; llama.cpp server with {args.threads} thread(s), `nice -n 10`, on a 2-core machine shared with other
jobs). Rule file: `{rules_path.name}`. Store: `{args.store}` (not committed).

**A 135M-parameter reasoner only shows the plumbing.** Its explanations and rules say nothing about what makes an
AlpacaEval answer good; a real run uses a strong model behind the same code (`LLMReasoner.from_judge(...)`).

This run: {wall:.0f} s wall, {cpu:.0f} CPU-s (this process and the server), {n_after - n_before} new judgments in
the store ({n_after} in all). A rerun asks nothing that is stored with status ok.

| step | asked | found in store | failed |
|---|---|---|---|
{steps}

Merge: {json.dumps(notes)}

## Rules (support = pairs whose candidates include the exact text)

| id | support | rule |
|---|---|---|
{rules}

## The 10 candidates named by the most pairs

| pairs | candidate |
|---|---|
{cands}
"""
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
