"""`prognos workorders dry-run` against a real influxd: a score history whose answer is known.

Four weeks of hourly scores for three engines are written to this test's own database as the
scorer writes them (``scores``, tags asset/target/model_name/model_version, fields health,
probability, horizon_h, rul_lo); failures come from a CSV and from a store label. The scoring
config and the service policy are real files, as the live processes read them.

The history (T0 = Monday 2026-08-03 00:00 UTC, ISO week 32; open after 3 scores at risk 0.7,
clear below 0.5, cooldown 24 h; each work order taken as done after 3 days):

- e1: risk 0.8 from day 2 to day 12 -> alerts at day 2 02:00, day 6 04:00 (closed day 5 02:00,
  cooldown until day 6 02:00, third score), day 10 06:00; it fails on day 12 12:00 (CSV).
- e2: risk 0.8 on day 2 only -> one alert at day 2 02:00, the same hour as e1's and the same
  team: with a budget of 1 a day it is deferred. A "failure confirmed" label on day 4.
- e3 (another team): 0.69 / 0.71 alternating all along -> never three in a row: no alert. It
  fails on day 20 (CSV): a failure no work order came before.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from cloud.alerting import AlertEngine, AlertPolicy
from cloud.store import InfluxAuth, InfluxClient, Point
from cloud.workorders import (
    Admission,
    Feedback,
    ServicePolicy,
    Store,
    WoEvent,
    WoState,
    alert_window,
    build_from_prediction,
)
from cloud.workorders._cli import main

T0 = dt.datetime(2026, 8, 3, tzinfo=dt.UTC)
HOURS = 28 * 24
ASSETS = """
assets:
  - {asset_id: e1, site: plant1, customer: Aero, tier: Regular, model: TM-21, firmware: "1.0",
     profile: turbomon_tm21_1.0, serial: S1, asset_class: engine, team: north,
     criticality: medium, commissioned: 2020-01-01}
  - {asset_id: e2, site: plant1, customer: Aero, tier: Regular, model: TM-21, firmware: "1.0",
     profile: turbomon_tm21_1.0, serial: S2, asset_class: engine, team: north,
     criticality: medium, commissioned: 2020-01-01}
  - {asset_id: e3, site: plant2, customer: Aero, tier: Regular, model: TM-21, firmware: "1.0",
     profile: turbomon_tm21_1.0, serial: S3, asset_class: engine, team: south,
     criticality: medium, commissioned: 2020-01-01}
"""
CONFIG = """
alert: {open_level: 0.7, clear_level: 0.5, open_after: 3, clear_after: 1, cooldown: 24h}
"""
POLICY = """
guardrails:
  default_mode: auto
  daily_budget: {north: 1}
"""
TARGET = "hpc_degradation"


def risk(asset: str, h: int) -> float:
    if asset == "e1":
        return 0.8 if 48 <= h < 288 else 0.1
    if asset == "e2":
        return 0.8 if 48 <= h < 72 else 0.1
    return 0.71 if h % 2 else 0.69


def history() -> list[Point]:
    points = []
    for h in range(HOURS):
        ms = int((T0 + dt.timedelta(hours=h)).timestamp() * 1000)
        for asset in ("e1", "e2", "e3"):
            tags = {"site": "plant1", "asset": asset, "target": TARGET}
            health = round(100 * (1 - risk(asset, h)), 6)
            rul = {"health": health, "rul": 600.0, "rul_lo": 500.0, "rul_hi": 700.0}
            points.append(
                Point("scores", tags | {"model_name": "cmapss_rul", "model_version": "1"}, rul, ms)
            )
            if asset == "e1":  # a second, healthier model on the same target: min health wins
                other = {"health": 95.0, "probability": 0.3, "horizon_h": 48.0}
                tags2 = tags | {"model_name": "cmapss_failure", "model_version": "3"}
                points.append(Point("scores", tags2, other, ms))
    return points


@pytest.fixture
def world(services: Any, influx_db: str, tmp_path: Path) -> dict[str, Any]:
    auth = InfluxAuth.basic(services.influx_user, services.influx_password)
    with InfluxClient(url=services.influx_url, database=influx_db, auth=auth) as influx:
        points = history()
        for i in range(0, len(points), 5000):
            influx.write(points[i : i + 5000], precision="ms")
    (tmp_path / "assets.yaml").write_text(ASSETS)
    (tmp_path / "scoring.yaml").write_text(CONFIG)
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "failures.csv").write_text(
        "asset,failed_at,failure_mode\n"
        f"e1,{(T0 + dt.timedelta(days=12, hours=12)).isoformat()},{TARGET}\n"
        f"e3,{(T0 + dt.timedelta(days=20)).isoformat()},\n"
    )
    label_failure(tmp_path / "decisions.db", "e2", T0 + dt.timedelta(days=4))
    return {"services": services, "db": influx_db, "tmp": tmp_path}


class _Asset:
    site = "plant1"
    customer = "Aero"
    tier = "Regular"
    profile = "turbomon_tm21_1.0"
    asset_class = "engine"
    team = "north"
    criticality = "medium"
    warranty_end = None

    def __init__(self, asset_id: str) -> None:
        self.asset_id = asset_id


def label_failure(path: Path, asset: str, at: dt.datetime) -> None:
    """A work order resolved by the service system with "failure confirmed" (a label)."""
    engine = AlertEngine(policy=AlertPolicy(open_after=1))
    (raised,) = engine.observe(asset, TARGET, at, 0.9, now=at)
    store = Store(path)
    try:
        store.insert_alert(raised.alert, source="scorer")
        wo = build_from_prediction(
            asset=_Asset(asset),
            profile=None,
            failure_mode=TARGET,
            window=alert_window(raised.alert.alert_id),
            created_at=at,
            policy=ServicePolicy(),
            alert_id=raised.alert.alert_id,
        )
        store.add(wo, Admission(WoState.PENDING, "auto"), now=at)
        store.transition(wo.key, WoEvent.DELIVERED, now=at, source="outbox", external_id="X1")
        store.apply_status(
            wo.key,
            WoEvent.RESOLVED,
            now=at,
            external_id="X1",
            feedback=Feedback(failure_confirmed=True, root_cause="HPC stall"),
        )
    finally:
        store.close()


def dry_run(world: dict[str, Any], capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    svc, tmp = world["services"], world["tmp"]
    args = [
        "--db",
        str(tmp / "decisions.db"),
        "dry-run",
        "--registry",
        str(tmp / "assets.yaml"),
        "--profiles",
        str(tmp / "no-profiles"),
        "--policy",
        str(tmp / "policy.yaml"),
        "--failures",
        str(tmp / "failures.csv"),
        "--influx-url",
        svc.influx_url,
        "--database",
        world["db"],
        "--from",
        T0.isoformat(),
        "--to",
        (T0 + dt.timedelta(hours=HOURS)).isoformat(),
    ]
    if not any(a == "--config" for a in extra):
        args += ["--config", str(tmp / "scoring.yaml")]
    code = main([*args, *extra])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out) if "json" in extra else out


@pytest.fixture(autouse=True)
def _influx_env(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    svc = world["services"]
    monkeypatch.setenv("PROGNOS_INFLUX_USER", svc.influx_user)
    monkeypatch.setenv("PROGNOS_INFLUX_PASSWORD", svc.influx_password)


def weeks(report: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    keys = ("alerts", "work_orders", "auto", "suggested", "deferred", "before_failure", "failures")
    return {w["week"]: tuple(w[k] for k in keys) for w in report["weeks"]}


def test_the_dry_run_counts_each_week_as_the_history_says(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Per week: alerts, work orders (auto/suggested/deferred), before a failure, failures."""
    report = dry_run(world, capsys, "--format", "json")
    assert report["scores"] == 3 * HOURS
    assert weeks(report) == {
        #            alerts  wo  auto  sugg  defer  before  failures
        "2026-W32": (3, 3, 2, 0, 1, 3, 1),  # e1 day 2 + day 6, e2 day 2 (deferred); e2's label
        "2026-W33": (1, 1, 1, 0, 0, 1, 1),  # e1 day 10; e1 fails on day 12
        "2026-W34": (0, 0, 0, 0, 0, 0, 1),  # e3 fails, nothing came before
    }
    assert (report["total"]["work_orders"], report["total"]["before_failure"]) == (4, 4)
    assert report["failures_total"] == 3
    assert report["failures_with_work_order_before"] == 2
    by_asset = {f["asset"]: f for f in report["failures"]}
    assert by_asset["e1"]["lead_h"] == 10 * 24 + 10  # day 2 02:00 -> day 12 12:00
    assert by_asset["e2"]["lead_h"] == 46  # day 2 02:00 -> the label on day 4
    assert (by_asset["e2"]["source"], by_asset["e3"]["work_order_at"]) == ("label", None)
    assert report["median_lead_h"] == (250 + 46) / 2


def test_changing_a_setting_changes_the_result_as_expected(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Budget, mode, threshold and lead window each move exactly the counts they govern."""
    tmp = world["tmp"]
    (tmp / "budget2.yaml").write_text("guardrails: {default_mode: auto, daily_budget: {north: 2}}")
    more = dry_run(world, capsys, "--format", "json", "--policy", str(tmp / "budget2.yaml"))
    assert weeks(more)["2026-W32"][2:5] == (3, 0, 0)  # e2 no longer waits for the budget

    (tmp / "suggest.yaml").write_text("guardrails: {modes: {engine: suggest}}")
    suggest = dry_run(world, capsys, "--format", "json", "--policy", str(tmp / "suggest.yaml"))
    assert (suggest["total"]["auto"], suggest["total"]["suggested"]) == (0, 4)

    (tmp / "high.yaml").write_text("alert: {open_level: 0.85, clear_level: 0.5, open_after: 3}")
    high = dry_run(world, capsys, "--format", "json", "--config", str(tmp / "high.yaml"))
    assert (high["total"]["alerts"], high["total"]["work_orders"]) == (0, 0)
    assert high["failures_with_work_order_before"] == 0

    (tmp / "cool.yaml").write_text("alert: {open_after: 3, cooldown: 5d}")
    cool = dry_run(world, capsys, "--format", "json", "--config", str(tmp / "cool.yaml"))
    # e1: day 2 02:00, closed day 5 02:00, cooldown to day 10 02:00 -> day 10 04:00: two.
    assert cool["total"]["work_orders"] == 3

    short = dry_run(world, capsys, "--format", "json", "--lead-window", "5d")
    assert short["total"]["before_failure"] == 2  # e1's day-10 and e2's
    assert {f["asset"]: f["lead_h"] for f in short["failures"]}["e1"] == 2 * 24 + 6


def test_batches_and_spans_do_not_change_the_answer(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """One asset and one day per query (progress on stderr) gives the same report."""
    whole = dry_run(world, capsys, "--format", "json")
    small = dry_run(world, capsys, "--format", "json", "--batch-assets", "1", "--span", "1d")
    assert small == whole


def test_the_table_names_weeks_totals_and_missed_failures(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The default output is a table a planner reads."""
    out = dry_run(world, capsys)
    lines = out.splitlines()
    assert lines[2].split() == [
        "week", "alerts", "work", "orders", "auto", "suggested", "deferred", "before", "failure",
        "failures",
    ]  # fmt: skip
    assert lines[3].split() == ["2026-W32", "3", "3", "2", "0", "1", "3", "1"]
    assert any(line.split()[:2] == ["total", "4"] for line in lines)
    assert "failures: 3, with a work order before: 2, median lead 6.2 d" in out
    assert any(line.split()[:2] == ["e3", "-"] for line in lines)


def test_a_bad_failures_file_is_a_usage_error_naming_the_line(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 and one line naming the file, the line and the value."""
    tmp = world["tmp"]
    (tmp / "bad.csv").write_text("asset,failed_at\ne1,yesterday\n")
    code = main(
        [
            "dry-run",
            "--registry",
            str(tmp / "assets.yaml"),
            "--profiles",
            str(tmp / "no-profiles"),
            "--failures",
            str(tmp / "bad.csv"),
            "--influx-url",
            world["services"].influx_url,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"{tmp / 'bad.csv'}:2: failed_at: expected an ISO 8601 time" in err
    assert "Got 'yesterday' instead." in err
