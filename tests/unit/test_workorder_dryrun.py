"""The dry run: stored scores replayed through alerts and guardrails, counted per week."""

import datetime as dt
import random

import pytest

from cloud.alerting import AlertEngine, AlertEvent, AlertPolicy
from cloud.workorders import (
    AlertReplay,
    Failure,
    ScoreAt,
    WeekCount,
    admit_openings,
    dry_run,
    parse_policy,
)
from cloud.workorders._dryrun import render_table
from cloud.workorders._dryrun_io import group_rows

MON = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)  # ISO week 2026-W48
DAY = dt.timedelta(days=1)


class Asset:
    """A minimal asset record."""

    site = "plant1"
    customer = "ACME"
    tier = "Regular"
    profile = "p"
    asset_class = "pump"
    team = "north"
    criticality = "medium"
    warranty_end = None

    def __init__(self, asset_id: str, team: str = "north") -> None:
        self.asset_id = asset_id
        self.team = team


def hourly(asset: str, days: int, score: float) -> list[tuple[str, str, dt.datetime, float]]:
    return [(asset, "bearing_wear", MON + dt.timedelta(hours=h), score) for h in range(days * 24)]


def test_a_failing_asset_yields_one_work_order_per_cycle_of_work_and_cooldown() -> None:
    """Always high for 10 days; work takes 3 days, cooldown 1: work orders on days 0, 4, 8."""
    report = dry_run(
        hourly("p1", 10, 0.9),
        assets={"p1": Asset("p1")},
        alert_policy=AlertPolicy(open_after=1, cooldown=dt.timedelta(days=1)),
        policy=parse_policy({"guardrails": {"default_mode": "auto"}}),
        work_takes=dt.timedelta(days=3),
    )
    assert report.weeks == (
        WeekCount("2026-W48", alerts=2, work_orders=2, auto=2),
        WeekCount("2026-W49", alerts=1, work_orders=1, auto=1),
    )
    assert [w.opening.at for w in report.work_orders] == [MON, MON + 4 * DAY, MON + 8 * DAY]
    assert report.total == WeekCount("total", alerts=3, work_orders=3, auto=3)


def test_budget_and_suggest_mode_split_auto_deferred_and_suggested() -> None:
    """Three pumps fail the same hour with a budget of 2 a day: two auto, one deferred."""
    scores = hourly("p1", 1, 0.9) + hourly("p2", 1, 0.9) + hourly("p3", 1, 0.9)
    assets = {a: Asset(a) for a in ("p1", "p2", "p3")}
    policy = parse_policy({"guardrails": {"default_mode": "auto", "daily_budget": {"north": 2}}})
    report = dry_run(scores, assets=assets, alert_policy=AlertPolicy(open_after=1), policy=policy)
    (week,) = report.weeks
    assert (week.work_orders, week.auto, week.deferred, week.suggested) == (3, 2, 1, 0)
    suggest = dry_run(
        scores, assets=assets, alert_policy=AlertPolicy(open_after=1), policy=parse_policy({})
    )
    assert (suggest.total.auto, suggest.total.suggested, suggest.total.deferred) == (0, 3, 0)


def test_a_budget_counts_per_team_and_per_day() -> None:
    """Budget 1: two teams each get one auto a day; the next day starts afresh."""
    assets = {"a": Asset("a", "north"), "b": Asset("b", "south"), "c": Asset("c", "north")}
    replay = AlertReplay(alert_policy=AlertPolicy(open_after=1), work_takes=DAY)
    for asset, at in (("a", MON), ("b", MON), ("c", MON + dt.timedelta(hours=1))):
        replay.feed(ScoreAt(asset, "m", at, 0.9))
    replay.feed(ScoreAt("c", "m", MON + DAY + dt.timedelta(hours=2), 0.9))  # closed, cooldown
    replay.feed(ScoreAt("a", "m", MON + 3 * DAY, 0.9))  # a's first closed on day 1 + 24 h
    policy = parse_policy({"guardrails": {"default_mode": "auto", "default_daily_budget": 1}})
    kinds = [
        (w.opening.asset, w.kind)
        for w in admit_openings(replay.openings, assets=assets, policy=policy)
    ]
    assert kinds == [("a", "auto"), ("b", "auto"), ("c", "deferred"), ("a", "auto")]


def test_urgent_work_orders_are_exempt_from_the_budget() -> None:
    """A remaining-life bound within 7 days is P2: never deferred by a spent budget."""
    replay = AlertReplay(alert_policy=AlertPolicy(open_after=1))
    replay.feed(ScoreAt("a", "m", MON, 0.9, rul_lo_h=500.0))
    replay.feed(ScoreAt("b", "m", MON, 0.9, rul_lo_h=48.0))
    policy = parse_policy({"guardrails": {"default_mode": "auto", "default_daily_budget": 0}})
    assets = {"a": Asset("a"), "b": Asset("b")}
    out = admit_openings(replay.openings, assets=assets, policy=policy)
    assert [(w.opening.asset, w.priority.value, w.kind) for w in out] == [
        ("a", "P3", "deferred"),
        ("b", "P2", "auto"),
    ]


def test_an_oscillating_score_is_one_work_order_in_the_dry_run_too() -> None:
    """0.69/0.71 every hour for a week with open_after=1: one alert, one work order."""
    scores = [
        ("p1", "m", MON + dt.timedelta(hours=h), 0.69 + 0.02 * (h % 2)) for h in range(24 * 7)
    ]
    report = dry_run(
        scores,
        assets={"p1": Asset("p1")},
        alert_policy=AlertPolicy(open_after=1),
        policy=parse_policy({}),
        work_takes=dt.timedelta(days=30),
    )
    assert [w.work_orders for w in report.weeks] == [1]


def test_work_orders_before_a_failure_match_by_asset_mode_and_window() -> None:
    """Failure of p1/bearing_wear on day 9: the day-0 and day-4 work orders are within 10 days.

    The day-8 one too; p2's is another asset, and a seal failure of p1 is another mode (unless
    matched by asset); a failure with no mode matches any of the asset's work orders.
    """
    scores = hourly("p1", 10, 0.9) + hourly("p2", 1, 0.9)
    failures = [
        Failure("p1", MON + 9 * DAY, "bearing_wear", "csv"),
        Failure("p1", MON + 9 * DAY + dt.timedelta(hours=1), "seal_wear", "csv"),
        Failure("p3", MON + 2 * DAY, None, "csv"),
    ]
    common = {
        "assets": {a: Asset(a) for a in ("p1", "p2", "p3")},
        "alert_policy": AlertPolicy(open_after=1, cooldown=DAY),
        "policy": parse_policy({"guardrails": {"default_mode": "auto"}}),
        "work_takes": dt.timedelta(days=3),
        "failures": failures,
    }
    report = dry_run(scores, lead_window=dt.timedelta(days=6), **common)  # type: ignore[arg-type]
    assert report.total.before_failure == 2  # days 4 and 8; day 0 is 9 days before
    (p3, bearing, seal) = report.failures  # in time order
    assert bearing.lead == 5 * DAY  # from the earliest within the window (day 4)
    assert seal.work_order is None
    assert p3.work_order is None
    assert report.median_lead == 5 * DAY
    assert [f.failure_mode for f in report.missed] == [None, "seal_wear"]
    by_asset = dry_run(scores, lead_window=dt.timedelta(days=10), match="asset", **common)  # type: ignore[arg-type]
    assert by_asset.total.before_failure == 3
    assert [o.lead for o in by_asset.failures[1:]] == [9 * DAY, 9 * DAY + dt.timedelta(hours=1)]
    weeks = {w.week: w for w in by_asset.weeks}
    assert (weeks["2026-W48"].failures, weeks["2026-W49"].failures) == (1, 2)
    text = render_table(
        by_asset,
        {
            "from": "a",
            "to": "b",
            "assets": 3,
            "scores": 1,
            "config": None,
            "policy": None,
            "work_takes_h": 72,
        },
    )
    assert "2026-W48" in text
    assert "median lead 9.0 d" in text


@pytest.mark.parametrize("seed", range(5))
def test_the_in_order_engine_decides_like_the_live_one_with_far_less_memory(seed: int) -> None:
    """Same changes on random walks with closes, but the replay engine forgets settled scores.

    (Its incremental hysteresis scan must give what the live engine's full recompute gives.)
    """
    rng = random.Random(seed)
    policy = AlertPolicy(open_after=rng.randint(1, 4), clear_after=rng.randint(1, 3))
    live = AlertEngine(policy=policy)
    replay = AlertEngine(policy=policy, in_order=True)
    level = 0.3
    raised = closed = 0
    for i in range(3000):
        ts = MON + dt.timedelta(minutes=5 * i)
        level = min(1.0, max(0.0, level + rng.gauss(0, 0.08)))
        a = live.observe("p", "m", ts, level, now=ts)
        b = replay.observe("p", "m", ts, level, now=ts)
        assert [(c.event, c.alert) for c in a] == [(c.event, c.alert) for c in b]
        raised += sum(c.raised for c in a)
        current = live.alerts()
        if current and rng.random() < 0.01:  # a planner or a work order closes it
            x = live.act(current[0].alert_id, AlertEvent.CLOSE, now=ts)
            y = replay.act(current[0].alert_id, AlertEvent.CLOSE, now=ts)
            assert x == y
            closed += 1
    assert (raised >= 3, closed >= 2) == (True, True)
    assert len(replay._keys[("p", "m")].scores) <= len(live._keys[("p", "m")].scores)
    quiet = AlertEngine(policy=AlertPolicy(open_after=3), in_order=True)
    for i in range(1000):
        quiet.observe("q", "m", MON + dt.timedelta(minutes=i), 0.1, now=MON)
    assert quiet._keys[("q", "m")].scores == {}


def test_a_late_score_in_an_in_order_engine_is_still_judged_with_what_it_kept() -> None:
    """A replacement of the newest score rebuilds the scan: the same answer as recomputing."""
    engine = AlertEngine(policy=AlertPolicy(open_after=2), in_order=True)
    engine.observe("p", "m", MON, 0.9, now=MON)
    (raised,) = engine.observe("p", "m", MON + DAY, 0.9, now=MON)
    assert raised.raised
    (withdrawn,) = engine.observe("p", "m", MON + DAY, 0.1, now=MON)  # the same time, replaced
    assert (withdrawn.event, withdrawn.alert.reason) == (AlertEvent.RESOLVE, "late_data")


def test_one_scoring_time_is_the_riskiest_score_of_the_target() -> None:
    """Two models score one target at one time: the lower health, its probability, min bound."""
    ms = int(MON.timestamp() * 1000)
    rows: list[dict[str, object]] = [
        {"time": ms, "health": 80.0, "probability": None, "horizon_h": None, "rul_lo": 30.0},
        {"time": ms, "health": 40.0, "probability": 0.6, "horizon_h": 24.0, "rul_lo": None},
        {"time": ms + 1000, "health": 90.0, "probability": None, "horizon_h": None, "rul_lo": 90.0},
        {"time": ms + 2000, "health": None, "probability": None, "horizon_h": None, "rul_lo": None},
    ]
    first, second = group_rows("p1", "m", rows)
    assert first == ScoreAt("p1", "m", MON, 0.6, 0.6, 24.0, 30.0)
    assert abs(second.risk - 0.1) < 1e-9
    assert second.rul_lo_h == 90.0
