"""`prognos report`: a service-quality, availability or equipment-health report, HTML or PDF."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from cloud.registry import RegistryError, load_registry
from cloud.reports._period import Period, PeriodError
from cloud.reports._report import ReportKind, Sources, build_report, render_html, render_pdf
from cloud.store import InfluxAuth, InfluxClient, InfluxError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prognos report",
        description=(
            "Make a report from the work-order store, the asset registry and InfluxDB: "
            "service quality (SLA response, resolution time, first-time fix, work orders by "
            "priority, prediction precision, top failure modes), equipment availability, or "
            "the quarterly equipment health of each customer. Figures: docs/reports.md."
        ),
        epilog=(
            "Example: prognos report health --db decisions.db --assets assets.yaml "
            "--quarter 2026Q3 --customer 'Northwater Utilities' --format pdf --out q3.pdf. "
            "InfluxDB credentials: --influx-user and PROGNOS_INFLUX_PASSWORD, or "
            "PROGNOS_INFLUX_TOKEN. Exit codes: 0 written, 1 a store could not be read, "
            "2 bad arguments."
        ),
    )
    p.add_argument("kind", choices=[k.value for k in ReportKind], help="which report")
    p.add_argument("--db", type=Path, required=True, help="the work-order/alert SQLite file")
    p.add_argument("--assets", type=Path, required=True, help="the asset registry (YAML or CSV)")
    p.add_argument("--profiles", type=Path, help="the firmware profiles folder")
    p.add_argument(
        "--influx-url",
        default=os.environ.get("PROGNOS_INFLUX_URL", "http://127.0.0.1:8086"),
        help="InfluxDB's base URL (default: $PROGNOS_INFLUX_URL or http://127.0.0.1:8086)",
    )
    p.add_argument("--influx-db", default="prognos", help="the InfluxDB database")
    p.add_argument(
        "--influx-user",
        default=os.environ.get("PROGNOS_INFLUX_USER"),
        help="InfluxDB user (default: $PROGNOS_INFLUX_USER); password in PROGNOS_INFLUX_PASSWORD",
    )
    p.add_argument(
        "--no-influx",
        action="store_true",
        help="leave out what only InfluxDB knows (outages, health, which model scored)",
    )
    p.add_argument("--from", dest="start", help="first day or time covered (UTC without a zone)")
    p.add_argument("--to", dest="end", help="first day or time no longer covered")
    p.add_argument("--quarter", help="a calendar quarter instead of --from/--to, e.g. 2026Q3")
    p.add_argument("--customer", help="only this customer (as in the registry)")
    p.add_argument("--format", choices=["html", "pdf"], default="html", help="default: html")
    p.add_argument("--out", type=Path, required=True, help="the file to write")
    return p


def _period(args: argparse.Namespace) -> Period:
    if args.quarter is not None:
        if args.start or args.end:
            raise PeriodError("give either --quarter or --from/--to, not both")
        return Period.quarter(args.quarter)
    if not (args.start and args.end):
        raise PeriodError("give --quarter, or both --from and --to")
    return Period.between(args.start, args.end)


def _influx(args: argparse.Namespace) -> InfluxClient:
    token = os.environ.get("PROGNOS_INFLUX_TOKEN")
    auth: InfluxAuth | None = None
    if token:
        auth = InfluxAuth.token(token)
    elif args.influx_user:
        auth = InfluxAuth.basic(args.influx_user, os.environ.get("PROGNOS_INFLUX_PASSWORD", ""))
    return InfluxClient(url=args.influx_url, database=args.influx_db, auth=auth, timeout_s=60)


def main(argv: list[str]) -> int:
    """Run `prognos report`; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        period = _period(args)
    except PeriodError as exc:
        parser.error(str(exc))
    try:
        registry = load_registry(args.assets, profiles_dir=args.profiles)
    except (RegistryError, OSError) as exc:
        print(f"prognos report: {exc}", file=sys.stderr)
        return 1
    influx = None if args.no_influx else _influx(args)
    try:
        report = build_report(
            ReportKind(args.kind),
            Sources(db=args.db, registry=registry, influx=influx),
            period=period,
            customer=args.customer,
            now=dt.datetime.now(dt.UTC),
        )
    except (FileNotFoundError, InfluxError) as exc:
        print(f"prognos report: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        parser.error(str(exc))
    finally:
        if influx is not None:
            influx.close()
    html = render_html(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "pdf":
        args.out.write_bytes(render_pdf(html))
    else:
        args.out.write_text(html, encoding="utf-8")
    print(f"{args.kind} report, {period.label}: {args.out}")
    return 0
