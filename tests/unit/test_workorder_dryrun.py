"""The dry run: stored scores replayed through alerts and guardrails, counted per week."""

import datetime as dt

from cloud.alerting import AlertPolicy
from cloud.workorders import WeekCount, dry_run, parse_policy

MON = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)  # ISO week 2026-W48


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

    def __init__(self, asset_id: str) -> None:
        self.asset_id = asset_id


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
    assert report == [WeekCount("2026-W48", 2, 2, 0), WeekCount("2026-W49", 1, 1, 0)]


def test_budget_and_suggest_mode_split_auto_from_proposed() -> None:
    """Three pumps fail the same hour with a budget of 2 a day: two auto, one waits."""
    scores = hourly("p1", 1, 0.9) + hourly("p2", 1, 0.9) + hourly("p3", 1, 0.9)
    assets = {a: Asset(a) for a in ("p1", "p2", "p3")}
    policy = parse_policy({"guardrails": {"default_mode": "auto", "daily_budget": {"north": 2}}})
    (week,) = dry_run(scores, assets=assets, alert_policy=AlertPolicy(open_after=1), policy=policy)
    assert (week.work_orders, week.auto, week.proposed) == (3, 2, 1)
    (suggest,) = dry_run(
        scores, assets=assets, alert_policy=AlertPolicy(open_after=1), policy=parse_policy({})
    )
    assert (suggest.auto, suggest.proposed) == (0, 3)


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
    assert [w.work_orders for w in report] == [1]
