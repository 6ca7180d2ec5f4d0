"""`pip install ".[edge]"` into a clean virtual environment gives a working gateway agent."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"pandas", "numpy", "scikit-learn", "scipy", "statsmodels", "httpx"}


@pytest.mark.slow
def test_edge_extra_installs_a_working_agent_without_heavy_libraries(tmp_path: Path) -> None:
    """A fresh venv with only the `edge` extra runs `prognos-edge --help`, without numpy."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{ROOT}[edge]"],
        check=True,
        cwd=tmp_path,
    )
    help_text = subprocess.run(
        [env_dir / "bin" / "prognos-edge", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "usage: prognos-edge" in help_text
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout
    installed = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert "prognos" in installed
    assert installed & HEAVY == set()
