"""The data scientists' notebooks run top to bottom on a few engines, into a temporary registry.

Each notebook is executed with nbclient in a kernel of this interpreter (a kernelspec written to a
temporary folder, so the test never depends on which ``python3`` kernel a machine has installed).
Parameters are overridden papermill-style: a cell injected after the cell tagged ``parameters``.
A probe cell appended at the end prints the variables a test checks, as one JSON line.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from models import Registry, TrainRequest, phm08_score, train_cmapss_rul
from models._cmapss import as_telemetry, read_cmapss, read_rul

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
EXPLORE = NOTEBOOKS / "01_explore_and_retrain_rul.ipynb"
CHALLENGE = NOTEBOOKS / "02_challenger_vs_champion.ipynb"
CMAPSS = ROOT.parent / "shared" / "datasets" / "cmapss"
FILES = tuple(CMAPSS / f"{part}_FD001.txt" for part in ("train", "test", "RUL"))
KERNEL = "prognos-test-venv"
PROBE = "__probe__ "

# A few engines and small ensembles: each notebook runs in about 15 s on a shared 2-CPU machine.
UNITS = 10
SMALL = {"max_iter": 40, "n_folds": 3}
EVAL_UNITS = 12  # test engines scored by the challenger notebook: 6 decide, 6 report
WEAK = {"max_iter": 2, "n_folds": 3}  # two boosting steps: close to predicting the mean label

Explored = tuple[Path, Any, dict[str, Any]]
"""Notebook 1's registry, executed notebook and probed variables."""

pytestmark = pytest.mark.skipif(
    not all(f.is_file() for f in FILES), reason="C-MAPSS data set not present"
)


# ------------------------------------------------------------------------------------ helpers


def _kernel_manager(tmp: Path) -> AsyncKernelManager:
    """A kernel of this very interpreter, whatever kernels the machine has installed."""
    spec_dir = tmp / "kernels" / KERNEL
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Prognos venv (tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(tmp / "kernels")])
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def _read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def _code_cell(source: str) -> Any:
    return nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]


def _inject(nb: Any, params: Mapping[str, Any], probe: tuple[str, ...]) -> Any:
    """A copy of `nb` with `params` set after the parameters cell and a probe cell at the end."""
    nb = copy.deepcopy(nb)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    lines = [f"{key} = {value!r}" for key, value in params.items()]
    injected = _code_cell("# injected by the test\n" + "\n".join(lines))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(tagged[0] + 1, injected)
    names = ", ".join(f"{n!r}: {n}" for n in probe)
    nb.cells.append(
        _code_cell(
            f"import json as _json\nprint({PROBE!r} + _json.dumps({{{names}}}, default=str))"
        )
    )
    return nb


def run_notebook(
    path: Path, params: Mapping[str, Any], probe: tuple[str, ...], tmp: Path
) -> tuple[Any, dict[str, Any]]:
    """Execute `path` with `params`; return the executed notebook and the probed variables."""
    nb = _inject(_read(path), params, probe)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # Never the developer's registry or InfluxDB, whatever the notebook's parameters say.
        "PROGNOS_MODEL_REGISTRY": str(tmp / "default-registry"),
        "PROGNOS_INFLUX_URL": "",
        "OMP_NUM_THREADS": "1",
    }
    client = NotebookClient(
        nb,
        km=_kernel_manager(tmp),
        kernel_name=KERNEL,
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    # The client does not own a kernel manager it was given: ask it to shut the kernel down.
    client.execute(cleanup_kc=True, env=env)
    stdout = [
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stdout"
    ]
    probed = [line for text in stdout for line in text.splitlines() if line.startswith(PROBE)]
    assert len(probed) == 1, "the probe cell did not print"
    return nb, json.loads(probed[0][len(PROBE) :])


def images_in(nb: Any) -> int:
    """How many PNG images an executed notebook displays."""
    return sum(
        "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", [])
    )


def stderr_of(nb: Any) -> list[str]:
    """Every stderr stream of an executed notebook (warnings land there)."""
    return [
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stderr"
    ]


def decision_figures(model: Any, units: list[int]) -> dict[str, float]:
    """RMSE, PHM08 and 80 % interval coverage of `model` on test engines `units`, recomputed."""
    test = as_telemetry(read_cmapss(FILES[1], max_units=max(units)))
    truth = read_rul(FILES[2])
    true, pred, inside = [], [], []
    for unit in units:
        score = model.predict_window(test[test["unit"] == unit], 0.8)
        true.append(truth[unit - 1])
        pred.append(score["rul"])
        inside.append(score["rul_lo"] <= truth[unit - 1] <= score["rul_hi"])
    d = np.asarray(pred) - np.asarray(true)
    return {
        "rmse": float(np.sqrt(np.mean(d**2))),
        "phm08": phm08_score(true, pred),
        "interval_coverage": float(np.mean(inside)),
    }


# ------------------------------------------------------------------------------------ notebook 1


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory) -> Explored:
    """Notebook 1 run once on a few engines into a fresh registry (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("nb1")
    registry = tmp / "registry"
    nb, probed = run_notebook(
        EXPLORE,
        {"REGISTRY": str(registry), "MAX_UNITS": UNITS, "PARAMS": SMALL},
        ("metrics", "version", "registry_root"),
        tmp,
    )
    return registry, nb, probed


def test_explore_notebook_retrains_and_stores_a_champion(explored: Explored) -> None:
    """Notebook 1 stores the retrained model as v0001, and the first version is the champion."""
    registry, _nb, probed = explored
    assert Path(probed["registry_root"]) == registry
    assert probed["version"] == "v0001"
    reg = Registry(registry)
    assert reg.champion("cmapss_rul") == "v0001"
    meta = reg.metadata("cmapss_rul")
    assert meta["request"]["max_units"] == UNITS
    assert meta["metrics"] == pytest.approx(probed["metrics"])


def test_explore_notebook_metrics_are_finite(explored: Explored) -> None:
    """The metrics cell gave finite RMSE, PHM08 and coverage on the test engines of the subset."""
    _registry, nb, probed = explored
    metrics = probed["metrics"]
    for key in ("rmse", "phm08", "interval_coverage", "interval_width", "cv_rmse"):
        assert math.isfinite(metrics[key]), key
    assert metrics["rmse"] > 0
    assert 0.0 <= metrics["interval_coverage"] <= 1.0
    assert metrics["n_test_units"] == UNITS
    tagged = [c for c in nb.cells if "metrics" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert tagged[0].outputs, "the metrics cell shows nothing"


def test_explore_notebook_runs_clean(explored: Explored) -> None:
    """No warning on stderr, every plot shown, and the InfluxDB section says it was skipped."""
    _registry, nb, _probed = explored
    assert stderr_of(nb) == []
    assert images_in(nb) == 4  # two exploration plots and the trainer's two figures
    text = "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))
    assert "InfluxDB section skipped" in text


# ------------------------------------------------------------------------------------ notebook 2


def _challenge(
    explored: Explored, tmp: Path, challenger: Mapping[str, Any]
) -> tuple[Registry, Any, dict[str, Any]]:
    registry = tmp / "registry"
    shutil.copytree(explored[0], registry)
    nb, probed = run_notebook(
        CHALLENGE,
        {
            "REGISTRY": str(registry),
            "CHALLENGER_PARAMS": dict(challenger),
            "EVAL_UNITS": EVAL_UNITS,
        },
        ("decision",),
        tmp,
    )
    return Registry(registry), nb, probed["decision"]


def _check_decision(reg: Registry, decision: Mapping[str, Any]) -> None:
    """The registry is in the promised state, and the decision follows from recomputed figures."""
    before, challenger = decision["champion_before"], decision["challenger"]
    assert challenger in reg.versions("cmapss_rul")
    assert challenger != before
    units = decision["decision_units"]
    assert units == [u for u in range(1, EVAL_UNITS + 1) if u % 2 == 1]
    old = decision_figures(reg.load("cmapss_rul", before).estimator, units)
    new = decision_figures(reg.load("cmapss_rul", challenger).estimator, units)
    for key in old:
        assert decision["figures"]["champion"][key] == pytest.approx(old[key], rel=1e-9)
        assert decision["figures"]["challenger"][key] == pytest.approx(new[key], rel=1e-9)
    # The rule the notebook states, with its default margins.
    better = (
        new["rmse"] <= 0.98 * old["rmse"]
        and new["phm08"] <= old["phm08"]
        and new["interval_coverage"] >= old["interval_coverage"] - 0.10
    )
    assert decision["promote"] is better
    assert reg.champion("cmapss_rul") == (challenger if better else before)
    assert decision["champion_after"] == reg.champion("cmapss_rul")


def test_weak_challenger_is_stored_but_not_promoted(explored: Explored, tmp_path: Path) -> None:
    """A two-step ensemble against the notebook-1 champion: kept as a version, never promoted."""
    reg, nb, decision = _challenge(explored, tmp_path, WEAK)
    _check_decision(reg, decision)
    assert decision["promote"] is False
    assert reg.champion("cmapss_rul") == "v0001"
    assert reg.versions("cmapss_rul") == ["v0001", "v0002"]
    assert stderr_of(nb) == []
    assert images_in(nb) == 1


def test_better_challenger_replaces_a_weak_champion(explored: Explored, tmp_path: Path) -> None:
    """Against a weak champion, the notebook's challenger wins on every rule and is promoted."""
    reg_root = tmp_path / "seed"
    shutil.copytree(explored[0], reg_root)
    seeded = Registry(reg_root)
    request = TrainRequest(data=FILES, max_units=UNITS, params=WEAK)
    weak = seeded.save(
        train_cmapss_rul(request),
        request={"data": [str(f) for f in FILES], "seed": 0, "max_units": UNITS, "params": WEAK},
    )
    seeded.promote("cmapss_rul", weak)
    reg, _nb, decision = _challenge((reg_root, None, {}), tmp_path / "run", SMALL)
    _check_decision(reg, decision)
    assert decision["champion_before"] == weak
    assert decision["promote"] is True


# ------------------------------------------------------------------------------------ committed


@pytest.mark.parametrize("path", [EXPLORE, CHALLENGE], ids=lambda p: p.stem)
def test_committed_notebooks_have_no_outputs(path: Path) -> None:
    """Notebooks are committed stripped: no outputs, no execution counts."""
    nb = _read(path)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None
