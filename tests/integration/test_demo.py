"""`prognos demo`, the foundation flow (C-MAPSS -> MQTT -> InfluxDB), on the real services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import Services

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def test_demo_stores_every_published_reading(services: Services) -> None:
    """The foundation flow publishes C-MAPSS engines and finds every reading in InfluxDB."""
    env = {
        **os.environ,
        "PROGNOS_MQTT_HOST": services.mqtt_host,
        "PROGNOS_MQTT_PORT": str(services.mqtt_port),
        "PROGNOS_INFLUX_URL": services.influx_url,
        "PROGNOS_INFLUX_USER": services.influx_user,
        "PROGNOS_INFLUX_PASSWORD": services.influx_password,
    }
    data = DATASETS / "cmapss" / "train_FD001.txt"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloud",
            "demo",
            "--engines",
            "3",
            "--data",
            str(data),
            "--database",
            f"demo_{os.getpid()}",
            "--prefix",
            "prognos-test/demo/v1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK, nothing lost" in proc.stdout
    # Engines 1-3 of FD001 ran 192, 287 and 179 cycles to failure.
    assert "published 658 readings" in proc.stdout
    assert "stored 658 points" in proc.stdout
