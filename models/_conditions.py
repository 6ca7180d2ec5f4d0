"""Operating-condition normalisation: sensors as deviations from their condition's normal.

Multi-condition data (C-MAPSS FD002/FD004: six flight conditions) moves every sensor by far more
than degradation does. `ConditionNormalizer` finds the conditions by clustering the operational
settings, then rescales each signal to a z-score within its condition, so that a window's statistics
measure wear, not where the engine flies. With one condition (FD001) it is a plain standardisation.
It also drops signals that carry nothing within a condition (C-MAPSS sensors 1, 5, 6, 10, 16, 18, 19
on FD001), by a relative-spread rule, so that any subset works without a hand-written sensor list.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans


class ConditionNormalizer:
    """Cluster operating settings into conditions; z-score signals within each condition.

    Parameters
    ----------
    settings : tuple of str
        Columns holding the operational settings (may be empty: one condition).
    signals : tuple of str
        Candidate signals to normalise.
    tolerance : tuple of float or None
        Per-setting distance that still counts as the same condition (C-MAPSS: 0.5 kft of altitude,
        0.05 Mach, 1 degree of throttle). ``None``: 1 % of each setting's range, at least 1e-6.
    max_conditions : int
        Upper bound on the number of conditions tried.
    min_relative_std : float
        A signal whose mean within-condition std is below this fraction of its mean absolute
        level is constant: dropped.
    random_state : int
        Seed of the clustering.

    Attributes
    ----------
    centers_ : ndarray of shape (n_conditions, n_settings)
    mean_, scale_ : ndarray of shape (n_conditions, n_signals_kept)
    signals_ : tuple of str
        The signals kept, in output order.

    Examples
    --------
    >>> X = pd.DataFrame({"alt": [0.0, 0.0, 10.0, 10.0], "a": [1.0, 3.0, 11.0, 13.0]})
    >>> n = ConditionNormalizer(settings=("alt",), signals=("a",), tolerance=(1.0,)).fit(X)
    >>> n.transform(X)["a"].tolist()
    [-1.0, 1.0, -1.0, 1.0]
    """

    def __init__(
        self,
        *,
        settings: tuple[str, ...] = (),
        signals: tuple[str, ...] = (),
        tolerance: tuple[float, ...] | None = None,
        max_conditions: int = 10,
        min_relative_std: float = 1e-5,
        random_state: int = 0,
    ) -> None:
        self.settings = settings
        self.signals = signals
        self.tolerance = tolerance
        self.max_conditions = max_conditions
        self.min_relative_std = min_relative_std
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict[str, Any]:  # noqa: ARG002, FBT001, FBT002
        """Constructor parameters (scikit-learn's ``clone`` protocol)."""
        return {
            "settings": self.settings,
            "signals": self.signals,
            "tolerance": self.tolerance,
            "max_conditions": self.max_conditions,
            "min_relative_std": self.min_relative_std,
            "random_state": self.random_state,
        }

    def set_params(self, **params: Any) -> Self:  # noqa: ANN401
        """Set constructor parameters (scikit-learn's ``clone`` protocol)."""
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:  # noqa: ARG002
        """Find the conditions and each kept signal's mean and spread within them."""
        if self.max_conditions < 1:
            raise ValueError(f"max_conditions must be at least 1. Got {self.max_conditions}")
        settings = X.loc[:, list(self.settings)].to_numpy(dtype=float)
        self.centers_ = self._cluster(settings)
        labels = self._assign(settings)
        values = X.loc[:, list(self.signals)].to_numpy(dtype=float)
        k = len(self.centers_)
        mean = np.full((k, values.shape[1]), np.nan)
        std = np.full((k, values.shape[1]), np.nan)
        for c in range(k):
            rows = values[labels == c]
            if len(rows):
                mean[c] = np.nanmean(rows, axis=0) if np.isfinite(rows).any() else np.nan
                std[c] = np.nanstd(rows, axis=0) if np.isfinite(rows).any() else np.nan
        level = np.nanmean(np.abs(mean), axis=0)
        spread = np.nanmean(std, axis=0)
        keep = spread > self.min_relative_std * np.maximum(level, 1e-12)
        self.signals_ = tuple(s for s, k_ in zip(self.signals, keep, strict=True) if k_)
        self.mean_ = mean[:, keep]
        scale = std[:, keep]
        self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """The kept signals as within-condition z-scores; other columns are passed through."""
        settings = X.loc[:, list(self.settings)].to_numpy(dtype=float)
        labels = self._assign(settings)
        values = X.loc[:, list(self.signals_)].to_numpy(dtype=float)
        z = (values - self.mean_[labels]) / self.scale_[labels]
        out = X.drop(columns=[s for s in self.signals if s not in self.signals_])
        # Whole-column replacement: integer signals (as InfluxDB may return them) become floats.
        out[list(self.signals_)] = z
        return out

    def condition(self, X: pd.DataFrame) -> np.ndarray:
        """The condition (cluster) index of each row."""
        return self._assign(X.loc[:, list(self.settings)].to_numpy(dtype=float))

    def _tolerance(self, settings: np.ndarray) -> np.ndarray:
        if self.tolerance is not None:
            return np.asarray(self.tolerance, dtype=float)
        span = np.nanmax(settings, axis=0) - np.nanmin(settings, axis=0)
        tol: np.ndarray = np.maximum(0.01 * span, 1e-6)
        return tol

    def _cluster(self, settings: np.ndarray) -> np.ndarray:
        if settings.shape[1] == 0:
            return np.zeros((1, 0))
        self.tolerance_ = self._tolerance(settings)
        scaled = settings / self.tolerance_
        # The smallest number of conditions whose every member lies within tolerance of its centre.
        for k in range(1, self.max_conditions + 1):
            if k == 1:
                centers = scaled.mean(axis=0, keepdims=True)
            else:
                km = KMeans(n_clusters=k, n_init=4, random_state=self.random_state).fit(scaled)
                centers = km.cluster_centers_
            dist = np.abs(scaled[:, None, :] - centers[None, :, :]).max(axis=2).min(axis=1)
            if dist.max() <= 1.0:
                break
        return np.asarray(centers * self.tolerance_)

    def _assign(self, settings: np.ndarray) -> np.ndarray:
        if settings.shape[1] == 0:
            return np.zeros(len(settings), dtype=np.int64)
        scaled = settings / self.tolerance_
        centers = self.centers_ / self.tolerance_
        dist = ((scaled[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        labels: np.ndarray = np.asarray(dist.argmin(axis=1), dtype=np.int64)
        return labels
