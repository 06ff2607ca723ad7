"""One self-contained HTML report: leaderboard, figures and a per-instruction browser, readable offline.

Why self-contained: a report is shared by mail or attached to a paper review; it must open anywhere with no
network. Everything is inline (CSS, one script, figures as SVG data URIs); a Content-Security-Policy allows
no network at all and only the report's own script, identified by its SHA-256.

Safety: every model- or user-written text (model names, instructions, outputs, raw judge completions,
categories) is untrusted. In HTML it is escaped with :func:`html.escape`; the browser's data travel as JSON
inside ``<script type="application/json">`` with ``<``, ``>``, ``&`` and U+2028/9 written as ``\\uXXXX``
escapes (so neither ``</script>`` nor ``<!--`` can end or alter the block), and the page's script inserts
them with ``textContent`` only, never as markup.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pasture.metrics.pairs import pair_table
from pasture.records import Judgment
from pasture.report.figures import FigureSpec, all_figures, write_pngs

BOARD_COLUMNS: dict[str, str] = {
    "length_controlled_winrate": "LC win rate",
    "win_rate": "win rate",
    "standard_error": "SE",
    "discrete_win_rate": "discrete",
    "avg_length": "avg length",
    "n_total": "n",
    "n_failed": "failed",
    "n_used": "n used (budget)",
    "calls_saved": "calls saved",
    "judge_cost_usd": "judge cost ($)",
    "gaming_flags": "gaming flags",
    "lc_method": "LC method",
    "lc_note": "LC note",
}
"""Leaderboard columns shown in the report (when present), with their headers; intervals are merged in."""


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote: the HTML file and the PNG figures next to it."""

    html: Path
    pngs: tuple[Path, ...]


@dataclass(frozen=True)
class ReportSection:
    """An extra table in the report (e.g. the training-methods comparison), rendered after the leaderboard.

    Why a general hook: results computed elsewhere (trained methods, analyses) belong in the one file a
    reader opens, with the report's escaping, sorting and offline guarantees, rather than in pages of their
    own. Every header, row name and cell is untrusted text and is escaped.

    Attributes
    ----------
    title:
        The section's heading.
    table:
        The rows; the index is the first column (headed by the index name, or ``index_label``).
    note:
        One paragraph under the heading: what the numbers mean and where they are defined.
    column_labels:
        Display headers for some columns (others show their own name).
    index_label:
        Header of the first column when the index has no name.
    """

    title: str
    table: pd.DataFrame
    note: str = ""
    column_labels: Mapping[str, str] = field(default_factory=dict)
    index_label: str = ""


def category_table(judgments: Iterable[Judgment]) -> pd.DataFrame:
    """Win rate per (model, category) over scored pairs: ``model, category, win_rate, n_total, n_failed``.

    Same definition as the leaderboard's win rate (``100 * mean(preference - 1)``), restricted to the
    instructions of one category; pairs without a category are grouped under ``(none)``.
    """
    pairs = pair_table(judgments)
    if pairs.empty:
        return pd.DataFrame(columns=["model", "category", "win_rate", "n_total", "n_failed"])
    pairs = pairs.assign(category=pairs["dataset"].fillna("(none)"))
    rows = []
    for (model, cat), g in pairs.groupby(["generator_2", "category"], sort=True):
        scored = g["preference"].dropna()
        rows.append(
            {
                "model": model,
                "category": cat,
                "win_rate": 100 * float((scored - 1).mean()) if len(scored) else math.nan,
                "n_total": len(scored),
                "n_failed": int(g["preference"].isna().sum()),
            }
        )
    return pd.DataFrame(rows)


def _json_for_script(value: Any) -> str:
    """JSON that is safe inside a <script> element: no '<', '>', '&' or line separators appear literally."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _verdict(j: Judgment) -> str:
    if j.status != "ok" or j.preference is None:
        return "failed"
    if j.preference > 1.5:
        return "model"
    if j.preference < 1.5:
        return "reference"
    return "tie"


def browser_data(judgments: Sequence[Judgment]) -> dict[str, Any]:
    """The per-instruction browser's data: texts stored once, judgments as rows of indices.

    Why indices: a reference output is compared with every model, so storing each text once keeps an
    805-instruction, 10-model report near the size of its distinct texts.
    """
    texts: list[str] = []
    index: dict[str, int] = {}

    def t(s: str | None) -> int:
        if s is None:
            return -1
        if s not in index:
            index[s] = len(texts)
            texts.append(s)
        return index[s]

    rows = []
    for j in judgments:
        rows.append(
            {
                "i": t(j.instruction),
                "c": j.dataset or "",
                "g1": j.generator_1,
                "g2": j.generator_2,
                "o1": t(j.output_1),
                "o2": t(j.output_2),
                "p": None if j.preference is None else round(float(j.preference), 4),
                "v": _verdict(j),
                "s": j.status,
                "f": j.shown_first,
                "r": t(j.raw_completion),
                "e": j.error or "",
            }
        )
    return {"texts": texts, "rows": rows}


def _fmt(value: Any, col: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if col in {"n_total", "n_failed", "avg_length"}:
        return str(int(value))
    if col == "judge_cost_usd":
        return f"{float(value):.4f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "–"
    return str(value)


def _sort_key(value: Any) -> str:
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return repr(float(value))
    return ""


def board_html(board: pd.DataFrame) -> str:
    """The leaderboard as an HTML table; every cell escaped; intervals shown as [low, high]."""
    cols = [c for c in BOARD_COLUMNS if c in board.columns]
    head = "".join(f'<th data-col="{i + 1}">{html.escape(BOARD_COLUMNS[c])}</th>' for i, c in enumerate(cols))
    lines = [
        f'<table id="board" class="board sortable"><thead><tr><th data-col="0">model</th>{head}</tr></thead><tbody>'
    ]
    for name, row in board.iterrows():
        cells = [f"<td>{html.escape(str(name))}</td>"]
        for c in cols:
            text = _fmt(row[c], c)
            lo, hi = {
                "win_rate": ("win_rate_ci_low", "win_rate_ci_high"),
                "length_controlled_winrate": ("lc_ci_low", "lc_ci_high"),
            }.get(c, ("", ""))
            if lo in board.columns and hi in board.columns and pd.notna(row[lo]) and pd.notna(row[hi]):
                text += f' <span class="ci">[{row[lo]:.1f}, {row[hi]:.1f}]</span>'
                cell = text
            else:
                cell = html.escape(text)
            if c == "gaming_flags" and text != "–":
                why = str(row.get("gaming_explanations", "") or "")
                cell = f'<span class="flag" title="{html.escape(why)}">{html.escape(text)}</span>'
                if why:
                    cell += f'<div class="flag-why">{html.escape(why)}</div>'
            num = _sort_key(row[c])
            cells.append(f'<td data-v="{html.escape(num)}">{cell}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _cell_text(value: Any) -> str:
    """A section cell as text: '–' for missing, two decimals for non-integral numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "–"
    return str(value)


def _section_sort_key(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return ""
    number = float(value)
    return "" if math.isnan(number) else repr(number)


def section_html(section: ReportSection, table_id: str) -> str:
    """One :class:`ReportSection` as a heading, its note and a sortable table; every cell escaped."""
    frame = section.table
    first = str(frame.index.name) if frame.index.name is not None else section.index_label
    heads = [first] + [section.column_labels.get(str(c), str(c)) for c in frame.columns]
    head = "".join(f'<th data-col="{i}">{html.escape(h)}</th>' for i, h in enumerate(heads))
    lines = [
        f"<h2>{html.escape(section.title)}</h2>",
        f"<p>{html.escape(section.note)}</p>" if section.note else "",
        f'<table id="{html.escape(table_id)}" class="board sortable section"><thead><tr>{head}</tr></thead><tbody>',
    ]
    for name, row in zip(frame.index, frame.itertuples(index=False, name=None), strict=True):
        cells = [f"<td>{html.escape(_cell_text(name))}</td>"]
        for value in row:
            key = _section_sort_key(value)
            cells.append(f'<td data-v="{html.escape(key)}">{html.escape(_cell_text(value))}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(line for line in lines if line)


def _sections_html(sections: Sequence[ReportSection]) -> str:
    return "\n".join(section_html(s, f"section-{i + 1}") for i, s in enumerate(sections))


def _figures_html(figures: Sequence[FigureSpec]) -> str:
    parts = []
    for f in figures:
        uri = "data:image/svg+xml;base64," + base64.b64encode(f.svg).decode("ascii")
        parts.append(
            f'<figure class="plot" id="fig-{html.escape(f.name)}"><img alt="{html.escape(f.caption)}" '
            f'src="{uri}"><figcaption>{html.escape(f.caption)}</figcaption></figure>'
        )
    return "\n".join(parts) or "<p>No figures: no scored judgments.</p>"


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#1d232a}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table.board{border-collapse:collapse;width:100%}table.board th,table.board td{padding:4px 8px;
border-bottom:1px solid #eee;text-align:right}table.board td:first-child,table.board th:first-child{text-align:left}
table.board th{cursor:pointer;background:#f4f6f8;user-select:none}.ci{color:#777;font-size:.85em}
.flag{color:#a3391b}.notes li{color:#6a4a00}.plots{display:flex;flex-wrap:wrap;gap:1em}
figure.plot{margin:0;flex:1 1 480px}figure.plot img{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}
#filters{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:.5em 0}#filters input{flex:1 1 240px;padding:4px}
.item{border:1px solid #ddd;border-radius:6px;margin:.6em 0;padding:.6em}.item .meta{color:#555;font-size:.9em}
.item .cols{display:flex;gap:1em}.item .cols>div{flex:1 1 0;min-width:0}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;padding:.5em;border-radius:4px;max-height:22em;
overflow:auto;margin:.2em 0}.v-model{color:#1f6f3a}.v-reference{color:#a3391b}.v-failed{color:#8a1c1c;font-weight:bold}
details summary{cursor:pointer;color:#555}.manifest{font-size:.85em}
"""

_BROWSER_JS = """
var data=JSON.parse(document.getElementById('browser-data').textContent);
var T=data.texts,R=data.rows,PAGE=25,page=0,shown=[];
function tx(i){return i<0?'':T[i];}
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}
function opts(sel,vals){vals.forEach(function(v){var o=document.createElement('option');o.value=v;o.textContent=v;sel.appendChild(o);});}
var q=document.getElementById('q'),fm=document.getElementById('f-model'),fc=document.getElementById('f-cat'),
fv=document.getElementById('f-verdict'),list=document.getElementById('items'),count=document.getElementById('count');
function uniq(key){var s={};R.forEach(function(r){s[r[key]]=1;});return Object.keys(s).sort();}
opts(fm,uniq('g2'));opts(fc,uniq('c'));
var labels={model:'model wins',reference:'reference wins',tie:'tie',failed:'failed'};
function apply(){
  var needle=q.value.toLowerCase(),m=fm.value,c=fc.value,v=fv.value;
  shown=R.filter(function(r){
    if(m&&r.g2!==m)return false;if(c&&r.c!==c)return false;if(v&&r.v!==v)return false;
    if(!needle)return true;
    return (tx(r.i)+'\\n'+tx(r.o1)+'\\n'+tx(r.o2)+'\\n'+r.g2).toLowerCase().indexOf(needle)>=0;});
  page=0;render();}
function render(){
  list.textContent='';count.textContent=shown.length+' of '+R.length+' judgments';
  shown.slice(page*PAGE,(page+1)*PAGE).forEach(function(r){
    var d=el('div','item');d.setAttribute('data-verdict',r.v);
    d.appendChild(el('div','meta',r.g2+' vs '+r.g1+(r.c?' \\u00b7 '+r.c:'')+' \\u00b7 shown first: '+(r.f===1?'reference':'model')));
    d.appendChild(el('pre','instruction',tx(r.i)));
    var cols=el('div','cols'),a=el('div'),b=el('div');
    a.appendChild(el('strong',null,'reference: '+r.g1));a.appendChild(el('pre','out1',tx(r.o1)));
    b.appendChild(el('strong',null,'model: '+r.g2));b.appendChild(el('pre','out2',tx(r.o2)));
    cols.appendChild(a);cols.appendChild(b);d.appendChild(cols);
    var verdict=el('div','verdict v-'+r.v,'verdict: '+labels[r.v]+(r.p===null?'':' (preference '+r.p+')')+(r.e?' \\u2014 '+r.e:''));
    d.appendChild(verdict);
    if(r.r>=0){var det=el('details');det.appendChild(el('summary',null,'raw judge completion'));
      det.appendChild(el('pre','raw',tx(r.r)));d.appendChild(det);}
    list.appendChild(d);});
  var nav=document.getElementById('pager');nav.textContent='';
  var pages=Math.max(1,Math.ceil(shown.length/PAGE));
  var prev=el('button',null,'\\u2190 previous'),next=el('button',null,'next \\u2192');
  prev.disabled=page===0;next.disabled=page>=pages-1;
  prev.addEventListener('click',function(){page--;render();});next.addEventListener('click',function(){page++;render();});
  nav.appendChild(prev);nav.appendChild(el('span',null,' page '+(page+1)+' / '+pages+' '));nav.appendChild(next);}
[q,fm,fc,fv].forEach(function(x){x.addEventListener('input',apply);x.addEventListener('change',apply);});
apply();
"""

_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(tb){
  tb.querySelectorAll('th').forEach(function(th){th.addEventListener('click',function(){
  var col=+th.getAttribute('data-col'),body=tb.tBodies[0],rows=Array.prototype.slice.call(body.rows);
  var asc=th.getAttribute('data-asc')!=='1';th.setAttribute('data-asc',asc?'1':'0');
  rows.sort(function(x,y){var a=x.cells[col],b=y.cells[col];
    var av=a.getAttribute('data-v'),bv=b.getAttribute('data-v');
    var r=(av&&bv)?(parseFloat(av)-parseFloat(bv)):a.textContent.localeCompare(b.textContent);return asc?r:-r;});
  rows.forEach(function(r){body.appendChild(r);});});});});
"""


def _script(*parts: str) -> tuple[str, str]:
    """The page's one script (strict, in its own scope, marking the body ready at the end) and the CSP allowing it."""
    script = "(function(){\n'use strict';" + "".join(parts) + "document.body.setAttribute('data-ready','1');\n})();\n"
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    return script, csp


def render_report(
    board: pd.DataFrame,
    judgments: Sequence[Judgment],
    *,
    title: str = "pasture report",
    manifest: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
    figures: Sequence[FigureSpec] | None = None,
    sections: Sequence[ReportSection] = (),
) -> str:
    """The report as one HTML string.

    Parameters
    ----------
    board:
        Leaderboard frame indexed by model (columns as :func:`pasture.leaderboard.leaderboard`).
    judgments:
        The judgments behind the board, shown one by one in the per-instruction browser.
    manifest:
        The run manifest (where the numbers came from), shown as JSON.
    notes:
        Caveats the reader must see (e.g. "this judge is a 135M model, for trying the tool only").
    figures:
        Pre-rendered figures; computed from ``board`` and ``judgments`` when None.
    sections:
        Extra tables shown after the leaderboard, in order (e.g. the training-methods comparison).
    """
    if figures is None:
        figures = all_figures(board, category_table(judgments))
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    manifest_html = html.escape(json.dumps(manifest or {}, indent=2, default=str, ensure_ascii=False))
    script, csp = _script(_BROWSER_JS, _SORT_JS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
{f'<ul class="notes">{notes_html}</ul>' if notes_html else ""}
<h2>Leaderboard</h2>
<p>Win rates are percentages against the reference (definitions in pasture's docs/metrics.md); intervals in
brackets; click a header to sort.</p>
{board_html(board)}
{_sections_html(sections)}
<h2>Figures</h2>
<div class="plots">{_figures_html(figures)}</div>
<h2>Per-instruction browser</h2>
<div id="filters"><input id="q" type="search" placeholder="search instructions and outputs">
<select id="f-model"><option value="">all models</option></select>
<select id="f-cat"><option value="">all categories</option></select>
<select id="f-verdict"><option value="">all verdicts</option><option value="model">model wins</option>
<option value="reference">reference wins</option><option value="tie">tie</option>
<option value="failed">failed</option></select><span id="count"></span></div>
<div id="items"></div><div id="pager"></div>
<h2>Run manifest</h2>
<details class="manifest"><summary>show</summary><pre>{manifest_html}</pre></details>
<script type="application/json" id="browser-data">{_json_for_script(browser_data(judgments))}</script>
<script>{script}</script>
</body></html>
"""


def write_report(
    board: pd.DataFrame,
    judgments: Sequence[Judgment],
    path: str | Path,
    *,
    title: str = "pasture report",
    manifest: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
    png_dir: str | Path | None = None,
    sections: Sequence[ReportSection] = (),
) -> ReportFiles:
    """Write the HTML report to ``path`` and its figures as PNG to ``png_dir`` (default: ``<stem>_figures``).

    ``sections`` are extra tables shown after the leaderboard (see :class:`ReportSection`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = all_figures(board, category_table(judgments))
    path.write_text(
        render_report(
            board, judgments, title=title, manifest=manifest, notes=notes, figures=figures, sections=sections
        ),
        encoding="utf-8",
    )
    png_folder = Path(png_dir) if png_dir is not None else path.with_name(path.stem + "_figures")
    pngs = write_pngs(figures, png_folder)
    return ReportFiles(html=path, pngs=tuple(pngs))


def render_tables(
    sections: Sequence[ReportSection],
    *,
    title: str = "pasture report",
    notes: Sequence[str] = (),
) -> str:
    """A self-contained HTML page holding only ``sections`` (no leaderboard, figures or browser).

    For results that have no leaderboard behind them (e.g. ``pasture methods report -o table.html``): the
    same escaping, sortable tables, style and Content-Security-Policy as :func:`render_report`.
    """
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    script, csp = _script(_SORT_JS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
{f'<ul class="notes">{notes_html}</ul>' if notes_html else ""}
{_sections_html(sections)}
<script>{script}</script>
</body></html>
"""
