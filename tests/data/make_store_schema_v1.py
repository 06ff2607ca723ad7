"""Made once with pasture at commit 7f53e0b (store schema 1): a tiny store with real AlpacaEval judgments."""
import sys
from pathlib import Path
from pasture.io.alpacaeval import read_annotations
from pasture.records import EvalSet, Instruction, ModelOutput, Judgment
from pasture.store import Store, SCHEMA_VERSION
assert SCHEMA_VERSION == 1
out = Path(sys.argv[1]); out.unlink(missing_ok=True)
ann = read_annotations(Path("/work/shared/alpacaeval/results/alpaca-7b/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz"))
js = list(ann)[:12]
# one failed judgment too (kept, retried later) and a replicate
js.append(js[0].model_copy(update={"status": "parse_error", "preference": None, "replicate": 1, "error": "no verdict", "raw_completion": "?"}))
with Store(out) as st:
    es = EvalSet(name="tiny", instructions=tuple(Instruction(instruction=j.instruction, dataset=j.dataset) for j in js[:12]))
    d = st.put_eval_set(es)
    st.put_outputs(d, [ModelOutput(instruction=j.instruction, output=j.output_2, generator=j.generator_2) for j in js[:12]])
    st.put_judge("weighted_alpaca_eval_gpt4_turbo", __import__("pasture.records", fromlist=["x"]).OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"])
    print(st.put_judgments(js))
    st.claim(["k-claimed"], "someone", ttl_s=1e9)
    st.put_run(eval_set_digest=d, reference_digest="r", judge_digest=js[0].judge_digest, generator="alpaca-7b", kind="winrate", result={"win_rate": 1.0}, manifest={})
import sqlite3
c = sqlite3.connect(out); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.execute("PRAGMA journal_mode=DELETE"); c.execute("VACUUM"); c.close()
print(out.stat().st_size)
