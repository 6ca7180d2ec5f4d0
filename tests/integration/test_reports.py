"""The reports from a quarter of demo data: PDF pages as PNG, their text and their figures.

The demo data (`_reports_demo`) is made with the project's own components (the work-order
`Store` API on a controlled clock, the ingester's classifier, the scorer's `Score` points) in a
real influxd. Each report is made by `prognos report` as a PDF, turned into PNG pages by
`pdftoppm` (kept in build/test-artifacts/reports/) and read back with `pdftotext`.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _reports_demo import ACME, END, NORTH, OUTAGE, START, Demo, make_store, write_influx
from PIL import Image
from starlette.exceptions import StarletteDeprecationWarning

from cloud.api import ApiSettings, Role, add_token, create_app
from cloud.registry import load_registry
from cloud.reports import Period, ReportKind, Sources, build_report, router
from cloud.reports._cli import main as report_main
from cloud.store import InfluxAuth, InfluxClient
from cloud.workorders import Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "reports"
QUARTER = Period.quarter("2026Q3")
SECTIONS = {
    "service-quality": [
        "Work orders by priority",
        "Response on time against SLA",
        "Resolution time",
        "First-time fix",
        "Predicted against confirmed failures",
        "Top failure modes per equipment model",
    ],
    "availability": ["Availability by site", "Availability by asset", "fleet availability"],
    "health": [
        NORTH,
        ACME,
        "Health over the period",
        "Condition by asset",
        "Outlook and recommendations",
    ],
}


class World:
    """The demo stores and how to reach them."""

    def __init__(self, demo: Demo, influx: InfluxClient, env: dict[str, str], db: str) -> None:
        self.demo = demo
        self.influx = influx
        self.env = env
        self.database = db

    def args(self, kind: str, *extra: str) -> list[str]:
        """`prognos report` arguments for this world's stores."""
        return [
            kind,
            *("--db", str(self.demo.db), "--assets", str(self.demo.assets)),
            *("--influx-url", self.env["url"], "--influx-db", self.database),
            *("--influx-user", self.env["user"]),
            *extra,
        ]


@pytest.fixture(scope="module")
def world(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("reports")
    database = f"test_reports_{uuid.uuid4().hex[:8]}"
    services.influx_query(f'CREATE DATABASE "{database}"')
    services.databases.append(database)
    auth = InfluxAuth.basic(services.influx_user, services.influx_password)
    influx = InfluxClient(url=services.influx_url, database=database, auth=auth, timeout_s=60)
    try:
        demo = make_store(folder)
        write_influx(influx, demo.registry)
        env = {"url": services.influx_url, "user": services.influx_user}
        yield World(demo, influx, env, database)
    finally:
        influx.close()
        services.influx_query(f'DROP DATABASE "{database}"')


@pytest.fixture
def influx_password(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROGNOS_INFLUX_PASSWORD", services.influx_password)
    monkeypatch.delenv("PROGNOS_INFLUX_TOKEN", raising=False)


def _ink(png: Path) -> float:
    """The share of the page body's pixels (running header and footer cut off) not near white."""
    with Image.open(png) as img:
        body = img.convert("L").crop((0, img.height // 14, img.width, img.height * 19 // 20))
        hist = body.histogram()
    return sum(hist[:240]) / (body.width * body.height)


@pytest.mark.usefixtures("influx_password")
@pytest.mark.parametrize("kind", list(SECTIONS))
def test_a_pdf_report_has_its_sections_on_non_blank_pages(
    world: World, kind: str, tmp_path: Path
) -> None:
    """`prognos report KIND --format pdf` prints every section; each PNG page carries ink."""
    pdf = tmp_path / f"{kind}.pdf"
    assert (
        report_main(world.args(kind, "--quarter", "2026Q3", "--format", "pdf", "--out", str(pdf)))
        == 0
    )
    assert pdf.read_bytes().startswith(b"%PDF-")

    out = ARTIFACTS / kind
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(out / "page")], check=True)
    pages = sorted(out.glob("page-*.png"))
    assert pages, "pdftoppm made no page"
    for page in pages:
        with Image.open(page) as img:
            assert img.width > 400
            assert img.height > 500
        assert _ink(page) > 0.002, f"{page.name} is blank"

    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for section in SECTIONS[kind]:
        assert section in text, f"{section!r} missing from the {kind} PDF"
    # The print header (period, customer) and the page numbers on every page.
    assert text.count("2026 Q3 · all customers") >= len(pages)
    assert f"Page {len(pages)} of {len(pages)}" in text
    (ARTIFACTS / f"{kind}.txt").write_text(text)


def test_service_quality_counts_what_the_store_holds(world: World) -> None:
    """Work orders per priority and the feedback counts match the store's own API."""
    report = build_report(
        ReportKind.SERVICE_QUALITY,
        Sources(db=world.demo.db, registry=world.demo.registry, influx=world.influx),
        period=QUARTER,
        now=END,
    )
    s = report.service
    assert s is not None
    store = Store(world.demo.db)
    try:
        records = [
            r for r in store.work_orders(limit=100_000) if r.work_order.created_at in QUARTER
        ]
        labels = {row["key"]: row for row in store.labels()}
    finally:
        store.close()
    assert s.total.created == len(records) > 20
    for row in s.by_priority:
        assert row.created == sum(1 for r in records if r.work_order.priority.value == row.priority)
    predicted = [
        r for r in records if r.work_order.kind == "prediction" and r.state.value != "cancelled"
    ]
    confirmed = sum(1 for r in predicted if labels.get(r.key, {}).get("failure_confirmed") == 1)
    refuted = sum(1 for r in predicted if labels.get(r.key, {}).get("failure_confirmed") == 0)
    assert s.precision_total.confirmed == confirmed
    assert s.precision_total.not_confirmed == refuted
    assert confirmed > 0
    assert refuted > 0
    # Which model scored each prediction comes from InfluxDB: the demo's probability model.
    assert {r.model for r in s.precision} == {"failure_horizon@3"}
    assert s.total.responded_on_time + s.total.responded_late + s.total.response_pending > 0
    assert 0 < s.first_time_fix <= s.ftf_eligible
    assert s.failure_modes, "confirmed failures are listed per equipment model"


def test_availability_sees_the_gateway_outage_and_the_data_gap(world: World) -> None:
    """plant2's gateway was offline 8 h: its assets lose 8 h offline and 8 h of readings."""
    report = build_report(
        ReportKind.AVAILABILITY,
        Sources(db=world.demo.db, registry=world.demo.registry, influx=world.influx),
        period=QUARTER,
        now=END,
    )
    assert report.availability is not None
    rows = {r.asset: r for r in report.availability.rows}
    outage_h = (OUTAGE[1] - OUTAGE[0]).total_seconds() / 3600
    hours = (END - START).total_seconds() / 3600
    for asset in ("comp-2", "mill-1"):
        assert rows[asset].offline_h == pytest.approx(outage_h)
        assert rows[asset].data_h == hours - outage_h
    for asset in ("pump-07", "pump-08", "comp-1"):
        assert rows[asset].offline_h == 0
        assert rows[asset].data_h == hours
    for r in rows.values():
        assert r.failure_h > 0  # every asset had a confirmed failure repaired on site
        assert r.down_h <= r.offline_h + r.failure_h + r.maintenance_h + 1e-9
        assert 0 < r.availability_pct < 100


def test_a_customer_report_leaves_the_other_customer_out(world: World) -> None:
    report = build_report(
        ReportKind.HEALTH,
        Sources(db=world.demo.db, registry=world.demo.registry, influx=world.influx),
        period=QUARTER,
        customer=ACME,
        now=END,
    )
    (part,) = report.health
    assert part.customer == ACME
    assert {r.asset for r in part.rows} == {"comp-2", "mill-1"}
    assert set(part.series) == {"comp-2", "mill-1"}
    for row in part.rows:
        assert row.health_end is not None
        assert row.rul_h is not None
        assert row.alerts > 0


def test_the_cli_refuses_a_bad_period_and_an_unknown_customer(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "x.html")
    with pytest.raises(SystemExit) as exc:
        report_main(world.args("health", "--quarter", "2026Q5", "--out", out))
    assert exc.value.code == 2
    assert "2026Q5" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        report_main(
            world.args("health", "--quarter", "2026Q3", "--customer", "Nobody", "--out", out)
        )
    assert exc.value.code == 2
    assert "'Nobody'" in capsys.readouterr().err


def test_the_reports_are_served_to_viewers_only(
    world: World, services: Any, tmp_path: Path
) -> None:
    """GET /reports/, /reports/{kind}.html and .pdf need a viewer token; a bad period is 422."""
    tokens = tmp_path / "tokens.json"
    viewer = add_token(tokens, name="viewer", role=Role.VIEWER, now=END)
    settings = ApiSettings(
        db=world.demo.db,
        assets=world.demo.assets,
        tokens=tokens,
        influx_url=services.influx_url,
        influx_db=world.database,
        influx_user=services.influx_user,
        influx_password=services.influx_password,
    )
    app = create_app(settings, clock=lambda: dt.datetime(2026, 10, 2, tzinfo=dt.UTC))
    app.include_router(router, prefix="/reports")  # as `prognos serve` mounts it
    auth = {"Authorization": f"Bearer {viewer}"}
    with TestClient(app) as client:
        assert client.get("/reports/").status_code == 401
        index = client.get("/reports/", headers=auth)
        assert index.status_code == 200
        for kind in ReportKind:
            assert f'action="{kind.value}.html"' in index.text
        assert NORTH in index.text

        page = client.get(
            "/reports/availability.html",
            params={"from": "2026-07-01", "to": "2026-10-01"},
            headers=auth,
        )
        assert page.status_code == 200
        assert "Equipment availability" in page.text
        assert "<script" not in page.text

        pdf = client.get(
            "/reports/health.pdf", params={"quarter": "2026Q3", "customer": ACME}, headers=auth
        )
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-")

        assert client.get("/reports/health.pdf").status_code == 401
        bad = client.get("/reports/health.html", params={"quarter": "2026Q9"}, headers=auth)
        assert bad.status_code == 422
        assert client.get("/reports/nothing.html", headers=auth).status_code == 404


def test_the_registry_of_the_demo_has_two_customers(world: World) -> None:
    registry = load_registry(world.demo.assets)
    assert sorted({a.customer for a in registry}) == sorted([ACME, NORTH])
