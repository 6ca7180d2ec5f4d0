"""The simulated plant's technicians close the loop: a replacement completes its work orders.

`cloud._technician.completions` is pure (which work orders a replacement completes); the
`Technician` test runs the real loop: ground-truth lines -> the fake service system's signed
callbacks over HTTP -> Prognos's inbound server -> the store (work order closed, alert closed,
the technician's feedback as a label), so the next life of the item can get its own alert.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud._technician import Technician, completions, replacements
from cloud.alerting import AlertEngine, AlertPolicy, AlertState
from cloud.workorders import (
    Admission,
    DeliveryWorker,
    FakeServiceSystem,
    InboundServer,
    ServicePolicy,
    Store,
    WebhookServiceSystem,
    WorkOrder,
    WorkOrderRecord,
    WoState,
    build_from_prediction,
    build_from_rule,
    new_secret,
)

T0 = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
Plant = tuple[Store, Path, FakeServiceSystem, WorkOrder]


class Asset:
    """A minimal asset record."""

    asset_id = "compressor-01"
    site = "plant1"
    customer = "ACME"
    tier = "Regular"
    profile = "airtek_sc75_4.2"
    asset_class = "compressor"
    team = "utilities"
    criticality = "medium"
    warranty_end = None


def _prediction(target: str = "air_filter", *, at: dt.datetime = T0, alert: str = "") -> WorkOrder:
    return build_from_prediction(
        asset=Asset(), profile=None, failure_mode=target, window=f"w-{target}-{at:%H%M}",
        created_at=at, policy=ServicePolicy(), rul_lo_h=100, alert_id=alert or None,
    )  # fmt: skip


def _record(wo: WorkOrder, state: WoState = WoState.CREATED) -> WorkOrderRecord:
    return WorkOrderRecord(wo, state, "auto", f"ext-{wo.key}", T0)


def _replaced(
    at: dt.datetime, *, asset: str = "compressor-01", worn: bool = True
) -> dict[str, Any]:
    detail = {"dp_before_bar": 0.054, **({"limit_t_sim_s": 3600.0} if worn else {})}
    return {
        "event": "consumable_replaced",
        "asset": asset,
        "consumable": "air_filter",
        "wall_ms": int(at.timestamp() * 1000),
        "detail": detail,
    }


def test_a_replacement_completes_the_held_work_orders_for_its_item_made_before_it() -> None:
    """Same asset and item, held by the service system, created before: completed once."""
    later = T0 + dt.timedelta(hours=2)
    mine = _prediction()
    rule = build_from_rule(
        asset=Asset(), profile=None, consumable="air_filter", window="due@2026-12-01",
        due_by=T0 + dt.timedelta(days=8), reason="calendar", created_at=T0, policy=ServicePolicy(),
    )  # fmt: skip
    other_item = _prediction("oil_filter")
    other_asset = _prediction().model_copy(update={"asset": "compressor-02", "key": "wo-other"})
    after = _prediction(at=later + dt.timedelta(minutes=1))
    records = [
        _record(mine),
        _record(rule, WoState.RESOLVED),
        _record(other_item),
        _record(other_asset),
        _record(after),
        _record(_prediction().model_copy(update={"key": "wo-closed"}), WoState.CLOSED),
        _record(_prediction().model_copy(update={"key": "wo-pending"}), WoState.PENDING),
    ]
    done: set[str] = set()

    jobs = completions([_replaced(later)], records, done)

    assert [(j.key, j.state) for j in jobs] == [
        (mine.key, WoState.CREATED),
        (rule.key, WoState.RESOLVED),
    ]
    assert jobs[0].external_id == f"ext-{mine.key}"
    assert jobs[0].feedback["parts_used"] == ["air_filter"]
    assert jobs[0].feedback["failure_confirmed"] is True
    assert completions([_replaced(later)], records, done) == []  # each one once
    (early,) = completions([_replaced(later, worn=False)], [_record(_prediction())], set())
    assert early.feedback["failure_confirmed"] is False


def test_replacements_reads_only_replacement_events() -> None:
    """Failures and blank lines are not replacements."""
    lines = [json.dumps({"event": "failure", "asset": "engine-091"}), "", json.dumps(_replaced(T0))]
    assert [e["asset"] for e in replacements(lines)] == ["compressor-01"]


@pytest.fixture
def plant(tmp_path: Path) -> Iterator[Plant]:
    """A delivered air-filter work order for an open alert; the fake and the inbound server."""
    db = tmp_path / "decisions.db"
    store = Store(db)
    engine = AlertEngine(policy=AlertPolicy(open_after=1))
    (raised,) = engine.observe("compressor-01", "air_filter", T0, 0.9, now=T0)
    store.save_alert(raised.alert)
    wo = _prediction(alert=raised.alert.alert_id)
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    fake = FakeServiceSystem(secret=new_secret())
    fake.start()
    inbound = InboundServer(db=db, secrets=[fake.secret])
    inbound.start()
    fake.callback_url = inbound.url
    service = WebhookServiceSystem(url=fake.webhook_url, secret=fake.secret)
    DeliveryWorker(store=store, service=service, policy=ServicePolicy().delivery).run_once()
    service.close()
    yield store, db, fake, wo
    inbound.stop()
    fake.stop()
    store.close()


def test_technician_closes_the_work_order_and_its_alert_over_the_real_callbacks(
    plant: Plant, tmp_path: Path
) -> None:
    """Resolved (with feedback), then closed: the alert is closed, the label stored."""
    store, db, fake, wo = plant
    ground_truth = tmp_path / "ground_truth.jsonl"
    assert store.get(wo.key).state is WoState.CREATED
    tech = Technician(ground_truth, db, fake)
    assert tech.step() == 0  # no ground truth yet
    now = dt.datetime.fromtimestamp(time.time(), dt.UTC)
    line = json.dumps(_replaced(now))
    ground_truth.write_text(json.dumps({"event": "failure", "asset": "x"}) + "\n" + line[:20])
    assert tech.step() == 0  # the replacement's line is still being written

    with ground_truth.open("a") as fh:
        fh.write(line[20:] + "\n")
    assert tech.step() == 1

    assert store.get(wo.key).state is WoState.CLOSED
    assert store.alert_state(str(wo.alert_id)) is AlertState.CLOSED
    (label,) = store.labels()
    assert (label["failure_confirmed"], label["parts_used"]) == (1, ["air_filter"])
    assert tech.completed == 1
    assert tech.step() == 0  # nothing twice
