"""`prognos api serve` is a real uvicorn process: health without a token, data with one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
ASSETS = """
assets:
  - {asset_id: pump-07, site: plant1, customer: Northwater, tier: VIP, model: CPV-150,
     firmware: "2.4", profile: aquaflo_cpv150_2.x, serial: S1, asset_class: pump,
     team: north, criticality: critical, commissioned: 2021-05-17}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def prognos(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloud", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_serve_answers_over_http(services: Any, influx_db: str, tmp_path: Path) -> None:
    """Start, wait for /healthz, read with a planner token, refuse without; SIGTERM stops it."""
    (tmp_path / "assets.yaml").write_text(ASSETS)
    tokens = tmp_path / "tokens.yaml"
    env = {
        **os.environ,
        "PROGNOS_INFLUX_URL": services.influx_url,
        "PROGNOS_INFLUX_USER": services.influx_user,
        "PROGNOS_INFLUX_PASSWORD": services.influx_password,
        "PROGNOS_API_TOKENS": str(tokens),
    }
    added = prognos("api", "token", "add", "--name", "alice", "--role", "planner", env=env)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert "sha256:" in tokens.read_text()
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud",
            "api",
            "serve",
            "--db",
            str(tmp_path / "decisions.db"),
            "--assets",
            str(tmp_path / "assets.yaml"),
            "--influx-db",
            influx_db,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # Waiting for start-up is not an assertion about time.
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"{base}/api/v1/assets", timeout=10).status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        me = httpx.get(f"{base}/api/v1/me", headers=auth, timeout=10).json()
        assert me == {"name": "alice", "role": "planner"}
        fleet = httpx.get(f"{base}/api/v1/assets", headers=auth, timeout=10)
        assert fleet.status_code == 200, fleet.text
        assert [(a["asset_id"], a["health"]) for a in fleet.json()["items"]] == [("pump-07", None)]
        assert httpx.get(f"{base}/api/v1/alerts", headers=auth, timeout=10).json()["total"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal so supervisors see why it ended.
    assert proc.returncode in {0, -signal.SIGTERM}, stderr
    assert "Traceback" not in stderr
