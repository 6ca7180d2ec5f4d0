"""The reports on the web: an index with a period picker, each report as HTML or PDF.

Mounted by `prognos serve` (the web page) under ``/reports`` on the API application, behind the
API's auth with role viewer (a Bearer token, or the web page's session): ``GET /reports/``,
``GET /reports/{kind}.html`` and ``GET /reports/{kind}.pdf``. The figures come from the same stores
the application opened (`cloud.api` context: store file, registry, InfluxDB).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from cloud.api._app import ApiError, Ctx, Viewer
from cloud.reports._period import Period, PeriodError
from cloud.reports._report import (
    ReportKind,
    Sources,
    build_report,
    customers,
    render_html,
    render_index,
    render_pdf,
)

router = APIRouter(tags=["reports"])

From = Annotated[str | None, Query(alias="from", description="first day covered, UTC")]
To = Annotated[str | None, Query(alias="to", description="first day no longer covered, UTC")]
Quarter = Annotated[str | None, Query(description="a quarter instead, e.g. 2026Q3")]
Customer = Annotated[str | None, Query(description="one customer; empty for all")]


def _quarter_of(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


@router.get("/", response_class=HTMLResponse, name="reports_index")
def reports_index(ctx: Ctx, _who: Viewer) -> HTMLResponse:
    """The reports, each with a period picker (default: the last 30 days)."""
    today = ctx.clock().date()
    return HTMLResponse(
        render_index(
            period_from=(today - dt.timedelta(days=30)).isoformat(),
            period_to=(today + dt.timedelta(days=1)).isoformat(),
            quarter=_quarter_of(today),
            names=customers(ctx.assets()),
        )
    )


def _period(start: str | None, end: str | None, quarter: str | None, now: dt.datetime) -> Period:
    try:
        if quarter:
            return Period.quarter(quarter)
        if start and end:
            return Period.between(start, end)
    except PeriodError as exc:
        raise ApiError(422, "bad_period", str(exc)) from exc
    if start or end:
        raise ApiError(422, "bad_period", "give both from and to, or a quarter")
    day = now.date()
    return Period.between(
        (day - dt.timedelta(days=30)).isoformat(), (day + dt.timedelta(days=1)).isoformat()
    )


def _html(  # noqa: PLR0917 - the route's query parameters, passed on
    ctx: Ctx, kind: str, start: str | None, end: str | None, quarter: str | None, who: str | None
) -> str:
    try:
        report_kind = ReportKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in ReportKind)
        raise ApiError(404, "not_found", f"no report {kind!r}; reports: {known}") from None
    now = ctx.clock()
    sources = Sources(db=ctx.settings.db, registry=ctx.assets(), influx=ctx.influx_client())
    try:
        report = build_report(
            report_kind,
            sources,
            period=_period(start, end, quarter, now),
            customer=who or None,
            now=now,
        )
    except FileNotFoundError as exc:
        raise ApiError(503, "store_unavailable", str(exc)) from exc
    except ValueError as exc:
        raise ApiError(422, "bad_customer", str(exc)) from exc
    return render_html(report)


@router.get("/{kind}.html", response_class=HTMLResponse, name="report_html")
def report_html(  # noqa: PLR0917 - FastAPI passes them by name
    kind: str,
    ctx: Ctx,
    _who: Viewer,
    start: From = None,
    end: To = None,
    quarter: Quarter = None,
    customer: Customer = None,
) -> HTMLResponse:
    """One report as HTML (``service-quality``, ``availability`` or ``health``)."""
    return HTMLResponse(_html(ctx, kind, start, end, quarter, customer))


@router.get("/{kind}.pdf", name="report_pdf", response_class=Response)
def report_pdf(  # noqa: PLR0917 - FastAPI passes them by name
    kind: str,
    ctx: Ctx,
    _who: Viewer,
    start: From = None,
    end: To = None,
    quarter: Quarter = None,
    customer: Customer = None,
) -> Response:
    """One report as PDF: WeasyPrint's print of the same HTML."""
    pdf = render_pdf(_html(ctx, kind, start, end, quarter, customer))
    name = f"prognos-{kind}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )
