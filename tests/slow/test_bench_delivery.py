"""The delivery benchmarks of issue 4 run end to end with tiny sizes and print their figures.

`scripts/bench/mqtt_publish.py`, `outbox_replay.py` and `agent_footprint.py` each start a
Mosquitto of their own; `agent_footprint.py` also runs `prognos-edge run`. Timing is never judged
here: only that each script runs, prints its table and verdict, writes its JSON and exits 0.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench"


def has_line(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.MULTILINE) is not None


def run_script(name: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("mqtt_publish.py", ["--duration-s", "--messages", "--repeats", "--secure-delete"]),
        ("outbox_replay.py", ["--duration-s", "--readings", "--sync", "--compress"]),
        ("agent_footprint.py", ["--duration-s", "--warmup-s", "--devices", "--topology"]),
    ],
)
def test_help_names_the_options(name: str, options: list[str]) -> None:
    proc = run_script(name, "--help")
    assert proc.returncode == 0, proc.stderr
    for option in [*options, "--json", "--strict"]:
        assert option in proc.stdout, option


@pytest.mark.slow
def test_mqtt_publish_prints_every_client_and_the_ratio(tmp_path: Path) -> None:
    figures = tmp_path / "publish.json"
    proc = run_script(
        "mqtt_publish.py",
        *("--messages", "30", "--repeats", "1", "--readings-per-batch", "10"),
        *("--signals", "5", "--dir", str(tmp_path), "--json", str(figures)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"Python 3\.\d+.*paho-mqtt 2\.\d+.*SQLite 3\.\d+.*Mosquitto", out)
    assert "1 rounds of 30 batches of 10 readings x 5 signals" in out
    for row in ("paho (baseline)", "prognos publish", "outbox enqueue", "prognos live"):
        assert row in out, row
    assert "readings/s" in out
    assert has_line(
        r"^ratio >= 0\.5 \(prognos publish / paho\): (yes|no) \(lowest \d+\.\d\d, ", out
    )

    report = json.loads(figures.read_text())
    assert report["settings"]["messages"] == 30
    clients = {"paho", "publish/normal", "publish/full", "enqueue/normal", "enqueue/full"}
    clients |= {"live/normal", "live/full"}
    assert set(report["median"]) == clients
    for client, figures_ in report["median"].items():
        assert figures_["readings_per_s"] > 0, client  # computed; the size is not judged
    assert {run["readings"] for run in report["runs"]} == {300}
    assert not list(tmp_path.glob("prognos-bench-*")), "the work folder is removed"


@pytest.mark.slow
def test_outbox_replay_fills_replays_twice_and_loses_nothing(tmp_path: Path) -> None:
    figures = tmp_path / "replay.json"
    # A window of 3 makes the 20-batch backlog a paced replay.
    proc = run_script(
        "outbox_replay.py",
        *("--readings", "2000", "--max-inflight", "4", "--dir", str(tmp_path)),
        *("--json", str(figures)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "backlog: 2,000 readings in 20 batches of 100 readings x 20 signals" in out
    assert re.search(r"filled in \d+\.\d s: .* MB of payload, file .* MB", out)
    assert has_line(r"^  fill \(offline\) ", out)
    assert has_line(r"^  replay +off .* 20/20 +0\.\.19 contiguous, in order", out)
    assert has_line(r"^  replay +200 msg/s, 1 MB/s .* 20/20 +0\.\.19 contiguous", out)
    assert "every batch arrived, in seq order: yes" in out

    report = json.loads(figures.read_text())
    assert report["no_loss"] is True
    assert report["fill"]["readings"] == 2000
    assert report["fill"]["file_bytes"] > report["fill"]["payload_bytes"] > 0
    assert [r["paced"] for r in report["replays"]] == [False, True]
    for replay in report["replays"]:
        assert replay["complete"] is True
        assert replay["messages"] == replay["received"]["distinct"] == 20
        assert replay["readings"] == replay["received"]["readings"] == 2000
        assert replay["problems"] == []


@pytest.mark.slow
def test_agent_footprint_measures_the_agent_and_the_baselines(tmp_path: Path) -> None:
    figures = tmp_path / "footprint.json"
    proc = run_script(
        "agent_footprint.py",
        *("--devices", "2", "--duration-s", "3", "--warmup-s", "3", "--dir", str(tmp_path)),
        *("--json", str(figures)),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for row in ("python, idle", "python + edge dependencies", "prognos-edge run"):
        assert has_line(rf"^  {re.escape(row)}.* \d+\.\d +\d+\.\d", out), row
    assert has_line(r"^delivered to (the broker|stdout): [\d,]+ values/s", out)
    assert has_line(r"^RSS < 60 MB: (yes|no) \(max \d+\.\d MB\); CPU < 10 % ", out)

    report = json.loads(figures.read_text())
    assert report["agent_exit"] == 0
    assert len(report["processes"]) == 4
    agent = report["processes"][-1]
    assert agent["label"] == "prognos-edge run"
    assert agent["rss_max_bytes"] > 0
    assert len(agent["samples"]) == 4  # one a second, both ends included
    assert report["delivered"]["values"] > 0
