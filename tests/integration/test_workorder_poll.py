"""Polling ServiceNow (the local fake) closes the loop like a callback does."""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud._cli import main
from cloud.alerting import AlertEngine, AlertPolicy, AlertState
from cloud.workorders import (
    Admission,
    DeliveryWorker,
    FakeServiceSystem,
    ServiceNowServiceSystem,
    ServicePolicy,
    Store,
    WoState,
    build_from_prediction,
    new_secret,
    poll_statuses,
)

T0 = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)


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

    def __init__(self, asset_id: str) -> None:
        self.asset_id = asset_id


@pytest.fixture
def fake() -> Iterator[FakeServiceSystem]:
    f = FakeServiceSystem(secret=new_secret())
    f.start()
    yield f
    f.stop()


def test_polled_statuses_move_work_orders_alerts_labels_and_cases(
    tmp_path: Path, fake: FakeServiceSystem
) -> None:
    """One record in progress, one closed complete with notes; a draft is ignored."""
    store = Store(tmp_path / "d.db")
    engine = AlertEngine(policy=AlertPolicy(open_after=1))
    keys = {}
    for name in ("p1", "p2", "p3"):
        (raised,) = engine.observe(name, "bearing_wear", T0, 0.9, now=T0)
        store.save_alert(raised.alert)
        wo = build_from_prediction(asset=Asset(name), profile=None, failure_mode="bearing_wear",
                                   window="alert-1", created_at=T0, policy=ServicePolicy(),
                                   alert_id=raised.alert.alert_id)  # fmt: skip
        store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
        keys[name] = wo.key
    sn = ServiceNowServiceSystem(instance_url=fake.base_url, user="prognos", password="secret")  # noqa: S106
    DeliveryWorker(store=store, service=sn, policy=ServicePolicy().delivery).run_once()
    by_key = {r["correlation_id"]: r for r in fake.sn_records}
    auth = ("prognos", "secret")
    base = f"{fake.base_url}/api/now/table/wm_order"
    httpx.patch(
        f"{base}/{by_key[keys['p1']]['sys_id']}", json={"state": "Work in Progress"}, auth=auth
    )
    closed = {
        "state": "Closed Complete",
        "close_notes": "bearing spalled",
        "u_failure_confirmed": "true",
        "u_parts_used": "SKF-6309-2Z-C3, AF-GREASE-LGHP2",
        "u_resolution_mode": "on-site",
    }
    httpx.patch(f"{base}/{by_key[keys['p2']]['sys_id']}", json=closed, auth=auth)
    httpx.patch(f"{base}/{by_key[keys['p3']]['sys_id']}", json={"state": "Draft"}, auth=auth)

    assert poll_statuses(store, sn, now=T0 + dt.timedelta(hours=5)) == 2
    assert poll_statuses(store, sn, now=T0 + dt.timedelta(hours=6)) == 0, "nothing new"
    sn.close()
    assert [store.get(keys[n]).state for n in ("p1", "p2", "p3")] == [
        WoState.IN_PROGRESS, WoState.CLOSED, WoState.CREATED,
    ]  # fmt: skip
    assert store.alert_state("p2/bearing_wear/1") is AlertState.CLOSED
    (label,) = store.labels()
    assert (label["root_cause"], label["parts_used"]) == (
        "bearing spalled",
        ["SKF-6309-2Z-C3", "AF-GREASE-LGHP2"],
    )
    (case,) = store.similar_cases("aquaflo_cpv150_2.x", "bearing_wear")
    assert (case.asset, case.failure_confirmed) == ("p2", True)
    store.close()


def test_the_poll_command(
    tmp_path: Path,
    fake: FakeServiceSystem,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`prognos workorders poll` applies an 'Assigned' once."""
    db = tmp_path / "d.db"
    store = Store(db)
    wo = build_from_prediction(asset=Asset("p1"), profile=None, failure_mode="bearing_wear",
                               window="alert-1", created_at=T0, policy=ServicePolicy())  # fmt: skip
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    sn = ServiceNowServiceSystem(instance_url=fake.base_url, user="prognos", password="secret")  # noqa: S106
    DeliveryWorker(store=store, service=sn, policy=ServicePolicy().delivery).run_once()
    sn.close()
    (record,) = fake.sn_records
    record["state"] = "Assigned"
    monkeypatch.setenv("PROGNOS_SERVICENOW_PASSWORD", "secret")
    argv = ["workorders", "--db", str(db), "poll", "--url", fake.base_url, "--user", "prognos"]
    capsys.readouterr()  # the set-up's log lines
    assert main(argv) == 0
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == ['{"changed": 1}', '{"changed": 0}']
    assert store.get(wo.key).state is WoState.ASSIGNED
    store.close()
