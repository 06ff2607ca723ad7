"""How store_schema_v1.db was made: run ONCE with pasture at commit 7f53e0b (store schema 1), never again.

A tiny store with 12 real AlpacaEval judgments of the official judge (alpaca-7b), one failed replicate, an
eval set, outputs, a live claim and a run; tests/test_store.py migrates a copy and checks every row.
Usage (at 7f53e0b): ``python tests/data/make_store_schema_v1.py tests/data/store_schema_v1.db``.
"""

import sqlite3
import sys
from pathlib import Path

from pasture.io.alpacaeval import read_annotations
from pasture.records import OFFICIAL_JUDGE_ALIASES, EvalSet, Instruction, ModelOutput
from pasture.store import SCHEMA_VERSION, Store

ANNOTATIONS = "/work/shared/alpacaeval/results/alpaca-7b/weighted_alpaca_eval_gpt4_turbo/annotations.json.gz"


def main(out: Path) -> None:
    assert SCHEMA_VERSION == 1, "run with the code of schema 1"
    out.unlink(missing_ok=True)
    judgments = read_annotations(Path(ANNOTATIONS))[:12]
    failed = {"status": "parse_error", "preference": None, "replicate": 1, "error": "no verdict", "raw_completion": "?"}
    judgments.append(judgments[0].model_copy(update=failed))
    with Store(out) as store:
        instructions = tuple(Instruction(instruction=j.instruction, dataset=j.dataset) for j in judgments[:12])
        digest = store.put_eval_set(EvalSet(name="tiny", instructions=instructions))
        outputs = [
            ModelOutput(instruction=j.instruction, output=j.output_2, generator=j.generator_2) for j in judgments
        ]
        store.put_outputs(digest, outputs[:12])
        store.put_judge("weighted_alpaca_eval_gpt4_turbo", OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"])
        store.put_judgments(judgments)
        store.claim(["k-claimed"], "someone", ttl_s=1e9)
        store.put_run(
            eval_set_digest=digest,
            reference_digest="r",
            judge_digest=judgments[0].judge_digest,
            generator="alpaca-7b",
            kind="winrate",
            result={"win_rate": 1.0},
            manifest={},
        )
    conn = sqlite3.connect(out)  # one self-contained file: no WAL beside it
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("VACUUM")
    conn.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
