"""The decision-state store: alerts saved and restored, feedback, the case library."""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.alerting import AlertEngine, AlertEvent, AlertPolicy, AlertState
from cloud.workorders import (
    Admission,
    Feedback,
    IllegalWorkOrderTransition,
    ServicePolicy,
    Store,
    WoEvent,
    WorkOrder,
    WoState,
    build_from_prediction,
)

T0 = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
POLICY = AlertPolicy(open_after=1, cooldown=dt.timedelta(hours=1))


class Asset:
    """A minimal asset record."""

    site = "plant1"
    customer = "ACME"
    tier = "Regular"
    profile = "aquaflo_cpv150_2.x"
    asset_class = "pump"
    team = "north"
    criticality = "high"
    warranty_end = None

    def __init__(self, asset_id: str = "pump-07") -> None:
        self.asset_id = asset_id


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "d.db")
    yield s
    s.close()


def wo_for(alert_id: str, asset: str = "pump-07") -> WorkOrder:
    return build_from_prediction(
        asset=Asset(asset),
        profile=None,
        failure_mode="bearing_wear",
        window=f"alert-{alert_id.rsplit('/', 1)[-1]}",
        created_at=T0,
        policy=ServicePolicy(),
        alert_id=alert_id,
    )


def test_a_restarted_engine_continues_numbering_and_cooldown(store: Store) -> None:
    """After a restart the next episode is alert 2 (a new work-order key), after the cooldown."""
    engine = AlertEngine(policy=POLICY)
    (raised,) = engine.observe("pump-07", "bearing_wear", T0, 0.9, now=T0)
    store.save_alert(raised.alert)
    closed = engine.act(raised.alert.alert_id, AlertEvent.CLOSE, now=T0)
    store.save_alert(closed.alert)

    fresh = AlertEngine(policy=POLICY)
    fresh.restore(store.alerts())
    assert (
        fresh.observe("pump-07", "bearing_wear", T0 + dt.timedelta(minutes=30), 0.9, now=T0) == []
    )
    (again,) = fresh.observe("pump-07", "bearing_wear", T0 + dt.timedelta(hours=1), 0.9, now=T0)
    assert again.alert.alert_id == "pump-07/bearing_wear/2"
    assert wo_for(again.alert.alert_id).key != wo_for(raised.alert.alert_id).key


def test_a_resolved_work_order_resolves_its_alert_and_the_engine_picks_it_up(store: Store) -> None:
    """Resolved from the service system: the stored alert resolves; restore brings it in."""
    engine = AlertEngine(policy=POLICY)
    (raised,) = engine.observe("pump-07", "bearing_wear", T0, 0.9, now=T0)
    store.save_alert(raised.alert)
    wo = wo_for(raised.alert.alert_id)
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    later = T0 + dt.timedelta(hours=2)
    fb = Feedback(failure_confirmed=False, root_cause="sensor loose", resolution_mode="remote")
    assert (
        store.apply_status(wo.key, WoEvent.RESOLVED, now=later, external_id="X", feedback=fb)
        is WoState.RESOLVED
    )
    assert store.get(wo.key).external_id == "X"
    engine.restore(store.alerts())
    (alert,) = engine.alerts()
    assert (alert.state, alert.reason, alert.resolved_at) == (
        AlertState.RESOLVED,
        "work_order_resolved",
        later,
    )
    (label,) = store.labels()
    assert (label["failure_confirmed"], label["resolution_mode"]) == (0, "remote")


def test_repeated_statuses_are_no_ops_and_illegal_ones_raise(store: Store) -> None:
    """Assigned twice changes nothing; closed then assigned is refused."""
    wo = wo_for("pump-07/bearing_wear/1")
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    for _ in range(2):
        store.apply_status(wo.key, WoEvent.ASSIGNED, now=T0, external_id="X", feedback=None)
    assert [e["new"] for e in store.events(wo.key)] == ["assigned"]
    store.apply_status(wo.key, WoEvent.CLOSED, now=T0, external_id="X", feedback=None)
    with pytest.raises(IllegalWorkOrderTransition, match="'closed'"):
        store.apply_status(wo.key, WoEvent.ASSIGNED, now=T0, external_id="X", feedback=None)


def test_similar_cases_prefer_the_same_profile_and_the_most_recent(store: Store) -> None:
    """Three closed bearing cases: the same profile first, newest first; other modes never."""
    for i, (asset, profile) in enumerate(
        [("p1", "aquaflo_cpv150_2.x"), ("p2", "other"), ("p3", "aquaflo_cpv150_2.x")]
    ):
        wo = wo_for(f"{asset}/bearing_wear/1", asset).model_copy(update={"profile": profile})
        store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
        at = T0 + dt.timedelta(days=i)
        store.apply_status(
            wo.key,
            WoEvent.RESOLVED,
            now=at,
            external_id=asset,
            feedback=Feedback(root_cause=f"cause {asset}"),
        )
        store.apply_status(wo.key, WoEvent.CLOSED, now=at, external_id=asset, feedback=None)
    cases = store.similar_cases("aquaflo_cpv150_2.x", "bearing_wear")
    assert [c.asset for c in cases] == ["p3", "p1", "p2"]
    assert cases[0].root_cause == "cause p3"
    assert store.similar_cases("aquaflo_cpv150_2.x", "seal_leak") == []


def test_inbound_webhook_ids_are_remembered_for_the_window(store: Store) -> None:
    """A seen id is a replay inside the window and forgotten after it."""
    keep = dt.timedelta(minutes=10)
    assert store.remember_webhook("msg_1", now=T0, keep=keep)
    assert not store.remember_webhook("msg_1", now=T0 + dt.timedelta(minutes=9), keep=keep)
    assert store.remember_webhook("msg_1", now=T0 + dt.timedelta(minutes=11), keep=keep)
