#!/usr/bin/env python3
"""Benchmark the ingester (issue 5): points/s from publish to stored, against InfluxDB's own rate.

A Mosquitto and an influxd of the script's own (``scripts/services.py start`` in a temporary
folder; stopped at the end). The same readings (``--points`` of them, ``--signals`` fields each,
``--readings-per-batch`` per MQTT message, from 4 gateways) go to InfluxDB three ways:

- ``direct``, the baseline: the readings as line protocol (the ingester's tags: site, gateway,
  asset, model), pre-encoded in batches of ``--batch-points`` lines (the ingester's
  ``batch.max_points``), written one batch after the other by one `InfluxClient` into a fresh
  database: InfluxDB's own write rate for these lines;
- ``ingest, N processes``: ``prognos ingest`` subprocesses (one shared subscription group, each
  with ``--max-points --batch-points``) and a publisher subprocess that pre-encodes the contract-v1
  payloads, then publishes them at QoS 1 as fast as the broker takes them. Timed from the first
  publish to the moment the ingesters' ``prognos_ingest_points_written_total`` (polled every
  20 ms from ``/metrics``) reaches ``--points``;
- ``steady``: one ingester, the publisher paced at ``--rate`` readings/s for ``--steady-s``
  seconds, each reading stamped when it is published; the lag from reading time to stored is the
  ingester's ``prognos_ingest_lag_seconds`` histogram (p50 and p99 interpolated within its
  buckets, as Prometheus's ``histogram_quantile`` does), over the window only.

Each throughput run uses a fresh database; ``--repeats`` rounds alternate the order of direct and
ingest runs, and the ratio is ingest / direct points per second *within a round*, then the median.
Issue 5 asks for >= 0.5 with one process. Timings are reported, never asserted; ``--strict`` turns
a missed target into exit status 1.

    .venv/bin/python scripts/bench/ingest.py            # about 2 minutes
    .venv/bin/python scripts/bench/ingest.py --quick    # about 30 s, small sizes
    .venv/bin/python scripts/bench/ingest.py --json out.json

See scripts/bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cloud.store import InfluxAuth, InfluxClient, Point, encode_lines  # noqa: E402
from prognos_contract import Reading, TelemetryBatch, encode_telemetry  # noqa: E402

SITE = "bench"
GATEWAYS = ("bench-gw-0", "bench-gw-1", "bench-gw-2", "bench-gw-3")
ASSETS_PER_GATEWAY = 25
TARGET_RATIO = 0.5
DEFAULT_RATE = 20_000.0
POLL_S = 0.02
TS_PLACEHOLDER = 4_000_000_000_000  # a valid ts of 13 digits, as every current one
SEQ_PLACEHOLDER = 9_999_999_999


# ---------------------------------------------------------------------------------------------
# The readings (shared by the baseline and the publisher child)


def readings(count: int, *, signals: int, base_ms: int) -> Iterator[tuple[str, Reading]]:
    """``count`` readings as (gateway, reading), round-robin over gateways and assets.

    Every (asset, ts) is distinct, so InfluxDB merges no two of them.
    """
    for i in range(count):
        gateway = GATEWAYS[i % len(GATEWAYS)]
        asset = f"{gateway}-a{(i // len(GATEWAYS)) % ASSETS_PER_GATEWAY}"
        values = {
            f"s{k:02d}": round(20.0 + ((i * 7 + k * 13) % 1000) / 8.0, 3) for k in range(signals)
        }
        values["s00"] = (i * 31) % 100_000  # an integer signal, as counters are
        yield gateway, Reading(asset=asset, ts=base_ms + i, values=values)


def direct_bodies(count: int, *, signals: int, base_ms: int, batch_points: int) -> list[bytes]:
    """The baseline's line-protocol bodies: the ingester's measurement, tags and fields."""
    bodies, points = [], []
    for gateway, reading in readings(count, signals=signals, base_ms=base_ms):
        tags = {"site": SITE, "gateway": gateway, "asset": reading.asset, "model": "unknown"}
        points.append(Point("telemetry", tags, dict(reading.values), reading.ts))
        if len(points) == batch_points:
            bodies.append(encode_lines(points, "ms"))
            points = []
    if points:
        bodies.append(encode_lines(points, "ms"))
    return bodies


def payloads(
    count: int, *, signals: int, base_ms: int, per_batch: int, prefix: str
) -> list[tuple[str, bytes]]:
    """The contract-v1 messages of those readings: (topic, payload), seq 1, 2, ... per gateway."""
    pending: dict[str, list[Reading]] = {g: [] for g in GATEWAYS}
    seqs = dict.fromkeys(GATEWAYS, 0)
    out = []

    def emit(gateway: str) -> None:
        seqs[gateway] += 1
        batch = TelemetryBatch(gateway=gateway, seq=seqs[gateway], readings=tuple(pending[gateway]))
        out.append((f"{prefix}/{SITE}/{gateway}/telemetry", encode_telemetry(batch)))
        pending[gateway] = []

    for gateway, reading in readings(count, signals=signals, base_ms=base_ms):
        pending[gateway].append(reading)
        if len(pending[gateway]) == per_batch:
            emit(gateway)
    for gateway in GATEWAYS:
        if pending[gateway]:
            emit(gateway)
    return out


# ---------------------------------------------------------------------------------------------
# The publisher child (runs as `ingest.py --publisher ...`)


def publisher_main(args: argparse.Namespace) -> int:
    """Publish the readings at QoS 1, as fast as possible or paced; report times on stdout."""
    import paho.mqtt.client as mqtt  # noqa: PLC0415 - only the child needs it
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-pub-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(args.host, args.port)
    client.loop_start()
    infos = []
    if args.rate is None:
        messages = payloads(
            args.points,
            signals=args.signals,
            base_ms=args.base_ms,
            per_batch=args.readings_per_batch,
            prefix=args.prefix,
        )
        print(json.dumps({"event": "start", "t": time.time()}), flush=True)
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    else:
        # Encoding 200 batches a second in Python would make the publisher the bottleneck: one
        # template per gateway, then only the time and seq are written into the bytes.
        templates = {}
        for gateway in GATEWAYS:
            batch = TelemetryBatch(
                gateway=gateway,
                seq=SEQ_PLACEHOLDER,
                readings=tuple(
                    Reading(asset=f"{gateway}-a{k}", ts=TS_PLACEHOLDER, values=r.values)
                    for k, (_, r) in enumerate(
                        readings(
                            args.readings_per_batch, signals=args.signals, base_ms=TS_PLACEHOLDER
                        )
                    )
                ),
            )
            templates[gateway] = encode_telemetry(batch).split(str(TS_PLACEHOLDER).encode())
        per_s = args.rate / args.readings_per_batch
        start = time.monotonic()
        print(json.dumps({"event": "start", "t": time.time()}), flush=True)
        seq = 0
        sent = 0
        while sent < args.points:
            ahead = seq / per_s - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
            seq += 1
            gateway = GATEWAYS[seq % len(GATEWAYS)]
            stamp = str(time.time_ns() // 1_000_000).encode()
            payload = stamp.join(templates[gateway]).replace(
                f'"seq":{SEQ_PLACEHOLDER}'.encode(), f'"seq":{seq}'.encode(), 1
            )
            infos.append(client.publish(f"{args.prefix}/{SITE}/{gateway}/telemetry", payload))
            sent += args.readings_per_batch
    for info in infos:
        info.wait_for_publish(timeout=300)
    print(json.dumps({"event": "published", "t": time.time(), "messages": len(infos)}), flush=True)
    client.disconnect()
    client.loop_stop()
    return 0


# ---------------------------------------------------------------------------------------------
# Services, ingesters, metrics


@dataclass
class Services:
    """Where the script's own services listen."""

    env: dict[str, str]

    @property
    def influx(self) -> InfluxClient:
        """An admin client (no default database)."""
        auth = InfluxAuth.basic(
            self.env["PROGNOS_INFLUX_USER"], self.env["PROGNOS_INFLUX_PASSWORD"]
        )
        return InfluxClient(url=self.env["PROGNOS_INFLUX_URL"], auth=auth, timeout_s=60)


@contextlib.contextmanager
def services(root: Path) -> Iterator[Services]:
    """`scripts/services.py start` in ``root``; stopped on exit."""
    script = str(ROOT / "scripts" / "services.py")
    proc = subprocess.run(
        [sys.executable, script, "start", str(root)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"could not start the services: {proc.stderr.strip()}")
    env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    try:
        yield Services(env)
    finally:
        subprocess.run([sys.executable, script, "stop", str(root)], check=False)


@dataclass
class Ingesters:
    """``prognos ingest`` subprocesses of one shared subscription group."""

    procs: list[subprocess.Popen[bytes]]
    ports: list[int]
    logs: list[Path]

    def scrape(self) -> list[dict[str, float]]:
        """Each process's ``/metrics`` as {sample with labels: value}."""
        out = []
        for port in self.ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                text = resp.read().decode()
            samples = {}
            for line in text.splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    samples[name] = float(value)
            out.append(samples)
        return out

    def total(self, name: str) -> float:
        """A counter summed over processes."""
        return sum(m.get(f"prognos_ingest_{name}", 0.0) for m in self.scrape())

    def alive(self) -> bool:
        """Whether every process still runs."""
        return all(p.poll() is None for p in self.procs)


@contextlib.contextmanager
def ingesters(
    svc: Services, work: Path, *, count: int, prefix: str, database: str, batch_points: int
) -> Iterator[Ingesters]:
    """Start ``count`` ingesters, wait for their metrics port; SIGTERM them on exit."""
    group = f"bench{uuid.uuid4().hex[:8]}"
    procs, logs = [], []
    for n in range(count):
        log = work / f"ingest-{group}-{n}.log"
        argv = [
            sys.executable, "-m", "cloud", "ingest",
            "--prefix", prefix, "--database", database,
            "--state-dir", str(work / f"state-{group}-{n}"),
            "--client-id", f"{group}-{n}", "--share-group", group,
            "--metrics-listen", "127.0.0.1:0", "--max-points", str(batch_points),
            "--gap-scan", "no", "--log-format", "json", "--log-level", "info",
        ]  # fmt: skip
        with log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    argv,
                    env={**os.environ, **svc.env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            )
        logs.append(log)
    try:
        ports = [_metrics_port(proc, log) for proc, log in zip(procs, logs, strict=True)]
        yield Ingesters(procs, ports, logs)
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _metrics_port(proc: subprocess.Popen[bytes], log: Path) -> int:
    """The metrics port the process logged in its ``ingest_started`` line."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"prognos ingest exited: {log.read_text(errors='replace')[-2000:]}")
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "ingest_started":
                    return int(event["metrics_port"])
        time.sleep(0.05)
    raise SystemExit(f"no ingest_started in {log}")


def _wait(predicate: Any, *, timeout_s: float, what: str) -> float:  # noqa: ANN401
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return time.time()
        time.sleep(POLL_S)
    raise SystemExit(f"timed out after {timeout_s} s waiting for {what}")


def _subscribe_probe(svc: Services, ing: Ingesters, prefix: str) -> float:
    """Publish a probe until the group receives it; returns points written so far."""
    import paho.mqtt.client as mqtt  # noqa: PLC0415
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(svc.env["PROGNOS_MQTT_HOST"], int(svc.env["PROGNOS_MQTT_PORT"]))
    client.loop_start()
    probe = encode_telemetry(
        TelemetryBatch(
            gateway="probe",
            seq=1,
            readings=(Reading(asset="probe", ts=time.time_ns() // 1_000_000, values={"x": 1.5}),),
        )
    )

    def received() -> bool:
        client.publish(f"{prefix}/{SITE}/probe/telemetry", probe, qos=1).wait_for_publish(10)
        return ing.total("messages_received_total") > 0

    _wait(received, timeout_s=30, what="the ingesters' subscription")
    client.disconnect()
    client.loop_stop()
    time.sleep(0.5)  # let the probe's write finish before the baseline snapshot
    return ing.total("points_written_total")


def _publisher(
    svc: Services, prefix: str, args: argparse.Namespace, *, points: int, rate: float | None
) -> subprocess.Popen[str]:
    argv = [
        sys.executable, __file__, "--publisher",
        "--host", svc.env["PROGNOS_MQTT_HOST"], "--port", svc.env["PROGNOS_MQTT_PORT"],
        "--prefix", prefix, "--points", str(points), "--signals", str(args.signals),
        "--readings-per-batch", str(args.readings_per_batch),
        "--base-ms", str(time.time_ns() // 1_000_000 - 3_600_000),
    ]  # fmt: skip
    if rate is not None:
        argv += ["--rate", str(rate)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)


def _event(proc: subprocess.Popen[str], name: str) -> dict[str, Any]:
    for line in proc.stdout or ():
        event: dict[str, Any] = json.loads(line)
        if event["event"] == name:
            return event
    raise SystemExit(f"the publisher ended without {name!r} (exit {proc.wait()})")


# ---------------------------------------------------------------------------------------------
# The runs


@dataclass
class Run:
    """One timed run."""

    kind: str
    processes: int
    points: int
    seconds: float
    round: int

    @property
    def rate(self) -> float:
        """Points per second."""
        return self.points / self.seconds


def run_direct(svc: Services, args: argparse.Namespace, rnd: int) -> Run:
    """Write the pre-encoded bodies into a fresh database, one after the other."""
    db = f"bench_direct_{uuid.uuid4().hex[:8]}"
    bodies = direct_bodies(
        args.points,
        signals=args.signals,
        base_ms=time.time_ns() // 1_000_000 - 3_600_000,
        batch_points=args.batch_points,
    )
    with svc.influx as influx:
        influx.create_database(db)
        try:
            start = time.perf_counter()
            for body in bodies:
                influx.write(body, precision="ms", database=db)
            seconds = time.perf_counter() - start
        finally:
            influx.drop_database(db)
    return Run("direct", 0, args.points, seconds, rnd)


def run_ingest(
    svc: Services, args: argparse.Namespace, work: Path, processes: int, rnd: int
) -> Run:
    """Publish the readings through ``processes`` ingesters; first publish to last point stored."""
    db = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    prefix = f"bench-{uuid.uuid4().hex[:8]}/v1"
    with svc.influx as influx:
        influx.create_database(db)
        try:
            with ingesters(
                svc,
                work,
                count=processes,
                prefix=prefix,
                database=db,
                batch_points=args.batch_points,
            ) as ing:
                before = _subscribe_probe(svc, ing, prefix)
                pub = _publisher(svc, prefix, args, points=args.points, rate=None)
                started = _event(pub, "start")["t"]
                done = _wait(
                    lambda: ing.total("points_written_total") >= before + args.points,
                    timeout_s=600,
                    what=f"{args.points} points stored",
                )
                _event(pub, "published")
                pub.wait(60)
                if not ing.alive():
                    raise SystemExit("an ingester died during the run")
        finally:
            influx.drop_database(db)
    return Run("ingest", processes, args.points, done - started, rnd)


@dataclass
class Steady:
    """The steady-rate run."""

    rate: float
    seconds: float
    published: int
    stored: int
    achieved: float
    publish_rate: float
    p50_s: float | None
    p99_s: float | None
    buckets: dict[str, int] = field(default_factory=dict)


def _lag_buckets(ing: Ingesters) -> dict[float, float]:
    out: dict[float, float] = {}
    pattern = re.compile(r'prognos_ingest_lag_seconds_bucket\{.*le="([^"]+)"')
    for samples in ing.scrape():
        for name, value in samples.items():
            match = pattern.match(name)
            if match:
                bound = float("inf") if match.group(1) == "+Inf" else float(match.group(1))
                out[bound] = out.get(bound, 0.0) + value
    return out


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's ``histogram_quantile``: linear interpolation within cumulative buckets."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return None


def run_steady(svc: Services, args: argparse.Namespace, work: Path) -> Steady:
    """One ingester, the publisher paced at ``--rate`` for ``--steady-s``; the lag histogram."""
    db = f"bench_steady_{uuid.uuid4().hex[:8]}"
    prefix = f"bench-{uuid.uuid4().hex[:8]}/v1"
    points = int(args.rate * args.steady_s) // args.readings_per_batch * args.readings_per_batch
    with svc.influx as influx:
        influx.create_database(db)
        try:
            with ingesters(
                svc, work, count=1, prefix=prefix, database=db, batch_points=args.batch_points
            ) as ing:
                before = _subscribe_probe(svc, ing, prefix)
                lag_before = _lag_buckets(ing)
                pub = _publisher(svc, prefix, args, points=points, rate=args.rate)
                started = _event(pub, "start")["t"]
                done = _wait(
                    lambda: ing.total("points_written_total") >= before + points,
                    timeout_s=args.steady_s * 10 + 60,
                    what=f"{points} points stored",
                )
                published = _event(pub, "published")["t"]
                pub.wait(60)
                lag = {b: v - lag_before.get(b, 0.0) for b, v in _lag_buckets(ing).items()}
                stored = int(ing.total("points_written_total") - before)
        finally:
            influx.drop_database(db)
    return Steady(
        rate=args.rate,
        seconds=done - started,
        published=points,
        stored=stored,
        achieved=stored / (done - started),
        publish_rate=points / max(published - started, 1e-9),
        p50_s=histogram_quantile(0.5, lag),
        p99_s=histogram_quantile(0.99, lag),
        buckets={str(b): int(v) for b, v in sorted(lag.items())},
    )


# ---------------------------------------------------------------------------------------------
# Report


def _fmt(value: float) -> str:
    return f"{value:,.0f}"


def report(
    runs: Sequence[Run], steady: Steady | None, args: argparse.Namespace
) -> tuple[list[str], dict[int, float]]:
    """The table's lines and the median ratio per process count."""
    lines = [
        (
            f"readings (points) per run: {args.points:,} of {args.signals} fields; "
            f"{args.readings_per_batch} per MQTT message; writes of {args.batch_points:,} points; "
            f"{args.repeats} round(s)"
        ),
        "",
        f"  {'run':<24}{'points/s':>12}{'seconds':>10}{'ratio':>8}  rounds min-max",
    ]
    direct = {r.round: r for r in runs if r.kind == "direct"}
    ratios: dict[int, float] = {}
    lines.append(
        f"  {'direct write (baseline)':<24}"
        f"{_fmt(statistics.median(r.rate for r in direct.values())):>12}"
        f"{statistics.median(r.seconds for r in direct.values()):>10.2f}{'-':>8}"
    )
    for processes in sorted({r.processes for r in runs if r.kind == "ingest"}):
        mine = [r for r in runs if r.kind == "ingest" and r.processes == processes]
        per_round = [r.rate / direct[r.round].rate for r in mine]
        ratios[processes] = statistics.median(per_round)
        label = f"ingest, {processes} process" + ("es" if processes > 1 else "")
        lines.append(
            f"  {label:<24}{_fmt(statistics.median(r.rate for r in mine)):>12}"
            f"{statistics.median(r.seconds for r in mine):>10.2f}{ratios[processes]:>8.2f}"
            f"  {min(per_round):.2f}-{max(per_round):.2f}"
        )
    if steady is not None:
        p50 = "n/a" if steady.p50_s is None else f"{steady.p50_s * 1000:.0f} ms"
        p99 = "n/a" if steady.p99_s is None else f"{steady.p99_s * 1000:.0f} ms"
        lines += [
            "",
            (
                f"steady {_fmt(steady.rate)} points/s for {args.steady_s:g} s, 1 process: stored "
                f"{steady.stored:,} of {steady.published:,} in {steady.seconds:.1f} s "
                f"({_fmt(steady.achieved)} points/s; published at {_fmt(steady.publish_rate)}/s); "
                f"lag reading time -> stored: p50 {p50}, "
                f"p99 {p99}"
            ),
            (
                "  (prognos_ingest_lag_seconds over the window, interpolated within buckets; "
                f"cumulative counts: {steady.buckets})"
            ),
        ]
    if 1 in ratios:
        verdict = "yes" if ratios[1] >= TARGET_RATIO else "no"
        lines += ["", f"ratio (1 process) >= {TARGET_RATIO}: {verdict} ({ratios[1]:.2f})"]
    return lines, ratios


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Exit status: 0; 1 with --strict when the 1-process ratio is below 0.5.",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: about 30 s")
    p.add_argument("--points", type=int, help="readings per throughput run (default 200,000)")
    p.add_argument("--signals", type=int, default=10, help="fields per reading (default 10)")
    p.add_argument("--readings-per-batch", type=int, default=100, help="readings per message")
    p.add_argument("--batch-points", type=int, default=5000, help="points per InfluxDB write")
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="ingester counts")
    p.add_argument("--repeats", type=int, help="rounds (default 3; --quick 1)")
    p.add_argument("--rate", type=float, help="steady readings/s (default 20,000)")
    p.add_argument("--steady-s", type=float, help="steady run length (default 30; --quick 5)")
    p.add_argument("--no-steady", action="store_true", help="skip the steady run")
    p.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    p.add_argument("--json", help="also write every run as JSON to this path")
    p.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    # The publisher child's own options.
    p.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--host", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--prefix", help=argparse.SUPPRESS)
    p.add_argument("--base-ms", type=int, help=argparse.SUPPRESS)
    # `make bench` passes its BENCH_ARGS to every script; accept the shared one.
    p.add_argument("--duration-s", type=float, help="same as --steady-s")
    args = p.parse_args(argv)
    if args.points is None:
        args.points = 20_000 if args.quick else 200_000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.steady_s is None:
        args.steady_s = args.duration_s or (5.0 if args.quick else 30.0)
    if args.rate is None and not args.publisher:
        # Not in the publisher child: there, no --rate means as fast as possible (a default
        # here once paced the throughput runs at 20,000 readings/s, capping their ratio).
        args.rate = DEFAULT_RATE
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table."""
    args = parse_args(argv)
    if args.publisher:
        return publisher_main(args)
    print(
        f"ingest benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        work = args.dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ingest-"))
        )
        work.mkdir(parents=True, exist_ok=True)
        svc = stack.enter_context(services(work / "services"))
        with svc.influx as influx:
            version = influx.ping()
        print(
            f"services: influxd {version}, mosquitto at {svc.env['PROGNOS_MQTT_PORT']}", flush=True
        )
        runs: list[Run] = []
        for rnd in range(args.repeats):
            order: list[int] = [0, *args.processes]
            if rnd % 2:
                order.reverse()
            for processes in order:
                run = (
                    run_direct(svc, args, rnd)
                    if processes == 0
                    else run_ingest(svc, args, work, processes, rnd)
                )
                runs.append(run)
                print(
                    f"  round {rnd + 1}: {run.kind} x{run.processes}: {_fmt(run.rate)} points/s",
                    flush=True,
                )
        steady = None if args.no_steady else run_steady(svc, args, work)
    lines, ratios = report(runs, steady, args)
    print("\n".join(lines))
    if args.json:
        document = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "runs": [asdict(r) | {"rate": r.rate} for r in runs],
            "steady": asdict(steady) if steady else None,
            "ratios": ratios,
        }
        Path(args.json).write_text(json.dumps(document, indent=2))
    if args.strict and ratios.get(1, 1.0) < TARGET_RATIO:
        print(f"FAIL (--strict): ratio {ratios[1]:.2f} < {TARGET_RATIO}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
