"""pasture translate: masks and markdown survive, lost masks are counted and retried, the cache resumes, and the
translated eval set evaluates. The translator is a provider-like object that maps characters (ROT13 on
letters), so any code, URL or placeholder that reached it would come back garbled."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pasture.cli import main
from pasture.judges.base import ChatRequest, Completion, TransientError
from pasture.translate import (
    MASK_RE,
    RestorationError,
    SourceRow,
    TranslationCache,
    TranslationSettings,
    load_source_rows,
    mask,
    rows_from_mappings,
    segment,
    translate_rows,
    unmask,
    write_alpaca,
    write_eval_set,
)


def rot13(text: str) -> str:
    """ROT13 on ASCII letters; mask tokens (⟦digits⟧) are untouched."""
    return codecs.encode(text, "rot_13")


class CharMapTranslator:
    """A provider-like translator: ROT13 of the user message; optional faults for the first calls."""

    name = "charmap"

    def __init__(self, *, drop_mask_first: int = 0, transient_first: int = 0, label: str = "rot13") -> None:
        self.model = label
        self.calls: list[ChatRequest] = []
        self.drop_mask_first = drop_mask_first
        self.transient_first = transient_first

    def identity(self) -> dict[str, Any]:
        return {"model": self.model}

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls.append(request)
        if self.transient_first > 0:
            self.transient_first -= 1
            raise TransientError("server busy", retry_after=0.0)
        text = rot13(request.messages[-1]["content"])
        if self.drop_mask_first > 0 and MASK_RE.search(text):
            self.drop_mask_first -= 1
            text = MASK_RE.sub("", text, count=1)
        return Completion(text=text)


MARKDOWN = (
    "# Setup guide\n"
    "\n"
    "1. Install the package from https://example.org/pkg?v=2.\n"
    "2. Run `make build` and set {name} to %s.\n"
    "   - nested item with ${HOME}\n"
    "> quoted advice\n"
    "\n"
    "```python\n"
    "def hello(name):\n"
    "    return f'hi {name}'\n"
    "```\n"
    "Done."
)


def test_segments_keep_structure_and_mask_protected_spans() -> None:
    segs = segment(MARKDOWN)
    assert "\n".join(s.prefix + s.content + s.suffix for s in segs) == MARKDOWN
    by_content = {s.content: s for s in segs if s.masked is not None}
    step2 = by_content["Run `make build` and set {name} to %s."]
    assert step2.prefix == "2. "
    assert step2.masks == ("`make build`", "{name}", "%s")
    assert step2.masked == "Run ⟦0⟧ and set ⟦1⟧ to ⟦2⟧."
    assert by_content["Install the package from https://example.org/pkg?v=2."].masks == ("https://example.org/pkg?v=2",)
    assert by_content["nested item with ${HOME}"].prefix == "   - "
    # fenced code is never sent
    assert all(s.masked is None for s in segs if "def hello" in s.prefix or "return" in s.prefix)


def test_unmask_rejects_lost_invented_or_repeated_tokens() -> None:
    masked, spans = mask("use `x` and {y}")
    assert unmask(rot13(masked), spans) == "hfr `x` naq {y}"
    for bad in ("hfr ⟦0⟧ naq", "⟦0⟧ ⟦1⟧ ⟦2⟧", "⟦0⟧ ⟦0⟧ ⟦1⟧", "⟦0⟧\n⟦1⟧", "  "):
        with pytest.raises(RestorationError):
            unmask(bad, spans)


def test_formatting_and_code_survive(tmp_path: Path) -> None:
    rows = [SourceRow(source_id="1", instruction="Explain the steps.", input="", output=MARKDOWN)]
    with TranslationCache(tmp_path / "c.db") as cache:
        report = translate_rows(rows, CharMapTranslator(), cache, TranslationSettings(back_translate=True))
    assert report.ok and len(report.rows) == 1
    out = report.rows[0].output
    assert out is not None
    assert out.count("\n") == MARKDOWN.count("\n")
    for kept in ("```python\ndef hello(name):\n    return f'hi {name}'\n```", "`make build`", "{name}", "%s",
                 "${HOME}", "https://example.org/pkg?v=2", "\n   - ", "\n> ", "# ", "\n2. "):  # fmt: skip
        assert kept in out, kept
    assert "Vafgnyy gur cnpxntr" in out  # the prose itself was translated
    # ROT13 is its own inverse: the back-translation equals the source, so agreement is exactly 1
    assert report.rows[0].agreement == pytest.approx(1.0)


def test_lost_mask_is_counted_retried_and_never_accepted(tmp_path: Path) -> None:
    rows = [SourceRow(source_id="1", instruction="Print {name} with `echo`.")]
    settings = TranslationSettings(back_translate=False, max_attempts=3)
    # lost once: the retry succeeds, and the failure is counted
    translator = CharMapTranslator(drop_mask_first=1)
    with TranslationCache(tmp_path / "a.db") as cache:
        report = translate_rows(rows, translator, cache, settings)
    assert report.ok and report.n_restoration_failures == 1 and report.n_calls == 2
    assert report.rows[0].instruction == "Cevag {name} jvgu `echo`."
    assert translator.calls[1].decoding["temperature"] == settings.retry_temperature
    assert translator.calls[1].decoding["seed"] == settings.seed + 1
    # lost every time: the row fails, is not written, and nothing is cached
    translator = CharMapTranslator(drop_mask_first=99)
    with TranslationCache(tmp_path / "b.db") as cache:
        report = translate_rows(rows, translator, cache, settings)
        assert len(cache) == 0
    assert not report.ok and not report.rows and len(report.failed) == 1
    assert report.n_restoration_failures == 3 and "lost [" in report.failed[0][1]
    write_eval_set(tmp_path / "e.json", report.rows, language="rot")
    assert json.loads((tmp_path / "e.json").read_text()) == []


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    rows = [SourceRow(source_id="1", instruction="Hello there.")]
    with TranslationCache(tmp_path / "c.db") as cache:
        report = translate_rows(
            rows, CharMapTranslator(transient_first=2), cache, TranslationSettings(back_translate=False)
        )
    assert report.ok and report.n_call_failures == 2 and report.rows[0].instruction == "Uryyb gurer."


def test_cache_resumes_and_is_keyed_by_every_setting(tmp_path: Path) -> None:
    rows = load_source_rows("demo", limit=6)
    settings = TranslationSettings(back_translate=True)
    first = CharMapTranslator()
    with TranslationCache(tmp_path / "c.db") as cache:
        a = translate_rows(rows[:3], first, cache, settings)
        b = translate_rows(rows, CharMapTranslator(), cache, settings)  # resumes: only the 3 new rows are called
        again = CharMapTranslator()
        c = translate_rows(rows, again, cache, settings)
        other_lang = CharMapTranslator()
        d = translate_rows(rows[:1], other_lang, cache, TranslationSettings(target_language="Basque"))
        other_model = CharMapTranslator(label="rot13-v2")
        e = translate_rows(rows[:1], other_model, cache, settings)
    assert a.ok and b.ok and c.ok
    assert a.n_calls == 6 and a.n_cached == 0  # 3 rows, forth and back
    assert b.n_calls == 6 and b.n_cached == 6
    assert c.n_calls == 0 and len(again.calls) == 0 and c.n_cached == 12
    assert [r.instruction for r in c.rows] == [r.instruction for r in b.rows]
    assert d.n_calls == 2 and e.n_calls == 2  # another language or model never reuses a translation


def test_translated_eval_set_evaluates(tmp_path: Path) -> None:
    source = [
        {"id": "a1", "instruction": "Name a colour.", "output": "Blue, like `#0000ff`.", "generator": "ref"},
        {
            "id": "a2",
            "instruction": "Add the numbers",
            "input": "2 and 3",
            "output": "The sum is 5.",
            "generator": "ref",
        },
        {"id": "a3", "instruction": "Greet {user} politely.", "output": "Hello, {user}!", "generator": "ref"},
    ]
    rows = rows_from_mappings(source)
    with TranslationCache(tmp_path / "c.db") as cache:
        report = translate_rows(rows, CharMapTranslator(), cache, TranslationSettings(target_language="Rot Thirteen"))
    assert report.ok
    eval_path = write_eval_set(tmp_path / "eval_rot.json", report.rows, language="Rot Thirteen")
    alpaca_path = write_alpaca(tmp_path / "alpaca_rot.json", report.rows)
    records = json.loads(eval_path.read_text())
    assert [r["source_id"] for r in records] == ["a1", "a2", "a3"]
    assert records[1]["instruction"] == "Nqq gur ahzoref\n\n2 naq 3"
    assert (
        records[1]["source_digest"] == rows[1].source_digest
    )  # digest of the SOURCE text "Add the numbers\n\n2 and 3"
    assert {r["generator"] for r in records} == {"ref-rot-thirteen"}
    alpaca = json.loads(alpaca_path.read_text())
    assert alpaca[1]["input"] == "2 naq 3" and alpaca[2]["output"] == "Uryyb, {user}!"
    # a model's outputs on the translated instructions, judged against the translated references
    model = [{"instruction": r["instruction"], "output": r["output"] + " Zber qrgnvy.", "generator": "mine"}
             for r in records]  # fmt: skip
    (tmp_path / "mine.json").write_text(json.dumps(model))
    result = CliRunner().invoke(
        main,
        ["evaluate", str(tmp_path / "mine.json"), "--eval-set", str(eval_path), "--reference", str(eval_path),
         "--judge", "longer-wins", "--store", str(tmp_path / "p.db"), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mine" in result.output and "100.0" in result.output  # every longer output wins


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "ok"}, {"instruction": ""}]))
    result = CliRunner().invoke(
        main, ["translate", str(bad), "--model", "smollm2", "--to", "Galician", "--eval-set-out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "row 2" in result.output and "instruction" in result.output
    result = CliRunner().invoke(main, ["translate", "demo", "--model", "smollm2", "--to", "English", "--alpaca", "x"])
    assert result.exit_code == 2 and "both 'English'" in result.output


@pytest.mark.slow
def test_translate_demo_with_smollm2_end_to_end_and_resumable(smollm2_gguf: Path, tmp_path: Path) -> None:
    """The bundled 135M model shows the plumbing only: its translations are not meant to be good."""
    from pasture.generate import provider_from_spec

    rows = load_source_rows("demo", limit=2)
    settings = TranslationSettings(target_language="Spanish", max_tokens=24, max_attempts=2)
    provider = provider_from_spec("smollm2")
    with TranslationCache(tmp_path / "c.db") as cache:
        first = translate_rows(rows[:1], provider, cache, settings)  # an interrupted run: one row of two
        cached_after_first = len(cache)
        second = translate_rows(rows, provider, cache, settings)
    assert len(first.rows) + len(first.failed) == 1 and len(second.rows) + len(second.failed) == 2
    assert first.n_calls >= 1 and second.n_cached >= cached_after_first  # every cached line was reused
    for a in first.rows:  # a row done before is identical on resume
        assert [b.instruction for b in second.rows if b.source.source_id == a.source.source_id] == [a.instruction]
    # the command, on the same cache: no call for what is cached; files hold exactly the rows that succeeded
    args = ["translate", "demo", "--model", "smollm2", "--to", "Spanish", "--limit", "1", "--max-tokens", "24",
            "--max-attempts", "2", "--cache", str(tmp_path / "c.db"), "--eval-set-out", str(tmp_path / "es.json"),
            "--alpaca", str(tmp_path / "alpaca.json")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output
    assert "translated" in result.output and "replies that lost a mask token" in result.output
    written = json.loads((tmp_path / "es.json").read_text())
    assert (result.exit_code == 0) == (len(written) == 1)
    assert {r["source_digest"] for r in written} <= {rows[0].source_digest}
    if any(r.source.source_id == rows[0].source_id for r in second.rows):
        assert " 0 calls" in result.output
