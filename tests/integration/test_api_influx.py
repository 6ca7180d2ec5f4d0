"""The API's InfluxQL against a real influxd: the fleet query, score history, telemetry buckets.

Scores and telemetry are written with `cloud.store.InfluxClient` into this test's own database,
exactly as the scorer and the ingester lay them out (DESIGN.md "InfluxDB layout"); the API reads
them back through its routes.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from cloud.api import ApiSettings, Role, add_token, create_app
from cloud.store import InfluxAuth, InfluxClient, Point

with warnings.catch_warnings():
    # Starlette 1.x asks for `httpx2` under its TestClient; httpx 0.28 works (a future switch).
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
HOUR = dt.timedelta(hours=1)
BUCKET0 = NOW.replace(minute=0, second=0) - 2 * HOUR
"""The first hour bucket of the telemetry written."""
ASSETS = """
assets:
  - {asset_id: pump-07, site: plant1, customer: Northwater, tier: VIP, model: CPV-150,
     firmware: "2.4", profile: aquaflo_cpv150_2.x, serial: S1, asset_class: pump,
     team: north, criticality: critical, commissioned: 2021-05-17}
  - {asset_id: comp-1, site: plant2, customer: Acme, tier: Regular, model: SC-75,
     firmware: "4.2.3", profile: airtek_sc75_4.2, serial: S3, asset_class: compressor,
     team: south, criticality: medium, commissioned: 2019-11-04}
"""


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


def score(asset: str, site: str, target: str, t: dt.datetime, **fields: float) -> Point:
    tags = {"site": site, "asset": asset, "target": target, "model_name": "m", "model_version": "3"}
    return Point("scores", tags, {**fields, "explain": "{}"}, ms(t))


@pytest.fixture
def client(services: Any, influx_db: str, tmp_path: Path) -> Iterator[TestClient]:
    auth = InfluxAuth.basic(services.influx_user, services.influx_password)
    influx = InfluxClient(url=services.influx_url, database=influx_db, auth=auth)
    start = NOW - 3 * HOUR
    influx.write(
        [
            score(
                "pump-07", "plant1", "bearing_wear", start, health=80.0, probability=0.1, rul=300.0
            ),
            score(
                "pump-07",
                "plant1",
                "bearing_wear",
                start + HOUR,
                health=50.0,
                probability=0.6,
                rul=90.0,
                rul_lo=40.0,
                rul_hi=150.0,
            ),
            score("pump-07", "plant1", "seal_wear", start + HOUR, health=70.0, probability=0.3),
            score("comp-1", "plant2", "valve_leak", start + 2 * HOUR, health=95.0),
            # Older than the look-back: never the latest.
            score("comp-1", "plant2", "valve_leak", NOW - dt.timedelta(days=30), health=1.0),
        ]
    )
    tags = {"site": "plant1", "gateway": "gw-1", "asset": "pump-07", "model": "aquaflo"}
    # One reading a minute for two hours: temperature 0..119, run_hours rising, a string state.
    influx.write(
        [
            Point(
                "telemetry",
                tags,
                {"bearing_temp_c": float(i), "run_hours": 1000 + i, "state": "run"},
                ms(BUCKET0 + dt.timedelta(minutes=i)),
            )
            for i in range(120)
        ]
    )
    influx.close()
    (tmp_path / "assets.yaml").write_text(ASSETS)
    settings = ApiSettings(
        db=tmp_path / "decisions.db",
        assets=tmp_path / "assets.yaml",
        tokens=tmp_path / "tokens.json",
        influx_url=services.influx_url,
        influx_db=influx_db,
        influx_user=services.influx_user,
        influx_password=services.influx_password,
    )
    token = add_token(settings.tokens, name="viewer", role=Role.VIEWER, now=NOW)
    with TestClient(create_app(settings)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def test_the_fleet_query_takes_each_series_latest_point(client: TestClient) -> None:
    """GROUP BY tags + ORDER BY time DESC LIMIT 1 on influxd: one latest point per series."""
    items = {a["asset_id"]: a for a in client.get("/api/v1/assets").json()["items"]}
    p7 = items["pump-07"]
    assert (p7["health"], p7["worst_probability"], p7["worst_target"]) == (
        50.0,
        0.6,
        "bearing_wear",
    )
    assert (p7["shortest_rul"], p7["shortest_rul_lo"]) == (90.0, 40.0)
    assert items["comp-1"]["health"] == 95.0
    only = client.get("/api/v1/assets", params={"site": "plant2"}).json()["items"]
    assert [(a["asset_id"], a["health"]) for a in only] == [("comp-1", 95.0)]
    detail = client.get("/api/v1/assets/pump-07").json()
    assert [(t["target"], t["model_version"]) for t in detail["targets"]] == [
        ("bearing_wear", "3"),
        ("seal_wear", "3"),
    ]


def test_score_history_reads_a_range_per_target(client: TestClient) -> None:
    """Both bearing points in time order with their band; the target filter is bound."""
    body = client.get("/api/v1/assets/pump-07/scores", params={"target": "bearing_wear"}).json()
    (series,) = body["series"]
    assert [(p["probability"], p["rul_lo"], p["rul_hi"]) for p in series["points"]] == [
        (0.1, None, None),
        (0.6, 40.0, 150.0),
    ]
    all_targets = client.get("/api/v1/assets/pump-07/scores").json()["series"]
    assert [s["target"] for s in all_targets] == ["bearing_wear", "seal_wear"]
    quoted = client.get("/api/v1/assets/pump-07/scores", params={"target": "x' OR '1'='1"})
    assert quoted.json()["series"] == []


def test_telemetry_is_downsampled_by_group_by_time(client: TestClient) -> None:
    """Hourly means of one reading a minute are exact; numeric fields are the default."""
    bucket0 = BUCKET0
    params = {
        "from": bucket0.isoformat(),
        "to": (bucket0 + 2 * HOUR).isoformat(),
        "every": "1h",
    }
    body = client.get("/api/v1/assets/pump-07/telemetry", params=params).json()
    assert body["signals"] == ["bearing_temp_c", "run_hours"]
    assert [dt.datetime.fromisoformat(t) for t in body["times"]] == [bucket0, bucket0 + HOUR]
    assert body["values"]["bearing_temp_c"] == [29.5, 89.5]
    assert body["values"]["run_hours"] == [1029.5, 1089.5]
    maxima = client.get(
        "/api/v1/assets/pump-07/telemetry",
        params={**params, "aggregate": "max", "signals": "bearing_temp_c"},
    ).json()
    assert maxima["values"] == {"bearing_temp_c": [59.0, 119.0]}
