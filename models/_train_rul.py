"""`cmapss_rul`: train and evaluate the RUL model on any C-MAPSS-format subset, standard protocol.

Protocol (Saxena et al. 2008; ``../shared/datasets/README.md``):

1. Label every training cycle with RUL = last cycle of its engine - cycle, capped at 125.
2. Choose hyper-parameters (the feature window) on the training engines only: each candidate of a
   small grid is fitted by `RulRegressor`'s engine-grouped K-fold, and the one with the lowest
   out-of-fold RMSE wins. The winner's fold models are the final ensemble and its out-of-fold
   residuals calibrate the conformal intervals (held-out engines only).
3. Score each test engine once, at its last cycle, through the scorer's path
   (`RulPipeline.predict_window` on the engine's raw telemetry), against ``RUL_FDxxx.txt``
   (uncapped): RMSE, the PHM08 score, and the coverage and width of the 80 % intervals.

Training and test engines are different engines by construction of the data set (both files number
them from 1); within training the folds never split an engine, and the split records which.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models import _cmapss
from models._base import DataSource, TrainRequest, TrainResult, fingerprint
from models._rul import (
    RulPipeline,
    RulRegressor,
    default_specs,
    interval_metrics,
    phm08_score,
    rmse,
)

log = logging.getLogger("prognos.models")

CAP = 125.0
DEFAULTS: Mapping[str, Any] = {
    "window": 30,
    "short_window": 10,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 50,
    "max_iter": 300,
    "learning_rate": 0.05,
}
"""Feature windows (cycles) and boosting parameters of a candidate, unless it says otherwise."""

GRID: tuple[Mapping[str, Any], ...] = ({"window": 30}, {"window": 60}, {"window": 120})
"""Candidates tried by engine-grouped cross-validation (``params={"grid": [...]}`` replaces them;
a single ``--param window=30`` fixes that value in every candidate). Longer windows average more
sensor noise away; 30 cycles is about the shortest test history."""

_REGRESSOR_KEYS = frozenset(
    {"max_iter", "learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization"}
)
_TUNED = _REGRESSOR_KEYS | {"window", "short_window"}
_KNOWN_PARAMS = _TUNED | {"grid", "n_folds", "coverage"}


def cmapss_paths(paths: Sequence[Path]) -> tuple[Path, Path, Path]:
    """The ``train_``, ``test_`` and ``RUL_`` files among `paths`.

    A lone ``train_FDxxx.txt`` brings its ``test_`` and ``RUL_`` siblings from the same folder.

    Raises
    ------
    FileNotFoundError
        A file is missing (the message names it).
    """
    found: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        stem = path.name.lower()
        for prefix in ("train_", "test_", "rul_"):
            if stem.startswith(prefix):
                found[prefix] = path
    if "train_" not in found:
        raise FileNotFoundError(f"no train_FDxxx.txt among {[str(p) for p in paths]!r}")
    train = found["train_"]
    suffix = train.name[len("train_") :]
    test = found.get("test_", train.with_name(f"test_{suffix}"))
    rul = found.get("rul_", train.with_name(f"RUL_{suffix}"))
    for path in (train, test, rul):
        if not path.is_file():
            raise FileNotFoundError(f"C-MAPSS file not found: {path}")
    return train, test, rul


def _pipeline(params: Mapping[str, Any], candidate: Mapping[str, Any], seed: int) -> RulPipeline:
    regressor = RulRegressor(
        **{k: v for k, v in candidate.items() if k in _REGRESSOR_KEYS},
        n_folds=int(params.get("n_folds", 5)),
        coverage=float(params.get("coverage", 0.8)),
        cap=CAP,
        random_state=seed,
    )
    return RulPipeline(
        settings=_cmapss.SETTINGS,
        signals=_cmapss.SENSORS,
        specs=default_specs(int(candidate["window"]), int(candidate["short_window"])),
        regressor=regressor,
        unit="unit",
        # Same flight condition: within 0.5 kft altitude, 0.05 Mach, 1 degree of throttle angle.
        tolerance=(0.5, 0.05, 1.0),
    )


def _candidates(params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The grid (or ``params["grid"]``) with any fixed parameter applied to every candidate."""
    unknown = sorted(set(params) - _KNOWN_PARAMS)
    if unknown:
        raise ValueError(f"cmapss_rul: unknown params {unknown!r}; known: {sorted(_KNOWN_PARAMS)}")
    grid = params.get("grid", GRID)
    fixed = {k: v for k, v in params.items() if k in _TUNED}
    out: list[Mapping[str, Any]] = []
    for candidate in grid:
        merged = {**DEFAULTS, **candidate, **fixed}
        if merged not in out:
            out.append(merged)
    return out


def last_cycle_windows(test: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Each test engine's whole history as telemetry, keyed by engine: what the scorer reads."""
    telemetry = _cmapss.as_telemetry(test)
    return {int(u): telemetry[telemetry["unit"] == u] for u in sorted(telemetry["unit"].unique())}


def score_test(
    model: RulPipeline, test: pd.DataFrame, truth: np.ndarray, coverage: float = 0.8
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score every test engine at its last cycle through `RulPipeline.predict_window`.

    Returns the per-engine table (``unit``, ``true_rul``, ``rul``, ``rul_lo``, ``rul_hi``) and the
    metrics: ``rmse``, ``phm08``, ``interval_coverage``, ``interval_width``.
    """
    rows = []
    for unit, window in last_cycle_windows(test).items():
        if unit > len(truth):
            raise ValueError(f"test engine {unit} has no line in the RUL file ({len(truth)} lines)")
        rows.append(
            {"unit": unit, "true_rul": truth[unit - 1], **model.predict_window(window, coverage)}
        )
    table = pd.DataFrame(rows)
    interval = table[["rul_lo", "rul_hi"]].to_numpy()
    metrics = {
        "rmse": rmse(table["true_rul"], table["rul"]),
        "phm08": phm08_score(table["true_rul"], table["rul"]),
        **interval_metrics(table["true_rul"], interval),
    }
    return table, metrics


def _load(request: TrainRequest) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, DataSource]:
    train_path, test_path, rul_path = cmapss_paths(request.data)
    train = _cmapss.read_cmapss(train_path, max_units=request.max_units)
    test = _cmapss.read_cmapss(test_path, max_units=request.max_units)
    truth = _cmapss.read_rul(rul_path)
    source = DataSource(
        paths=tuple(str(p) for p in (train_path, test_path, rul_path)),
        sha256=fingerprint([train_path, test_path, rul_path]),
        rows=len(train) + len(test),
    )
    return train, test, truth, source


def train_cmapss_rul(request: TrainRequest) -> TrainResult:
    """Train `RulPipeline` on ``train_FDxxx`` and evaluate it on ``test_FDxxx`` + ``RUL_FDxxx``.

    Parameters
    ----------
    request : TrainRequest
        ``data``: the three files, or just ``train_FDxxx.txt`` (siblings found beside it).
        ``params``: ``grid`` (list of regressor parameter dicts), or single regressor parameters
        (``max_iter``, ``learning_rate``, ``max_leaf_nodes``, ``min_samples_leaf``,
        ``l2_regularization``), ``window``, ``short_window``, ``n_folds``, ``coverage``.

    Returns
    -------
    TrainResult
        ``metrics``: test ``rmse``, ``phm08``, ``interval_coverage``, ``interval_width``, and the
        selection figure ``cv_rmse``; ``split``: the engines of each side and of each CV fold.
    """
    params = dict(request.params)
    coverage = float(params.get("coverage", 0.8))
    train, test, truth, source = _load(request)
    telemetry = _cmapss.as_telemetry(train)
    labels = _cmapss.rul_labels(train, cap=CAP).to_numpy()
    life = _cmapss.rul_labels(train, cap=None).to_numpy()
    log.info(
        "cmapss_rul: %d training engines (%d rows), %d test engines",
        train["unit"].nunique(),
        len(train),
        test["unit"].nunique(),
    )
    best: RulPipeline | None = None
    chosen_candidate: Mapping[str, Any] = {}
    search = []
    for i, candidate in enumerate(_candidates(params), 1):
        model = _pipeline(params, candidate, request.seed).fit(telemetry, labels, y_true=life)
        cv = model.regressor_.oof_rmse_
        search.append({**candidate, "cv_rmse": cv})
        log.info("cmapss_rul: candidate %d %s: out-of-fold RMSE %.3f", i, dict(candidate), cv)
        if best is None or cv < best.regressor_.oof_rmse_:
            best, chosen_candidate = model, candidate
    assert best is not None  # noqa: S101 - _candidates never returns an empty list
    table, metrics = score_test(best, test, truth, coverage)
    log.info(
        "cmapss_rul: test RMSE %.2f, PHM08 %.1f, %.0f %% interval coverage %.3f",
        metrics["rmse"],
        metrics["phm08"],
        100 * coverage,
        metrics["interval_coverage"],
    )
    regressor = best.regressor_
    chosen = dict(regressor.get_params())
    return TrainResult(
        name="cmapss_rul",
        kind="rul",
        estimator=best,
        features=best.feature_names_,
        params={
            **chosen,
            "window": int(chosen_candidate["window"]),
            "short_window": int(chosen_candidate["short_window"]),
            "label_cap": CAP,
            "signals": list(best.normalizer_.signals_),
            "conditions": len(best.normalizer_.centers_),
            "search": search,
            "specs": [s.to_dict() for s in best.specs_],
        },
        metrics={
            **metrics,
            "cv_rmse": regressor.oof_rmse_,
            "n_train_units": float(train["unit"].nunique()),
            "n_test_units": float(test["unit"].nunique()),
        },
        data=source,
        split={
            "train_units": sorted(int(u) for u in train["unit"].unique()),
            "test_units": sorted(int(u) for u in test["unit"].unique()),
            "train_file": source.paths[0],
            "test_file": source.paths[1],
            "cv_folds": [sorted(int(u) for u in fold) for fold in regressor.folds_],
        },
        figures={
            "rul_vs_truth": _plot_truth(table, coverage),
            "errors": _plot_errors(table),
        },
        notes=(
            "Standard C-MAPSS protocol: fit on every cycle of the training engines (RUL capped at "
            f"{CAP:.0f}), predict once per test engine at its last cycle through the scorer's "
            "window path, compare with the uncapped RUL file. Hyper-parameters chosen by "
            "out-of-fold RMSE of an engine-grouped K-fold on the training engines; the fold "
            "models form the ensemble; their out-of-fold errors against the uncapped RUL, "
            "binned by predicted RUL (Mondrian), set equal-tailed conformal bounds. The "
            "normaliser's means and spreads are fitted on all training rows "
            "(unsupervised, shared by the folds)."
        ),
    )


def evaluate_cmapss_rul(estimator: RulPipeline, request: TrainRequest) -> dict[str, float]:
    """Recompute the test figures of a fitted `RulPipeline` from the raw files in `request`."""
    _train, test, truth, _source = _load(request)
    coverage = float(request.params.get("coverage", 0.8))
    _table, metrics = score_test(estimator, test, truth, coverage)
    return metrics


def _png(fig: Any) -> bytes:  # noqa: ANN401 - matplotlib figures are untyped
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _plot_truth(table: pd.DataFrame, coverage: float) -> bytes:
    ordered = table.sort_values("true_rul").reset_index(drop=True)
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    x = np.arange(len(ordered))
    ax.fill_between(
        x,
        ordered["rul_lo"],
        ordered["rul_hi"],
        alpha=0.25,
        step="mid",
        label=f"{coverage:.0%} interval",
    )
    ax.plot(x, ordered["rul"], ".", label="predicted")
    ax.plot(x, ordered["true_rul"], "k-", lw=1, label="true")
    ax.set_xlabel("test engine (sorted by true RUL)")
    ax.set_ylabel("remaining cycles at last cycle")
    ax.legend(loc="upper left")
    return _png(fig)


def _plot_errors(table: pd.DataFrame) -> bytes:
    d = table["rul"] - table["true_rul"]
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.hist(d, bins=20)
    ax.axvline(0.0, color="k", lw=1)
    ax.set_xlabel("predicted - true RUL (late is positive, penalised harder by PHM08)")
    ax.set_ylabel("engines")
    return _png(fig)
