"""The RUL estimators: the estimator contract, conformal intervals, the scorer's window path."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from models import ConditionNormalizer, FeatureSpec, RulPipeline, RulRegressor, phm08_score
from models._rul import conformal_quantile, rmse, signed_conformal_bounds

FAST = RulRegressor._test_params()[0]


def _fleet(n_units: int, *, seed: int, conditions: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic run-to-failure units: a wear signal drifts up faster as the end nears."""
    rng = np.random.default_rng(seed)
    rows = []
    for unit in range(1, n_units + 1):
        life = int(rng.integers(60, 140))
        cycle = np.arange(1, life + 1)
        wear = np.exp((cycle - life) / 25.0)
        cond = rng.integers(0, conditions, size=life)
        rows.append(
            pd.DataFrame(
                {
                    "unit": unit,
                    "cycle": cycle,
                    "alt": cond * 10.0 + rng.normal(0, 0.01, life),
                    "temp": 500 + 40 * cond + 5 * wear + rng.normal(0, 0.3, life),
                    "vib": 2 + 0.5 * cond + wear + rng.normal(0, 0.1, life),
                    "const": 7.0,
                    "rul": np.minimum(life - cycle, 125).astype(float),
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    frame.index = pd.DatetimeIndex(
        pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(frame["cycle"], unit="h")
    )
    return frame.drop(columns="rul"), frame["rul"].to_numpy()


def _tabular(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400), "c": rng.random(400)})
    y = np.clip(60 + 25 * x["a"].to_numpy() + rng.normal(0, 3, 400), 0, 125)
    return x, y, np.arange(400) // 8


Fitted = tuple[RulRegressor, pd.DataFrame, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def fitted() -> Fitted:
    """One fitted regressor shared by the read-only checks (fits are the slow part)."""
    x, y, g = _tabular()
    return RulRegressor(**FAST).fit(x, y, groups=g), x, y, g


# ------------------------------------------------------------------ contract (STYLE.md rule 11)


def test_init_only_stores_parameters_and_clone_is_idempotent() -> None:
    """clone() gives equal parameters and no fitted state, twice over."""
    model = RulRegressor(**FAST, coverage=0.7)
    assert model.get_params()["coverage"] == 0.7
    twice = clone(clone(model))
    assert twice.get_params() == model.get_params()
    assert not [k for k in vars(twice) if k.endswith("_")]


def test_fit_returns_self_and_sets_fitted_attributes() -> None:
    x, y, g = _tabular()
    model = RulRegressor(**FAST)
    assert model.fit(x, y, groups=g) is model
    assert len(model.estimators_) == FAST["n_folds"]
    assert model.residuals_.shape == (len(y),)
    assert np.isfinite(model.oof_rmse_)


def test_predictions_are_finite_and_within_the_cap(fitted: Fitted) -> None:
    model, x, _y, _g = fitted
    pred = model.predict(x)
    assert np.isfinite(pred).all()
    assert (pred >= 0).all()
    assert (pred <= 125).all()


def test_pickling_round_trips_predictions(fitted: Fitted) -> None:
    model, x, _y, _g = fitted
    again = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    np.testing.assert_array_equal(again.predict_interval(x), model.predict_interval(x))


def test_column_order_does_not_change_predictions(fitted: Fitted) -> None:
    model, x, _y, _g = fitted
    shuffled = x[["c", "a", "b"]]
    np.testing.assert_array_equal(model.predict(shuffled), model.predict(x))


def test_folds_never_split_a_unit(fitted: Fitted) -> None:
    """Every unit is held out by exactly one fold: no unit on both sides of a CV split."""
    model, _x, _y, g = fitted
    held = np.concatenate(model.folds_)
    assert sorted(held) == sorted(np.unique(g))
    assert len(held) == len(set(held))


def test_fit_rejects_bad_parameters_and_inputs() -> None:
    x, y, g = _tabular()
    with pytest.raises(ValueError, match="coverage"):
        RulRegressor(coverage=1.5).fit(x, y, groups=g)
    with pytest.raises(ValueError, match="NaN"):
        RulRegressor(**FAST).fit(x, np.full(len(y), np.nan), groups=g)
    with pytest.raises(ValueError, match="2 units"):
        RulRegressor(**FAST).fit(x, y, groups=np.zeros(len(y)))
    with pytest.raises(AttributeError, match="not fitted"):
        RulRegressor().predict(x)


def test_the_model_learns_something(fitted: Fitted) -> None:
    """Out-of-fold error well below the spread of the target (a broken fit would not be)."""
    model, _x, y, _g = fitted
    assert model.oof_rmse_ < 0.5 * y.std()


# ------------------------------------------------------------------ intervals


def test_conformal_quantile_is_the_finite_sample_rank() -> None:
    residuals = np.arange(1.0, 101.0)
    assert conformal_quantile(residuals, 0.8) == 81.0  # ceil(101 * 0.8) = 81
    assert conformal_quantile(np.arange(1.0, 4.0), 0.9) == float("inf")  # too few to promise 90 %


def test_signed_bounds_are_equal_tailed_and_follow_one_sided_errors() -> None:
    """Errors that are always positive (true life beyond the cap) give a lower bound above 0."""
    assert signed_conformal_bounds(np.arange(-49.0, 50.0), 0.8) == (-40.0, 40.0)
    one_sided = np.abs(np.random.default_rng(0).normal(0, 10, 999)) + 1.0
    lo, hi = signed_conformal_bounds(one_sided, 0.8)
    assert 1.0 < lo < hi
    assert np.mean((one_sided >= lo) & (one_sided <= hi)) == pytest.approx(0.8, abs=0.01)
    assert signed_conformal_bounds(np.arange(3.0), 0.9) == (-float("inf"), float("inf"))


def test_intervals_cover_about_the_nominal_share_of_new_units() -> None:
    """On units never seen in training, 80 % intervals cover close to 80 % of rows."""
    x, y, g = _tabular(seed=1)
    model = RulRegressor(**FAST).fit(x.iloc[:240], y[:240], groups=g[:240])
    interval = model.predict_interval(x.iloc[240:], coverage=0.8)
    inside = (y[240:] >= interval[:, 0]) & (y[240:] <= interval[:, 1])
    assert 0.7 <= inside.mean() <= 0.92
    wider = model.predict_interval(x.iloc[240:], coverage=0.95)
    assert (wider[:, 1] - wider[:, 0] >= interval[:, 1] - interval[:, 0]).all()


def test_mondrian_intervals_widen_where_errors_are_larger() -> None:
    """Near the end (low RUL) the noise is larger: intervals there are wider and still cover."""
    rng = np.random.default_rng(2)
    n, cut = 3000, 2000
    x = pd.DataFrame({"a": rng.uniform(0, 1, n)})
    truth = 100 * x["a"].to_numpy()
    noise = np.where(truth < 50, 12.0, 2.0)
    y = truth + rng.normal(0, 1, n) * noise
    g = np.arange(n) // 10
    model = RulRegressor(
        max_iter=150, learning_rate=0.1, n_folds=3, min_samples_leaf=20, interval_bins=4, cap=None
    )
    model.fit(x.iloc[:cut], y[:cut], groups=g[:cut])
    interval = model.predict_interval(x.iloc[cut:], coverage=0.8)
    width = interval[:, 1] - interval[:, 0]
    worn, healthy = truth[cut:] < 40, truth[cut:] > 60
    assert width[worn].mean() > 2 * width[healthy].mean()
    inside = (y[cut:] >= interval[:, 0]) & (y[cut:] <= interval[:, 1])
    assert 0.72 <= inside[worn].mean() <= 0.88
    assert 0.72 <= inside[healthy].mean() <= 0.88
    one = clone(model).set_params(interval_bins=1).fit(x.iloc[:cut], y[:cut], groups=g[:cut])
    half = one.predict_interval(x.iloc[cut:], coverage=0.8)[:, 1] - one.predict(x.iloc[cut:])
    assert np.ptp(half) < 1e-9  # one global half-width


def test_intervals_calibrated_on_the_uncapped_life_cover_it() -> None:
    """With y_true, units predicted at the cap get intervals reaching their longer true life."""
    x, y, g = _tabular(seed=3)
    life = np.where(y >= 100, y + 60, y)  # the cap hid 60 more cycles of the healthiest units
    capped = RulRegressor(**FAST).fit(x, y, groups=g)
    honest = RulRegressor(**FAST).fit(x, y, groups=g, y_true=life)
    pred = capped.predict(x)
    top = pred >= np.quantile(pred, 0.9)
    assert (honest.predict_interval(x)[top, 1] > capped.predict_interval(x)[top, 1]).all()
    np.testing.assert_array_equal(honest.predict(x), capped.predict(x))  # same point predictions


def test_metrics() -> None:
    assert rmse([0, 0], [3, 4]) == pytest.approx(np.sqrt(12.5))
    late, early = phm08_score([10], [20]), phm08_score([10], [0])
    assert late == pytest.approx(np.e - 1)
    assert early == pytest.approx(np.exp(10 / 13) - 1)
    assert late > early  # late predictions cost more


# ------------------------------------------------------------------ the pipeline on raw telemetry


def _pipeline() -> RulPipeline:
    return RulPipeline(
        settings=("alt",),
        signals=("temp", "vib", "const"),
        specs=(
            FeatureSpec(signals=(), window=10, stats=("mean", "slope", "ewma")),
            FeatureSpec(signals=("cycle",), window=1, stats=("last",)),
        ),
        regressor=RulRegressor(**FAST),
        tolerance=(1.0,),
    )


def test_window_path_equals_the_vectorised_path_at_every_row() -> None:
    """The scorer's predict_window on an asset's history equals the training path's prediction."""
    train, y = _fleet(12, seed=0, conditions=3)
    model = _pipeline().fit(train, y)
    new, _ = _fleet(2, seed=9, conditions=3)
    batch = model.predict(new)
    bounds = model.predict_interval(new)
    for i in range(0, len(new), 7):
        unit = new["unit"].iloc[i]
        history = new.iloc[: i + 1]
        history = history[history["unit"] == unit]
        score = model.predict_window(history)
        assert score["rul"] == pytest.approx(batch[i], rel=1e-12)
        assert (score["rul_lo"], score["rul_hi"]) == pytest.approx(tuple(bounds[i]), rel=1e-12)


def test_every_window_score_comes_with_the_signals_that_drove_it() -> None:
    """Contributions (with `other`) add up to the prediction minus the background's mean."""
    train, y = _fleet(10, seed=5)
    model = _pipeline().fit(train, y)
    window = train[train["unit"] == 3].iloc[: len(train[train["unit"] == 3]) - 5]
    why = model.explain_window(window, top_k=3)
    assert len(why.contributions) == 3
    assert {c.feature for c in why.contributions} <= set(model.feature_names_)
    total = sum(c.contribution for c in why.contributions) + why.other
    assert total == pytest.approx(why.prediction - why.reference_prediction, abs=1e-6)
    assert why.prediction == pytest.approx(model.predict_window(window)["rul"])


def test_pipeline_drops_constant_signals_and_finds_the_conditions() -> None:
    train, y = _fleet(8, seed=1, conditions=3)
    model = _pipeline().fit(train, y)
    assert model.normalizer_.signals_ == ("temp", "vib")
    assert len(model.normalizer_.centers_) == 3
    assert "const__mean_w10" not in model.feature_names_
    assert "temp__slope_w10" in model.feature_names_
    assert model.window_rows == 10


def test_pipeline_pickles_and_predicts_the_same() -> None:
    train, y = _fleet(8, seed=2)
    model = _pipeline().fit(train, y)
    again = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes
    np.testing.assert_array_equal(again.predict(train), model.predict(train))


def test_condition_normalisation_removes_the_operating_point() -> None:
    """Within-condition z-scores: the condition no longer shifts the signal's level."""
    train, _ = _fleet(10, seed=3, conditions=4)
    norm = ConditionNormalizer(settings=("alt",), signals=("temp", "vib"), tolerance=(1.0,))
    out = norm.fit(train).transform(train)
    cond = norm.condition(train)
    assert len(norm.centers_) == 4
    by_condition = out.groupby(cond)["temp"].mean()
    assert np.abs(by_condition).max() < 1e-9
    assert train.groupby(cond)["temp"].mean().std() > 50  # the raw signal did move with it


def test_one_condition_is_found_when_settings_only_jitter() -> None:
    train, _ = _fleet(5, seed=4, conditions=1)
    norm = ConditionNormalizer(settings=("alt",), signals=("temp",), tolerance=(1.0,)).fit(train)
    assert len(norm.centers_) == 1


def test_integer_signals_from_the_database_are_scored() -> None:
    """InfluxDB may return a signal as integers; normalising it neither fails nor truncates."""
    train, y = _fleet(6, seed=6)
    model = _pipeline().fit(train, y)
    window = train[train["unit"] == 2].copy()
    window["temp"] = window["temp"].round().astype("int64")
    normal = model.normalizer_.transform(window)["temp"].to_numpy()
    k = model.normalizer_.signals_.index("temp")
    expected = (window["temp"].to_numpy() - model.normalizer_.mean_[0, k]) / (
        model.normalizer_.scale_[0, k]
    )
    np.testing.assert_allclose(normal, expected)
    assert np.isfinite(model.predict_window(window)["rul"])
