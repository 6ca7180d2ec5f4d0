"""Helpers for the ingester's tests.

A publisher of contract-v1 batches, counts from InfluxDB, the ingester as a subprocess, and an
influxd of a test's own (stoppable, same data and port).

Import as `from support.ingest import ...`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import prognos_contract as pc
from edge_agent._health import parse_prometheus

ROOT = Path(__file__).resolve().parents[2]
BASE_TS_MS = 1_763_805_600_000  # 2025-11-22; far from now, but inside InfluxDB's range


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll `predicate` every 0.1 s until it holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def make_batch(gateway: str, seq: int, readings: int, *, assets: int = 10) -> bytes:
    """A valid telemetry payload: `readings` readings over `assets` assets, ts unique per seq."""
    out = [
        pc.Reading(
            asset=f"pump-{i % assets:03d}",
            ts=BASE_TS_MS + seq * 1000 + i // assets,
            values={"temp_c": 20.0 + i % 7 + seq % 3 / 10, "rpm": 1000 + i},
        )
        for i in range(readings)
    ]
    return pc.encode_telemetry(pc.TelemetryBatch(gateway=gateway, seq=seq, readings=tuple(out)))


class Publisher:
    """A paho QoS 1 publisher on its own loop thread; `publish` returns once the broker has it."""

    def __init__(self, host: str, port: int, *, client_id: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()
        self._infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish QoS 1 (without waiting for the PUBACK)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        self._infos.append(info)

    def flush(self, timeout_s: float = 60) -> None:
        """Wait for every PUBACK."""
        for info in self._infos:
            info.wait_for_publish(timeout=timeout_s)
        self._infos.clear()

    def close(self) -> None:
        """Flush and disconnect."""
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


class SteadyPublisher(threading.Thread):
    """Publishes `batches` telemetry batches of one gateway, at most `rate_msgs_s` if given.

    `sent_batches` counts what was handed to paho; `run` ends after every PUBACK arrived.
    """

    def __init__(
        self,
        publisher: Publisher,
        topic: str,
        gateway: str,
        *,
        batches: int,
        readings: int,
        first_seq: int = 1,
        rate_msgs_s: float | None = None,
    ) -> None:
        super().__init__(name=f"publisher[{gateway}]", daemon=True)
        self.publisher, self.topic, self.gateway = publisher, topic, gateway
        self.batches, self.readings, self.first_seq = batches, readings, first_seq
        self.rate = rate_msgs_s
        self.sent_batches = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        """Publish, then wait for the PUBACKs."""
        try:
            start = time.monotonic()
            for n in range(self.batches):
                if self.rate:
                    ahead = n / self.rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
                seq = self.first_seq + n
                self.publisher.publish(self.topic, make_batch(self.gateway, seq, self.readings))
                self.sent_batches += 1
            self.publisher.flush()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def count(services: Any, db: str, q: str) -> int:
    """Return the sum of an InfluxQL count query's answer over its series (0 if none)."""
    body = services.influx_query(q, db=db)
    total = 0
    for result in body.get("results", []):
        for series in result.get("series", []) or []:
            for row in series.get("values", []):
                total += int(row[1])
    return total


def ingester_env(services: Any, *, influx_url: str | None = None) -> dict[str, str]:
    """The environment a `prognos ingest` subprocess reads (scripts/services.py's variables)."""
    return {
        **os.environ,
        "PROGNOS_MQTT_HOST": services.mqtt_host,
        "PROGNOS_MQTT_PORT": str(services.mqtt_port),
        "PROGNOS_INFLUX_URL": influx_url or services.influx_url,
        "PROGNOS_INFLUX_USER": services.influx_user,
        "PROGNOS_INFLUX_PASSWORD": services.influx_password,
    }


def spawn_ingester(
    env: dict[str, str],
    *,
    prefix: str,
    database: str,
    state_dir: Path,
    client_id: str,
    log: Path,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """`python -m cloud ingest ...` as a subprocess, logging JSON to `log`; metrics on any port."""
    argv = [
        sys.executable, "-m", "cloud", "ingest",
        "--prefix", prefix, "--database", database, "--state-dir", str(state_dir),
        "--client-id", client_id, "--metrics-listen", "127.0.0.1:0", "--log-format", "json",
        *extra,
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def stop_process(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM) -> int:
    """Send `sig` and wait for the exit code."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    return proc.wait(60)


def metrics_port_from_log(log: Path, *, timeout_s: float = 60) -> int:
    """The metrics port the subprocess logged at start (`ingest_started`)."""
    import json  # noqa: PLC0415

    port: list[int] = []

    def found() -> bool:
        for line in log.read_text(errors="replace").splitlines()[::-1]:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "ingest_started":
                    port.append(int(event["metrics_port"]))
                    return True
        return False

    wait_until(found, timeout_s=timeout_s, what=f"ingest_started in {log}")
    return port[0]


def scrape(port: int) -> dict[str, float]:
    """`/metrics` as {sample name with labels: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return parse_prometheus(resp.read().decode())


def _services_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prognos_services", ROOT / "scripts/services.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PrivateInfluxd:
    """An influxd of a test's own, from scripts/services.py's config: auth on, loopback.

    `stop()` and `start()` again keep the data folder and the port, so a test can take InfluxDB
    away under load and bring the same database back.
    """

    def __init__(self, root: Path) -> None:
        self.svc = _services_module()
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.http_port = self.svc.free_port()
        self.rpc_port = self.svc.free_port()
        (root / "influxdb.conf").write_text(
            self.svc.influxdb_conf(root, self.http_port, self.rpc_port)
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.user = self.svc.INFLUX_USER
        self.password = ""

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        """Start (or restart) influxd; creates the admin user the first time."""
        log = self.root / "influxd.log"
        self.proc = self.svc.spawn(
            [self.svc.find_binary("influxd"), "run", "-config", str(self.root / "influxdb.conf")],
            log,
        )
        self.svc.wait_influx(self.http_port, self.proc, log)
        if not self.password:
            self.password = self.svc.create_admin(self.http_port, log)

    def stop(self) -> None:
        """Stop influxd (SIGTERM, then SIGKILL after 10 s); the data stays."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def services(self, base: Any) -> Any:
        """A copy of the session's `Services` pointing at this influxd."""
        import dataclasses  # noqa: PLC0415

        return dataclasses.replace(
            base, influx_url=self.url, influx_user=self.user, influx_password=self.password
        )


@contextlib.contextmanager
def private_influxd(root: Path) -> Iterator[PrivateInfluxd]:
    """A started `PrivateInfluxd`, stopped at the end."""
    influx = PrivateInfluxd(root)
    influx.start()
    try:
        yield influx
    finally:
        influx.stop()
