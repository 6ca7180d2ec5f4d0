"""SLA warnings and escalations out: e-mail over SMTP and a signed webhook (thin I/O shell).

`SlaTracker.run_once` reads the open work orders, asks the pure `due_actions` what is due at the
clock's ``now``, sends each on its channels and records it as sent, so each step goes out once.
A step whose sending failed is not recorded and is tried again on the next run.
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from collections.abc import Callable
from email.message import EmailMessage

import httpx
import structlog

from cloud.workorders._policy import ServicePolicy
from cloud.workorders._signing import signed_headers
from cloud.workorders._sla import SlaAction, SlaView, due_actions
from cloud.workorders._state import OPEN_STATES
from cloud.workorders._store import Store

log = structlog.get_logger("prognos.workorders.sla")


class EmailNotifier:
    """Sends plain-text e-mail through an SMTP server.

    Args:
        host: SMTP server.
        port: Its port.
        sender: The From address.
        starttls: Upgrade with STARTTLS before sending.
        user: Login user, if the server wants one.
        password: Login password.
        timeout_s: Connection timeout.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int = 25,
        sender: str,
        starttls: bool = False,
        user: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._starttls, self._user, self._password = starttls, user, password
        self._timeout_s = timeout_s

    def send(self, to: tuple[str, ...], subject: str, body: str) -> None:
        """Send one message.

        Raises:
            OSError: The server could not be reached or refused (smtplib's errors are OSErrors).
        """
        msg = EmailMessage()
        msg["From"] = self._sender
        msg["To"] = ", ".join(to)
        msg["Subject"] = subject
        msg.set_content(body)
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout_s) as smtp:
            if self._starttls:
                smtp.starttls()
            if self._user is not None and self._password is not None:
                smtp.login(self._user, self._password)
            smtp.send_message(msg)


class WebhookNotifier:
    """Posts ``workorder.sla_warning`` / ``workorder.escalated`` events, signed.

    Args:
        url: The receiver.
        secret: The ``whsec_`` secret.
        client: An httpx client; built from `transport` when None.
        transport: For tests.
    """

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url, self._secret = url, secret
        self._client = client or httpx.Client(transport=transport, timeout=10)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def send(self, action: SlaAction, *, now: dt.datetime) -> None:
        """Post one action.

        Raises:
            httpx.HTTPError: Not delivered.
        """
        kind = "workorder.escalated" if action.action == "escalate" else "workorder.sla_warning"
        data = {
            "key": action.key,
            "step": action.step,
            "priority": action.priority.value,
            "title": action.title,
            "respond_by": action.respond_by.isoformat(),
            "late": action.late,
        }
        body = json.dumps({"type": kind, "timestamp": now.isoformat(), "data": data}).encode()
        headers = signed_headers(self._secret, f"msg_{action.key}_sla{action.step}", now, body)
        headers["content-type"] = "application/json"
        self._client.post(self._url, content=body, headers=headers).raise_for_status()


class SlaTracker:
    """Watches response deadlines and sends warnings and escalations.

    Args:
        store: The decision-state store.
        policy: The escalation steps.
        email: Sends the ``email`` channel; None skips it.
        webhook: Sends the ``webhook`` channel; None skips it.
        clock: The current time (tests pass a controlled clock).
    """

    def __init__(
        self,
        *,
        store: Store,
        policy: ServicePolicy,
        email: EmailNotifier | None = None,
        webhook: WebhookNotifier | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._store, self._policy = store, policy
        self._email, self._webhook, self._clock = email, webhook, clock

    def run_once(self) -> list[SlaAction]:
        """Send every step due now; returns those sent."""
        now = self._clock()
        views = [
            SlaView(
                key=r.key,
                state=r.state,
                priority=r.work_order.priority,
                created_at=r.work_order.created_at,
                respond_by=r.work_order.respond_by,
                team=r.work_order.team,
                title=r.work_order.title,
            )
            for state in OPEN_STATES
            for r in self._store.work_orders(state=state)
        ]
        sent = []
        for action in due_actions(views, policy=self._policy, now=now, done=self._store.sla_done()):
            try:
                self._send(action, now)
            except (OSError, httpx.HTTPError) as exc:
                log.warning(
                    "sla_notification_failed", key=action.key, step=action.step, error=str(exc)
                )
                continue
            self._store.mark_sla(action.key, action.step, action=action.action, now=now)
            log.warning(
                "work_order_escalated" if action.action == "escalate" else "work_order_sla_warning",
                key=action.key,
                priority=action.priority.value,
                respond_by=action.respond_by.isoformat(),
                late=action.late,
            )
            sent.append(action)
        return sent

    def _send(self, action: SlaAction, now: dt.datetime) -> None:
        left = action.respond_by - now
        verb = "ESCALATION" if action.action == "escalate" else "Warning"
        subject = (
            f"[Prognos {action.priority.value}] {verb}: response due in {_fmt(left)}: "
            f"{action.title}"
        )
        body = (
            f"Work order {action.key} has not been acknowledged by the service system.\n"
            f"Respond by: {action.respond_by.isoformat()}\nPriority: {action.priority.value}\n"
        )
        if "webhook" in action.channels:
            if self._webhook is None:
                log.warning("sla_channel_not_configured", channel="webhook", key=action.key)
            else:
                self._webhook.send(action, now=now)
        if "email" in action.channels:
            if self._email is None or not action.to:
                log.warning("sla_channel_not_configured", channel="email", key=action.key)
            else:
                self._email.send(action.to, subject, body)


def _fmt(left: dt.timedelta) -> str:
    minutes = int(left.total_seconds() // 60)
    return f"{minutes} min" if minutes >= 0 else f"overdue by {-minutes} min"
