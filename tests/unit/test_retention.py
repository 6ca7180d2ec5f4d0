"""Retention planning, pure: what `prognos db init` would run against a given server state."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from cloud.store import PolicyInfo, RetentionConfig, Rollup, ServerState, plan_init
from cloud.store._cli import build_parser
from cloud.store._cli import main as db_main
from cloud.store._retention import (
    backfill_ranges,
    continuous_queries,
    parse_go_duration,
    select_into,
    shard_duration_s,
    wanted_policies,
)

DAY = 86_400
UTC = dt.UTC


def _server_after(config: RetentionConfig) -> ServerState:
    """The state a server reaches after running `config`'s plan (as influxd reports it)."""
    return ServerState(
        database_exists=True,
        policies=tuple(wanted_policies(config)),
        continuous_queries=continuous_queries(config),
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("720h0m0s", 30 * DAY), ("168h0m0s", 7 * DAY), ("1h30m0s", 5400), ("1m0s", 60)],
)
def test_go_durations_as_influxd_prints_them_parse(text: str, seconds: int) -> None:
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30d", "h", "1h 2m", "forever"])
def test_other_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("duration_s", "shard_s"),
    [(0, 7 * DAY), (DAY, 3600), (2 * DAY, DAY), (182 * DAY, DAY), (183 * DAY, 7 * DAY)],
)
def test_shard_duration_follows_influxdbs_default(duration_s: int, shard_s: int) -> None:
    assert shard_duration_s(duration_s) == shard_s


def test_a_fresh_server_gets_database_policies_and_queries() -> None:
    config = RetentionConfig(database="prognos")
    plan = plan_init(config, ServerState(database_exists=False))
    assert plan[0] == (
        'CREATE DATABASE "prognos" WITH DURATION 30d REPLICATION 1 SHARD DURATION 1d NAME "autogen"'
    )
    assert plan[1:3] == [
        (
            'CREATE RETENTION POLICY "rollup_1m" ON "prognos" DURATION 400d REPLICATION 1 '
            "SHARD DURATION 7d"
        ),
        (
            'CREATE RETENTION POLICY "rollup_1h" ON "prognos" DURATION INF REPLICATION 1 '
            "SHARD DURATION 7d"
        ),
    ]
    assert len(plan) == 6
    assert all(s.startswith('CREATE CONTINUOUS QUERY "prognos_rollup_') for s in plan[3:])


def test_a_server_that_matches_gets_no_statement() -> None:
    config = RetentionConfig()
    assert plan_init(config, _server_after(config)) == []


def test_a_new_raw_duration_alters_the_raw_policy_only() -> None:
    config = RetentionConfig()
    plan = plan_init(config.with_days(raw_days=90, rollup_days={}), _server_after(config))
    assert plan == [
        (
            'ALTER RETENTION POLICY "autogen" ON "prognos" DURATION 90d REPLICATION 1 '
            "SHARD DURATION 1d DEFAULT"
        )
    ]


def test_the_raw_policy_is_made_default_when_another_is() -> None:
    config = RetentionConfig()
    state = _server_after(config)
    policies = tuple(
        PolicyInfo(p.name, p.duration_s, p.shard_duration_s, p.replication, p.name == "rollup_1m")
        for p in state.policies
    )
    plan = plan_init(
        config,
        ServerState(
            database_exists=True, policies=policies, continuous_queries=state.continuous_queries
        ),
    )
    assert len(plan) == 1
    assert plan[0].startswith('ALTER RETENTION POLICY "autogen"')
    assert plan[0].endswith(" DEFAULT")


def test_a_changed_query_is_dropped_and_recreated_and_foreign_ones_are_kept() -> None:
    config = RetentionConfig()
    state = _server_after(config)
    queries = {**state.continuous_queries, "mine": "CREATE ..."}
    state = ServerState(database_exists=True, policies=state.policies, continuous_queries=queries)
    plan = plan_init(config.model_copy(update={"aggregates": ("mean",)}), state)
    drops = [s for s in plan if s.startswith("DROP")]
    creates = [s for s in plan if s.startswith("CREATE CONTINUOUS QUERY")]
    assert len(drops) == len(creates) == 3
    assert not any('"mine"' in s for s in plan)
    assert all("SELECT mean(*) INTO" in s for s in creates)


def test_the_rollup_statement_names_every_aggregate_and_keeps_the_tags() -> None:
    config = RetentionConfig(database="p")
    rollup = config.rollups[0]
    start = dt.datetime(2026, 11, 1, tzinfo=UTC)
    text = select_into(config, rollup, "telemetry", start=start, end=start + dt.timedelta(hours=1))
    assert text == (
        'SELECT mean(*), min(*), max(*), last(*), count(*) INTO "p"."rollup_1m"."telemetry" '
        'FROM "p"."autogen"."telemetry" WHERE time >= \'2026-11-01T00:00:00Z\' AND '
        "time < '2026-11-01T01:00:00Z' GROUP BY time(1m), *"
    )


def test_continuous_queries_resample_for_late_data() -> None:
    texts = list(continuous_queries(RetentionConfig()).values())
    assert "RESAMPLE EVERY 1m FOR 10m BEGIN" in texts[0]
    assert "RESAMPLE EVERY 1h FOR 2h BEGIN" in texts[1]


def test_backfill_ranges_are_aligned_chunked_and_inside_the_policy() -> None:
    rollup = Rollup(
        policy="r", interval_s=3600, days=2, measurements=("telemetry",), resample_for_s=3600
    )
    now = dt.datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
    ranges = backfill_ranges(
        rollup,
        start=dt.datetime(2026, 11, 1, tzinfo=UTC),
        end=dt.datetime(2026, 11, 23, 10, 15, tzinfo=UTC),
        now=now,
        chunk=dt.timedelta(hours=20),
    )
    # Kept 2 days at 12:30: the oldest whole hour still kept starts at 13:00 two days ago.
    assert ranges[0][0] == dt.datetime(2026, 11, 21, 13, tzinfo=UTC)
    assert ranges[-1][1] == dt.datetime(2026, 11, 23, 11, tzinfo=UTC)
    assert all(b - a <= dt.timedelta(hours=20) for a, b in ranges)
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))


def test_backfill_of_a_range_older_than_the_policy_is_empty() -> None:
    rollup = RetentionConfig().rollups[0]  # 400 days
    now = dt.datetime(2026, 11, 23, tzinfo=UTC)
    old = dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert backfill_ranges(rollup, start=old, end=old + dt.timedelta(days=3), now=now) == []


def test_a_naive_time_is_refused() -> None:
    config = RetentionConfig()
    with pytest.raises(ValueError, match="naive datetime"):
        select_into(
            config,
            config.rollups[0],
            "telemetry",
            start=dt.datetime(2026, 1, 1),  # noqa: DTZ001 - the case under test
            end=dt.datetime(2026, 1, 2, tzinfo=UTC),
        )


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"raw_days": 0}, "raw_days"),
        ({"raw_policy": "rollup_1m"}, "retention policy names must differ"),
        ({"aggregates": ["median"]}, "aggregates"),
        ({"colour": "red"}, "colour"),
        (
            {
                "rollups": [
                    {
                        "policy": "r",
                        "interval_s": 3600,
                        "days": 1,
                        "measurements": ["t"],
                        "resample_for_s": 60,
                    }
                ]
            },
            "resample_for_s must be at least interval_s",
        ),
    ],
)
def test_a_bad_config_is_refused(changes: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        RetentionConfig.model_validate(changes)


def test_db_init_flags_take_days_and_zero_for_forever() -> None:
    parser = build_parser()
    args = parser.parse_args(["init", "--raw-days", "7", "--rollup-1h-days", "0"])
    assert (args.raw_days, args.rollup_1m_days, args.rollup_1h_days) == (7, 400, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["init", "--raw-days", "-3"])


def test_db_rollup_times_without_a_zone_are_utc() -> None:
    args = build_parser().parse_args(["rollup", "--from", "2026-11-01T00:00", "--to", "2026-11-02"])
    assert args.start == dt.datetime(2026, 11, 1, tzinfo=UTC)
    assert args.end == dt.datetime(2026, 11, 2, tzinfo=UTC)


def test_db_without_a_server_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROGNOS_INFLUX_URL", raising=False)
    with pytest.raises(SystemExit) as info:
        db_main(["init"])
    assert info.value.code == 2
