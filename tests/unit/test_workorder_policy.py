"""Priority, SLA deadlines, calendar, due-by/order-by, warranty, resolution, rules, guardrails."""

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from cloud.workorders import (
    Admission,
    PolicyError,
    Priority,
    ServicePolicy,
    WoState,
    add_business_days,
    admit,
    build_from_prediction,
    build_from_rule,
    classify,
    deadlines,
    due_consumables,
    load_policy,
    next_planning_cycle,
    parse_policy,
)
from edge_agent._profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
PROFILE = load_profile(ROOT / "firmware_profiles" / "aquaflo_cpv150_2.x.yaml")
POLICY = ServicePolicy()
# Monday 23 Nov 2026, 10:00 UTC.
MON = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class Replaced:
    """A consumable's last replacement."""

    replaced_on: dt.date | None = None
    replaced_at_hours: float | None = None


@dataclasses.dataclass(frozen=True)
class Asset:
    """The fields of cloud.registry.Asset the builders read."""

    asset_id: str = "pump-07"
    site: str = "plant1"
    customer: str = "ACME"
    tier: str = "Regular"
    profile: str = "aquaflo_cpv150_2.x"
    asset_class: str = "pump"
    team: str = "north"
    criticality: str = "high"
    warranty_end: dt.date | None = None
    commissioned: dt.date = dt.date(2024, 1, 1)
    consumables: dict[str, Replaced] = dataclasses.field(default_factory=dict)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"rul_lo_h": 20, "criticality": "high"}, Priority.P1),
        ({"rul_lo_h": 20, "criticality": "low"}, Priority.P2),
        ({"probability": 0.9, "horizon_h": 24, "criticality": "critical"}, Priority.P1),
        ({"probability": 0.3, "horizon_h": 24, "criticality": "critical"}, Priority.P3),
        ({"rul_lo_h": 100}, Priority.P2),
        ({"rul_lo_h": 24 * 20}, Priority.P3),
        ({"production_stopped": True, "criticality": "low"}, Priority.P1),
    ],
)
def test_classify_follows_the_design_table(kwargs: dict[str, Any], expected: Priority) -> None:
    """DESIGN.md 'when': within 24 h on a critical asset P1, within 7 days P2, else P3."""
    assert classify(rule_based=False, policy=POLICY, **kwargs) is expected


def test_rules_are_p4_and_vip_moves_up_one_level() -> None:
    """A calendar rule is routine (P4); for a VIP it is P3; a VIP's P1 stays P1."""
    assert classify(rule_based=True, policy=POLICY) is Priority.P4
    assert classify(rule_based=True, tier="VIP", policy=POLICY) is Priority.P3
    assert classify(rule_based=False, rul_lo_h=100, tier="vip", policy=POLICY) is Priority.P1
    assert classify(rule_based=False, rul_lo_h=1, tier="VIP", policy=POLICY) is Priority.P1


def test_deadlines_p1_and_gold_faster_response() -> None:
    """P1: respond 30 min, on site 2 h, resolve 24 h; Gold responds in 15 min."""
    due = MON + dt.timedelta(days=1)
    d = deadlines(Priority.P1, tier="Regular", created_at=MON, due_by=due, policy=POLICY)
    assert d.onsite_by is not None
    assert (d.respond_by - MON, d.onsite_by - MON, d.resolve_by - MON) == (
        dt.timedelta(minutes=30),
        dt.timedelta(hours=2),
        dt.timedelta(hours=24),
    )
    gold = deadlines(Priority.P1, tier="Gold", created_at=MON, due_by=due, policy=POLICY)
    assert gold.respond_by - MON == dt.timedelta(minutes=15)
    assert gold.resolve_by == d.resolve_by


def test_p3_responds_within_one_business_day_over_the_weekend() -> None:
    """Raised Friday 16:00: respond by Monday 16:00; on site and resolve by due-by."""
    friday = dt.datetime(2026, 11, 27, 16, 0, tzinfo=dt.UTC)
    due = friday + dt.timedelta(days=20)
    d = deadlines(Priority.P3, tier="Regular", created_at=friday, due_by=due, policy=POLICY)
    assert d.respond_by == dt.datetime(2026, 11, 30, 16, 0, tzinfo=dt.UTC)
    assert d.onsite_by == due
    assert d.resolve_by == due


def test_business_days_skip_holidays_and_start_on_a_day_off_at_day_start() -> None:
    """Saturday counts from Monday 08:00; a holiday Monday pushes to Tuesday."""
    policy = parse_policy({"calendar": {"holidays": ["2026-11-30"]}})
    saturday = dt.datetime(2026, 11, 28, 13, 0, tzinfo=dt.UTC)
    assert add_business_days(saturday, 0, policy.calendar) == dt.datetime(
        2026, 12, 1, 8, 0, tzinfo=dt.UTC
    )
    assert add_business_days(saturday, 1, policy.calendar) == dt.datetime(
        2026, 12, 2, 8, 0, tzinfo=dt.UTC
    )


def test_business_days_use_the_calendar_time_zone() -> None:
    """Friday 23:30 UTC is Saturday in Berlin: the response counts from Monday 08:00 Berlin."""
    policy = parse_policy({"calendar": {"timezone": "Europe/Berlin"}})
    late_friday = dt.datetime(2026, 11, 27, 23, 30, tzinfo=dt.UTC)
    assert add_business_days(late_friday, 1, policy.calendar) == dt.datetime(
        2026, 12, 1, 7, 0, tzinfo=dt.UTC
    )


def test_p4_responds_by_the_next_planning_cycle() -> None:
    """Planning is Monday 08:00: raised Monday 10:00, it is answered next Monday 08:00."""
    assert next_planning_cycle(MON, POLICY.calendar) == dt.datetime(
        2026, 11, 30, 8, 0, tzinfo=dt.UTC
    )
    d = deadlines(Priority.P4, tier="Regular", created_at=MON, due_by=MON, policy=POLICY)
    assert d.onsite_by is None
    assert d.respond_by == dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)


def test_a_prediction_work_order_has_every_design_field() -> None:
    """Due-by from the RUL lower bound, order-by from the lead time, warranty, parts, link."""
    policy = parse_policy({"parts": {"lead_time_days": {"SKF-6309-2Z-C3": 3}}})
    wo = build_from_prediction(
        asset=Asset(warranty_end=dt.date(2026, 12, 31), tier="Gold"),
        profile=PROFILE,
        failure_mode="bearing_wear",
        window="alert-1",
        created_at=MON,
        policy=policy,
        probability=0.4,
        horizon_h=168,
        rul_h=300,
        rul_lo_h=240,
        rul_hi_h=400,
        alert_id="pump-07/bearing_wear/1",
    )
    assert wo.priority is Priority.P3
    assert wo.due_by == MON + dt.timedelta(hours=240)
    assert wo.respond_by == MON + dt.timedelta(hours=4)  # Gold's P3 response
    (part,) = wo.parts
    assert (part.part_number, part.quantity, part.lead_time_days) == ("SKF-6309-2Z-C3", 2, 3)
    assert part.order_by == wo.due_by - dt.timedelta(days=3) == wo.order_by
    assert wo.warranty == "free"
    assert wo.resolution_mode == "on-site"
    assert wo.asset_url == "https://prognos.example/assets/pump-07"
    assert "240-400 h" in wo.description
    assert (
        build_from_prediction(
            asset=Asset(warranty_end=dt.date(2026, 12, 31), tier="Gold"),
            profile=PROFILE,
            failure_mode="bearing_wear",
            window="alert-1",
            created_at=MON + dt.timedelta(hours=1),
            policy=policy,
            probability=0.9,
        ).key
        == wo.key
    ), "the key is per intended work, not per scoring run"


def test_warranty_expired_is_billable_and_remote_modes_need_no_parts() -> None:
    """After warranty_end work is billable; motor_overheating (no parts) may be fixed remotely."""
    policy = parse_policy(
        {"resolution": {"remote_failure_modes": ["motor_overheating", "drive_fault"]}}
    )
    remote = build_from_prediction(
        asset=Asset(warranty_end=dt.date(2026, 11, 22)),
        profile=PROFILE,
        failure_mode="motor_overheating",
        window="alert-1",
        created_at=MON,
        policy=policy,
    )
    assert (remote.warranty, remote.resolution_mode, remote.parts) == ("billable", "remote", ())
    drive = build_from_prediction(
        asset=Asset(),
        profile=PROFILE,
        failure_mode="drive_fault",
        window="a",
        created_at=MON,
        policy=policy,
    )
    assert drive.resolution_mode == "on-site", "a fan must be fitted on site"


def test_consumable_rules_by_hours_and_by_days() -> None:
    """The seal is due by hours (usage rate), the grease by 365 days since its replacement."""
    asset = Asset(
        commissioned=dt.date(2025, 11, 23),
        consumables={
            "bearing_grease": Replaced(replaced_on=dt.date(2025, 12, 1), replaced_at_hours=100)
        },
    )
    # 365 days in service, 15,900 h: 43.6 h/day; the seal (16,000 h) is due in about 2.3 days.
    due = {d.consumable: d for d in due_consumables(asset, PROFILE, now=MON, hours_now=15_900)}
    assert set(due) == {"mechanical_seal", "bearing_grease"}
    seal = due["mechanical_seal"]
    assert MON + dt.timedelta(days=2) < seal.due_by < MON + dt.timedelta(days=3)
    assert seal.window == "since-2025-11-23-0h"
    grease = due["bearing_grease"]
    assert grease.due_by == MON, "overdue by hours (15,800 h since 100 h): due now"
    assert grease.window == "since-2025-12-01-100h"
    early = MON - dt.timedelta(days=60)
    none = due_consumables(asset, PROFILE, now=early, hours_now=1_000)
    assert [d.consumable for d in none] == []


def test_a_rule_work_order_is_p4_with_the_consumable_part() -> None:
    """Replacing the seal: P4, part AF-MS-150, on-site, the rule's reason in the text."""
    wo = build_from_rule(
        asset=Asset(),
        profile=PROFILE,
        consumable="mechanical_seal",
        window="since-2024-01-01-0h",
        due_by=MON + dt.timedelta(days=10),
        reason="operating hours 15,900 of 16,000",
        created_at=MON,
        policy=POLICY,
    )
    assert wo.priority is Priority.P4
    assert [p.part_number for p in wo.parts] == ["AF-MS-150"]
    assert wo.order_by == MON + dt.timedelta(days=3)
    assert "15,900 of 16,000" in wo.description


@pytest.mark.parametrize(
    ("policy", "priority", "sent", "expected"),
    [
        ({}, Priority.P3, 0, Admission(WoState.PROPOSED, "suggest_mode")),
        ({"modes": {"pump": "auto"}}, Priority.P3, 99, Admission(WoState.PENDING, "auto")),
        (
            {"modes": {"pump": "auto"}, "daily_budget": {"north": 2}},
            Priority.P3,
            1,
            Admission(WoState.PENDING, "auto"),
        ),
        (
            {"modes": {"pump": "auto"}, "daily_budget": {"north": 2}},
            Priority.P4,
            2,
            Admission(WoState.PROPOSED, "budget_exhausted"),
        ),
        (
            {"modes": {"pump": "auto"}, "daily_budget": {"north": 2}},
            Priority.P1,
            2,
            Admission(WoState.PENDING, "budget_exempt"),
        ),
        (
            {"default_mode": "auto", "default_daily_budget": 0},
            Priority.P3,
            0,
            Admission(WoState.PROPOSED, "budget_exhausted"),
        ),
    ],
)
def test_guardrails_mode_and_budget(
    policy: dict[str, Any], priority: Priority, sent: int, expected: Admission
) -> None:
    """Suggest waits for a planner; auto goes out until the team's budget is spent; P1 always."""
    p = parse_policy({"guardrails": policy})
    assert (
        admit(priority=priority, asset_class="pump", team="north", sent_today=sent, policy=p)
        == expected
    )


def test_the_example_policy_file_loads() -> None:
    """config/service-policy.example.yaml is valid and keeps DESIGN.md's P1."""
    policy = load_policy(ROOT / "config" / "service-policy.example.yaml")
    assert policy.level(Priority.P1).respond == dt.timedelta(minutes=30)


def test_an_empty_policy_is_the_design_table() -> None:
    """No file, an empty file: DESIGN.md's defaults."""
    assert load_policy(None) == parse_policy(None) == ServicePolicy()


def test_setting_one_level_keeps_the_others(tmp_path: Path) -> None:
    """A file that changes P2 keeps P1, P3 and P4 at their defaults."""
    f = tmp_path / "p.yaml"
    f.write_text("levels:\n  P2: {respond: 45m, resolve: 48h}\n")
    policy = load_policy(f)
    assert policy.level(Priority.P2).respond == dt.timedelta(minutes=45)
    assert policy.level(Priority.P1) == ServicePolicy().level(Priority.P1)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "levels:\n  P1: {respond: 30 minutes, resolve: 24h}\n",
            r"p\.yaml: levels\.P1\.respond .*Got '30 minutes'",
        ),
        (
            "guardrails:\n  modes: {pump: automatic}\n",
            r"p\.yaml: guardrails\.modes\.pump .*Got 'automatic'",
        ),
        ("delivery:\n  max_attemps: 3\n", r"p\.yaml: delivery\.max_attemps"),
        ("calendar:\n  timezone: Mars/Olympus\n", r"p\.yaml: calendar .*Mars/Olympus"),
        ("levels: [\n", r"p\.yaml: cannot read the policy"),
    ],
)
def test_policy_errors_name_file_key_and_value(tmp_path: Path, text: str, match: str) -> None:
    """STYLE.md 4: one message naming the file, the key and the value."""
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(PolicyError, match=match):
        load_policy(f)
