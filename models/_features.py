"""Window features: one code path for training and for the online scorer.

Theory of operation
-------------------
The input is what the ingester stores and ``SELECT * FROM telemetry WHERE asset=...`` returns: a
frame indexed by time (UTC), one column per signal, with gaps and NaN where a read failed. A
`FeatureSpec` declares which signals, over which trailing window (a number of samples, or a time
span), and which statistics. Both paths gather the window's values into a block of shape
``(windows, samples, signals)`` and reduce it with the same kernel (``_reduce``):

- `window_features` computes one feature row from one window: the scorer's path;
- `rolling_features` computes the row of every trailing window of a run at once: the training path.

``rolling_features(run, spec).iloc[i]`` equals ``window_features(run.iloc[: i + 1], spec)``
(tested).

Rules
-----
- Time is measured in hours on a `DatetimeIndex` (C-MAPSS: one cycle = one hour) and in index units
  on a numeric index. Slopes are per hour (per index unit); the EWMA half-life is in the same unit.
- A window holds the trailing ``window`` rows (int), or the rows with ``t > t_last - window``
  (`pandas.Timedelta`). Rows at the start of a run give partial windows.
- NaN values are skipped. A statistic with fewer than ``min_samples`` values in its window is NaN
  (slope and std need two). Nothing here warns: empty windows give NaN, quietly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import pandas as pd

Stat = Literal["last", "mean", "std", "min", "max", "slope", "ewma", "count"]
STATS: tuple[Stat, ...] = ("last", "mean", "std", "min", "max", "slope", "ewma", "count")
"""Every statistic a `FeatureSpec` may ask for."""

_HOUR_NS = 3_600_000_000_000.0
_TWO = 2  # std and slope need two values


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Which statistics of which signals over which trailing window.

    Parameters
    ----------
    signals : tuple of str
        Column names in the telemetry frame.
    window : int or pandas.Timedelta
        Trailing window: a number of samples (rows), or a time span (needs a `DatetimeIndex`).
    stats : tuple of str
        Statistics from `STATS`, computed per signal, skipping NaN.
    ewm_halflife : float
        Half-life of the ``ewma`` weights, in hours (index units on a numeric index).
    min_samples : int
        Fewer valid values than this in the window gives NaN.

    Examples
    --------
    >>> spec = FeatureSpec(signals=("temp",), window=3, stats=("mean", "slope"))
    >>> spec.names
    ('temp__mean_w3', 'temp__slope_w3')
    """

    signals: tuple[str, ...]
    window: int | pd.Timedelta
    stats: tuple[Stat, ...] = ("last", "mean", "std", "slope")
    ewm_halflife: float = 5.0
    min_samples: int = 1

    def __post_init__(self) -> None:
        unknown = [s for s in self.stats if s not in STATS]
        if unknown:
            msg = f"FeatureSpec.stats: unknown {unknown!r}; choose from {STATS!r}"
            raise ValueError(msg)
        if isinstance(self.window, int) and self.window < 1:
            raise ValueError(f"FeatureSpec.window must be at least 1. Got {self.window!r}")
        if isinstance(self.window, pd.Timedelta) and self.window <= pd.Timedelta(0):
            raise ValueError(f"FeatureSpec.window must be positive. Got {self.window!r}")
        if self.ewm_halflife <= 0:
            raise ValueError(f"FeatureSpec.ewm_halflife must be positive. Got {self.ewm_halflife}")
        if self.min_samples < 1:
            raise ValueError(f"FeatureSpec.min_samples must be at least 1. Got {self.min_samples}")

    @property
    def tag(self) -> str:
        """Short window label used in feature names: ``w30`` (samples) or ``t3600s`` (time)."""
        if isinstance(self.window, pd.Timedelta):
            return f"t{int(self.window.total_seconds())}s"
        return f"w{self.window}"

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names, signal-major: ``{signal}__{stat}_{tag}``."""
        return tuple(f"{sig}__{stat}_{self.tag}" for sig in self.signals for stat in self.stats)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description (for a registry's metadata)."""
        window: object = self.window
        if isinstance(self.window, pd.Timedelta):
            window = {"seconds": self.window.total_seconds()}
        return {
            "signals": list(self.signals),
            "window": window,
            "stats": list(self.stats),
            "ewm_halflife": self.ewm_halflife,
            "min_samples": self.min_samples,
        }


def feature_names(specs: FeatureSpec | Sequence[FeatureSpec]) -> tuple[str, ...]:
    """The feature names of one spec or several, in output column order."""
    return tuple(name for spec in _as_specs(specs) for name in spec.names)


def window_features(
    window: pd.DataFrame, specs: FeatureSpec | Sequence[FeatureSpec]
) -> pd.DataFrame:
    """One feature row from one window of raw telemetry: the online scorer's path.

    Parameters
    ----------
    window : pandas.DataFrame
        Rows of one asset in time order (index: time, or a numeric time axis), one column per
        signal. It may be longer than the specs' windows: each spec takes its trailing part.
    specs : FeatureSpec or sequence of FeatureSpec

    Returns
    -------
    pandas.DataFrame
        One row, indexed by the window's last timestamp, columns `feature_names` (specs).

    Examples
    --------
    >>> w = pd.DataFrame({"temp": [1.0, 2.0, np.nan, 4.0]}, index=[0.0, 1.0, 2.0, 3.0])
    >>> spec = FeatureSpec(signals=("temp",), window=3, stats=("last", "mean", "slope"))
    >>> window_features(w, spec).round(3).to_dict("records")
    [{'temp__last_w3': 4.0, 'temp__mean_w3': 3.0, 'temp__slope_w3': 1.0}]
    """
    if len(window) == 0:
        raise ValueError("window_features: the window has no rows")
    t = _hours(window.index)
    end = len(window) - 1
    blocks = []
    for spec in _as_specs(specs):
        start = _starts(t, spec)[end : end + 1]
        idx = start[:, None] + np.arange(end - int(start[0]) + 1)[None, :]
        blocks.append(_reduce(_gather(window, spec, t, idx), spec))
    return pd.DataFrame(
        np.concatenate(blocks, axis=1), index=window.index[-1:], columns=feature_names(specs)
    )


def rolling_features(
    run: pd.DataFrame,
    specs: FeatureSpec | Sequence[FeatureSpec],
    *,
    chunk_rows: int = 4096,
) -> pd.DataFrame:
    """The feature row of every trailing window of one run: the training path.

    Row ``i`` equals ``window_features(run.iloc[: i + 1], specs)``.

    Parameters
    ----------
    run : pandas.DataFrame
        Rows of one asset in time order.
    specs : FeatureSpec or sequence of FeatureSpec
    chunk_rows : int
        Windows reduced per block (bounds memory for long runs).

    Returns
    -------
    pandas.DataFrame
        Same index as `run`, columns `feature_names` (specs).
    """
    t = _hours(run.index)
    n = len(run)
    out = np.empty((n, len(feature_names(specs))), dtype=float)
    col = 0
    for spec in _as_specs(specs):
        starts = _starts(t, spec)
        width = len(spec.names)
        for lo in range(0, n, chunk_rows):
            hi = min(n, lo + chunk_rows)
            ends = np.arange(lo, hi)
            length = int((ends - starts[lo:hi]).max()) + 1 if hi > lo else 1
            # Left-pad short windows: position -1 marks padding (NaN value, no time).
            idx = ends[:, None] - np.arange(length - 1, -1, -1)[None, :]
            idx[idx < starts[lo:hi, None]] = -1
            out[lo:hi, col : col + width] = _reduce(_gather(run, spec, t, idx), spec)
        col += width
    return pd.DataFrame(out, index=run.index, columns=feature_names(specs))


def rolling_features_by(
    frame: pd.DataFrame,
    specs: FeatureSpec | Sequence[FeatureSpec],
    *,
    by: str,
) -> pd.DataFrame:
    """`rolling_features` over many runs at once, one run per value of column `by`.

    Rows keep their order and index; each run must already be in time order.
    """
    parts = [rolling_features(run, specs) for _key, run in frame.groupby(by, sort=False)]
    if not parts:
        return pd.DataFrame(columns=feature_names(specs), dtype=float)
    out = pd.concat(parts)
    order = np.concatenate(list(frame.groupby(by, sort=False).indices.values()))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return out.iloc[inverse]


# ---------------------------------------------------------------------------- the shared kernel


def _as_specs(specs: FeatureSpec | Sequence[FeatureSpec]) -> tuple[FeatureSpec, ...]:
    return (specs,) if isinstance(specs, FeatureSpec) else tuple(specs)


def _hours(index: pd.Index) -> np.ndarray:
    """The time axis: hours since the epoch on a `DatetimeIndex`, the values otherwise."""
    if isinstance(index, pd.DatetimeIndex):
        ns = index.as_unit("ns").asi8.astype(float)
        return cast("np.ndarray", ns / _HOUR_NS)
    return np.asarray(index, dtype=float)


def _starts(t: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """First row of the trailing window that ends at each row."""
    n = len(t)
    if isinstance(spec.window, pd.Timedelta):
        span = spec.window.value / _HOUR_NS
        return np.searchsorted(t, t - span, side="right").astype(np.int64)
    return np.maximum(np.arange(n, dtype=np.int64) - spec.window + 1, 0)


def _gather(
    frame: pd.DataFrame, spec: FeatureSpec, t: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Values ``(windows, samples, signals)`` and times relative to each window's end."""
    missing = [s for s in spec.signals if s not in frame.columns]
    if missing:
        msg = f"telemetry has no column {missing!r} (has {list(frame.columns)!r})"
        raise KeyError(msg)
    values = frame.loc[:, list(spec.signals)].to_numpy(dtype=float, na_value=np.nan)
    pad = idx < 0
    safe = np.where(pad, 0, idx)
    block = values[safe]
    block[pad] = np.nan
    rel = t[safe] - t[idx.max(axis=1)][:, None]
    rel[pad] = np.nan
    return block, rel


def _reduce(gathered: tuple[np.ndarray, np.ndarray], spec: FeatureSpec) -> np.ndarray:
    """Statistics of each window, columns signal-major in ``spec.stats`` order."""
    x, rel = gathered  # (n, L, s), (n, L)
    mask = ~np.isnan(x)
    tt = np.broadcast_to(rel[:, :, None], x.shape)
    xz = np.where(mask, x, 0.0)
    count = mask.sum(axis=1).astype(float)
    few = count < spec.min_samples
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = xz.sum(axis=1) / count
        dev = np.where(mask, x - mean[:, None, :], 0.0)
        tmean = np.where(mask, tt, 0.0).sum(axis=1) / count
        tdev = np.where(mask, tt - tmean[:, None, :], 0.0)
        sxx = (tdev * tdev).sum(axis=1)
        out: dict[str, np.ndarray] = {
            "count": count,
            "mean": mean,
            "std": np.sqrt((dev * dev).sum(axis=1) / count),
            "slope": np.where(sxx > 0, (tdev * dev).sum(axis=1) / sxx, np.nan),
        }
        if "min" in spec.stats:
            out["min"] = np.where(mask, x, np.inf).min(axis=1)
        if "max" in spec.stats:
            out["max"] = np.where(mask, x, -np.inf).max(axis=1)
        if "last" in spec.stats:
            last = x.shape[1] - 1 - np.argmax(mask[:, ::-1, :], axis=1)
            out["last"] = np.take_along_axis(x, last[:, None, :], axis=1)[:, 0, :]
        if "ewma" in spec.stats:
            w = np.where(mask, np.exp(np.log(0.5) * -tt / spec.ewm_halflife), 0.0)
            out["ewma"] = (w * xz).sum(axis=1) / w.sum(axis=1)
    n, _, s = x.shape
    result = np.empty((n, s, len(spec.stats)), dtype=float)
    for k, stat in enumerate(spec.stats):
        value = out[stat]
        if stat != "count":
            need_two = stat in {"std", "slope"}
            value = np.where(few | (need_two & (count < _TWO)) | (count == 0), np.nan, value)
        result[:, :, k] = value
    return result.reshape(n, s * len(spec.stats))
