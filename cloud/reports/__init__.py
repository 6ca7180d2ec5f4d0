"""Reports for maintenance and service managers, as HTML and PDF (issue 9; docs/reports.md).

- service quality: response on time against SLA, resolution time, first-time fix, work orders
  by priority, predicted against confirmed failures per model, top failure modes per equipment
  model;
- equipment availability: time neither offline nor under repair, per asset and site;
- equipment health: per customer and quarter, health, remaining life, alerts, outlook.

Figures come from the work-order store (read only), the asset registry and InfluxDB; one jinja2
template per report renders HTML, and WeasyPrint prints the same HTML to PDF::

    report = build_report(ReportKind.HEALTH, Sources(db=..., registry=..., influx=...),
                          period=Period.quarter("2026Q3"), customer="Acme", now=now)
    pdf = render_pdf(render_html(report))

`router` is mounted by the web page (`prognos serve`) under ``/reports``, behind its login;
`prognos report` is the command line.
"""

from __future__ import annotations

from cloud.reports._period import Period, PeriodError
from cloud.reports._report import (
    Report,
    ReportKind,
    Sources,
    build_report,
    render_html,
    render_index,
    render_pdf,
)
from cloud.reports._web import router

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "build_report",
    "Period",
    "PeriodError",
    "render_html",
    "render_index",
    "render_pdf",
    "Report",
    "ReportKind",
    "router",
    "Sources",
]
