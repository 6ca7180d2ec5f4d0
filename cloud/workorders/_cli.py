"""`prognos workorders`: deliver, list, show, approve, retry, dry-run; inbound; SLA checks.

``dry-run`` replays the stored score history through the current settings (docs/workorders.md
"Dry run").

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
from typing import TYPE_CHECKING, Any

import structlog

from cloud._args import time_arg
from cloud._logging import configure_logging
from cloud.registry import AssetRegistry, RegistryError, load_registry
from cloud.store import InfluxAuth, InfluxClient, InfluxError
from cloud.workorders._adapters import ServiceNowServiceSystem, WebhookServiceSystem
from cloud.workorders._deliver import DeliveryWorker
from cloud.workorders._dryrun import AlertReplay, Failure, admit_openings, render_table, summarize
from cloud.workorders._dryrun_io import (
    FailureFileError,
    file_failures,
    label_failures,
    stream_scores,
)
from cloud.workorders._exceptions import DeliveryError, PolicyError
from cloud.workorders._inbound import InboundServer
from cloud.workorders._notify import EmailNotifier, SlaTracker, WebhookNotifier
from cloud.workorders._policy import ServicePolicy, load_policy, parse_span
from cloud.workorders._poll import poll_statuses
from cloud.workorders._state import IllegalWorkOrderTransition, WoEvent, WoState
from cloud.workorders._store import Store

if TYPE_CHECKING:
    from cloud.scoring import ScoringConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prognos workorders", description="Work orders: the outbox to the service system."
    )
    parser.add_argument(
        "--db",
        type=Path,
        help="the decision-state SQLite file (required, except for dry-run: its failure labels)",
    )
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
    _add_dry_run(sub)
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


def _span_arg(text: str) -> dt.timedelta:
    try:
        value = parse_span(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(value, dt.timedelta) or value <= dt.timedelta(0):
        raise argparse.ArgumentTypeError(f"expected a duration like '30d'. Got {text!r} instead")
    return value


def _add_dry_run(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Add ``dry-run`` to the ``prognos workorders`` subcommands."""
    p = sub.add_parser(
        "dry-run",
        help="replay stored scores through the current settings: work orders per week",
        description=(
            "Replay the stored score history through the current alert settings and work-order "
            "policy; print per ISO week the alerts and work orders they would have opened and "
            "how many came before a real failure. Nothing is stored or sent."
        ),
    )
    p.add_argument("--registry", type=Path, required=True, help="asset registry (YAML or CSV)")
    p.add_argument(
        "--profiles",
        type=Path,
        default=Path("firmware_profiles"),
        help="firmware profiles folder (default: %(default)s)",
    )
    p.add_argument("--config", type=Path, help="scoring config: alert levels, hysteresis, cooldown")
    p.add_argument(
        "--policy", type=Path, help="service policy: modes, budgets (default: DESIGN.md)"
    )
    p.add_argument(
        "--from",
        dest="start",
        type=time_arg,
        help="start, inclusive (default: --to minus 90 days)",
    )
    p.add_argument("--to", dest="end", type=time_arg, help="end, exclusive (default: now)")
    p.add_argument(
        "--lead-window",
        type=_span_arg,
        default=dt.timedelta(days=30),
        help="a work order opened this long before a failure counts as before it (default 30d)",
    )
    p.add_argument(
        "--work-takes",
        type=_span_arg,
        default=dt.timedelta(days=3),
        help="each work order is taken as done (its alert closed) this long after (default 3d)",
    )
    p.add_argument(
        "--match",
        choices=["mode", "asset"],
        default="mode",
        help="mode: a failure matches work orders of its failure mode (or any, when it names "
        "none); asset: any work order of the asset (default: %(default)s)",
    )
    p.add_argument(
        "--failures",
        type=Path,
        action="append",
        default=[],
        help="more failures: CSV asset,failed_at[,failure_mode] or a plant ground_truth.jsonl "
        "(repeatable)",
    )
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--database", default="prognos", help="InfluxDB database (default: %(default)s)")
    p.add_argument(
        "--influx-url",
        default=os.environ.get("PROGNOS_INFLUX_URL"),
        help="default: $PROGNOS_INFLUX_URL",
    )
    p.add_argument("--batch-assets", type=int, default=20, help="assets per query (default 20)")
    p.add_argument(
        "--span", type=_span_arg, default=dt.timedelta(days=7), help="time per query (7d)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


class _UsageError(Exception):
    """A bad option, config or input file: printed, exit 2."""


def _dry_run_inputs(
    args: argparse.Namespace, start: dt.datetime, end: dt.datetime
) -> tuple[ScoringConfig, ServicePolicy, AssetRegistry, list[Failure]]:
    """The scoring config, the policy, the registry and the failures (`_UsageError` if bad)."""
    # Imported here: the scorer's package is heavy (pandas, models) and imports this one.
    from cloud.scoring import ScoringConfigError, load_config  # noqa: PLC0415

    if not args.influx_url:
        raise _UsageError("prognos workorders dry-run: set PROGNOS_INFLUX_URL or --influx-url")
    if start >= end:
        raise _UsageError(f"prognos workorders dry-run: --from ({start}) must be before --to")
    profiles = args.profiles if args.profiles.is_dir() else None
    try:
        config = load_config(args.config)
        policy = load_policy(args.policy)
        registry = load_registry(args.registry, profiles_dir=profiles)
        failures: list[Failure] = []
        for path in args.failures:
            failures += file_failures(path)
    except (ScoringConfigError, PolicyError, RegistryError, FailureFileError) as exc:
        raise _UsageError(str(exc)) from None
    if args.db is not None:
        store = Store(args.db)
        try:
            failures += label_failures(store)
        finally:
            store.close()
    return config, policy, registry, failures


def _dry_run(args: argparse.Namespace) -> int:
    """Run the dry run; 0 done, 1 InfluxDB failed, 2 a usage, config or input-file error."""
    end = args.end or dt.datetime.now(dt.UTC)
    start = args.start or end - dt.timedelta(days=90)
    try:
        config, policy, registry, failures = _dry_run_inputs(args, start, end)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    failures = [f for f in failures if start <= f.at < end]
    assets = {a.asset_id: a for a in registry}
    replay = AlertReplay(
        alert_policy=config.alert, alert_policies=config.alerts, work_takes=args.work_takes
    )
    started = time.monotonic()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if args.quiet or (now - last[0] < 1.0 and done < total):
            return
        last[0] = now
        print(
            f"dry run: {done:,}/{total:,} assets, {replay.scores:,} scores, "
            f"{len(replay.openings):,} work orders, {now - started:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    user = os.environ.get("PROGNOS_INFLUX_USER")
    auth = InfluxAuth.basic(user, os.environ.get("PROGNOS_INFLUX_PASSWORD", "")) if user else None
    try:
        with InfluxClient(url=args.influx_url, database=args.database, auth=auth) as influx:
            for score in stream_scores(
                influx,
                sorted(assets),
                since=start,
                until=end,
                batch_assets=max(1, args.batch_assets),
                span=args.span,
                progress=progress,
            ):
                replay.feed(score)
    except InfluxError as exc:
        print(f"prognos workorders dry-run: reading scores failed: {exc}", file=sys.stderr)
        return 1
    work_orders = admit_openings(replay.openings, assets=assets, policy=policy)
    report = summarize(
        replay, work_orders, failures, lead_window=args.lead_window, match=args.match
    )
    header = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "assets": len(assets),
        "scores": replay.scores,
        "config": str(args.config) if args.config else None,
        "policy": str(args.policy) if args.policy else None,
        "work_takes_h": args.work_takes.total_seconds() / 3600,
    }
    if args.format == "json":
        print(json.dumps(header | report.to_dict(), indent=2))
    else:
        print(render_table(report, header))
    return 0


def main(argv: list[str]) -> int:  # noqa: PLR0911 - one return per subcommand
    """Run the command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.action == "dry-run":
        # Every replayed alert would log a line: the dry run logs warnings unless asked for more.
        level = "warning" if args.log_level == "info" else args.log_level
        configure_logging(args.log_format, level)
        return _dry_run(args)
    configure_logging(args.log_format, args.log_level)
    if args.db is None:
        parser.error(f"{args.action} needs --db")
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
