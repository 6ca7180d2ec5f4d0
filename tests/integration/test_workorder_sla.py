"""Must show: escalation fires before the response deadline, in a test with a controlled clock.

It goes out by e-mail over a real local SMTP server (aiosmtpd) and by a signed webhook to the
local service system.
"""

import datetime as dt
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from cloud._cli import main
from cloud.workorders import (
    Admission,
    EmailNotifier,
    FakeServiceSystem,
    ServicePolicy,
    SlaTracker,
    Store,
    WebhookNotifier,
    WoEvent,
    WoState,
    build_from_prediction,
    new_secret,
    parse_policy,
)

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


class Inbox:
    """An aiosmtpd handler that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:  # noqa: N802, ARG002, D102 - aiosmtpd's hook
        content = envelope.content
        text = content.decode() if isinstance(content, bytes) else str(content)
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), text))
        return "250 OK"


class Clock:
    """A controlled clock."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:  # noqa: D102 - a clock
        return self.now


class Asset:
    """A critical asset of a Regular customer."""

    asset_id = "pump-07"
    site = "plant1"
    customer = "ACME"
    tier = "Regular"
    profile = "aquaflo_cpv150_2.x"
    asset_class = "pump"
    team = "north"
    criticality = "critical"
    warranty_end = None


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as s:  # aiosmtpd checks readiness by connecting: it needs a real port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_escalation_fires_before_the_response_deadline(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    """P1, respond within 30 min: warn at 15, escalate at 24 (mail + webhook), none after ack."""
    inbox, port = smtp
    policy = parse_policy({"escalation": [
        {"at": 0.5, "action": "warn", "to": ["planners@example.com"]},
        {"at": 0.8, "action": "escalate", "to": ["lead@example.com", "duty@example.com"]},
    ]})  # fmt: skip
    store = Store(tmp_path / "d.db")
    wo = build_from_prediction(asset=Asset(), profile=None, failure_mode="bearing_wear",
                               window="alert-1", created_at=T0, policy=ServicePolicy(),
                               rul_lo_h=10)  # fmt: skip
    assert wo.respond_by == T0 + dt.timedelta(minutes=30)
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    clock = Clock()
    fake = FakeServiceSystem(secret=new_secret(), clock=clock)
    fake.start()
    webhook = WebhookNotifier(url=fake.webhook_url, secret=fake.secret)
    tracker = SlaTracker(store=store, policy=policy, clock=clock, webhook=webhook,
                         email=EmailNotifier(host="127.0.0.1", port=port,
                                             sender="prognos@example.com"))  # fmt: skip
    try:
        clock.now = T0 + dt.timedelta(minutes=14)
        assert tracker.run_once() == []
        clock.now = T0 + dt.timedelta(minutes=15)
        assert [a.action for a in tracker.run_once()] == ["warn"]
        clock.now = T0 + dt.timedelta(minutes=16)
        assert tracker.run_once() == [], "each step once"
        clock.now = T0 + dt.timedelta(minutes=24)
        (esc,) = tracker.run_once()
        assert esc.action == "escalate"
        assert clock.now < wo.respond_by, "escalated before the deadline passed"
        clock.now = T0 + dt.timedelta(minutes=40)
        assert tracker.run_once() == []
    finally:
        webhook.close()
        fake.stop()

    assert [(m[1]) for m in inbox.messages] == [
        ["planners@example.com"], ["lead@example.com", "duty@example.com"],
    ]  # fmt: skip
    assert "ESCALATION: response due in 6 min" in inbox.messages[1][2]
    events = [json.loads(r.body) for r in fake.requests if r.method == "POST"]
    assert [e["type"] for e in events] == ["workorder.sla_warning", "workorder.escalated"]
    assert events[1]["data"]["key"] == wo.key


def test_an_acknowledged_work_order_is_not_escalated(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    """Assigned at minute 10: nothing is sent at 15 or 24."""
    inbox, port = smtp
    store = Store(tmp_path / "d.db")
    wo = build_from_prediction(asset=Asset(), profile=None, failure_mode="bearing_wear",
                               window="alert-1", created_at=T0, policy=ServicePolicy(),
                               rul_lo_h=10)  # fmt: skip
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    policy = parse_policy({"escalation": [{"at": 0.5, "action": "warn", "to": ["p@example.com"]}]})
    clock = Clock()
    tracker = SlaTracker(store=store, policy=policy, clock=clock,
                         email=EmailNotifier(host="127.0.0.1", port=port,
                                             sender="prognos@example.com"))  # fmt: skip
    store.apply_status(
        wo.key, WoEvent.ASSIGNED, now=T0 + dt.timedelta(minutes=10), external_id="X", feedback=None
    )
    clock.now = T0 + dt.timedelta(minutes=24)
    assert tracker.run_once() == []
    assert inbox.messages == []
    store.close()


def test_the_sla_command_mails_a_due_warning(
    tmp_path: Path, smtp: tuple[Inbox, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """`prognos workorders sla`: 20 minutes into a 30-minute P1 window, one warning by e-mail."""
    inbox, port = smtp
    created = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    db = tmp_path / "d.db"
    store = Store(db)
    wo = build_from_prediction(asset=Asset(), profile=None, failure_mode="bearing_wear",
                               window="alert-1", created_at=created, policy=ServicePolicy(),
                               rul_lo_h=10)  # fmt: skip
    store.add(wo, Admission(WoState.PENDING, "auto"), now=created)
    store.close()
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "escalation:\n  - {at: 0.5, action: warn, channels: [email], to: [p@example.com]}\n"
    )
    argv = ["workorders", "--db", str(db), "sla", "--policy", str(policy),
            "--smtp-host", "127.0.0.1", "--smtp-port", str(port)]  # fmt: skip
    assert main(argv) == 0
    assert f"{wo.key} warn step 0" in capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == "", "sent once"
    ((sender, to, text),) = inbox.messages
    assert (sender, to) == ("prognos@localhost", ["p@example.com"])
    assert "Warning: response due in" in text
