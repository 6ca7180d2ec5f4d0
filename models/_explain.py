"""Per-feature contributions to one prediction, stored with every score.

Theory of operation
-------------------
The contributions are interventional Shapley values estimated by permutation sampling against a
background sample (Strumbelj and Kononenko 2014), for any model that predicts from a DataFrame.
For one permutation of the features and one background row ``b``, the features are switched one
by one from ``b``'s value to the explained row's value; each switch is credited with the change of
the prediction it causes. Averaging over permutations (drawn in antithetic pairs: a permutation and
its reverse) and over every background row gives the estimate.

Rules
-----
- Efficiency holds exactly, whatever the model and however few permutations: along every path the
  credits telescope, so the contributions sum to ``prediction - reference_prediction`` where
  ``reference_prediction`` is the mean prediction over the background (up to floating point).
- For a model linear in its inputs the estimate is exact: feature ``j`` gets
  ``w_j * (x_j - mean(background_j))``, its coefficient times the distance to the reference.
- For a non-linear model the split of that sum between features is an estimate whose sampling
  error shrinks with ``n_permutations``; interactions are shared along the sampled orders.
- The result is plain JSON (`Explanation.to_dict`): NaN becomes ``None``.
- Cost: ``n_permutations * len(background) * (n_features + 1)`` rows in one ``predict`` call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

Predict = Callable[[pd.DataFrame], Any]


@dataclass(frozen=True, slots=True)
class Contribution:
    """One feature's share of a prediction.

    Parameters
    ----------
    feature : str
        Column name.
    contribution : float
        Change of the prediction credited to this feature (same unit as the prediction).
    value : float or None
        The feature's value in the explained row (None when missing).
    reference : float or None
        Mean of the feature over the background (None when all missing).
    """

    feature: str
    contribution: float
    value: float | None
    reference: float | None


@dataclass(frozen=True, slots=True)
class Explanation:
    """The signals that drove one score.

    Parameters
    ----------
    prediction : float
        The model's output for the explained row.
    reference_prediction : float
        Mean output over the background sample.
    contributions : tuple of Contribution
        The ``top_k`` largest by absolute contribution, largest first.
    other : float
        Sum of the contributions not listed (so listed + other = prediction - reference).
    method : str
        How the contributions were computed.
    """

    prediction: float
    reference_prediction: float
    contributions: tuple[Contribution, ...]
    other: float
    method: str = "permutation_shapley"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form (what the scorer stores beside a score)."""
        return {
            "method": self.method,
            "prediction": _json_float(self.prediction),
            "reference_prediction": _json_float(self.reference_prediction),
            "other": _json_float(self.other),
            "contributions": [
                {
                    "feature": c.feature,
                    "contribution": _json_float(c.contribution),
                    "value": c.value,
                    "reference": c.reference,
                }
                for c in self.contributions
            ],
        }


def _json_float(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def default_predict(model: Any) -> Predict:  # noqa: ANN401 - any fitted model
    """The model output explained by default.

    ``predict_proba(X)[:, 1]`` (probability of the positive class) when the model has
    ``predict_proba`` returning an array; ``score(X)`` when ``predict_proba`` returns a table (a
    `models.HorizonFailureModel`: the probability at its ``score_horizon``); otherwise
    ``predict(X)``. Pass ``predict=`` to `explain` for anything else.

    Raises
    ------
    TypeError
        If the model has neither method.
    """
    if hasattr(model, "predict_proba"):

        def proba(X: pd.DataFrame) -> np.ndarray:
            out = model.predict_proba(X)
            if isinstance(out, pd.DataFrame):
                return np.asarray(model.score(X), dtype=float)
            table = np.asarray(out, dtype=float)
            return table[:, -1] if table.ndim == 2 else table  # noqa: PLR2004

        return proba
    if hasattr(model, "predict"):
        return lambda X: np.asarray(model.predict(X), dtype=float)
    raise TypeError(f"{type(model).__name__} has neither predict_proba nor predict")


def contributions(
    predict: Predict,
    row: pd.DataFrame,
    background: pd.DataFrame,
    *,
    n_permutations: int = 8,
    random_state: int = 0,
) -> tuple[pd.Series, float, float]:
    """Every feature's contribution to the prediction for ``row``.

    Parameters
    ----------
    predict : callable
        DataFrame -> 1-D array of outputs.
    row : pandas.DataFrame
        Exactly one row; its columns are the features.
    background : pandas.DataFrame
        Reference rows (same columns, any order), e.g. a sample of training data.
    n_permutations : int
        Feature orders sampled (rounded up to an even number: antithetic pairs).
    random_state : int
        Seed of the permutations.

    Returns
    -------
    contributions : pandas.Series
        One value per column of ``row``.
    prediction : float
        ``predict(row)``.
    reference_prediction : float
        Mean of ``predict`` over ``background``.

    Raises
    ------
    ValueError
        If ``row`` is not one row, or the background lacks a column or is empty.

    Examples
    --------
    >>> bg = pd.DataFrame({"a": [0.0, 2.0], "b": [1.0, 1.0]})
    >>> row = pd.DataFrame({"a": [3.0], "b": [5.0]})
    >>> phi, p, ref = contributions(lambda X: 2 * X["a"] - X["b"], row, bg)
    >>> phi.round(6).to_dict(), p, ref
    ({'a': 4.0, 'b': -4.0}, 1.0, 1.0)
    """
    if len(row) != 1:
        raise ValueError(f"explain one row at a time, got {len(row)}")
    columns = list(row.columns)
    base = _base(background, columns)
    position, paths = _paths(row.to_numpy(dtype=float)[0], base, n_permutations, random_state)
    out = np.asarray(predict(pd.DataFrame(paths.reshape(-1, len(columns)), columns=columns)))
    phi, prediction, reference = _credit(out.astype(float).reshape(paths.shape[:3]), position)
    return pd.Series(phi, index=columns, name="contribution"), prediction, reference


def _base(background: pd.DataFrame, columns: list[str]) -> np.ndarray:
    missing = [c for c in columns if c not in background.columns]
    if missing or len(background) == 0:
        raise ValueError(f"background is empty or lacks columns {missing}")
    return background[columns].to_numpy(dtype=float)


def _paths(
    x: np.ndarray, base: np.ndarray, n_permutations: int, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """The switch position of each feature per order ``(P, d)``, and the rows ``(P, B, d+1, d)``."""
    d = len(x)
    rng = np.random.default_rng(random_state)
    half = max(1, math.ceil(n_permutations / 2))
    forward = np.array([rng.permutation(d) for _ in range(half)])
    orders = np.concatenate([forward, forward[:, ::-1]])  # antithetic pairs
    # position[p, j] = step at which feature j switches to the explained row's value in order p.
    position = np.argsort(orders, axis=1)
    steps = np.arange(d + 1)
    switched = position[:, None, :] < steps[None, :, None]  # (P, d+1, d)
    paths = np.where(switched[:, None, :, :], x, base[None, :, None, :])  # (P, B, d+1, d)
    return position, paths


def _credit(out: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Contributions, prediction and reference from the outputs ``(P, B, d+1)`` along the paths."""
    d = out.shape[2] - 1
    deltas = np.diff(out, axis=2)  # (P, B, d): credit of the feature switched at each step
    credited = np.take_along_axis(deltas, np.broadcast_to(position[:, None, :], deltas.shape), 2)
    phi = credited.mean(axis=(0, 1))
    return phi, float(out[0, 0, d]), float(out[:, :, 0].mean())


def explain(
    model: Any,  # noqa: ANN401 - any fitted model
    row: pd.DataFrame,
    background: pd.DataFrame | None = None,
    *,
    top_k: int = 5,
    n_permutations: int = 8,
    max_background: int = 50,
    predict: Predict | None = None,
    random_state: int = 0,
) -> Explanation:
    """The top-``k`` signals that drove one prediction, JSON-ready.

    Parameters
    ----------
    model : object
        Any fitted model with ``predict_proba`` or ``predict`` over a DataFrame (see
        `default_predict`), or anything when ``predict`` is given.
    row : pandas.DataFrame
        The one row scored.
    background : pandas.DataFrame, optional
        Reference rows; a random subset of ``max_background`` rows is used when larger. Default:
        the model's ``background_`` (a training sample kept by `models.FailureClassifier` and
        `models.HorizonFailureModel`).
    top_k : int
        Contributions kept (largest absolute first); the rest are summed into ``other``.
    n_permutations : int
        Feature orders sampled (see `contributions`).
    max_background : int
        Background rows used at most.
    predict : callable, optional
        DataFrame -> 1-D outputs; defaults to `default_predict` (model).
    random_state : int
        Seed of the background subset and the permutations.

    Returns
    -------
    Explanation
        ``sum(contributions) + other == prediction - reference_prediction`` (to float precision).

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> bg = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [0.0, 1.0, 0.0, 1.0]})
    >>> lin = LinearRegression().fit(bg, 3 * bg["a"] - 2 * bg["b"])
    >>> e = explain(lin, pd.DataFrame({"a": [5.0], "b": [0.0]}), bg, top_k=1)
    >>> e.contributions[0].feature, round(e.contributions[0].contribution, 6)
    ('a', 10.5)
    """
    fn = predict if predict is not None else default_predict(model)
    background = _background(model, background, max_background, random_state)
    phi, prediction, reference = contributions(
        fn, row, background, n_permutations=n_permutations, random_state=random_state
    )
    means = background[list(row.columns)].astype(float).mean(skipna=True)
    return _explanation(phi, prediction, reference, row=row.iloc[0], means=means, top_k=top_k)


def explain_many(
    model: Any,  # noqa: ANN401 - any fitted model
    rows: pd.DataFrame,
    background: pd.DataFrame | None = None,
    *,
    top_k: int = 5,
    n_permutations: int = 8,
    max_background: int = 50,
    predict: Predict | None = None,
    random_state: int = 0,
    chunk_rows: int = 10_000,
) -> list[Explanation]:
    """`explain` of every row of `rows`, with the model called on many rows' paths at once.

    The result equals ``[explain(model, rows.iloc[[i]], ...) for i in range(len(rows))]`` for
    any model whose output for a row does not depend on the other rows of the call (every
    scikit-learn predictor): the paths are the same, only the calls are fewer. The paths of
    whole rows go to `predict` in calls of about `chunk_rows` rows (memory stays bounded).

    Parameters
    ----------
    rows : pandas.DataFrame
        The rows scored; columns are the features.
    chunk_rows : int
        Path rows per `predict` call (at least one explained row's paths per call). Boosted
        trees predict tree by tree over all rows of a call: about 10,000 rows keep those rows
        in the CPU cache (measured: 2-3x faster per row than 50,000, and than 1,000).
    model, background, top_k, n_permutations, max_background, predict, random_state
        As for `explain`.

    Returns
    -------
    list of Explanation
        One per row of `rows`, in order.
    """
    fn = predict if predict is not None else default_predict(model)
    background = _background(model, background, max_background, random_state)
    columns = list(rows.columns)
    base = _base(background, columns)
    means = background[columns].astype(float).mean(skipna=True)
    values = rows.to_numpy(dtype=float)
    out: list[Explanation] = []
    pending: list[tuple[int, np.ndarray, np.ndarray]] = []
    size = 0

    def flush() -> None:
        block = np.concatenate([paths.reshape(-1, len(columns)) for _, _, paths in pending])
        outputs = np.asarray(fn(pd.DataFrame(block, columns=columns)), dtype=float)
        start = 0
        for i, position, paths in pending:
            n = paths.shape[0] * paths.shape[1] * paths.shape[2]
            phi, prediction, reference = _credit(
                outputs[start : start + n].reshape(paths.shape[:3]), position
            )
            start += n
            series = pd.Series(phi, index=columns, name="contribution")
            out.append(
                _explanation(
                    series, prediction, reference, row=rows.iloc[i], means=means, top_k=top_k
                )
            )
        pending.clear()

    for i in range(len(rows)):
        position, paths = _paths(values[i], base, n_permutations, random_state)
        pending.append((i, position, paths))
        size += paths.shape[0] * paths.shape[1] * paths.shape[2]
        if size >= chunk_rows:
            flush()
            size = 0
    if pending:
        flush()
    return out


def _background(
    model: Any,  # noqa: ANN401 - any fitted model
    background: pd.DataFrame | None,
    max_background: int,
    random_state: int,
) -> pd.DataFrame:
    if background is None:
        background = getattr(model, "background_", None)
        if not isinstance(background, pd.DataFrame):
            raise ValueError(f"{type(model).__name__} keeps no background_: pass background=")
    if len(background) > max_background:
        background = background.sample(n=max_background, random_state=random_state)
    return background


def _explanation(
    phi: pd.Series,
    prediction: float,
    reference: float,
    *,
    row: pd.Series,
    means: pd.Series,
    top_k: int,
) -> Explanation:
    order = phi.abs().sort_values(ascending=False, kind="stable").index
    kept = list(order[: max(0, top_k)])
    listed = tuple(
        Contribution(
            feature=str(name),
            contribution=float(phi[name]),
            value=_json_float(float(row[name])),
            reference=_json_float(float(means[name])),
        )
        for name in kept
    )
    other = float(phi.drop(index=kept).sum())
    return Explanation(
        prediction=prediction,
        reference_prediction=reference,
        contributions=listed,
        other=other,
    )


def explanation_from_dict(data: dict[str, Any]) -> Explanation:
    """Rebuild an `Explanation` from `Explanation.to_dict` output (None reads back as NaN).

    Examples
    --------
    >>> e = Explanation(0.9, 0.1, (Contribution("a", 0.8, 1.0, None),), 0.0)
    >>> explanation_from_dict(e.to_dict()) == e
    True
    """

    def num(value: float | None) -> float:
        return math.nan if value is None else float(value)

    return Explanation(
        prediction=num(data["prediction"]),
        reference_prediction=num(data["reference_prediction"]),
        contributions=tuple(
            Contribution(
                feature=str(c["feature"]),
                contribution=num(c["contribution"]),
                value=c["value"],
                reference=c["reference"],
            )
            for c in data["contributions"]
        ),
        other=num(data["other"]),
        method=str(data.get("method", "permutation_shapley")),
    )
