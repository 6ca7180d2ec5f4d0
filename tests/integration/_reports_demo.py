"""Demo data for the reports and the Grafana dashboard, made with the project's own components.

A quarter (2026 Q3) of a small fleet of two customers:

- the registry: a YAML file parsed by `cloud.registry.load_registry`;
- the decision store: `cloud.workorders.Store` fed through its public methods only, on a
  controlled clock: work orders built by `build_from_prediction` / `build_from_rule` with the
  default `ServicePolicy`, delivered through the outbox (`due`/`begin_attempt`/`succeed`), moved
  by the service system's statuses (`apply_status`, with `Feedback`), alerts saved with
  `save_alert`;
- InfluxDB: telemetry and gateway status classified by the ingester's own core
  (`cloud.ingest.Classifier`, so `telemetry`, `ingest_batches` and `gateway_status` are laid out
  exactly as `prognos ingest` writes them), and scores as `cloud.scoring.Score` points (the
  scorer's tags and fields).

Everything is drawn from a seeded `random.Random`: the same data every run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from pathlib import Path
from typing import Final

from cloud.alerting import Alert, AlertState
from cloud.ingest import Classifier, FieldTypes, SeqWindow
from cloud.registry import Asset, AssetRegistry, load_registry
from cloud.scoring import Score
from cloud.store import InfluxClient, Point, encode_lines
from cloud.workorders import (
    Admission,
    Feedback,
    ServicePolicy,
    Store,
    WoEvent,
    WorkOrder,
    WoState,
    alert_window,
    build_from_prediction,
    build_from_rule,
)

START: Final = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
END: Final = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
"""2026 Q3."""
DAY: Final = dt.timedelta(days=1)
PREFIX: Final = "prognos/v1"
NORTH: Final = "Northwater Utilities"
ACME: Final = "Acme Foods"
OUTAGE: Final = (
    dt.datetime(2026, 8, 12, 6, tzinfo=dt.UTC),
    dt.datetime(2026, 8, 12, 14, tzinfo=dt.UTC),
)
"""gw-plant2-01 is offline for 8 hours."""

ASSETS_YAML: Final = f"""
assets:
  - {{asset_id: pump-07, site: plant1, customer: {NORTH}, tier: VIP, model: CPV-150,
     firmware: "2.4", profile: aquaflo_cpv150_2.x, serial: AF-1, asset_class: pump,
     team: north, criticality: critical, commissioned: 2021-05-17, gateway: gw-plant1-01}}
  - {{asset_id: pump-08, site: plant1, customer: {NORTH}, tier: VIP, model: CPV-150,
     firmware: "2.1", profile: aquaflo_cpv150_2.x, serial: AF-2, asset_class: pump,
     team: north, criticality: high, commissioned: 2022-03-01, gateway: gw-plant1-01}}
  - {{asset_id: comp-1, site: plant1, customer: {NORTH}, tier: VIP, model: SC75,
     firmware: "4.2.3", profile: airtek_sc75_4.2, serial: AT-1, asset_class: compressor,
     team: north, criticality: medium, commissioned: 2019-11-04, gateway: gw-plant1-01}}
  - {{asset_id: comp-2, site: plant2, customer: {ACME}, tier: Gold, model: SC75,
     firmware: "4.2.3", profile: airtek_sc75_4.2, serial: AT-2, asset_class: compressor,
     team: south, criticality: high, commissioned: 2020-02-10, gateway: gw-plant2-01}}
  - {{asset_id: mill-1, site: plant2, customer: {ACME}, tier: Gold, model: SPX-12,
     firmware: "5.1", profile: millrite_spx12_5.1, serial: MR-1, asset_class: spindle,
     team: south, criticality: critical, commissioned: 2023-06-01, gateway: gw-plant2-01}}
"""

SIGNALS: Final = {
    "aquaflo_cpv150_2.x": ("bearing_temp_c", "vibration_rms_mm_s"),
    "airtek_sc75_4.2": ("element_outlet_temp_c", "oil_temp_c"),
    "millrite_spx12_5.1": ("spindle_torque_nm", "process_temp_k"),
}
MODES: Final = {
    "aquaflo_cpv150_2.x": ("bearing_wear", "seal_leak"),
    "airtek_sc75_4.2": ("element_overheating", "separator_clogging"),
    "millrite_spx12_5.1": ("tool_wear_failure", "spindle_bearing_wear"),
}
CONSUMABLE: Final = {
    "aquaflo_cpv150_2.x": "mechanical_seal",
    "airtek_sc75_4.2": "air_filter",
    "millrite_spx12_5.1": "spindle_grease",
}
CAUSES: Final = {
    "bearing_wear": ("lubrication starvation", "misalignment"),
    "seal_leak": ("dry running", "worn seal faces"),
    "element_overheating": ("blocked cooler", "low oil level"),
    "separator_clogging": ("overdue separator change",),
    "tool_wear_failure": ("tool past life", "wrong feed rate"),
    "spindle_bearing_wear": ("contaminated lubricant",),
}
PARTS: Final = {
    "bearing_wear": "SKF-6309-2Z-C3",
    "seal_leak": "AF-MS-150",
    "element_overheating": "AT-COOL-75",
    "separator_clogging": "AT-SEP-75",
    "tool_wear_failure": "MR-TOOL-12",
    "spindle_bearing_wear": "MR-BRG-12",
}
RUL_MODEL: Final = ("rul_cmapss", "2")
PROB_MODEL: Final = ("failure_horizon", "3")


@dataclasses.dataclass(frozen=True)
class Demo:
    """What was made: files and the counts the tests check against."""

    db: Path
    assets: Path
    registry: AssetRegistry
    work_orders: int
    confirmed: int
    refuted: int


def _hours(rng: random.Random, lo: float, hi: float) -> dt.timedelta:
    return dt.timedelta(hours=rng.uniform(lo, hi))


def make_store(folder: Path, *, seed: int = 9) -> Demo:
    """The registry file and the decision store with a quarter of work (and some after it)."""
    assets_path = folder / "assets.yaml"
    assets_path.write_text(ASSETS_YAML, encoding="utf-8")
    registry = load_registry(assets_path)
    db = folder / "decisions.db"
    store = Store(db)
    policy = ServicePolicy()
    rng = random.Random(seed)
    made = confirmed = refuted = 0
    try:
        for asset in registry:
            n = 0
            last: dict[str, dt.datetime] = {}
            t = START + _hours(rng, 12, 96)
            while t < END + dt.timedelta(days=10):
                n += 1
                # A failure mode fixed less than 35 days ago comes back only now and then.
                fresh = [
                    m for m in MODES[asset.profile] if t - last.get(m, START - 99 * DAY) > 35 * DAY
                ]
                target = rng.choice(fresh if fresh and rng.random() > 0.1 else MODES[asset.profile])
                last[target] = t
                alert_id = f"{asset.asset_id}/{target}/{n}"
                kind = rng.random()
                if kind < 0.2:
                    wo = build_from_rule(
                        asset=asset,
                        profile=None,
                        consumable=CONSUMABLE[asset.profile],
                        window=f"due@{t.date().isoformat()}",
                        due_by=t + dt.timedelta(days=14),
                        reason="replacement interval reached",
                        created_at=t,
                        policy=policy,
                    )
                else:
                    wo = _prediction(store, asset, target, alert_id, t, policy, rng)
                store.add(wo, Admission(WoState.PENDING, "auto"), now=t)
                made += 1
                sent = t + dt.timedelta(seconds=rng.uniform(2, 40))
                for item in store.due(sent):
                    store.begin_attempt(item, now=sent, retry_at=sent + dt.timedelta(minutes=5))
                    store.succeed(item, now=sent, external_id=f"INC{made:05d}", outcome="created")
                window = wo.respond_by - wo.created_at
                late = rng.random() < 0.15
                respond = t + window * (rng.uniform(1.1, 2.5) if late else rng.uniform(0.1, 0.9))
                fate = rng.random()
                if fate < 0.05:
                    store.apply_status(
                        wo.key, WoEvent.CANCEL, now=respond, external_id=None, feedback=None
                    )
                elif respond < END + dt.timedelta(days=3) or fate < 0.5:
                    _work(
                        store,
                        wo.key,
                        target=wo.target,
                        respond=respond,
                        rng=rng,
                        predicted=kind >= 0.2,
                    )
                    label = store.labels()
                    row = next((x for x in label if x["key"] == wo.key), None)
                    if row is not None and row["failure_confirmed"] == 1:
                        confirmed += 1
                    elif row is not None and row["failure_confirmed"] == 0:
                        refuted += 1
                t += _hours(rng, 24 * 4, 24 * 12)
    finally:
        store.close()
    return Demo(db, assets_path, registry, made, confirmed, refuted)


def _prediction(  # noqa: PLR0917 - a test helper
    store: Store,
    asset: Asset,
    target: str,
    alert_id: str,
    t: dt.datetime,
    policy: ServicePolicy,
    rng: random.Random,
) -> WorkOrder:
    """The alert a score raised, saved, and the repair work order built from it."""
    p = rng.uniform(0.72, 0.97)
    horizon = rng.choice((24.0, 168.0, 720.0))
    lo = rng.uniform(100, 900)
    store.save_alert(
        Alert(
            alert_id=alert_id,
            asset=asset.asset_id,
            target=target,
            state=AlertState.OPEN,
            opened_at=t - dt.timedelta(minutes=30),
            updated_at=t - dt.timedelta(minutes=30),
            last_score=p,
            last_score_at=t - dt.timedelta(minutes=30),
            peak=p,
        )
    )
    return build_from_prediction(
        asset=asset,
        profile=None,
        failure_mode=target,
        window=alert_window(alert_id),
        created_at=t,
        policy=policy,
        probability=p,
        horizon_h=horizon,
        rul_h=lo * 1.5,
        rul_lo_h=lo,
        rul_hi_h=lo * 2.2,
        alert_id=alert_id,
    )


def _work(
    store: Store,
    key: str,
    *,
    target: str,
    respond: dt.datetime,
    rng: random.Random,
    predicted: bool,
) -> None:
    """Assigned, in progress, resolved (with feedback), sometimes reopened, closed."""
    status = store.apply_status
    status(key, WoEvent.ASSIGNED, now=respond, external_id=None, feedback=None)
    start = respond + _hours(rng, 1, 20)
    status(key, WoEvent.IN_PROGRESS, now=start, external_id=None, feedback=None)
    done = start + _hours(rng, 1, 10)
    if predicted:
        confirmed = rng.random() < (
            0.8 if target in {"bearing_wear", "tool_wear_failure"} else 0.55
        )
        feedback = Feedback(
            failure_confirmed=confirmed,
            root_cause=rng.choice(CAUSES[target]) if confirmed else "no fault found",
            parts_used=(PARTS[target],) if confirmed else (),
            resolution_mode="on-site" if confirmed or rng.random() < 0.5 else "remote",
        )
    else:
        feedback = Feedback(
            failure_confirmed=None, root_cause="scheduled", resolution_mode="on-site"
        )
    status(key, WoEvent.RESOLVED, now=done, external_id=None, feedback=feedback)
    if rng.random() < 0.1:
        again = done + _hours(rng, 12, 48)
        status(key, WoEvent.IN_PROGRESS, now=again, external_id=None, feedback=None)
        done = again + _hours(rng, 1, 6)
        status(key, WoEvent.RESOLVED, now=done, external_id=None, feedback=feedback)
    status(key, WoEvent.CLOSED, now=done + _hours(rng, 4, 48), external_id=None, feedback=None)


def _ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def write_influx(influx: InfluxClient, registry: AssetRegistry, *, seed: int = 9) -> int:
    """A quarter of hourly telemetry, gateway status and 6-hourly scores; returns points written."""
    rng = random.Random(seed)
    classifier = Classifier(
        prefix=PREFIX,
        ingester="reports-demo",
        types=FieldTypes(),
        seen=SeqWindow(1_000_000),
        registry=registry,
    )
    assets = sorted(registry, key=lambda a: a.asset_id)
    gateways = sorted({(a.site, a.gateway or "") for a in assets})
    lines: list[str] = []
    seq = dict.fromkeys(gateways, 1000)

    def classify(topic: str, body: dict[str, object], now: dt.datetime) -> None:
        out = classifier.classify(
            topic, json.dumps(body).encode(), content_type=None, now_ms=_ms(now)
        )
        assert not out.rejects, out.rejects
        lines.extend(out.lines)
        classifier.pending.clear()

    for site, gw in gateways:
        status = {
            "state": "online",
            "ts": _ms(START - dt.timedelta(days=2)),
            "agent_version": "0.2.0",
        }
        classify(f"{PREFIX}/{site}/{gw}/status", status, START)
    t = START
    wear = {a.asset_id: rng.uniform(0, 0.3) for a in assets}
    while t < END:
        for site, gw in gateways:
            if gw == "gw-plant2-01" and OUTAGE[0] <= t < OUTAGE[1]:
                continue  # the gateway is down: nothing read, nothing sent
            readings = [
                _reading(a, t, wear[a.asset_id], rng)
                for a in assets
                if (a.site, a.gateway) == (site, gw)
            ]
            seq[site, gw] += 1
            body = {
                "schema": "prognos.telemetry.v1",
                "gateway": gw,
                "seq": seq[site, gw],
                "readings": readings,
            }
            classify(f"{PREFIX}/{site}/{gw}/telemetry", body, t + dt.timedelta(seconds=1))
        for a in assets:
            wear[a.asset_id] = min(1.0, wear[a.asset_id] + rng.uniform(0, 0.0009))
            if rng.random() < 0.002:
                wear[a.asset_id] = rng.uniform(0, 0.1)
        t += dt.timedelta(hours=1)
    for state, at in (("offline", OUTAGE[0]), ("online", OUTAGE[1])):
        body = {"state": state, "ts": _ms(at), "agent_version": "0.2.0"}
        classify(f"{PREFIX}/plant2/gw-plant2-01/status", body, at)
    points = _scores(assets, rng)
    scored = [Point("scores", s.tags(), s.fields(), _ms(s.ts) * 1_000_000) for s in points]
    score_lines = encode_lines(scored).decode().splitlines()
    # Batches of 5,000 points, as the ingester writes: short requests on a busy machine.
    every = [*lines, *score_lines]
    for i in range(0, len(every), 5000):
        influx.write("\n".join(every[i : i + 5000]).encode() + b"\n", precision="ns")
    return len(lines) + len(points)


def _reading(a: Asset, t: dt.datetime, w: float, rng: random.Random) -> dict[str, object]:
    x, y = SIGNALS[a.profile]
    return {
        "asset": a.asset_id,
        "ts": _ms(t),
        "values": {
            x: round(60 + 25 * w + rng.gauss(0, 0.8), 3),
            y: round(3 + 4 * w + rng.gauss(0, 0.2), 3),
            "fault_code": 0,
        },
    }


def _scores(assets: list[Asset], rng: random.Random) -> list[Score]:
    """Every 6 hours: a failure probability per failure mode and a remaining life."""
    points = []
    for a in assets:
        t = START
        w = rng.uniform(0.05, 0.3)
        while t < END:
            w = min(0.99, max(0.0, w + rng.gauss(0.003, 0.008)))
            if w > 0.75 and rng.random() < 0.08:
                w = rng.uniform(0.02, 0.15)
            for target in MODES[a.profile]:
                p = min(0.99, max(0.01, w + rng.gauss(0, 0.03)))
                points.append(
                    Score(
                        asset=a.asset_id,
                        site=a.site,
                        target=target,
                        model_name=PROB_MODEL[0],
                        model_version=PROB_MODEL[1],
                        ts=t,
                        health=100 * (1 - p),
                        probability=p,
                        horizon_h=168.0,
                        explanation={"top": [{"signal": SIGNALS[a.profile][0], "weight": 0.6}]},
                    )
                )
            rul = max(5.0, 2500 * (1 - w))
            points.append(
                Score(
                    asset=a.asset_id,
                    site=a.site,
                    target="rul",
                    model_name=RUL_MODEL[0],
                    model_version=RUL_MODEL[1],
                    ts=t,
                    health=100 * min(1.0, 0.7 * rul / 3000),
                    rul=rul,
                    rul_lo=0.7 * rul,
                    rul_hi=1.4 * rul,
                )
            )
            t += dt.timedelta(hours=6)
    return points
