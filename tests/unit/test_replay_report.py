"""The replay report's pure core: consumables forecast before their limit, and their lead."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from cloud._replay_report import (
    ReportInputs,
    WorkOrderRow,
    build_report,
    by_consumable,
    consumable_rows,
    format_report,
)

SPEED = 3600.0
"""One simulated hour per wall second: a wall ms is a simulated hour / 1000."""
START_MS = 1_000_000


def _replaced(asset: str, t_h: float, limit_h: float | None) -> dict[str, Any]:
    detail: dict[str, Any] = {"dp_before_bar": 0.054}
    if limit_h is not None:
        detail["limit_t_sim_s"] = limit_h * 3600
    return {
        "event": "consumable_replaced",
        "asset": asset,
        "profile": "airtek_sc75_4.2",
        "consumable": "air_filter",
        "t_sim_s": t_h * 3600,
        "wall_ms": START_MS + round(t_h * 1000),
        "detail": detail,
    }


def _forecast(asset: str, at_h: float, consumable: str = "air_filter") -> WorkOrderRow:
    return WorkOrderRow(
        key=f"wo-{asset}-{at_h}",
        asset=asset,
        kind="prediction",
        created_ms=START_MS + round(at_h * 1000),
        state="created",
        delivered=True,
        consumable=consumable,
    )


def _inputs(truth: list[dict[str, Any]], work_orders: list[WorkOrderRow]) -> ReportInputs:
    return ReportInputs(
        manifest={"clock": {"speed": SPEED, "wall_start_ms": START_MS}, "devices": []},
        ground_truth=truth,
        served={},
        stored={},
        outbox_left=0,
        work_orders=work_orders,
        run={"started_ms": START_MS, "stopped_ms": START_MS + 300_000},
    )


def test_a_forecast_before_the_limit_counts_with_its_lead_to_the_limit() -> None:
    """Lead = limit - first forecast since the previous replacement, in simulated hours."""
    truth = [_replaced("compressor-01", 210, 200), _replaced("compressor-01", 420, 410)]
    wos = [
        _forecast("compressor-01", 150),
        _forecast("compressor-01", 205),  # after the first limit: not before it
        _forecast("compressor-01", 380),
    ]
    rows = consumable_rows(_inputs(truth, wos), SPEED)
    assert [r["work_order_before_limit"] for r in rows] == [True, True]
    assert [round(r["lead_sim_h"], 3) for r in rows] == [50.0, 30.0]


def test_a_limit_without_a_forecast_is_a_miss_and_other_assets_do_not_count() -> None:
    """A forecast for another asset, another consumable, or a rule work order is not one."""
    truth = [_replaced("compressor-01", 210, 200), _replaced("compressor-02", 100, None)]
    wos = [
        _forecast("compressor-02", 150),
        _forecast("compressor-01", 150, consumable="oil_filter"),
        WorkOrderRow(
            key="wo-rule",
            asset="compressor-01",
            kind="rule",
            created_ms=START_MS + 150_000,
            state="created",
            delivered=True,
            consumable="air_filter",
        ),
    ]
    rows = consumable_rows(_inputs(truth, wos), SPEED)
    assert rows[0]["asset"] == "compressor-02"
    assert not rows[0]["limit_reached"]
    assert rows[1]["work_order_before_limit"] is False
    assert rows[1]["lead_sim_h"] is None
    summary = by_consumable(rows)["air_filter"]
    assert (summary["replacements"], summary["limit_reached"]) == (2, 1)
    assert (summary["with_work_order_before_limit"], summary["share"]) == (0, 0.0)


def test_the_report_lists_each_consumable_with_its_lead() -> None:
    """The text names the asset, the consumable and the lead time."""
    truth = [_replaced("compressor-01", 210, 200)]
    report = build_report(_inputs(truth, [_forecast("compressor-01", 160)]))
    assert report["by_consumable"]["air_filter"]["median_lead_sim_h"] == 40.0
    text = format_report(report)
    assert "compressor-01" in text
    assert "air_filter" in text
    assert "lead 40.0 h sim" in text
    assert "air_filter: 1/1 reached their limit with a work order before it" in text


def _failure(asset: str, profile: str, t_h: float) -> dict[str, Any]:
    return {
        "event": "failure",
        "asset": asset,
        "profile": profile,
        "failure_mode": "x",
        "t_sim_s": t_h * 3600,
        "wall_ms": START_MS + round(t_h * 1000),
    }


def test_lead_cycles_are_counted_in_each_devices_own_cycle() -> None:
    """An engine's 1 h cycles and a unit's 30 min load cycles: 10 h ahead is 10 and 20 cycles."""
    truth = [_failure("engine-091", "turbomon_tm21_1.0", 50), _failure("hpu-01", "hcm", 60)]
    wos = [
        WorkOrderRow(
            "wo-e", "engine-091", "prediction", START_MS + 40_000, "created", delivered=True
        ),
        WorkOrderRow("wo-h", "hpu-01", "prediction", START_MS + 50_000, "created", delivered=True),
    ]
    inputs = _inputs(truth, wos)
    devices = [{"asset": "engine-091", "sample_s": 3600.0}, {"asset": "hpu-01", "sample_s": 1800.0}]
    with_steps = dataclasses.replace(
        inputs, manifest={**inputs.manifest, "devices": devices, "plant": {"cycle_s": 3600}}
    )
    report = build_report(with_steps)
    assert [round(r["lead_cycles"], 6) for r in report["failures"]] == [10.0, 20.0]
    assert report["median_lead_cycles"] == pytest.approx(15.0)
    assert report["by_profile"]["hcm"]["median_lead_cycles"] == pytest.approx(20.0)
    assert (
        "hcm: 1/1 with a work order before (100%), median lead 10.0 h simulated = 20.0 cycles"
        in (format_report(report))
    )
    # A manifest from before the sample steps: the plant's engine cycle for every failure.
    old = dataclasses.replace(inputs, manifest={**inputs.manifest, "plant": {"cycle_s": 3600}})
    assert build_report(old)["median_lead_cycles"] == pytest.approx(10.0)
