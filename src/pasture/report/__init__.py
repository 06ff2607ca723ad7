"""The HTML report (self-contained, offline) and its figures as PNG."""

from pasture.report.figures import FigureSpec, all_figures, write_pngs
from pasture.report.html import (
    ReportFiles,
    ReportSection,
    browser_data,
    category_table,
    render_report,
    render_tables,
    section_html,
    write_report,
)

__all__ = [
    "FigureSpec",
    "ReportFiles",
    "ReportSection",
    "all_figures",
    "browser_data",
    "category_table",
    "render_report",
    "render_tables",
    "section_html",
    "write_pngs",
    "write_report",
]
