"""The pure scoring core: one asset's telemetry window and loaded models in, scores out.

Theory of operation
-------------------
`prepare_window` turns what ``SELECT * FROM telemetry WHERE asset=...`` returns (a UTC time index,
tags and one column per signal) into the model's input: tags dropped, signals renamed to the
models' names, and for cycle-counting models (C-MAPSS) one row per cycle (the last reading of
each), re-laid on the axis the models were trained on (cycle *k* at hour *k*). `score_asset`
then runs each model of the profile's plan and returns one `Score` per (target, model) with its
health and explanation, or the reason it could not.

Health (0-100, higher is healthier; DESIGN.md leaves the rule to us):

- a probability of failure ``p`` within the horizon: ``100 * (1 - p)``;
- a remaining life with interval: ``100 * min(1, rul_lo / health_ref)``, the lower bound against
  the plan's reference life (default 125 cycles for ``rul``, the models' label cap; 7 days for a
  consumable): an asset is fully healthy while even the pessimistic estimate is far off.

The alert engine receives ``risk = 1 - health / 100`` (higher is worse, in [0, 1]), the highest of
the target's scores at that time.

Rules:
1. Nothing here reads a clock or does I/O; ``now`` is a parameter (STYLE.md 6).
2. Missing or stale data is an outcome (`Skip`), counted by reason, never an exception.
3. Remaining life is in hours: a cycle model's cycles are multiplied by the plan's cycle duration.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, cast

import numpy as np
import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from cloud.alerting import AlertPolicy
from cloud.scoring._config import ExplainMode, ModelPlan, ProfilePlan, ScoringConfig
from cloud.workorders import Evidence
from models import (
    ConsumableLifeModel,
    FeatureSpec,
    LoadedModel,
    explain,
    explain_many,
    window_features,
)

TAG_COLUMNS: Final = frozenset({"site", "gateway", "asset", "model"})
"""Columns of a telemetry query that are tags, not signals."""
MODEL_AXIS_EPOCH: Final = pd.Timestamp("2026-01-01", tz="UTC")
"""Cycle 0 on the models' time axis (one cycle = one hour, as `models` trains)."""
RUL_CAP_CYCLES: Final = 125.0
"""The C-MAPSS RUL label cap: health 100 at or above it (default reference)."""
CONSUMABLE_REF: Final = dt.timedelta(days=7)
RESET_FRACTION: Final = 0.3
"""A fall of more than this fraction of the threshold between two readings is a replacement."""
ONLINE_VERSION: Final = "online"


@dataclasses.dataclass(frozen=True, slots=True)
class Score:
    """One model's score of one target of one asset at one time (a ``scores`` point).

    Attributes:
        asset: The asset id.
        site: Its site.
        target: The failure mode or consumable.
        model_name: The registry name (``consumable_life_online`` for online fits).
        model_version: The champion's version (``online`` for online fits).
        ts: The end of the data window scored.
        health: 0-100, higher is healthier (module docstring).
        probability: Failure probability within `horizon_h`.
        horizon_h: Hours.
        rul: Remaining life, hours.
        rul_lo: Its interval's lower bound, hours.
        rul_hi: Its interval's upper bound, hours (None when beyond the forecast horizon).
        explanation: The signals that drove it (JSON-ready, `models.Explanation.to_dict` shape);
            empty when the score was not explained (`ExplainRule`).
        extra: More fields (``p_within_<h>h`` per horizon of a horizon model).
        evidence: For a work order: the driving signals with value and trend.
    """

    asset: str
    site: str
    target: str
    model_name: str
    model_version: str
    ts: dt.datetime
    health: float
    probability: float | None = None
    horizon_h: float | None = None
    rul: float | None = None
    rul_lo: float | None = None
    rul_hi: float | None = None
    explanation: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    extra: Mapping[str, float] = dataclasses.field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()

    @property
    def risk(self) -> float:
        """``1 - health / 100``: what the alert engine sees (higher is worse)."""
        return 1.0 - self.health / 100.0

    def fields(self) -> dict[str, float | str]:
        """The point's fields: the finite numbers of DESIGN.md, ``extra`` and ``explain`` (JSON)."""
        out: dict[str, float | str] = {}
        for name in ("probability", "horizon_h", "rul", "rul_lo", "rul_hi", "health"):
            value = getattr(self, name)
            if value is not None and math.isfinite(value):
                out[name] = float(value)
        out.update({k: float(v) for k, v in self.extra.items() if math.isfinite(v)})
        if self.explained:
            out["explain"] = json.dumps(_json_safe(self.explanation), separators=(",", ":"))
        return out

    @property
    def explained(self) -> bool:
        """Whether it carries its explanation (``explain.mode``; `ExplainRule`)."""
        return bool(self.explanation)

    def tags(self) -> dict[str, str]:
        """The point's tags (DESIGN.md)."""
        return {
            "site": self.site,
            "asset": self.asset,
            "target": self.target,
            "model_name": self.model_name,
            "model_version": self.model_version,
        }


def _json_safe(value: object) -> object:
    """Plain JSON: NaN and infinities become null (InfluxDB and JSON readers refuse them)."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class AssetOutcome:
    """What scoring one asset gave.

    Attributes:
        asset: The asset id.
        scores: Its scores (empty when skipped).
        skipped: Why the whole asset was not scored (``no_data``, ``stale``, ``too_few_rows``,
            ``missing_cycles``, ``no_plan``), or None.
        model_skips: ``(model_name, reason)`` for models that could not score this window.
        hours_now: The asset's operating hours from telemetry, when the plan names a signal.
        ts: The end of the window (the newest reading), when there was one.
    """

    asset: str
    scores: tuple[Score, ...] = ()
    skipped: str | None = None
    model_skips: tuple[tuple[str, str], ...] = ()
    hours_now: float | None = None
    ts: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ExplainRule:
    """Which scores are explained (``explain.mode``, docs/scoring.md).

    ``at_risk`` explains every score of an (asset, target) whose highest risk is at or above
    `level` of the target (the alert policy's ``clear_level``: any score that could open, hold
    or re-open an alert), or whose alert is still active (`held`); ``always`` every score;
    ``never`` none. Decided per target after all its models predicted: the alert engine and the
    work order see the target's scores together.

    Attributes:
        mode: ``at_risk``, ``always`` or ``never``.
        level: Target -> the lowest risk explained under ``at_risk``.
        held: ``(asset, target)`` of the alerts still active: always explained under ``at_risk``.
    """

    mode: ExplainMode
    level: Callable[[str], float]
    held: frozenset[tuple[str, str]] = frozenset()

    def wants(self, asset: str, target: str, risk: float) -> bool:
        """Whether the scores of `target` of `asset`, the highest at `risk`, are explained."""
        if self.mode == "always":
            return True
        if self.mode == "never":
            return False
        return (asset, target) in self.held or risk >= self.level(target)


def explain_rule(
    config: ScoringConfig,
    *,
    policy_for: Callable[[str], AlertPolicy] | None = None,
    held: Iterable[tuple[str, str]] = (),
) -> ExplainRule:
    """The `ExplainRule` of `config`, at the alert policies' clear levels.

    Args:
        config: The scoring configuration (``explain.mode``, ``alert``, ``alerts``).
        policy_for: Target -> its alert policy (the decider's engine, `AlertEngine.policy_for`);
            default: the configuration's (the same policies the decider is built from).
        held: ``(asset, target)`` with an active alert.
    """
    of = policy_for or config.alert_policy
    return ExplainRule(config.explain.mode, lambda target: of(target).clear_level, frozenset(held))


def _wanted(scores: Iterable[Score], rule: ExplainRule) -> set[tuple[str, str]]:
    """``(asset, target)`` whose scores `rule` explains (judged on the target's highest risk)."""
    top: dict[tuple[str, str], float] = {}
    for s in scores:
        key = (s.asset, s.target)
        top[key] = max(top.get(key, -math.inf), s.risk)
    return {k for k, risk in top.items() if rule.wants(k[0], k[1], risk)}


def _unexplained(score: Score) -> Score:
    return dataclasses.replace(score, explanation={}, evidence=())


class _ModelSkip(Exception):  # noqa: N818 - an outcome, not an error
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class ConsumableSpec:
    """The part of a profile consumable the scorer reads (`edge_agent` ``Consumable``)."""

    name: str
    signal: str | None
    threshold: float | None
    replace_when: str = "above"


# ----------------------------------------------------------------------------- the window


def prepare_window(
    raw: pd.DataFrame, plan: ProfilePlan, *, now: dt.datetime
) -> tuple[pd.DataFrame, str | None]:
    """The model input from a telemetry query's frame, or the reason there is none.

    Args:
        raw: Rows of one asset: UTC time index, tag columns, one column per signal.
        plan: The profile's plan (renames, cycles, staleness, minimum rows).
        now: The scoring time; the newest reading must be within ``plan.stale_after`` of it.

    Returns:
        ``(window, None)``, or ``(empty frame, reason)`` with reason ``no_data``, ``stale``,
        ``missing_cycles`` or ``too_few_rows``.
    """
    empty = pd.DataFrame()
    if raw.empty:
        return empty, "no_data"
    frame = raw.drop(columns=[c for c in raw.columns if c in TAG_COLUMNS]).sort_index()
    frame = frame.rename(columns=dict(plan.rename))
    frame = frame.dropna(axis=0, how="all")
    if frame.empty:
        return empty, "no_data"
    newest = frame.index.max()
    if pd.Timestamp(now) - newest > pd.Timedelta(plan.stale_after):
        return empty, "stale"
    if plan.cycle_signal is not None:
        if plan.cycle_signal not in frame.columns:
            return empty, "missing_cycles"
        cycles = pd.to_numeric(frame[plan.cycle_signal], errors="coerce")
        frame = frame.assign(**{plan.cycle_signal: cycles}).dropna(subset=[plan.cycle_signal])
        # The agent polls about twice per cycle: keep each cycle's last reading, in cycle order.
        frame = frame[~frame[plan.cycle_signal].duplicated(keep="last")]
        frame = frame.sort_values(plan.cycle_signal, kind="stable")
        hours = frame[plan.cycle_signal].to_numpy(dtype=float)
        frame.index = pd.DatetimeIndex(MODEL_AXIS_EPOCH + pd.to_timedelta(hours, unit="h"))
    if len(frame) < plan.min_rows:
        return empty, "too_few_rows"
    return frame, None


def stable_shard(asset_id: str, shards: int) -> int:
    """The shard (0 .. shards-1) of an asset: a stable hash, the same in every process.

    SHA-256, not `hash`: Python salts string hashes per process (PYTHONHASHSEED).
    """
    digest = hashlib.sha256(asset_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


# ----------------------------------------------------------------------------- features


def specs_from_names(names: Sequence[str]) -> tuple[FeatureSpec, ...]:
    """Rebuild `models.FeatureSpec` groups from feature names ``{signal}__{stat}_{tag}``.

    A model keeps the names of its features, not its specs; the names carry everything
    (signal, statistic, window ``w30`` rows or ``t3600s`` span).

    Raises:
        ValueError: A name does not have that shape.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for name in names:
        signal, sep, rest = name.rpartition("__")
        stat, _, tag = rest.rpartition("_")
        if not sep or not stat or not tag:
            raise ValueError(f"feature {name!r} is not '<signal>__<stat>_<window>'")
        groups.setdefault((tag, stat), [])
        if signal not in groups[(tag, stat)]:
            groups[(tag, stat)].append(signal)
    specs = []
    for (tag, stat), signals in groups.items():
        window: int | pd.Timedelta
        if tag.startswith("w"):
            window = int(tag[1:])
        elif tag.startswith("t") and tag.endswith("s"):
            window = pd.Timedelta(seconds=float(tag[1:-1]))
        else:
            raise ValueError(f"feature window tag {tag!r} is not 'w<rows>' or 't<seconds>s'")
        specs.append(FeatureSpec(signals=tuple(signals), window=window, stats=(stat,)))  # type: ignore[arg-type]
    return tuple(specs)


def _latest_row(window: pd.DataFrame) -> dict[str, Any]:
    """Each column's newest non-missing value."""
    out: dict[str, Any] = {}
    for column in window.columns:
        values = window[column].dropna()
        if len(values):
            out[str(column)] = values.iloc[-1]
    return out


_TYPES: Final = {"L": 0.0, "M": 1.0, "H": 2.0}


def ai4i_row(latest: Mapping[str, Any]) -> pd.DataFrame:
    """The AI4I 2020 model inputs from a mill's latest readings.

    The product type comes from ``product_quality``: its label L/M/H or its code 0/1/2.

    Raises:
        _ModelSkip: A needed signal is missing.
    """
    needed = ("air_temp_k", "process_temp_k", "speed_rpm", "torque_nm", "tool_wear_min")
    missing = [n for n in (*needed, "product_quality") if n not in latest]
    if missing:
        raise _ModelSkip("missing_signals")
    quality = latest["product_quality"]
    kind = (
        str(quality).upper()
        if isinstance(quality, str)
        else {0: "L", 1: "M", 2: "H"}.get(int(quality), "?")
    )
    if kind not in _TYPES:
        raise _ModelSkip("bad_input")
    row = {n: float(latest[n]) for n in needed}
    out = {
        "type_ordinal": _TYPES[kind],
        "type_l": float(kind == "L"),
        "type_m": float(kind == "M"),
        "type_h": float(kind == "H"),
        **row,
        "temp_diff_k": row["process_temp_k"] - row["air_temp_k"],
        "power_w": row["torque_nm"] * row["speed_rpm"] * (2.0 * math.pi / 60.0),
        "overstrain_min_nm": row["tool_wear_min"] * row["torque_nm"],
    }
    return pd.DataFrame([out])


# ----------------------------------------------------------------------------- health


def health_from_probability(p: float) -> float:
    """``100 * (1 - p)``, p clipped to [0, 1]."""
    return 100.0 * (1.0 - min(max(p, 0.0), 1.0))


def health_from_life(rul_lo_h: float, ref_h: float) -> float:
    """``100 * min(1, rul_lo / ref)``; a non-finite lower bound (beyond the horizon) is 100."""
    if not math.isfinite(rul_lo_h):
        return 100.0
    return 100.0 * min(max(rul_lo_h / ref_h, 0.0), 1.0)


# ----------------------------------------------------------------------------- evidence


def _signal_of(feature: str) -> str:
    return feature.rpartition("__")[0] or feature


def evidence_from(
    explanation: Mapping[str, Any],
    window: pd.DataFrame,
    *,
    hours_per_axis_hour: float,
    units: Mapping[str, str],
) -> tuple[Evidence, ...]:
    """The signals behind the top contributions, with their latest value and trend per day."""
    seen: list[str] = []
    for item in explanation.get("contributions", ()):
        signal = _signal_of(str(item.get("feature", "")))
        if signal and signal not in seen:
            seen.append(signal)
    out = []
    for signal in seen:
        value: float | None = None
        trend: float | None = None
        if signal in window.columns:
            series = pd.to_numeric(window[signal], errors="coerce").dropna()
            if len(series):
                value = float(series.iloc[-1])
            if len(series) >= 2 and isinstance(series.index, pd.DatetimeIndex):  # noqa: PLR2004
                hours = (series.index - series.index[0]).total_seconds().to_numpy() / 3600.0
                if np.ptp(hours) > 0:
                    slope = float(np.polyfit(hours, series.to_numpy(dtype=float), 1)[0])
                    trend = slope * 24.0 / hours_per_axis_hour
        out.append(
            Evidence(signal=signal, value=value, unit=units.get(signal, ""), trend_per_day=trend)
        )
    return tuple(out)


# ----------------------------------------------------------------------------- the models


def _explain(
    model: Any,  # noqa: ANN401 - any fitted model `models.explain` takes
    row: pd.DataFrame,
    background: pd.DataFrame | None,
    cfg: ScoringConfig,
) -> dict[str, Any]:
    return explain(
        model,
        row,
        background,
        top_k=cfg.explain.top_k,
        n_permutations=cfg.explain.n_permutations,
        max_background=cfg.explain.max_background,
    ).to_dict()


@dataclasses.dataclass(frozen=True, slots=True)
class _Ctx:
    asset: str
    site: str
    ts: dt.datetime
    plan: ProfilePlan
    config: ScoringConfig
    units: Mapping[str, str]


def _score(ctx: _Ctx, mp: ModelPlan, version: str, health: float, **values: Any) -> Score:  # noqa: ANN401
    return Score(
        asset=ctx.asset,
        site=ctx.site,
        target=mp.target,
        model_name=mp.model_name,
        model_version=version,
        ts=ctx.ts,
        health=health,
        **values,
    )


def _rul_row(loaded: LoadedModel, window: pd.DataFrame) -> pd.DataFrame:
    try:
        row: pd.DataFrame = loaded.estimator.transform_window(window)
    except KeyError:
        raise _ModelSkip("missing_signals") from None
    return row


def _rul_score(
    ctx: _Ctx,
    mp: ModelPlan,
    loaded: LoadedModel,
    *,
    pred: tuple[float, float, float],
) -> Score:
    h = ctx.plan.cycle_h
    rul, lo, hi = (x * h for x in pred)
    ref_h = mp.health_ref.total_seconds() / 3600 if mp.health_ref else RUL_CAP_CYCLES * h
    return _score(
        ctx, mp, loaded.version, health_from_life(lo, ref_h), rul=rul, rul_lo=lo, rul_hi=hi
    )


def _attach(
    ctx: _Ctx, mp: ModelPlan, window: pd.DataFrame, score: Score, explanation: dict[str, Any]
) -> Score:
    """`score` with its explanation and the work-order evidence drawn from it."""
    axis = 1.0 if mp.kind == "failure" else 1.0 / ctx.plan.cycle_h
    if mp.kind == "rul":
        explanation["unit"] = "cycles"
    return dataclasses.replace(
        score,
        explanation=explanation,
        evidence=evidence_from(explanation, window, hours_per_axis_hour=axis, units=ctx.units),
    )


Finish = Callable[[], Score]
"""The explained score of a prediction (run only when `ExplainRule` wants it)."""


def _rul_predict(loaded: LoadedModel, rows: pd.DataFrame, coverage: float) -> np.ndarray:
    """``(n, 3)``: rul, rul_lo, rul_hi in cycles, as `models.RulPipeline.predict_window`."""
    regressor = loaded.estimator.regressor_
    rul = np.asarray(regressor.predict(rows), dtype=float)
    interval = np.asarray(regressor.predict_interval(rows, coverage), dtype=float)
    return np.column_stack([rul, interval])


def _rul(
    ctx: _Ctx, mp: ModelPlan, loaded: LoadedModel, window: pd.DataFrame
) -> tuple[Score, Finish]:
    row = _rul_row(loaded, window)
    pred = _rul_predict(loaded, row, mp.coverage)[0]
    pipe = loaded.estimator
    score = _rul_score(ctx, mp, loaded, pred=(pred[0], pred[1], pred[2]))

    def finish() -> Score:
        explanation = _explain(pipe.regressor_, row, pipe.background_, ctx.config)
        return _attach(ctx, mp, window, score, explanation)

    return score, finish


def _horizon_row(loaded: LoadedModel, window: pd.DataFrame) -> pd.DataFrame:
    names = [str(n) for n in loaded.estimator.feature_names_in_]
    try:
        row = window_features(window, specs_from_names(names))[names]
    except KeyError:
        raise _ModelSkip("missing_signals") from None
    return row.reset_index(drop=True)


def _horizon_score(
    ctx: _Ctx,
    mp: ModelPlan,
    loaded: LoadedModel,
    *,
    proba: pd.Series,
) -> Score:
    model = loaded.estimator
    h = ctx.plan.cycle_h
    p = float(proba[float(model.score_horizon)])
    extra = {f"p_within_{float(cast('float', n)) * h:g}h": float(v) for n, v in proba.items()}
    return _score(
        ctx,
        mp,
        loaded.version,
        health_from_probability(p),
        probability=p,
        horizon_h=float(model.score_horizon) * h,
        extra=extra,
    )


def _horizon(
    ctx: _Ctx, mp: ModelPlan, loaded: LoadedModel, window: pd.DataFrame
) -> tuple[Score, Finish]:
    row = _horizon_row(loaded, window)
    proba = loaded.estimator.predict_proba(row).iloc[0]
    score = _horizon_score(ctx, mp, loaded, proba=proba)

    def finish() -> Score:
        explanation = _explain(loaded.estimator, row, None, ctx.config)
        return _attach(ctx, mp, window, score, explanation)

    return score, finish


def _failure_row(mp: ModelPlan, loaded: LoadedModel, window: pd.DataFrame) -> pd.DataFrame:
    latest = _latest_row(window)
    names = [str(n) for n in loaded.estimator.feature_names_in_]
    if mp.derive == "ai4i":
        row = ai4i_row(latest)
    else:
        if any(n not in latest for n in names):
            raise _ModelSkip("missing_signals")
        row = pd.DataFrame([{n: float(latest[n]) for n in names}])
    if any(n not in row.columns for n in names):
        raise _ModelSkip("missing_signals")
    return row[names]


def _failure_score(
    ctx: _Ctx,
    mp: ModelPlan,
    loaded: LoadedModel,
    *,
    p: float,
) -> Score:
    assert mp.horizon is not None  # noqa: S101 - the config validator requires it
    return _score(
        ctx,
        mp,
        loaded.version,
        health_from_probability(p),
        probability=p,
        horizon_h=mp.horizon.total_seconds() / 3600,
    )


def _failure(
    ctx: _Ctx, mp: ModelPlan, loaded: LoadedModel, window: pd.DataFrame
) -> tuple[Score, Finish]:
    row = _failure_row(mp, loaded, window)
    p = float(loaded.estimator.predict_proba(row)[0, 1])
    score = _failure_score(ctx, mp, loaded, p=p)

    def finish() -> Score:
        explanation = _explain(loaded.estimator, row, None, ctx.config)
        return _attach(ctx, mp, window, score, explanation)

    return score, finish


def _consumable_pending(
    ctx: _Ctx,
    mp: ModelPlan,
    loaded: LoadedModel | None,
    window: pd.DataFrame,
    item: ConsumableSpec | None,
) -> tuple[Score, Finish]:
    """A consumable's fit explains itself (trend and rate): dropped when not wanted."""
    score = _consumable(ctx, mp, loaded, window, item)
    return _unexplained(score), lambda: score


def since_replacement(series: pd.Series, threshold: float, *, rising: bool) -> pd.Series:
    """The readings since the last replacement.

    A replacement is a fall (a rise, for a falling indicator) of more than `RESET_FRACTION` of
    the threshold between two readings.
    """
    values = series.to_numpy(dtype=float)
    step = np.diff(values) if rising else -np.diff(values)
    resets = np.flatnonzero(step < -RESET_FRACTION * abs(threshold))
    start = int(resets[-1]) + 1 if len(resets) else 0
    return series.iloc[start:]


def _consumable(
    ctx: _Ctx,
    mp: ModelPlan,
    loaded: LoadedModel | None,
    window: pd.DataFrame,
    item: ConsumableSpec | None,
) -> Score:
    if item is None or item.signal is None or item.threshold is None:
        raise _ModelSkip("no_threshold")
    if item.signal not in window.columns:
        raise _ModelSkip("missing_signals")
    rising = item.replace_when == "above"
    series = pd.to_numeric(window[item.signal], errors="coerce").dropna()
    series = since_replacement(series, item.threshold, rising=rising)
    if len(series) < ctx.plan.min_rows:
        raise _ModelSkip("too_few_rows")
    hours = (series.index - series.index[0]).total_seconds().to_numpy() / 3600.0
    direction: Literal["rising", "falling"] = "rising" if rising else "falling"
    if loaded is not None:
        model = clone(loaded.estimator).set_params(direction=direction)
        version = loaded.version
    else:
        model = ConsumableLifeModel(
            trend=mp.trend, noise=mp.noise, band="prediction", direction=direction
        )
        version = ONLINE_VERSION
    try:
        model.fit(hours, series.to_numpy(dtype=float))
        crossing = model.predict_crossing(item.threshold, coverage=mp.coverage)
    except (ValueError, np.linalg.LinAlgError):
        raise _ModelSkip("fit_failed") from None
    last = float(hours[-1])
    rul, lo, hi = (max(x - last, 0.0) for x in (crossing.expected, crossing.lo, crossing.hi))
    ref_h = (mp.health_ref or CONSUMABLE_REF).total_seconds() / 3600
    rate = float(model.rate_)
    explanation = {
        "method": "consumable_trend",
        "prediction": rul if math.isfinite(rul) else None,
        "contributions": [
            {
                "feature": f"{item.signal}__last",
                "contribution": None,
                "value": float(series.iloc[-1]),
                "reference": float(item.threshold),
            },
            {
                "feature": f"{item.signal}__rate_per_h",
                "contribution": None,
                "value": rate if math.isfinite(rate) else None,
                "reference": None,
            },
        ],
        "since": series.index[0].isoformat(),
        "points": len(series),
    }
    return _score(
        ctx,
        mp,
        version,
        health_from_life(lo, ref_h),
        rul=rul if math.isfinite(rul) else None,
        rul_lo=lo if math.isfinite(lo) else None,
        rul_hi=hi if math.isfinite(hi) else None,
        explanation=explanation,
        evidence=evidence_from(
            explanation, window[[item.signal]], hours_per_axis_hour=1.0, units=ctx.units
        ),
    )


def hours_from(window: pd.DataFrame, plan: ProfilePlan) -> float | None:
    """Operating hours from the plan's ``hours_signal`` (newest value), or None."""
    if plan.hours_signal is None or plan.hours_signal not in window.columns:
        return None
    series = pd.to_numeric(window[plan.hours_signal], errors="coerce").dropna()
    return float(series.iloc[-1]) * plan.hours_per_unit if len(series) else None


def score_asset(
    *,
    asset: str,
    site: str,
    plan: ProfilePlan | None,
    raw: pd.DataFrame,
    models: Mapping[str, LoadedModel],
    config: ScoringConfig,
    now: dt.datetime,
    consumables: Sequence[ConsumableSpec] = (),
    units: Mapping[str, str] | None = None,
    raw_long: pd.DataFrame | None = None,
    explain: ExplainRule | None = None,
) -> AssetOutcome:
    """Score one asset: every model of its plan on its window.

    Args:
        asset: The asset id.
        site: Its site (a tag of the scores).
        plan: Its profile's plan; None: skipped ``no_plan``.
        raw: The telemetry of ``plan.window`` ending at `now` (as the query returns it).
        models: Loaded champions by registry name.
        config: The scoring configuration (explanation settings).
        now: The scoring time (staleness is judged against it).
        consumables: The profile's consumables (signal, threshold).
        units: Signal -> unit, for the evidence.
        raw_long: The telemetry of ``plan.consumable_window`` for consumable kinds (default `raw`).
        explain: Which scores are explained; default `explain_rule` of `config` (no alert held).

    Returns:
        The scores, or the reason the asset (or a model) was skipped.
    """
    if plan is None:
        return AssetOutcome(asset, skipped="no_plan")
    window, reason = prepare_window(raw, plan, now=now)
    if reason is not None:
        return AssetOutcome(asset, skipped=reason)
    ts = _window_end(raw)
    ctx = _Ctx(asset, site, ts, plan, config, units or {})
    # One OpenMP thread: on shared cores the boosted trees' spinning threads made one asset's
    # scoring 14x slower (measured here: 2.8 s vs 0.2 s per engine).
    with threadpool_limits(limits=1, user_api="openmp"):
        scores, skips = _run_models(
            ctx,
            window=window,
            raw_long=raw_long,
            models=models,
            consumables=consumables,
            now=now,
            rule=explain or explain_rule(config),
        )
    return AssetOutcome(
        asset,
        scores=tuple(scores),
        model_skips=tuple(skips),
        hours_now=hours_from(window, plan),
        ts=ts,
    )


def _window_end(raw: pd.DataFrame) -> dt.datetime:
    newest = pd.Timestamp(raw.index.max())
    return newest.to_pydatetime()


def _champion(models: Mapping[str, LoadedModel], mp: ModelPlan) -> LoadedModel:
    loaded = models.get(mp.name or "")
    if loaded is None:
        raise _ModelSkip("no_champion")
    return loaded


def _run_models(
    ctx: _Ctx,
    *,
    window: pd.DataFrame,
    raw_long: pd.DataFrame | None,
    models: Mapping[str, LoadedModel],
    consumables: Sequence[ConsumableSpec],
    now: dt.datetime,
    rule: ExplainRule,
) -> tuple[list[Score], list[tuple[str, str]]]:
    by_name = {c.name: c for c in consumables}
    pending: list[tuple[ModelPlan, Score, Finish]] = []
    skips: list[tuple[str, str]] = []
    long_window: pd.DataFrame | None = None
    for mp in ctx.plan.models:
        try:
            if mp.kind in {"consumable", "consumable_online"}:
                if long_window is None:
                    long_window = (
                        window
                        if raw_long is None
                        else prepare_window(raw_long, ctx.plan, now=now)[0]
                    )
                loaded = _champion(models, mp) if mp.kind == "consumable" else None
                item = by_name.get(mp.target)
                pending.append((mp, *_consumable_pending(ctx, mp, loaded, long_window, item)))
                continue
            loaded = _champion(models, mp)
            runner = {"rul": _rul, "horizon_failure": _horizon, "failure": _failure}[mp.kind]
            pending.append((mp, *runner(ctx, mp, loaded, window)))
        except _ModelSkip as skip:
            skips.append((mp.model_name, skip.reason))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            # A window the model cannot take (NaN settings, odd types, a champion pickled by an
            # incompatible version): counted and logged by the shell, never a crash.
            skips.append((mp.model_name, "model_error"))
    # Explained once every model predicted: the rule judges a target on its highest risk.
    wanted = _wanted((score for _, score, _ in pending), rule)
    scores: list[Score] = []
    for mp, score, finish in pending:
        if (score.asset, score.target) not in wanted:
            scores.append(score)
            continue
        try:
            scores.append(finish())
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            skips.append((mp.model_name, "model_error"))
    return scores, skips


# ----------------------------------------------------------------------------- many assets at once


@dataclasses.dataclass(frozen=True, slots=True)
class AssetInput:
    """One asset of a batch: what `score_asset` takes, minus the shared models, config and now."""

    asset: str
    site: str
    plan: ProfilePlan | None
    raw: pd.DataFrame
    raw_long: pd.DataFrame | None = None
    consumables: Sequence[ConsumableSpec] = ()
    units: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class _Job:
    """One model on one asset's window: a feature row waiting for the batch's inference."""

    ctx: _Ctx
    mp: ModelPlan
    loaded: LoadedModel | None
    window: pd.DataFrame
    row: pd.DataFrame | None = None
    item: ConsumableSpec | None = None
    result: Score | str | None = None  # the score, or the skip reason
    finish: Finish | None = None  # its explanation one by one; None: by `_explain_jobs`


@dataclasses.dataclass(slots=True)
class _Asset:
    ctx: _Ctx
    slots: list[Score | str | _Job]  # in plan order: a score, a skip reason, or a job
    names: list[str]  # the model_name of each slot
    hours_now: float | None


@dataclasses.dataclass(slots=True)
class Batch:
    """Assets whose features are computed (`prepare_batch`) and whose inference is due."""

    entries: list[AssetOutcome | _Asset]
    jobs: dict[tuple[object, ...], list[_Job]]
    rule: ExplainRule


def prepare_batch(
    items: Sequence[AssetInput],
    *,
    models: Mapping[str, LoadedModel],
    config: ScoringConfig,
    now: dt.datetime,
    explain: ExplainRule | None = None,
) -> Batch:
    """The features phase of a pass: each asset's window and each model's feature row.

    `infer_batch` then runs each model once over the rows of every asset. Together they give
    exactly what `score_asset` gives asset by asset (tested): the same rows go through the same
    models, only in fewer calls. `explain` as for `score_asset`.
    """
    batch = Batch(entries=[], jobs={}, rule=explain or explain_rule(config))
    for item in items:
        if item.plan is None:
            batch.entries.append(AssetOutcome(item.asset, skipped="no_plan"))
            continue
        plan = item.plan
        window, reason = prepare_window(item.raw, plan, now=now)
        if reason is not None:
            batch.entries.append(AssetOutcome(item.asset, skipped=reason))
            continue
        ctx = _Ctx(item.asset, item.site, _window_end(item.raw), plan, config, item.units or {})
        entry = _Asset(ctx, [], [], hours_from(window, plan))
        by_name = {c.name: c for c in item.consumables}
        long_window: pd.DataFrame | None = None
        for mp in plan.models:
            entry.names.append(mp.model_name)
            try:
                if mp.kind in {"consumable", "consumable_online"}:
                    if long_window is None:
                        long_window = (
                            window
                            if item.raw_long is None
                            else prepare_window(item.raw_long, plan, now=now)[0]
                        )
                    loaded = _champion(models, mp) if mp.kind == "consumable" else None
                    job = _Job(ctx, mp, loaded, long_window, item=by_name.get(mp.target))
                    key: tuple[object, ...] = (mp.kind, id(job))  # fitted per asset
                else:
                    loaded = _champion(models, mp)
                    row = _feature_row(mp, loaded, window)
                    job = _Job(ctx, mp, loaded, window, row=row)
                    key = (mp.kind, loaded.name, loaded.version, mp.coverage, tuple(row.columns))
            except _ModelSkip as skip:
                entry.slots.append(skip.reason)
                continue
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                entry.slots.append("model_error")  # as `_run_models`
                continue
            entry.slots.append(job)
            batch.jobs.setdefault(key, []).append(job)
        batch.entries.append(entry)
    return batch


def infer_batch(batch: Batch) -> list[AssetOutcome]:
    """The inference phase: each model once over its rows of every asset, then the scores.

    Predictions first; then the explanations the batch's `ExplainRule` wants (judged per target
    on its highest risk, as `score_asset`), each model once over the rows wanted. A batch call
    that fails (a row the model cannot take) is redone row by row, so only the assets at fault
    get ``model_error``, as with `score_asset`.
    """
    for key, jobs in batch.jobs.items():
        if key[0] in {"consumable", "consumable_online"}:
            for job in jobs:
                _run_one(job)
            continue
        try:
            _run_many(jobs)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            for job in jobs:
                _run_one(job)
    _explain_wanted(batch)
    out: list[AssetOutcome] = []
    for entry in batch.entries:
        if isinstance(entry, AssetOutcome):
            out.append(entry)
            continue
        scores: list[Score] = []
        skips: list[tuple[str, str]] = []
        for name, slot in zip(entry.names, entry.slots, strict=True):
            result = slot.result if isinstance(slot, _Job) else slot
            if isinstance(result, Score):
                scores.append(result)
            else:
                skips.append((name, result or "model_error"))
        out.append(
            AssetOutcome(
                entry.ctx.asset,
                scores=tuple(scores),
                model_skips=tuple(skips),
                hours_now=entry.hours_now,
                ts=entry.ctx.ts,
            )
        )
    return out


def _explain_wanted(batch: Batch) -> None:
    """The explanations the batch's rule wants, each model once over the rows wanted."""
    every = [j for jobs in batch.jobs.values() for j in jobs]
    wanted = _wanted((j.result for j in every if isinstance(j.result, Score)), batch.rule)
    for jobs in batch.jobs.values():
        todo = [
            j for j in jobs if isinstance(j.result, Score) and (j.ctx.asset, j.mp.target) in wanted
        ]
        together = [j for j in todo if j.finish is None]
        for job in todo:
            if job.finish is not None:
                _finish_one(job, job.finish)
        if not together:
            continue
        try:
            _explain_jobs(together)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            for job in together:
                _finish_one(job, lambda job=job: _explain_jobs([job]))  # type: ignore[misc]


def score_batch(
    items: Sequence[AssetInput],
    *,
    models: Mapping[str, LoadedModel],
    config: ScoringConfig,
    now: dt.datetime,
) -> list[AssetOutcome]:
    """`prepare_batch` then `infer_batch`: the outcomes of `items`, in order."""
    return infer_batch(prepare_batch(items, models=models, config=config, now=now))


def _feature_row(mp: ModelPlan, loaded: LoadedModel, window: pd.DataFrame) -> pd.DataFrame:
    if mp.kind == "rul":
        return _rul_row(loaded, window)
    if mp.kind == "horizon_failure":
        return _horizon_row(loaded, window)
    return _failure_row(mp, loaded, window)


def _run_one(job: _Job) -> None:
    """One job alone, by the per-asset runners (the fallback, and the consumables)."""
    try:
        if job.mp.kind in {"consumable", "consumable_online"}:
            job.result, job.finish = _consumable_pending(
                job.ctx, job.mp, job.loaded, job.window, job.item
            )
            return
        assert job.loaded is not None  # noqa: S101 - model kinds always have their champion
        runner = {"rul": _rul, "horizon_failure": _horizon, "failure": _failure}[job.mp.kind]
        job.result, job.finish = runner(job.ctx, job.mp, job.loaded, job.window)
    except _ModelSkip as skip:
        job.result = skip.reason
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        job.result = "model_error"


def _finish_one(job: _Job, finish: Callable[[], object]) -> None:
    """Explain one job (its explanation failing is ``model_error``, as in `score_asset`)."""
    try:
        out = finish()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        job.result = "model_error"
        return
    if isinstance(out, Score):
        job.result = out


def _score_horizon(model: Any) -> Callable[[pd.DataFrame], np.ndarray]:  # noqa: ANN401
    """``model.score`` of a `models.HorizonFailureModel`, skipping the horizons after its own.

    ``score`` is the running maximum of P(fail within h) up to ``score_horizon``: the longer
    horizons never change it, so they are not computed (a quarter of the explanation's trees with
    the default horizons 10, 20, 30, 50). Equal to ``score`` row for row (tested through
    `score_batch` against `score_asset`, which explains with ``score``).
    """
    horizons = [h for h in model.horizons_ if h <= float(model.score_horizon)]
    names = list(model.feature_names_in_)

    def predict(X: pd.DataFrame) -> np.ndarray:  # noqa: N803 - scikit-learn's name
        frame = X[names].reset_index(drop=True)
        stacked = pd.concat([frame.assign(horizon=h) for h in horizons], ignore_index=True)
        p = model.classifier_.predict_proba(stacked)[:, 1].reshape(len(horizons), len(frame)).T
        out: np.ndarray = np.maximum.accumulate(p, axis=1)[:, -1]
        return out

    return predict


def _stack(jobs: Sequence[_Job]) -> pd.DataFrame:
    first = jobs[0]
    assert first.row is not None  # noqa: S101 - model kinds have their feature row
    return pd.DataFrame(
        np.vstack([job.row.to_numpy(dtype=float) for job in jobs if job.row is not None]),
        columns=first.row.columns,
    )


def _run_many(jobs: Sequence[_Job]) -> None:
    """Jobs of one model: one predict call over all their rows (unexplained scores)."""
    first = jobs[0]
    loaded, mp = first.loaded, first.mp
    assert loaded is not None  # noqa: S101 - model kinds have their champion
    rows = _stack(jobs)
    model = loaded.estimator
    if mp.kind == "rul":
        pred = _rul_predict(loaded, rows, mp.coverage)
        for i, job in enumerate(jobs):
            values = (pred[i, 0], pred[i, 1], pred[i, 2])
            job.result = _rul_score(job.ctx, mp, loaded, pred=values)
    elif mp.kind == "horizon_failure":
        proba = model.predict_proba(rows)
        for i, job in enumerate(jobs):
            job.result = _horizon_score(job.ctx, mp, loaded, proba=proba.iloc[i])
    else:
        p = np.asarray(model.predict_proba(rows), dtype=float)[:, 1]
        for i, job in enumerate(jobs):
            job.result = _failure_score(job.ctx, mp, loaded, p=float(p[i]))


def _explain_jobs(jobs: Sequence[_Job]) -> None:
    """Scored jobs of one model: one explanation pass over their rows (as `_explain`, per row)."""
    first = jobs[0]
    loaded, mp, cfg = first.loaded, first.mp, first.ctx.config
    assert loaded is not None  # noqa: S101 - model kinds have their champion
    model = loaded.estimator
    of: Any = model
    background: pd.DataFrame | None = None
    predict: Callable[[pd.DataFrame], np.ndarray] | None = None
    if mp.kind == "rul":
        of, background = model.regressor_, model.background_
    elif mp.kind == "horizon_failure":
        predict = _score_horizon(model)
    explanations = explain_many(
        of,
        _stack(jobs),
        background,
        predict=predict,
        top_k=cfg.explain.top_k,
        n_permutations=cfg.explain.n_permutations,
        max_background=cfg.explain.max_background,
    )
    for job, e in zip(jobs, explanations, strict=True):
        assert isinstance(job.result, Score)  # noqa: S101 - only scored jobs are explained
        job.result = _attach(job.ctx, mp, job.window, job.result, e.to_dict())
