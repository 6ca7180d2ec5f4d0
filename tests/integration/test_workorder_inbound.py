"""Must show: webhook signatures verify independently; replayed or stale inbound is refused.

The signatures verify with a Standard Webhooks verifier written here from the spec; a replayed
or stale inbound webhook is refused; the loop closes (resolved -> alert, labels, case library).

Both directions run over real HTTP: Prognos' delivery worker to the local fake service system,
and the fake's signed status callbacks to Prognos' inbound server.
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    WoState,
    build_from_prediction,
    new_secret,
    verify,
)

T0 = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
Loop = tuple[Store, FakeServiceSystem, WorkOrder]


def independent_verify(
    secret: str, headers: dict[str, str], body: bytes, *, tolerance_s: int = 300
) -> bool:
    """Standard Webhooks, written from the spec and nothing in cloud/.

    The key is the base64 part after ``whsec_``; the signed content is ``id.timestamp.body``;
    the header holds space-separated ``v1,<base64 HMAC-SHA256>``; timestamps older or newer than
    the tolerance fail.
    """
    h = {k.lower(): v for k, v in headers.items()}
    if abs(time.time() - int(h["webhook-timestamp"])) > tolerance_s:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    content = h["webhook-id"].encode() + b"." + h["webhook-timestamp"].encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest())
    return any(
        hmac.compare_digest(sig.split(",", 1)[1].encode(), expected)
        for sig in h["webhook-signature"].split(" ")
        if sig.startswith("v1,")
    )


def independent_sign(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Asset:
    """A minimal asset record."""

    asset_id = "pump-07"
    site = "plant1"
    customer = "ACME"
    tier = "Regular"
    profile = "aquaflo_cpv150_2.x"
    asset_class = "pump"
    team = "north"
    criticality = "high"
    warranty_end = None


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    """A delivered work order for an open alert, the fake, and the inbound server on one store."""
    db = tmp_path / "decisions.db"
    store = Store(db)
    engine = AlertEngine(policy=AlertPolicy(open_after=1))
    (raised,) = engine.observe("pump-07", "bearing_wear", T0, 0.9, now=T0)
    store.save_alert(raised.alert)
    wo = build_from_prediction(
        asset=Asset(), profile=None, failure_mode="bearing_wear", window="alert-1",
        created_at=T0, policy=ServicePolicy(), rul_lo_h=100, alert_id=raised.alert.alert_id,
    )  # fmt: skip
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    fake = FakeServiceSystem(secret=new_secret())
    fake.start()
    inbound = InboundServer(db=db, secrets=[fake.secret])
    inbound.start()
    fake.callback_url = inbound.url
    service = WebhookServiceSystem(url=fake.webhook_url, secret=fake.secret)
    DeliveryWorker(store=store, service=service, policy=ServicePolicy().delivery).run_once()
    service.close()
    yield store, fake, wo
    inbound.stop()
    fake.stop()
    store.close()


def test_outbound_signatures_verify_with_an_independent_verifier(loop: Loop) -> None:
    """Every request the worker sent carries a signature the spec's own algorithm accepts."""
    _store, fake, wo = loop
    sent = [r for r in fake.requests if r.method == "POST"]
    assert sent
    for r in sent:
        assert independent_verify(fake.secret, r.headers, r.body)
        assert r.headers["idempotency-key"] == wo.key
        assert json.loads(r.body)["type"] == "workorder.created"
    tampered = sent[0]
    assert not independent_verify(fake.secret, tampered.headers, tampered.body + b" ")
    assert not independent_verify(new_secret(), tampered.headers, tampered.body)


def test_our_verifier_accepts_an_independently_signed_message() -> None:
    """The other direction: a message signed by the spec's algorithm passes `verify`."""
    secret, body, now = new_secret(), b'{"x":1}', dt.datetime.now(dt.UTC)
    ts = int(now.timestamp())
    good = independent_sign(secret, "msg_1", ts, body)
    headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(ts),
               "Webhook-Signature": f"v1,bm9wZQ== {good}"}  # fmt: skip
    assert verify(headers, body, secrets_=[secret], now=now) == (
        "msg_1",
        now.replace(microsecond=0),
    )


def test_status_callbacks_close_the_loop(loop: Loop) -> None:
    """assigned, in_progress, resolved (alert resolved, label), closed (alert closed, case)."""
    store, fake, wo = loop
    ext = store.get(wo.key).external_id
    for status in ("assigned", "in_progress"):
        assert fake.send_status(wo.key, status, external_id=ext).status_code == 200
    feedback = {"failure_confirmed": True, "root_cause": "grease washed out",
                "parts_used": ["SKF-6309-2Z-C3"], "resolution_mode": "on-site"}  # fmt: skip
    assert (
        fake.send_status(wo.key, "resolved", external_id=ext, feedback=feedback).status_code == 200
    )
    assert store.get(wo.key).state is WoState.RESOLVED
    assert store.alert_state(str(wo.alert_id)) is AlertState.RESOLVED
    (label,) = store.labels()
    assert (label["failure_confirmed"], label["root_cause"], label["parts_used"]) == (
        1, "grease washed out", ["SKF-6309-2Z-C3"],
    )  # fmt: skip
    assert fake.send_status(wo.key, "closed", external_id=ext).status_code == 200
    assert store.alert_state(str(wo.alert_id)) is AlertState.CLOSED
    (case,) = store.similar_cases("aquaflo_cpv150_2.x", "bearing_wear")
    assert (case.key, case.root_cause, case.failure_confirmed) == (
        wo.key,
        "grease washed out",
        True,
    )
    assert [e["new"] for e in store.events(wo.key)] == [
        "created", "assigned", "in_progress", "resolved", "closed",
    ]  # fmt: skip


def test_a_replayed_webhook_is_refused(loop: Loop) -> None:
    """The same webhook-id twice: the second is refused (409) and changes nothing."""
    store, fake, wo = loop
    first = fake.send_status(wo.key, "assigned", msg_id="msg_replay_1")
    assert first.status_code == 200
    again = fake.send_status(wo.key, "resolved", msg_id="msg_replay_1")
    assert (again.status_code, again.json()["error"]) == (409, "replayed")
    assert store.get(wo.key).state is WoState.ASSIGNED


def test_a_stale_webhook_is_refused(loop: Loop) -> None:
    """Signed correctly but ten minutes old: refused (401, stale), nothing changes."""
    store, fake, wo = loop
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    answer = fake.send_status(wo.key, "assigned", now=old)
    assert (answer.status_code, answer.json()["error"]) == (401, "stale")
    assert store.get(wo.key).state is WoState.CREATED


def test_a_forged_webhook_is_refused(loop: Loop) -> None:
    """Signed with another secret: refused (401, bad_signature)."""
    store, fake, wo = loop
    answer = fake.send_status(wo.key, "closed", secret=new_secret())
    assert (answer.status_code, answer.json()["error"]) == (401, "bad_signature")
    assert store.get(wo.key).state is WoState.CREATED


def test_unknown_keys_and_illegal_statuses_are_refused_and_may_be_retried(loop: Loop) -> None:
    """404 for an unknown key; 409 for closed -> assigned; the refused id can be sent again."""
    store, fake, wo = loop
    assert fake.send_status("wo-nope", "assigned").json()["error"] == "unknown_work_order"
    assert fake.send_status(wo.key, "closed").status_code == 200
    refused = fake.send_status(wo.key, "assigned", msg_id="msg_x")
    assert (refused.status_code, refused.json()["error"]) == (409, "illegal_transition")
    assert (
        fake.send_status(wo.key, "assigned", msg_id="msg_x").json()["error"] == "illegal_transition"
    )
    assert store.get(wo.key).state is WoState.CLOSED


def test_the_inbound_command_serves_signed_callbacks(tmp_path: Path) -> None:
    """`prognos workorders inbound`, its own process: a signed status in, a forgery refused."""
    db = tmp_path / "d.db"
    store = Store(db)
    wo = build_from_prediction(asset=Asset(), profile=None, failure_mode="bearing_wear",
                               window="alert-1", created_at=T0, policy=ServicePolicy())  # fmt: skip
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    fake = FakeServiceSystem(secret=new_secret())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "cloud",
        "workorders",
        "--db",
        str(db),
        "inbound",
        "--port",
        str(port),
    ]
    env = os.environ | {"PROGNOS_WEBHOOK_SECRET": fake.secret}
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            fake.callback_url = line.split(": ", 1)[1].strip()
            assert fake.send_status(wo.key, "assigned", external_id="EXT-1").status_code == 200
            assert fake.send_status(wo.key, "closed", secret=new_secret()).status_code == 401
        finally:
            proc.terminate()
    rec = store.get(wo.key)
    assert (rec.state, rec.external_id) == (WoState.ASSIGNED, "EXT-1")
    store.close()
