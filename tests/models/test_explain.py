"""Per-feature contributions: exact on linear models, efficient on any model, JSON-ready."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from models import Explanation, FailureClassifier, HorizonFailureModel, explain
from models._explain import contributions, default_predict, explanation_from_dict
from models._rul import RulRegressor


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One OpenMP thread: the CPU is shared, and oversubscribed threads spin."""
    with threadpool_limits(limits=1):
        yield


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "temp": rng.normal(70, 5, n),
            "vibration": rng.gamma(2.0, 1.5, n),
            "load": rng.uniform(0, 1, n),
            "noise": rng.normal(size=n),
        }
    )


def test_linear_contributions_are_coefficient_times_distance_to_reference() -> None:
    """For a linear regression, feature j gets w_j * (x_j - mean(background_j)), exactly."""
    data = _frame()
    y = 2.0 * data["temp"] - 3.0 * data["vibration"] + 10.0 * data["load"] + 5.0
    model = LinearRegression().fit(data, y)
    background = data.iloc[:40]
    row = _frame(1, seed=9)
    phi, prediction, reference = contributions(model.predict, row, background, n_permutations=2)
    expected = model.coef_ * (row.iloc[0] - background.mean())
    np.testing.assert_allclose(phi.to_numpy(), expected.to_numpy(), atol=1e-9)
    assert prediction == pytest.approx(float(model.predict(row)[0]))
    assert reference == pytest.approx(float(model.predict(background).mean()))


def test_contributions_sum_to_prediction_minus_reference_for_a_nonlinear_model() -> None:
    """Efficiency: listed + other = prediction - reference prediction, for boosted trees too."""
    data = _frame(600)
    label = ((data["temp"] > 75) & (data["vibration"] > 3) | (data["load"] > 0.9)).astype(int)
    model = FailureClassifier(max_iter=30, cv=2).fit(data, label)
    row = data.iloc[[int(np.argmax(model.score(data)))]]
    result = explain(model, row, data, top_k=2, n_permutations=6, max_background=30)
    total = sum(c.contribution for c in result.contributions) + result.other
    assert total == pytest.approx(result.prediction - result.reference_prediction, abs=1e-9)
    assert result.prediction == pytest.approx(float(model.score(row).iloc[0]))
    # The signals that define failure outrank pure noise.
    assert "noise" not in {c.feature for c in result.contributions}


def test_top_k_is_ordered_by_absolute_contribution_and_carries_values() -> None:
    """The listed features are the k largest |contribution|, with the row's value and reference."""
    data = _frame()
    y = 1.0 * data["temp"] - 20.0 * data["load"]
    model = LinearRegression().fit(data, y)
    row = _frame(1, seed=3)
    result = explain(model, row, data, top_k=2)
    sizes = [abs(c.contribution) for c in result.contributions]
    assert sizes == sorted(sizes, reverse=True)
    phi, _, _ = contributions(model.predict, row, data.sample(n=50, random_state=0))
    assert [c.feature for c in result.contributions] == list(phi.abs().nlargest(2).index)
    first = result.contributions[0]
    assert first.value == pytest.approx(float(row[first.feature].iloc[0]))
    assert first.reference is not None


def test_explanation_is_plain_json_and_round_trips() -> None:
    """to_dict() survives json.dumps (NaN becomes null) and reads back equal."""
    data = _frame(200)
    model = LogisticRegression().fit(data, (data["load"] > 0.5).astype(int))
    row = _frame(1, seed=4).assign(noise=math.nan)
    with pytest.raises(ValueError, match="NaN"):
        # LogisticRegression cannot take NaN: the explainer does not hide the model's own errors.
        explain(model, row, data)
    row = _frame(1, seed=4)
    result = explain(model, row, data, top_k=3)
    text = json.dumps(result.to_dict(), allow_nan=False)
    back = explanation_from_dict(json.loads(text))
    assert back == result
    assert isinstance(back, Explanation)
    nan_row = Explanation(math.nan, 0.0, (), 0.0).to_dict()
    assert json.dumps(nan_row, allow_nan=False)


def test_works_for_the_rul_regressor_and_any_column_order() -> None:
    """A predict-only regressor (C's RUL model) is explained; background column order is free."""
    rng = np.random.default_rng(2)
    data = _frame(400)
    rul = 150 - 1.5 * data["temp"] + 5 * data["vibration"] + rng.normal(0, 1, 400)
    groups = np.repeat(np.arange(8), 50)
    model = RulRegressor(max_iter=30, n_folds=2, cap=None).fit(data, rul, groups=groups)
    row = data.iloc[[0]]
    shuffled = data[["noise", "load", "vibration", "temp"]]
    a = explain(model, row, data, top_k=4, random_state=1)
    b = explain(model, row, shuffled, top_k=4, random_state=1)
    assert a == b
    assert a.prediction == pytest.approx(float(model.predict(row)[0]))


def test_bad_inputs_are_rejected() -> None:
    """Two rows, a background without a feature, or a model with no prediction method fail."""
    data = _frame(50)
    model = LinearRegression().fit(data, data["temp"])
    with pytest.raises(ValueError, match="one row"):
        explain(model, data.iloc[:2], data)
    with pytest.raises(ValueError, match="lacks"):
        explain(model, data.iloc[[0]], data.drop(columns="load"))
    with pytest.raises(TypeError, match="neither"):
        default_predict(object())


def test_a_failure_model_is_explained_against_its_own_training_sample() -> None:
    """Without a background, the classifier's background_ is the reference; horizon models too."""
    data = _frame(400)
    model = FailureClassifier(max_iter=20, cv=2).fit(data, (data["load"] > 0.8).astype(int))
    row = data.iloc[[0]]
    assert explain(model, row) == explain(model, row, model.background_)
    life = 100 * (1 - data["load"])
    horizon = HorizonFailureModel(horizons=(10, 30), score_horizon=10, max_iter=20, cv=2)
    horizon.fit(data, life)
    result = explain(horizon, row, top_k=1)
    assert result.prediction == pytest.approx(float(horizon.score(row).iloc[0]))
    assert result.contributions[0].feature == "load"
    with pytest.raises(ValueError, match="background_"):
        explain(LinearRegression().fit(data, life), row)
