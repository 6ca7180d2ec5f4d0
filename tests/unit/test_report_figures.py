"""The reports' figures on small hand-made histories (pure: no store, no InfluxDB)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from cloud._cli import main
from cloud.registry import parse_registry_yaml
from cloud.reports import Period, PeriodError, ReportKind, Sources, build_report, render_html
from cloud.reports._figures import availability, service_quality, union_hours
from cloud.reports._sources import Label, WoFacts
from cloud.workorders import (
    Admission,
    Feedback,
    ServicePolicy,
    Store,
    WoEvent,
    WoState,
    build_from_prediction,
)

T0 = dt.datetime(2026, 7, 6, 8, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
Q3 = Period.quarter("2026Q3")
REGISTRY = parse_registry_yaml("""
assets:
  - {asset_id: pump-07, site: plant1, customer: North, tier: Regular, model: CPV-150,
     firmware: "2.4", profile: aquaflo_cpv150_2.x, serial: S1, asset_class: pump,
     team: north, criticality: critical, commissioned: 2021-05-17, gateway: gw-1}
  - {asset_id: comp-1, site: plant2, customer: Acme, tier: Regular, model: SC75,
     firmware: "4.2.3", profile: airtek_sc75_4.2, serial: S2, asset_class: compressor,
     team: south, criticality: medium, commissioned: 2019-11-04}
""")
ASSETS = {a.asset_id: a for a in REGISTRY}


def _wo(asset: str, target: str, created: dt.datetime, n: int) -> WoFacts:
    wo = build_from_prediction(
        asset=ASSETS[asset],
        profile=None,
        failure_mode=target,
        window=f"alert-{n}",
        created_at=created,
        policy=ServicePolicy(),
        probability=0.9,
        horizon_h=24.0,
    )
    return WoFacts(
        wo=wo,
        state=WoState.CREATED,
        responded_at=None,
        started_at=None,
        resolved_at=None,
        reopened=False,
        label=None,
    )


def _done(f: WoFacts, *, respond: dt.timedelta, fix: dt.timedelta, **kw: object) -> WoFacts:
    return dataclasses.replace(
        f,
        state=WoState.CLOSED,
        responded_at=f.wo.created_at + respond,
        started_at=f.wo.created_at + respond,
        resolved_at=f.wo.created_at + fix,
        **kw,  # type: ignore[arg-type]
    )


def test_a_quarter_is_three_calendar_months_in_utc() -> None:
    assert (Q3.start, Q3.end) == (
        dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    )
    q4 = Period.quarter("2026-q4")
    assert q4.end == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert Q3.hours == 92 * 24


@pytest.mark.parametrize("text", ["2026Q5", "26Q1", "2026", "Q3"])
def test_a_bad_quarter_is_refused_naming_it(text: str) -> None:
    with pytest.raises(PeriodError, match=repr(text).replace("[", r"\[")):
        Period.quarter(text)


def test_a_period_must_end_after_it_starts() -> None:
    with pytest.raises(PeriodError, match="end after it starts"):
        Period.between("2026-07-02", "2026-07-01")
    assert Period.between("2026-07-01", "2026-07-02T00:00Z").hours == 24


def test_overlapping_spans_count_once() -> None:
    spans = [(T0, T0 + 3 * H), (T0 + 2 * H, T0 + 5 * H), (T0 + 10 * H, T0 + 11 * H)]
    assert union_hours(spans) == 6
    assert union_hours([]) == 0


def test_response_on_time_late_missed_and_not_yet_due() -> None:
    """On time by the deadline; late after it; no answer counts late once the deadline passed."""
    a = _wo("pump-07", "bearing_wear", T0, 1)
    window = a.wo.respond_by - a.wo.created_at
    on_time = _done(a, respond=window / 2, fix=5 * H)
    late = _done(_wo("pump-07", "seal_leak", T0 + H, 2), respond=window * 2, fix=6 * H)
    missed = _wo("comp-1", "element_overheating", T0 + 2 * H, 3)  # never answered
    near_end = Q3.end - window / 2
    pending = _wo("comp-1", "separator_clogging", near_end, 4)  # deadline after the period
    s = service_quality(
        [on_time, late, missed, pending], period=Q3, customer=None, assets=ASSETS, scored_by={}
    )
    assert (s.total.responded_on_time, s.total.responded_late, s.total.response_pending) == (
        1,
        2,
        1,
    )
    assert s.total.on_time_pct == pytest.approx(100 / 3)
    assert s.total.resolved == 2
    assert s.total.resolution_median_h == pytest.approx(5.5)
    assert [k for k, *_ in s.late_orders] == [late.wo.key]


def test_first_time_fix_excludes_reopened_work_and_second_visits() -> None:
    first = _done(_wo("pump-07", "bearing_wear", T0, 1), respond=H, fix=4 * H)
    again = _done(_wo("pump-07", "bearing_wear", T0 + 10 * 24 * H, 2), respond=H, fix=4 * H)
    reopened = _done(
        _wo("comp-1", "element_overheating", T0, 3), respond=H, fix=9 * H, reopened=True
    )
    clean = _done(_wo("comp-1", "separator_clogging", T0, 4), respond=H, fix=3 * H)
    s = service_quality(
        [first, again, reopened, clean], period=Q3, customer=None, assets=ASSETS, scored_by={}
    )
    assert s.ftf_eligible == 4
    assert (s.reopened, s.repeat_visits) == (1, 1)
    assert s.first_time_fix == 2  # `again` and `clean`
    assert s.ftf_pct == 50


def test_precision_counts_feedback_per_scoring_model_and_failure_modes_per_equipment() -> None:
    yes = Label(
        failure_confirmed=True,
        root_cause="misalignment",
        parts_used=("P1",),
        resolution_mode="on-site",
    )
    no = Label(
        failure_confirmed=False,
        root_cause="no fault found",
        parts_used=(),
        resolution_mode="remote",
    )
    orders = [
        _done(
            _wo("pump-07", "bearing_wear", T0 + i * 40 * 24 * H, i),
            respond=H,
            fix=2 * H,
            label=label,
        )
        for i, label in enumerate([yes, yes, no])
    ]
    orders.append(_wo("comp-1", "element_overheating", T0, 9))  # no feedback yet
    scored = {(f.wo.asset, f.wo.target, f.wo.created_at): "fp@3" for f in orders[:3]}
    s = service_quality(orders, period=Q3, customer=None, assets=ASSETS, scored_by=scored)
    by_model = {(r.model, r.target): r for r in s.precision}
    assert by_model["fp@3", "bearing_wear"].precision_pct == pytest.approx(200 / 3)
    assert by_model["unknown", "element_overheating"].no_feedback == 1
    assert s.precision_total.predicted == 4
    (mode,) = s.failure_modes
    assert (mode.equipment_model, mode.failure_mode, mode.confirmed) == (
        "CPV-150",
        "bearing_wear",
        2,
    )
    assert mode.root_causes == (("misalignment", 2),)
    assert s.remote == 1


def test_a_customer_sees_only_its_work_orders() -> None:
    orders = [_wo("pump-07", "bearing_wear", T0, 1), _wo("comp-1", "element_overheating", T0, 2)]
    s = service_quality(orders, period=Q3, customer="Acme", assets=ASSETS, scored_by={})
    assert s.total.created == 1


def test_availability_is_the_period_less_offline_and_on_site_repair() -> None:
    yes = Label(failure_confirmed=True, root_cause="x", parts_used=(), resolution_mode="on-site")
    remote = Label(failure_confirmed=False, root_cause="", parts_used=(), resolution_mode="remote")
    repair = _done(_wo("pump-07", "bearing_wear", T0, 1), respond=H, fix=5 * H, label=yes)  # 4 h
    far = _done(_wo("pump-07", "seal_leak", T0, 2), respond=H, fix=9 * H, label=remote)  # remote
    offline = {"gw-1": [(T0 + 3 * H, T0 + 8 * H)]}  # overlaps the repair by 2 h
    a = availability(
        list(REGISTRY),
        [repair, far],
        period=Q3,
        customer=None,
        gateways={"pump-07": {"gw-1"}},
        offline=offline,
        data_hours=None,
    )
    rows = {r.asset: r for r in a.rows}
    pump = rows["pump-07"]
    assert (pump.offline_h, pump.failure_h, pump.maintenance_h, pump.down_h) == (5, 4, 0, 7)
    assert pump.availability_pct == pytest.approx(100 * (1 - 7 / Q3.hours))
    assert rows["comp-1"].availability_pct == 100
    assert a.fleet_pct == pytest.approx(100 * (1 - 7 / (2 * Q3.hours)))


def test_reports_render_from_the_store_alone(tmp_path: Path) -> None:
    """Without InfluxDB every report still renders, from the store and the registry only."""
    store = Store(tmp_path / "decisions.db")
    try:
        wo = _wo("pump-07", "bearing_wear", T0, 1).wo
        store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
        for event, at in ((WoEvent.ASSIGNED, T0 + H), (WoEvent.IN_PROGRESS, T0 + 2 * H)):
            store.apply_status(wo.key, event, now=at, external_id="X1", feedback=None)
        feedback = Feedback(failure_confirmed=True, root_cause="misalignment", parts_used=("P1",))
        store.apply_status(
            wo.key, WoEvent.RESOLVED, now=T0 + 6 * H, external_id=None, feedback=feedback
        )
    finally:
        store.close()
    sources = Sources(db=tmp_path / "decisions.db", registry=REGISTRY, influx=None)
    for kind in ReportKind:
        report = build_report(kind, sources, period=Q3, now=Q3.end)
        html = render_html(report)
        assert "<script" not in html
        assert kind.heading in html
        assert "2026 Q3" in html
    service = build_report(ReportKind.SERVICE_QUALITY, sources, period=Q3, now=Q3.end).service
    assert service is not None
    assert service.total.resolution_median_h == 6
    assert service.failure_modes[0].root_causes == (("misalignment", 1),)
    avail = build_report(ReportKind.AVAILABILITY, sources, period=Q3, now=Q3.end).availability
    assert avail is not None
    assert {r.asset: r.failure_h for r in avail.rows}["pump-07"] == 4


def test_prognos_report_is_a_command_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "{service-quality,availability,health}" in out
    assert "--quarter" in out
