"""The replay report of a main-job run (`prognos plant report RUN_DIR`).

Pure core, thin shell: `build_report` takes what a run left in its folder (the simulator's
manifest, ground truth and served counts, the stored counts read back from InfluxDB at stop, the
work orders of the decision store, the latency samples) and returns one JSON-able dict;
`format_report` turns it into text. `load_inputs` reads the folder. docs/main-job.md defines
every figure.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HOUR_S = 3600.0
MONTH_H = 30 * 24.0
"""An asset-month is 30 simulated days of one asset."""
PROFILES = Path(__file__).resolve().parents[1] / "firmware_profiles"
DEFAULT_WINDOW_H = 168.0
"""A prediction work order is true when its asset fails within this many simulated hours."""


@dataclasses.dataclass(frozen=True, slots=True)
class WorkOrderRow:
    """What the report needs of one work order."""

    key: str
    asset: str
    kind: str
    created_ms: int
    state: str
    delivered: bool
    consumable: str | None = None
    """Set for consumable-life work orders: they predict a replacement, not a failure."""

    @property
    def predicts_failure(self) -> bool:
        """A prediction of a failure (not a rule, not a consumable's replacement)."""
        return self.kind == "prediction" and self.consumable is None


@dataclasses.dataclass(frozen=True, slots=True)
class ReportInputs:
    """Everything the report is computed from."""

    manifest: Mapping[str, Any]
    ground_truth: Sequence[Mapping[str, Any]]
    served: Mapping[str, Any]
    stored: Mapping[str, Mapping[str, int]]
    """asset -> signal -> points stored in InfluxDB (counted after the ordered stop)."""
    outbox_left: int
    """Readings still in the edge agents' outboxes at stop (lost: they never reached the cloud)."""
    work_orders: Sequence[WorkOrderRow]
    run: Mapping[str, Any]
    """`plant.json`: start and stop (wall ms), speed, latency samples."""


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _failures(inputs: ReportInputs) -> list[Mapping[str, Any]]:
    return [e for e in inputs.ground_truth if e.get("event") == "failure"]


def _cycle_s(manifest: Mapping[str, Any]) -> float | None:
    value = manifest.get("plant", {}).get("cycle_s")
    return float(value) if value else None


def _sample_s(manifest: Mapping[str, Any]) -> dict[str, float]:
    """Asset -> its device's sample step in simulated s (one engine or load cycle, one product)."""
    return {
        str(d["asset"]): float(d["sample_s"])
        for d in manifest.get("devices", [])
        if d.get("sample_s")
    }


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def failure_rows(inputs: ReportInputs, speed: float) -> list[dict[str, Any]]:
    """One row per simulated failure: the first prediction work order before it and its lead.

    ``lead_cycles`` is the lead in the failed device's own sample steps (engine cycles, load
    cycles, products: the manifest's ``sample_s``); without one it falls back to the plant's
    ``cycle_s`` in the caller.
    """
    steps = _sample_s(inputs.manifest)
    rows = []
    for failure in sorted(_failures(inputs), key=lambda e: (int(e["wall_ms"]), str(e["asset"]))):
        before = sorted(
            (
                wo
                for wo in inputs.work_orders
                if wo.asset == failure["asset"]
                and wo.predicts_failure
                and wo.created_ms < int(failure["wall_ms"])
            ),
            key=lambda wo: wo.created_ms,
        )
        lead_wall_s = (int(failure["wall_ms"]) - before[0].created_ms) / 1000 if before else None
        rows.append(
            {
                "asset": failure["asset"],
                "profile": failure.get("profile"),
                "failure_mode": failure.get("failure_mode"),
                "failure_wall_ms": int(failure["wall_ms"]),
                "work_order_before": bool(before),
                "work_order": before[0].key if before else None,
                "delivered": before[0].delivered if before else None,
                "lead_wall_s": lead_wall_s,
                "lead_sim_h": None if lead_wall_s is None else lead_wall_s * speed / HOUR_S,
                "lead_cycles": (
                    None
                    if lead_wall_s is None or failure["asset"] not in steps
                    else lead_wall_s * speed / steps[failure["asset"]]
                ),
            }
        )
    return rows


def by_profile(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Failures, those with a work order before them, the share and the median lead, per profile."""
    out: dict[str, dict[str, Any]] = {}
    for profile in sorted({str(r["profile"]) for r in rows}):
        mine = [r for r in rows if str(r["profile"]) == profile]
        leads = [float(r["lead_sim_h"]) for r in mine if r["work_order_before"]]
        cycles = [float(r["lead_cycles"]) for r in mine if r.get("lead_cycles") is not None]
        out[profile] = {
            "failures": len(mine),
            "with_work_order_before": len(leads),
            "share": len(leads) / len(mine),
            "median_lead_sim_h": _median(leads),
            "median_lead_cycles": _median(cycles),
        }
    return out


def consumable_rows(inputs: ReportInputs, speed: float) -> list[dict[str, Any]]:
    """One row per consumable replacement: was a life forecast opened before its limit?

    The limit is when the worn item reached its profile's replacement threshold (the simulator
    writes it into the replacement's ``detail.limit_t_sim_s``); a replacement without one was
    replaced before reaching it. The forecast counted is the first consumable work order for that
    asset and consumable opened after the previous replacement (or the start) and before the
    limit; its lead is the time from it to the limit.
    """
    rows: list[dict[str, Any]] = []
    previous: dict[tuple[str, str], int] = {}
    start_ms = int(inputs.run.get("started_ms", inputs.manifest["clock"]["wall_start_ms"]))
    events = [e for e in inputs.ground_truth if e.get("event") == "consumable_replaced"]
    for event in sorted(events, key=lambda e: (int(e["wall_ms"]), str(e["asset"]))):
        asset, name = str(event["asset"]), str(event.get("consumable"))
        replaced_ms = int(event["wall_ms"])
        since_ms = previous.get((asset, name), start_ms)
        previous[asset, name] = replaced_ms
        limit_s = (event.get("detail") or {}).get("limit_t_sim_s")
        limit_ms = (
            None
            if limit_s is None
            else round(replaced_ms - (float(event["t_sim_s"]) - float(limit_s)) * 1000 / speed)
        )
        forecasts = sorted(
            (
                wo.created_ms
                for wo in inputs.work_orders
                if wo.asset == asset
                and wo.kind == "prediction"
                and wo.consumable == name
                and since_ms < wo.created_ms <= (limit_ms if limit_ms is not None else replaced_ms)
            ),
        )
        lead_wall_s = (
            (limit_ms - forecasts[0]) / 1000 if forecasts and limit_ms is not None else None
        )
        rows.append(
            {
                "asset": asset,
                "profile": event.get("profile"),
                "consumable": name,
                "replaced_wall_ms": replaced_ms,
                "limit_wall_ms": limit_ms,
                "limit_reached": limit_ms is not None,
                "work_order_before_limit": limit_ms is not None and bool(forecasts),
                "lead_wall_s": lead_wall_s,
                "lead_sim_h": None if lead_wall_s is None else lead_wall_s * speed / HOUR_S,
            }
        )
    return rows


def by_consumable(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per consumable: replacements, those past the limit, forecast before it, median lead."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({str(r["consumable"]) for r in rows}):
        mine = [r for r in rows if r["consumable"] == name]
        reached = [r for r in mine if r["limit_reached"]]
        leads = [float(r["lead_sim_h"]) for r in reached if r["work_order_before_limit"]]
        out[name] = {
            "replacements": len(mine),
            "limit_reached": len(reached),
            "with_work_order_before_limit": len(leads),
            "share": len(leads) / len(reached) if reached else None,
            "median_lead_sim_h": _median(leads),
        }
    return out


def _planned_failure_ms(inputs: ReportInputs) -> dict[str, int]:
    """Asset -> failure wall ms: what happened, else what the manifest plans (beyond the run)."""
    planned = {
        str(d["asset"]): int(d["planned_failure"]["wall_ms"])
        for d in inputs.manifest.get("devices", [])
        if d.get("planned_failure")
    }
    for failure in _failures(inputs):
        planned[str(failure["asset"])] = int(failure["wall_ms"])
    return planned


def classify_work_orders(
    inputs: ReportInputs, *, speed: float, window_h: float
) -> dict[str, list[str]]:
    """Failure predictions as `true`, `false` or `after_failure` (docs/main-job.md)."""
    failure_ms = _planned_failure_ms(inputs)
    window_ms = window_h * HOUR_S / speed * 1000
    out: dict[str, list[str]] = {"true": [], "false": [], "after_failure": []}
    for wo in inputs.work_orders:
        if not wo.predicts_failure:
            continue
        fails = failure_ms.get(wo.asset)
        if fails is not None and fails <= wo.created_ms:
            out["after_failure"].append(wo.key)
        elif fails is not None and fails - wo.created_ms <= window_ms:
            out["true"].append(wo.key)
        else:
            out["false"].append(wo.key)
    return out


def loss(inputs: ReportInputs) -> dict[str, Any]:
    """Readings that existed (served good) against readings stored, per asset and signal."""
    existed = 0
    stored_total = 0
    lost_by: dict[str, int] = {}
    extra = 0
    unavailable = 0
    for asset, counts in inputs.served.get("devices", {}).items():
        stored = inputs.stored.get(asset, {})
        unavailable += sum(int(v) for v in counts.get("invalid", {}).values())
        for signal, served in counts.get("good", {}).items():
            got = int(stored.get(signal, 0))
            existed += int(served)
            stored_total += min(got, int(served))
            if got < int(served):
                lost_by[f"{asset}/{signal}"] = int(served) - got
            extra += max(0, got - int(served))
    return {
        "existed": existed,
        "stored": stored_total,
        "lost": sum(lost_by.values()),
        "lost_by_signal": dict(sorted(lost_by.items())[:20]),
        "stored_not_served": extra,
        "unavailable": unavailable,
        "left_in_outbox_at_stop": inputs.outbox_left,
    }


def build_report(inputs: ReportInputs, *, window_h: float = DEFAULT_WINDOW_H) -> dict[str, Any]:
    """The replay report as a JSON-able dict (docs/main-job.md)."""
    speed = float(inputs.manifest["clock"]["speed"])
    start_ms = int(inputs.run.get("started_ms", inputs.manifest["clock"]["wall_start_ms"]))
    stop_ms = int(inputs.run.get("stopped_ms", start_ms))
    sim_h = max(0.0, (stop_ms - start_ms) / 1000 * speed / HOUR_S)
    assets = len(inputs.manifest.get("devices", []))
    asset_months = assets * sim_h / MONTH_H
    rows = failure_rows(inputs, speed)
    consumables = consumable_rows(inputs, speed)
    with_wo = [r for r in rows if r["work_order_before"]]
    leads = [float(r["lead_sim_h"]) for r in with_wo]
    classified = classify_work_orders(inputs, speed=speed, window_h=window_h)
    cycle_s = _cycle_s(inputs.manifest)
    latency = inputs.run.get("latency", {})
    read_scored = [float(v) for v in latency.get("read_to_scored_s", [])]
    p50_rs = _finite(latency.get("read_to_stored_p50_s"))
    p50_sc = _quantile(read_scored, 0.5)
    median_lead_h = _median(leads)
    # Each failure in its own device's cycles; a run whose manifest has no sample steps (older
    # simulators): the plant's engine cycle.
    own = [float(r["lead_cycles"]) for r in with_wo if r.get("lead_cycles") is not None]
    lead_cycles = _median(own) if own else None
    if not own and median_lead_h is not None and cycle_s:
        lead_cycles = median_lead_h * HOUR_S / cycle_s
    return {
        "run": {
            "wall_s": (stop_ms - start_ms) / 1000,
            "speed": speed,
            "simulated_h": sim_h,
            "assets": assets,
            "asset_months": asset_months,
        },
        "failures": rows,
        "by_profile": by_profile(rows),
        "failures_total": len(rows),
        "failures_with_work_order_before": len(with_wo),
        "share_with_work_order_before": (len(with_wo) / len(rows)) if rows else None,
        "median_lead_sim_h": median_lead_h,
        "median_lead_cycles": lead_cycles,
        "median_lead_wall_s": statistics.median(r["lead_wall_s"] for r in with_wo)
        if with_wo
        else None,
        "work_orders": {
            "total": len(inputs.work_orders),
            "failure_predictions": sum(1 for w in inputs.work_orders if w.predicts_failure),
            "consumable_predictions": sum(
                1 for w in inputs.work_orders if w.kind == "prediction" and w.consumable
            ),
            "rule": sum(1 for w in inputs.work_orders if w.kind == "rule"),
            "delivered": sum(1 for w in inputs.work_orders if w.delivered),
            "true": len(classified["true"]),
            "false": len(classified["false"]),
            "after_failure": len(classified["after_failure"]),
            "false_keys": classified["false"][:20],
            "window_h": window_h,
        },
        "consumables": consumables,
        "by_consumable": by_consumable(consumables),
        "false_work_orders_per_asset_month": (
            len(classified["false"]) / asset_months if asset_months > 0 else None
        ),
        "readings": loss(inputs),
        "latency": {
            "read_to_stored_p50_s": _finite(p50_rs),
            "read_to_stored_p95_s": _finite(latency.get("read_to_stored_p95_s")),
            "read_to_stored_mean_s": _finite(latency.get("read_to_stored_mean_s")),
            "read_to_scored_p50_s": _finite(p50_sc),
            "read_to_scored_p95_s": _finite(_quantile(read_scored, 0.95)),
            "stored_to_scored_p50_s": (
                None if p50_rs is None or p50_sc is None else max(0.0, p50_sc - p50_rs)
            ),
            "read_to_scored_samples": len(read_scored),
            "method": latency.get("method", ""),
        },
    }


def _fmt(value: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def format_report(report: Mapping[str, Any]) -> str:
    """The report as text, one failure a line, then the totals."""
    run = report["run"]
    lines = [
        (
            f"replay report: {run['assets']} assets, {run['wall_s']:.0f} s wall at speed "
            f"{run['speed']:g} = {run['simulated_h']:.0f} simulated h "
            f"({run['asset_months']:.2f} asset-months)"
        ),
        "failures (asset, mode, work order before?, lead time):",
    ]
    lines.extend(
        f"  {r['asset']:<16} {r['failure_mode'] or '?':<22} "
        + (
            f"yes  lead {r['lead_sim_h']:.1f} h sim ({r['lead_wall_s']:.1f} s wall)  "
            f"{r['work_order']}"
            if r["work_order_before"]
            else "NO work order before the failure"
        )
        for r in report["failures"]
    )
    share = report["share_with_work_order_before"]
    wo = report["work_orders"]
    rd = report["readings"]
    lat = report["latency"]
    lines.extend(
        f"  {profile}: {p['with_work_order_before']}/{p['failures']} with a work order before "
        f"({p['share']:.0%}), median lead {_fmt(p['median_lead_sim_h'], '.1f', ' h simulated')}"
        + (
            ""
            if p.get("median_lead_cycles") is None
            else f" = {p['median_lead_cycles']:.1f} cycles"
        )
        for profile, p in report.get("by_profile", {}).items()
    )
    consumables = report.get("consumables", [])
    if consumables:
        lines.append("consumables past their limit (asset, consumable, forecast before it, lead):")
        lines.extend(
            f"  {r['asset']:<16} {r['consumable']:<22} "
            + (
                f"yes  lead {r['lead_sim_h']:.1f} h sim ({r['lead_wall_s']:.1f} s wall) before "
                "the limit"
                if r["work_order_before_limit"]
                else "NO forecast before the limit"
            )
            for r in consumables
            if r["limit_reached"]
        )
        lines.extend(
            f"  {name}: {c['with_work_order_before_limit']}/{c['limit_reached']} reached their "
            f"limit with a work order before it, median lead "
            f"{_fmt(c['median_lead_sim_h'], '.1f', ' h simulated')}; {c['replacements']} replaced"
            for name, c in report.get("by_consumable", {}).items()
        )
    lines += [
        f"work order before failure: {report['failures_with_work_order_before']}/"
        f"{report['failures_total']}" + ("" if share is None else f" ({share:.0%})"),
        (
            f"median lead time: {_fmt(report['median_lead_sim_h'], '.1f', ' h simulated')}"
            f" = {_fmt(report['median_lead_cycles'], '.1f', ' cycles')}"
            f" ({_fmt(report['median_lead_wall_s'], '.1f', ' s wall')})"
        ),
        (
            f"work orders: {wo['total']} ({wo['failure_predictions']} failure predictions, "
            f"{wo['consumable_predictions']} consumable forecasts, {wo['rule']} rules), "
            f"{wo['delivered']} delivered; failure predictions true {wo['true']}, "
            f"false {wo['false']}, "
            f"after the failure {wo['after_failure']} (window {wo['window_h']:g} h)"
        ),
        "false work orders per asset-month: "
        + _fmt(report["false_work_orders_per_asset_month"], ".2f"),
        (
            f"readings: existed {rd['existed']}, stored {rd['stored']}, LOST {rd['lost']} "
            f"(left in outboxes at stop {rd['left_in_outbox_at_stop']}; unavailable, not lost: "
            f"{rd['unavailable']})"
        ),
        (
            f"latency: read -> stored p50 {_fmt(lat['read_to_stored_p50_s'], '.2f', ' s')}, "
            f"mean {_fmt(lat['read_to_stored_mean_s'], '.2f', ' s')}, "
            f"p95 {_fmt(lat['read_to_stored_p95_s'], '.2f', ' s')}; read -> scored p50 "
            f"{_fmt(lat['read_to_scored_p50_s'], '.1f', ' s')}, p95 "
            f"{_fmt(lat['read_to_scored_p95_s'], '.1f', ' s')}; stored -> scored p50 "
            f"{_fmt(lat['stored_to_scored_p50_s'], '.1f', ' s')}"
        ),
    ]
    if rd["lost_by_signal"]:
        lines.append("lost by signal: " + json.dumps(rd["lost_by_signal"]))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ I/O


def _json(path: Path, default: Any) -> Any:  # noqa: ANN401 - JSON
    return json.loads(path.read_text()) if path.exists() else default


def _ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def consumable_names(profiles: Path) -> set[str]:
    """Every consumable named by a firmware profile (`consumables[].name`)."""
    import yaml  # noqa: PLC0415 - only for reading a run

    names: set[str] = set()
    for path in sorted(profiles.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict):
            names.update(
                str(c["name"]) for c in data.get("consumables") or () if isinstance(c, dict)
            )
    return names


def read_work_orders(db: Path, profiles: Path = PROFILES) -> list[WorkOrderRow]:
    """Every work order of the decision store (empty when the file does not exist).

    The scorer files a consumable's life forecast (`tool_wear`) as a prediction whose
    `failure_mode` is the consumable: such work orders are marked as consumables here.
    """
    if not db.exists():
        return []
    consumables = consumable_names(profiles)
    from cloud.workorders import Store  # noqa: PLC0415 - only when there is a store

    store = Store(db)
    try:
        return [
            WorkOrderRow(
                key=r.key,
                asset=r.work_order.asset,
                kind=r.work_order.kind,
                created_ms=_ms(r.work_order.created_at),
                state=r.state.value,
                delivered=r.external_id is not None,
                consumable=r.work_order.consumable
                or (
                    r.work_order.failure_mode if r.work_order.failure_mode in consumables else None
                ),
            )
            for r in store.work_orders(limit=1_000_000)
        ]
    finally:
        store.close()


def load_inputs(run_dir: Path) -> ReportInputs:
    """Read a run folder (docs/main-job.md, "The run folder")."""
    sim = run_dir / "sim"
    manifest = _json(sim / "manifest.json", None)
    if manifest is None:
        msg = f"{sim / 'manifest.json'} not found: is {run_dir} a `prognos plant` run folder?"
        raise FileNotFoundError(msg)
    truth_path = sim / "ground_truth.jsonl"
    truth = (
        [json.loads(line) for line in truth_path.read_text().splitlines() if line.strip()]
        if truth_path.exists()
        else []
    )
    run = _json(run_dir / "plant.json", {})
    manifest = {**manifest, "plant": {"cycle_s": run.get("cycle_s")}}
    return ReportInputs(
        manifest=manifest,
        ground_truth=truth,
        served=_json(sim / "served.json", {}),
        stored=_json(run_dir / "stored.json", {}),
        outbox_left=int(run.get("outbox_left_readings", 0)),
        work_orders=read_work_orders(run_dir / "decisions.db"),
        run=run,
    )
