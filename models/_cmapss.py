"""NASA C-MAPSS turbofan run-to-failure files, read as named signals per engine and cycle.

The files (``train_FDxxx.txt``, ``test_FDxxx.txt``) are space-separated with no header: unit number,
cycle, three operational settings and 21 sensors (Saxena et al., PHM 2008); ``RUL_FDxxx.txt`` holds
one true remaining life per test engine. Columns are named in
``prognos_contract`` (their one source, standard library only), so that the demo, the simulator,
the models and the scorer speak of the same signals.

Time: one operating cycle is replayed as one hour of operation (``CYCLE``), exactly as
``prognos demo`` writes it to InfluxDB, so a model trained on the files sees the same time axis as
the online scorer reading the ``telemetry`` measurement back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from prognos_contract import CMAPSS_SENSORS, CMAPSS_SETTINGS

SETTINGS = CMAPSS_SETTINGS
"""Operational settings 1-3 (named in `prognos_contract`, the one source of the names)."""

SENSORS = CMAPSS_SENSORS
"""Sensors 1-21 (named in `prognos_contract`, the one source of the names)."""

COLUMNS = ("unit", "cycle", *SETTINGS, *SENSORS)
"""The 26 columns of a C-MAPSS file, in file order."""

CYCLE = pd.Timedelta(hours=1)
"""One operating cycle is replayed as one hour of operation (as ``prognos demo`` does)."""

EPOCH = pd.Timestamp("2026-01-01", tz="UTC")
"""Time of cycle 0 when a file is laid out on the time axis (any origin gives the same features)."""


def read_cmapss(path: Path, *, max_units: int | None = None) -> pd.DataFrame:
    """Read a ``train_FDxxx`` or ``test_FDxxx`` file into a frame with the named `COLUMNS`.

    Parameters
    ----------
    path : Path
        A C-MAPSS data file.
    max_units : int, optional
        Keep only the first N units (engines) in file order.

    Returns
    -------
    pandas.DataFrame
        One row per engine and cycle; ``unit`` and ``cycle`` are integers, the rest floats.

    Raises
    ------
    ValueError
        A row does not have 26 numeric columns (the message names the file and the line).
    """
    rows: list[list[float]] = []
    with Path(path).open() as fh:
        for lineno, line in enumerate(fh, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) != len(COLUMNS):
                msg = f"{path}:{lineno}: expected {len(COLUMNS)} columns, got {len(cols)}"
                raise ValueError(msg)
            try:
                rows.append([float(c) for c in cols])
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
    frame = pd.DataFrame(np.asarray(rows, dtype=float).reshape(-1, len(COLUMNS)), columns=COLUMNS)
    frame = frame.astype({"unit": "int64", "cycle": "int64"})
    if max_units is not None:
        keep = pd.unique(frame["unit"])[:max_units]
        frame = frame[frame["unit"].isin(keep)].reset_index(drop=True)
    return frame


def read_rul(path: Path) -> np.ndarray:
    """Read ``RUL_FDxxx.txt``: the true remaining cycles of test engine 1, 2, ... in order.

    Raises
    ------
    ValueError
        A line is not one integer (the message names the file and the line).
    """
    values: list[int] = []
    with Path(path).open() as fh:
        for lineno, line in enumerate(fh, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) != 1:
                raise ValueError(f"{path}:{lineno}: expected one number, got {len(cols)}")
            try:
                values.append(int(float(cols[0])))
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
    return np.asarray(values, dtype=float)


def rul_labels(frame: pd.DataFrame, *, cap: float | None = 125.0) -> pd.Series:
    """Remaining cycles of each training row: last cycle of its engine minus its cycle, capped.

    Examples
    --------
    >>> f = pd.DataFrame({"unit": [1, 1, 1, 2], "cycle": [1, 2, 3, 1]})
    >>> rul_labels(f, cap=1).tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    last = frame.groupby("unit")["cycle"].transform("max")
    rul = (last - frame["cycle"]).astype(float)
    return rul.clip(upper=cap) if cap is not None else rul


def as_telemetry(frame: pd.DataFrame) -> pd.DataFrame:
    """Lay C-MAPSS rows on the time axis the ingester stores: one cycle = one hour, UTC.

    Returns the rows indexed by ``time`` with ``unit`` kept as a column (the ``asset`` tag in
    InfluxDB) and ``cycle`` kept as a signal, as ``prognos demo`` publishes it.
    """
    out = frame.copy()
    offsets = pd.to_timedelta(frame["cycle"].to_numpy() * CYCLE.value, unit="ns")
    out.index = pd.DatetimeIndex(EPOCH + offsets, name="time")
    return out
