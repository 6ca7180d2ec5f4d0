"""`prognos score` against a real influxd: telemetry in, ``scores`` out, an alert, a work order."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pandas as pd
import pytest
import yaml
from conftest import Services

from cloud._cli import main
from cloud.registry import Asset, AssetRegistry
from cloud.scoring import Decider, PassReport, Scorer, ScoringConfig, Shard
from cloud.store import InfluxAuth, InfluxClient, Point
from cloud.workorders import ServicePolicy, Store
from edge_agent._profile import ProfileLibrary
from models import (
    DataSource,
    HorizonFailureModel,
    Registry,
    TrainRequest,
    TrainResult,
    fingerprint,
    train_cmapss_rul,
)
from models._cmapss import SENSORS, SETTINGS, read_cmapss, rul_labels
from models._failure import cmapss_features

ROOT = Path(__file__).resolve().parents[2]
CMAPSS = ROOT.parent / "shared" / "datasets" / "cmapss"
pytestmark = pytest.mark.skipif(
    not (CMAPSS / "train_FD001.txt").exists(), reason="C-MAPSS data set not present"
)
END = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
CYCLE = dt.timedelta(hours=1)
PROFILES = ProfileLibrary.load(ROOT / "firmware_profiles")


@pytest.fixture(scope="module")
def model_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small champions of cmapss_rul and cmapss_failure (engines 1-12), promoted."""
    root = tmp_path_factory.mktemp("models")
    registry = Registry(root)
    files = tuple(CMAPSS / f"{p}_FD001.txt" for p in ("train", "test", "RUL"))
    rul = train_cmapss_rul(
        TrainRequest(data=files, max_units=12, params={"max_iter": 20, "n_folds": 3})
    )
    registry.promote(rul.name, registry.save(rul))
    # The failure model fitted directly (its trainer's grid search is tested in tests/models).
    train = read_cmapss(files[0], max_units=12)
    features = cmapss_features(train)
    failure = HorizonFailureModel(max_iter=15, cv=2).fit(
        features, rul_labels(train, cap=None), groups=train["unit"]
    )
    result = TrainResult(
        name="cmapss_failure",
        kind="failure_probability",
        estimator=failure,
        features=tuple(features.columns),
        params={},
        metrics={},
        data=DataSource(paths=(str(files[0]),), sha256=fingerprint(files[:1]), rows=len(train)),
        split={},
    )
    registry.promote(result.name, registry.save(result))
    return root


def _asset(asset_id: str) -> Asset:
    return Asset.model_validate(
        {
            "asset_id": asset_id,
            "site": "sim-plant",
            "customer": "Northwind Airlines",
            "tier": "VIP",
            "model": "TM-21",
            "firmware": "1.0",
            "profile": "turbomon_tm21_1.0",
            "serial": f"SN-{asset_id}",
            "asset_class": "engine",
            "team": "engine-shop",
            "criticality": "critical",
            "commissioned": "2026-01-01",
        }
    )


def _points(asset: str, rows: pd.DataFrame) -> list[Point]:
    """One engine's cycles as the ingester stores them, the last cycle at END, twice per cycle."""
    last = int(rows["cycle"].max())
    points = []
    for row in rows.to_dict("records"):
        cycle = int(row["cycle"])
        at = END - (last - cycle) * CYCLE
        fields: dict[str, float | int | str] = {s: float(row[s]) for s in SETTINGS + SENSORS}
        fields["cycle_count"] = cycle
        fields["engine_state"] = "running"
        tags = {
            "site": "sim-plant",
            "gateway": "gw-sim-plant",
            "asset": asset,
            "model": "turbomon_tm21_1.0",
        }
        for poll in (0, 20):  # the agent polls about twice per cycle
            ms = int((at + dt.timedelta(minutes=poll)).timestamp() * 1000)
            points.append(Point("telemetry", tags, fields, ms))
    return points


@pytest.fixture
def influx(services: Services, influx_db: str) -> Iterator[InfluxClient]:
    engines = read_cmapss(CMAPSS / "train_FD001.txt")
    unit = engines[engines["unit"] == 20]  # never seen by the models (trained on 1-12)
    with InfluxClient(
        url=services.influx_url,
        database=influx_db,
        auth=InfluxAuth.basic(services.influx_user, services.influx_password),
    ) as client:
        client.write(_points("engine-91", unit.tail(80)), precision="ms")  # its last 80 cycles
        client.write(_points("engine-92", unit.head(80)), precision="ms")  # a young engine
        yield client


def _scorer(
    influx: InfluxClient,
    registry: Path,
    store: Store,
    assets: list[str],
    shard: Shard | None = None,
) -> Scorer:
    return Scorer(
        config=ScoringConfig(),
        assets=AssetRegistry([_asset(a) for a in assets]),
        profiles=PROFILES,
        models=Registry(registry),
        influx=influx,
        decider=Decider(
            store=store,
            policy=ServicePolicy(),
            alert_policy=ScoringConfig().alert,
            alert_policies={},
        ),
        shard=shard,
    )


def test_a_scoring_pass_writes_scores_and_opens_work_for_the_worn_engine(
    influx: InfluxClient, model_registry: Path, tmp_path: Path
) -> None:
    store = Store(tmp_path / "state.db")
    scorer = _scorer(influx, model_registry, store, ["engine-91", "engine-92"])
    reports = scorer.replay(since=END - 3 * CYCLE, until=END, step=CYCLE)
    assert [r.now for r in reports] == [END - 2 * CYCLE, END - CYCLE, END]
    assert all(len(r.outcomes) == 2 and r.queries == 1 for r in reports)  # one per site+profile

    scores = influx.query_df('SELECT * FROM "scores"')
    assert len(scores) == 3 * 2 * 2  # passes x engines x models
    assert set(scores["model_version"]) == {"v0001"}
    latest = scores[scores.index == scores.index.max()]
    rul = latest[latest["model_name"] == "cmapss_rul"].set_index("asset")
    assert rul.loc["engine-91", "rul"] < rul.loc["engine-92", "rul"]
    # The interval is signed per prediction bin (models._rul): it need not contain the point.
    assert rul.loc["engine-91", "rul_lo"] <= rul.loc["engine-91", "rul_hi"]
    assert rul.loc["engine-91", "health"] < rul.loc["engine-92", "health"]
    failure = scores[scores["model_name"] == "cmapss_failure"]
    assert failure["probability"].between(0, 1).all()
    assert (failure["horizon_h"] == 30.0).all()
    # explain: at_risk (the default): the worn engine's scores, not the young engine's.
    assert scores[scores["asset"] == "engine-92"]["explain"].isna().all()
    worn = scores[scores["asset"] == "engine-91"]
    assert worn["explain"].notna().all()
    assert [(r.scores, r.explained) for r in reports] == [(4, 2)] * 3
    for text in worn["explain"]:
        explanation = json.loads(text)
        assert explanation["contributions"]
        assert all(c["feature"] for c in explanation["contributions"])

    (alert,) = store.alerts()
    assert alert.alert_id == "engine-91/hpc_degradation/1"
    (wo,) = store.work_orders()
    assert wo.work_order.asset == "engine-91"
    assert wo.work_order.alert_id == alert.alert_id
    assert wo.work_order.evidence  # the signals that drove the score
    assert wo.work_order.rul_lo_h is not None
    rule_free = [r for r in reports if r.decisions.rule_work_orders]
    assert not rule_free  # cycles 230-ish of 600 h oil filter: no calendar rule due yet

    # A restart: alerts from the store, the undecided period's scores from InfluxDB.
    again = _scorer(influx, model_registry, store, ["engine-91", "engine-92"])
    report = again.run_once(END + dt.timedelta(minutes=30))
    assert report.decisions.alert_changes == 0
    assert report.decisions.work_orders_created == 0
    (alert,) = store.alerts()
    assert alert.state.value == "open"
    assert len(store.work_orders()) == 1
    store.close()


def test_shards_score_every_asset_exactly_once(
    influx: InfluxClient, model_registry: Path, tmp_path: Path
) -> None:
    fleet = ["engine-91", "engine-92", *(f"engine-{i}" for i in range(93, 99))]
    seen: list[str] = []
    for i in range(3):
        store = Store(tmp_path / f"state-{i}.db")
        report = _scorer(influx, model_registry, store, fleet, Shard(i, 3)).run_once(END)
        seen.extend(o.asset for o in report.outcomes)
        store.close()
    assert sorted(seen) == sorted(fleet)
    scores = influx.query_df('SELECT * FROM "scores"')
    assert set(scores["asset"]) == {"engine-91", "engine-92"}  # the others have no data
    assert len(scores) == 4


def test_a_batched_pass_writes_what_the_per_asset_pass_writes(
    influx: InfluxClient, model_registry: Path
) -> None:
    """Batched inference, per-asset scoring, and either query form: the same windows and scores."""
    fleet = AssetRegistry([_asset(a) for a in ("engine-91", "engine-92", "engine-93")])
    reports: dict[tuple[bool, str], PassReport] = {}
    windows = {}
    cases: tuple[tuple[bool, Literal["or", "regex"]], ...] = (
        (True, "or"),
        (False, "or"),
        (True, "regex"),
    )
    for batched, match in cases:
        scorer = Scorer(
            config=ScoringConfig(batch_inference=batched, read_match=match),
            assets=fleet,
            profiles=PROFILES,
            models=Registry(model_registry),
            influx=influx,
        )
        reports[batched, match] = scorer.run_once(END)
        windows[match] = scorer.read_windows(list(fleet), since=END - 72 * CYCLE, until=END)
    fields = {
        key: [(o.asset, o.skipped, [s.fields() for s in o.scores]) for o in r.outcomes]
        for key, r in reports.items()
    }
    assert fields[True, "or"] == fields[False, "or"] == fields[True, "regex"]
    assert [f[1] for f in fields[True, "or"]] == [None, None, "no_data"]
    assert sum(len(f[2]) for f in fields[True, "or"]) == 4  # two engines x two models
    for asset, frame in windows["or"].items():
        pd.testing.assert_frame_equal(frame, windows["regex"][asset])
    assert len(windows["or"]["engine-91"]) == 2 * 72  # two polls per cycle in the window
    assert windows["or"]["engine-93"].empty
    phases = reports[True, "or"].phases
    assert set(phases) == {"read", "features", "inference", "write", "decide"}
    assert reports[True, "or"].queries == 1


@pytest.mark.usefixtures("influx")
def test_the_command_line_replays_a_past_window(
    *,
    services: Services,
    influx_db: str,
    model_registry: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assets = tmp_path / "assets.yaml"
    assets.write_text(
        yaml.safe_dump(
            {
                "assets": [
                    _asset(a).model_dump(mode="json", exclude_none=True)
                    for a in ("engine-91", "engine-92")
                ]
            }
        )
    )
    monkeypatch.setenv("PROGNOS_INFLUX_URL", services.influx_url)
    monkeypatch.setenv("PROGNOS_INFLUX_USER", services.influx_user)
    monkeypatch.setenv("PROGNOS_INFLUX_PASSWORD", services.influx_password)
    metrics = tmp_path / "metrics.prom"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "score",
                "--registry", str(assets),
                "--profiles", str(ROOT / "firmware_profiles"),
                "--models", str(model_registry),
                "--state", str(tmp_path / "state.db"),
                "--database", influx_db,
                "--since", (END - 2 * CYCLE).isoformat(),
                "--until", END.isoformat(),
                "--step", "1h",
                "--metrics-file", str(metrics),
            ]
        )  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["scored"] for line in lines] == [2, 2]
    assert "prognos_scorer_scores_written_total 8" in metrics.read_text()
    bad = main(["score", "--registry", str(tmp_path / "missing.yaml"), "--once"])
    assert bad == 2
