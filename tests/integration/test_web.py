"""The planners' web page in headless Chromium, over a real `prognos serve` and a real influxd.

One module-wide fleet: 10,000 assets in the registry (CSV), the latest scores of every asset in
InfluxDB (20,000 series), 1,000 open alerts in the store (50 with a work order waiting for
approval), and one asset with 24 h of telemetry, score history with a remaining-life band and an
explanation. `prognos serve` runs as its own process; Chromium (Debian's, through Playwright)
logs in with a token, uses the feed and the asset page, and reads the page's own timings
(``performance.now()``), which are printed, never asserted on.

Screenshots land in build/test-artifacts/web/ (ignored by git; CI keeps them as artifacts).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright

from cloud.alerting import AlertEngine, AlertPolicy
from cloud.api import Role, add_token
from cloud.registry import load_registry
from cloud.store import InfluxAuth, InfluxClient, Point
from cloud.workorders import (
    Admission,
    ServicePolicy,
    Store,
    WoState,
    alert_window,
    build_from_prediction,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "web"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
N_ASSETS = 10_000
N_ALERTS = 1_000
N_PROPOSED = 50
SITES = [f"site-{i:02d}" for i in range(20)]
FOCUS = "pump-00007"
"""The asset with telemetry, a score history and an explanation (and an open alert)."""
TARGETS = ("bearing_wear", "seal_leak")
SIGNALS = ("bearing_temp_c", "vibration_rms_mm_s", "discharge_pressure_bar")
HOUR = dt.timedelta(hours=1)
TIMEOUT_MS = 60_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
expect.set_options(timeout=TIMEOUT_MS)  # a generous bound for a busy CI machine, not a target


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def asset_id(i: int) -> str:
    return f"pump-{i:05d}"


def probability(i: int, target: str) -> float:
    """A spread of probabilities with one known maximum (asset 4242, bearing wear: 0.999)."""
    if i == 4242 and target == "bearing_wear":
        return 0.999
    return round(((i * 7919 + len(target) * 31) % 1000) / 1001, 4)


def write_registry(path: Path) -> None:
    columns = [
        "asset_id",
        "site",
        "customer",
        "tier",
        "model",
        "firmware",
        "profile",
        "serial",
        "asset_class",
        "team",
        "criticality",
        "commissioned",
        "consumables",
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for i in range(N_ASSETS):
            w.writerow(
                [
                    asset_id(i),
                    SITES[i % len(SITES)],
                    f"Customer {i % 400:03d}",
                    ["VIP", "Gold", "Regular"][(i % 400) % 3],
                    "CPV-150",
                    "2.4",
                    "aquaflo_cpv150_2.x",
                    f"S{i:06d}",
                    "pump",
                    f"team-{i % 10}",
                    ["low", "medium", "high", "critical"][i % 4],
                    "2021-05-17",
                    "mechanical_seal=2024-03-01" if i == 7 else "",
                ]
            )


def explanation() -> str:
    contributions = [
        {"feature": "vibration_rms_mm_s__mean", "contribution": 0.31, "value": 7.9, "reference": 3},
        {"feature": "bearing_temp_c__slope", "contribution": 0.12, "value": 0.4, "reference": 0.0},
        {
            "feature": "discharge_pressure_bar__std",
            "contribution": -0.03,
            "value": 0.1,
            "reference": 0.2,
        },
    ]
    return json.dumps(
        {
            "method": "permutation_shapley",
            "prediction": 0.86,
            "reference_prediction": 0.45,
            "other": -0.02,
            "contributions": contributions,
        }
    )


def write_influx(influx: InfluxClient, now: dt.datetime) -> None:
    """The latest score of every asset and target, then the focus asset's history and telemetry."""
    batch: list[Point] = []
    at = ms(now - HOUR)
    for i in range(N_ASSETS):
        site = SITES[i % len(SITES)]
        for target in TARGETS:
            p = probability(i, target)
            tags = {
                "site": site,
                "asset": asset_id(i),
                "target": target,
                "model_name": "pump_failure",
                "model_version": "3",
            }
            fields: dict[str, float | str] = {
                "probability": p,
                "health": round(100 * (1 - p), 2),
                "rul": round(2000 * (1 - p) + 10, 1),
                "explain": "{}",
            }
            batch.append(Point("scores", tags, fields, at))
        if len(batch) >= 5000:
            influx.write(batch)
            batch = []
    focus_tags = {"site": SITES[7], "asset": FOCUS, "model_name": "pump_rul", "model_version": "5"}
    # 24 hourly points from 23 h 1 min to 1 min before `now`: inside the page's "24 h" range for
    # the first 59 minutes after seeding.
    for h in range(23, -1, -1):
        t = now - h * HOUR - dt.timedelta(minutes=1)
        rul = 900.0 - 25 * (23 - h)
        batch.append(
            Point(
                "scores",
                {**focus_tags, "target": "bearing_wear"},
                {
                    "probability": round(0.3 + 0.02 * (23 - h), 3),
                    "health": round(70 - 1.2 * (23 - h), 2),
                    "rul": rul,
                    "rul_lo": rul * 0.7,
                    "rul_hi": rul * 1.3,
                    # explain: at_risk: the last two scores were written without one.
                    **({} if h < 2 else {"explain": explanation() if h == 2 else "{}"}),
                },
                ms(t),
            )
        )
    telemetry_tags = {"site": SITES[7], "gateway": "gw-1", "asset": FOCUS, "model": "aquaflo"}
    for k in range(24 * 12):
        t = now - dt.timedelta(hours=24) + dt.timedelta(minutes=5 * k)
        batch.append(
            Point(
                "telemetry",
                telemetry_tags,
                {
                    "bearing_temp_c": 60 + 0.05 * k + (k % 7),
                    "vibration_rms_mm_s": 2.5 + 0.015 * k + 0.3 * (k % 5),
                    "discharge_pressure_bar": 6.0 - 0.002 * k + 0.1 * (k % 3),
                },
                ms(t),
            )
        )
    influx.write(batch)


def write_store(db: Path, registry_path: Path, now: dt.datetime) -> list[str]:
    """1,000 open alerts (assets 0..999, bearing wear); the first 50 with a proposed work order."""
    registry = load_registry(registry_path)
    engine = AlertEngine(policy=AlertPolicy(open_after=1))
    store = Store(db)
    ids = []
    try:
        for i in range(N_ALERTS):
            at = now - dt.timedelta(minutes=N_ALERTS - i)
            (change,) = engine.observe(
                asset_id(i), "bearing_wear", at, 0.7 + (i % 30) / 100, now=at
            )
            store.save_alert(change.alert)
            ids.append(change.alert.alert_id)
            if i < N_PROPOSED:
                asset = registry.get(asset_id(i))
                assert asset is not None
                wo = build_from_prediction(
                    asset=asset,
                    profile=None,
                    failure_mode="bearing_wear",
                    window=alert_window(change.alert.alert_id),
                    created_at=at,
                    policy=ServicePolicy(),
                    probability=0.8,
                    horizon_h=72.0,
                    alert_id=change.alert.alert_id,
                )
                store.add(wo, Admission(WoState.PROPOSED, "suggest"), now=at)
    finally:
        store.close()
    return ids


@dataclass
class Web:
    """The running `prognos serve` and what it serves."""

    url: str
    tokens: dict[Role, str]
    alert_ids: list[str]
    folder: Path

    def api(self, role: Role) -> httpx.Client:
        """A client of the API with `role`'s Bearer token."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            timeout=60,
        )


@pytest.fixture(scope="module")
def web(services: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    folder = tmp_path_factory.mktemp("web")
    db_name = f"test_web_{uuid.uuid4().hex[:8]}"
    services.influx_query(f'CREATE DATABASE "{db_name}"')
    services.databases.append(db_name)
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # at seeding, not at collection
    auth = InfluxAuth.basic(services.influx_user, services.influx_password)
    influx = InfluxClient(url=services.influx_url, database=db_name, auth=auth, timeout_s=120)
    try:
        write_influx(influx, now)
    finally:
        influx.close()
    write_registry(folder / "assets.csv")
    alert_ids = write_store(folder / "decisions.db", folder / "assets.csv", now)
    tokens = {
        role: add_token(folder / "tokens.json", name=f"{role.value}-1", role=role, now=now)
        for role in Role
    }
    print(f"\nseeded {N_ASSETS} assets, {N_ALERTS} alerts in {time.perf_counter() - started:.1f} s")  # noqa: T201 - the figures and artifacts, for the report (-s)
    port = free_port()
    env = {
        **os.environ,
        "PROGNOS_INFLUX_USER": services.influx_user,
        "PROGNOS_INFLUX_PASSWORD": services.influx_password,
    }
    log = (folder / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud",
            "serve",
            "--db",
            str(folder / "decisions.db"),
            "--assets",
            str(folder / "assets.csv"),
            "--tokens",
            str(folder / "tokens.json"),
            "--influx-url",
            services.influx_url,
            "--influx-db",
            db_name,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (folder / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prognos serve did not answer /healthz"
            time.sleep(0.2)
        yield Web(url=url, tokens=tokens, alert_ids=alert_ids, folder=folder)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        errors = (folder / "serve.log").read_text()
        if "Traceback" in errors:
            print(f"prognos serve log:\n{errors[-12000:]}")  # noqa: T201
        services.influx_query(f'DROP DATABASE "{db_name}"')


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser(playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh Chromium profile in this test's folder (no cookies from another test)."""
    context = playwright.chromium.launch_persistent_context(
        user_data_dir=str(tmp_path / "chromium-profile"),
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport={"width": 1400, "height": 1000},
        timeout=TIMEOUT_MS,
    )
    context.set_default_timeout(TIMEOUT_MS)
    # The page's script errors and console messages, in the test's output when it fails.
    context.on("weberror", lambda e: print(f"page error: {e.error}"))  # noqa: T201
    context.on("console", lambda m: print(f"console {m.type}: {m.text}"))  # noqa: T201
    try:
        yield context
    finally:
        context.close()


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")  # noqa: T201 - the figures and artifacts, for the report (-s)
    return path


def log_in(page: Page, web: Web, role: Role, path: str = "/") -> None:
    page.goto(f"{web.url}{path}")
    expect(page).to_have_url(f"{web.url}/login?next={path}")
    page.fill("#token", web.tokens[role])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{web.url}{path}")
    page.wait_for_selector("body[data-ready=true]")


COLOURED_PIXELS = """
(holder) => {
  const canvas = holder.querySelector("canvas");
  if (!canvas) return -1;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
  }
  return n;
}
"""
"""Strongly coloured pixels of a chart's canvas: the series' lines and bands (axes, grid and text
are grey), so a chart with its frame but no data counts none."""


def test_login_feed_acknowledge_and_asset_charts(  # noqa: PLR0915 - one story, step by step
    web: Web, browser: BrowserContext
) -> None:
    """Log in as a planner, acknowledge the newest alert, open its asset, find the charts drawn."""
    page = browser.new_page()
    page.goto(f"{web.url}/alerts")
    expect(page).to_have_url(f"{web.url}/login?next=/alerts")
    page.fill("#token", "prg_not-a-token")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("unknown or revoked token")
    page.fill("#token", web.tokens[Role.PLANNER])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{web.url}/alerts")
    page.wait_for_selector("body[data-ready=true]")
    feed = page.locator("#feed > li")
    expect(feed).to_have_count(50)
    expect(page.locator("#feed")).to_have_attribute("data-total", str(N_ALERTS))
    newest = web.alert_ids[-1]
    first = feed.first
    expect(first).to_have_attribute("data-alert", newest)
    shot(page, "feed")

    first.locator("button.ack").click()
    acknowledged = page.locator(f'#feed > li[data-alert="{newest}"]')
    expect(acknowledged).to_have_attribute("data-state", "acknowledged")
    expect(acknowledged.locator("button.ack")).to_be_disabled()
    with web.api(Role.ADMIN) as api:
        assert api.get(f"/api/v1/alerts/{newest}").json()["state"] == "acknowledged"
        (entry,) = [
            e
            for e in api.get("/api/v1/audit", params={"limit": 1000}).json()["items"]
            if e["target"] == newest
        ]
        assert (entry["user"], entry["action"], entry["outcome"]) == (
            "planner-1",
            "alert.acknowledge",
            "ok",
        )
    shot(page, "feed-acknowledged")

    second = page.locator(f'#feed > li[data-alert="{web.alert_ids[-2]}"]')
    second.locator("button.dismiss").click()  # no reason yet: refused in the page
    expect(page.locator("#status")).to_have_text("Dismissing needs a reason")
    second.locator("input.reason").fill("sensor cable swapped")
    second.locator("button.dismiss").click()
    expect(page.locator("#feed")).to_have_attribute("data-total", str(N_ALERTS - 1))
    third = page.locator(f'#feed > li[data-alert="{web.alert_ids[-3]}"]')
    third.locator("select.snooze-for").select_option("24")
    third.locator("button.snooze").click()
    expect(third).to_have_attribute("data-state", "snoozed")
    with web.api(Role.VIEWER) as api:
        dismissed = api.get(f"/api/v1/alerts/{web.alert_ids[-2]}").json()
        assert (dismissed["state"], dismissed["reason"]) == ("closed", "sensor cable swapped")

    page.goto(f"{web.url}/assets/{FOCUS}")
    page.wait_for_selector("body[data-ready=true]")
    sensors = page.locator("#sensor-charts .chart")
    expect(sensors).to_have_count(len(SIGNALS))
    for i in range(len(SIGNALS)):
        holder = sensors.nth(i)
        expect(holder).to_have_attribute("data-drawn", "true")
        assert int(holder.get_attribute("data-points") or 0) >= 200
        assert holder.evaluate(COLOURED_PIXELS) > 200
    probability_chart = page.locator("#probability-chart .chart")
    expect(probability_chart).to_have_attribute("data-drawn", "true")
    assert probability_chart.evaluate(COLOURED_PIXELS) > 200
    rul = page.locator('#rul-charts .chart[data-title^="bearing_wear (pump_rul v5)"]')
    expect(rul).to_have_attribute("data-drawn", "true")
    # forecast + low + high + threshold, 24 points each (the band between low and high).
    assert int(rul.get_attribute("data-points") or 0) == 4 * 24
    assert rul.evaluate(COLOURED_PIXELS) > 1000
    drivers = page.locator('table.drivers[data-target="bearing_wear"] tbody tr')
    expect(drivers).to_have_count(3)
    expect(drivers.first.locator("td").first).to_have_text("vibration_rms_mm_s__mean")
    # The latest explained score's drivers, and a note that the later scores were not explained.
    later = page.locator("#drivers p.unexplained", has_text="these drivers are from")
    expect(later).to_have_count(1)
    expect(later).to_contain_text("not explained: below the watch level")
    expect(page.locator("#consumables tbody tr").first.locator("td").first).to_have_text(
        "mechanical_seal"
    )
    shot(page, "asset")

    page.check("input[name=range][value='168']")
    page.wait_for_function(
        "() => window.__prognosPerf.marks.filter(m => m.name === 'chartsMs').length >= 2"
    )
    expect(page.locator("#sensor-charts .chart")).to_have_count(len(SIGNALS))
    perf = page.evaluate("window.__prognosPerf")
    print(  # noqa: T201 - the figures, for the report (-s)
        f"asset page: first render {perf['assetRenderMs']:.0f} ms, charts {perf['chartsMs']:.0f} ms"
    )


def active_alerts(web: Web) -> int:
    """Open, acknowledged, snoozed or suppressed alerts now (other tests act on some)."""
    states = ["open", "acknowledged", "snoozed", "suppressed"]
    with web.api(Role.VIEWER) as api:
        total: int = api.get("/api/v1/alerts", params={"state": states, "limit": 1}).json()["total"]
    assert total >= N_ALERTS - 10
    return total


def resource_ms(page: Page, fragment: str) -> list[float]:
    entries = page.evaluate(
        "(f) => performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes(f)).map(e => e.duration)",
        fragment,
    )
    return [float(e) for e in entries]


def test_overview_with_10000_assets_and_1000_alerts(  # noqa: PLR0915 - one story
    web: Web, browser: BrowserContext
) -> None:
    """Sites, paging, sort and filter on 10,000 assets; the page's own timings are printed."""
    page = browser.new_page()
    log_in(page, web, Role.VIEWER)
    table = page.locator("#assets")
    expect(table.locator("tbody tr")).to_have_count(100)
    expect(table).to_have_attribute("data-total", str(N_ASSETS))
    expect(page.locator("#sites tbody tr")).to_have_count(len(SITES))
    site0 = page.locator('#sites tbody tr[data-site="site-00"] td')
    expect(site0.nth(1)).to_have_text(str(N_ASSETS // len(SITES)))
    expect(site0.nth(3)).to_have_text(str(N_ALERTS // len(SITES)))
    figures: dict[str, float] = {
        "first render": page.evaluate("window.__prognosPerf.firstRenderMs")
    }
    shot(page, "overview")

    header = page.locator('#assets th[data-sort="worst_probability"] button')
    header.click()
    expect(page.locator('#assets th[data-sort="worst_probability"]')).to_have_attribute(
        "aria-sort", "ascending"
    )
    page.wait_for_function("() => document.querySelector('#assets').dataset.sortMs !== undefined")
    figures["sort ascending"] = float(table.get_attribute("data-sort-ms") or "nan")
    page.evaluate("delete document.querySelector('#assets').dataset.sortMs")
    header.click()
    expect(page.locator('#assets th[data-sort="worst_probability"]')).to_have_attribute(
        "aria-sort", "descending"
    )
    expect(table.locator("tbody tr").first).to_have_attribute("data-asset", "pump-04242")
    figures["sort descending"] = float(table.get_attribute("data-sort-ms") or "nan")
    shot(page, "overview-sorted")

    page.select_option("#site", "site-03")
    expect(table).to_have_attribute("data-total", str(N_ASSETS // len(SITES)))
    figures["filter by site"] = float(table.get_attribute("data-filter-ms") or "nan")
    rows = table.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert set(rows) == {"site-03"}
    page.select_option("#site", "")
    expect(table).to_have_attribute("data-total", str(N_ASSETS))
    page.fill("#q", "pump-0999")
    expect(table).to_have_attribute("data-total", "10")  # pump-09990 .. pump-09999
    figures["search (incl. 200 ms debounce)"] = float(
        table.get_attribute("data-search-ms") or "nan"
    )
    page.fill("#q", "")
    expect(table).to_have_attribute("data-total", str(N_ASSETS))
    page.click("#next")
    expect(page.locator("#range")).to_have_text(f"101\N{EN DASH}200 of {N_ASSETS:,}")
    figures["next page"] = float(table.get_attribute("data-page-ms") or "nan")
    api_calls = resource_ms(page, "/api/v1/assets?")
    sites_calls = resource_ms(page, "/api/v1/fleet/sites")

    page.goto(f"{web.url}/alerts")
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#feed > li")).to_have_count(50)
    active = active_alerts(web)
    expect(page.locator("#feed")).to_have_attribute("data-total", str(active))
    figures[f"alert feed first render ({active:,} active)"] = page.evaluate(
        "window.__prognosPerf.feedFirstRenderMs"
    )
    feed_calls = resource_ms(page, "/api/v1/alerts?")
    print(f"\nweb page with {N_ASSETS:,} assets and {N_ALERTS:,} open alerts (ms, in Chromium):")  # noqa: T201 - the figures and artifacts, for the report (-s)
    for name, value in figures.items():
        print(f"  {name:40s} {value:8.1f}")  # noqa: T201 - the figures and artifacts, for the report (-s)
    for name, calls in (
        ("GET /api/v1/assets", api_calls),
        ("GET /api/v1/fleet/sites", sites_calls),
        ("GET /api/v1/alerts", feed_calls),
    ):
        print(f"  {name:40s} {', '.join(f'{c:.0f}' for c in calls)}")  # noqa: T201 - the figures and artifacts, for the report (-s)
    assert all(v == v and v > 0 for v in figures.values())  # noqa: PLR0124 - every mark recorded (not NaN)


def test_viewer_reads_but_cannot_act_and_logout_ends_the_session(
    web: Web, browser: BrowserContext
) -> None:
    """Buttons are disabled for a viewer and the API refuses them (403); CSRF; logout."""
    page = browser.new_page()
    log_in(page, web, Role.VIEWER, "/alerts")
    expect(page.locator("#viewer-note")).to_be_visible()
    first = page.locator("#feed > li").first
    for button in ("button.ack", "button.snooze", "button.approve", "button.dismiss"):
        expect(first.locator(button)).to_be_disabled()
    alert_id = web.alert_ids[0]
    answers = page.evaluate(
        """async (id) => {
          const post = (headers) => fetch(`/api/v1/alerts/${id}/acknowledge`, {
            method: "POST", credentials: "same-origin",
            headers: {"Content-Type": "application/json", ...headers}, body: "{}"});
          const viewer = await post({"X-Prognos-Request": "1"});
          const noHeader = await post({});
          const me = await (await fetch("/api/v1/me")).json();
          return {viewer: [viewer.status, (await viewer.json()).error],
                  noHeader: [noHeader.status, (await noHeader.json()).error], me};
        }""",
        alert_id,
    )
    assert answers == {
        "viewer": [403, "forbidden"],
        "noHeader": [403, "csrf"],
        "me": {"name": "viewer-1", "role": "viewer"},
    }
    shot(page, "feed-viewer")
    page.click("text=Log out")
    expect(page).to_have_url(f"{web.url}/login")
    status = page.evaluate("async () => (await fetch('/api/v1/me')).status")
    assert status == 401
    page.goto(f"{web.url}/assets/{FOCUS}")
    expect(page).to_have_url(f"{web.url}/login?next=/assets/{FOCUS}")


def test_nothing_but_the_health_check_without_a_session(web: Web) -> None:
    """Pages redirect to the login page, the API and static files answer 401 or redirect."""
    with httpx.Client(base_url=web.url, timeout=30) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/login").status_code == 200
        for path in ("/", "/alerts", f"/assets/{FOCUS}", "/static/app.js", "/reports/"):
            answer = client.get(path)
            assert (answer.status_code, answer.headers.get("location")) == (
                303,
                f"/login?next={path}",
            ), path
        for path in ("/api/v1/assets", "/api/v1/fleet/sites", "/api/v1/alerts"):
            assert client.get(path).status_code == 401, path
    digest = hashlib.sha256(web.tokens[Role.ADMIN].encode()).hexdigest()
    forged = f"v1.{digest}.9999999999.{'0' * 64}"  # the right digest, not signed by the server
    with httpx.Client(base_url=web.url, timeout=30, cookies={"prognos_session": forged}) as client:
        assert client.get("/api/v1/me").status_code == 401
        assert client.get("/").headers.get("location") == "/login?next=/"
