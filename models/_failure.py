"""Failure probability: calibrated classifiers, monotone across horizons, and their trainers.

Two estimators follow the contract of STYLE.md rule 11:

- `FailureClassifier`: histogram gradient boosting whose probabilities are calibrated on held-out
  folds of the training data (`sklearn.calibration.CalibratedClassifierCV`; with ``groups`` the
  folds never split a unit).
- `HorizonFailureModel`: P(failure within N cycles) for several horizons N from **one** model of
  the failure-time distribution, F(N | x) = P(T <= N | x). The training rows are stacked once per
  horizon with N as a feature, and the boosted trees carry a monotone-increasing constraint on
  N; the calibration maps (isotonic) are non-decreasing and averaging them over folds keeps that,
  so P(within N1) <= P(within N2) for N1 < N2 holds by construction. A cumulative maximum over
  sorted horizons is applied last as a guard against floating-point ties; tests check it changes
  nothing.

Trainers
--------
- `train_ai4i_failure`: UCI AI4I 2020 "Machine failure" on a stratified held-out split (a row is
  one product, the unit), plus per-mode models (TWF, HDF, PWF, OSF).
- `train_cmapss_failure`: C-MAPSS FD001 "fails within N cycles", N in (10, 20, 30, 50), fitted on
  the training engines and evaluated at the last cycle of each test engine against
  ``RUL_FD001.txt``.

Hyper-parameters are chosen by cross-validation on the training data only; the F1 threshold is
chosen on out-of-fold predictions of the training data, never on the test set.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import GroupKFold, StratifiedKFold, train_test_split

from models import _ai4i, _cmapss
from models._base import DataSource, TrainRequest, TrainResult, fingerprint
from models._features import FeatureSpec, rolling_features_by

Calibration = Literal["isotonic", "sigmoid"]


def _as_frame(X: pd.DataFrame | ArrayLike) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X, dtype=float)
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


def _background(frame: pd.DataFrame, seed: int, size: int = 100) -> pd.DataFrame:
    """A small random sample of training rows, kept so that every score can be explained."""
    return frame.sample(n=min(size, len(frame)), random_state=seed).reset_index(drop=True)


class FailureClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Gradient-boosted failure classifier with probabilities calibrated on held-out folds.

    ``score(X)`` is the calibrated probability of failure: higher = worse.

    Parameters
    ----------
    learning_rate : float
        Boosting learning rate, in (0, 1].
    max_iter : int
        Boosting iterations (no early stopping: the fit is deterministic given the seed).
    max_leaf_nodes : int
        Leaves per tree, >= 2.
    min_samples_leaf : int
        Minimum rows per leaf, >= 1.
    l2_regularization : float
        L2 penalty on leaf values, >= 0.
    calibration : {"isotonic", "sigmoid"}
        Calibration map fitted on held-out folds.
    cv : int
        Calibration folds, >= 2. Stratified, or grouped by unit when ``fit`` gets ``groups``.
    monotonic_cst : mapping of str to int, optional
        Per-feature monotone constraint (+1 increasing, -1 decreasing) by column name.
    random_state : int
        Seed for the folds.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns seen in ``fit``; ``predict_proba`` reorders its input to these.
    calibrated_ : CalibratedClassifierCV
        The fitted, calibrated ensemble.
    classes_ : ndarray
        ``[0, 1]``.
    background_ : pandas.DataFrame
        A random sample of at most 100 training rows: the reference of `models.explain`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    >>> y = (X["a"] + 0.3 * rng.normal(size=300) > 1.0).astype(int)
    >>> model = FailureClassifier(max_iter=30, cv=3).fit(X, y)
    >>> p = model.score(X)
    >>> bool(((p >= 0) & (p <= 1)).all())
    True
    """

    def __init__(
        self,
        *,
        learning_rate: float = 0.1,
        max_iter: int = 200,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        calibration: Calibration = "isotonic",
        cv: int = 3,
        monotonic_cst: Mapping[str, int] | None = None,
        random_state: int = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.calibration = calibration
        self.cv = cv
        self.monotonic_cst = monotonic_cst
        self.random_state = random_state

    def _validate_params(self) -> None:
        checks = {
            "learning_rate": 0.0 < self.learning_rate <= 1.0,
            "max_iter": int(self.max_iter) >= 1,
            "max_leaf_nodes": int(self.max_leaf_nodes) >= 2,  # noqa: PLR2004
            "min_samples_leaf": int(self.min_samples_leaf) >= 1,
            "l2_regularization": self.l2_regularization >= 0.0,
            "calibration": self.calibration in {"isotonic", "sigmoid"},
            "cv": int(self.cv) >= 2,  # noqa: PLR2004
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = {name: getattr(self, name) for name in bad}
            raise ValueError(f"FailureClassifier: invalid parameter(s) {values}")

    def fit(self, X: pd.DataFrame, y: ArrayLike, groups: ArrayLike | None = None) -> Self:
        """Fit the boosted trees and their calibration.

        Parameters
        ----------
        X : pandas.DataFrame
            Features, one row per sample.
        y : array-like of {0, 1}
            1 = failure.
        groups : array-like, optional
            Unit of each row; calibration folds then never split a unit.

        Returns
        -------
        FailureClassifier
            ``self``, fitted.

        Raises
        ------
        ValueError
            On invalid parameters, a single class in ``y``, or infinite features
            (NaN is allowed: a missing value).
        """
        self._validate_params()
        frame = _as_frame(X)
        target = np.asarray(y).astype(int).ravel()
        if set(np.unique(target)) != {0, 1}:
            raise ValueError("FailureClassifier needs both classes 0 and 1 in y")
        values = frame.to_numpy(dtype=float)
        if np.isinf(values).any():
            # NaN is a missing value the trees route natively; infinity is a bug upstream.
            raise ValueError("FailureClassifier: X holds infinite values")
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        constraints = dict(self.monotonic_cst or {})
        unknown = sorted(set(constraints) - set(frame.columns))
        if unknown:
            raise ValueError(f"monotonic_cst names unknown columns {unknown}")
        booster = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            monotonic_cst=[constraints.get(str(c), 0) for c in frame.columns],
            early_stopping=False,
            random_state=self.random_state,
        )
        cv: Any
        if groups is None:
            cv = StratifiedKFold(n_splits=self.cv, shuffle=True, random_state=self.random_state)
        else:
            cv = list(GroupKFold(n_splits=self.cv).split(values, target, np.asarray(groups)))
        self.calibrated_ = CalibratedClassifierCV(booster, method=self.calibration, cv=cv)
        self.calibrated_.fit(values, target)
        self.classes_ = np.array([0, 1])
        self.background_ = _background(frame, self.random_state)
        return self

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        frame = _as_frame(X)
        missing = [c for c in self.feature_names_in_ if c not in frame.columns]
        if missing:
            raise ValueError(f"X lacks the fitted columns {missing}")
        return frame[list(self.feature_names_in_)].to_numpy(dtype=float)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, columns ``[P(no failure), P(failure)]``."""
        proba: np.ndarray = self.calibrated_.predict_proba(self._matrix(X))
        return proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Labels at probability 0.5 (alerting chooses its own threshold, see STYLE.md 11)."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)  # noqa: PLR2004

    def score(self, X: pd.DataFrame, y: object = None) -> pd.Series:  # noqa: ARG002
        """Probability of failure per row, higher = worse, indexed like ``X``."""
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.Series(self.predict_proba(X)[:, 1], index=index, name="probability")

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        """Small parameter sets for the conformance suite (STYLE.md rule 11)."""
        return [{"max_iter": 20, "cv": 2}, {"max_iter": 20, "cv": 2, "calibration": "sigmoid"}]

    @classmethod
    def _skipped_checks(cls) -> dict[str, str]:
        """Conformance checks that do not apply, with the reason (none)."""
        return {}


class HorizonFailureModel(BaseEstimator):  # type: ignore[misc]
    """P(failure within N cycles) for several N, monotone in N by construction.

    ``fit`` takes the remaining life of each training row as ``y`` and learns the failure-time
    distribution F(N | x) with a `FailureClassifier` over rows stacked once per horizon, with
    ``horizon`` as a feature constrained monotone increasing (see the module docstring).

    Parameters
    ----------
    horizons : sequence of float
        Horizons in cycles, positive and distinct (sorted internally).
    score_horizon : float
        The horizon `score` reports; must be one of ``horizons``.
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization, cv, random_state
        As for `FailureClassifier`. Calibration is isotonic (a non-decreasing map).

    Attributes
    ----------
    horizons_ : tuple of float
        Sorted horizons.
    classifier_ : FailureClassifier
        The single fitted model of F(N | x).
    feature_names_in_ : ndarray of str
        Columns seen in ``fit``.
    background_ : pandas.DataFrame
        A random sample of at most 100 training rows: the reference of `models.explain`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"wear": rng.uniform(0, 1, 400)})
    >>> rul = 100 * (1 - X["wear"]) + rng.normal(0, 5, 400)
    >>> m = HorizonFailureModel(horizons=(10, 30), score_horizon=30, max_iter=30).fit(X, rul)
    >>> p = m.predict_proba(X)
    >>> bool((p[10.0] <= p[30.0]).all())
    True
    """

    def __init__(
        self,
        *,
        horizons: Sequence[float] = (10, 20, 30, 50),
        score_horizon: float = 30,
        learning_rate: float = 0.1,
        max_iter: int = 150,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 0.0,
        cv: int = 3,
        random_state: int = 0,
    ) -> None:
        self.horizons = horizons
        self.score_horizon = score_horizon
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.cv = cv
        self.random_state = random_state

    def _stack(self, frame: pd.DataFrame) -> pd.DataFrame:
        blocks = [frame.assign(horizon=h) for h in self.horizons_]
        return pd.concat(blocks, ignore_index=True)

    def fit(self, X: pd.DataFrame, y: ArrayLike, groups: ArrayLike | None = None) -> Self:
        """Fit F(N | x) from features and the remaining life (cycles) of each row.

        Parameters
        ----------
        X : pandas.DataFrame
            Features; must not contain a column named ``horizon``.
        y : array-like of float
            Remaining life of each row (uncensored: run-to-failure data).
        groups : array-like, optional
            Unit (engine) of each row; calibration folds never split a unit.

        Returns
        -------
        HorizonFailureModel
            ``self``, fitted.

        Raises
        ------
        ValueError
            On invalid horizons, a ``horizon`` column in ``X``, or a horizon with one class.
        """
        horizons = sorted(float(h) for h in self.horizons)
        if not horizons or horizons[0] <= 0 or len(set(horizons)) != len(horizons):
            raise ValueError(f"horizons must be positive and distinct, got {self.horizons!r}")
        if float(self.score_horizon) not in horizons:
            raise ValueError(f"score_horizon {self.score_horizon} is not one of {horizons}")
        frame = _as_frame(X)
        if "horizon" in frame.columns:
            raise ValueError("X must not contain a column named 'horizon'")
        self.horizons_ = tuple(horizons)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        life = np.asarray(y, dtype=float).ravel()
        labels = np.concatenate([(life <= h).astype(int) for h in horizons])
        stacked_groups = None if groups is None else np.tile(np.asarray(groups), len(horizons))
        self.classifier_ = FailureClassifier(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            calibration="isotonic",
            cv=self.cv,
            monotonic_cst={"horizon": 1},
            random_state=self.random_state,
        )
        self.classifier_.fit(self._stack(frame), labels, groups=stacked_groups)
        self.background_ = _background(frame, self.random_state)
        return self

    def predict_proba(self, X: pd.DataFrame) -> pd.DataFrame:
        """P(failure within N) per row (index of ``X``) and horizon N (columns, ascending)."""
        frame = _as_frame(X)[list(self.feature_names_in_)].reset_index(drop=True)
        p = self.classifier_.predict_proba(self._stack(frame))[:, 1]
        table = p.reshape(len(self.horizons_), len(frame)).T
        # Guard only: the monotone trees and isotonic maps already order the columns.
        table = np.maximum.accumulate(table, axis=1)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(table, index=index, columns=list(self.horizons_))

    def score(self, X: pd.DataFrame, y: object = None) -> pd.Series:  # noqa: ARG002
        """P(failure within ``score_horizon``), higher = worse."""
        proba = self.predict_proba(X)[float(self.score_horizon)]
        return proba.rename("probability")

    @classmethod
    def _test_params(cls) -> list[dict[str, Any]]:
        """Small parameter sets for the conformance suite (STYLE.md rule 11)."""
        return [{"max_iter": 20, "cv": 2, "horizons": (10, 30), "score_horizon": 30}]

    @classmethod
    def _skipped_checks(cls) -> dict[str, str]:
        """Conformance checks that do not apply, with the reason."""
        return {"roc_auc_labelled": "y is a remaining life, not a label; tested per horizon"}


# ----------------------------------------------------------------------------- evaluation


def binary_metrics(
    y_true: ArrayLike, proba: ArrayLike, *, threshold: float | None = None, prefix: str = ""
) -> dict[str, float]:
    """Held-out figures of a probability forecast.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        Observed outcome.
    proba : array-like of float
        Forecast probability of 1.
    threshold : float, optional
        Decision threshold for F1, precision and recall (chosen elsewhere, never on this data).
    prefix : str
        Prepended to every key.

    Returns
    -------
    dict of str to float
        ``roc_auc``, ``pr_auc`` (average precision), ``brier``, ``log_loss``, ``positives``,
        ``n``, ``prevalence`` and, with a threshold, ``f1``, ``precision``, ``recall``. ROC-AUC
        and PR-AUC are left out when ``y_true`` has one class.

    Examples
    --------
    >>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], threshold=0.3)
    >>> m["roc_auc"], m["f1"]
    (0.75, 0.8)
    """
    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(proba, dtype=float), 0.0, 1.0)
    out: dict[str, float] = {
        "n": float(len(y)),
        "positives": float(y.sum()),
        "prevalence": float(y.mean()),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
    }
    if 0 < y.sum() < len(y):
        out["roc_auc"] = float(roc_auc_score(y, p))
        out["pr_auc"] = float(average_precision_score(y, p))
    if threshold is not None:
        pred = (p >= threshold).astype(int)
        out["threshold"] = float(threshold)
        out["f1"] = float(f1_score(y, pred, zero_division=0.0))
        out["precision"] = float(precision_score(y, pred, zero_division=0.0))
        out["recall"] = float(recall_score(y, pred, zero_division=0.0))
    return {f"{prefix}{k}": v for k, v in out.items()}


def best_f1_threshold(y_true: ArrayLike, proba: ArrayLike) -> float:
    """The probability threshold that maximises F1 on (validation) data.

    Examples
    --------
    >>> best_f1_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.35
    """
    precision, recall, thresholds = precision_recall_curve(np.asarray(y_true).astype(int), proba)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def calibration_png(
    curves: Mapping[str, tuple[Any, Any]], *, title: str, n_bins: int = 10
) -> bytes:
    """A reliability diagram (observed frequency vs forecast probability) as PNG bytes.

    Parameters
    ----------
    curves : mapping of label to (y_true, proba)
        One line per entry.
    title : str
        Figure title.
    n_bins : int
        Equal-width probability bins per curve (empty bins are skipped): with rare failures,
        quantile bins would all sit near 0.

    Returns
    -------
    bytes
        The PNG image.
    """
    # A Figure of its own, not pyplot: no global backend switch, nothing to close.
    fig = Figure(figsize=(6, 7), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    for label, (y_true, proba) in curves.items():
        y = np.asarray(y_true).astype(int)
        p = np.asarray(proba, dtype=float)
        if 0 < y.sum() < len(y):
            observed, forecast = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
            top.plot(forecast, observed, marker="o", label=label)
        bottom.hist(p, bins=20, range=(0, 1), histtype="step", label=label)
    top.set_ylabel("observed failure frequency")
    top.set_title(title)
    top.legend(loc="upper left", fontsize="small")
    bottom.set_yscale("log")
    bottom.set_xlabel("forecast probability")
    bottom.set_ylabel("count")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _oof_proba(
    model: FailureClassifier, X: pd.DataFrame, y: np.ndarray, splits: Iterable[Any]
) -> np.ndarray:
    """Out-of-fold probabilities of `model` on the training data (validation, never test)."""
    out = np.full(len(y), np.nan)
    for fit_idx, val_idx in splits:
        fitted = clone(model).fit(X.iloc[fit_idx], y[fit_idx])
        out[val_idx] = fitted.predict_proba(X.iloc[val_idx])[:, 1]
    return out


def _select(
    base: FailureClassifier,
    grid: Sequence[Mapping[str, Any]],
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    seed: int,
    folds: int,
) -> tuple[FailureClassifier, np.ndarray, dict[str, float]]:
    """Pick the grid point with the best out-of-fold ROC-AUC (ties: lower Brier) on training data.

    Returns the unfitted winner, its out-of-fold probabilities and the score of every candidate.
    """
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y))
    best: tuple[float, float] | None = None
    winner = base
    winner_oof = np.zeros(len(y))
    scores: dict[str, float] = {}
    for point in grid:
        candidate = clone(base).set_params(**point)
        oof = _oof_proba(candidate, X, y, splits)
        key = (float(roc_auc_score(y, oof)), -float(brier_score_loss(y, oof)))
        scores[",".join(f"{k}={v}" for k, v in sorted(point.items()))] = key[0]
        if best is None or key > best:
            best, winner, winner_oof = key, candidate, oof
    return winner, winner_oof, scores


AI4I_GRID: tuple[dict[str, Any], ...] = (
    {"learning_rate": 0.05, "max_leaf_nodes": 15, "calibration": "isotonic"},
    {"learning_rate": 0.1, "max_leaf_nodes": 7, "calibration": "isotonic"},
    {"learning_rate": 0.1, "max_leaf_nodes": 15, "calibration": "sigmoid"},
)
"""Candidates compared by cross-validation on the training split (small: 2 shared CPU cores)."""

AI4I_MODES: tuple[str, ...] = ("twf", "hdf", "pwf", "osf")
"""Failure modes modelled separately. RNF (random, 19 cases, 18 not labelled failed) is not."""


def _find(paths: Sequence[Path], name: str) -> Path:
    for path in paths:
        if Path(path).name == name:
            return Path(path)
    raise ValueError(f"no {name} among the request's data files {[str(p) for p in paths]}")


def train_ai4i_failure(request: TrainRequest) -> TrainResult:
    """Train and evaluate the AI4I 2020 machine-failure classifier.

    Protocol: a stratified held-out test split (``test_size``, default 0.25) of products; the
    hyper-parameters are chosen among `AI4I_GRID` by stratified cross-validation on the training
    split, the F1 threshold on the winner's out-of-fold training predictions; the final model is
    refit on the whole training split and scored once on the test split. The same protocol (with
    the winner's hyper-parameters) gives one model per failure mode in `AI4I_MODES`, reported as
    ``<mode>_roc_auc`` etc.

    Parameters
    ----------
    request : TrainRequest
        ``data`` holds ``ai4i2020.csv``. ``params`` may set ``test_size``, ``folds``,
        ``max_iter`` and ``modes`` (a list of mode labels, possibly empty).

    Returns
    -------
    TrainResult
        The machine-failure model, its metrics, the split by ``product_id`` and a calibration PNG.
    """
    path = _find(request.data, "ai4i2020.csv")
    raw = _ai4i.load_ai4i(path, max_units=request.max_units)
    X = _ai4i.features(raw)
    y = raw["machine_failure"].to_numpy(dtype=int)
    test_size = float(request.params.get("test_size", 0.25))
    folds = int(request.params.get("folds", 4))
    modes = tuple(request.params.get("modes", AI4I_MODES))
    train_idx, test_idx = train_test_split(
        np.arange(len(raw)), test_size=test_size, stratify=y, random_state=request.seed
    )
    train_ids = raw["product_id"].iloc[train_idx].astype(str).tolist()
    test_ids = raw["product_id"].iloc[test_idx].astype(str).tolist()
    if set(train_ids) & set(test_ids):
        raise AssertionError("a product is on both sides of the AI4I split")
    base = FailureClassifier(
        max_iter=int(request.params.get("max_iter", 200)), random_state=request.seed
    )
    X_train, y_train = X.iloc[train_idx], y[train_idx]
    X_test, y_test = X.iloc[test_idx], y[test_idx]
    chosen, oof, cv_scores = _select(
        base, AI4I_GRID, X_train, y_train, seed=request.seed, folds=folds
    )
    threshold = best_f1_threshold(y_train, oof)
    model = clone(chosen).fit(X_train, y_train)
    proba = model.predict_proba(X_test)[:, 1]
    metrics = binary_metrics(y_test, proba, threshold=threshold)
    metrics.update(binary_metrics(y_train, oof, threshold=threshold, prefix="cv_"))
    curves: dict[str, tuple[Any, Any]] = {"machine failure (test)": (y_test, proba)}
    for mode in modes:
        y_mode = raw[mode].to_numpy(dtype=int)
        if y_mode[train_idx].sum() < folds * 2 or y_mode[test_idx].sum() == 0:
            continue  # too few cases on a side in this subset to fit or to evaluate
        mode_splits = StratifiedKFold(folds, shuffle=True, random_state=request.seed).split(
            X_train, y_mode[train_idx]
        )
        mode_oof = _oof_proba(chosen, X_train, y_mode[train_idx], mode_splits)
        mode_threshold = best_f1_threshold(y_mode[train_idx], mode_oof)
        mode_model = clone(chosen).fit(X_train, y_mode[train_idx])
        mode_proba = mode_model.predict_proba(X_test)[:, 1]
        metrics.update(
            binary_metrics(
                y_mode[test_idx], mode_proba, threshold=mode_threshold, prefix=f"{mode}_"
            )
        )
        curves[f"{mode.upper()} (test)"] = (y_mode[test_idx], mode_proba)
    params = {
        **{k: v for k, v in model.get_params().items() if k != "monotonic_cst"},
        "test_size": test_size,
        "folds": folds,
        "threshold": threshold,
        "cv_roc_auc": cv_scores,
    }
    notes = (
        f"AI4I 2020, {len(raw)} products ({int(y.sum())} failures). Stratified held-out split "
        f"({len(test_idx)} test products, seed {request.seed}); features: type, temperatures, "
        "speed, torque, tool wear, temperature difference, power, tool wear x torque (never UDI, "
        "Product ID or the mode flags). Hyper-parameters by stratified CV on the training split, "
        "F1 threshold on out-of-fold training predictions; isotonic or sigmoid calibration fitted "
        "on held-out folds of the training split. Per-mode figures use the same split."
    )
    return TrainResult(
        name="ai4i_failure",
        kind="failure_probability",
        estimator=model,
        features=_ai4i.FEATURES,
        params=params,
        metrics=metrics,
        data=DataSource(paths=(str(path),), sha256=fingerprint([path]), rows=len(raw)),
        split={"unit": "product_id", "train_units": train_ids, "test_units": test_ids},
        figures={
            "calibration": calibration_png(curves, title="AI4I 2020: calibration on the test split")
        },
        notes=notes,
    )


# ----------------------------------------------------------------------------- C-MAPSS

CMAPSS_HORIZONS: tuple[float, ...] = (10.0, 20.0, 30.0, 50.0)

_FLAT_SENSORS = frozenset(
    # Constant (or nearly) in FD001, which runs at one operating condition: no information.
    {"t2_r", "p2_psia", "p15_psia", "epr", "far_b", "nf_dmd_rpm", "pcnfr_dmd_rpm"}
)

CMAPSS_SIGNALS: tuple[str, ...] = tuple(s for s in _cmapss.SENSORS if s not in _FLAT_SENSORS)
"""The 14 informative FD001 sensors."""

CMAPSS_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec(signals=CMAPSS_SIGNALS, window=30, stats=("mean", "slope")),
    FeatureSpec(signals=CMAPSS_SIGNALS, window=5, stats=("mean",)),
    FeatureSpec(signals=("cycle",), window=1, stats=("last",)),
)
"""Trailing-window features (shared kernel of `models._features`): the scorer computes the same."""


def cmapss_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Per-cycle features from each engine's history up to that cycle (no look-ahead).

    Parameters
    ----------
    frame : pandas.DataFrame
        As returned by `models._cmapss.read_cmapss`.

    Returns
    -------
    pandas.DataFrame
        One row per input row (same order, default index), columns ``feature_names(CMAPSS_SPECS)``.
    """
    telemetry = _cmapss.as_telemetry(frame)
    out = rolling_features_by(telemetry, CMAPSS_SPECS, by="unit")
    return out.reset_index(drop=True)


def _last_cycles(frame: pd.DataFrame) -> np.ndarray:
    """Row positions of each engine's last cycle, in engine order."""
    positions = frame.reset_index(drop=True).groupby("unit")["cycle"].idxmax()
    return positions.to_numpy()


def train_cmapss_failure(request: TrainRequest) -> TrainResult:
    """Train and evaluate P(failure within N cycles) on C-MAPSS FD001.

    Protocol: fit `HorizonFailureModel` on every cycle of the training engines (label: true
    remaining cycles <= N, known exactly because the engines run to failure). Hyper-parameters are
    chosen among a small grid by engine-grouped cross-validation on the training engines (mean
    Brier over horizons); calibration folds are grouped by engine too. The test figures are taken
    once per test engine at its last cycle, against ``RUL_FD001.txt`` (fails within N iff true
    RUL <= N). Training and test engines are distinct machines by construction of the data set;
    within training, the CV folds never split an engine.

    Parameters
    ----------
    request : TrainRequest
        ``data`` holds ``train_FD001.txt``, ``test_FD001.txt`` and ``RUL_FD001.txt``. ``params``
        may set ``horizons``, ``folds`` and ``max_iter``.

    Returns
    -------
    TrainResult
        The horizon model, per-horizon metrics (``h10_roc_auc``...), the engines on each side, and
        a calibration PNG.
    """
    train_path = _find(request.data, "train_FD001.txt")
    test_path = _find(request.data, "test_FD001.txt")
    rul_path = _find(request.data, "RUL_FD001.txt")
    train = _cmapss.read_cmapss(train_path, max_units=request.max_units)
    test = _cmapss.read_cmapss(test_path, max_units=request.max_units)
    true_rul = _cmapss.read_rul(rul_path)
    horizons = tuple(float(h) for h in request.params.get("horizons", CMAPSS_HORIZONS))
    folds = int(request.params.get("folds", 3))
    X_train = cmapss_features(train)
    life = _cmapss.rul_labels(train, cap=None).to_numpy()
    groups = train["unit"].to_numpy()
    base = HorizonFailureModel(
        horizons=horizons,
        score_horizon=horizons[len(horizons) // 2],
        max_iter=int(request.params.get("max_iter", 150)),
        random_state=request.seed,
    )
    grid: tuple[dict[str, Any], ...] = (
        {"max_leaf_nodes": 7, "learning_rate": 0.1},
        {"max_leaf_nodes": 15, "learning_rate": 0.05},
    )
    splits = list(GroupKFold(n_splits=folds).split(X_train, life, groups))
    cv_brier: dict[str, float] = {}
    best: tuple[float, dict[str, Any], pd.DataFrame] | None = None
    for point in grid:
        oof = pd.DataFrame(np.nan, index=X_train.index, columns=list(horizons))
        for fit_idx, val_idx in splits:
            fitted = clone(base).set_params(**point)
            fitted.fit(X_train.iloc[fit_idx], life[fit_idx], groups=groups[fit_idx])
            oof.iloc[val_idx] = fitted.predict_proba(X_train.iloc[val_idx]).to_numpy()
        score = float(
            np.mean([brier_score_loss((life <= h).astype(int), oof[h]) for h in horizons])
        )
        cv_brier[",".join(f"{k}={v}" for k, v in sorted(point.items()))] = score
        if best is None or score < best[0]:
            best = (score, point, oof)
    assert best is not None  # noqa: S101 - the grid is not empty
    model = clone(base).set_params(**best[1]).fit(X_train, life, groups=groups)
    oof = best[2]

    test_features = cmapss_features(test)
    last = _last_cycles(test)
    test_units = test["unit"].to_numpy()[last]
    truth = true_rul[test_units - 1]
    proba_test = model.predict_proba(test_features.iloc[last])
    train_units = sorted(int(u) for u in np.unique(groups))
    metrics: dict[str, float] = {"test_engines": float(len(last))}
    curves: dict[str, tuple[Any, Any]] = {}
    cv_curves: dict[str, tuple[Any, Any]] = {}
    for h in horizons:
        y_h = (truth <= h).astype(int)
        y_oof = (life <= h).astype(int)
        cv_curves[f"within {int(h)} cycles"] = (y_oof, oof[h].to_numpy())
        threshold = best_f1_threshold(y_oof, oof[h].to_numpy())
        metrics.update(
            binary_metrics(y_h, proba_test[h].to_numpy(), threshold=threshold, prefix=f"h{int(h)}_")
        )
        metrics.update(binary_metrics(y_oof, oof[h], threshold=threshold, prefix=f"cv_h{int(h)}_"))
        curves[f"within {int(h)} cycles"] = (y_h, proba_test[h].to_numpy())
    metrics["monotone_violations"] = float((np.diff(proba_test.to_numpy(), axis=1) < 0).sum())
    notes = (
        f"C-MAPSS FD001: {len(train_units)} training engines (all cycles), {len(last)} test "
        "engines scored at their last cycle against RUL_FD001.txt. One gradient-boosted model of "
        "F(N | x) = P(RUL <= N | x) with the horizon as a monotone-increasing feature and isotonic "
        "calibration on engine-grouped folds: P(within N) is non-decreasing in N by construction. "
        "Hyper-parameters by engine-grouped CV on the training engines (mean Brier over horizons); "
        "F1 thresholds per horizon on the out-of-fold training predictions (cv_h*: every training "
        "cycle of the held-out engines, not only last cycles). "
        "With 100 test engines, the short-horizon figures rest on a handful of positives."
    )
    return TrainResult(
        name="cmapss_failure",
        kind="failure_probability",
        estimator=model,
        features=tuple(X_train.columns),
        params={**model.get_params(), "folds": folds, "cv_brier": cv_brier},
        metrics=metrics,
        data=DataSource(
            paths=(str(train_path), str(test_path), str(rul_path)),
            sha256=fingerprint([train_path, test_path, rul_path]),
            rows=len(train) + len(test),
        ),
        split={
            "unit": "engine",
            "train_units": [f"train-{u}" for u in train_units],
            "test_units": [f"test-{int(u)}" for u in test_units],
            "cv_folds": [sorted(int(u) for u in np.unique(groups[v])) for _, v in splits],
        },
        figures={
            "calibration": calibration_png(
                curves, title="C-MAPSS FD001: P(fail within N), test engines at last cycle"
            ),
            "calibration_cv": calibration_png(
                cv_curves, title="C-MAPSS FD001: out-of-fold, every cycle of held-out engines"
            ),
        },
        notes=notes,
    )
