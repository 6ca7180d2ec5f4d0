"""UCI hydraulic test rig (Helwig et al. 2015): per-cycle sensor means, conditions, hold-out.

The rig repeats a constant 60 s load cycle while the experimenters set the condition of four
components (cooler, valve, internal pump leakage, accumulator); ``profile.txt`` gives each
cycle's conditions. The shared copy holds the 1 Hz and 10 Hz sensors (TS1-4, VS1, CE, CP, SE;
FS1-2), not the 100 Hz pressures and motor power (PS1-6, EPS1).

One row per cycle: the mean of each sensor over the cycle, named as the FluidSense HCM-10 profile
(``firmware_profiles/fluidsense_hcm10_1.0.yaml``) names the value it serves, so a model trained
on these rows scores that profile's telemetry unchanged.

**Hold-out.** Consecutive cycles under the same conditions are near copies, so a random split
leaks. The recording is cut into *segments*, runs of cycles with identical conditions (about 190);
every `HOLDOUT_EVERY`-th segment (segment index ``% HOLDOUT_EVERY == HOLDOUT_EVERY - 1``) is held
out. Trainers fit on the others; the simulator replays only held-out cycles (a model never scores
a cycle it was trained on).

**The cooler.** The recording starts with the cooler close to total failure (3 %), then at reduced
efficiency (20 %), then at full efficiency (100 %); within each of the three blocks the
experimenters step the valve, pump and accumulator through the same plan. Replayed in reverse
block order, the rig's own cycles are a cooler degrading: full -> reduced -> close to total
failure, in steps (the data set has levels, not a gradual fouling curve).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import GroupKFold

from models._base import DataSource, TrainRequest, TrainResult, fingerprint
from models._failure import (
    FailureClassifier,
    _find,
    best_f1_threshold,
    binary_metrics,
    calibration_png,
)

SIGNALS: Mapping[str, str] = {
    "TS1": "temp_ts1_c",
    "TS2": "temp_ts2_c",
    "TS3": "temp_ts3_c",
    "TS4": "temp_ts4_c",
    "FS1": "flow_fs1_lpm",
    "FS2": "flow_fs2_lpm",
    "VS1": "vibration_vs1_mm_s",
    "CE": "cooling_efficiency_pct",
    "CP": "cooling_power_kw",
    "SE": "efficiency_factor_pct",
}
"""Rig sensor file (``<name>.txt``) -> the profile's signal holding its per-cycle mean."""

CONDITIONS = ("cooler_pct", "valve_pct", "pump_leakage", "accumulator_bar", "stable")
"""The columns of ``profile.txt``, in file order."""

COOLER_STAGES = (100.0, 20.0, 3.0)
"""Cooler condition levels from healthy to close to total failure (``profile.txt`` column 1)."""

HOLDOUT_EVERY = 4
"""Every fourth segment of identical conditions is held out (about a quarter of the cycles)."""

CYCLE_S = 60.0
"""One load cycle of the rig, in seconds."""


def load_hydraulic(folder: Path) -> pd.DataFrame:
    """The rig's cycles: per-cycle sensor means, conditions, segment and hold-out flag.

    Parameters
    ----------
    folder : Path
        The data set's folder (``profile.txt`` and one ``<SENSOR>.txt`` per `SIGNALS` key).

    Returns
    -------
    pandas.DataFrame
        One row per cycle in recording order (index = cycle number, from 0): the `SIGNALS`
        values, the `CONDITIONS`, ``segment`` (int) and ``holdout`` (bool).

    Raises
    ------
    ValueError
        A file is missing, or its row count or width is wrong (the message names the file).
    """
    folder = Path(folder)
    profile = _matrix(folder / "profile.txt", width=len(CONDITIONS))
    frame = pd.DataFrame(profile, columns=list(CONDITIONS))
    for sensor, signal in SIGNALS.items():
        values = _matrix(folder / f"{sensor}.txt", rows=len(frame))
        frame[signal] = values.mean(axis=1)
    frame["stable"] = frame["stable"] == 0
    frame["segment"] = segments(frame)
    frame["holdout"] = frame["segment"] % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    return frame[[*SIGNALS.values(), *CONDITIONS, "segment", "holdout"]]


def segments(frame: pd.DataFrame) -> np.ndarray:
    """Segment number of each cycle: runs of identical cooler, valve, pump and accumulator."""
    conditions = frame[list(CONDITIONS[:4])].to_numpy()
    changed = np.any(np.diff(conditions, axis=0) != 0, axis=1)
    return np.concatenate([[0], np.cumsum(changed)]).astype(int)


def cooler_replay(frame: pd.DataFrame, per_stage: int | None, *, offset: int = 0) -> pd.DataFrame:
    """Held-out cycles replaying a degrading cooler: full, reduced, close to total failure.

    Parameters
    ----------
    frame : pandas.DataFrame
        From `load_hydraulic`.
    per_stage : int or None
        Cycles taken from each of the first two stages (spread evenly over the stage's held-out
        cycles, so the replay covers its valve, pump and accumulator settings), and from the
        last; None: all of them.
    offset : int
        Shifts the even picks (a second unit replays other cycles of the same stages).

    Returns
    -------
    pandas.DataFrame
        The picked rows in replay order, with their original cycle numbers as index. The
        failure is the first row whose ``cooler_pct`` is the last of `COOLER_STAGES`.
    """
    parts = []
    for level in COOLER_STAGES:
        stage = frame[(frame["cooler_pct"] == level) & frame["holdout"]]
        if per_stage is not None and per_stage < len(stage):
            step = len(stage) / per_stage
            picks = (np.arange(per_stage) * step + offset % max(int(step), 1)).astype(int)
            stage = stage.iloc[np.minimum(picks, len(stage) - 1)]
        parts.append(stage)
    return pd.concat(parts)


def _matrix(path: Path, *, rows: int | None = None, width: int | None = None) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"{path}: missing (the UCI hydraulic data set's files)")
    try:
        values = np.loadtxt(path, dtype=float, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: not a tab-separated matrix of numbers: {exc}") from exc
    if rows is not None and values.shape[0] != rows:
        raise ValueError(f"{path}: {values.shape[0]} rows, profile.txt has {rows}")
    if width is not None and values.shape[1] != width:
        raise ValueError(f"{path}: {values.shape[1]} columns, expected {width}")
    return values


# ----------------------------------------------------------------------------- the cooler model

COOLER_GRID: tuple[dict[str, Any], ...] = (
    {"learning_rate": 0.1, "max_leaf_nodes": 7, "calibration": "isotonic"},
    {"learning_rate": 0.1, "max_leaf_nodes": 15, "calibration": "sigmoid"},
)
"""Candidates compared by GroupKFold (by segment) on the training cycles (2 shared CPU cores)."""

COMPONENTS: Mapping[str, tuple[str, str, float]] = {
    "cooler": ("cooler_pct", "<=", 20.0),
    "valve": ("valve_pct", "<=", 80.0),
    "pump": ("pump_leakage", ">=", 1.0),
    "accumulator": ("accumulator_bar", "<=", 100.0),
}
"""Component -> (condition column, comparison, level) of its degraded states.

The levels' names in the data set's ``description.txt``: cooler 20 % reduced efficiency, 3 % close
to total failure; valve 80 % severe lag, 73 % close to total failure; pump leakage 1 weak, 2
severe; accumulator 100 bar severely reduced pressure, 90 bar close to total failure.
"""

_FILES = ("profile.txt", *(f"{sensor}.txt" for sensor in SIGNALS))


def degraded(frame: pd.DataFrame, component: str) -> np.ndarray:
    """1 where `component` is in its degraded state (`COMPONENTS`), else 0.

    Examples
    --------
    >>> degraded(pd.DataFrame({"cooler_pct": [100.0, 20.0, 3.0]}), "cooler").tolist()
    [0, 1, 1]
    """
    column, op, level = COMPONENTS[component]
    values = frame[column].to_numpy(dtype=float)
    hit = values <= level if op == "<=" else values >= level
    return hit.astype(int)


def _stage_key(level: float) -> str:
    return f"{level:g}".replace(".", "_")


def _group_splits(
    X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, folds: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (np.asarray(a), np.asarray(b)) for a, b in GroupKFold(n_splits=folds).split(X, y, groups)
    ]


def _oof(
    model: FailureClassifier,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Out-of-fold probabilities on the training cycles; calibration folds are grouped too."""
    out = np.full(len(y), np.nan)
    for fit_idx, val_idx in splits:
        fitted = clone(model).fit(X.iloc[fit_idx], y[fit_idx], groups=groups[fit_idx])
        out[val_idx] = fitted.predict_proba(X.iloc[val_idx])[:, 1]
    return out


def _component(
    chosen: FailureClassifier,
    frame: pd.DataFrame,
    *,
    train: np.ndarray,
    test: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    component: str,
    oof: np.ndarray | None = None,
) -> tuple[dict[str, float], FailureClassifier, np.ndarray]:
    """One component's held-out figures with `chosen`'s hyper-parameters (threshold from OOF).

    `oof`: the out-of-fold training probabilities when already computed (the grid's winner).
    """
    X = frame[list(SIGNALS.values())]
    y = degraded(frame, component)
    groups = frame["segment"].to_numpy()
    X_train, y_train, g_train = X[train], y[train], groups[train]
    if oof is None:
        oof = _oof(chosen, X_train, y_train, g_train, splits)
    threshold = best_f1_threshold(y_train, oof)
    model = clone(chosen).fit(X_train, y_train, groups=g_train)
    proba = model.predict_proba(X[test])[:, 1]
    prefix = "" if component == "cooler" else f"{component}_"
    metrics = binary_metrics(y[test], proba, threshold=threshold, prefix=prefix)
    metrics[f"{prefix}accuracy"] = float(accuracy_score(y[test], proba >= threshold))
    metrics.update(binary_metrics(y_train, oof, threshold=threshold, prefix=f"{prefix}cv_"))
    return metrics, model, proba


def _baseline(
    frame: pd.DataFrame, train: np.ndarray, test: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    """A cut on cooling efficiency alone (flag at or below it), chosen for F1 on training cycles."""
    ce = frame["cooling_efficiency_pct"].to_numpy(dtype=float)
    cut = -best_f1_threshold(y[train], -ce[train])
    flagged = ce[test] <= cut
    out = {
        "baseline_ce_cut_pct": float(cut),
        "baseline_roc_auc": float(roc_auc_score(y[test], -ce[test])),
        "baseline_accuracy": float(accuracy_score(y[test], flagged)),
        "baseline_f1": float(f1_score(y[test], flagged, zero_division=0.0)),
        "baseline_precision": float(precision_score(y[test], flagged, zero_division=0.0)),
        "baseline_recall": float(recall_score(y[test], flagged, zero_division=0.0)),
    }
    stages = frame["cooler_pct"].to_numpy(dtype=float)[test]
    for level in COOLER_STAGES:
        out[f"baseline_stage_{_stage_key(level)}_flagged"] = float(flagged[stages == level].mean())
    return out


def _verdict(metrics: Mapping[str, float]) -> str:
    """What the classifier adds over the baseline, in this run's held-out figures."""
    ours, cut = metrics["accuracy"], metrics["baseline_accuracy"]
    head = (
        f"Held out, the classifier's accuracy is {ours:.3f} and the cooling-efficiency cut's "
        f"{cut:.3f} (at {metrics['baseline_ce_cut_pct']:.2f} %)"
    )
    if cut >= ours:
        return (
            f"{head}: on this target the classifier adds no accuracy over the single signal; "
            "it adds a calibrated probability from all 10 signals."
        )
    return f"{head}."


def train_hydraulic_cooler(request: TrainRequest) -> TrainResult:
    """Train and evaluate P(the rig's cooler is degraded) from the per-cycle sensor means.

    Target: ``cooler_pct <= 20`` (reduced efficiency or close to total failure). Features: the
    10 `SIGNALS` of one cycle, as the online scorer's ``failure`` kind reads them from the
    latest telemetry row. Protocol: fit on the cycles outside the held-out segments (see the
    module docstring); hyper-parameters among `COOLER_GRID` by out-of-fold ROC-AUC of a
    GroupKFold by segment on the training cycles, the F1 threshold on the winner's out-of-fold
    predictions; refit on every training cycle, scored once on the held-out cycles. A baseline
    cut on ``cooling_efficiency_pct`` alone, chosen on the training cycles, is measured on the
    same held-out cycles. The same protocol (the cooler's hyper-parameters) gives figures for
    the other components of `COMPONENTS`, prefixed ``valve_``, ``pump_``, ``accumulator_``.

    Parameters
    ----------
    request : TrainRequest
        ``data`` holds ``profile.txt`` and the ``<SENSOR>.txt`` files (the folder is that of
        ``profile.txt``). ``max_units`` keeps the first N cycles of every segment (tests).
        ``params`` may set ``folds`` (default 4), ``max_iter`` (200), ``grid`` (a list of
        parameter dicts) and ``components`` (the other components to report, default all).

    Returns
    -------
    TrainResult
        The cooler model, its held-out metrics (with ``stage_<level>_mean_p`` and
        ``stage_<level>_flagged`` per cooler stage, and ``baseline_*``), the split by segment
        and cycle, and a calibration PNG.

    Raises
    ------
    ValueError
        ``profile.txt`` is not among the data, a file is missing or malformed, or a component
        is unknown.
    """
    profile = _find(request.data, "profile.txt")
    folder = profile.parent
    others = tuple(request.params.get("components", [c for c in COMPONENTS if c != "cooler"]))
    unknown = [c for c in others if c not in COMPONENTS or c == "cooler"]
    if unknown:
        raise ValueError(
            f"params.components: unknown {unknown}; expected some of {list(COMPONENTS)[1:]}"
        )
    frame = load_hydraulic(folder)
    if request.max_units is not None:
        # Every segment, shortened: the first segments of a stage are few and uneven (its first
        # holds about 200 cycles), so a prefix of segments leaves folds with one class.
        frame = frame[frame.groupby("segment").cumcount() < request.max_units]
    folds = int(request.params.get("folds", 4))
    grid = tuple(request.params.get("grid", COOLER_GRID))
    features = list(SIGNALS.values())
    X = frame[features]
    y = degraded(frame, "cooler")
    groups = frame["segment"].to_numpy()
    test = frame["holdout"].to_numpy(dtype=bool)
    train = ~test
    if set(groups[train]) & set(groups[test]):
        raise AssertionError("a segment is on both sides of the hydraulic split")
    base = FailureClassifier(
        max_iter=int(request.params.get("max_iter", 200)), random_state=request.seed
    )
    splits = _group_splits(X[train], y[train], groups[train], folds)
    chosen, best, chosen_oof, cv_scores = base, None, None, {}
    for point in grid:
        candidate = clone(base).set_params(**point)
        oof = _oof(candidate, X[train], y[train], groups[train], splits)
        key = (float(roc_auc_score(y[train], oof)), -float(brier_score_loss(y[train], oof)))
        cv_scores[",".join(f"{k}={v}" for k, v in sorted(point.items()))] = key[0]
        if best is None or key > best:
            best, chosen, chosen_oof = key, candidate, oof
    metrics, model, proba = _component(
        chosen, frame, train=train, test=test, splits=splits, component="cooler", oof=chosen_oof
    )
    threshold = metrics["threshold"]
    stages = frame["cooler_pct"].to_numpy(dtype=float)[test]
    for level in COOLER_STAGES:
        at = stages == level
        metrics[f"stage_{_stage_key(level)}_mean_p"] = float(proba[at].mean())
        metrics[f"stage_{_stage_key(level)}_flagged"] = float((proba[at] >= threshold).mean())
    metrics.update(_baseline(frame, train, test, y))
    curves: dict[str, tuple[Any, Any]] = {"cooler <= 20 % (held-out cycles)": (y[test], proba)}
    for component in others:
        extra, _, extra_proba = _component(
            chosen, frame, train=train, test=test, splits=splits, component=component
        )
        metrics.update(extra)
        column, op, level = COMPONENTS[component]
        curves[f"{column} {op} {level:g} (held-out)"] = (
            degraded(frame, component)[test],
            extra_proba,
        )
    params = {
        **{k: v for k, v in model.get_params().items() if k != "monotonic_cst"},
        "folds": folds,
        "threshold": threshold,
        "cv_roc_auc": cv_scores,
        "components": list(others),
    }
    cycles = frame.index.to_numpy()
    notes = (
        f"UCI hydraulic test rig (Helwig et al. 2015), {len(frame)} load cycles of 60 s. "
        "Target: cooler at reduced efficiency or close to total failure (cooler_pct <= 20), "
        "the state a warning must come in before the simulator's failure event (3 %). The "
        "conditions are levels the experimenters set in steps (cooler 100 / 20 / 3 %), not "
        "wear that grows: the model classifies the cooler's present condition from one cycle's "
        "10 sensor means, it does not forecast a time to failure. Split: the recording is cut "
        "into segments of identical cooler, valve, pump and accumulator settings; every "
        f"{HOLDOUT_EVERY}th segment is held out ({int(test.sum())} cycles, the only ones the "
        f"simulator replays), the other {int(train.sum())} train. Hyper-parameters and the F1 "
        f"threshold by {folds}-fold GroupKFold by segment on the training cycles; calibration "
        "folds grouped by segment too; the held-out cycles are scored once. baseline_*: a cut "
        "on cooling_efficiency_pct alone chosen on the training cycles. valve_*, pump_*, "
        "accumulator_*: the same protocol for valve <= 80 %, pump leakage >= 1, accumulator "
        "<= 100 bar (extra figures; no model of them is stored). " + _verdict(metrics)
    )
    data_files = [folder / name for name in _FILES]
    return TrainResult(
        name="hydraulic_cooler",
        kind="failure_probability",
        estimator=model,
        features=tuple(features),
        params=params,
        metrics=metrics,
        data=DataSource(
            paths=tuple(str(p) for p in data_files),
            sha256=fingerprint(data_files),
            rows=len(frame),
        ),
        split={
            "unit": "segment",
            "train_units": sorted(int(s) for s in np.unique(groups[train])),
            "test_units": sorted(int(s) for s in np.unique(groups[test])),
            "train_cycles": [int(c) for c in cycles[train]],
            "test_cycles": [int(c) for c in cycles[test]],
            "cv_folds": [sorted(int(s) for s in np.unique(groups[train][v])) for _, v in splits],
        },
        figures={
            "calibration": calibration_png(
                curves, title="UCI hydraulic rig: degraded component, held-out cycles"
            )
        },
        notes=notes,
    )
