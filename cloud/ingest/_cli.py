"""`prognos ingest`: run the ingester, or look at its dead letters.

    prognos ingest --config config/ingest.yaml              # run (also: prognos ingest run ...)
    prognos ingest deadletters --state-dir DIR [--count]    # list or count dead letters

Exit codes: 0 stopped cleanly (SIGTERM, SIGINT), 1 the ingester failed, 2 a bad configuration.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from cloud._logging import configure_logging
from cloud.ingest._config import IngestConfig, IngestConfigError, load_config
from cloud.ingest._ingester import Ingester
from cloud.ingest._state import StateStore, encode_deadletter
from edge_agent._exceptions import ConfigError


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prognos ingest",
        description="Ingest contract-v1 MQTT telemetry into InfluxDB: shared subscription, "
        "acknowledgement only after InfluxDB accepted, dead letters, dedupe, gaps, metrics. "
        "Config from --config (YAML), then PROGNOS_MQTT_HOST/PORT and "
        "PROGNOS_INFLUX_URL/USER/PASSWORD, then these flags. SIGTERM/SIGINT flush, "
        "acknowledge and disconnect. See docs/ingest.md.",
        epilog="'prognos ingest deadletters --help': list or count dead letters.",
    )
    p.add_argument("--config", type=Path, help="YAML file (config/ingest.example.yaml)")
    p.add_argument("--client-id", help="MQTT client id; fixed per process (default: hostname)")
    p.add_argument("--share-group", help="share name of $share/GROUP/... (default ingest)")
    p.add_argument("--prefix", help="topic prefix (default prognos/v1)")
    p.add_argument("--database", help="InfluxDB database (default prognos)")
    p.add_argument("--state-dir", type=Path, help="dedupe window and dead letters")
    p.add_argument("--registry", type=Path, help="asset registry, YAML or CSV")
    p.add_argument("--metrics-listen", help="host:port of /metrics ('' for none)")
    p.add_argument("--max-points", type=int, help="points per write (default 5000)")
    p.add_argument("--max-wait-ms", type=int, help="longest wait of a point (default 200)")
    p.add_argument("--gap-scan", choices=("yes", "no"), help="scan for seq gaps here")
    p.add_argument("--log-format", choices=("console", "json"), default="console")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    return p


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def put(section: str | None, key: str, value: object) -> None:
        if value is None:
            return
        if section is None:
            out[key] = value
        else:
            out.setdefault(section, {})[key] = value

    put("mqtt", "client_id", args.client_id)
    put("mqtt", "share_group", args.share_group)
    put("mqtt", "topic_prefix", args.prefix)
    put("influx", "database", args.database)
    put(None, "state_dir", args.state_dir)
    put(None, "registry", args.registry)
    put(None, "metrics_listen", args.metrics_listen)
    put("batch", "max_points", args.max_points)
    put("batch", "max_wait_ms", args.max_wait_ms)
    put("gaps", "scan", args.gap_scan)
    return out


def _load_registry(config: IngestConfig) -> object | None:
    if config.registry is None:
        return None
    from cloud.registry import load_registry  # noqa: PLC0415 - only when configured

    return load_registry(config.registry)


def run(argv: list[str]) -> int:
    """`prognos ingest [run]`: run until SIGTERM or SIGINT."""
    args = _run_parser().parse_args(argv)
    try:
        config = load_config(args.config, overrides=_overrides(args))
        registry = _load_registry(config)
    except (IngestConfigError, ValueError) as exc:
        print(f"prognos ingest: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_format, args.log_level)
    try:
        ingester = Ingester(config, registry=registry)  # type: ignore[arg-type]
    except (ConfigError, OSError, sqlite3.Error) as exc:
        # TLS files, the state dir: what the configuration names but cannot be used.
        print(f"prognos ingest: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        ingester.start()
    except (TimeoutError, OSError) as exc:
        print(f"prognos ingest: {exc}", file=sys.stderr)
        ingester.stop(timeout_s=1)
        return 1
    while not stop.wait(0.5):
        if ingester.wait(0):
            break  # the writer died: its error is logged
    ingester.stop()
    return 1 if ingester.error is not None else 0


def deadletters(argv: list[str]) -> int:
    """`prognos ingest deadletters`: list (newest first) or count dead letters."""
    p = argparse.ArgumentParser(
        prog="prognos ingest deadletters",
        description="List or count the dead letters in an ingester's state dir "
        "(ingest.db). Each is printed as the JSON published on the dead-letter topic.",
    )
    p.add_argument("--config", type=Path, help="YAML file (for state_dir)")
    p.add_argument("--state-dir", type=Path, help="the ingester's state_dir")
    p.add_argument("--reason", help="only dead letters with this reason")
    p.add_argument("--limit", type=int, default=20, help="how many to list (default 20)")
    p.add_argument("--count", action="store_true", help="print rejects per reason instead")
    args = p.parse_args(argv)
    try:
        config = load_config(
            args.config, overrides={"state_dir": args.state_dir} if args.state_dir else {}
        )
    except IngestConfigError as exc:
        print(f"prognos ingest: {exc}", file=sys.stderr)
        return 2
    path = config.state_dir / "ingest.db"
    if not path.exists():
        print(f"prognos ingest: {path}: no such file", file=sys.stderr)
        return 2
    store = StateStore(path)
    try:
        if args.count:
            counts = store.deadletter_counts()
            for reason, n in counts.items():
                print(f"{reason}\t{n}")
            print(f"total\t{sum(counts.values())}")
        else:
            for letter in store.deadletters(limit=args.limit, reason=args.reason):
                print(json.dumps(json.loads(encode_deadletter(letter)), ensure_ascii=False))
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `prognos ingest`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["deadletters"]:
        return deadletters(args[1:])
    if args[:1] == ["run"]:
        args = args[1:]
    return run(args)
