"""`prognos workorders`: deliver, list, show, approve, retry; the inbound endpoint; SLA checks.

Secrets come from the environment, never the command line: ``PROGNOS_WEBHOOK_SECRET`` for the
webhook adapter, ``PROGNOS_SERVICENOW_PASSWORD`` or ``PROGNOS_SERVICENOW_TOKEN`` for ServiceNow.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import threading
import time
from pathlib import Path

import structlog

from cloud._logging import configure_logging
from cloud.workorders._adapters import ServiceNowServiceSystem, WebhookServiceSystem
from cloud.workorders._deliver import DeliveryWorker
from cloud.workorders._exceptions import DeliveryError, PolicyError
from cloud.workorders._inbound import InboundServer
from cloud.workorders._notify import EmailNotifier, SlaTracker, WebhookNotifier
from cloud.workorders._policy import load_policy
from cloud.workorders._poll import poll_statuses
from cloud.workorders._state import IllegalWorkOrderTransition, WoEvent, WoState
from cloud.workorders._store import Store


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prognos workorders", description="Work orders: the outbox to the service system."
    )
    parser.add_argument("--db", type=Path, required=True, help="the decision-state SQLite file")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default="info"
    )
    parser.add_argument("--log-format", choices=["console", "json"], default="console")
    sub = parser.add_subparsers(dest="action", required=True)
    deliver = sub.add_parser("deliver", help="deliver the outbox to the service system")
    deliver.add_argument("--policy", type=Path, help="service policy YAML (default: DESIGN.md's)")
    deliver.add_argument("--adapter", choices=["webhook", "servicenow"], required=True)
    deliver.add_argument("--url", required=True, help="webhook URL or ServiceNow instance URL")
    deliver.add_argument("--table", default="wm_order", help="ServiceNow table")
    deliver.add_argument("--user", help="ServiceNow basic-auth user")
    deliver.add_argument("--until-idle", action="store_true", help="exit when nothing is queued")
    deliver.add_argument("--once", action="store_true", help="one pass over what is due, then exit")
    deliver.add_argument("--poll-s", type=float, default=1.0, help="longest sleep between passes")
    listing = sub.add_parser("list", help="work orders and outbox counts")
    listing.add_argument("--state", choices=[s.value for s in WoState])
    listing.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one work order, its history and delivery attempts")
    show.add_argument("key")
    for name, text in (
        ("retry", "put a dead-lettered work order back"),
        ("approve", "approve a proposed one"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("key")
    inbound = sub.add_parser("inbound", help="serve the inbound status endpoint (signed callbacks)")
    inbound.add_argument("--host", default="127.0.0.1")
    inbound.add_argument("--port", type=int, default=8088)
    poll = sub.add_parser("poll", help="poll ServiceNow for statuses and feedback")
    poll.add_argument("--url", required=True, help="ServiceNow instance URL")
    poll.add_argument("--table", default="wm_order")
    poll.add_argument("--user", help="basic-auth user (PROGNOS_SERVICENOW_PASSWORD)")
    poll.add_argument("--every-s", type=float, default=0.0, help="repeat every N s (0: once)")
    sla = sub.add_parser("sla", help="send due SLA warnings and escalations")
    sla.add_argument("--policy", type=Path, help="service policy YAML (default: DESIGN.md's)")
    sla.add_argument("--smtp-host", help="SMTP server for the e-mail channel")
    sla.add_argument("--smtp-port", type=int, default=25)
    sla.add_argument("--mail-from", default="prognos@localhost")
    sla.add_argument("--webhook-url", help="receiver of workorder.sla_warning/escalated events")
    sla.add_argument("--every-s", type=float, default=0.0, help="repeat every N s (0: once)")
    return parser


def _adapter(
    args: argparse.Namespace, timeout_s: float
) -> WebhookServiceSystem | ServiceNowServiceSystem:
    if args.adapter == "webhook":
        return WebhookServiceSystem(url=args.url, secret=_secrets()[0], timeout_s=timeout_s)
    token = os.environ.get("PROGNOS_SERVICENOW_TOKEN")
    password = os.environ.get("PROGNOS_SERVICENOW_PASSWORD")
    if token is None and (args.user is None or password is None):
        raise SystemExit(
            "prognos workorders: ServiceNow needs --user and PROGNOS_SERVICENOW_PASSWORD, "
            "or PROGNOS_SERVICENOW_TOKEN"
        )
    return ServiceNowServiceSystem(
        instance_url=args.url,
        table=args.table,
        user=args.user,
        password=password,
        token=token,
        timeout_s=timeout_s,
    )


def _deliver(args: argparse.Namespace, store: Store) -> int:
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 2
    service = _adapter(args, policy.delivery.timeout_s)
    worker = DeliveryWorker(store=store, service=service, policy=policy.delivery)
    try:
        if args.once:
            report = worker.run_once()
        else:
            report = worker.run(until_idle=args.until_idle, poll_s=args.poll_s)
    finally:
        service.close()
    summary = {"delivered": report.created + report.found, **dataclasses.asdict(report)}
    print(json.dumps(summary | store.counts()))
    return 0


def _list(args: argparse.Namespace, store: Store) -> int:
    rows = store.work_orders(state=WoState(args.state) if args.state else None)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "key": r.key,
                        "state": r.state.value,
                        "priority": r.work_order.priority.value,
                        "asset": r.work_order.asset,
                        "external_id": r.external_id,
                        "title": r.work_order.title,
                    }
                    for r in rows
                ]
            )
        )
        return 0
    for r in rows:
        wo = r.work_order
        ext = r.external_id or "-"
        print(
            f"{r.key}  {r.state.value:<11} {wo.priority.value}  {wo.asset:<16} {ext:<34} {wo.title}"
        )
    print(" ".join(f"{k}={v}" for k, v in sorted(store.counts().items())))
    return 0


def _one(args: argparse.Namespace, store: Store) -> int:
    try:
        rec = store.get(args.key)
    except KeyError:
        print(f"prognos workorders: no work order with key {args.key!r}", file=sys.stderr)
        return 1
    if args.action == "show":
        shown = {
            "state": rec.state.value,
            "reason": rec.reason,
            "external_id": rec.external_id,
            "work_order": rec.work_order.payload(),
            "events": store.events(args.key),
            "deliveries": store.deliveries(args.key),
        }
        print(json.dumps(shown, indent=2))
        return 0
    event = WoEvent.RETRY if args.action == "retry" else WoEvent.APPROVE
    try:
        state = store.transition(args.key, event, now=dt.datetime.now(dt.UTC), source="cli")
    except IllegalWorkOrderTransition as exc:
        print(f"prognos workorders: {exc}", file=sys.stderr)
        return 1
    structlog.get_logger("prognos.workorders").info(
        "work_order_requeued", key=args.key, state=state.value
    )
    print(f"{args.key}: {state.value}")
    return 0


def _secrets() -> list[str]:
    secret = os.environ.get("PROGNOS_WEBHOOK_SECRET")
    if not secret:
        raise SystemExit("prognos workorders: set PROGNOS_WEBHOOK_SECRET (whsec_...)")
    return [s for s in secret.split() if s]  # several, space-separated, during a rotation


def _inbound(args: argparse.Namespace) -> int:
    server = InboundServer(db=args.db, secrets=_secrets(), host=args.host, port=args.port)
    print(f"inbound status endpoint: {server.url}", flush=True)
    server.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _poll(args: argparse.Namespace, store: Store) -> int:
    args.adapter = "servicenow"
    service = _adapter(args, timeout_s=30.0)
    assert isinstance(service, ServiceNowServiceSystem)  # noqa: S101 - narrowed for mypy
    try:
        while True:
            try:
                changed = poll_statuses(store, service, now=dt.datetime.now(dt.UTC))
                print(json.dumps({"changed": changed}), flush=True)
            except DeliveryError as exc:
                structlog.get_logger("prognos.workorders.poll").warning(
                    "poll_failed", error=str(exc)
                )
            if args.every_s <= 0:
                return 0
            time.sleep(args.every_s)
    finally:
        service.close()


def _sla(args: argparse.Namespace, store: Store) -> int:
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 2
    email = (
        EmailNotifier(host=args.smtp_host, port=args.smtp_port, sender=args.mail_from)
        if args.smtp_host
        else None
    )
    webhook = (
        WebhookNotifier(url=args.webhook_url, secret=_secrets()[0]) if args.webhook_url else None
    )
    tracker = SlaTracker(store=store, policy=policy, email=email, webhook=webhook)
    while True:
        for action in tracker.run_once():
            print(f"{action.key} {action.action} step {action.step} respond_by {action.respond_by}")
        if args.every_s <= 0:
            return 0
        time.sleep(args.every_s)


def main(argv: list[str]) -> int:
    """Run the command; returns the exit code."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    store = Store(args.db)
    try:
        if args.action == "deliver":
            return _deliver(args, store)
        if args.action == "list":
            return _list(args, store)
        if args.action == "inbound":
            return _inbound(args)
        if args.action == "sla":
            return _sla(args, store)
        if args.action == "poll":
            return _poll(args, store)
        return _one(args, store)
    finally:
        store.close()
