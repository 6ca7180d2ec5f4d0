#!/usr/bin/env python3
"""Benchmark the edge agent's footprint (issue 4): RSS and CPU polling 50 devices x 40 signals.

Issue 4's target: the agent polling 50 simulated devices of 40 signals each, every second, uses
less than 60 MB of resident memory and less than 10 % of one core.

- **The profile**: 40 signals of every kind a real map has (float32 in two byte orders, scaled
  16-bit integers, word-swapped 32-bit counters, a string, enums, bits of a status word, input
  registers, discrete inputs and coils), generated into a temporary ``profiles_dir``. One poll
  of a device is 4 Modbus requests (holding, input, discrete, coil).
- **The devices**: ``tests/support/modbus_device.py``'s `FakeModbusDevice` (a real pymodbus
  server), in a **child process** of their own. By default each device is its own Modbus TCP
  endpoint (50 ports, unit 1): a site of Modbus TCP devices, each with its own address, which
  the agent polls with one worker and one connection per device, concurrently. With ``--topology
  gateway`` the 50 devices are unit ids 1..50 behind one TCP server, as RS-485 devices behind a
  Modbus TCP gateway: one connection, polled one request at a time. The values change every
  second.
- **The agent**: ``prognos-edge run CONFIG`` as a subprocess, exactly as systemd runs it, with
  every device at ``interval_s: 1`` and ``preprocess.deadband: off`` (every value of every poll
  is delivered: the worst case, 2,000 values a second), publishing over MQTT to a Mosquitto of
  its own through the durable outbox (the agent's defaults: ``sync: full``, batches of up to 500
  readings or 1 s). ``--sink stdout`` runs it without an ``mqtt`` section instead (JSON lines on
  stdout, counted through a pipe).
- **Measured**: after ``--warmup-s`` (10 s), every second for ``--duration-s`` (60 s): resident
  memory (``VmRSS`` of ``/proc/PID/status``) and CPU time (``utime + stime`` of
  ``/proc/PID/stat``) of the agent process, and what arrives at the broker (readings, values).
- **Baselines, in the same run and window**: three idle Python processes of the same virtual
  environment: the bare interpreter; one that imported the agent's third-party dependencies
  (paho-mqtt, pymodbus, pydantic, PyYAML, structlog, sqlite3, asyncio); and one that imported
  every module ``prognos-edge run`` loads. The difference between them and the agent is what
  running costs, beyond loading code.

The verdict takes the largest RSS sample and the mean CPU over the window. It fails the exit
status only with ``--strict`` (timings are never test assertions).

    .venv/bin/python scripts/bench/agent_footprint.py                   # about 75 s
    .venv/bin/python scripts/bench/agent_footprint.py --devices 5 --duration-s 3 --warmup-s 2

See scripts/bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

import paho.mqtt.client as mqtt
import yaml
from mqtt_publish import (
    HOST,
    environment,
    environment_line,
    mosquitto,
    quiet_logs,
    services_module,
    table,
    work_dir,
    write_json,
)
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent._config import EdgeConfig, load_config
from edge_agent._health import parse_prometheus
from edge_agent._profile import load_profile
from prognos_contract import build_topic

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SITE = "bench"
GATEWAY = "bench-footprint"
PROFILE = "benchsim_m40_1.0"
RSS_TARGET_BYTES = 60_000_000
CPU_TARGET_PCT = 10.0
SIGNALS = 40
SERVER_START_TIMEOUT_S = 60.0
AGENT_STOP_TIMEOUT_S = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = 1024

Say = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# The profile and the registers behind it


Words = list[int] | list[bool]
Encode = Callable[[int, int, int], Words]
"""(device index, second, index in its group) to a signal's registers (or bit)."""


def _f32(value: float, *, swap_words: bool = False) -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [lo, hi] if swap_words else [hi, lo]


def _temperature(d: int, t: int, i: int) -> Words:
    return _f32(40.0 + d * 0.1 + i + (t % 60) / 10)


def _flow(d: int, t: int, i: int) -> Words:
    return _f32(100.0 + d + i + t % 30, swap_words=True)


def _current(d: int, t: int, i: int) -> Words:
    return [(500 + 10 * d + i + t) % 65536]


def _ambient(d: int, t: int, i: int) -> Words:
    return [(200 + d + i - t % 50) & 0xFFFF]


def _counter(d: int, t: int, i: int) -> Words:
    value = 100_000 * d + 1000 * i + t
    return [value & 0xFFFF, (value >> 16) & 0xFFFF]  # CDAB: low word first


def _serial(d: int, _t: int, _i: int) -> Words:
    return [0x5349, 0x4D30 + d // 10 % 10, 0x3030 + d % 10, 0]  # "SIM" + 3 digits


def _state(d: int, t: int, i: int) -> Words:
    return [(d + i + t // 10) % 3]


def _status_word(d: int, t: int, _i: int) -> Words:
    return [(d + t) & 0xF]


def _vibration(d: int, t: int, i: int) -> Words:
    return _f32(1.0 + (d + i + t) % 7 / 10)


def _estop(d: int, t: int, i: int) -> Words:
    return [(d + i + t // 30) % 5 != 0]


def _run_command(d: int, _t: int, i: int) -> Words:
    return [(d + i) % 2 == 0]


@dataclass(frozen=True, slots=True)
class Group:
    """Signals of one kind: ``count`` of them, ``stride`` registers apart (0: bits of one)."""

    name: str
    count: int
    stride: int
    spec: dict[str, Any]
    encode: Encode


GROUPS = (
    Group("temp_{i}_c", 8, 2, {"kind": "holding", "address": 0, "type": "float32",
          "unit": "degC", "deadband": 0.5}, _temperature),
    Group("flow_{i}_m3_h", 2, 2, {"kind": "holding", "address": 16, "type": "float32",
          "byte_order": "CDAB", "unit": "m3/h"}, _flow),
    Group("current_{i}_a", 6, 1, {"kind": "holding", "address": 20, "type": "uint16",
          "scale": 0.1, "unit": "A"}, _current),
    Group("ambient_{i}_c", 4, 1, {"kind": "holding", "address": 26, "type": "int16",
          "scale": 0.1, "unit": "degC", "nan_value": 0x7FFF}, _ambient),
    Group("counter_{i}", 4, 2, {"kind": "holding", "address": 30, "type": "uint32",
          "byte_order": "CDAB"}, _counter),
    Group("serial_no", 1, 4, {"kind": "holding", "address": 38, "type": "string",
          "length_words": 4}, _serial),
    Group("state_{i}", 3, 1, {"kind": "holding", "address": 42, "type": "uint16",
          "enum": {0: "stopped", 1: "running", 2: "fault"}}, _state),
    Group("alarm_{i}", 4, 0, {"kind": "holding", "address": 45, "type": "bool"}, _status_word),
    Group("vibration_{i}_mm_s", 4, 2, {"kind": "input", "address": 0, "type": "float32",
          "unit": "mm/s"}, _vibration),
    Group("estop_ok_{i}", 2, 1, {"kind": "discrete", "address": 0, "type": "bool"}, _estop),
    Group("run_cmd_{i}", 2, 1, {"kind": "coil", "address": 0, "type": "bool"}, _run_command),
)  # fmt: skip
"""The 40 signals: holding registers 0-45, input registers 0-7, discrete inputs and coils 0-1.
One poll of a device is 4 requests."""


@dataclass(frozen=True, slots=True)
class Signal:
    """One signal of the generated profile."""

    spec: dict[str, Any]
    group: Group
    index: int

    def words(self, device: int, second: int) -> Words:
        """Its registers (or bit) on device ``device`` at ``second``."""
        return self.group.encode(device, second, self.index)


def profile_signals() -> list[Signal]:
    """Every signal of `GROUPS`, with its name and address."""
    signals: list[Signal] = []
    for group in GROUPS:
        for i in range(group.count):
            spec = {"name": group.name.format(i=i), **group.spec}
            spec["address"] += group.stride * i
            if group.stride == 0:
                spec["bit"] = i
            signals.append(Signal(spec, group, i))
    return signals


def profile_yaml() -> str:
    """The generated firmware profile."""
    signals = profile_signals()
    if len(signals) != SIGNALS:
        raise AssertionError(f"the profile has {len(signals)} signals, not {SIGNALS}")
    document = {
        "vendor": "BenchSim",
        "model": "M40",
        "firmware": "1.0",
        "description": "Generated by scripts/bench/agent_footprint.py: 40 signals of every kind.",
        "defaults": {"byte_order": "ABCD", "interval_s": 1},
        "signals": [s.spec for s in signals],
    }
    return yaml.safe_dump(document, sort_keys=False)


def device_tables(device: int, second: int) -> dict[str, dict[int, Any]]:
    """The four tables of device ``device`` (0-based) at ``second``."""
    tables: dict[str, dict[int, Any]] = {"holding": {}, "input": {}, "coil": {}, "discrete": {}}
    for signal in profile_signals():
        table_ = tables[signal.spec["kind"]]
        for offset, value in enumerate(signal.words(device, second)):
            table_[signal.spec["address"] + offset] = value
    return tables


# ---------------------------------------------------------------------------------------------
# The simulated devices: a child process


def _serve(devices: int, topology: str) -> None:
    """Child process: serve the devices; print the ports as JSON; stop when stdin closes.

    Every second, each device's registers move on to that second's values.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    fake: Any = importlib.import_module("support.modbus_device")

    def unit_data(device: int, second: int) -> Any:  # noqa: ANN401 - support.modbus_device.UnitData
        data = fake.UnitData()
        for name, values in device_tables(device, second).items():
            data.table(name).update(values)
        return data

    if topology == "gateway":
        servers = [fake.FakeModbusDevice({d + 1: unit_data(d, 0) for d in range(devices)})]
    else:
        servers = [fake.FakeModbusDevice({1: unit_data(d, 0)}) for d in range(devices)]
    # (unit, device index) behind each server
    units = [
        [(unit, unit - 1 if topology == "gateway" else index) for unit in server.units]
        for index, server in enumerate(servers)
    ]

    async def main() -> None:
        ports = [await server.start_tcp(host=HOST) for server in servers]
        print(json.dumps(ports), flush=True)
        stdin_closed = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        second = 0
        while not stdin_closed.done():
            await asyncio.wait({stdin_closed}, timeout=1.0)
            second += 1
            for server, served in zip(servers, units, strict=True):
                server.requests.clear()  # the fake device logs every request: keep memory flat
                for unit, device in served:
                    for name, values in device_tables(device, second).items():
                        server.units[unit].table(name).update(values)
        for server in servers:
            await server.stop()

    asyncio.run(main())


@contextlib.contextmanager
def simulated_devices(devices: int, topology: str) -> Iterator[list[int]]:
    """Start the device process; yields its TCP ports (one per device, or one for all)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            str(devices),
            "--topology",
            topology,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None  # noqa: S101 - set by stdout=PIPE
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the device process exited ({proc.wait()}) before serving")
        yield json.loads(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------
# The agent's config


def agent_config(
    folder: Path, ports: Sequence[int], args: argparse.Namespace, *, mqtt_port: int | None
) -> dict[str, Any]:
    """The agent's config: every device at 1 s, deadband off; MQTT unless ``mqtt_port`` is None."""
    devices = []
    for i in range(args.devices):
        port, unit = (ports[0], i + 1) if args.topology == "gateway" else (ports[i], 1)
        devices.append(
            {
                "name": f"dev-{i + 1:02d}",
                "asset": f"machine-{i + 1:02d}",
                "profile": PROFILE,
                "transport": {"type": "tcp", "host": HOST, "port": port, "unit": unit},
                "interval_s": 1,
                "preprocess": {"deadband": "off"},
            }
        )
    config: dict[str, Any] = {
        "site": SITE,
        "gateway": GATEWAY,
        "profiles_dir": str(folder / "profiles"),
        "state_dir": str(folder / "state"),
        "devices": devices,
    }
    if mqtt_port is not None:
        config["mqtt"] = {
            "host": HOST,
            "port": mqtt_port,
            "client_id": f"{GATEWAY}-{os.getpid()}",
            "protocol": "5",
        }
        config["health"] = {"metrics_listen": f"{HOST}:{args.metrics_port}"}
    return config


def write_agent_files(
    folder: Path, ports: Sequence[int], args: argparse.Namespace, *, mqtt_port: int | None
) -> Path:
    """Write the profile and the config; check both load. Returns the config file."""
    profiles = folder / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (folder / "state").mkdir(exist_ok=True)
    (profiles / f"{PROFILE}.yaml").write_text(profile_yaml(), encoding="utf-8")
    load_profile(profiles / f"{PROFILE}.yaml")
    path = folder / "edge.yaml"
    document = agent_config(folder, ports, args, mqtt_port=mqtt_port)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    load_config(path)
    return path


def mqtt_supported() -> bool:
    """Whether this agent's config has an ``mqtt`` section (``prognos-edge run`` publishes)."""
    return "mqtt" in EdgeConfig.model_fields


# ---------------------------------------------------------------------------------------------
# Counting what the agent delivers


@dataclass(slots=True)
class Delivered:
    """Telemetry counted as it arrives, with the time of each batch."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    arrivals: list[tuple[float, int, int]] = field(default_factory=list)
    """(monotonic time, readings, values) of each batch or line."""

    def add(self, readings: int, values: int) -> None:
        """Count one batch (MQTT) or one line (stdout)."""
        with self.lock:
            self.arrivals.append((time.monotonic(), readings, values))

    def between(self, start: float, end: float) -> tuple[int, int, int]:
        """(batches, readings, values) that arrived in ``[start, end)``."""
        with self.lock:
            got = [(r, v) for t, r, v in self.arrivals if start <= t < end]
        return len(got), sum(r for r, _ in got), sum(v for _, v in got)


@contextlib.contextmanager
def telemetry_counter(port: int, delivered: Delivered) -> Iterator[None]:
    """Subscribe to the gateway's telemetry and count readings and values."""
    topic = build_topic("telemetry", site=SITE, gateway=GATEWAY)

    def on_message(_client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        batch = json.loads(msg.payload)
        readings = batch["readings"]
        values = sum(len(r["values"]) + len(r.get("bad", ())) for r in readings)
        delivered.add(len(readings), values)

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-footprint-sub", protocol=mqtt.MQTTv5
    )
    client.on_message = on_message
    client.connect(HOST, port, keepalive=60, clean_start=True)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        yield
    finally:
        client.disconnect()
        client.loop_stop()


def count_lines(stream: IO[str], delivered: Delivered) -> None:
    """Count the stdout sink's JSON lines (one signal value each) until the stream ends."""
    for _line in stream:
        delivered.add(0, 1)


# ---------------------------------------------------------------------------------------------
# Processes and their samples


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at a process."""

    at: float
    rss_bytes: int
    hwm_bytes: int
    cpu_ticks: int
    threads: int


def sample(pid: int) -> Sample:
    """Read RSS, peak RSS, threads (``/proc/PID/status``) and CPU ticks (``/proc/PID/stat``)."""
    at = time.monotonic()
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    fields = {
        key: value.split()[0]
        for key, _, value in (line.partition(":") for line in status.splitlines())
        if key in {"VmRSS", "VmHWM", "Threads"}
    }
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    # After the ")" that ends the command name: field 3 (state) is stat[0], so utime (14) and
    # stime (15) are stat[11] and stat[12].
    return Sample(
        at=at,
        rss_bytes=int(fields["VmRSS"]) * PAGE_KB,
        hwm_bytes=int(fields["VmHWM"]) * PAGE_KB,
        cpu_ticks=int(stat[11]) + int(stat[12]),
        threads=int(fields["Threads"]),
    )


@dataclass(slots=True)
class Watched:
    """A process measured over the window, and its samples."""

    label: str
    proc: subprocess.Popen[str]
    samples: list[Sample] = field(default_factory=list)

    @property
    def rss_mean(self) -> float:
        """Mean resident memory over the samples, bytes."""
        return sum(s.rss_bytes for s in self.samples) / len(self.samples)

    @property
    def rss_max(self) -> int:
        """The largest resident memory sampled, bytes."""
        return max(s.rss_bytes for s in self.samples)

    @property
    def hwm(self) -> int:
        """Peak resident memory since the process started, bytes.

        The kernel's high-water mark (``VmHWM``), or the largest sample if that is higher: the
        kernel updates the mark lazily, so it can lag a short-lived peak.
        """
        return max(self.samples[-1].hwm_bytes, self.rss_max)

    @property
    def cpu_pct(self) -> float:
        """CPU time over wall time across the window, percent of one core."""
        first, last = self.samples[0], self.samples[-1]
        return 100.0 * (last.cpu_ticks - first.cpu_ticks) / CLK_TCK / (last.at - first.at)

    @property
    def cpu_pct_max(self) -> float:
        """The busiest interval between two samples, percent of one core."""
        pairs = zip(self.samples, self.samples[1:], strict=False)
        return max(100.0 * (b.cpu_ticks - a.cpu_ticks) / CLK_TCK / (b.at - a.at) for a, b in pairs)

    @property
    def threads(self) -> int:
        """Threads at the last sample."""
        return self.samples[-1].threads


BASELINES = (
    ("python, idle (interpreter floor)", ""),
    (
        "python + edge dependencies, idle",
        (
            "import asyncio, json, sqlite3, ssl\n"
            "import paho.mqtt.client, pydantic, pymodbus.client, structlog, yaml\n"
        ),
    ),
    ("python + prognos-edge modules, idle", "import edge_agent._cli, edge_agent._runtime\n"),
)
"""Idle processes measured beside the agent: label, and what each imports before idling."""


def start_baseline(label: str, imports: str) -> Watched:
    """A Python process of this environment that imports ``imports``, then waits for stdin."""
    code = imports + "import sys\nprint('ready', flush=True)\nsys.stdin.read()\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None  # noqa: S101 - set by stdout=PIPE
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError(f"the baseline {label!r} failed to start ({proc.wait()})")
    return Watched(label, proc)


def stop_process(proc: subprocess.Popen[str], *, timeout_s: float) -> int:
    """SIGTERM (or stdin EOF for a baseline), wait, SIGKILL if needed; returns the exit code."""
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def scrape_metrics(port: int) -> dict[str, float]:
    """The agent's ``/metrics`` (Prometheus text) as name to value; empty if it cannot be read."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    return parse_prometheus(text)


# ---------------------------------------------------------------------------------------------
# The measurement


@dataclass(slots=True)
class Outcome:
    """Everything one run measured."""

    processes: list[Watched]
    seconds: float
    batches: int
    readings: int
    values: int
    metrics: dict[str, float]
    agent_exit: int | None
    sink: str

    @property
    def agent(self) -> Watched:
        """The agent's process (the last one)."""
        return self.processes[-1]


def measure(config: Path, args: argparse.Namespace, delivered: Delivered, say: Say) -> Outcome:
    """Run the agent and the baselines; sample them all every second over the window."""
    processes = [start_baseline(label, code) for label, code in BASELINES]
    log = config.parent / "agent.log"
    with log.open("w", encoding="utf-8") as err:
        agent = subprocess.Popen(
            [str(VENV_BIN / "prognos-edge"), "run", str(config), "--log-level", "warning"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if args.sink == "stdout" else subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    watched = Watched("prognos-edge run", agent)
    processes.append(watched)
    if args.sink == "stdout":
        assert agent.stdout is not None  # noqa: S101 - set by stdout=PIPE
        stdout = agent.stdout
        threading.Thread(target=count_lines, args=(stdout, delivered), daemon=True).start()
    try:
        _warm_up(agent, args.warmup_s, log, say)
        intervals = max(1, round(args.duration_s))
        step_s = args.duration_s / intervals  # a second, or the whole of a shorter window
        start = time.monotonic()
        next_report = start + 10.0
        for tick in range(intervals + 1):
            time.sleep(max(0.0, start + tick * step_s - time.monotonic()))
            for process in processes:
                process.samples.append(sample(process.proc.pid))
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited ({agent.returncode}): {_tail(log)}")
            now = time.monotonic()
            if now >= next_report:
                next_report += 10.0
                say(
                    f"  {now - start:3.0f} s: agent RSS {watched.samples[-1].rss_bytes / 1e6:.1f} "
                    f"MB, CPU {watched.cpu_pct:.1f} % so far"
                )
        end = watched.samples[-1].at
        metrics = scrape_metrics(args.metrics_port) if args.sink == "mqtt" else {}
    finally:
        exits = [stop_process(p.proc, timeout_s=AGENT_STOP_TIMEOUT_S) for p in processes]
    batches, readings, values = delivered.between(watched.samples[0].at, end)
    return Outcome(
        processes,
        end - watched.samples[0].at,
        batches,
        readings,
        values,
        metrics,
        exits[-1],
        args.sink,
    )


def _warm_up(agent: subprocess.Popen[str], warmup_s: float, log: Path, say: Say) -> None:
    say(f"  warming up for {warmup_s:g} s")
    deadline = time.monotonic() + warmup_s
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise RuntimeError(f"the agent exited ({agent.returncode}): {_tail(log)}")
        time.sleep(0.2)


def _tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:]) or "(no output)"


# ---------------------------------------------------------------------------------------------
# Output


def results_table(outcome: Outcome) -> str:
    """One row per process."""
    rows: list[tuple[str, ...]] = [
        ("process", "RSS MB", "", "", "CPU % of one core", "", "threads"),
        ("", "mean", "max", "peak", "mean", "max 1 s", ""),
    ]
    rows += [
        (
            p.label,
            f"{p.rss_mean / 1e6:.1f}",
            f"{p.rss_max / 1e6:.1f}",
            f"{p.hwm / 1e6:.1f}",
            f"{p.cpu_pct:.1f}",
            f"{p.cpu_pct_max:.1f}",
            str(p.threads),
        )
        for p in outcome.processes
    ]
    return table(rows, right={1, 2, 3, 4, 5, 6})


def json_report(
    env: dict[str, object], args: argparse.Namespace, outcome: Outcome
) -> dict[str, object]:
    """Every figure and sample, for ``--json``."""
    agent = outcome.agent
    return {
        "environment": env,
        "settings": {
            "devices": args.devices,
            "signals": SIGNALS,
            "interval_s": 1,
            "topology": args.topology,
            "sink": outcome.sink,
            "warmup_s": args.warmup_s,
            "duration_s": args.duration_s,
            "rss_target_bytes": RSS_TARGET_BYTES,
            "cpu_target_pct": CPU_TARGET_PCT,
        },
        "processes": [
            {
                "label": p.label,
                "rss_mean_bytes": p.rss_mean,
                "rss_max_bytes": p.rss_max,
                "rss_peak_bytes": p.hwm,
                "cpu_pct": p.cpu_pct,
                "cpu_pct_max": p.cpu_pct_max,
                "threads": p.threads,
                "samples": [asdict(s) for s in p.samples],
            }
            for p in outcome.processes
        ],
        "delivered": {
            "seconds": outcome.seconds,
            "batches": outcome.batches,
            "readings": outcome.readings,
            "values": outcome.values,
        },
        "agent_metrics": outcome.metrics,
        "agent_exit": outcome.agent_exit,
        "rss_below_target": agent.rss_max < RSS_TARGET_BYTES,
        "cpu_below_target": agent.cpu_pct < CPU_TARGET_PCT,
    }


def delivered_line(outcome: Outcome, devices: int) -> str:
    """What reached the broker (or stdout) in the window, against what the config asks."""
    s = outcome.seconds
    if outcome.sink == "stdout":
        return (
            f"delivered to stdout: {outcome.values / s:,.0f} values/s, one JSON line each "
            f"(expected {devices * SIGNALS:,})"
        )
    return (
        f"delivered to the broker: {outcome.values / s:,.0f} values/s (expected "
        f"{devices * SIGNALS:,}) in {outcome.readings / s:,.1f} readings/s (a reading is one "
        f"asset at one time: each of a poll's requests has its own) and "
        f"{outcome.batches / s:.2f} batches/s"
    )


def metrics_line(metrics: dict[str, float]) -> str:
    """The agent's own view, from its /metrics at the end of the window, if it could be read."""
    if not metrics:
        return "agent /metrics: not read"

    def total(prefix: str) -> float:
        return sum(v for k, v in metrics.items() if k.startswith(f"prognos_edge_{prefix}"))

    return (
        f"agent /metrics at the end: {total('polls_total'):,.0f} polls, "
        f"{total('poll_errors_total'):,.0f} poll errors, "
        f"{total('device_available'):,.0f} devices available, "
        f"{total('outbox_published_messages_total'):,.0f} batches published, outbox depth "
        f"{total('outbox_depth_messages'):,.0f}, "
        f"{total('outbox_dropped_readings_total'):,.0f} readings dropped, "
        f"its own RSS {total('process_resident_memory_bytes') / 1e6:.1f} MB"
    )


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="agent_footprint.py",
        description=(
            "Measure the resident memory and CPU of `prognos-edge run` polling simulated Modbus "
            "TCP devices (40 signals each, every second) and publishing to a Mosquitto of its "
            "own, beside idle Python processes as baselines."
        ),
        epilog=f"Exit status: 0 ok; 1 the agent failed, or (--strict) RSS >= "
        f"{RSS_TARGET_BYTES / 1e6:.0f} MB or CPU >= {CPU_TARGET_PCT:.0f} %. A default run takes "
        "about 75 s (10 s warm-up, 60 s measured, start and stop).",
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        default=60.0,
        help="measured window, sampled every second (default: %(default)s; a shorter window "
        "is sampled at both ends only)",
    )
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=10.0,
        help="time the agent runs before the window opens (default: %(default)s)",
    )
    parser.add_argument(
        "--devices", type=int, default=50, help="simulated devices (default: %(default)s)"
    )
    parser.add_argument(
        "--topology",
        choices=("endpoints", "gateway"),
        default="endpoints",
        help="endpoints: one Modbus TCP server per device; gateway: all devices as unit ids "
        "behind one server (default: %(default)s)",
    )
    parser.add_argument(
        "--sink",
        choices=("mqtt", "stdout"),
        default="mqtt" if mqtt_supported() else "stdout",
        help="mqtt: publish to a Mosquitto of its own; stdout: no mqtt section, JSON lines "
        "(default: %(default)s)",
    )
    parser.add_argument("--dir", help="folder for the agent's files (default: a temporary one)")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write every figure and sample as JSON to PATH ('-': to stdout, and the "
        "report to stderr)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"exit 1 when RSS >= {RSS_TARGET_BYTES / 1e6:.0f} MB or CPU >= "
        f"{CPU_TARGET_PCT:.0f} %% of one core",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.duration_s <= 0 or args.warmup_s < 0:
        parser.error("--duration-s must be > 0 and --warmup-s >= 0")
    if not 1 <= args.devices <= 247:  # noqa: PLR2004 - Modbus unit ids
        parser.error("--devices must be 1..247")
    if args.sink == "mqtt" and not mqtt_supported():
        parser.error("this agent's config has no mqtt section: use --sink stdout")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurement, print the report, and return the exit status."""
    args = parse_args(argv)
    if args.serve is not None:
        _serve(args.serve, args.topology)
        return 0
    out: TextIO = sys.stderr if args.json == "-" else sys.stdout

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    quiet_logs()
    env = environment()
    say(f"Agent footprint benchmark: {environment_line(env)}")
    args.metrics_port = services_module().free_port()
    delivered = Delivered()
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(work_dir(args.dir, "prognos-bench-footprint-"))
        ports = stack.enter_context(simulated_devices(args.devices, args.topology))
        mqtt_port = None
        if args.sink == "mqtt":
            mqtt_port = stack.enter_context(mosquitto(folder / "broker"))
            stack.enter_context(telemetry_counter(mqtt_port, delivered))
        config = write_agent_files(folder, ports, args, mqtt_port=mqtt_port)
        where = (
            f"{args.devices} TCP servers, unit 1 each"
            if args.topology == "endpoints"
            else f"one TCP server, units 1..{args.devices}"
        )
        sink = (
            f"publishing to Mosquitto on {HOST}:{mqtt_port} (QoS 1, outbox sync full)"
            if mqtt_port is not None
            else "no mqtt section: JSON lines on stdout, counted through a pipe"
        )
        say(
            f"{args.devices} simulated devices x {SIGNALS} signals every 1 s ({where}, pymodbus "
            f"in a child process), deadband off; prognos-edge run {sink}; window "
            f"{args.duration_s:g} s after {args.warmup_s:g} s warm-up"
        )
        outcome = measure(config, args, delivered, say)
    agent = outcome.agent
    rss_ok = agent.rss_max < RSS_TARGET_BYTES
    cpu_ok = agent.cpu_pct < CPU_TARGET_PCT
    say("")
    say(
        f"Results over {outcome.seconds:.0f} s (RSS: VmRSS sampled every second, peak: VmHWM; "
        "CPU: utime+stime over wall time)"
    )
    say(results_table(outcome))
    say(delivered_line(outcome, args.devices))
    say(metrics_line(outcome.metrics))
    say(
        f"RSS < {RSS_TARGET_BYTES / 1e6:.0f} MB: {'yes' if rss_ok else 'no'} (max "
        f"{agent.rss_max / 1e6:.1f} MB); CPU < {CPU_TARGET_PCT:.0f} % of one core: "
        f"{'yes' if cpu_ok else 'no'} (mean {agent.cpu_pct:.1f} %)"
    )
    if args.json:
        write_json(args.json, json_report(env, args, outcome), say)
    if outcome.agent_exit not in (0, None):
        say(f"FAIL: the agent exited with {outcome.agent_exit} when stopped")
        return 1
    if args.strict and not (rss_ok and cpu_ok):
        say("FAIL (--strict): a target is missed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
