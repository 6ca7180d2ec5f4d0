"""Retention policies, continuous queries and rollup backfill on the real influxd."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import pandas as pd
import pytest
from conftest import Services

from cloud.store import (
    InfluxAuth,
    InfluxClient,
    Point,
    RetentionConfig,
    backfill,
    init_database,
    read_state,
)
from cloud.store._cli import main as db_main

DAY_S = 86_400


@pytest.fixture
def client(services: Services, influx_db: str) -> Iterator[InfluxClient]:
    auth = InfluxAuth.basic(services.influx_user, services.influx_password)
    with InfluxClient(url=services.influx_url, database=influx_db, auth=auth) as influx:
        yield influx


def test_init_sets_the_policies_and_queries_and_a_second_run_changes_nothing(
    client: InfluxClient, influx_db: str
) -> None:
    config = RetentionConfig(database=influx_db)
    first = init_database(client, config)
    assert first  # the fixture's database has only autogen, forever
    assert init_database(client, config) == []
    state = read_state(client, influx_db)
    policies = {p.name: p for p in state.policies}
    assert (policies["autogen"].duration_s, policies["autogen"].default) == (30 * DAY_S, True)
    assert policies["rollup_1m"].duration_s == 400 * DAY_S
    assert policies["rollup_1h"].duration_s == 0  # forever
    assert policies["autogen"].shard_duration_s == DAY_S
    assert sorted(name.rsplit("_", 1)[0] for name in state.continuous_queries) == [
        "prognos_rollup_1h_scores",
        "prognos_rollup_1h_telemetry",
        "prognos_rollup_1m_telemetry",
    ]


def test_changing_a_duration_alters_only_that_policy(client: InfluxClient, influx_db: str) -> None:
    config = RetentionConfig(database=influx_db)
    init_database(client, config)
    shorter = config.with_days(raw_days=3, rollup_days={"rollup_1h": 3650})
    statements = init_database(client, shorter)
    assert [s.split(" ON ")[0] for s in statements] == [
        'ALTER RETENTION POLICY "autogen"',
        'ALTER RETENTION POLICY "rollup_1h"',
    ]
    policies = {p.name: p for p in read_state(client, influx_db).policies}
    assert policies["autogen"].duration_s == 3 * DAY_S
    assert policies["autogen"].shard_duration_s == DAY_S
    assert policies["rollup_1h"].duration_s == 3650 * DAY_S
    assert init_database(client, shorter) == []


def test_a_changed_query_is_replaced_and_foreign_queries_are_kept(
    client: InfluxClient, influx_db: str
) -> None:
    config = RetentionConfig(database=influx_db)
    init_database(client, config)
    client.query(
        f'CREATE CONTINUOUS QUERY "mine" ON "{influx_db}" BEGIN SELECT mean(*) INTO "x" '  # noqa: S608
        f'FROM "telemetry" GROUP BY time(1h) END'
    )
    before = set(read_state(client, influx_db).continuous_queries)
    statements = init_database(client, config.model_copy(update={"aggregates": ("mean", "max")}))
    assert sum(s.startswith("DROP CONTINUOUS QUERY") for s in statements) == 3
    assert sum(s.startswith("CREATE CONTINUOUS QUERY") for s in statements) == 3
    after = set(read_state(client, influx_db).continuous_queries)
    assert "mine" in after
    assert len(after) == 4
    assert not (after - {"mine"}) & before


def test_init_creates_a_missing_database_with_the_raw_policy(
    services: Services, client: InfluxClient, influx_db: str
) -> None:
    name = f"{influx_db}_new"
    try:
        statements = init_database(client, RetentionConfig(database=name, raw_days=5))
        assert statements[0].startswith(f'CREATE DATABASE "{name}" WITH DURATION 5d')
        policies = {p.name: p for p in read_state(client, name).policies}
        assert set(policies) == {"autogen", "rollup_1m", "rollup_1h"}
        assert policies["autogen"].duration_s == 5 * DAY_S
        assert policies["autogen"].default
    finally:
        services.influx_query(f'DROP DATABASE "{name}"')


def _raw_rows(now: dt.datetime) -> list[dict[str, object]]:
    """Three hours of irregular raw readings of two assets: float, integer, boolean, string."""
    rng = random.Random(5)
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=4)
    rows: list[dict[str, object]] = []
    for asset in ("pump-07", "pump-08"):
        t = start
        while t < start + dt.timedelta(hours=3):
            t += dt.timedelta(milliseconds=rng.randrange(5_000, 47_000))
            rows.append(
                {
                    "time": t,
                    "asset": asset,
                    "temp_c": round(rng.uniform(20, 90), 3),
                    "run_hours": rng.randrange(0, 100_000),
                    "running": rng.random() < 0.7,
                    "state": rng.choice(["RUN", "IDLE", "FAULT"]),
                }
            )
    return rows


def _expected(raw: pd.DataFrame, freq: str) -> pd.DataFrame:
    grouped = raw.assign(time=raw["time"].dt.floor(freq)).groupby(["asset", "time"])
    out = pd.DataFrame(
        {
            "mean_temp_c": grouped["temp_c"].mean(),
            "min_temp_c": grouped["temp_c"].min(),
            "max_temp_c": grouped["temp_c"].max(),
            "last_temp_c": grouped["temp_c"].last(),
            "count_temp_c": grouped["temp_c"].count(),
            "mean_run_hours": grouped["run_hours"].mean(),
            "min_run_hours": grouped["run_hours"].min(),
            "max_run_hours": grouped["run_hours"].max(),
            "last_running": grouped["running"].last(),
            "last_state": grouped["state"].last(),
            "count_state": grouped["state"].count(),
        }
    )
    return out.sort_index()


def _stored(client: InfluxClient, db: str, policy: str) -> pd.DataFrame:
    columns = list(_expected(pd.DataFrame(_raw_rows(dt.datetime.now(dt.UTC))[:1]), "1min").columns)
    frame = client.query_df(
        f'SELECT {", ".join(columns)} FROM "{db}"."{policy}"."telemetry" GROUP BY "asset"'  # noqa: S608
    )
    frame = frame.reset_index().rename(columns={"index": "time"})
    return frame.set_index(["asset", "time"]).sort_index()[columns]


def test_backfilled_rollups_equal_the_aggregates_pandas_computes(
    client: InfluxClient, influx_db: str
) -> None:
    """1-minute and 1-hour rollups of 3 hours of raw points match pandas, value for value."""
    now = dt.datetime.now(dt.UTC)
    config = RetentionConfig(database=influx_db)
    init_database(client, config)
    rows = _raw_rows(now)
    raw = pd.DataFrame(rows)
    points = [
        Point(
            "telemetry",
            {"site": "plant1", "gateway": "gw-1", "asset": str(row["asset"]), "model": "m"},
            {k: row[k] for k in ("temp_c", "run_hours", "running", "state")},  # type: ignore[misc]
            int(pd.Timestamp(str(row["time"])).timestamp() * 1000),
        )
        for row in rows
    ]
    for at in range(0, len(points), 5000):
        client.write(points[at : at + 5000])
    results = backfill(
        client,
        config,
        start=raw["time"].min(),
        end=raw["time"].max(),
        now=now,
        chunk=dt.timedelta(hours=1),
    )
    assert {(r.policy, r.measurement) for r in results} == {
        ("rollup_1m", "telemetry"),
        ("rollup_1h", "telemetry"),
        ("rollup_1h", "scores"),
    }
    for policy, freq in (("rollup_1m", "1min"), ("rollup_1h", "1h")):
        expected = _expected(raw, freq)
        stored = _stored(client, influx_db, policy)
        assert sum(r.written for r in results if r.policy == policy) == len(expected)
        assert list(stored.index) == list(expected.index)
        pd.testing.assert_frame_equal(
            stored.astype(float, errors="ignore"),
            expected.astype(float, errors="ignore"),
            check_dtype=False,
            rtol=1e-12,
        )
    # Rewriting a range is harmless: the same points, the same values.
    again = backfill(client, config, start=raw["time"].min(), end=raw["time"].max(), now=now)
    assert sum(r.written for r in again if r.policy == "rollup_1h") == len(_expected(raw, "1h"))
    pd.testing.assert_frame_equal(
        _stored(client, influx_db, "rollup_1h").astype(float, errors="ignore"),
        _expected(raw, "1h").astype(float, errors="ignore"),
        check_dtype=False,
        rtol=1e-12,
    )


def test_db_command_line_init_and_rollup(
    services: Services, influx_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = ["--url", services.influx_url, "--user", services.influx_user, "--database", influx_db]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROGNOS_INFLUX_PASSWORD", services.influx_password)
        assert db_main([*env, "init", "--raw-days", "14", "--dry-run"]) == 0
        assert "would run 6 statements" in capsys.readouterr().out
        assert db_main([*env, "init", "--raw-days", "14"]) == 0
        assert f"{influx_db}: ran 6 statements" in capsys.readouterr().out
        assert db_main([*env, "init", "--raw-days", "14"]) == 0
        assert f"{influx_db}: ran 0 statements" in capsys.readouterr().out
        code = db_main([*env, "rollup", "--from", "2026-01-01T00:00", "--to", "2025-01-01T00:00"])
        assert code == 1
        assert "end must be after start" in capsys.readouterr().err
