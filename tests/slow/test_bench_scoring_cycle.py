"""`scripts/bench/scoring_cycle.py` runs end to end on a tiny fleet (timing is not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "scoring_cycle.py"
pytestmark = pytest.mark.skipif(
    not (ROOT.parent / "shared" / "datasets" / "cmapss" / "train_FD001.txt").exists(),
    reason="C-MAPSS data set not present",
)


@pytest.mark.slow
def test_a_tiny_run_prints_every_phase_the_growth_and_the_baseline(tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *("--assets", "4", "8", "--repeats", "1", "--baseline-assets", "3"),
            *("--always-assets", "3", "--degraded", "0.5"),
            *("--batch-assets", "5", "--json", str(figures), "--strict", "--duration-s", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=ROOT,
        env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "through the ingester's core" in out
    assert "per-asset vs batched scores of 3 assets: equal" in out
    assert "explain always vs at_risk scores of 3 assets: equal" in out
    assert "explained as configured" in out
    assert " expl " in out
    for phase in ("read s", "features s", "inference s", "write s", "decide s", "peak RSS MB"):
        assert phase in out
    assert "growth: time(N=8) / time(N=4)" in out
    assert "batched / per-asset" in out
    data = json.loads(figures.read_text())
    assert [(r["path"], r["n"]) for r in data["runs"]] == [
        ("batched", 4),
        ("batched", 8),
        ("per-asset", 3),
        ("always", 3),
    ]
    always = data["runs"][3]
    assert always["explained"] == always["scores"] == 6  # explain: always: every score
    assert all(0 <= r["explained"] <= r["scores"] for r in data["runs"])
    assert data["runs"][1]["scores"] == 16  # 8 engines x 2 models
    assert {"or", "regex"} == {row["match"] for row in data["read_sweep"]}
    assert all(row["assets_read"] == 8 for row in data["read_sweep"])  # the largest N
    assert data["same_scores"] is True
