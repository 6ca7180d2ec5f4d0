"""The UCI hydraulic rig: its loader, segments, hold-out, cooler replay and the cooler model."""

from __future__ import annotations

import doctest
import math
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from models import _hydraulic, explain
from models._base import TrainRequest, TrainResult
from models._cli import TRAINERS
from models._hydraulic import (
    CONDITIONS,
    COOLER_STAGES,
    HOLDOUT_EVERY,
    SIGNALS,
    cooler_replay,
    load_hydraulic,
    segments,
    train_hydraulic_cooler,
)

HYDRAULIC = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "hydraulic"
FILES = tuple(HYDRAULIC / name for name in ("profile.txt", *(f"{s}.txt" for s in SIGNALS)))
FAST = {"components": [], "max_iter": 40, "folds": 3, "grid": [{"max_leaf_nodes": 7}]}
"""A cheap request: one grid point, no extra components (the protocol is the same)."""


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One OpenMP thread: the CPU is shared, and oversubscribed threads spin."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load_hydraulic(HYDRAULIC)


@pytest.fixture(scope="module")
def result() -> TrainResult:
    return train_hydraulic_cooler(TrainRequest(data=FILES, params=FAST))


def _write_rig(folder: Path, rows: int = 3) -> None:
    """A tiny well-formed copy of the data set: `rows` cycles, 2 samples per sensor."""
    folder.mkdir(parents=True, exist_ok=True)
    profile = "\n".join("3\t100\t0\t130\t0" for _ in range(rows)) + "\n"
    (folder / "profile.txt").write_text(profile)
    for sensor in SIGNALS:
        (folder / f"{sensor}.txt").write_text("1.0\t3.0\n" * rows)


# ----------------------------------------------------------------------------- the loader


def test_the_examples_in_its_docstrings_pass() -> None:
    result = doctest.testmod(_hydraulic)
    assert result.attempted > 0
    assert result.failed == 0


def test_one_row_per_cycle_with_the_profiles_signal_names(frame: pd.DataFrame) -> None:
    assert frame.shape == (2205, len(SIGNALS) + len(CONDITIONS) + 2)
    assert list(frame.columns) == [*SIGNALS.values(), *CONDITIONS, "segment", "holdout"]
    assert frame.index.tolist() == list(range(2205))
    assert set(frame["cooler_pct"]) == set(COOLER_STAGES)
    assert frame["stable"].dtype == bool
    assert frame["holdout"].dtype == bool
    assert np.isfinite(frame[list(SIGNALS.values())].to_numpy()).all()


def test_a_signal_is_the_mean_of_its_sensors_row(frame: pd.DataFrame) -> None:
    """Row 17 of CE.txt, averaged over its 60 samples, is cycle 17's cooling efficiency."""
    line = (HYDRAULIC / "CE.txt").read_text().splitlines()[17]
    values = [float(v) for v in line.split()]
    assert frame.loc[17, "cooling_efficiency_pct"] == pytest.approx(sum(values) / len(values))


def test_segments_are_runs_of_identical_conditions(frame: pd.DataFrame) -> None:
    seg = frame["segment"].to_numpy()
    assert seg[0] == 0
    assert set(np.diff(seg)) <= {0, 1}
    assert frame["segment"].nunique() == 194
    conditions = list(CONDITIONS[:4])
    first = frame.groupby("segment")[conditions].transform("first")
    assert (frame[conditions] == first).all().all()
    firsts = frame.groupby("segment")[conditions].first().to_numpy()
    assert (np.diff(firsts, axis=0) != 0).any(axis=1).all()


def test_segments_count_a_return_to_earlier_conditions_as_a_new_segment() -> None:
    small = pd.DataFrame(
        [[100, 100, 0, 130], [100, 100, 0, 130], [20, 100, 0, 130], [100, 100, 0, 130]],
        columns=list(CONDITIONS[:4]),
    )
    assert segments(small).tolist() == [0, 0, 1, 2]


def test_every_fourth_segment_is_held_out(frame: pd.DataFrame) -> None:
    held = frame["segment"] % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    assert (frame["holdout"] == held).all()
    assert 0.15 < frame["holdout"].mean() < 0.19
    # Each cooler stage has held-out cycles to replay and to evaluate on.
    assert (frame[frame["holdout"]].groupby("cooler_pct").size() > 100).all()


def test_a_small_well_formed_copy_loads(tmp_path: Path) -> None:
    """The broken copies below fail because of their one defect, not the copy itself."""
    _write_rig(tmp_path)
    small = load_hydraulic(tmp_path)
    assert len(small) == 3
    assert (small["temp_ts1_c"] == 2.0).all()


def test_a_missing_sensor_file_is_an_error_naming_it(tmp_path: Path) -> None:
    _write_rig(tmp_path)
    (tmp_path / "CE.txt").unlink()
    with pytest.raises(ValueError, match=r"CE\.txt: missing"):
        load_hydraulic(tmp_path)


def test_a_missing_profile_is_an_error_naming_it(tmp_path: Path) -> None:
    _write_rig(tmp_path)
    (tmp_path / "profile.txt").unlink()
    with pytest.raises(ValueError, match=r"profile\.txt: missing"):
        load_hydraulic(tmp_path)


def test_a_sensor_file_with_the_wrong_row_count_is_an_error_naming_it(tmp_path: Path) -> None:
    _write_rig(tmp_path)
    (tmp_path / "FS2.txt").write_text("1.0\t3.0\n" * 2)
    with pytest.raises(ValueError, match=r"FS2\.txt: 2 rows, profile\.txt has 3"):
        load_hydraulic(tmp_path)


def test_a_profile_of_the_wrong_width_is_an_error_naming_it(tmp_path: Path) -> None:
    _write_rig(tmp_path)
    (tmp_path / "profile.txt").write_text("3\t100\t0\t130\n" * 3)
    with pytest.raises(ValueError, match=r"profile\.txt: 4 columns, expected 5"):
        load_hydraulic(tmp_path)


def test_a_file_that_is_not_numbers_is_an_error_naming_it(tmp_path: Path) -> None:
    _write_rig(tmp_path)
    (tmp_path / "VS1.txt").write_text("1.0\tn/a\n" * 3)
    with pytest.raises(ValueError, match=r"VS1\.txt: not a tab-separated matrix"):
        load_hydraulic(tmp_path)


# ----------------------------------------------------------------------------- the replay


def test_the_full_replay_is_every_held_out_cycle_from_healthy_to_failed(
    frame: pd.DataFrame,
) -> None:
    replay = cooler_replay(frame, None)
    assert replay["holdout"].all()
    assert sorted(replay.index) == sorted(frame.index[frame["holdout"]])
    stages = replay["cooler_pct"].to_numpy()
    assert [stages[0], stages[-1]] == [COOLER_STAGES[0], COOLER_STAGES[-1]]
    assert (np.diff(stages) <= 0).all()  # 100, then 20, then 3: never back
    assert replay.groupby("cooler_pct").size().to_dict() == {3.0: 124, 20.0: 124, 100.0: 124}


def test_a_short_replay_takes_per_stage_held_out_cycles_spread_over_the_stage(
    frame: pd.DataFrame,
) -> None:
    replay = cooler_replay(frame, 10)
    assert len(replay) == 30
    assert replay.index.is_unique
    assert replay["holdout"].all()
    assert replay["cooler_pct"].tolist() == [level for level in COOLER_STAGES for _ in range(10)]
    # Spread: the picks of a stage cover several of its valve / pump / accumulator settings.
    assert (replay.groupby("cooler_pct")["segment"].nunique() >= 5).all()


def test_an_offset_replays_other_cycles_of_the_same_stages(frame: pd.DataFrame) -> None:
    first, second = cooler_replay(frame, 10), cooler_replay(frame, 10, offset=1)
    assert set(first.index).isdisjoint(second.index)
    assert second["holdout"].all()
    assert second["cooler_pct"].tolist() == first["cooler_pct"].tolist()


def test_a_replay_longer_than_a_stage_takes_the_whole_stage(frame: pd.DataFrame) -> None:
    assert cooler_replay(frame, 500).index.tolist() == cooler_replay(frame, None).index.tolist()


# ----------------------------------------------------------------------------- the trainer


def test_the_cli_target_reads_the_profile_and_every_sensor_file() -> None:
    target = TRAINERS["hydraulic_cooler"]
    assert target.trainer == "models._hydraulic:train_hydraulic_cooler"
    assert target.data == FILES
    assert all(p.is_file() for p in target.data)


def test_the_model_reads_the_ten_signals_the_scorer_feeds_it(result: TrainResult) -> None:
    assert result.name == "hydraulic_cooler"
    assert result.kind == "failure_probability"
    assert result.features == tuple(SIGNALS.values())
    assert [str(n) for n in result.estimator.feature_names_in_] == list(SIGNALS.values())


def test_it_recognises_a_degraded_cooler_on_held_out_cycles(result: TrainResult) -> None:
    m = result.metrics
    assert all(math.isfinite(v) for v in m.values())
    assert m["roc_auc"] > 0.95
    assert m["brier"] < 0.05
    assert m["f1"] > 0.9
    assert m["accuracy"] > 0.9
    assert 0.0 < m["threshold"] < 1.0
    assert m["stage_100_flagged"] < 0.05
    assert m["stage_20_flagged"] > 0.95
    assert m["stage_3_flagged"] > 0.95
    assert m["stage_100_mean_p"] < 0.1
    assert min(m["stage_20_mean_p"], m["stage_3_mean_p"]) > 0.9


def test_the_baseline_is_measured_on_the_same_held_out_cycles(result: TrainResult) -> None:
    m = result.metrics
    for key in ("roc_auc", "accuracy", "f1", "precision", "recall", "ce_cut_pct"):
        assert math.isfinite(m[f"baseline_{key}"])
    # The cut lies between the healthy and the degraded stages' cooling efficiency (about 23-48 %).
    assert 20.0 < m["baseline_ce_cut_pct"] < 50.0
    assert "cooling-efficiency cut" in result.notes
    assert "levels the experimenters set" in result.notes


def test_no_held_out_cycle_is_in_training(result: TrainResult, frame: pd.DataFrame) -> None:
    """The split names every cycle; the training side excludes every held-out one."""
    split = result.split
    held = set(frame.index[frame["holdout"]].tolist())
    train, test = set(split["train_cycles"]), set(split["test_cycles"])
    assert test == held
    assert train.isdisjoint(held)
    assert train | test == set(frame.index)
    assert set(split["train_units"]).isdisjoint(split["test_units"])
    assert all(s % HOLDOUT_EVERY != HOLDOUT_EVERY - 1 for s in split["train_units"])
    # Cross-validation saw only training segments, each in exactly one fold.
    folds = [s for fold in split["cv_folds"] for s in fold]
    assert sorted(folds) == sorted(split["train_units"])
    assert result.metrics["n"] == len(held)
    assert result.metrics["cv_n"] == len(train)


def test_the_stored_model_scores_and_explains_one_telemetry_row(
    result: TrainResult, frame: pd.DataFrame
) -> None:
    """As the scorer's failure kind does: the latest row's signals, explained by its background."""
    failed = frame[frame["holdout"] & (frame["cooler_pct"] == COOLER_STAGES[-1])].iloc[0]
    row = pd.DataFrame([{n: float(failed[n]) for n in result.estimator.feature_names_in_}])
    model = pickle.loads(pickle.dumps(result.estimator))  # noqa: S301 - our own bytes
    p = model.predict_proba(row)
    assert p.shape == (1, 2)
    assert p[0, 1] == result.estimator.predict_proba(row)[0, 1]
    assert p[0, 1] > 0.5
    why = explain(model, row, None, top_k=3)
    assert why.prediction == pytest.approx(p[0, 1])
    assert len(why.contributions) == 3


def test_max_units_keeps_the_first_cycles_of_every_segment(frame: pd.DataFrame) -> None:
    """A smaller data set with every condition, and the same hold-out rule."""
    small = train_hydraulic_cooler(TrainRequest(data=FILES, max_units=3, params=FAST))
    kept = frame[frame.groupby("segment").cumcount() < 3]
    assert small.data.rows == len(kept)
    assert sorted(small.split["test_cycles"]) == sorted(kept.index[kept["holdout"]])
    assert set(small.split["train_units"]) | set(small.split["test_units"]) == set(frame["segment"])
    assert small.metrics["roc_auc"] > 0.9


def test_another_components_figures_come_from_the_same_protocol() -> None:
    small = train_hydraulic_cooler(
        TrainRequest(data=FILES, max_units=3, params={**FAST, "components": ["pump"]})
    )
    for key in ("pump_roc_auc", "pump_brier", "pump_accuracy", "pump_cv_roc_auc"):
        assert math.isfinite(small.metrics[key])
    assert small.params["components"] == ["pump"]
    assert small.metrics["pump_n"] == small.metrics["n"]


def test_an_unknown_component_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"params\.components: unknown \['filter'\]"):
        train_hydraulic_cooler(TrainRequest(data=FILES, params={"components": ["filter"]}))


def test_data_without_the_profile_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"no profile\.txt among"):
        train_hydraulic_cooler(TrainRequest(data=FILES[1:], params=FAST))
