"""Remaining useful life: a boosted-tree regressor with conformal intervals, over window features.

Two estimators follow the contract of STYLE.md rule 11:

- `RulRegressor` works on a feature matrix. It fits one `HistGradientBoostingRegressor` per fold
  of a `GroupKFold` by unit (engine), predicts with the mean of the fold models, and takes the
  interval half-width from the out-of-fold absolute residuals (cross-conformal, "CV+"-style with
  a mean aggregate): every residual comes from an engine the model that made it never saw. The
  out-of-fold RMSE is also the hyper-parameter selection criterion, so no extra search fits are
  needed.
- `RulPipeline` is what the registry stores and the scorer runs: a `ConditionNormalizer`, a tuple
  of `FeatureSpec` and a `RulRegressor`. ``fit``/``predict`` take raw telemetry rows of many units
  (training path, vectorised); `RulPipeline.predict_window` takes one window of one asset as the
  scorer reads it from InfluxDB (online path). Both go through `models._features`' one kernel.

Higher predicted RUL means *healthier*; the ``scores`` measurement stores ``rul``, ``rul_lo`` and
``rul_hi`` as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from models._conditions import ConditionNormalizer
from models._explain import Explanation, explain
from models._features import FeatureSpec, feature_names, rolling_features_by, window_features


def _as_frame(X: pd.DataFrame | ArrayLike) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=float)
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


def conformal_quantile(residuals: np.ndarray, coverage: float) -> float:
    """The split-conformal half-width: the ceil((n + 1) c)-th smallest absolute residual.

    Examples
    --------
    >>> conformal_quantile(np.arange(1.0, 10.0), 0.8)
    8.0
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1). Got {coverage}")
    ordered = np.sort(np.abs(np.asarray(residuals, dtype=float)))
    n = len(ordered)
    rank = math.ceil((n + 1) * coverage)
    return float("inf") if rank > n else float(ordered[rank - 1])


def signed_conformal_bounds(errors: np.ndarray, coverage: float) -> tuple[float, float]:
    """Equal-tailed split-conformal bounds on signed errors: each tail misses (1 - c) / 2.

    The lower bound is the floor((n + 1) (1 - c) / 2)-th smallest error, the upper the
    ceil((n + 1) (1 + c) / 2)-th smallest; infinite when there are too few errors.

    Examples
    --------
    >>> signed_conformal_bounds(np.arange(-49.0, 50.0), 0.8)
    (-40.0, 40.0)
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage must be in (0, 1). Got {coverage}")
    ordered = np.sort(np.asarray(errors, dtype=float))
    n = len(ordered)
    # The 1e-9 keeps exact ranks exact: (n + 1) * 0.1 is 9.999999999999998 in floating point.
    lo_rank = math.floor((n + 1) * (1.0 - coverage) / 2.0 + 1e-9)
    hi_rank = math.ceil((n + 1) * (1.0 + coverage) / 2.0 - 1e-9)
    lo = float(ordered[lo_rank - 1]) if lo_rank >= 1 else -float("inf")
    hi = float(ordered[hi_rank - 1]) if hi_rank <= n else float("inf")
    return lo, hi


class RulRegressor(BaseEstimator):  # type: ignore[misc]
    """Gradient-boosted RUL regression with cross-conformal prediction intervals.

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to each fold's `sklearn.ensemble.HistGradientBoostingRegressor`.
    n_folds : int
        Folds of the `GroupKFold` by unit; each fold's model is one member of the ensemble.
    coverage : float
        Default nominal coverage of `predict_interval`.
    interval_bins : int
        Mondrian conformal: the out-of-fold residuals are grouped into this many bins of equal
        count by predicted RUL, and an interval takes the quantile of its prediction's bin. Errors
        grow as the end nears, so one global quantile is too wide for healthy units and too narrow
        for worn ones; 1 gives the plain (global) split-conformal interval.
    cap : float or None
        Predictions are clipped to ``[0, cap]`` (the training labels' cap).
    n_threads : int or None
        OpenMP threads of the boosted trees while fitting and predicting; None: the library's
        default (all cores). The default 1 is deliberate: on a shared machine OpenMP threads
        that spin-wait for busy cores made fits 30x slower (measured here: 126 s vs 4 s).
    random_state : int

    Attributes
    ----------
    estimators_ : list of HistGradientBoostingRegressor
        One per fold.
    folds_ : list of ndarray
        The units held out by each fold.
    errors_ : ndarray
        Out-of-fold errors, true - predicted: the conformal scores.
    residuals_ : ndarray
        Their absolute values.
    bin_edges_ : ndarray
        Inner edges of the Mondrian bins over the out-of-fold predictions.
    oof_rmse_ : float
        Out-of-fold RMSE over every training row (the selection criterion).
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    >>> y = 50 + 10 * X["a"].to_numpy()
    >>> model = RulRegressor(max_iter=20, n_folds=3).fit(X, y, groups=np.arange(200) // 10)
    >>> lo_hi = model.predict_interval(X.head(2), coverage=0.8)
    >>> lo_hi.shape, bool((lo_hi[:, 0] <= lo_hi[:, 1]).all())
    ((2, 2), True)
    """

    def __init__(
        self,
        *,
        max_iter: int = 300,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 50,
        l2_regularization: float = 1.0,
        n_folds: int = 5,
        coverage: float = 0.8,
        interval_bins: int = 5,
        cap: float | None = 125.0,
        n_threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.n_folds = n_folds
        self.coverage = coverage
        self.interval_bins = interval_bins
        self.cap = cap
        self.n_threads = n_threads
        self.random_state = random_state

    def _validate_params(self) -> None:
        checks = {
            "max_iter": self.max_iter >= 1,
            "learning_rate": self.learning_rate > 0,
            "max_leaf_nodes": self.max_leaf_nodes >= 2,  # noqa: PLR2004 - a split needs two leaves
            "min_samples_leaf": self.min_samples_leaf >= 1,
            "l2_regularization": self.l2_regularization >= 0,
            "n_folds": self.n_folds >= 2,  # noqa: PLR2004 - conformal needs a held-out fold
            "coverage": 0 < self.coverage < 1,
            "interval_bins": self.interval_bins >= 1,
            "cap": self.cap is None or self.cap > 0,
            "n_threads": self.n_threads is None or self.n_threads >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            name = bad[0]
            msg = f"RulRegressor.{name} is out of range. Got {getattr(self, name)!r} instead."
            raise ValueError(msg)

    def fit(
        self,
        X: pd.DataFrame | ArrayLike,
        y: ArrayLike,
        groups: ArrayLike | None = None,
        y_true: ArrayLike | None = None,
    ) -> Self:
        """Fit one model per engine-grouped fold; keep the out-of-fold residuals.

        Parameters
        ----------
        X : DataFrame of shape (n_rows, n_features)
        y : array-like of shape (n_rows,)
            Remaining life (capped) of each row: what the trees learn.
        groups : array-like of shape (n_rows,), optional
            The unit of each row; folds never split a unit. Without it every row is its own unit.
        y_true : array-like of shape (n_rows,), optional
            The uncapped remaining life: the residuals (and so the intervals) are taken against
            it, so that an interval covers the true remaining life, not the capped label. A unit
            predicted at the cap may have much more life left, and its interval says so.
        """
        self._validate_params()
        frame = _as_frame(X)
        target = np.asarray(y, dtype=float)
        if len(target) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(target)}")
        if not np.isfinite(target).all():
            raise ValueError("y holds NaN or infinite values")
        unit = np.arange(len(frame)) if groups is None else np.asarray(groups)
        n_units = len(np.unique(unit))
        if n_units < 2:  # noqa: PLR2004 - one unit cannot be held out from itself
            raise ValueError(f"RulRegressor needs at least 2 units to cross-fit. Got {n_units}")
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        values = frame.to_numpy(dtype=float)
        splitter = GroupKFold(
            n_splits=min(self.n_folds, n_units), shuffle=True, random_state=self.random_state
        )
        oof = np.full(len(target), np.nan)
        self.estimators_: list[HistGradientBoostingRegressor] = []
        self.folds_: list[np.ndarray] = []
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            self._fit_folds(splitter.split(values, target, unit), values, target, unit, oof)
        self.oof_ = oof
        reference = target if y_true is None else np.asarray(y_true, dtype=float)
        if len(reference) != len(target) or not np.isfinite(reference).all():
            raise ValueError("y_true must be finite and as long as y")
        self.errors_ = reference - oof
        self.residuals_ = np.abs(self.errors_)
        quantiles = np.linspace(0.0, 1.0, self.interval_bins + 1)[1:-1]
        self.bin_edges_ = np.unique(np.quantile(oof, quantiles))
        self.bin_of_row_ = np.searchsorted(self.bin_edges_, oof, side="right")
        self.oof_rmse_ = float(np.sqrt(np.mean((oof - target) ** 2)))
        self.n_features_in_ = values.shape[1]
        return self

    def _fit_folds(
        self,
        splits: Any,  # noqa: ANN401 - GroupKFold's generator of index pairs
        values: np.ndarray,
        target: np.ndarray,
        unit: np.ndarray,
        oof: np.ndarray,
    ) -> None:
        for k, (fit_rows, held_rows) in enumerate(splits):
            model = HistGradientBoostingRegressor(
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                early_stopping=False,
                random_state=self.random_state + k,
            ).fit(values[fit_rows], target[fit_rows])
            oof[held_rows] = self._clip(model.predict(values[held_rows]))
            self.estimators_.append(model)
            self.folds_.append(np.unique(unit[held_rows]))

    def _clip(self, pred: np.ndarray) -> np.ndarray:
        clipped: np.ndarray = np.clip(pred, 0.0, self.cap if self.cap is not None else np.inf)
        return clipped

    def _values(self, X: pd.DataFrame | ArrayLike) -> np.ndarray:
        if not hasattr(self, "estimators_"):
            raise AttributeError("RulRegressor is not fitted yet: call fit first")
        frame = _as_frame(X)
        names = list(self.feature_names_in_)
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise KeyError(f"X lacks the features {missing[:5]!r} the model was fitted on")
        return frame.loc[:, names].to_numpy(dtype=float)

    def predict(self, X: pd.DataFrame | ArrayLike) -> np.ndarray:
        """Remaining life of each row: the mean of the fold models, clipped to ``[0, cap]``."""
        values = self._values(X)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            pred = np.mean([m.predict(values) for m in self.estimators_], axis=0)
        return self._clip(pred)

    def predict_interval(
        self, X: pd.DataFrame | ArrayLike, coverage: float | None = None
    ) -> np.ndarray:
        """Lower and upper bounds, shape ``(n_rows, 2)``, at `coverage` (default ``self.coverage``).

        Equal-tailed and signed: the bounds are the prediction plus the lower and upper conformal
        quantiles of the out-of-fold errors (true - predicted) in the prediction's bin (see
        `interval_bins`). Errors are one-sided near the cap (a healthy unit's true life is longer
        than any capped prediction), so a healthy unit gets a tight lower bound and a long upper
        one. Clipped at 0 below (remaining life is not negative), not at `cap` above.
        """
        pred = self.predict(X)
        level = self.coverage if coverage is None else coverage
        bounds = np.array(
            [
                self._bounds(self.errors_[self.bin_of_row_ == b], level)
                for b in range(len(self.bin_edges_) + 1)
            ]
        )
        per_row = bounds[np.searchsorted(self.bin_edges_, pred, side="right")]
        return np.column_stack([np.maximum(pred + per_row[:, 0], 0.0), pred + per_row[:, 1]])

    def _bounds(self, errors: np.ndarray, level: float) -> tuple[float, float]:
        """Lower and upper conformal quantiles of signed errors; too few: every error."""
        lo, hi = signed_conformal_bounds(errors, level)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo, hi = signed_conformal_bounds(self.errors_, level)
        return lo, hi

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        """Small parameter sets for the conformance suite (STYLE.md rule 11)."""
        return [{"max_iter": 20, "n_folds": 3, "min_samples_leaf": 5}]


class RulPipeline(BaseEstimator):  # type: ignore[misc]
    """Raw telemetry rows -> condition normalisation -> window features -> `RulRegressor`.

    Parameters
    ----------
    settings : tuple of str
        Operating-setting columns (used to find conditions, not as features).
    signals : tuple of str
        Candidate sensor signals; the normaliser keeps the informative ones. Other columns (such
        as C-MAPSS's ``cycle``, the engine's age) pass through unchanged and specs may name them.
    specs : tuple of FeatureSpec
        Window features. A spec with no signals means "every signal the normaliser kept".
    regressor : RulRegressor
    unit : str
        Column naming the unit (engine, asset) of each row in ``fit``/``predict``.
    tolerance : tuple of float or None
        Per-setting tolerance of the condition clustering (see `ConditionNormalizer`).

    Attributes
    ----------
    normalizer_ : ConditionNormalizer
    specs_ : tuple of FeatureSpec
        `specs` with the kept signals filled in.
    regressor_ : RulRegressor
    feature_names_ : tuple of str
    background_ : DataFrame
        Up to `n_background` training feature rows: the reference of `explain_window`.
    """

    def __init__(
        self,
        *,
        settings: tuple[str, ...] = (),
        signals: tuple[str, ...] = (),
        specs: tuple[FeatureSpec, ...] = (),
        regressor: RulRegressor | None = None,
        unit: str = "unit",
        tolerance: tuple[float, ...] | None = None,
        n_background: int = 50,
        random_state: int = 0,
    ) -> None:
        self.settings = settings
        self.signals = signals
        self.specs = specs
        self.regressor = regressor
        self.unit = unit
        self.tolerance = tolerance
        self.n_background = n_background
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: ArrayLike, y_true: ArrayLike | None = None) -> Self:
        """Fit on raw rows of many units, each unit's rows in time order.

        `y` is the (capped) training label, `y_true` the uncapped remaining life the intervals
        are calibrated against (see `RulRegressor.fit`).
        """
        if not self.specs:
            raise ValueError("RulPipeline.specs is empty: nothing to compute")
        self.normalizer_ = ConditionNormalizer(
            settings=self.settings, signals=self.signals, tolerance=self.tolerance
        ).fit(X)
        kept = self.normalizer_.signals_
        self.specs_ = tuple(
            FeatureSpec(
                signals=spec.signals or kept,
                window=spec.window,
                stats=spec.stats,
                ewm_halflife=spec.ewm_halflife,
                min_samples=spec.min_samples,
            )
            for spec in self.specs
        )
        self.feature_names_ = feature_names(self.specs_)
        features = self.transform(X)
        regressor = self.regressor if self.regressor is not None else RulRegressor()
        self.regressor_ = clone(regressor).fit(
            features, y, groups=X[self.unit].to_numpy(), y_true=y_true
        )
        take = min(self.n_background, len(features))
        self.background_ = features.sample(n=take, random_state=self.random_state)
        return self

    @property
    def window_rows(self) -> int | pd.Timedelta:
        """How much history the scorer must read: the longest window of `specs_`."""
        windows = [s.window for s in self.specs_]
        spans = [w for w in windows if isinstance(w, pd.Timedelta)]
        counts = [w for w in windows if isinstance(w, int)]
        return max(spans) if spans else max(counts)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Window features of every row of raw telemetry of many units (vectorised path)."""
        normal = self.normalizer_.transform(X)
        return rolling_features_by(normal, self.specs_, by=self.unit)

    def transform_window(self, window: pd.DataFrame) -> pd.DataFrame:
        """One feature row from one asset's window of raw telemetry (the scorer's path)."""
        return window_features(self.normalizer_.transform(window), self.specs_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Remaining life at every row of raw telemetry of many units."""
        return np.asarray(self.regressor_.predict(self.transform(X)))

    def predict_interval(self, X: pd.DataFrame, coverage: float | None = None) -> np.ndarray:
        """``(n_rows, 2)`` interval at every row of raw telemetry."""
        return np.asarray(self.regressor_.predict_interval(self.transform(X), coverage))

    def predict_window(
        self, window: pd.DataFrame, coverage: float | None = None
    ) -> Mapping[str, float]:
        """The score of one asset now: ``{"rul", "rul_lo", "rul_hi"}`` from its latest window."""
        features = self.transform_window(window)
        rul = float(self.regressor_.predict(features)[0])
        lo, hi = self.regressor_.predict_interval(features, coverage)[0]
        return {"rul": rul, "rul_lo": float(lo), "rul_hi": float(hi)}

    def explain_window(
        self,
        window: pd.DataFrame,
        *,
        top_k: int = 5,
        n_permutations: int = 8,
        max_background: int = 50,
    ) -> Explanation:
        """The features that drove this window's RUL, against the training background.

        Contributions are in cycles (hours) of remaining life and sum, with ``other``, to the
        prediction minus the background's mean prediction (`models._explain.explain`). Sensor
        feature values are within-condition z-scores, not physical units. Cost:
        ``n_permutations * max_background * (n_features + 1)`` rows through the ensemble.
        """
        features = self.transform_window(window)
        return explain(
            self.regressor_,
            features,
            self.background_,
            top_k=top_k,
            n_permutations=n_permutations,
            max_background=max_background,
            random_state=self.random_state,
        )


def default_specs(window: int = 30, short: int = 10) -> tuple[FeatureSpec, ...]:
    """The C-MAPSS feature set: kept sensors' mean, slope and EWMA over `window`, mean over `short`.

    Plus the engine's age (``cycle``), which an operator always knows (run hours).
    """
    return (
        FeatureSpec(signals=(), window=window, stats=("mean", "slope", "ewma")),
        FeatureSpec(signals=(), window=short, stats=("mean",)),
        FeatureSpec(signals=("cycle",), window=1, stats=("last",)),
    )


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error."""
    d = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return float(np.sqrt(np.mean(d**2)))


def phm08_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """PHM08 score: sum of exp(-d/13) - 1 (early) or exp(d/10) - 1 (late), d = pred - true.

    Examples
    --------
    >>> round(phm08_score([10, 10], [0, 20]), 3)
    2.876
    """
    d = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def interval_metrics(y_true: ArrayLike, interval: np.ndarray) -> dict[str, float]:
    """Coverage (share of truths inside) and mean width of ``(n, 2)`` intervals."""
    truth = np.asarray(y_true, dtype=float)
    inside = (truth >= interval[:, 0]) & (truth <= interval[:, 1])
    return {
        "interval_coverage": float(inside.mean()),
        "interval_width": float(np.mean(interval[:, 1] - interval[:, 0])),
    }


def select_units(values: Sequence[Any], max_units: int | None) -> list[Any]:
    """The first `max_units` distinct values in order (all when None)."""
    seen = list(dict.fromkeys(values))
    return seen if max_units is None else seen[:max_units]
