"""What every trainer returns and the registry stores: the training code's contract.

A *trainer* is a function ``(TrainRequest) -> TrainResult``. It reads raw data from the paths in the
request, splits it by unit (engine, machine) so that no unit is on both sides, fits an estimator,
recomputes every metric on held-out data and draws its figures. It never writes files: the registry
(``models._registry``) persists what it returns, and the CLI (``prognos train``) wires the two.

Rules
-----
- ``metrics`` are computed by the trainer from the data in this run; nothing is copied from a paper.
- ``split`` names the units on each side (``{"train_units": [...], "test_units": [...]}`` or the
  equivalent), so tests can assert that no unit is on both sides.
- ``estimator`` is picklable and follows the estimator contract of STYLE.md rule 11.
- ``figures`` are PNG bytes keyed by a short file stem (``"calibration"``, ``"rul_vs_truth"``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["rul", "failure_probability", "consumable_life"]


@dataclass(frozen=True, slots=True)
class DataSource:
    """Where the training data came from, and a fingerprint of its bytes.

    Parameters
    ----------
    paths : tuple of str
        The files read, as given.
    sha256 : str
        SHA-256 over the files' bytes in the order given (see `fingerprint`).
    rows : int
        Rows read before any split.
    """

    paths: tuple[str, ...]
    sha256: str
    rows: int


@dataclass(frozen=True, slots=True)
class TrainRequest:
    """What a trainer is asked to do.

    Parameters
    ----------
    data : tuple of Path
        The raw data files (e.g. ``train_FD001.txt``, ``test_FD001.txt``, ``RUL_FD001.txt``).
    seed : int
        Seed for every random choice (splits, estimators).
    max_units : int or None
        Use only the first N units (engines, machines) of each file: for fast tests.
    params : Mapping
        Trainer-specific overrides of its default hyper-parameters.
    """

    data: tuple[Path, ...]
    seed: int = 0
    max_units: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrainResult:
    """A fitted estimator with everything the registry stores beside it.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"cmapss_rul"`` or ``"ai4i_failure"``.
    kind : {"rul", "failure_probability", "consumable_life"}
        What the estimator predicts.
    estimator : object
        The fitted, picklable estimator.
    features : tuple of str
        Feature names, in the order the estimator expects.
    params : Mapping
        Hyper-parameters used.
    metrics : Mapping of str to float
        Held-out figures recomputed in this run (``rmse``, ``phm08``, ``roc_auc``...).
    data : DataSource
        The training data and its fingerprint.
    split : Mapping
        Units on each side of every split.
    figures : Mapping of str to bytes
        PNG images.
    notes : str
        One paragraph for the report: protocol, caveats.
    """

    name: str
    kind: Kind
    estimator: Any
    features: tuple[str, ...]
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    data: DataSource
    split: Mapping[str, Any]
    figures: Mapping[str, bytes] = field(default_factory=dict)
    notes: str = ""


Trainer = Callable[[TrainRequest], TrainResult]


def fingerprint(paths: Iterable[Path]) -> str:
    """SHA-256 over the bytes of `paths`, in order, each prefixed by its length.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "a").write_bytes(b"1 2 3")
    5
    >>> len(fingerprint([d / "a"]))
    64
    """
    digest = hashlib.sha256()
    for path in paths:
        data = Path(path).read_bytes()
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()
