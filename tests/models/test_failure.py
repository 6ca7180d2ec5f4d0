"""Failure probability: contract, leak-free features, monotone horizons, trainers end to end."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from models import FailureClassifier, HorizonFailureModel, train_ai4i_failure, train_cmapss_failure
from models._ai4i import FEATURES, LEAKY_COLUMNS, features, load_ai4i
from models._base import TrainRequest
from models._failure import best_f1_threshold, binary_metrics

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
AI4I = DATASETS / "ai4i2020" / "ai4i2020.csv"
CMAPSS = DATASETS / "cmapss"

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One OpenMP thread: the CPU is shared, and oversubscribed threads spin."""
    with threadpool_limits(limits=1):
        yield


Fixture = tuple[FailureClassifier, pd.DataFrame, np.ndarray]


def _labelled(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    y = (x["a"] + 0.5 * x["b"] + 0.5 * rng.normal(size=n) > 1.2).astype(int).to_numpy()
    return x, y


def _degradation(n_units: int = 30, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Run-to-failure units whose 'wear' signal rises noisily towards failure."""
    rng = np.random.default_rng(seed)
    frames, lives, groups = [], [], []
    for unit in range(n_units):
        length = int(rng.integers(60, 140))
        rul = np.arange(length - 1, -1, -1, dtype=float)
        wear = 1.0 - rul / length + rng.normal(0, 0.08, length)
        frames.append(pd.DataFrame({"wear": wear, "noise": rng.normal(size=length)}))
        lives.append(rul)
        groups.append(np.full(length, unit))
    return pd.concat(frames, ignore_index=True), np.concatenate(lives), np.concatenate(groups)


@pytest.fixture(scope="module")
def classifier() -> Fixture:
    x, y = _labelled()
    return FailureClassifier(max_iter=40, cv=3).fit(x, y), x, y


@pytest.fixture(scope="module")
def horizon_model() -> HorizonFailureModel:
    x, rul, groups = _degradation()
    return HorizonFailureModel(horizons=(30, 10, 20, 50), score_horizon=20, max_iter=40).fit(
        x, rul, groups=groups
    )


# ----------------------------------------------------------------------------- estimator contract


@pytest.mark.parametrize("cls", [FailureClassifier, HorizonFailureModel])
def test_clone_is_idempotent(cls: type[FailureClassifier | HorizonFailureModel]) -> None:
    """Cloning keeps every parameter; cloning twice changes nothing."""
    model = cls(**cls._test_params()[0])
    once = clone(model)
    assert once.get_params() == model.get_params()
    assert clone(once).get_params() == once.get_params()


def test_init_stores_parameters_only() -> None:
    """An invalid parameter is stored by __init__ and rejected by fit, naming it."""
    model = FailureClassifier(learning_rate=-1.0)
    assert model.learning_rate == -1.0
    x, y = _labelled(100)
    with pytest.raises(ValueError, match="learning_rate"):
        model.fit(x, y)


def test_classifier_fit_returns_self_scores_finite_and_pickles(classifier: Fixture) -> None:
    """Fit returns self; scores are probabilities; a pickled copy scores identically."""
    model, x, y = classifier
    assert FailureClassifier(max_iter=10, cv=2).fit(x, y).__class__ is FailureClassifier
    fresh = FailureClassifier(max_iter=10, cv=2)
    assert fresh.fit(x, y) is fresh
    scores = model.score(x)
    assert np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    again = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes
    np.testing.assert_array_equal(again.score(x), scores)


def test_classifier_column_order_does_not_change_scores(classifier: Fixture) -> None:
    """Columns are matched by name, not position."""
    model, x, _ = classifier
    np.testing.assert_array_equal(model.score(x[["c", "a", "b"]]), model.score(x))


def test_classifier_ranks_better_than_chance(classifier: Fixture) -> None:
    """On a held-out labelled fixture, ROC-AUC is well above 0.5."""
    model, _, _ = classifier
    x_new, y_new = _labelled(400, seed=1)
    assert binary_metrics(y_new, model.score(x_new))["roc_auc"] > 0.8


def test_classifier_rejects_one_class_and_infinity() -> None:
    """A single-class target or an infinite feature is an error, not a silent fit."""
    x, y = _labelled(100)
    with pytest.raises(ValueError, match="both classes"):
        FailureClassifier(max_iter=5).fit(x, np.zeros(len(x)))
    with pytest.raises(ValueError, match="infinite"):
        FailureClassifier(max_iter=5).fit(x.assign(a=np.inf), y)


def test_grouped_calibration_folds_never_split_a_unit() -> None:
    """With groups, each calibration fold holds out whole units."""
    x, rul, groups = _degradation(12)
    model = FailureClassifier(max_iter=10, cv=3).fit(x, (rul <= 20).astype(int), groups=groups)
    for fit_rows, held_rows in model.calibrated_.cv:
        assert not set(groups[fit_rows]) & set(groups[held_rows])


def test_horizon_model_pickles_and_ignores_column_order(horizon_model: HorizonFailureModel) -> None:
    """The horizon model round-trips through pickle and matches columns by name."""
    x, _, _ = _degradation(3, seed=5)
    table = horizon_model.predict_proba(x)
    assert [float(c) for c in table.columns] == [10.0, 20.0, 30.0, 50.0]
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(horizon_model)).predict_proba(x), table)  # noqa: S301 - our own bytes
    pd.testing.assert_frame_equal(horizon_model.predict_proba(x[["noise", "wear"]]), table)
    pd.testing.assert_series_equal(horizon_model.score(x), table[20.0].rename("probability"))


# ----------------------------------------------------------------------------- monotone horizons


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-5, 5, allow_nan=False, allow_infinity=False),
            st.floats(-5, 5, allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_horizon_probabilities_are_monotone_before_the_guard(
    horizon_model: HorizonFailureModel, rows: list[tuple[float, float]]
) -> None:
    """P(within N) never decreases with N in the raw calibrated model: the guard is a no-op."""
    x = pd.DataFrame(rows, columns=["wear", "noise"])
    stacked = pd.concat([x.assign(horizon=h) for h in horizon_model.horizons_], ignore_index=True)
    raw = horizon_model.classifier_.predict_proba(stacked)[:, 1].reshape(
        len(horizon_model.horizons_), -1
    )
    assert (np.diff(raw, axis=0) >= 0).all()
    guarded = horizon_model.predict_proba(x).to_numpy()
    np.testing.assert_array_equal(guarded, raw.T)


def test_horizon_probabilities_track_the_truth(horizon_model: HorizonFailureModel) -> None:
    """On new units, P(within N) ranks the rows that do fail within N above the others."""
    x, rul, _ = _degradation(10, seed=7)
    table = horizon_model.predict_proba(x)
    for h in table.columns:
        assert binary_metrics((rul <= h).astype(int), table[h])["roc_auc"] > 0.85


def test_horizon_model_rejects_bad_horizons() -> None:
    """Horizons must be positive and distinct, and include the score horizon."""
    x, rul, _ = _degradation(3)
    with pytest.raises(ValueError, match="distinct"):
        HorizonFailureModel(horizons=(10, 10), score_horizon=10).fit(x, rul)
    with pytest.raises(ValueError, match="score_horizon"):
        HorizonFailureModel(horizons=(10, 20), score_horizon=15).fit(x, rul)


# ----------------------------------------------------------------------------- metrics


def test_threshold_is_the_f1_maximiser() -> None:
    """best_f1_threshold returns the threshold whose F1 no other candidate beats."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    best = best_f1_threshold(y, p)
    f1 = [f1_score(y, p >= t) for t in np.unique(p)]
    assert f1_score(y, p >= best) == pytest.approx(max(f1))


# ----------------------------------------------------------------------------- AI4I


def test_ai4i_features_never_use_ids_or_labels() -> None:
    """Features are the process inputs only; changing ids or labels changes no feature."""
    raw = load_ai4i(AI4I, max_units=500)
    assert raw.columns[0] == "udi"  # the byte-order mark is not part of the first name
    x = features(raw)
    assert tuple(x.columns) == FEATURES
    assert not set(x.columns) & set(LEAKY_COLUMNS)
    scrambled = raw.copy()
    for column in LEAKY_COLUMNS:
        scrambled[column] = scrambled[column].sample(frac=1.0, random_state=1).to_numpy()
    pd.testing.assert_frame_equal(features(scrambled), x)


def _png(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def test_ai4i_trainer_end_to_end_on_a_subset() -> None:
    """The trainer splits by product (disjoint), recomputes its figures and draws a calibration."""
    result = train_ai4i_failure(
        TrainRequest(
            data=(AI4I,),
            max_units=2500,
            params={"max_iter": 60, "folds": 3, "modes": ["hdf"]},
        )
    )
    train, test = set(result.split["train_units"]), set(result.split["test_units"])
    assert train
    assert test
    assert not train & test
    assert len(train) + len(test) == 2500
    assert not set(result.features) & set(LEAKY_COLUMNS)
    for key in ("roc_auc", "pr_auc", "f1", "brier", "threshold", "cv_roc_auc"):
        assert np.isfinite(result.metrics[key])
    assert result.metrics["roc_auc"] > 0.85
    assert 0 < result.metrics["threshold"] < 1
    assert result.data.rows == 2500
    assert _png(result.figures["calibration"])
    again = pickle.loads(pickle.dumps(result.estimator))  # noqa: S301 - our own bytes
    x = features(load_ai4i(AI4I, max_units=50))
    np.testing.assert_array_equal(again.score(x), result.estimator.score(x))


def test_cmapss_trainer_end_to_end_on_a_subset() -> None:
    """Engines never cross a split; horizons are monotone on the test engines."""
    request = TrainRequest(
        data=(
            CMAPSS / "train_FD001.txt",
            CMAPSS / "test_FD001.txt",
            CMAPSS / "RUL_FD001.txt",
        ),
        max_units=18,
        params={"max_iter": 25, "folds": 3},
    )
    result = train_cmapss_failure(request)
    assert not set(result.split["train_units"]) & set(result.split["test_units"])
    folds = [set(f) for f in result.split["cv_folds"]]
    assert sum(len(f) for f in folds) == len(set().union(*folds)) == 18
    assert result.metrics["test_engines"] == 18
    assert result.metrics["monotone_violations"] == 0
    for h in (10, 20, 30, 50):
        assert 0 <= result.metrics[f"h{h}_brier"] <= 1
    assert result.metrics["h50_roc_auc"] > 0.7
    assert _png(result.figures["calibration"])
    assert _png(result.figures["calibration_cv"])
