#!/usr/bin/env python3
"""Benchmark the ingester (issue 5): points/s from publish to stored, against InfluxDB's own rate.

A Mosquitto and an influxd of the script's own (``scripts/services.py start`` in a temporary
folder; stopped at the end). The same readings (``--points`` of them, ``--signals`` fields each,
``--readings-per-batch`` per MQTT message, from 4 gateways) go to InfluxDB three ways:

- ``direct``, the baseline: the readings as line protocol (the ingester's lines: tags site,
  gateway, asset, model; nanosecond timestamps, precision ns), pre-encoded in batches of
  ``--batch-points`` lines (the ingester's ``batch.max_points``), written one batch after the
  other by one `InfluxClient` into a fresh database: InfluxDB's own write rate for these lines
  (the ingester writes one more point per message, its ``ingest_batches`` record: 1 % more);
- ``ingest, N processes``: ``prognos ingest`` subprocesses (one shared subscription group, each
  with ``--max-points --batch-points``) and a publisher subprocess that pre-encodes the contract-v1
  payloads (before the clock starts), then publishes them at QoS 1 as fast as the broker takes
  them. Timed from the first publish to the moment the ingesters'
  ``prognos_ingest_points_written_total`` (polled from ``/metrics`` every 100 ms, then every
  10 ms for the last 10 %: a scrape costs the ingester CPU) reaches ``--points``;
- ``steady``: one ingester, the publisher paced at ``--rate`` readings/s for ``--steady-s``
  seconds, each reading stamped when it is published; the lag from reading time to stored is the
  ingester's ``prognos_ingest_lag_seconds`` histogram (p50 and p99 interpolated within its
  buckets, as Prometheus's ``histogram_quantile`` does), over the window only.

CPU time: the figure that stays put on a busy machine. For each timed window the script reads
the user + system CPU seconds of the ingester processes (all threads), influxd and mosquitto from
``/proc/<pid>/stat``; the publisher reports its own; ``other`` is the rest of the machine's busy
time meanwhile (other jobs competing for the cores). Each is printed per point, in µs.

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
from edge_agent._health import parse_prometheus  # noqa: E402
from prognos_contract import Reading, TelemetryBatch, encode_telemetry  # noqa: E402

SITE = "bench"
GATEWAYS = ("bench-gw-0", "bench-gw-1", "bench-gw-2", "bench-gw-3")
ASSETS_PER_GATEWAY = 25
TARGET_RATIO = 0.5
DEFAULT_RATE = 20_000.0
POLL_S = 0.02
POLL_FINE_S = 0.01  # near the end of a run
POLL_COARSE_S = 0.1  # before: each scrape renders every metric, on the ingester's CPU
TS_PLACEHOLDER = 4_000_000_000_000  # a valid ts of 13 digits, as every current one
SEQ_PLACEHOLDER = 9_999_999_999
NS_PER_MS = 1_000_000
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# ---------------------------------------------------------------------------------------------
# CPU time (Linux /proc): the stable figure on a busy machine


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process, all its threads (0.0 when unknown or gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine was busy since boot (all cores; idle and iowait left out)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return 0.0
    ticks = [int(v) for v in first[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLK_TCK


class CpuWatch:
    """CPU seconds of named processes between `start()` and `stop()`; the rest of the machine too.

    ``other`` is what every process not named here used meanwhile (other work on a shared
    machine: it competes for the same cores and makes the points/s figures noisy).
    """

    def __init__(self, pids: dict[str, list[int | None]]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._busy = 0.0

    def _sample(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(p) for p in pids) for name, pids in self.pids.items()}

    def start(self) -> None:
        """Take the first sample."""
        self._start = self._sample()
        self._busy = machine_busy_seconds()

    def stop(self, extra: dict[str, float] | None = None) -> dict[str, float]:
        """CPU seconds per name since `start()`, ``extra`` added, and ``other``."""
        end = self._sample()
        out = {name: max(0.0, end[name] - self._start.get(name, 0.0)) for name in end}
        out.update(extra or {})
        busy = machine_busy_seconds() - self._busy
        out["other"] = max(0.0, busy - sum(out.values()))
        return out


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
        points.append(Point("telemetry", tags, dict(reading.values), reading.ts * NS_PER_MS))
        if len(points) == batch_points:
            bodies.append(encode_lines(points, "ns"))
            points = []
    if points:
        bodies.append(encode_lines(points, "ns"))
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


def _say(event: str, **more: object) -> None:
    """One event line for the parent: wall time and this process's CPU seconds so far."""
    line = {"event": event, "t": time.time(), "cpu": time.process_time(), **more}
    print(json.dumps(line), flush=True)


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
        _say("start")
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
        _say("start")
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
    _say("published", messages=len(infos))
    client.disconnect()
    client.loop_stop()
    return 0


# ---------------------------------------------------------------------------------------------
# Services, ingesters, metrics


@dataclass
class Services:
    """Where the script's own services listen."""

    env: dict[str, str]
    root: Path

    def pid(self, name: str) -> int | None:
        """The pid of ``mosquitto`` or ``influxd``, from ``scripts/services.py``'s pid file."""
        with contextlib.suppress(OSError, ValueError):
            return int((self.root / f"{name}.pid").read_text())
        return None

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
        yield Services(env, root)
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
                out.append(parse_prometheus(resp.read().decode()))
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


def _until_stored(ing: Ingesters, target: float, *, start: float, timeout_s: float) -> float:
    """Wall time at which the ingesters' points written reach ``target``.

    Polled every 100 ms until 90 % of the way from ``start``, then every 10 ms: a scrape costs
    the ingester CPU, and 50 scrapes a second would be part of what is measured.
    """
    deadline = time.monotonic() + timeout_s
    near = start + 0.9 * (target - start)
    while time.monotonic() < deadline:
        written = ing.total("points_written_total")
        if written >= target:
            return time.time()
        time.sleep(POLL_FINE_S if written >= near else POLL_COARSE_S)
    missing = target - start
    raise SystemExit(f"timed out after {timeout_s} s waiting for {missing:,.0f} points stored")


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
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds during the timed window: ingester (all processes), influxd, mosquitto,
    publisher or client (the direct writer), other (the rest of the machine)."""

    @property
    def rate(self) -> float:
        """Points per second."""
        return self.points / self.seconds

    def us_per_point(self, name: str) -> float | None:
        """CPU microseconds per point of one component, if measured."""
        if name not in self.cpu:
            return None
        return self.cpu[name] / self.points * 1e6


def run_direct(svc: Services, args: argparse.Namespace, rnd: int) -> Run:
    """Write the pre-encoded bodies into a fresh database, one after the other."""
    db = f"bench_direct_{uuid.uuid4().hex[:8]}"
    bodies = direct_bodies(
        args.points,
        signals=args.signals,
        base_ms=time.time_ns() // 1_000_000 - 3_600_000,
        batch_points=args.batch_points,
    )
    watch = CpuWatch({"influxd": [svc.pid("influxd")], "mosquitto": [svc.pid("mosquitto")]})
    with svc.influx as influx:
        influx.create_database(db)
        try:
            watch.start()
            client_cpu = time.process_time()
            start = time.perf_counter()
            for body in bodies:
                influx.write(body, precision="ns", database=db)
            seconds = time.perf_counter() - start
            cpu = watch.stop({"client": time.process_time() - client_cpu})
        finally:
            influx.drop_database(db)
    return Run("direct", 0, args.points, seconds, rnd, cpu)


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
                watch = CpuWatch(
                    {
                        "ingester": [p.pid for p in ing.procs],
                        "influxd": [svc.pid("influxd")],
                        "mosquitto": [svc.pid("mosquitto")],
                    }
                )
                pub = _publisher(svc, prefix, args, points=args.points, rate=None)
                start_event = _event(pub, "start")
                watch.start()
                started = start_event["t"]
                done = _until_stored(ing, before + args.points, start=before, timeout_s=600)
                cpu = watch.stop()
                published = _event(pub, "published")
                pub.wait(60)
                # The publisher's own figure (it may have ended before the window did).
                cpu["publisher"] = published["cpu"] - start_event["cpu"]
                cpu["other"] = max(0.0, cpu["other"] - cpu["publisher"])
                if not ing.alive():
                    raise SystemExit("an ingester died during the run")
        finally:
            influx.drop_database(db)
    return Run("ingest", processes, args.points, done - started, rnd, cpu)


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
                done = _until_stored(
                    ing, before + points, start=before, timeout_s=args.steady_s * 10 + 60
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


CPU_COLUMNS = ("ingester", "influxd", "mosquitto", "publisher", "client", "other")


def _cpu_text(run: Run) -> str:
    parts = []
    for name in CPU_COLUMNS:
        us = run.us_per_point(name)
        if us is not None:
            parts.append(f"{name} {us:.1f}")
    return "CPU µs/point: " + ", ".join(parts)


def _cpu_lines(runs: Sequence[Run]) -> list[str]:
    """Median CPU µs per point of each component, per kind of run."""
    lines = [
        "",
        "CPU µs per point (median over rounds; process CPU time in the timed window / points):",
        "  " + f"{'run':<24}" + "".join(f"{name:>11}" for name in CPU_COLUMNS),
    ]
    kinds = sorted({(r.kind, r.processes) for r in runs}, key=lambda k: (k[0] != "direct", k[1]))
    for kind, processes in kinds:
        mine = [r for r in runs if (r.kind, r.processes) == (kind, processes)]
        label = "direct write" if kind == "direct" else f"ingest, {processes} process(es)"
        cells = []
        for name in CPU_COLUMNS:
            values = [us for r in mine if (us := r.us_per_point(name)) is not None]
            cells.append(f"{statistics.median(values):>11.1f}" if values else f"{'-':>11}")
        lines.append(f"  {label:<24}" + "".join(cells))
    lines.append(
        "  (ingester: all its processes and threads; other: the rest of the machine meanwhile)"
    )
    return lines


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
    lines += _cpu_lines(runs)
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
                    f"  round {rnd + 1}: {run.kind} x{run.processes}: {_fmt(run.rate)} points/s; "
                    + _cpu_text(run),
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
