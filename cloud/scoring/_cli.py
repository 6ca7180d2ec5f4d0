"""``prognos score``: score the fleet on a schedule, or once, or over a past window (replay).

Exit codes: 0 done (or stopped by SIGTERM / Ctrl-C), 2 a configuration, registry or profile error
(one line per problem). InfluxDB comes from ``PROGNOS_INFLUX_URL``, ``PROGNOS_INFLUX_USER`` and
``PROGNOS_INFLUX_PASSWORD`` (``--influx-url`` overrides the first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import structlog

from cloud._args import time_arg
from cloud._logging import configure_logging
from cloud.registry import RegistryError, load_registry
from cloud.scoring._config import ScoringConfigError, load_config, parse_duration
from cloud.scoring._decide import Decider
from cloud.scoring._scorer import PassReport, Scorer, Shard, summary
from cloud.store import InfluxAuth, InfluxClient
from cloud.workorders import PolicyError, Store, load_policy
from edge_agent._profile import ProfileError, ProfileLibrary
from models import Registry

log = structlog.get_logger("prognos.scoring")


def _span(text: str) -> dt.timedelta:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    assert isinstance(value, dt.timedelta)  # noqa: S101 - parse_duration returns one
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``prognos score`` parser."""
    p = argparse.ArgumentParser(
        prog="prognos score",
        description="Score every asset of the registry with the champion models (docs/scoring.md).",
    )
    p.add_argument("--registry", type=Path, required=True, help="asset registry (YAML or CSV)")
    p.add_argument(
        "--profiles",
        type=Path,
        default=Path("firmware_profiles"),
        help="firmware profiles folder (default: %(default)s)",
    )
    p.add_argument(
        "--models",
        type=Path,
        help="model registry root (default: $PROGNOS_MODEL_REGISTRY or var/models)",
    )
    p.add_argument("--config", type=Path, help="scoring config (default: the shipped plans)")
    p.add_argument(
        "--state",
        type=Path,
        help="work-order SQLite file; without it: scores only, no alerts or work orders",
    )
    p.add_argument("--policy", type=Path, help="service policy (default: DESIGN.md's)")
    p.add_argument("--database", default="prognos", help="InfluxDB database (default: %(default)s)")
    p.add_argument(
        "--influx-url",
        default=os.environ.get("PROGNOS_INFLUX_URL"),
        help="default: $PROGNOS_INFLUX_URL",
    )
    p.add_argument(
        "--shard",
        type=Shard.parse,
        default=Shard(),
        metavar="I/N",
        help="score shard I of N (stable hash of the asset id; default 0/1)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one pass, then exit")
    mode.add_argument(
        "--interval",
        type=_span,
        default=dt.timedelta(minutes=5),
        help="time between passes (default 5m)",
    )
    p.add_argument("--since", type=time_arg, help="replay: first pass at SINCE + STEP (ISO 8601)")
    p.add_argument(
        "--until", type=time_arg, help="replay: last pass at or before UNTIL (default now)"
    )
    p.add_argument("--step", type=_span, help="replay: time between passes (default: --interval)")
    p.add_argument("--metrics-file", type=Path, help="write Prometheus text here after every pass")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    p.add_argument("--log-format", choices=["console", "json"], default="console")
    return p


def main(argv: list[str]) -> int:  # noqa: C901 - one flat sequence of set-up steps
    """Run ``prognos score``; returns the exit code."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    if not args.influx_url:
        print("prognos score: set PROGNOS_INFLUX_URL or pass --influx-url", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        profiles = ProfileLibrary.load(args.profiles)
        assets = load_registry(args.registry, profiles_dir=args.profiles)
        policy = load_policy(args.policy)
    except (ScoringConfigError, RegistryError, ProfileError, PolicyError) as exc:
        print(exc, file=sys.stderr)
        return 2
    user = os.environ.get("PROGNOS_INFLUX_USER")
    auth = InfluxAuth.basic(user, os.environ.get("PROGNOS_INFLUX_PASSWORD", "")) if user else None
    store = Store(args.state) if args.state else None
    decider = (
        Decider(
            store=store,
            policy=policy,
            alert_policy=config.alert,
            alert_policies=config.alerts,
            rules_lookahead=config.rules.lookahead,
        )
        if store is not None
        else None
    )
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
    with InfluxClient(url=args.influx_url, database=args.database, auth=auth) as influx:
        scorer = Scorer(
            config=config,
            assets=assets,
            profiles=profiles,
            models=Registry(args.models),
            influx=influx,
            decider=decider,
            shard=args.shard,
        )
        log.info(
            "scorer_started",
            assets=len(scorer.my_assets()),
            shard=f"{args.shard.index}/{args.shard.count}",
        )
        try:
            if args.since is not None:
                until = args.until or dt.datetime.now(dt.UTC)
                for report in scorer.replay(
                    since=args.since, until=until, step=args.step or args.interval
                ):
                    _report(report, scorer, args.metrics_file)
                return 0
            while not stop.is_set():
                _report(scorer.run_once(dt.datetime.now(dt.UTC)), scorer, args.metrics_file)
                if args.once:
                    return 0
                stop.wait(args.interval.total_seconds())
        except KeyboardInterrupt:
            pass
        finally:
            if store is not None:
                store.close()
    return 0


def _report(report: PassReport, scorer: Scorer, metrics_file: Path | None) -> None:
    print(json.dumps(summary(report)), flush=True)
    if metrics_file is not None:
        tmp = metrics_file.with_suffix(".tmp")
        tmp.write_text(scorer.metrics.render(), encoding="utf-8")
        tmp.replace(metrics_file)
