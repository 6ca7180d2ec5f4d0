"""Window features: the scorer's per-window path equals the training path, value for value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from models import STATS, FeatureSpec, feature_names, rolling_features, window_features
from models._features import rolling_features_by


def _run(n: int, *, seed: int, irregular: bool, nan_share: float = 0.15) -> pd.DataFrame:
    """One asset's telemetry as InfluxDB returns it: UTC times, gaps, NaN where reads failed."""
    rng = np.random.default_rng(seed)
    step_s = rng.integers(1, 5, size=n) if irregular else np.ones(n, dtype=int)
    times = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(np.cumsum(step_s), unit="s")
    frame = pd.DataFrame(
        {
            "temp": 60 + np.cumsum(rng.normal(size=n)),
            "vib": rng.gamma(2.0, size=n),
            "flat": np.full(n, 3.0),
        },
        index=pd.DatetimeIndex(times, name="time"),
    )
    holes = rng.random(frame.shape) < nan_share
    return frame.mask(holes)


SPECS = (
    FeatureSpec(signals=("temp", "vib", "flat"), window=7, stats=STATS, ewm_halflife=2 / 3600),
    FeatureSpec(signals=("temp",), window=pd.Timedelta(seconds=20), stats=STATS, min_samples=3),
    FeatureSpec(signals=("vib",), window=1, stats=("last", "count")),
)


@pytest.mark.parametrize("irregular", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rolling_features_equal_the_per_window_function_at_every_row(
    seed: int, irregular: bool
) -> None:
    """Row i of the vectorised path is the per-window function applied to rows 0..i."""
    run = _run(120, seed=seed, irregular=irregular)
    rolled = rolling_features(run, SPECS, chunk_rows=17)  # chunks cut across windows on purpose
    assert list(rolled.columns) == list(feature_names(SPECS))
    for i in range(len(run)):
        one = window_features(run.iloc[: i + 1], SPECS)
        assert one.index[0] == run.index[i]
        np.testing.assert_allclose(
            rolled.iloc[i].to_numpy(), one.iloc[0].to_numpy(), rtol=1e-12, atol=1e-12
        )


def test_a_longer_window_than_the_spec_gives_the_same_row() -> None:
    """The scorer may read more history than a spec needs; each spec takes its trailing part."""
    run = _run(80, seed=3, irregular=True)
    a = window_features(run, SPECS)
    b = window_features(run.iloc[-40:], SPECS)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12)


def test_statistics_match_a_direct_computation() -> None:
    """Hand-checkable values: last, mean, std, min, max, slope per hour, EWMA and count."""
    index = pd.DatetimeIndex(
        pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta([0, 1, 2, 3, 4], unit="h")
    )
    run = pd.DataFrame({"x": [5.0, 1.0, np.nan, 3.0, 7.0]}, index=index)
    spec = FeatureSpec(signals=("x",), window=4, stats=STATS, ewm_halflife=1.0)
    row = window_features(run, spec).iloc[0]
    kept = np.array([1.0, 3.0, 7.0])
    hours = np.array([1.0, 3.0, 4.0])
    weights = 0.5 ** (4.0 - hours)
    assert row["x__last_w4"] == 7.0
    assert row["x__mean_w4"] == pytest.approx(kept.mean())
    assert row["x__std_w4"] == pytest.approx(kept.std())
    assert row["x__min_w4"] == 1.0
    assert row["x__max_w4"] == 7.0
    assert row["x__slope_w4"] == pytest.approx(np.polyfit(hours, kept, 1)[0])
    assert row["x__ewma_w4"] == pytest.approx((weights * kept).sum() / weights.sum())
    assert row["x__count_w4"] == 3.0


def test_empty_and_single_value_windows_give_nan_without_warnings() -> None:
    """No valid value gives NaN, std and slope need two values, and nothing warns."""
    run = pd.DataFrame({"x": [np.nan, np.nan, 4.0]}, index=[0.0, 1.0, 2.0])
    spec = FeatureSpec(signals=("x",), window=2, stats=STATS)
    rolled = rolling_features(run, spec)
    assert rolled.iloc[0].drop("x__count_w2").isna().all()
    assert rolled.iloc[0]["x__count_w2"] == 0.0
    assert np.isnan(rolled.iloc[2]["x__std_w2"])
    assert np.isnan(rolled.iloc[2]["x__slope_w2"])
    assert rolled.iloc[2]["x__mean_w2"] == 4.0


def test_time_windows_count_time_not_rows() -> None:
    """A 10 s window after a 60 s gap holds only the rows inside the last 10 s."""
    index = pd.DatetimeIndex(
        pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta([0, 1, 2, 62, 63], unit="s")
    )
    run = pd.DataFrame({"x": [100.0, 100.0, 100.0, 1.0, 3.0]}, index=index)
    spec = FeatureSpec(signals=("x",), window=pd.Timedelta(seconds=10), stats=("mean", "count"))
    row = window_features(run, spec).iloc[0]
    assert row["x__mean_t10s"] == 2.0
    assert row["x__count_t10s"] == 2.0


def test_rolling_features_by_keeps_row_order_and_never_mixes_units() -> None:
    """Interleaved units (as a fleet arrives) get each unit's own history, in the input order."""
    a = _run(30, seed=4, irregular=False).reset_index(drop=True)
    b = _run(30, seed=5, irregular=False).reset_index(drop=True)
    a["unit"], b["unit"] = 1, 2
    fleet = pd.concat([a, b]).sort_index(kind="stable")  # rows alternate between the two units
    fleet.index = pd.RangeIndex(len(fleet)).astype(float)
    spec = FeatureSpec(signals=("temp",), window=5, stats=("mean", "last"))
    together = rolling_features_by(fleet, spec, by="unit")
    assert list(together.index) == list(fleet.index)
    alone = rolling_features(fleet[fleet["unit"] == 2], spec)
    np.testing.assert_allclose(together[fleet["unit"] == 2].to_numpy(), alone.to_numpy())


def test_a_missing_signal_is_an_error_naming_it() -> None:
    """The scorer hears which signal InfluxDB did not return."""
    run = _run(5, seed=0, irregular=False)
    with pytest.raises(KeyError, match="pressure"):
        window_features(run, FeatureSpec(signals=("pressure",), window=3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 0}, "window"),
        ({"window": pd.Timedelta(0)}, "window"),
        ({"window": 3, "stats": ("median",)}, "median"),
        ({"window": 3, "ewm_halflife": 0.0}, "ewm_halflife"),
    ],
)
def test_invalid_specs_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    """A spec that cannot be computed fails when it is made, not when it is scored."""
    with pytest.raises(ValueError, match=message):
        FeatureSpec(signals=("x",), **kwargs)
