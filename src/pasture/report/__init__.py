"""The HTML report (self-contained, offline) and its figures as PNG."""

from pasture.report.figures import FigureSpec, all_figures, write_pngs
from pasture.report.html import ReportFiles, browser_data, category_table, render_report, write_report

__all__ = [
    "FigureSpec",
    "ReportFiles",
    "all_figures",
    "browser_data",
    "category_table",
    "render_report",
    "write_pngs",
    "write_report",
]
