"""Building a report: read the stores, compute the figures, render HTML, print the PDF.

One jinja2 template per report kind renders the HTML; the PDF is WeasyPrint's print of that
same HTML (print CSS: A4, header with the period and customer, page numbers in the footer).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import jinja2

from cloud.registry import Asset, AssetRegistry
from cloud.reports import _charts as charts
from cloud.reports._figures import (
    PRIORITIES,
    Availability,
    AvailabilityRow,
    EquipmentHealth,
    ServiceQuality,
    availability,
    equipment_health,
    service_quality,
)
from cloud.reports._period import Period
from cloud.reports._sources import (
    WoFacts,
    asset_gateways,
    connect_ro,
    gateway_offline,
    health_series,
    latest_scores,
    period_extremes,
    read_alerts,
    read_work_orders,
    scoring_models,
    telemetry_hours,
)
from cloud.store import InfluxClient
from edge_agent import __version__

TEMPLATES: Final = Path(__file__).with_name("templates")


class ReportKind(enum.StrEnum):
    """The reports there are."""

    SERVICE_QUALITY = "service-quality"
    AVAILABILITY = "availability"
    HEALTH = "health"

    @property
    def heading(self) -> str:
        """The report's title."""
        return {
            ReportKind.SERVICE_QUALITY: "Service quality",
            ReportKind.AVAILABILITY: "Equipment availability",
            ReportKind.HEALTH: "Equipment health",
        }[self]


@dataclasses.dataclass(frozen=True, slots=True)
class Sources:
    """Where a report's figures come from.

    Attributes:
        db: The work-order/alert SQLite file (`cloud.workorders.Store`), read only.
        registry: The asset registry.
        influx: InfluxDB (scores, telemetry, gateway status); None leaves out what only it
            knows (gateway outages, data coverage, health and remaining life, which model
            scored).
    """

    db: Path
    registry: AssetRegistry
    influx: InfluxClient | None


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    """A report's figures, ready to render."""

    kind: ReportKind
    period: Period
    customer: str | None
    generated_at: dt.datetime
    service: ServiceQuality | None = None
    availability: Availability | None = None
    health: tuple[EquipmentHealth, ...] = ()


def customers(registry: AssetRegistry) -> list[str]:
    """The customers of the registry, sorted."""
    return sorted({a.customer for a in registry})


def _availability(
    sources: Sources,
    assets: Sequence[Asset],
    orders: Sequence[WoFacts],
    period: Period,
    customer: str | None,
) -> Availability:
    mine = [a for a in assets if customer is None or a.customer == customer]
    ids = [a.asset_id for a in mine]
    gateways: dict[str, set[str]] = {a.asset_id: {a.gateway} if a.gateway else set() for a in mine}
    offline: Mapping[str, Any] = {}
    data: Mapping[str, int] | None = None
    if sources.influx is not None and ids:
        for asset, seen in asset_gateways(sources.influx).items():
            if asset in gateways:
                gateways[asset] |= seen
        offline = gateway_offline(
            sources.influx, {g for gs in gateways.values() for g in gs}, period
        )
        data = telemetry_hours(sources.influx, ids, period)
    return availability(
        mine,
        orders,
        period=period,
        customer=customer,
        gateways=gateways,
        offline=offline,
        data_hours=data,
    )


def build_report(
    kind: ReportKind,
    sources: Sources,
    *,
    period: Period,
    customer: str | None = None,
    now: dt.datetime,
) -> Report:
    """Read the stores and compute one report's figures.

    Args:
        kind: Which report.
        sources: The stores.
        period: The period covered.
        customer: Only this customer; None for all (the health report then has one part per
            customer).
        now: When the report is made (printed on it).

    Raises:
        FileNotFoundError: The store file does not exist.
        ValueError: `customer` has no asset in the registry.
        cloud.store.InfluxError: InfluxDB failed.
    """
    assets = list(sources.registry)
    if customer is not None and not any(a.customer == customer for a in assets):
        known = ", ".join(repr(c) for c in customers(sources.registry)) or "none"
        raise ValueError(f"no asset of customer {customer!r} in the registry (customers: {known})")
    db = connect_ro(sources.db)
    try:
        orders = read_work_orders(db)
        alerts = read_alerts(db) if kind is ReportKind.HEALTH else []
    finally:
        db.close()
    report = Report(kind=kind, period=period, customer=customer, generated_at=now)
    if kind is ReportKind.SERVICE_QUALITY:
        scored: Mapping[tuple[str, str, dt.datetime], str] = {}
        if sources.influx is not None:
            scored = scoring_models(
                sources.influx,
                (
                    (f.wo.asset, f.wo.target, f.wo.created_at)
                    for f in orders
                    if f.wo.kind == "prediction" and f.wo.created_at in period
                ),
            )
        figures = service_quality(
            orders,
            period=period,
            customer=customer,
            assets={a.asset_id: a for a in assets},
            scored_by=scored,
        )
        return dataclasses.replace(report, service=figures)
    avail = _availability(sources, assets, orders, period, customer)
    if kind is ReportKind.AVAILABILITY:
        return dataclasses.replace(report, availability=avail)
    parts = []
    for name in [customer] if customer is not None else customers(sources.registry):
        ids = [a.asset_id for a in assets if a.customer == name]
        latest, series, extremes = [], {}, {}
        if sources.influx is not None and ids:
            latest = latest_scores(sources.influx, ids, before=period.end, since=period.start)
            series = health_series(sources.influx, ids, period)
            extremes = period_extremes(sources.influx, ids, period)
        parts.append(
            equipment_health(
                assets,
                orders,
                alerts,
                period=period,
                customer=name,
                latest=latest,
                series=series,
                extremes=extremes,
                availability_rows=avail.rows,
            )
        )
    return dataclasses.replace(report, health=tuple(parts))


# ---------------------------------------------------------------- rendering


def _num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


@functools.cache
def _environment() -> jinja2.Environment:
    """One environment per process: its template cache survives between reports."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = lambda v, d=1: _num(v, d, " %")
    env.filters["label"] = lambda s: str(s).replace("_", " ")
    return env


@functools.cache
def _css() -> str:
    return (TEMPLATES / "report.css").read_text(encoding="utf-8")


def _service_charts(s: ServiceQuality) -> dict[str, str]:
    names = [r.priority for r in s.by_priority]
    return {
        "by_priority": charts.stacked_bars(
            names,
            {
                "resolved": [r.resolved for r in s.by_priority],
                "open": [r.open for r in s.by_priority],
                "cancelled / rejected": [r.dropped for r in s.by_priority],
            },
            ylabel="work orders",
        ),
        "on_time": charts.percent_bars(
            [*names, "all"], [*(r.on_time_pct for r in s.by_priority), s.total.on_time_pct]
        ),
        "precision": charts.percent_bars(
            [f"{r.model} / {r.target}" for r in s.precision],
            [r.precision_pct for r in s.precision],
        )
        if s.precision
        else "",
    }


def _availability_charts(a: Availability) -> dict[str, str]:
    rows: Sequence[AvailabilityRow] = a.rows[:30]
    return {
        "by_asset": charts.percent_bars([r.asset for r in rows], [r.availability_pct for r in rows])
        if rows
        else ""
    }


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no JavaScript)."""
    env = _environment()
    context: dict[str, Any] = {
        "report": report,
        "kind": report.kind,
        "title": report.kind.heading,
        "period": report.period,
        "customer": report.customer or "all customers",
        "generated": report.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "priorities": [p.value for p in PRIORITIES],
        "css": _css(),
    }
    if report.service is not None:
        context |= {"s": report.service, "charts": _service_charts(report.service)}
    if report.availability is not None:
        context |= {"a": report.availability, "charts": _availability_charts(report.availability)}
    if report.kind is ReportKind.HEALTH:
        context["parts"] = [
            (
                h,
                charts.lines(h.series, ylabel="health (lowest target)", ylim=(0, 105))
                if h.series
                else "",
            )
            for h in report.health
        ]
    return env.get_template(f"{report.kind.value}.html").render(context)


def render_pdf(html: str) -> bytes:
    """Print the HTML to PDF with WeasyPrint (imported here: it is slow to load)."""
    import weasyprint  # type: ignore[import-untyped]  # noqa: PLC0415 - only PDF needs it

    # WeasyPrint warns about every SVG presentation property its CSS parser does not know
    # (matplotlib's ``stroke``...) although its SVG renderer draws them: keep the log readable.
    logger = logging.getLogger("weasyprint")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        pdf: bytes = weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
    finally:
        logger.setLevel(level)
    return pdf


def render_index(*, period_from: str, period_to: str, quarter: str, names: Sequence[str]) -> str:
    """The reports' index page: each report with a period picker (plain HTML forms)."""
    return (
        _environment()
        .get_template("index.html")
        .render(
            kinds=list(ReportKind),
            period_from=period_from,
            period_to=period_to,
            quarter=quarter,
            customers=names,
            css=_css(),
        )
    )
