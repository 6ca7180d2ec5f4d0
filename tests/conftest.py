"""Shared fixtures: the real services, and per-test isolation on them.

Tests under `tests/integration/` talk to a real Mosquitto and a real influxd. When the
environment already names them (`PROGNOS_MQTT_PORT`, `PROGNOS_INFLUX_URL`, ... as written by
`scripts/services.py start DIR`), the tests use those; otherwise the first test that needs them
starts both through `scripts/services.py` in a throw-away folder, and the session stops them.
Each test gets its own MQTT topic prefix and its own InfluxDB database, so tests never see each
other's data, even on a shared server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import structlog
from hypothesis import settings

# CI runs the same examples every time (a red CI must be reproducible); developers explore new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services.py"
DATASETS = ROOT.parent / "shared" / "datasets"


@dataclass
class Services:
    """Where the real services listen, and what the session did with them (for the summary)."""

    mqtt_host: str
    mqtt_port: int
    influx_url: str
    influx_user: str
    influx_password: str
    started_here: Path | None
    mosquitto_version: str = "?"
    influx_version: str = "?"
    databases: list[str] = field(default_factory=list)
    topic_prefixes: list[str] = field(default_factory=list)

    def influx_query(self, q: str, *, db: str | None = None) -> dict[str, object]:
        """Run one InfluxQL statement as the admin user (POST); raise on an error in the answer."""
        params = {"q": q} | ({"db": db} if db else {})
        req = urllib.request.Request(  # noqa: S310 - the test server's loopback URL
            f"{self.influx_url}/query",
            data=urllib.parse.urlencode(params).encode(),
            headers={"Authorization": "Basic " + self._basic()},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - same
            body: dict[str, object] = json.loads(resp.read())
        if "error" in body or any("error" in r for r in body.get("results", [])):  # type: ignore[attr-defined]
            raise RuntimeError(f"influx error for {q!r}: {body}")
        return body

    def _basic(self) -> str:
        return base64.b64encode(f"{self.influx_user}:{self.influx_password}".encode()).decode()


def _versions(services: Services) -> None:
    with urllib.request.urlopen(f"{services.influx_url}/ping", timeout=5) as resp:  # noqa: S310
        services.influx_version = resp.headers.get("X-Influxdb-Version", "?")
    try:
        out = subprocess.run(
            ["mosquitto", "-h"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"},
        ).stdout
        match = re.search(r"version (\S+)", out)
        services.mosquitto_version = match.group(1) if match else "?"
    except OSError:
        pass


_SESSION_SERVICES: list[Services] = []


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The real Mosquitto and influxd: from the environment, or started for this session."""
    env = dict(os.environ)
    root: Path | None = None
    if "PROGNOS_INFLUX_URL" not in env or "PROGNOS_MQTT_PORT" not in env:
        root = tmp_path_factory.mktemp("services")
        proc = subprocess.run(
            [sys.executable, str(SERVICES), "start", str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"could not start the real services: {proc.stderr.strip()}", pytrace=False)
        env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    svc = Services(
        mqtt_host=env.get("PROGNOS_MQTT_HOST", "127.0.0.1"),
        mqtt_port=int(env["PROGNOS_MQTT_PORT"]),
        influx_url=env["PROGNOS_INFLUX_URL"],
        influx_user=env.get("PROGNOS_INFLUX_USER", ""),
        influx_password=env.get("PROGNOS_INFLUX_PASSWORD", ""),
        started_here=root,
    )
    try:
        _versions(svc)
        _SESSION_SERVICES.append(svc)
        yield svc
    finally:
        if root is not None:
            subprocess.run([sys.executable, str(SERVICES), "stop", str(root)], check=False)


def _test_slug(request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return f"{name}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def topic_prefix(services: Services, request: pytest.FixtureRequest) -> str:
    """A topic prefix that no other test uses (aiomqtt's `unique_topic()`)."""
    prefix = f"prognos-test/{_test_slug(request)}/v1"
    services.topic_prefixes.append(prefix)
    return prefix


@pytest.fixture
def influx_db(services: Services, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh InfluxDB database for this test, dropped afterwards."""
    name = f"test_{_test_slug(request)}"
    services.influx_query(f'CREATE DATABASE "{name}"')
    services.databases.append(name)
    try:
        yield name
    finally:
        services.influx_query(f'DROP DATABASE "{name}"')


@pytest.fixture(autouse=True)
def _structlog_isolation() -> Iterator[None]:
    """Undo any `structlog.configure` a test made (the CLIs configure logging when run in-process).

    Without this, a command's level filter (e.g. INFO) leaks into later tests and hides the DEBUG
    events that `capture_logs()` assertions look for.
    """
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ is marked `integration`."""
    for item in items:
        if "integration" in Path(str(item.path)).parts:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly which real services the run talked to."""
    for svc in _SESSION_SERVICES:
        where = (
            f"started by scripts/services.py in {svc.started_here}"
            if svc.started_here
            else "from env"
        )
        terminalreporter.write_sep("-", "real services")
        terminalreporter.write_line(
            f"mosquitto {svc.mosquitto_version} at {svc.mqtt_host}:{svc.mqtt_port} "
            f"({len(svc.topic_prefixes)} test topic prefixes); influxd {svc.influx_version} at "
            f"{svc.influx_url} ({len(svc.databases)} test databases); {where}"
        )
