"""The HTML report: escaping of untrusted text, figures as PNG, and the page in real headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pasture.records import Judgment
from pasture.report import browser_data, category_table, render_report, render_tables, write_report
from pasture.scoring import score_judgments
from pasture.train.table import (
    TABLE_COLUMNS,
    collect_rows,
    methods_section,
    retention_ratio,
    retention_section,
    table_html,
)
from report.chromium import Chromium, chromium_path
from test_resources import require

EVIL = '</script><script>window.__pwned=1</script><!-- <img src=x onerror="window.__pwned=2"> & \u2028'
EVIL_MODEL = "<b>evil</b>-model"


def _judgments() -> list[Judgment]:
    out = []
    cats = ["writing", "coding", "math"]
    for k in range(9):
        for gen, pref in (("good-model", 1.8 if k % 3 else 1.5), (EVIL_MODEL, 1.2)):
            out.append(
                Judgment(
                    judge_digest="d" * 64,
                    judge_name="test-judge",
                    instruction=f"instruction number {k}",
                    output_1=f"reference answer {k}",
                    generator_1="reference",
                    output_2=EVIL if gen == EVIL_MODEL and k == 0 else f"{gen} answer {k} " + "x" * (10 * k),
                    generator_2=gen,
                    shown_first=1 + k % 2,
                    dataset=cats[k % 3],
                    preference=pref,
                    raw_completion=f"raw {k} <m>",
                )
            )
    out.append(
        Judgment(
            judge_digest="d" * 64,
            judge_name="test-judge",
            instruction="instruction number 99",
            output_1="r",
            generator_1="reference",
            output_2="unjudgeable",
            generator_2="good-model",
            shown_first=1,
            dataset="math",
            status="parse_error",
            error="no label in reply",
        )
    )
    return out


def _board(judgments: list[Judgment]) -> pd.DataFrame:
    board = score_judgments(judgments, lc=False, bootstrap_resamples=0)
    board["win_rate_ci_low"] = board["win_rate"] - 5
    board["win_rate_ci_high"] = board["win_rate"] + 5
    return board


def test_category_table_matches_the_win_rate_definition() -> None:
    table = category_table(_judgments())
    row = table[(table.model == "good-model") & (table.category == "math")].iloc[0]
    # math = k in {2, 5, 8}: preferences 1.8, 1.8, 1.8 plus one failed pair
    assert row.win_rate == pytest.approx(80.0) and row.n_total == 3 and row.n_failed == 1
    row = table[(table.model == "good-model") & (table.category == "writing")].iloc[0]
    assert row.win_rate == pytest.approx(50.0) and row.n_total == 3  # k in {0, 3, 6}: all ties


def test_untrusted_text_is_escaped_everywhere() -> None:
    judgments = _judgments()
    page = render_report(_board(judgments), judgments, title="<i>t</i>", notes=["<u>note</u>"])
    assert "window.__pwned" in page  # present, but only in escaped form
    assert "<script>window.__pwned" not in page and "<img src=x" not in page
    assert "<b>evil</b>" not in page and "&lt;b&gt;evil&lt;/b&gt;" in page
    assert "<i>t</i>" not in page and "<u>note</u>" not in page
    assert page.count("<script") == 2 and page.count("</script>") == 2  # the data block and the page's script
    assert "<!--" not in page
    block = re.search(r'<script type="application/json" id="browser-data">(.*?)</script>', page, re.S)
    assert block is not None
    data = json.loads(block.group(1))
    assert EVIL in data["texts"] and data == browser_data(judgments)
    assert {r["v"] for r in data["rows"]} == {"model", "reference", "tie", "failed"}


def test_write_report_writes_html_and_the_same_figures_as_png(tmp_path: Path) -> None:
    judgments = _judgments()
    files = write_report(_board(judgments), judgments, tmp_path / "report.html")
    assert files.html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    names = {p.name for p in files.pngs}
    assert {"ci_bars.png", "winrate_vs_length.png", "per_category.png"} <= names
    for p in files.pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = files.html.read_text(encoding="utf-8")
    assert html.count('<figure class="plot"') == len(files.pngs)
    assert "http://" not in html and "https://" not in html  # nothing to fetch: opens offline


def test_lc_figure_appears_only_with_lc_columns(tmp_path: Path) -> None:
    judgments = _judgments()
    board = _board(judgments)
    board["length_controlled_winrate"] = board["win_rate"] + 3
    files = write_report(board, judgments, tmp_path / "r.html")
    assert "lc_vs_raw.png" in {p.name for p in files.pngs}


@pytest.mark.slow
def test_report_in_headless_chromium(tmp_path: Path) -> None:
    binary = chromium_path()
    require(binary is not None, "chromium is not installed (make test installs it as root: apt-get install chromium)")
    judgments = _judgments()
    section = methods_section(_methods_frame(tmp_path))
    files = write_report(_board(judgments), judgments, tmp_path / "report.html", sections=[section])
    tables_page = tmp_path / "methods.html"
    tables_page.write_text(render_tables([section]), encoding="utf-8")
    with Chromium(binary) as browser:  # type: ignore[arg-type]
        browser.open(files.html)
        assert browser.eval("document.body.getAttribute('data-ready')") == "1"
        assert browser.errors() == []
        # the leaderboard renders, names as text
        assert browser.eval("document.querySelectorAll('#board tbody tr').length") == 2
        assert EVIL_MODEL in browser.eval("document.getElementById('board').textContent")
        assert browser.eval("document.querySelectorAll('#board b').length") == 0
        # every plot decodes and has a size
        widths = browser.eval(
            "Array.from(document.querySelectorAll('figure.plot img')).map(i => i.complete ? i.naturalWidth : 0)"
        )
        assert len(widths) >= 3 and all(w > 100 for w in widths)
        # the browser lists all 19 judgments (25 per page) and filters them
        assert browser.eval("document.getElementById('count').textContent") == "19 of 19 judgments"
        set_select = "var s=document.getElementById('{id}'); s.value={value!r}; s.dispatchEvent(new Event('change'));"
        browser.eval(set_select.format(id="f-model", value=EVIL_MODEL))
        assert browser.eval("document.getElementById('count').textContent") == "9 of 19 judgments"
        browser.eval(set_select.format(id="f-model", value=""))
        browser.eval(set_select.format(id="f-verdict", value="failed"))
        assert browser.eval("document.getElementById('count').textContent") == "1 of 19 judgments"
        assert "no label in reply" in browser.eval("document.getElementById('items').textContent")
        browser.eval(set_select.format(id="f-verdict", value=""))
        browser.eval("var q=document.getElementById('q'); q.value='pwned'; q.dispatchEvent(new Event('input'));")
        assert browser.eval("document.getElementById('count').textContent") == "1 of 19 judgments"
        # the hostile output shows as text and ran nothing
        shown = browser.eval("document.querySelector('#items pre.out2').textContent")
        assert shown == EVIL
        assert browser.eval("typeof window.__pwned") == "undefined"
        assert browser.eval("document.querySelectorAll('#items img, #items script').length") == 0
        # sorting the leaderboard by win rate (click twice: descending)
        browser.eval("document.querySelector('#board th[data-col=\"2\"]').click()")
        first = browser.eval("document.querySelector('#board tbody tr td').textContent")
        assert first == EVIL_MODEL  # ascending: the losing model first
        assert browser.errors() == []
        # the methods section: the hostile method name is text, and its columns sort numerically
        _check_methods_table(browser, "section-1")
        # the standalone methods page: same renderer, same checks, under its own CSP
        browser.open(tables_page)
        assert browser.eval("document.body.getAttribute('data-ready')") == "1"
        _check_methods_table(browser, "section-1")
        assert browser.errors() == []


def _check_methods_table(browser: Chromium, table_id: str) -> None:
    rows = f"document.querySelectorAll('#{table_id} tbody tr')"
    names = f"Array.from({rows}).map(r => r.cells[0].textContent)"
    assert browser.eval(names) == ["dpo", "sft", EVIL_METHOD]
    assert browser.eval(f"document.querySelectorAll('#{table_id} script').length") == 0
    assert browser.eval("typeof window.x") == "undefined"
    browser.eval(f"document.querySelector('#{table_id} th[data-col=\"1\"]').click()")  # win rate vs start, ascending
    assert browser.eval(names) == [EVIL_METHOD, "sft", "dpo"]
    browser.eval(f"document.querySelector('#{table_id} th[data-col=\"1\"]').click()")  # descending
    assert browser.eval(names) == ["dpo", "sft", EVIL_METHOD]
    browser.eval(f"document.querySelector('#{table_id} th[data-col=\"0\"]').click()")  # by name, as text
    assert browser.eval(names) == [EVIL_METHOD, "dpo", "sft"]  # symbols collate before letters


def test_report_on_real_alpacaeval_annotations(alpacaeval: Path, tmp_path: Path) -> None:
    from pasture.io import read_annotations

    judgments = []
    for model in ("alpaca-7b", "claude-2"):
        judgments += read_annotations(
            alpacaeval / "results" / model / "weighted_alpaca_eval_gpt4_turbo/annotations.json.gz"
        )
    board = score_judgments(judgments, lc=False, bootstrap_resamples=0)
    files = write_report(board, judgments, tmp_path / "r.html")
    data = json.loads(
        re.search(r'id="browser-data">(.*?)</script>', files.html.read_text(encoding="utf-8"), re.S).group(1)  # type: ignore[union-attr]
    )
    assert len(data["rows"]) == len(judgments) == 1610
    # each reference output is stored once although it is compared with two models
    assert len(data["texts"]) <= 2 * 805 + 2 * 1610  # instructions, reference outputs, model outputs, raw replies
    table = category_table(judgments)
    assert set(table["category"]) == {"helpful_base", "koala", "oasst", "selfinstruct", "vicuna"}
    assert table.groupby("model")["n_total"].sum().to_dict() == board["n_total"].to_dict()


EVIL_METHOD = "<script>x</script>"


def _methods_frame(tmp_path: Path) -> pd.DataFrame:
    """A methods table read by the real reader from ``<dir>/<method>/row.json`` files, one method name hostile."""
    rows = {
        "dpo": (71.5, 68.25, 12.0, None, 0, 0.75, 3.5, 21.0, 4096, 512, 3.25, 0.125, 0.8, 0.6, 0.75),
        "sft": (50.0, 50.0, 2.5, 3.0, 1, -0.25, 0.0, 18.5, 2048, 256, 1.5, None, None, None, None),
        EVIL_METHOD: (12.0, None, None, None, 2, None, None, 30.0, 10, 5, 0.5, None, 0.5, 0.5, 1.0),
    }
    for k, (name, values) in enumerate(rows.items()):
        folder = tmp_path / "methods" / f"m{k}"
        folder.mkdir(parents=True)
        row = dict(zip(TABLE_COLUMNS, values, strict=True), method=name)
        (folder / "row.json").write_text(json.dumps(row), encoding="utf-8")
    return collect_rows(tmp_path / "methods")


def test_sections_are_escaped_sortable_tables(tmp_path: Path) -> None:
    judgments = _judgments()
    section = methods_section(_methods_frame(tmp_path))
    page = render_report(_board(judgments), judgments, sections=[section])
    assert EVIL_METHOD not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert page.count("<script") == 2  # still only the data block and the page's script
    table = re.search(r'<table id="section-1"[^>]*>(.*?)</table>', page, re.S)
    assert table is not None and "sortable" in page[table.start() : table.start() + 80]
    heads = re.findall(r"<th data-col=\"\d+\">(.*?)</th>", table.group(1))
    assert heads[:3] == ["method", "win rate vs start (%)", "LC vs start (%)"] and len(heads) == 16
    assert "KL to reference (nats)" in heads
    bodies = re.findall(r"<tr>(<td.*?)</tr>", table.group(1))
    assert len(bodies) == 3
    cells = re.findall(r'<td(?: data-v="([^"]*)")?>(.*?)</td>', bodies[0])
    # dpo: two decimals for reals, integers as integers, missing as a dash with no sort key
    assert cells[:4] == [("", "dpo"), ("71.5", "71.50"), ("68.25", "68.25"), ("12.0", "12.00")]
    assert cells[4] == ("", "–") and cells[5] == ("0.0", "0")
    assert page.index('id="board"') < page.index('id="section-1"') < page.index("<h2>Figures</h2>")
    assert "Training methods" in page and "docs/train.md" in page


def test_gain_against_retention_lists_the_rows_that_measured_it(tmp_path: Path) -> None:
    frame = _methods_frame(tmp_path)
    section = retention_section(frame)
    assert section is not None and list(section.table.index) == ["dpo", EVIL_METHOD]  # sft measured none
    assert list(section.table.columns) == ["win_rate_vs_start", "old_task_before", "old_task_after", "retention"]
    page = table_html(frame)
    assert "Gain against retention" in page and "retention (after / before)" in page and EVIL_METHOD not in page
    assert retention_section(frame.drop(columns=["retention"])) is None
    assert (
        retention_ratio(0.5, 0.375) == 0.75 and retention_ratio(0.0, 0.5) is None and retention_ratio(None, 1) is None
    )


def test_tables_page_uses_the_same_renderer(tmp_path: Path) -> None:
    page = render_tables([methods_section(_methods_frame(tmp_path))], title="<i>methods</i>", notes=["<u>n</u>"])
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page and "script-src 'sha256-" in page
    assert EVIL_METHOD not in page and "<i>methods</i>" not in page and "<u>n</u>" not in page
    assert page.count("<script") == 1 and 'id="section-1"' in page and 'id="browser-data"' not in page
    assert "http://" not in page and "https://" not in page
