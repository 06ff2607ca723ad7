"""The report's figures, drawn with matplotlib (the ``report`` extra) as SVG for the HTML and PNG for papers.

Each figure is a pure function of the leaderboard frame (and, for categories, of the pair table), built on
a ``matplotlib.figure.Figure`` directly: no pyplot, so no global figure registry or backend switch.
Text in SVG output is drawn as paths (``svg.fonttype = 'path'``), so model names from users can never
become markup inside the HTML report.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pasture.errors import PastureError


@dataclass(frozen=True)
class FigureSpec:
    """One rendered figure: a file-friendly name, a caption, and its SVG and PNG bytes."""

    name: str
    caption: str
    svg: bytes
    png: bytes


def _matplotlib():  # type: ignore[no-untyped-def]
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise PastureError("the report needs matplotlib: pip install 'pasture[report]'") from None
    return matplotlib, Figure


def _render(fig: object, name: str, caption: str) -> FigureSpec:
    matplotlib, _ = _matplotlib()
    svg, png = io.BytesIO(), io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "pasture"}):
        fig.savefig(svg, format="svg", metadata={"Date": None}, bbox_inches="tight")  # type: ignore[attr-defined]
        fig.savefig(png, format="png", dpi=150, metadata={"Software": None}, bbox_inches="tight")  # type: ignore[attr-defined]
    return FigureSpec(name=name, caption=caption, svg=svg.getvalue(), png=png.getvalue())


def _short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _has(frame: pd.DataFrame, col: str) -> bool:
    return col in frame.columns and bool(frame[col].notna().any())


def ci_bars(board: pd.DataFrame) -> FigureSpec | None:
    """Win rate (and LC where computed) per model with their confidence intervals, best at the top."""
    if board.empty:
        return None
    _, Figure = _matplotlib()
    frame = board.sort_values("win_rate")
    y = np.arange(len(frame))
    fig = Figure(figsize=(7.5, 1.2 + 0.38 * len(frame)))
    ax = fig.add_subplot()
    series = [("win_rate", "win_rate_ci_low", "win_rate_ci_high", "win rate", "#3b6ea5")]
    if _has(frame, "length_controlled_winrate"):
        series.append(("length_controlled_winrate", "lc_ci_low", "lc_ci_high", "LC win rate", "#c2602a"))
    offset = 0.18 if len(series) == 2 else 0.0
    for k, (col, lo, hi, label, color) in enumerate(series):
        vals = frame[col].to_numpy(dtype=float)
        if _has(frame, lo) and _has(frame, hi):
            err = np.vstack([vals - frame[lo].to_numpy(dtype=float), frame[hi].to_numpy(dtype=float) - vals])
            err = np.clip(np.nan_to_num(err, nan=0.0), 0.0, None)  # a percentile interval may exclude the estimate
        else:
            err = None
        ax.errorbar(vals, y + (offset if k == 0 else -offset), xerr=err, fmt="o", color=color, capsize=3, label=label)
    ax.set_yticks(y, [_short(str(m)) for m in frame.index])
    ax.axvline(50, color="#888", lw=0.8, ls=":")
    ax.set_xlabel("win rate against the reference (%)")
    ax.set_xlim(0, 100)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Win rates with confidence intervals")
    return _render(fig, "ci_bars", "Win rate and LC win rate per model; bars are the confidence intervals.")


def lc_vs_raw(board: pd.DataFrame) -> FigureSpec | None:
    """LC win rate against raw win rate: points above the diagonal gain from length control."""
    if board.empty or not _has(board, "length_controlled_winrate"):
        return None
    _, Figure = _matplotlib()
    fig = Figure(figsize=(6, 5.2))
    ax = fig.add_subplot()
    frame = board[board["length_controlled_winrate"].notna()]
    ax.plot([0, 100], [0, 100], color="#888", lw=0.8, ls=":")
    ax.scatter(frame["win_rate"], frame["length_controlled_winrate"], color="#3b6ea5", zorder=3)
    for name, row in frame.iterrows():
        ax.annotate(_short(str(name), 22), (row["win_rate"], row["length_controlled_winrate"]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("raw win rate (%)")
    ax.set_ylabel("length-controlled win rate (%)")
    ax.set_title("LC vs raw win rate")
    return _render(fig, "lc_vs_raw", "Length-controlled against raw win rate; the dotted line is LC = raw.")


def winrate_vs_length(board: pd.DataFrame) -> FigureSpec | None:
    """Win rate against the model's average output length (characters): the length bias at a glance."""
    if board.empty or not _has(board, "avg_length"):
        return None
    _, Figure = _matplotlib()
    fig = Figure(figsize=(6, 5.2))
    ax = fig.add_subplot()
    ax.scatter(board["avg_length"], board["win_rate"], color="#3b6ea5", zorder=3, label="win rate")
    if _has(board, "length_controlled_winrate"):
        ax.scatter(
            board["avg_length"], board["length_controlled_winrate"], color="#c2602a", marker="s", zorder=3, label="LC"
        )
    for name, row in board.iterrows():
        ax.annotate(_short(str(name), 22), (row["avg_length"], row["win_rate"]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlabel("average output length (characters)")
    ax.set_ylabel("win rate (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Win rate vs average length")
    return _render(fig, "winrate_vs_length", "Win rate (and LC) against each model's average output length.")


def per_category(category_table: pd.DataFrame) -> FigureSpec | None:
    """Heat map of win rate per (model, category); cells show the value and the number of scored pairs."""
    if category_table.empty:
        return None
    _, Figure = _matplotlib()
    table = category_table.pivot(index="model", columns="category", values="win_rate")
    counts = category_table.pivot(index="model", columns="category", values="n_total")
    fig = Figure(figsize=(1.6 + 0.9 * table.shape[1], 1.3 + 0.42 * table.shape[0]))
    ax = fig.add_subplot()
    im = ax.imshow(table.to_numpy(dtype=float), cmap="RdBu", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(table.shape[1]), [_short(str(c), 18) for c in table.columns], rotation=40, ha="right")
    ax.set_yticks(range(table.shape[0]), [_short(str(m)) for m in table.index])
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            v = table.iat[i, j]
            if not (isinstance(v, float) and math.isnan(v)):
                color = "white" if abs(v - 50) > 30 else "black"
                ax.text(
                    j, i, f"{v:.0f}\n(n={int(counts.iat[i, j])})", ha="center", va="center", fontsize=6.5, color=color
                )
    fig.colorbar(im, ax=ax, label="win rate (%)")
    ax.set_title("Win rate per category")
    return _render(fig, "per_category", "Win rate per model and instruction category (n = scored pairs).")


def hacking_curves(curves: pd.DataFrame) -> FigureSpec | None:
    """Proxy reward and true quality over training steps, one line per run (docs/train.md, "Reward hacking").

    ``curves`` has columns ``run``, ``group`` (runs of one group share a colour, e.g. the arm over seeds),
    ``step``, ``proxy`` and ``true``; None when it is empty.
    """
    if curves.empty:
        return None
    _, Figure = _matplotlib()
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2, sharex=True)
    groups = list(dict.fromkeys(curves["group"]))
    colours = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    labelled: set[str] = set()
    for _, part in curves.groupby("run", sort=False):
        group = str(part["group"].iloc[0])
        label = None if group in labelled else _short(group)
        labelled.add(group)
        axes[0].plot(part["step"], part["proxy"], color=colours[group], alpha=0.75, label=label)
        axes[1].plot(part["step"], part["true"], color=colours[group], alpha=0.75, label=label)
    axes[0].set_title("proxy reward over steps")
    axes[1].set_title("true quality over steps")
    for ax in axes:
        ax.set_xlabel("training step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _render(
        fig, "hacking_curves", "Proxy reward (left) and true quality (right) of each run's rollouts per step."
    )


def all_figures(board: pd.DataFrame, category_table: pd.DataFrame) -> list[FigureSpec]:
    """Every figure that the data allows (LC plots need LC columns), in report order."""
    figs = [ci_bars(board), lc_vs_raw(board), winrate_vs_length(board), per_category(category_table)]
    return [f for f in figs if f is not None]


def write_pngs(figures: list[FigureSpec], folder: str | Path) -> list[Path]:
    """The figures as PNG files (``<name>.png``) in ``folder``, for papers and slides."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in figures:
        path = folder / f"{f.name}.png"
        path.write_bytes(f.png)
        paths.append(path)
    return paths
