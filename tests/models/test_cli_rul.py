"""`prognos train / evaluate / models` end to end on a small C-MAPSS subset, in a temp registry."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
from pathlib import Path

import pytest

from cloud._cli import main
from models import Registry, RulPipeline
from models._cli import TRAINERS, Target, trainer_sources

CMAPSS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "cmapss"
TRAIN = CMAPSS / "train_FD001.txt"
pytestmark = pytest.mark.skipif(not TRAIN.exists(), reason="C-MAPSS data set not present")

SMALL = [
    "--max-units",
    "12",
    "--param",
    "max_iter=40",
    "--param",
    "n_folds=3",
    "--param",
    "window=30",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """One small training run through the CLI, promoted: shared by the checks below."""
    root = tmp_path_factory.mktemp("registry")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(
            [
                "train",
                "cmapss_rul",
                "--data",
                str(TRAIN),
                "--registry",
                str(root),
                *SMALL,
                "--promote",
            ]
        )
    assert code == 0
    return root, json.loads(buf.getvalue())


def test_train_stores_a_champion_with_its_metrics(trained: tuple[Path, dict[str, object]]) -> None:
    root, printed = trained
    assert printed["version"] == "v0001"
    loaded = Registry(root).load("cmapss_rul")
    assert isinstance(loaded.estimator, RulPipeline)
    meta = loaded.metadata
    assert set(meta["metrics"]) >= {"rmse", "phm08", "interval_coverage", "cv_rmse"}
    assert meta["metrics"] == printed["metrics"]
    assert meta["request"]["max_units"] == 12
    assert len(meta["data"]["sha256"]) == 64
    assert [p.rsplit("/", 1)[-1] for p in meta["data"]["paths"]] == [
        "train_FD001.txt",
        "test_FD001.txt",
        "RUL_FD001.txt",
    ]
    assert {"rul_vs_truth.png", "errors.png"} <= {p.name for p in loaded.path.iterdir()}
    assert (loaded.path / "rul_vs_truth.png").read_bytes().startswith(b"\x89PNG")


def test_no_engine_is_on_both_sides_of_any_split(trained: tuple[Path, dict[str, object]]) -> None:
    """Train vs test are different files; within training, every engine is in exactly one fold."""
    root, _ = trained
    split = Registry(root).metadata("cmapss_rul")["split"]
    assert split["train_file"] != split["test_file"]
    assert split["train_units"] == list(range(1, 13))
    assert split["test_units"] == list(range(1, 13))
    folds = split["cv_folds"]
    assert len(folds) == 3
    held = [u for fold in folds for u in fold]
    assert sorted(held) == split["train_units"]  # each engine held out once, never twice
    for i, a in enumerate(folds):
        for b in folds[i + 1 :]:
            assert not set(a) & set(b)


def test_evaluate_recomputes_the_stored_metrics_from_raw_data(
    trained: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = trained
    assert main(["evaluate", "cmapss_rul", "--registry", str(root)]) == 0
    out = capsys.readouterr().out
    assert "rmse" in out
    assert "NO" not in out


def test_evaluate_fails_when_a_stored_metric_does_not_reproduce(
    trained: tuple[Path, dict[str, object]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = trained
    copy = tmp_path / "reg"
    src = root / "cmapss_rul" / "v0001"
    dst = copy / "cmapss_rul" / "v0001"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    meta = json.loads((dst / "metadata.json").read_text())
    meta["metrics"]["rmse"] += 1.0  # a figure nobody recomputed
    (dst / "metadata.json").write_text(json.dumps(meta))
    assert main(["evaluate", "cmapss_rul", "--version", "v0001", "--registry", str(copy)]) == 1
    assert "NO" in capsys.readouterr().out


def test_models_list_marks_the_champion(
    trained: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = trained
    assert main(["models", "--registry", str(root), "list"]) == 0
    assert "* cmapss_rul" in capsys.readouterr().out
    assert main(["models", "--registry", str(root), "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["champion"] is True


def test_a_trainer_that_is_not_installed_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(TRAINERS, "ghost", Target("models._ghost:train", (TRAIN,)))
    assert main(["train", "ghost", "--registry", str(tmp_path)]) == 2
    assert "models._ghost is not available" in capsys.readouterr().err


def test_missing_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "train_FD009.txt"
    assert main(["train", "cmapss_rul", "--data", str(missing), "--registry", str(tmp_path)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_every_target_names_an_importable_trainer_or_a_missing_module() -> None:
    """The TRAINERS table is wired by import strings; each resolves once its module exists."""
    for name, target in TRAINERS.items():
        module, _, attr = target.trainer.partition(":")
        if importlib.util.find_spec(module) is None:
            continue
        assert callable(getattr(importlib.import_module(module), attr)), name


def test_if_missing_skips_training_when_the_champion_is_up_to_date(
    trained: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Set-up scripts can call train --if-missing on every run; it trains only when needed."""
    root, _ = trained
    args = ["train", "cmapss_rul", "--data", str(TRAIN), "--registry", str(root), *SMALL]
    assert main([*args, "--promote", "--if-missing"]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert Registry(root).versions("cmapss_rul") == ["v0001"]


def test_a_champion_goes_stale_only_with_its_own_trainer_code() -> None:
    """--if-missing fingerprints the trainer and the models modules it imports, nothing else."""
    rul = {p.name for p in trainer_sources(TRAINERS["cmapss_rul"].trainer)}
    wear = {p.name for p in trainer_sources(TRAINERS["tool_wear"].trainer)}
    assert {"_train_rul.py", "_rul.py", "_features.py", "_cmapss.py", "_base.py"} <= rul
    assert {"_consumable.py", "_ai4i.py", "_base.py"} <= wear
    assert "_rul.py" not in wear
    assert "_consumable.py" not in rul
    assert "_cli.py" not in rul | wear  # the CLI and the report don't make a model
    # The C-MAPSS names come from the contract through its __init__: their module, not the contract.
    contract = {
        p.name for p in trainer_sources(TRAINERS["cmapss_rul"].trainer) if "contract" in str(p)
    }
    assert contract == {"_cmapss.py"}


def test_report_shows_the_champions_figures_and_plots(
    trained: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    """REPORT.md is written from the stored metadata: the champion's numbers, its PNGs linked."""
    root, printed = trained
    out = tmp_path / "REPORT.md"
    assert main(["models", "--registry", str(root), "report", "--out", str(out)]) == 0
    text = out.read_text()
    metrics = printed["metrics"]
    assert isinstance(metrics, dict)
    assert f"| rmse | {metrics['rmse']:.4g} |" in text
    assert "](report/cmapss_rul_rul_vs_truth.png)" in text
    assert (tmp_path / "report" / "cmapss_rul_rul_vs_truth.png").read_bytes().startswith(b"\x89PNG")
