"""AI4I 2020 failure within the next N products: the estimator's contract and its trainer."""

from __future__ import annotations

import doctest
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from models import _ai4i_horizon
from models._ai4i import FEATURES, features, load_ai4i
from models._ai4i_horizon import Ai4iHorizonRisk, failure_within, train_ai4i_horizon
from models._base import TrainRequest

AI4I = (
    Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "ai4i2020" / "ai4i2020.csv"
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One OpenMP thread: the CPU is shared, and oversubscribed threads spin."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def fitted() -> tuple[Ai4iHorizonRisk, pd.DataFrame]:
    raw = load_ai4i(AI4I, max_units=3000)
    feats = features(raw)
    model = Ai4iHorizonRisk(horizon=6, n_draws=8, max_iter=30).fit(feats, raw["machine_failure"])
    return model, feats


def test_the_examples_in_its_docstrings_pass() -> None:
    result = doctest.testmod(_ai4i_horizon)
    assert result.attempted > 0
    assert result.failed == 0


def test_init_stores_parameters_only_and_clones() -> None:
    model = Ai4iHorizonRisk(horizon=3, n_draws=4)
    assert clone(model).get_params() == model.get_params()
    assert not hasattr(model, "classifier_")


def test_risk_is_a_probability_at_least_the_next_products_and_pickles(
    fitted: tuple[Ai4iHorizonRisk, pd.DataFrame],
) -> None:
    """Risk 1 - prod(1 - p_k) is >= every p_k and <= their sum; a pickle scores the same."""
    model, feats = fitted
    rows = feats.iloc[:200]
    per = model.per_product(rows)
    risk = model.predict_proba(rows)[:, 1]
    assert per.shape == (200, 6)
    assert np.all((risk >= 0) & (risk <= 1))
    assert np.all(risk >= per.max(axis=1) - 1e-12)
    assert np.all(risk <= per.sum(axis=1) + 1e-12)
    again = pickle.loads(pickle.dumps(model))  # noqa: S301 - our own bytes
    assert np.allclose(again.predict_proba(rows), model.predict_proba(rows))


def test_a_longer_horizon_never_lowers_the_risk(
    fitted: tuple[Ai4iHorizonRisk, pd.DataFrame],
) -> None:
    model, feats = fitted
    rows = feats.iloc[:100]
    longer = clone(model).set_params(horizon=12)
    longer.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    assert np.all(longer.predict_proba(rows)[:, 1] >= model.predict_proba(rows)[:, 1] - 1e-12)


def test_a_worn_tool_raises_the_risk(fitted: tuple[Ai4iHorizonRisk, pd.DataFrame]) -> None:
    """Same product, same temperatures: 230 min of tool wear is riskier than 20 (TWF, OSF)."""
    model, feats = fitted
    row = feats.iloc[[0]].copy()
    new, worn = row.copy(), row.copy()
    new["tool_wear_min"], worn["tool_wear_min"] = 20.0, 230.0
    for frame in (new, worn):
        frame["overstrain_min_nm"] = frame["tool_wear_min"] * frame["torque_nm"]
    assert model.predict_proba(worn)[0, 1] > model.predict_proba(new)[0, 1]


def test_bad_parameters_and_missing_features_are_errors() -> None:
    feats = pd.DataFrame({f: [0.0, 1.0] for f in FEATURES})
    with pytest.raises(ValueError, match="horizon and n_draws"):
        Ai4iHorizonRisk(horizon=0).fit(feats, [0, 1])
    with pytest.raises(ValueError, match="lacks the features"):
        Ai4iHorizonRisk().fit(feats.drop(columns=["torque_nm"]), [0, 1])


def test_the_label_looks_only_ahead() -> None:
    assert failure_within([1, 0, 0, 1, 0], 1).tolist() == [0, 0, 1, 0, -1]


@pytest.mark.slow
def test_the_trainer_evaluates_on_later_products_against_the_newest_product_baseline() -> None:
    """End to end on a subset: metrics for the risk and for the row baseline, a later split."""
    result = train_ai4i_horizon(
        TrainRequest(data=(AI4I,), seed=0, max_units=3000, params={"max_iter": 30, "n_draws": 4})
    )
    m = result.metrics
    assert {"roc_auc", "pr_auc", "brier", "row_roc_auc", "row_brier"} <= set(m)
    assert m["n"] == m["row_n"] == 3000 - 2250 - 12
    train, test = result.split["train_units"], result.split["test_units"]
    assert len(train) == 2250
    assert not set(train) & set(test)
    assert result.name == "ai4i_horizon"
    assert "calibration" in result.figures
