"""Consumable life: crossing forecasts against known truth, the simulator, the tool-wear trainer."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from models import ConsumableLifeModel, simulate_filter_dp, train_tool_wear
from models._ai4i import load_ai4i, tool_life_segments
from models._base import TrainRequest
from models._consumable import Crossing, CrossingEval, crossing_metrics

AI4I = (
    Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "ai4i2020" / "ai4i2020.csv"
)


def _random_walk(seed: int, *, drift: float = 2.6, sd: float = 1.2, n: int = 160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([[0.0], np.cumsum(rng.normal(drift, sd, n - 1))])


def test_crossing_of_a_synthetic_run_lies_in_its_interval() -> None:
    """A noisy linear run: the true trend's crossing is inside the 90 % interval, near expected."""
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 25.0)  # the first half of the life
    y = 0.2 + 0.016 * t + rng.normal(0, 0.01, len(t))  # the trend crosses 1.0 at t = 50
    model = ConsumableLifeModel(band="confidence").fit(t, y)
    crossing = model.predict_crossing(1.0, coverage=0.9)
    assert crossing.contains(50.0)
    assert crossing.lo < crossing.expected < crossing.hi
    assert crossing.expected == pytest.approx(50.0, abs=2.0)


def test_random_walk_intervals_cover_the_true_first_passage_at_about_the_nominal_rate() -> None:
    """Over 200 drifting random walks, a 90 % interval covers the true crossing 80-97 % of times."""
    hits = []
    for seed in range(200):
        wear = _random_walk(seed)
        t = np.arange(len(wear), dtype=float)
        history = wear < 100.0
        truth = float(t[np.flatnonzero(wear >= 200.0)[0]])
        crossing = (
            ConsumableLifeModel(noise="random_walk")
            .fit(t[history], wear[history])
            .predict_crossing(200.0, coverage=0.9)
        )
        hits.append(crossing.lo - 1.0 <= truth <= crossing.hi + 1.0)  # truth is on integer steps
    assert 0.8 <= np.mean(hits) <= 0.97


def test_deterministic_trend_ignores_the_random_walk_and_under_covers() -> None:
    """The OLS trend treats accumulated wear as independent noise: its intervals are too narrow."""
    narrow: list[float] = []
    wide: list[float] = []
    for seed in range(30):
        wear = _random_walk(seed)
        t = np.arange(len(wear), dtype=float)
        history = wear < 100.0
        for model, out in (
            (ConsumableLifeModel(noise="measurement"), narrow),
            (ConsumableLifeModel(noise="random_walk"), wide),
        ):
            crossing = model.fit(t[history], wear[history]).predict_crossing(200.0)
            out.append(crossing.hi - crossing.lo)
    assert np.median(narrow) < np.median(wide)


def test_exponential_trend_recovers_a_simulated_filter() -> None:
    """On a simulated clogging filter, the exponential trend finds the noise-free crossing."""
    run = simulate_filter_dp(seed=4)
    history = run.hours < 0.5 * run.true_crossing_h
    model = ConsumableLifeModel(trend="exponential", band="confidence")
    crossing = model.fit(
        run.hours[history], run.frame["filter_dp_bar"].to_numpy()[history]
    ).predict_crossing(run.threshold_bar)
    assert crossing.contains(run.true_crossing_h)
    assert abs(crossing.expected - run.true_crossing_h) < 0.05 * run.true_crossing_h


@settings(max_examples=40, deadline=None)
@given(
    slope=st.floats(0.05, 5.0),
    start=st.floats(0.0, 10.0),
    threshold_gap=st.floats(1.0, 100.0),
)
def test_falling_indicator_mirrors_the_rising_one(
    slope: float, start: float, threshold_gap: float
) -> None:
    """A falling indicator and its mirror image cross their thresholds at the same times."""
    t = np.arange(12.0)
    wiggle = np.tile([0.3, -0.3, 0.1, -0.1], 3)
    rising = start + slope * t + wiggle
    threshold = float(rising[-1] + threshold_gap)
    up = ConsumableLifeModel().fit(t, rising).predict_crossing(threshold, max_horizon=1e4)
    down = (
        ConsumableLifeModel(direction="falling")
        .fit(t, -rising)
        .predict_crossing(-threshold, max_horizon=1e4)
    )
    assert down.expected == pytest.approx(up.expected)
    assert down.lo == pytest.approx(up.lo)
    assert down.hi == pytest.approx(up.hi)
    assert up.lo <= up.expected <= up.hi


def test_edge_cases_reached_flat_and_too_short() -> None:
    """Already past the threshold: now. No upward trend: never (inf). Under 4 points: an error."""
    t = np.arange(10.0)
    reached = ConsumableLifeModel().fit(t, t).predict_crossing(5.0)
    assert reached == Crossing(9.0, 9.0, 9.0, 0.9)
    flat = ConsumableLifeModel().fit(t, 5.0 - 0.1 * t + np.tile([0.05, -0.05], 5))
    assert math.isinf(flat.predict_crossing(10.0).expected)
    with pytest.raises(ValueError, match="at least 4"):
        ConsumableLifeModel().fit(t[:3], t[:3])
    with pytest.raises(ValueError, match="increasing"):
        ConsumableLifeModel().fit(t[::-1], t)
    with pytest.raises(ValueError, match="noise"):
        ConsumableLifeModel(noise="gaussian").fit(t, t)  # type: ignore[arg-type]


def test_estimator_contract() -> None:
    """Clone keeps parameters, fit returns self, pickling round-trips, forecasts are finite."""
    model = ConsumableLifeModel(trend="exponential", noise="random_walk")
    assert clone(model).get_params() == model.get_params()
    wear = 1.0 + _random_walk(1, n=40)
    t = np.arange(len(wear), dtype=float)
    assert model.fit(t, wear) is model
    again = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes
    future = np.array([45.0, 60.0])
    np.testing.assert_array_equal(again.predict(future), model.predict(future))
    band = model.predict_interval(future)
    assert np.isfinite(band.to_numpy()).all()
    assert (band["lower"] <= band["mean"]).all()
    assert (band["mean"] <= band["upper"]).all()
    assert np.isfinite(model.score(future)).all()


def test_simulator_is_seeded() -> None:
    """The same seed gives the same run; another seed another run; the truth is inside the run."""
    a, b, c = simulate_filter_dp(seed=7), simulate_filter_dp(seed=7), simulate_filter_dp(seed=8)
    assert a.frame.equals(b.frame)
    assert not a.frame.equals(c.frame)
    assert a.hours[0] < a.true_crossing_h < a.hours[-1]
    assert str(a.frame.index.dtype).endswith(", UTC]")


def test_crossing_metrics_are_computed_from_the_forecasts() -> None:
    """MAE, bias and coverage follow from the forecasts given."""
    evals = [
        CrossingEval("a", 0.0, 10.0, Crossing(12.0, 8.0, 15.0, 0.9)),
        CrossingEval("b", 0.0, 20.0, Crossing(16.0, 17.0, 19.0, 0.9)),
    ]
    m = crossing_metrics(evals)
    assert m["mae"] == 3.0
    assert m["bias"] == -1.0
    assert m["coverage"] == 0.5


def test_tool_lives_are_disjoint_and_start_fresh() -> None:
    """Each AI4I tool life is its own unit: no product is in two, each starts near zero wear."""
    segments = tool_life_segments(load_ai4i(AI4I, max_units=3000))
    seen: set[int] = set()
    for segment in segments:
        udi = set(segment["udi"].tolist())
        assert not seen & udi
        seen |= udi
        assert (segment["tool_wear_min"].diff().dropna() >= 0).all()
    assert all(s["tool_wear_min"].iloc[0] <= 10 for s in segments[1:])


def test_tool_wear_trainer_end_to_end_on_a_subset() -> None:
    """The trainer recomputes MAE and coverage on AI4I tool lives and simulated runs."""
    result = train_tool_wear(TrainRequest(data=(AI4I,), max_units=3000, params={"sim_runs": 8}))
    assert result.kind == "consumable_life"
    units = result.split["evaluated_units"]
    assert len(units) == len(set(units)) == result.metrics["n"] > 20
    assert 0.0 <= result.metrics["coverage"] <= 1.0
    assert result.metrics["mae"] < 10.0  # products, on tool lives of about 80
    assert result.metrics["sim_confidence_n"] == 8
    assert result.figures["tool_wear_crossing"].startswith(b"\x89PNG")
    crossing = result.estimator.predict_crossing(200.0)
    assert np.isfinite(crossing.expected)
