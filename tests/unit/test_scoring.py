"""The scorer's pure core, config, sharding and decisions, with small models trained here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from structlog.testing import capture_logs

from cloud.registry import Asset, AssetRegistry
from cloud.scoring import (
    ConsumableSpec,
    Decider,
    ExplainRule,
    ProfilePlan,
    Scorer,
    ScorerMetrics,
    ScoringConfig,
    ScoringConfigError,
    Shard,
    explain_rule,
    health_from_life,
    health_from_probability,
    load_config,
    parse_config,
    score_asset,
    specs_from_names,
    stable_shard,
)
from cloud.scoring._core import AssetInput, Score, score_batch, since_replacement
from cloud.store import InfluxClient
from cloud.workorders import ServicePolicy, Store, WoState
from edge_agent._profile import ProfileLibrary
from models import (
    FailureClassifier,
    FeatureSpec,
    HorizonFailureModel,
    LoadedModel,
    TrainRequest,
    feature_names,
    simulate_filter_dp,
    train_cmapss_rul,
    window_features,
)
from models import Registry as ModelRegistry
from models._ai4i import features as ai4i_features
from models._ai4i import load_ai4i
from models._cmapss import SENSORS, SETTINGS, read_cmapss, rul_labels
from models._failure import cmapss_features

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT.parent / "shared" / "datasets"
CMAPSS = DATASETS / "cmapss"
AI4I = DATASETS / "ai4i2020" / "ai4i2020.csv"
pytestmark = pytest.mark.skipif(
    not (CMAPSS / "train_FD001.txt").exists() or not AI4I.exists(), reason="data sets not present"
)
END = pd.Timestamp("2026-11-23T12:00Z")
NOW = dt.datetime(2026, 11, 23, 12, 1, tzinfo=dt.UTC)
CONFIG = ScoringConfig()
ENGINE_PLAN = CONFIG.profiles["turbomon_tm21_1.0"]
Models = dict[str, LoadedModel]


def v(x: float | None) -> float:
    """A score's optional number, which must be there."""
    assert x is not None
    return x


def _loaded(result: object, name: str) -> LoadedModel:
    estimator = getattr(result, "estimator", result)
    return LoadedModel(name=name, version="v0001", estimator=estimator, metadata={}, path=ROOT)


@pytest.fixture(scope="module")
def models() -> Models:
    """Small champions: C-MAPSS on 12 engines, AI4I on 2000 products (seconds, not minutes)."""
    files = tuple(CMAPSS / f"{p}_FD001.txt" for p in ("train", "test", "RUL"))
    rul = train_cmapss_rul(
        TrainRequest(data=files, max_units=12, params={"max_iter": 20, "n_folds": 3})
    )
    # The failure model fitted directly (the trainer's grid search is tested in tests/models).
    train = read_cmapss(CMAPSS / "train_FD001.txt", max_units=12)
    failure = HorizonFailureModel(max_iter=15, cv=2).fit(
        cmapss_features(train), rul_labels(train, cap=None), groups=train["unit"]
    )
    raw = load_ai4i(AI4I, max_units=2000)
    mill = FailureClassifier(max_iter=20, cv=2).fit(ai4i_features(raw), raw["machine_failure"])
    return {
        "cmapss_rul": _loaded(rul, "cmapss_rul"),
        "cmapss_failure": _loaded(failure, "cmapss_failure"),
        "ai4i_failure": _loaded(mill, "ai4i_failure"),
    }


def engine_frame(rows: pd.DataFrame, *, cycle_h: float = 1.0, polls: int = 1) -> pd.DataFrame:
    """C-MAPSS rows as the telemetry query returns them: tags, signals, one row per poll."""
    t = END - pd.to_timedelta((rows["cycle"].max() - rows["cycle"]) * cycle_h, unit="h")
    f = rows[list(SETTINGS + SENSORS)].copy()
    f["cycle_count"] = rows["cycle"].to_numpy()
    f["engine_state"] = "running"
    f["asset"], f["site"], f["gateway"], f["model"] = "engine-20", "s1", "gw", "turbomon_tm21_1.0"
    f.index = pd.DatetimeIndex(t.to_numpy(), name="time")
    if polls > 1:  # a second poll inside the same cycle, a few minutes later
        later = f.copy()
        later.index = f.index + pd.Timedelta(minutes=1)
        f = pd.concat([f, later]).sort_index()
    return f


@pytest.fixture(scope="module")
def engine() -> pd.DataFrame:
    """Engine 20 of FD001, never seen by the models (trained on engines 1-12)."""
    frame = read_cmapss(CMAPSS / "train_FD001.txt")
    return frame[frame["unit"] == 20]


def _plan(cycle_h: float) -> ProfilePlan:
    return ENGINE_PLAN.model_copy(
        update={"cycle": dt.timedelta(hours=cycle_h), "window": dt.timedelta(hours=72 * cycle_h)}
    )


def _score(
    models: dict[str, LoadedModel], raw: pd.DataFrame, plan: ProfilePlan = ENGINE_PLAN
) -> dict[str, Score]:
    out = score_asset(
        asset="engine-20",
        site="s1",
        plan=plan,
        raw=raw,
        models=models,
        config=CONFIG,
        now=NOW,
    )
    assert out.skipped is None
    assert out.model_skips == ()
    return {s.model_name: s for s in out.scores}


def test_an_engine_near_failure_scores_lower_life_and_health_than_a_fresh_one(
    models: Models, engine: pd.DataFrame
) -> None:
    """RUL and health fall, failure probability rises, towards the end of a run."""
    worn = _score(models, engine_frame(engine.tail(70)))
    fresh = _score(models, engine_frame(engine.head(70)))
    assert v(worn["cmapss_rul"].rul) < v(fresh["cmapss_rul"].rul)
    assert worn["cmapss_rul"].health < fresh["cmapss_rul"].health
    assert v(worn["cmapss_failure"].probability) > v(fresh["cmapss_failure"].probability)
    for s in (*worn.values(), *fresh.values()):
        assert 0.0 <= s.health <= 100.0
        assert s.target == "hpc_degradation"
        assert s.model_version == "v0001"
    for s in (worn["cmapss_failure"], fresh["cmapss_failure"]):
        assert 0.0 <= v(s.probability) <= 1.0
        within = [s.extra[k] for k in sorted(s.extra, key=lambda k: float(k[9:-1]))]
        assert within == sorted(within)  # monotone across horizons
        assert s.horizon_h == 30.0
    rul = worn["cmapss_rul"]
    assert v(rul.rul_lo) <= v(rul.rul_hi)  # signed per bin (models._rul): may exclude rul


def test_an_at_risk_score_carries_its_explanation_and_evidence(
    models: Models, engine: pd.DataFrame
) -> None:
    """A worn engine's scores are explained (``at_risk``, the default).

    Top-k contributions are stored as JSON with the score; evidence names real signals.
    """
    scores = _score(models, engine_frame(engine.tail(70)))
    for s in scores.values():
        fields = s.fields()
        stored = json.loads(str(fields["explain"]))
        assert 1 <= len(stored["contributions"]) <= CONFIG.explain.top_k
        assert stored["contributions"][0]["feature"]
        assert set(fields) >= {"health", "explain"}
        assert s.evidence
        assert all(e.signal in {*SENSORS, *SETTINGS, "cycle"} for e in s.evidence)
    assert s.tags() == {
        "site": "s1",
        "asset": "engine-20",
        "target": "hpc_degradation",
        "model_name": s.model_name,
        "model_version": "v0001",
    }


def test_remaining_life_is_cycles_times_the_cycle_duration(
    models: Models, engine: pd.DataFrame
) -> None:
    """The same cycles laid 30 min apart give the same cycles, so half the hours."""
    hourly = _score(models, engine_frame(engine.tail(70), cycle_h=1.0), _plan(1.0))
    half = _score(models, engine_frame(engine.tail(70), cycle_h=0.5), _plan(0.5))
    assert v(half["cmapss_rul"].rul) == pytest.approx(v(hourly["cmapss_rul"].rul) / 2)
    assert v(half["cmapss_rul"].rul_lo) == pytest.approx(v(hourly["cmapss_rul"].rul_lo) / 2)
    assert v(half["cmapss_failure"].probability) == pytest.approx(
        v(hourly["cmapss_failure"].probability)
    )
    assert half["cmapss_failure"].horizon_h == 15.0


def test_two_polls_per_cycle_score_like_one(models: Models, engine: pd.DataFrame) -> None:
    """Readings are de-duplicated by cycle: the features see one row per cycle."""
    once = _score(models, engine_frame(engine.tail(70)))
    twice = _score(models, engine_frame(engine.tail(70), polls=2))
    assert v(twice["cmapss_rul"].rul) == pytest.approx(v(once["cmapss_rul"].rul))
    assert v(twice["cmapss_failure"].probability) == pytest.approx(
        v(once["cmapss_failure"].probability)
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda f: f.iloc[0:0], "no_data"),
        (lambda f: f.set_axis(f.index - pd.Timedelta(days=2)), "stale"),
        (lambda f: f.tail(3), "too_few_rows"),
        (lambda f: f.drop(columns="cycle_count"), "missing_cycles"),
        (
            lambda f: f.drop(columns=list(SENSORS) + list(SETTINGS) + ["cycle_count"]),
            "missing_cycles",
        ),
    ],
)
def test_missing_or_stale_data_is_an_outcome_not_a_crash(
    models: Models,
    engine: pd.DataFrame,
    change: Callable[[pd.DataFrame], pd.DataFrame],
    reason: str,
) -> None:
    out = score_asset(
        asset="engine-20",
        site="s1",
        plan=ENGINE_PLAN,
        raw=change(engine_frame(engine.tail(40))),
        models=models,
        config=CONFIG,
        now=NOW,
    )
    assert out.skipped == reason
    assert out.scores == ()


def test_a_model_without_its_signals_or_champion_is_skipped_with_a_reason(
    models: Models, engine: pd.DataFrame
) -> None:
    raw = engine_frame(engine.tail(40)).drop(columns=["t30_r", "altitude_kft"])
    out = score_asset(
        asset="e", site="s", plan=ENGINE_PLAN, raw=raw, models=models, config=CONFIG, now=NOW
    )
    assert out.skipped is None
    assert dict(out.model_skips) == {
        "cmapss_rul": "missing_signals",
        "cmapss_failure": "missing_signals",
    }
    out = score_asset(
        asset="e",
        site="s",
        plan=ENGINE_PLAN,
        raw=engine_frame(engine.tail(40)),
        models={},
        config=CONFIG,
        now=NOW,
    )
    assert dict(out.model_skips) == {"cmapss_rul": "no_champion", "cmapss_failure": "no_champion"}
    none = score_asset(
        asset="e", site="s", plan=None, raw=raw, models=models, config=CONFIG, now=NOW
    )
    assert none.skipped == "no_plan"


def test_feature_specs_are_rebuilt_from_feature_names() -> None:
    specs = (
        FeatureSpec(signals=("a", "b"), window=30, stats=("mean", "slope")),
        FeatureSpec(signals=("a",), window=pd.Timedelta(hours=2), stats=("last",)),
    )
    names = feature_names(specs)
    rebuilt = specs_from_names(names)
    frame = pd.DataFrame(
        {"a": np.arange(40.0), "b": np.sin(np.arange(40.0))},
        index=pd.date_range("2026-01-01", periods=40, freq="h", tz="UTC"),
    )
    pd.testing.assert_frame_equal(
        window_features(frame, rebuilt)[list(names)], window_features(frame, specs)
    )
    with pytest.raises(ValueError, match="signal"):
        specs_from_names(["no_stat"])


def _filter_frame(seed: int) -> tuple[pd.DataFrame, float, float]:
    run = simulate_filter_dp(seed=seed, clean_dp_bar=0.01, threshold_bar=0.05, life_h=(200, 300))
    frame = run.frame
    cut = int(len(frame) * 0.6)
    window = frame.iloc[:cut].copy()
    window["site"], window["asset"] = "s", "compressor-01"
    end = window.index[-1]
    true_left = run.true_crossing_h - (end - window.index[0]).total_seconds() / 3600
    return window, float(true_left), run.threshold_bar


def test_a_filter_is_forecast_online_against_the_profile_threshold() -> None:
    """The online consumable model fits the readings since the last replacement only."""
    window, true_left, threshold = _filter_frame(seed=3)
    plan = CONFIG.profiles["airtek_sc75_4.2"]
    now = window.index[-1].to_pydatetime() + dt.timedelta(minutes=5)
    old = window.copy()  # a previous filter, clogged, replaced before this one
    old.index = old.index - (old.index[-1] - old.index[0]) - pd.Timedelta(hours=2)
    old["filter_dp_bar"] = old["filter_dp_bar"] + 0.04
    raw = pd.concat([old, window]).rename(columns={"filter_dp_bar": "air_filter_dp_bar"})
    spec = ConsumableSpec("air_filter", "air_filter_dp_bar", threshold, "above")
    out = score_asset(
        asset="compressor-01",
        site="s",
        plan=plan.model_copy(
            update={"window": dt.timedelta(days=60), "consumable_window": dt.timedelta(days=60)}
        ),
        raw=raw,
        models={},
        config=CONFIG,
        now=now,
        consumables=[spec],
    )
    (score,) = out.scores
    assert score.model_name == "consumable_life_online"
    assert score.model_version == "online"
    assert score.target == "air_filter"
    assert v(score.rul_lo) <= v(score.rul) <= (score.rul_hi or math.inf)
    assert abs(v(score.rul) - true_left) < 0.5 * true_left
    assert json.loads(str(score.fields()["explain"]))["points"] == len(window)


def test_since_replacement_starts_after_the_last_big_drop() -> None:
    series = pd.Series([1.0, 50.0, 120.0, 190.0, 2.0, 30.0, 31.0, 29.0, 60.0])
    assert since_replacement(series, 200.0, rising=True).tolist() == [2.0, 30.0, 31.0, 29.0, 60.0]
    assert since_replacement(series[:4], 200.0, rising=True).tolist() == series[:4].tolist()


def test_a_mill_is_scored_from_its_latest_readings(models: Models) -> None:
    plan = CONFIG.profiles["millrite_spx12_5.1"]
    times = pd.date_range(END - pd.Timedelta(hours=6), END, freq="h")
    raw = pd.DataFrame(
        {
            "air_temp_k": 300.0,
            "process_temp_k": 309.0,
            "spindle_speed_rpm": 1400.0,
            "spindle_torque_nm": 60.0,
            "tool_wear_min": np.linspace(150, 230, len(times)),
            "product_quality": "L",
        },
        index=times,
    )
    out = score_asset(
        asset="mill-01", site="s", plan=plan, raw=raw, models=models, config=CONFIG, now=NOW
    )
    (score,) = [s for s in out.scores if s.model_name == "ai4i_failure"]
    assert 0.0 <= v(score.probability) <= 1.0
    assert score.horizon_h == 1.0
    assert dict(out.model_skips) == {"tool_wear": "no_champion"}
    out = score_asset(
        asset="mill-01",
        site="s",
        plan=plan,
        raw=raw.drop(columns="product_quality"),
        models=models,
        config=CONFIG,
        now=NOW,
    )
    assert ("ai4i_failure", "missing_signals") in out.model_skips


def _mill_frame(wear_from: float, quality: str = "L") -> pd.DataFrame:
    times = pd.date_range(END - pd.Timedelta(hours=6), END, freq="h")
    return pd.DataFrame(
        {
            "air_temp_k": 300.0,
            "process_temp_k": 309.0,
            "spindle_speed_rpm": 1400.0,
            "spindle_torque_nm": 60.0,
            "tool_wear_min": np.linspace(wear_from, wear_from + 80, len(times)),
            "product_quality": quality,
        },
        index=times,
    )


@pytest.mark.parametrize("mode", ["always", "at_risk", "never"])
def test_a_batch_scores_exactly_as_asset_by_asset(
    models: Models, engine: pd.DataFrame, mode: str
) -> None:
    """One predict and one explanation pass per model over many assets = `score_asset` each.

    In every ``explain.mode``: ``always`` explains every score, ``never`` none, ``at_risk``
    exactly the targets whose highest risk reaches the alert policy's clear level (the worn
    engine, not the young one).

    Engines young, mid-life and worn (one polled twice per cycle), one without two signals, one
    stale, mills of two types, a filter forecast online, an unplanned asset: every score,
    explanation, evidence and skip reason is equal, in the same order.
    """
    config = ScoringConfig.model_validate({"explain": {"mode": mode}})
    window, _, threshold = _filter_frame(seed=3)
    filter_raw = window.rename(columns={"filter_dp_bar": "air_filter_dp_bar"})
    filter_plan = CONFIG.profiles["airtek_sc75_4.2"].model_copy(
        update={"window": dt.timedelta(days=60), "consumable_window": dt.timedelta(days=60)}
    )
    filter_now = window.index[-1].to_pydatetime() + dt.timedelta(minutes=5)
    mill = CONFIG.profiles["millrite_spx12_5.1"]
    items = [
        AssetInput("e-worn", "s1", ENGINE_PLAN, engine_frame(engine.tail(70))),
        AssetInput("e-young", "s1", ENGINE_PLAN, engine_frame(engine.head(70), polls=2)),
        AssetInput("e-mid", "s1", ENGINE_PLAN, engine_frame(engine.iloc[60:130])),
        AssetInput(
            "e-partial",
            "s1",
            ENGINE_PLAN,
            engine_frame(engine.tail(40)).drop(columns=["t30_r", "altitude_kft"]),
        ),
        AssetInput("e-stale", "s1", ENGINE_PLAN, engine_frame(engine.tail(40)).shift(-7, "h")),
        AssetInput("mill-l", "s2", mill, _mill_frame(150.0)),
        AssetInput("mill-h", "s2", mill, _mill_frame(20.0, "H")),
        AssetInput("nobody", "s3", None, engine_frame(engine.tail(40))),
    ]
    units = {"t30_r": "degR"}
    batched = score_batch(
        [dataclasses.replace(i, units=units) for i in items], models=models, config=config, now=NOW
    )
    single = [
        score_asset(
            asset=i.asset,
            site=i.site,
            plan=i.plan,
            raw=i.raw,
            models=models,
            config=config,
            now=NOW,
            units=units,
        )
        for i in items
    ]
    assert batched == single
    assert [o.skipped for o in batched] == [None, None, None, None, "stale", None, None, "no_plan"]
    assert sum(len(o.scores) for o in batched) == 3 * 2 + 2  # engines 2 each, mills 1 each
    scores = [s for o in batched for s in o.scores]
    top: dict[tuple[str, str], float] = {}
    for s in scores:
        top[(s.asset, s.target)] = max(top.get((s.asset, s.target), 0.0), s.risk)
    for s in scores:
        at_risk = bool(top[(s.asset, s.target)] >= config.alert_policy(s.target).clear_level)
        want = {"always": True, "never": False, "at_risk": at_risk}[mode]
        assert s.explained is want
        assert ("explain" in s.fields()) is want
        assert bool(s.evidence) is want
        assert bool(s.explanation.get("contributions")) is want
    if mode == "at_risk":
        explained = {s.asset for s in scores if s.explained}
        assert "e-worn" in explained
        assert "e-young" not in explained
    spec = ConsumableSpec("air_filter", "air_filter_dp_bar", threshold, "above")
    online = AssetInput("f", "s", filter_plan, filter_raw, consumables=[spec])
    (one,) = score_batch([online], models={}, config=config, now=filter_now)
    assert one == score_asset(
        asset="f",
        site="s",
        plan=filter_plan,
        raw=filter_raw,
        models={},
        config=config,
        now=filter_now,
        consumables=[spec],
    )
    assert len(one.scores) == 1


def test_the_at_risk_rule_uses_the_alert_policies_levels() -> None:
    """``at_risk`` explains from each target's clear level (the decider's policies).

    An active alert is always explained; ``explain: never`` is short for ``{mode: never}``; a
    bad mode names its key.
    """
    config = parse_config(
        {
            "alert": {"open_level": 0.7, "clear_level": 0.5},
            "alerts": {"cutting_tool": {"open_level": 0.4, "clear_level": 0.2}},
        }
    )
    assert config.explain.mode == "at_risk"
    rule = explain_rule(config)
    assert not rule.wants("e", "hpc_degradation", 0.49)
    assert rule.wants("e", "hpc_degradation", 0.5)
    assert rule.wants("m", "cutting_tool", 0.2)
    assert not rule.wants("m", "cutting_tool", 0.19)
    # Remaining life within the threshold: risk 1 - rul_lo / health_ref (health_from_life).
    ref = 125.0
    assert rule.wants("e", "hpc_degradation", 1 - health_from_life(0.5 * ref, ref) / 100)
    assert not rule.wants("e", "hpc_degradation", 1 - health_from_life(0.51 * ref, ref) / 100)
    held = explain_rule(config, held=[("e", "hpc_degradation")])
    assert held.wants("e", "hpc_degradation", 0.0)
    assert not held.wants("f", "hpc_degradation", 0.0)
    engine_levels = Decider(
        store=None,  # type: ignore[arg-type]  # the engine's policies only
        policy=ServicePolicy(),
        alert_policy=config.alert,
        alert_policies=config.alerts,
    ).engine.policy_for
    same = explain_rule(config, policy_for=engine_levels)
    for target in ("hpc_degradation", "cutting_tool", "air_filter"):
        for risk in np.linspace(0, 1, 21):
            assert same.wants("e", target, risk) == rule.wants("e", target, risk)
    never = parse_config({"explain": "never"})
    assert never.explain.mode == "never"
    assert not explain_rule(never).wants("e", "hpc_degradation", 1.0)
    always = ExplainRule("always", lambda _t: 2.0)
    assert always.wants("e", "hpc_degradation", 0.0)
    with pytest.raises(ScoringConfigError, match=r"s\.yaml: explain\.mode .*'sometimes'"):
        parse_config({"explain": {"mode": "sometimes"}}, source="s.yaml")


def test_a_score_that_opens_updates_or_builds_a_work_order_is_explained(
    models: Models, engine: pd.DataFrame, tmp_path: Path
) -> None:
    """``at_risk`` through the decider: what opens, updates or builds work is explained.

    The worn engine's scores open the alert and build the work order, explained, with evidence;
    a healthy score later clears the alert: explained too (its alert was active); a healthy
    engine's scores are not.
    """
    worn_raw, young_raw = engine_frame(engine.tail(70)), engine_frame(engine.head(70))
    never = ScoringConfig.model_validate({"explain": "never"})

    def top_risk(raw: pd.DataFrame) -> float:
        out = score_asset(
            asset="x", site="s1", plan=ENGINE_PLAN, raw=raw, models=models, config=never, now=NOW
        )
        return max(s.risk for s in out.scores)

    worn, young = top_risk(worn_raw), top_risk(young_raw)
    assert young < worn
    # Levels between the two engines: the worn one opens, the young one is below the clear level.
    config = ScoringConfig.model_validate(
        {"alert": {"open_level": worn, "clear_level": (worn + young) / 2, "open_after": 3}}
    )
    profile = ProfileLibrary.load(ROOT / "firmware_profiles").get("turbomon_tm21_1.0")
    store = Store(tmp_path / "state.db")
    decider = Decider(
        store=store,
        policy=ServicePolicy(),
        alert_policy=config.alert,
        alert_policies=config.alerts,
    )
    changes, made = [], []
    for run, (raw, asset) in enumerate(
        [(worn_raw, "engine-91")] * 3 + [(young_raw, "engine-92")] + [(young_raw, "engine-91")]
    ):
        shift = dt.timedelta(hours=run)
        decider.restore()
        active = [(a.asset, a.target) for a in decider.engine.alerts() if a.active]
        rule = explain_rule(config, policy_for=decider.engine.policy_for, held=active)
        out = score_asset(
            asset=asset,
            site="s1",
            plan=ENGINE_PLAN,
            raw=raw.shift(freq=shift),
            models=models,
            config=config,
            now=NOW + shift,
            explain=rule,
        )
        assert len(out.scores) == 2  # RUL and failure
        done = decider.on_scores(_asset(asset_id=asset), profile, out.scores, now=NOW + shift)
        changes.append(done.alert_changes)
        made.append(done.work_orders_created)
        explained = {s.explained for s in out.scores}
        assert explained == {done.alert_changes > 0 or done.work_orders_created > 0 or run < 3}
    assert changes == [0, 0, 1, 0, 1]  # opened on the third score, cleared by the fifth
    assert made == [0, 0, 1, 0, 0]
    (wo,) = store.work_orders()
    assert wo.work_order.evidence
    assert all(e.signal in {*SENSORS, *SETTINGS, "cycle"} for e in wo.work_order.evidence)
    store.close()


def test_health_rule() -> None:
    assert health_from_probability(0.0) == 100.0
    assert health_from_probability(0.25) == 75.0
    assert health_from_probability(1.5) == 0.0
    assert health_from_life(62.5, 125.0) == 50.0
    assert health_from_life(500.0, 125.0) == 100.0
    assert health_from_life(math.inf, 125.0) == 100.0
    assert health_from_life(-1.0, 125.0) == 0.0


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_cover_every_asset_exactly_once(n: int) -> None:
    assets = [f"engine-{i}" for i in range(200)]
    owners = {a: [i for i in range(n) if Shard(i, n).owns(a)] for a in assets}
    assert all(len(v) == 1 for v in owners.values())
    assert {stable_shard("engine-1", n)} == set(owners["engine-1"])
    if n > 1:
        assert len({o[0] for o in owners.values()}) == n  # every shard gets some


def test_shard_parse_refuses_nonsense() -> None:
    assert Shard.parse("1/3") == Shard(1, 3)
    for text in ("3/3", "x", "1", "-1/2", "0/0"):
        with pytest.raises(ValueError, match="i/N"):
            Shard.parse(text)


def test_an_empty_config_is_the_shipped_example() -> None:
    assert load_config(ROOT / "config" / "scoring.example.yaml") == ScoringConfig()
    assert parse_config(None) == ScoringConfig()


def test_config_errors_name_the_file_the_key_and_the_value() -> None:
    with pytest.raises(ScoringConfigError) as err:
        parse_config(
            {"profiles": {"p": {"window": "long", "models": [{"kind": "rull", "target": "x"}]}}},
            source="scoring.yaml",
        )
    text = str(err.value)
    assert "scoring.yaml: profiles.p.window" in text
    assert "Got 'long' instead" in text
    assert "profiles.p.models.0.kind" in text
    with pytest.raises(ScoringConfigError, match="typo"):
        parse_config({"typo": 1}, source="s.yaml")
    with pytest.raises(ScoringConfigError, match="needs the registry name"):
        parse_config({"profiles": {"p": {"models": [{"kind": "rul", "target": "x"}]}}})


def test_metrics_render_as_prometheus_text() -> None:
    m = ScorerMetrics()
    m.assets_skipped["stale"] += 2
    m.model_skips["cmapss_rul/missing_signals"] += 1
    text = m.render()
    assert 'prognos_scorer_assets_skipped_total{reason="stale"} 2' in text
    assert 'prognos_scorer_model_skips_total{model="cmapss_rul",reason="missing_signals"} 1' in text


# ----------------------------------------------------------------------------- decisions


def _asset(**over: object) -> Asset:
    data: dict[str, object] = {
        "asset_id": "engine-91",
        "site": "s1",
        "customer": "Northwind",
        "tier": "Gold",
        "model": "TM-21",
        "firmware": "1.0",
        "profile": "turbomon_tm21_1.0",
        "serial": "TM-1",
        "asset_class": "engine",
        "team": "engine-shop",
        "criticality": "critical",
        "commissioned": dt.date(2026, 1, 1),
    }
    data.update(over)
    return Asset.model_validate(data)


def _risky(ts: dt.datetime, health: float, rul_lo: float = 4.0) -> Score:
    return Score(
        asset="engine-91",
        site="s1",
        target="hpc_degradation",
        model_name="cmapss_rul",
        model_version="v0001",
        ts=ts,
        health=health,
        rul=rul_lo + 6.0,
        rul_lo=rul_lo,
        rul_hi=rul_lo + 16.0,
    )


def test_an_alert_needing_work_gives_one_work_order_across_runs(tmp_path: Path) -> None:
    """Three risky scores open the alert; its work order is created once, even after a restart."""
    profile = ProfileLibrary.load(ROOT / "firmware_profiles").get("turbomon_tm21_1.0")
    store = Store(tmp_path / "state.db")

    def decider() -> Decider:
        return Decider(
            store=store, policy=ServicePolicy(), alert_policy=CONFIG.alert, alert_policies={}
        )

    made = []
    seen: list[tuple[str, str, dt.datetime, float]] = []
    scorer = decider()
    for run in range(6):
        t = NOW + dt.timedelta(hours=run)
        if run == 4:  # a restart: alerts come back from the store, scores from InfluxDB
            scorer = decider()
            assert scorer.warm(seen) == 4
        scorer.restore()  # before each run (docs/alerts.md)
        made.append(
            scorer.on_scores(_asset(), profile, [_risky(t, 5.0)], now=t).work_orders_created
        )
        seen.append(("engine-91", "hpc_degradation", t, 0.95))
    assert made == [0, 0, 1, 0, 0, 0]
    assert store.alerts()[0].state.value == "open"
    (wo,) = store.work_orders()
    assert wo.state is WoState.PROPOSED  # default guardrail: suggest
    payload = wo.work_order
    assert payload.alert_id == "engine-91/hpc_degradation/1"
    assert payload.rul_lo_h == 4.0
    assert payload.parts[0].part_number == "TM-HPC-MOD"
    assert [a.alert_id for a in store.alerts()] == ["engine-91/hpc_degradation/1"]
    store.close()


def test_a_due_consumable_rule_gives_one_work_order(tmp_path: Path) -> None:
    """The oil filter (every 600 h) is due at 590 h: one rule work order, not one per run."""
    profile = ProfileLibrary.load(ROOT / "firmware_profiles").get("turbomon_tm21_1.0")
    store = Store(tmp_path / "state.db")
    decider = Decider(
        store=store, policy=ServicePolicy(), alert_policy=CONFIG.alert, alert_policies={}
    )
    made = sum(
        decider.on_rules(_asset(), profile, hours_now=590.0, now=NOW).rule_work_orders
        for _ in range(3)
    )
    assert made == 2  # oil filter (600 h) and chip detector (300 h), each once
    assert {r.work_order.consumable for r in store.work_orders()} == {
        "oil_filter",
        "chip_detector_inspection",
    }
    store.close()


def test_a_score_never_writes_nan_or_infinity() -> None:
    """Non-finite numbers are left out of the fields and become null in the explanation."""
    score = Score(
        asset="a",
        site="s",
        target="t",
        model_name="m",
        model_version="v1",
        ts=NOW,
        health=100.0,
        rul=math.inf,
        rul_lo=5.0,
        explanation={"prediction": math.nan, "contributions": [{"value": np.float64(math.inf)}]},
    )
    fields = score.fields()
    assert "rul" not in fields
    assert fields["rul_lo"] == 5.0
    assert json.loads(str(fields["explain"])) == {
        "prediction": None,
        "contributions": [{"value": None}],
    }


def test_the_simulator_plans_in_docs_load() -> None:
    """docs/scoring.md's config for `sim plant --speed 3600`: one cycle is one wall second."""
    text = (ROOT / "docs" / "scoring.md").read_text()
    block = text.split("use (tested to load):\n\n```yaml\n")[1].split("```")[0]
    config = parse_config(yaml.safe_load(block), source="docs/scoring.md")
    assert config.profiles["turbomon_tm21_1.0"].cycle_h == pytest.approx(1 / 3600)
    assert set(config.profiles) == set(ScoringConfig().profiles)


def test_the_scorer_counts_an_asset_without_data_and_logs_it_once() -> None:
    """Over a fake InfluxDB transport: no telemetry is `no_data`, counted per pass, logged once."""
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/query"
        queries.append(request.url.params["q"])
        return httpx.Response(200, json={"results": [{"statement_id": 0}]})

    client = InfluxClient(url="http://influx.test", transport=httpx.MockTransport(handler))
    scorer = Scorer(
        config=CONFIG,
        assets=AssetRegistry([_asset(), _asset(asset_id="engine-92")]),
        profiles=ProfileLibrary.load(ROOT / "firmware_profiles"),
        models=ModelRegistry(ROOT / "no-such-registry"),
        influx=client,
    )
    with capture_logs() as logs:
        first = scorer.run_once(NOW)
        scorer.run_once(NOW + dt.timedelta(minutes=5))
    assert [o.skipped for o in first.outcomes] == ["no_data", "no_data"]
    assert first.queries == 1  # both engines of the site in one query
    assert '"asset" =~ /^(engine\\-91|engine\\-92)$/' in queries[0]
    assert scorer.metrics.assets_skipped["no_data"] == 4
    events = [e for e in logs if e["event"] == "asset_not_scored"]
    assert [(e["asset"], e["reason"]) for e in events] == [
        ("engine-91", "no_data"),
        ("engine-92", "no_data"),
    ]
    assert [e["model"] for e in logs if e["event"] == "champion_unavailable"] == [
        "ai4i_failure",
        "cmapss_failure",
        "cmapss_rul",
        "hydraulic_cooler",
        "tool_wear",
    ]  # once each, not once per pass
    client.close()


def test_a_work_order_is_updated_only_when_its_alert_grows_more_urgent(tmp_path: Path) -> None:
    """Far-off remaining life opens a P3; when it shrinks under 24 h the same work order is P1."""
    profile = ProfileLibrary.load(ROOT / "firmware_profiles").get("turbomon_tm21_1.0")
    store = Store(tmp_path / "state.db")
    decider = Decider(
        store=store, policy=ServicePolicy(), alert_policy=CONFIG.alert, alert_policies={}
    )
    updated = []
    for run, rul_lo in enumerate([300.0, 300.0, 300.0, 250.0, 5.0, 4.0]):
        t = NOW + dt.timedelta(hours=run)
        decider.restore()
        done = decider.on_scores(_asset(), profile, [_risky(t, 5.0, rul_lo)], now=t)
        updated.append(done.work_orders_updated)
    assert updated == [0, 0, 0, 0, 1, 0]
    (wo,) = store.work_orders()
    assert wo.work_order.priority.value == "P1"
    assert wo.work_order.rul_lo_h == 5.0
    store.close()
