"""The edge agent runs on small gateways: it never imports the cloud's heavy libraries."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"pandas", "numpy", "sklearn", "scipy", "statsmodels", "cloud", "models", "httpx"}
EDGE_PACKAGES = ["edge_agent", "prognos_contract"]


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_edge_source_never_names_a_heavy_library() -> None:
    """No edge or contract module imports pandas, numpy, scikit-learn or the cloud."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_top_levels(path) & FORBIDDEN)
        for package in EDGE_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if _imported_top_levels(path) & FORBIDDEN
    }
    assert offenders == {}


def test_importing_every_edge_module_loads_no_heavy_library() -> None:
    """Importing every edge module (and the CLI) leaves pandas, numpy and sklearn unloaded."""
    code = f"""
import importlib, json, pkgutil, sys
for package in {EDGE_PACKAGES!r}:
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    loaded = set(json.loads(out))
    assert loaded & FORBIDDEN == set()
