"""The model registry: versions, the champion pointer, and loud failures on broken artifacts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor

from models import DataSource, Registry, RegistryError, TrainResult


def _result(value: float = 42.0, name: str = "cmapss_rul") -> TrainResult:
    estimator = DummyRegressor(strategy="constant", constant=value).fit([[0.0]], [value])
    return TrainResult(
        name=name,
        kind="rul",
        estimator=estimator,
        features=("a__mean_w30",),
        params={"max_iter": np.int64(300), "window": 30},
        metrics={"rmse": np.float64(12.5)},
        data=DataSource(paths=("train_FD001.txt",), sha256="ab" * 32, rows=10),
        split={"train_units": [1, 2], "test_units": [3]},
        figures={"rul_vs_truth": b"\x89PNG fake"},
        notes="test",
    )


def test_save_load_round_trip_with_metadata(tmp_path: Path) -> None:
    """What was saved comes back: estimator, features, fingerprint, params, metrics, split, time."""
    reg = Registry(tmp_path)
    created = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    version = reg.save(_result(), request={"seed": 3}, now=created)
    assert version == "v0001"
    loaded = reg.load("cmapss_rul", version)
    assert loaded.estimator.predict([[1.0]])[0] == 42.0
    meta = loaded.metadata
    assert meta["features"] == ["a__mean_w30"]
    assert meta["data"]["sha256"] == "ab" * 32
    assert meta["params"]["max_iter"] == 300
    assert meta["metrics"]["rmse"] == 12.5
    assert meta["split"]["test_units"] == [3]
    assert meta["created_at"] == "2026-11-23T12:00:00+00:00"
    assert meta["request"] == {"seed": 3}
    assert meta["libraries"]["scikit-learn"] != "absent"
    assert (loaded.path / "rul_vs_truth.png").read_bytes() == b"\x89PNG fake"


def test_versions_increase_and_the_champion_is_what_load_returns(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    first = reg.save(_result(1.0))
    second = reg.save(_result(2.0))
    assert (first, second) == ("v0001", "v0002")
    with pytest.raises(RegistryError, match="no champion"):
        reg.load("cmapss_rul")
    reg.promote("cmapss_rul", first)
    assert reg.load("cmapss_rul").estimator.predict([[0.0]])[0] == 1.0
    reg.promote("cmapss_rul", second)
    assert reg.load("cmapss_rul").version == "v0002"
    rows = reg.list()
    assert [(r["version"], r["champion"]) for r in rows] == [("v0001", False), ("v0002", True)]
    assert not list((tmp_path / "cmapss_rul").glob(".*"))  # no staging or temp files left


def test_one_champion_per_name(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.promote("ai4i_failure", reg.save(_result(name="ai4i_failure")))
    reg.promote("cmapss_rul", reg.save(_result()))
    assert {r["name"] for r in reg.list() if r["champion"]} == {"ai4i_failure", "cmapss_rul"}


def test_a_corrupt_artifact_is_an_error_naming_its_path(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    version = reg.save(_result())
    artifact = tmp_path / "cmapss_rul" / version / "model.joblib"
    artifact.write_bytes(artifact.read_bytes()[:-10])
    with pytest.raises(RegistryError, match=re.escape(str(artifact))):
        reg.load("cmapss_rul", version)


def test_missing_files_are_errors_naming_their_paths(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    version = reg.save(_result())
    with pytest.raises(RegistryError, match="v0009"):
        reg.load("cmapss_rul", "v0009")
    (tmp_path / "cmapss_rul" / version / "model.joblib").unlink()
    with pytest.raises(RegistryError, match=re.escape("model.joblib")):
        reg.load("cmapss_rul", version)
    meta = tmp_path / "cmapss_rul" / version / "metadata.json"
    meta.write_text("{not json")
    with pytest.raises(RegistryError, match=re.escape(str(meta))):
        reg.load("cmapss_rul", version)
    with pytest.raises(RegistryError, match=re.escape(str(meta))):
        reg.promote("cmapss_rul", version)  # never point the scorer at a broken version
    assert reg.list()[0]["error"].startswith(str(meta))


def test_a_garbled_champion_pointer_is_an_error(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.save(_result())
    (tmp_path / "cmapss_rul" / "CHAMPION").write_text("../../etc\n")
    with pytest.raises(RegistryError, match="CHAMPION"):
        reg.load("cmapss_rul")


def test_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="invalid model name"):
        Registry(tmp_path).save(_result(name="../escape"))


def test_the_root_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROGNOS_MODEL_REGISTRY", str(tmp_path / "reg"))
    reg = Registry()
    reg.save(_result())
    assert json.loads((tmp_path / "reg" / "cmapss_rul" / "v0001" / "metadata.json").read_text())
