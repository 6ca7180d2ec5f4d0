"""The issue's must-show figures on the full C-MAPSS FD001 data, through `prognos train` (slow)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from cloud._cli import main

TRAIN = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cmapss" / "train_FD001.txt"


@pytest.mark.slow
@pytest.mark.skipif(not TRAIN.exists(), reason="C-MAPSS data set not present")
def test_fd001_meets_the_issue_targets(tmp_path: Path) -> None:
    """FD001 test set: RMSE <= 13.5, PHM08 <= 350, 80 % intervals cover 70-90 % of engines."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["train", "cmapss_rul", "--registry", str(tmp_path)])
    assert code == 0
    metrics = json.loads(buf.getvalue())["metrics"]
    assert metrics["n_test_units"] == 100
    assert metrics["rmse"] <= 13.5
    assert metrics["phm08"] <= 350
    assert 0.70 <= metrics["interval_coverage"] <= 0.90
