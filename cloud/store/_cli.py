"""`prognos db`: set up the InfluxDB database (retention, rollups) and backfill rollups.

    prognos db init [--raw-days 30] [--rollup-1m-days 400] [--rollup-1h-days 0] [--dry-run]
    prognos db rollup --from 2026-11-01T00:00Z --to 2026-11-23T00:00Z [--policy rollup_1m]

The server comes from ``PROGNOS_INFLUX_URL``, ``PROGNOS_INFLUX_USER`` and
``PROGNOS_INFLUX_PASSWORD`` (as written by ``scripts/services.py``), or ``--url`` and friends.
See docs/retention.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from cloud._args import time_arg
from cloud.store._client import InfluxClient
from cloud.store._errors import InfluxError
from cloud.store._protocol import InfluxAuth
from cloud.store._retention import RetentionConfig, backfill, describe, init_database


def _days(text: str) -> int | None:
    """A number of days; 0 (or ``inf``) keeps data forever."""
    if text.strip().lower() in {"0", "inf", "forever"}:
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of days. Got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (or 0 for forever). Got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The `prognos db` parser."""
    defaults = RetentionConfig()
    days = {r.policy: r.days for r in defaults.rollups}
    parser = argparse.ArgumentParser(
        prog="prognos db",
        description="InfluxDB set-up: database, retention policies, rollups (docs/retention.md).",
    )
    parser.add_argument("--url", default=os.environ.get("PROGNOS_INFLUX_URL"), help="InfluxDB URL")
    parser.add_argument("--user", default=os.environ.get("PROGNOS_INFLUX_USER"))
    parser.add_argument(
        "--password-env",
        default="PROGNOS_INFLUX_PASSWORD",
        metavar="VAR",
        help="environment variable holding the password (default %(default)s)",
    )
    parser.add_argument("--database", default=defaults.database)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = sub.add_parser(
        "init",
        help="create or update the database, retention policies and continuous queries",
        description="Idempotent: prints and runs only the statements that change something.",
    )
    init.add_argument("--raw-days", type=_days, default=defaults.raw_days, metavar="N")
    init.add_argument("--rollup-1m-days", type=_days, default=days["rollup_1m"], metavar="N")
    init.add_argument(
        "--rollup-1h-days",
        type=_days,
        default=days["rollup_1h"],
        metavar="N",
        help="0 keeps them forever (the default)",
    )
    init.add_argument("--dry-run", action="store_true", help="print the statements, run nothing")
    rollup = sub.add_parser(
        "rollup",
        help="backfill rollups over a past range (continuous queries only cover new data)",
    )
    rollup.add_argument("--from", dest="start", type=time_arg, required=True, metavar="TIME")
    rollup.add_argument("--to", dest="end", type=time_arg, required=True, metavar="TIME")
    rollup.add_argument(
        "--policy",
        action="append",
        choices=[r.policy for r in defaults.rollups],
        help="only this rollup (repeatable; default all)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `prognos db`; returns the exit code (0 done, 1 server error, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no server: set PROGNOS_INFLUX_URL or pass --url")
    password = os.environ.get(args.password_env, "")
    auth = InfluxAuth.basic(args.user, password) if args.user else None
    config = RetentionConfig(database=args.database)
    try:
        with InfluxClient(url=args.url, database=args.database, auth=auth) as client:
            if args.action == "init":
                config = config.with_days(
                    raw_days=args.raw_days,
                    rollup_days={
                        "rollup_1m": args.rollup_1m_days,
                        "rollup_1h": args.rollup_1h_days,
                    },
                )
                statements = init_database(client, config, dry_run=args.dry_run)
                verb = "would run" if args.dry_run else "ran"
                print("\n".join(describe(config)))
                print(f"{args.database}: {verb} {len(statements)} statements")
                for statement in statements:
                    print(f"  {statement}")
                return 0
            results = backfill(
                client,
                config,
                start=args.start,
                end=args.end,
                now=dt.datetime.now(dt.UTC),
                policies=args.policy,
            )
            for result in results:
                print(
                    f"{result.policy}.{result.measurement} {result.start:%Y-%m-%dT%H:%MZ} .. "
                    f"{result.end:%Y-%m-%dT%H:%MZ}: {result.written} points"
                )
            print(f"{args.database}: {sum(r.written for r in results)} rollup points written")
            return 0
    except (InfluxError, ValueError) as exc:
        print(f"prognos db {args.action}: {exc}", file=sys.stderr)
        return 1
