#!/usr/bin/env python3
"""Benchmark the edge agent's MQTT publishing (issue 4): readings/s at QoS 1 against bare paho.

A dedicated Mosquitto runs on a free loopback port (the config of ``scripts/services.py``, plus
``set_tcp_nodelay true`` as in the shipped ``config/mosquitto/prognos.conf``). The same telemetry
batches (default 100 readings of 20 signals each, about 55 kB of JSON) go to it, at QoS 1 with the
same in-flight limit, in several ways:

- ``paho``, the baseline: a bare paho-mqtt 2.x MQTT 5 client publishing the pre-encoded payload
  bytes, the same topic and Content Type, with ``max_inflight_messages_set(--max-inflight)``,
  until every PUBACK is in;
- ``publish``: the batches committed to a `SqliteOutbox` first (timed too, as ``enqueue``), then
  drained by `MqttPublisher` with replay pacing disabled, from the first ``begin`` to the last
  PUBACK. The outbox gives batch ``i`` seq ``i``, so its payloads are byte-identical to the
  baseline's (checked by their total size). Once with ``sync=normal``, once with ``sync=full``;
- ``live``: the publisher connected and idle, then the batches enqueued as fast as one thread
  can while it publishes: the whole delivery path, encoding included, to the last PUBACK.

The runs of a round rotate their order from round to round; each figure is the median over
rounds. The ratio is prognos / paho readings per second *within a round*, then the median; issue 4
asks for ``publish`` >= 0.5 of ``paho``. It is reported, and fails the exit status only with
``--strict`` (timings are never test assertions).

    .venv/bin/python scripts/bench/mqtt_publish.py                    # about 1 minute
    .venv/bin/python scripts/bench/mqtt_publish.py --duration-s 0.1 --repeats 1 --json out.json

See scripts/bench/README.md for how to read the figures. `outbox_replay.py` and
`agent_footprint.py` reuse this file's broker, batch and table helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent._agent_logging import configure_logging
from edge_agent._mqtt_config import MqttConfig
from edge_agent._outbox import SqliteOutbox, Sync, Transaction
from edge_agent._publisher import MqttPublisher
from edge_agent._version import __version__
from prognos_contract import (
    CONTENT_TYPE_JSON,
    Reading,
    TelemetryBatch,
    Value,
    build_topic,
    encode_telemetry,
)

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SITE = "bench"
GATEWAY = "bench-gw"
TOPIC = build_topic("telemetry", site=SITE, gateway=GATEWAY)
NOW_MS = 1_763_805_600_000
"""The first reading's timestamp (2025-11-22): fixed, so payloads are the same in every run."""
RATIO_TARGET = 0.5
SYNCS: tuple[Sync, ...] = ("normal", "full")
POOL_BATCHES = 50
"""Distinct batches of readings built up front; batch ``i`` of a run is ``pool[i % 50]``."""
CONNECT_TIMEOUT_S = 10.0
MIN_MESSAGES = 20
MAX_MESSAGES = 5_000
FAILURE = 0x80
"""MQTT 5 reason codes from here up are refusals."""
OUTBOX_UNLIMITED = 1 << 40
"""Size cap of the benchmark outboxes: never reached, so nothing is dropped."""


# ---------------------------------------------------------------------------------------------
# Shared with outbox_replay.py and agent_footprint.py: broker, batches, output


def services_module() -> Any:  # noqa: ANN401 - a script module loaded by path
    """``scripts/services.py``, which is a stand-alone script, not a package."""
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    return importlib.import_module("services")


def quiet_logs() -> None:
    """Send the agent's logs to stderr and keep only warnings and errors."""
    configure_logging(log_format="console", level="warning", debug_modbus=False)


def mosquitto_conf(root: Path, port: int) -> str:
    """The broker's config: that of ``scripts/services.py``, with Nagle off as in production."""
    conf: str = services_module().mosquitto_conf(root, port)
    # As config/mosquitto/prognos.conf: PUBACKs leave at once. Without it both clients here
    # publish about a quarter slower (Nagle holds back the small PUBACK packets).
    return conf + "set_tcp_nodelay true\n"


@contextlib.contextmanager
def mosquitto(root: Path) -> Iterator[int]:
    """Run a Mosquitto of its own on a free loopback port; yields the port."""
    services = services_module()
    binary: str = services.find_binary("mosquitto")
    port: int = services.free_port()
    root.mkdir(parents=True, exist_ok=True)
    conf = root / "mosquitto.conf"
    conf.write_text(mosquitto_conf(root, port), encoding="utf-8")
    log = root / "mosquitto.log"
    proc: subprocess.Popen[bytes] = services.spawn([binary, "-c", str(conf)], log)
    try:
        services.wait_tcp(port, proc, "mosquitto", log)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def mosquitto_version() -> str:
    """``2.0.11``, or ``?`` when it cannot be found."""
    try:
        binary = services_module().find_binary("mosquitto")
        out = subprocess.run(
            [binary, "-h"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, RuntimeError, subprocess.TimeoutExpired):
        return "?"
    words = out.split()
    return words[2] if len(words) > 2 and words[:2] == ["mosquitto", "version"] else "?"  # noqa: PLR2004


_STEMS = (
    "discharge_pressure_bar",
    "motor_current_a",
    "element_outlet_temp_c",
    "oil_temp_c",
    "ambient_temp_c",
    "air_filter_dp_bar",
    "separator_dp_bar",
    "vibration_rms_mm_s",
    "motor_speed_rpm",
    "flow_m3_h",
)
_STATES = ("stopped", "starting", "loaded", "unloaded", "auto_stop")
_INT_EVERY = 5
_BOOL_EVERY = 10


def sample_values(index: int, signals: int) -> dict[str, Value]:
    """The values of one reading: mostly floats, some integers, booleans and enum labels.

    Every 5th signal is a counter (int), every 10th a flag (bool) and the one after it a state
    label (str); the rest are floats with one to three decimals, as scaled registers give.
    """
    values: dict[str, Value] = {}
    for k in range(signals):
        stem = _STEMS[k % len(_STEMS)]
        name = f"{stem}_{k // len(_STEMS)}" if k >= len(_STEMS) else stem
        if k % _BOOL_EVERY == _BOOL_EVERY - 1:
            values[f"flag_{k}"] = (index + k) % 3 == 0
        elif k % _BOOL_EVERY == _BOOL_EVERY - 2:
            values[f"state_{k}"] = _STATES[(index + k) % len(_STATES)]
        elif k % _INT_EVERY == _INT_EVERY - 1:
            values[f"count_{k}"] = 1_000 * k + index
        else:
            values[name] = round(10.0 + ((index * 7919 + k * 104_729) % 100_000) / 997.0, 3)
    return values


def reading_pool(
    batches: int, readings_per_batch: int, signals: int, *, assets: int = 50
) -> list[tuple[Reading, ...]]:
    """``batches`` distinct batches of readings: ``assets`` assets read once a second.

    Reading ``j`` of batch ``i`` is asset ``j % assets`` at second ``(i * readings + j) //
    assets``, as the agent's batches of a site's polls look.
    """
    pool: list[tuple[Reading, ...]] = []
    for i in range(batches):
        readings: list[Reading] = []
        for j in range(readings_per_batch):
            n = i * readings_per_batch + j
            readings.append(
                Reading(
                    asset=f"asset-{n % assets:03d}",
                    ts=NOW_MS + 1000 * (n // assets),
                    values=sample_values(n, signals),
                )
            )
        pool.append(tuple(readings))
    return pool


def environment() -> dict[str, object]:
    """What the figures depend on besides the code."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "paho_mqtt": paho.mqtt.__version__,
        "sqlite": sqlite3.sqlite_version,
        "mosquitto": mosquitto_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def environment_line(env: dict[str, object]) -> str:
    """The environment as one line for the report's head."""
    return (
        f"Python {env['python']} ({env['implementation']}), paho-mqtt {env['paho_mqtt']}, "
        f"SQLite {env['sqlite']}, Mosquitto {env['mosquitto']}, {env['cpu_count']} CPUs "
        f"({env['cpus_usable']} usable), {env['platform']}"
    )


def table(rows: Sequence[Sequence[str]], *, right: set[int]) -> str:
    """Rows as aligned columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  "
        + "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    )


def write_json(path: str, report: dict[str, object], say: Callable[[str], None]) -> None:
    """Write the ``--json`` report to ``path`` (``-``: stdout)."""
    text = json.dumps(report, indent=2)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n", encoding="utf-8")
        say(f"figures written to {path}")


@contextlib.contextmanager
def work_dir(parent: str | None, prefix: str) -> Iterator[Path]:
    """A fresh folder for outboxes and the broker's log, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_outbox(path: Path) -> None:
    """Delete an outbox file and its WAL."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class WatchedOutbox:
    """An outbox as the publisher sees it, timing the drain.

    Notes when the publisher first asks for a batch (``first_begin``) and when the ``expected``-th
    message is settled (``done_at``, ``done``), with `time.perf_counter`. It adds one Python call
    per transaction, a window of messages.
    """

    def __init__(self, inner: SqliteOutbox, *, expected: int) -> None:
        self.inner = inner
        self.expected = expected
        self.first_begin: float | None = None
        self.done_at: float | None = None
        self.accepted = 0
        self.rejected = 0
        self.done = threading.Event()

    def begin(self, max_batch: int) -> Transaction:
        """`SqliteOutbox.begin`, noting the first call."""
        if self.first_begin is None:
            self.first_begin = time.perf_counter()
        return self.inner.begin(max_batch)

    def end(self, tx: Transaction) -> None:
        """`SqliteOutbox.end`, noting when the last expected message is settled."""
        self.inner.end(tx)
        self.accepted += len(tx.accept)
        self.rejected += len(tx.reject)
        if self.accepted + self.rejected >= self.expected and not self.done.is_set():
            self.done_at = time.perf_counter()
            self.done.set()

    def __len__(self) -> int:
        return len(self.inner)


def publisher_config(port: int, *, max_inflight: int, paced: bool) -> MqttConfig:
    """The publisher's ``mqtt`` section for the benchmark broker.

    Replay pacing is the agent's default with ``paced``, off without.
    """
    defaults = MqttConfig(host=HOST)
    return MqttConfig(
        host=HOST,
        port=port,
        client_id=f"bench-{uuid.uuid4().hex[:12]}",
        protocol="5",
        max_inflight=max_inflight,
        session_expiry_s=60,
        replay_rate_msgs_s=defaults.replay_rate_msgs_s if paced else None,
        replay_rate_bytes_s=defaults.replay_rate_bytes_s if paced else None,
    )


def new_publisher(config: MqttConfig, outbox: WatchedOutbox) -> MqttPublisher[Transaction]:
    """An `MqttPublisher` of the benchmark gateway over ``outbox`` (not started)."""
    return MqttPublisher(
        config=config, outbox=outbox, site=SITE, gateway=GATEWAY, agent_version=__version__
    )


SecureDelete = Literal["default", "on", "fast", "off"]
"""SQLite's ``secure_delete`` for the benchmark's outboxes; ``default``: the outbox's (FAST)."""


def sqlite_secure_delete_default() -> str:
    """``on`` or ``off``: SQLite's ``secure_delete`` as this Python's SQLite library ships it.

    Debian builds its libsqlite3 with ``SQLITE_SECURE_DELETE``: every deleted row's bytes are
    overwritten with zeros, which for the outbox means every published payload is written again.
    """
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        (value,) = conn.execute("PRAGMA secure_delete").fetchone()
    return "on" if value else "off"


def open_outbox(
    path: Path, sync: Sync, *, compress: bool = False, secure_delete: SecureDelete = "default"
) -> SqliteOutbox:
    """An outbox of the benchmark gateway (created if missing), with no size cap that matters.

    ``secure_delete`` other than ``default`` is a diagnostic: it sets the pragma on the outbox's
    (private) connection, to show what the setting costs; the agent does not set it.
    """
    outbox = SqliteOutbox(
        path=path,
        gateway=GATEWAY,
        max_bytes=OUTBOX_UNLIMITED,
        max_messages=OUTBOX_UNLIMITED,
        sync=sync,
        compress=compress,
    )
    if secure_delete != "default":
        conn: sqlite3.Connection = cast("Any", outbox)._store._conn  # noqa: SLF001 - diagnostic
        conn.execute(f"PRAGMA secure_delete = {secure_delete.upper()}")
    return outbox


def wait_drained(watched: WatchedOutbox, publisher: MqttPublisher[Any], timeout_s: float) -> float:
    """Wait until every expected message is settled; returns ``done_at``.

    Raises:
        RuntimeError: It took longer than ``timeout_s``, or the broker refused messages.
    """
    if not watched.done.wait(timeout_s) or watched.done_at is None:
        stats = publisher.stats()
        raise RuntimeError(
            f"the publisher settled {watched.accepted + watched.rejected} of {watched.expected} "
            f"messages in {timeout_s:.0f} s (connected={stats.connected}, "
            f"last_error={stats.last_error!r})"
        )
    if watched.rejected:
        raise RuntimeError(f"the broker refused {watched.rejected} messages")
    return watched.done_at


# ---------------------------------------------------------------------------------------------
# Figures


@dataclass(frozen=True, slots=True)
class Run:
    """One timed run of one client: ``messages`` batches settled in ``seconds``."""

    client: str
    round: int
    seconds: float
    cpu_s: float
    messages: int
    readings: int
    payload_bytes: int

    @property
    def messages_per_s(self) -> float:
        """Batches (MQTT messages) per second."""
        return self.messages / self.seconds

    @property
    def readings_per_s(self) -> float:
        """Readings (one asset at one time) per second."""
        return self.readings / self.seconds

    @property
    def mb_per_s(self) -> float:
        """Payload megabytes (10^6 bytes) per second."""
        return self.payload_bytes / self.seconds / 1e6

    @property
    def cpu_us_per_message(self) -> float:
        """CPU time of this process (every thread; not the broker's) per message, microseconds."""
        return 1e6 * self.cpu_s / self.messages


BASELINE = "paho"
CLIENTS = (
    BASELINE,
    *(f"publish/{sync}" for sync in SYNCS),
    *(f"enqueue/{sync}" for sync in SYNCS),
    *(f"live/{sync}" for sync in SYNCS),
)
"""Every row of the table: the baseline, then per sync mode the publisher draining a filled
outbox, the fill itself, and both at once."""
TARGET_CLIENTS = tuple(f"publish/{sync}" for sync in SYNCS)
"""The rows held against `RATIO_TARGET`."""


@dataclass(slots=True)
class Results:
    """Every run, and the figures derived from them."""

    runs: list[Run]

    def of(self, client: str) -> list[Run]:
        """The runs of one client, in round order."""
        return [run for run in self.runs if run.client == client]

    def median(self, client: str, figure: Callable[[Run], float]) -> float:
        """The median of one figure over a client's runs."""
        return statistics.median(figure(run) for run in self.of(client))

    def round_ratios(self, client: str) -> list[float]:
        """``client`` readings/s over the baseline's, for each round."""
        base = {run.round: run.readings_per_s for run in self.of(BASELINE)}
        return [run.readings_per_s / base[run.round] for run in self.of(client)]

    def ratio(self, client: str) -> float:
        """The median of `round_ratios`."""
        return statistics.median(self.round_ratios(client))


# ---------------------------------------------------------------------------------------------
# The clients


@dataclass(frozen=True, slots=True)
class Bench:
    """Where and how every run of one invocation publishes."""

    port: int
    window: int
    """``--max-inflight``: QoS 1 messages in flight, for every client."""
    folder: Path
    secure_delete: SecureDelete = "default"


@dataclass(frozen=True, slots=True)
class Plan:
    """What every run of a round sends: batches from the pool, and their payloads."""

    pool: Sequence[tuple[Reading, ...]]
    messages: int
    payloads: list[bytes]

    @classmethod
    def make(cls, pool: Sequence[tuple[Reading, ...]], messages: int) -> Plan:
        """Batches ``0 .. messages - 1``, encoded as the outbox encodes them (seq = index)."""
        payloads = [
            encode_telemetry(TelemetryBatch(gateway=GATEWAY, seq=i, readings=pool[i % len(pool)]))
            for i in range(messages)
        ]
        return cls(pool, messages, payloads)

    def batch(self, index: int) -> tuple[Reading, ...]:
        """The readings of batch ``index``."""
        return self.pool[index % len(self.pool)]

    @property
    def readings(self) -> int:
        """Readings in all the batches."""
        return sum(len(self.batch(i)) for i in range(self.messages))

    @property
    def payload_bytes(self) -> int:
        """Payload bytes of all the batches."""
        return sum(map(len, self.payloads))


def _connect_paho(port: int, window: int) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-paho-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
        reconnect_on_failure=False,
    )
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)  # no limit: every message waits its turn inside paho
    client.connect(HOST, port, keepalive=60, clean_start=True)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not client.is_connected():
        if client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"paho lost the connection to {HOST}:{port} before CONNACK")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no CONNACK from {HOST}:{port} in {CONNECT_TIMEOUT_S} s")
    return client


def run_paho(bench: Bench, plan: Plan, round_: int) -> Run:
    """The baseline: publish the payloads at QoS 1 with paho alone, until every PUBACK is in.

    paho sends ``window`` messages, then one more per PUBACK, from its own queue; this thread
    drives its network loop, as the publisher's thread drives its own.
    """
    acks = {"accepted": 0, "refused": 0}

    def on_publish(
        _client: mqtt.Client, _userdata: object, _mid: int, reason: ReasonCode, _props: object
    ) -> None:
        acks["accepted" if reason.value < FAILURE else "refused"] += 1

    client = _connect_paho(bench.port, bench.window)
    client.on_publish = on_publish
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ContentType = CONTENT_TYPE_JSON
    try:
        cpu = time.process_time()
        start = time.perf_counter()
        for payload in plan.payloads:
            info = client.publish(TOPIC, payload, qos=1, properties=props)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"paho refused to publish: {info.rc.name}")
        while acks["accepted"] + acks["refused"] < plan.messages:
            if client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise RuntimeError("paho lost the connection while publishing")
        seconds = time.perf_counter() - start
        cpu_s = time.process_time() - cpu
    finally:
        client.disconnect()
        client.loop(timeout=0.05)
    if acks["refused"]:
        raise RuntimeError(f"the broker refused {acks['refused']} of paho's messages")
    return Run(BASELINE, round_, seconds, cpu_s, plan.messages, plan.readings, plan.payload_bytes)


def _drain_timeout_s(messages: int) -> float:
    return 60.0 + 0.1 * messages


def run_publish(bench: Bench, plan: Plan, sync: Sync, round_: int) -> tuple[Run, Run]:
    """Fill an outbox (timed: ``enqueue``), then drain it with the publisher (``publish``).

    The drain is timed from the publisher's first ``begin`` (it connected, and sent its birth
    message) to the PUBACK that settles the last batch.
    """
    path = bench.folder / f"publish-{sync}.db"
    remove_outbox(path)
    outbox = open_outbox(path, sync, secure_delete=bench.secure_delete)
    try:
        cpu = time.process_time()
        start = time.perf_counter()
        for i in range(plan.messages):
            outbox.enqueue(plan.batch(i), topic=TOPIC, now_ms=NOW_MS)
        fill_s = time.perf_counter() - start
        fill_cpu_s = time.process_time() - cpu
        depth = outbox.stats(NOW_MS).depth_bytes
        if depth != plan.payload_bytes:
            raise RuntimeError(
                f"the outbox holds {depth} payload bytes, paho sends {plan.payload_bytes}: the "
                "payloads differ"
            )
        watched = WatchedOutbox(outbox, expected=plan.messages)
        config = publisher_config(bench.port, max_inflight=bench.window, paced=False)
        publisher = new_publisher(config, watched)
        cpu = time.process_time()
        publisher.start()
        try:
            done_at = wait_drained(watched, publisher, _drain_timeout_s(plan.messages))
            cpu_s = time.process_time() - cpu
        finally:
            publisher.stop()
    finally:
        outbox.close()
        remove_outbox(path)
    first = watched.first_begin if watched.first_begin is not None else done_at
    size = (plan.messages, plan.readings, plan.payload_bytes)
    return (
        Run(f"enqueue/{sync}", round_, fill_s, fill_cpu_s, *size),
        Run(f"publish/{sync}", round_, done_at - first, cpu_s, *size),
    )


def run_live(bench: Bench, plan: Plan, sync: Sync, round_: int) -> Run:
    """Enqueue as fast as one thread can while the (connected) publisher drains.

    Timed from the first ``enqueue`` to the PUBACK that settles the last batch: the whole path
    of a reading from the poll loop to the broker, encoding and commit included.
    """
    path = bench.folder / f"live-{sync}.db"
    remove_outbox(path)
    outbox = open_outbox(path, sync, secure_delete=bench.secure_delete)
    try:
        watched = WatchedOutbox(outbox, expected=plan.messages)
        config = publisher_config(bench.port, max_inflight=bench.window, paced=False)
        publisher = new_publisher(config, watched)
        publisher.start()
        try:
            if not publisher.wait_connected(CONNECT_TIMEOUT_S):
                raise RuntimeError(f"the publisher did not connect to {HOST}:{bench.port}")
            cpu = time.process_time()
            start = time.perf_counter()
            for i in range(plan.messages):
                outbox.enqueue(plan.batch(i), topic=TOPIC, now_ms=NOW_MS)
            done_at = wait_drained(watched, publisher, _drain_timeout_s(plan.messages))
            cpu_s = time.process_time() - cpu
        finally:
            publisher.stop()
    finally:
        outbox.close()
        remove_outbox(path)
    return Run(
        f"live/{sync}",
        round_,
        done_at - start,
        cpu_s,
        plan.messages,
        plan.readings,
        plan.payload_bytes,
    )


# ---------------------------------------------------------------------------------------------
# Rounds

Say = Callable[[str], None]
Step = Callable[[], list[Run]]


def round_steps(bench: Bench, plan: Plan, round_: int, *, live: bool) -> list[Step]:
    """The runs of one round, in the order of round 0."""
    steps: list[Step] = [lambda: [run_paho(bench, plan, round_)]]
    for sync in SYNCS:
        steps.append(functools.partial(_publish_step, bench, plan, sync, round_))
        if live:
            steps.append(functools.partial(_live_step, bench, plan, sync, round_))
    return steps


def _publish_step(bench: Bench, plan: Plan, sync: Sync, round_: int) -> list[Run]:
    return list(run_publish(bench, plan, sync, round_))


def _live_step(bench: Bench, plan: Plan, sync: Sync, round_: int) -> list[Run]:
    return [run_live(bench, plan, sync, round_)]


def run_rounds(bench: Bench, plan: Plan, *, repeats: int, live: bool, say: Say) -> Results:
    """``repeats`` rounds, each running every client once; the order rotates per round."""
    results = Results([])
    for r in range(repeats):
        steps = round_steps(bench, plan, r, live=live)
        shift = r % len(steps)
        runs: list[Run] = []
        for step in steps[shift:] + steps[:shift]:
            runs.extend(step())
        results.runs.extend(runs)
        by = {run.client: run.readings_per_s for run in runs}
        base = by[BASELINE]
        parts = [f"paho {base:,.0f}"] + [
            f"{client} {by[client]:,.0f} ({by[client] / base:.2f})"
            for client in CLIENTS[1:]
            if client in by and not client.startswith("enqueue/")
        ]
        say(f"  round {r + 1:2d}/{repeats}: readings/s " + ", ".join(parts))
    return results


def calibrate(bench: Bench, pool: Sequence[tuple[Reading, ...]], duration_s: float) -> int:
    """Warm every path up; returns the batches per run that make a paho run last ``duration_s``."""
    warm = Plan.make(pool, len(pool))
    base = run_paho(bench, warm, -1)
    for sync in SYNCS:
        run_publish(bench, warm, sync, -1)
    return max(MIN_MESSAGES, min(MAX_MESSAGES, round(base.messages_per_s * duration_s)))


# ---------------------------------------------------------------------------------------------
# Output

_LABELS = {
    BASELINE: ("paho (baseline)", "-"),
    **{f"publish/{s}": ("prognos publish", s) for s in SYNCS},
    **{f"enqueue/{s}": ("outbox enqueue", s) for s in SYNCS},
    **{f"live/{s}": ("prognos live", s) for s in SYNCS},
}


def results_table(results: Results) -> str:
    """One row per client: medians over rounds, and the ratio to the baseline."""
    rows: list[tuple[str, ...]] = [
        (
            "client",
            "sync",
            "msgs/s",
            "readings/s",
            "MB/s",
            "CPU us/msg",
            "ratio",
            "rounds min-max",
        )
    ]
    for client in CLIENTS:
        if not results.of(client):
            continue
        label, sync = _LABELS[client]
        ratio, spread = "-", ""
        if client != BASELINE:
            ratios = results.round_ratios(client)
            ratio = f"{results.ratio(client):.2f}"
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        rows.append(
            (
                label,
                sync,
                f"{results.median(client, lambda r: r.messages_per_s):,.0f}",
                f"{results.median(client, lambda r: r.readings_per_s):,.0f}",
                f"{results.median(client, lambda r: r.mb_per_s):,.1f}",
                f"{results.median(client, lambda r: r.cpu_us_per_message):,.0f}",
                ratio,
                spread,
            )
        )
    return table(rows, right={2, 3, 4, 5, 6, 7})


def json_report(
    env: dict[str, object], args: argparse.Namespace, plan: Plan, results: Results
) -> dict[str, object]:
    """Every figure and run, for ``--json``."""
    medians = {
        client: {
            "messages_per_s": results.median(client, lambda r: r.messages_per_s),
            "readings_per_s": results.median(client, lambda r: r.readings_per_s),
            "mb_per_s": results.median(client, lambda r: r.mb_per_s),
            "cpu_us_per_message": results.median(client, lambda r: r.cpu_us_per_message),
            **(
                {}
                if client == BASELINE
                else {"ratio": results.ratio(client), "round_ratios": results.round_ratios(client)}
            ),
        }
        for client in CLIENTS
        if results.of(client)
    }
    return {
        "environment": env,
        "settings": {
            "duration_s": args.duration_s,
            "repeats": args.repeats,
            "messages": plan.messages,
            "readings_per_batch": args.readings_per_batch,
            "signals": args.signals,
            "payload_bytes_per_run": plan.payload_bytes,
            "max_inflight": args.max_inflight,
            "ratio_target": RATIO_TARGET,
        },
        "median": medians,
        "ratio_at_least_target": all(results.ratio(c) >= RATIO_TARGET for c in TARGET_CLIENTS),
        "runs": [asdict(run) for run in results.runs],
    }


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="mqtt_publish.py",
        description=(
            "Benchmark MQTT publishing at QoS 1: telemetry batches committed to the SQLite "
            "outbox and drained by the edge agent's MqttPublisher, against a bare paho client "
            "publishing the same payload bytes, both to a Mosquitto of their own on loopback."
        ),
        epilog=f"Exit status: 0 ok; 1 (--strict) a publish ratio below {RATIO_TARGET}. A default "
        "run takes about a minute: the outbox runs take longer than the paho run they are sized "
        "by, mostly to fill the outbox.",
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        default=0.25,
        help="size each run so that the paho run lasts about this long, measured in a warm-up "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        help="batches (MQTT messages) per run; overrides --duration-s",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds of every client; medians are reported (default: %(default)s)",
    )
    parser.add_argument(
        "--readings-per-batch",
        type=int,
        default=100,
        help="readings (one asset at one time) per batch (default: %(default)s)",
    )
    parser.add_argument(
        "--signals",
        type=int,
        default=20,
        help="signal values per reading (default: %(default)s)",
    )
    parser.add_argument(
        "--max-inflight",
        type=int,
        default=MqttConfig(host=HOST).max_inflight,
        help="QoS 1 messages in flight, for both clients (default: the agent's, %(default)s)",
    )
    parser.add_argument(
        "--no-live",
        action="store_true",
        help="leave out the live runs (enqueue and publish at once)",
    )
    parser.add_argument(
        "--secure-delete",
        choices=("default", "on", "fast", "off"),
        default="default",
        help="diagnostic: set SQLite's secure_delete on the benchmark's outboxes (default: "
        "leave the outbox's own setting, FAST, as the agent runs)",
    )
    parser.add_argument(
        "--dir",
        help="folder for the outbox files and the broker's log (default: a temporary folder; "
        "put it on the storage a gateway uses, e.g. an SD card, to measure that)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write every figure and run as JSON to PATH ('-': to stdout, and the report "
        "to stderr)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"exit 1 when a publish ratio is below {RATIO_TARGET}",
    )
    args = parser.parse_args(argv)
    if args.duration_s <= 0 or args.repeats < 1:
        parser.error("--duration-s must be > 0 and --repeats >= 1")
    if args.messages is not None and args.messages < 1:
        parser.error("--messages must be >= 1")
    if not 1 <= args.readings_per_batch <= 10_000 or not 1 <= args.signals <= 1_000:  # noqa: PLR2004
        parser.error("--readings-per-batch must be 1..10000 and --signals 1..1000")
    if args.max_inflight < 2:  # noqa: PLR2004 - the publisher keeps one slot for status
        parser.error("--max-inflight must be >= 2")
    return args


def _secure_delete_label(setting: SecureDelete) -> str:
    if setting == "default":
        build = sqlite_secure_delete_default()
        return f"fast, as the outbox sets it; this SQLite's build default is {build}"
    return f"{setting}, set by --secure-delete"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the report, and return the exit status."""
    args = parse_args(argv)
    out: TextIO = sys.stderr if args.json == "-" else sys.stdout

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    quiet_logs()
    env = environment()
    say(f"MQTT publish benchmark: {environment_line(env)}")
    pool = reading_pool(POOL_BATCHES, args.readings_per_batch, args.signals)
    with work_dir(args.dir, "prognos-bench-mqtt-") as folder, mosquitto(folder / "broker") as port:
        bench = Bench(port, args.max_inflight, folder, args.secure_delete)
        messages = calibrate(bench, pool, args.duration_s)
        plan = Plan.make(pool, args.messages or messages)
        say(
            f"{args.repeats} rounds of {plan.messages:,} batches of {args.readings_per_batch} "
            f"readings x {args.signals} signals ({plan.payload_bytes / plan.messages / 1e3:.1f} "
            f"kB each, {plan.payload_bytes / 1e6:.1f} MB per run), QoS 1, max inflight "
            f"{args.max_inflight}, Mosquitto on {HOST}:{port}, outboxes in {folder} "
            f"(secure_delete {_secure_delete_label(args.secure_delete)})"
        )
        results = run_rounds(bench, plan, repeats=args.repeats, live=not args.no_live, say=say)
    say("")
    say(
        f"Results: medians of {args.repeats} rounds; ratio = median over rounds of readings/s "
        "/ paho's in the same round"
    )
    say(results_table(results))
    lowest = min(TARGET_CLIENTS, key=results.ratio)
    verdict = "yes" if results.ratio(lowest) >= RATIO_TARGET else "no"
    say(
        f"ratio >= {RATIO_TARGET} (prognos publish / paho): {verdict} (lowest "
        f"{results.ratio(lowest):.2f}, sync={lowest.split('/')[1]})"
    )
    if args.json:
        write_json(args.json, json_report(env, args, plan, results), say)
    if args.strict and verdict == "no":
        say(f"FAIL (--strict): a publish ratio is below {RATIO_TARGET}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
