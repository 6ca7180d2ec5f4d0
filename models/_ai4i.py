"""UCI AI4I 2020 predictive-maintenance data: loading, labels and leak-free features.

Each row of ``ai4i2020.csv`` is one product milled on the machine, so a row is the *unit* of every
split: a product ("machine" in the issue's wording) is never on both sides. The file starts with a
UTF-8 byte-order mark.

Rules
-----
- Features come only from the process inputs: machine type, air and process temperature, speed,
  torque and tool wear, plus physics combinations of them (`FEATURES`).
- ``UDI`` and ``Product ID`` identify the row; ``Machine failure``, ``TWF``, ``HDF``, ``PWF``,
  ``OSF`` and ``RNF`` are labels. None of them is ever a feature (`LEAKY_COLUMNS`).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

#: Raw column name -> the snake_case name used in the project, with units.
RENAME: dict[str, str] = {
    "UDI": "udi",
    "Product ID": "product_id",
    "Type": "type",
    "Air temperature [K]": "air_temp_k",
    "Process temperature [K]": "process_temp_k",
    "Rotational speed [rpm]": "speed_rpm",
    "Torque [Nm]": "torque_nm",
    "Tool wear [min]": "tool_wear_min",
    "Machine failure": "machine_failure",
    "TWF": "twf",
    "HDF": "hdf",
    "PWF": "pwf",
    "OSF": "osf",
    "RNF": "rnf",
}

#: Identifiers and labels: never features.
LEAKY_COLUMNS: tuple[str, ...] = (
    "udi",
    "product_id",
    "machine_failure",
    "twf",
    "hdf",
    "pwf",
    "osf",
    "rnf",
)

#: Labels that can be a classification target.
TARGETS: tuple[str, ...] = ("machine_failure", "twf", "hdf", "pwf", "osf", "rnf")

#: Product quality variant -> ordinal (low, medium, high).
TYPE_ORDINAL: dict[str, int] = {"L": 0, "M": 1, "H": 2}

#: The feature columns `features` returns, in order.
FEATURES: tuple[str, ...] = (
    "type_ordinal",
    "type_l",
    "type_m",
    "type_h",
    "air_temp_k",
    "process_temp_k",
    "speed_rpm",
    "torque_nm",
    "tool_wear_min",
    "temp_diff_k",
    "power_w",
    "overstrain_min_nm",
)


def load_ai4i(path: Path | str, *, max_units: int | None = None) -> pd.DataFrame:
    r"""Read ``ai4i2020.csv`` with project column names.

    Parameters
    ----------
    path : path-like
        The published CSV (UTF-8 with a byte-order mark).
    max_units : int, optional
        Keep only the first N rows (products), for fast tests.

    Returns
    -------
    pandas.DataFrame
        One row per product, columns named as in `RENAME`.

    Raises
    ------
    ValueError
        If a published column is missing, or a product id repeats.

    Examples
    --------
    >>> import io
    >>> csv = (
    ...     "\ufeffUDI,Product ID,Type,Air temperature [K],Process temperature [K],"
    ...     "Rotational speed [rpm],Torque [Nm],Tool wear [min],Machine failure,"
    ...     "TWF,HDF,PWF,OSF,RNF\n1,M1,M,298.1,308.6,1551,42.8,0,0,0,0,0,0,0\n"
    ... )
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ai4i.csv"
    >>> _ = p.write_text(csv, encoding="utf-8")
    >>> load_ai4i(p).columns[:3].tolist()
    ['udi', 'product_id', 'type']
    """
    frame = pd.read_csv(path, encoding="utf-8-sig")
    missing = sorted(set(RENAME) - set(frame.columns))
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    frame = frame.rename(columns=RENAME)[list(RENAME.values())]
    if max_units is not None:
        frame = frame.iloc[:max_units].reset_index(drop=True)
    if frame["product_id"].duplicated().any():
        raise ValueError(f"{path}: product ids repeat; a row is no longer one unit")
    return frame


def features(frame: pd.DataFrame) -> pd.DataFrame:
    """Leak-free model inputs, one row per product, columns `FEATURES`.

    Physics combinations (Matzka 2020 describes the failure rules in these terms):

    - ``temp_diff_k`` = process - air temperature (heat dissipation);
    - ``power_w`` = torque * angular speed = torque * rpm * 2 pi / 60;
    - ``overstrain_min_nm`` = tool wear * torque.

    Parameters
    ----------
    frame : pandas.DataFrame
        As returned by `load_ai4i` (extra columns are ignored).

    Returns
    -------
    pandas.DataFrame
        Float columns `FEATURES`, same index as `frame`.

    Raises
    ------
    ValueError
        If ``type`` holds a value other than L, M or H.

    Examples
    --------
    >>> raw = pd.DataFrame({"type": ["L"], "air_temp_k": [300.0], "process_temp_k": [310.0],
    ...                     "speed_rpm": [1500.0], "torque_nm": [40.0], "tool_wear_min": [100.0]})
    >>> row = features(raw).iloc[0]
    >>> float(row["temp_diff_k"]), round(float(row["power_w"])), float(row["overstrain_min_nm"])
    (10.0, 6283, 4000.0)
    """
    kind = frame["type"].astype(str)
    unknown = sorted(set(kind) - set(TYPE_ORDINAL))
    if unknown:
        raise ValueError(f"unknown machine type(s) {unknown}; expected L, M or H")
    out = pd.DataFrame(index=frame.index)
    out["type_ordinal"] = kind.map(TYPE_ORDINAL).astype(float)
    for letter in ("L", "M", "H"):
        out[f"type_{letter.lower()}"] = (kind == letter).astype(float)
    for column in ("air_temp_k", "process_temp_k", "speed_rpm", "torque_nm", "tool_wear_min"):
        out[column] = frame[column].astype(float)
    out["temp_diff_k"] = out["process_temp_k"] - out["air_temp_k"]
    out["power_w"] = out["torque_nm"] * out["speed_rpm"] * (2.0 * math.pi / 60.0)
    out["overstrain_min_nm"] = out["tool_wear_min"] * out["torque_nm"]
    return out[list(FEATURES)]


def tool_life_segments(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """Split the file into tool lives: tool wear resets to a low value when the tool is replaced.

    Along ``udi`` order, tool wear grows by 2, 3 or 5 minutes per product (type L, M, H) and drops
    back when the tool is changed; every drop starts a new segment.

    Parameters
    ----------
    frame : pandas.DataFrame
        As returned by `load_ai4i`.

    Returns
    -------
    list of pandas.DataFrame
        Columns ``udi`` and ``tool_wear_min``, one frame per tool life, in file order.

    Examples
    --------
    >>> f = pd.DataFrame({"udi": [1, 2, 3, 4, 5], "tool_wear_min": [0, 5, 9, 0, 2]})
    >>> [len(s) for s in tool_life_segments(f)]
    [3, 2]
    """
    ordered = frame.sort_values("udi")[["udi", "tool_wear_min"]].reset_index(drop=True)
    wear = ordered["tool_wear_min"].to_numpy()
    starts = np.flatnonzero(np.diff(wear) < 0) + 1
    bounds = [0, *starts.tolist(), len(ordered)]
    return [ordered.iloc[a:b].reset_index(drop=True) for a, b in itertools.pairwise(bounds)]
