"""`scripts/bench/modbus_poll.py` runs end to end and reports its figures (timing is not judged)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "modbus_poll.py"
PROFILES = sorted(path.stem for path in (ROOT / "firmware_profiles").glob("*.yaml"))


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_help_names_the_options() -> None:
    proc = run_script("--help")
    assert proc.returncode == 0, proc.stderr
    for option in ("--duration-s", "--repeats", "--json", "--strict", "--profile"):
        assert option in proc.stdout


@pytest.mark.slow
def test_a_short_run_prints_both_tables_and_the_verdict_and_exits_0(tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    proc = run_script(
        "--duration-s", "0.05", "--repeats", "1", "--warmup-s", "0.05", "--json", str(figures)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"Python 3\.\d+.*pymodbus 3\.\d+.*\d+ CPUs", out)
    assert "requests/cycle" in out
    assert "theoretical min" in out
    assert "plans at the theoretical minimum: yes" in out
    assert "regs/s" in out
    assert re.search(r"^ratio >= 0\.8: (yes|no) \(lowest \d+\.\d\d, ", out, re.MULTILINE)
    for profile in PROFILES:
        assert re.search(rf"^  {re.escape(profile)} .* yes$", out, re.MULTILINE), profile

    report = json.loads(figures.read_text())
    assert report["plans_at_minimum"] is True
    assert [plan["profile"] for plan in report["plans"]] == PROFILES
    assert all(plan["requests"] == plan["minimum"] for plan in report["plans"])
    assert [t["profile"] for t in report["throughput"]] == PROFILES
    for throughput in report["throughput"]:
        assert sorted(run["client"] for run in throughput["runs"]) == ["prognos", "pymodbus"]
        assert throughput["readings_per_poll"] > 0
        assert throughput["ratio"] > 0  # a figure was computed; its size is not judged here
