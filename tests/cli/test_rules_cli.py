"""``pasture rules extract --reasoner JUDGE``: the model reasoner from the command line (error paths; the reasoner
itself is tested against a real server in tests/train/test_rules_llm.py)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pasture.cli import main


def test_an_unknown_reasoner_is_a_one_line_error(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No."}) + "\n", encoding="utf-8")
    out = tmp_path / "rules.json"
    args = ["rules", "extract", "--pairs", str(pairs), "--reasoner", "smollm2-gradd-server", "--store",
            str(tmp_path / "s.db"), "-o", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "unknown judge 'smollm2-gradd-server'" in result.output
    assert "did you mean 'smollm2-graded-server'" in result.output and not out.exists()
