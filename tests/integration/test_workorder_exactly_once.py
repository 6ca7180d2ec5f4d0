"""Must show: exactly once against a real local service system that fails in every way.

A delivery worker *process* (`prognos workorders deliver`) sends 50 intended work orders while
the service system cycles through ok, slow, HTTP 500, down (connection refused), timeout after
create and 500 after create; the worker is SIGKILLed twice mid-delivery (after the service system
stored a create, before it answered) and restarted. At the end every work order exists exactly
once on the service system, for both adapters. The fake does *not* deduplicate by key here, so a
second create would show as a second record.
"""

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cloud.workorders import (
    Admission,
    FakeServiceSystem,
    ServicePolicy,
    Store,
    WoState,
    build_from_rule,
    new_secret,
)

N = 50
CYCLE = ("ok", "slow", "error500", "down", "timeout_after_create", "error500_after_create")
POLICY_YAML = """
delivery: {max_attempts: 1000, backoff_min: 0.05s, backoff_max: 0.2s, timeout_s: 0.3}
"""


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

    def __init__(self, n: int) -> None:
        self.asset_id = f"pump-{n:02d}"


def fill(db: Path) -> list[str]:
    now = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    store = Store(db)
    keys = []
    for n in range(N):
        wo = build_from_rule(
            asset=Asset(n),
            profile=None,
            consumable="mechanical_seal",
            window="since-2024-01-01-0h",
            due_by=now + dt.timedelta(days=20),
            reason="test",
            created_at=now,
            policy=ServicePolicy(),
        )
        assert store.add(wo, Admission(WoState.PENDING, "auto"), now=now)
        keys.append(wo.key)
    store.close()
    return keys


def cycle_faults(fake: FakeServiceSystem, stop: threading.Event) -> None:
    """Each mode for 5 requests (down: 0.5 s of refused connections), round and round."""
    i = 0
    while not stop.is_set():
        mode = CYCLE[i % len(CYCLE)]
        fake.set_mode(mode, delay_s=0.1 if mode == "slow" else 0.6)
        start, began = fake.request_count, time.monotonic()
        while not stop.is_set():
            if mode == "down" and time.monotonic() - began > 0.5:
                break
            if mode != "down" and fake.request_count - start >= 5:
                break
            stop.wait(0.01)
        i += 1
    fake.set_mode("ok")


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ["webhook", "servicenow"])
def test_every_intended_work_order_exists_exactly_once(tmp_path: Path, adapter: str) -> None:
    """Faults of every kind plus two SIGKILLs mid-delivery: 50 intended, 50 records, no more."""
    db = tmp_path / "decisions.db"
    keys = fill(db)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_YAML)
    fake = FakeServiceSystem(secret=new_secret(), honour_idempotency_key=False)
    fake.start()
    url = fake.webhook_url if adapter == "webhook" else fake.base_url
    cmd = [sys.executable, "-m", "cloud", "workorders", "--db", str(db), "deliver",
           "--adapter", adapter, "--url", url, "--policy", str(policy), "--until-idle",
           "--poll-s", "0.05", "--user", "prognos"]  # fmt: skip
    env = os.environ | {
        "PROGNOS_WEBHOOK_SECRET": fake.secret,
        "PROGNOS_SERVICENOW_PASSWORD": "secret",
    }
    worker: dict[str, subprocess.Popen[bytes]] = {}
    kills: list[int] = []

    def kill_mid_delivery(creates: int) -> None:
        if creates in {10, 30}:
            kills.append(creates)
            os.kill(worker["p"].pid, signal.SIGKILL)

    fake.on_create = kill_mid_delivery
    stop = threading.Event()
    faults = threading.Thread(target=cycle_faults, args=(fake, stop), daemon=True)
    faults.start()
    try:
        runs = []
        while True:
            worker["p"] = subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            _out, err = worker["p"].communicate(timeout=150)
            runs.append(worker["p"].returncode)
            if worker["p"].returncode != -signal.SIGKILL:
                break
        assert worker["p"].returncode == 0, err.decode()[-3000:]
    finally:
        stop.set()
        faults.join()
        fake.stop()

    assert runs == [-signal.SIGKILL, -signal.SIGKILL, 0]
    assert kills == [10, 30]
    stored = fake.webhook_keys() if adapter == "webhook" else fake.sn_keys()
    assert sorted(stored) == sorted(keys), "each intended work order exactly once"
    store = Store(db)
    records = {r.key: r for r in store.work_orders()}
    assert {r.state for r in records.values()} == {WoState.CREATED}
    ids = (
        {r["key"]: r["id"] for r in fake.webhook_records}
        if adapter == "webhook"
        else {r["correlation_id"]: r["sys_id"] for r in fake.sn_records}
    )
    assert {k: r.external_id for k, r in records.items()} == ids
    outcomes = [d["outcome"] for d in store.deliveries()]
    # The faults did happen, and the lookup path did the work of avoiding duplicates.
    assert outcomes.count("found") >= 2
    assert {"timeout", "http_500", "connect"} <= set(outcomes)
    assert store.counts()["outbox_done"] == N
    store.close()
