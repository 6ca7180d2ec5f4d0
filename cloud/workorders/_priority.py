"""Priority, SLA deadlines, due-by and order-by dates: pure functions of the policy (STYLE.md 6).

Theory of operation
-------------------
A model-driven work order gets its priority from DESIGN.md's "when" column: *failure likely*
means a remaining-life lower bound (``rul_lo``, hours) or, without one, the horizon of a
probability at or above ``likely_probability``. Within ``p1_within`` on a critical asset (or
with production stopped) it is P1, within ``p2_within`` P2, otherwise P3; calendar and usage
rules are P4. Then the customer's tier: VIP moves up one level, Gold takes its level's
``respond_gold``.

Deadlines count from the work order's creation, in the policy's calendar: a plain duration is
wall-clock time (P1 is 24/7); ``N business days`` skips weekends and holidays, keeping the time
of day (work raised on a day off counts from the next business day's ``day_start``); ``next
planning cycle`` is the next ``planning_weekday`` at ``planning_time``; ``due-by`` is the due-by.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

from cloud.workorders._policy import (
    WEEKDAYS,
    BusinessDays,
    Calendar,
    NextPlanningCycle,
    Priority,
    ServicePolicy,
    Span,
    UntilDueBy,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Deadlines:
    """When the service system must respond, be on site (or work around) and resolve."""

    respond_by: dt.datetime
    onsite_by: dt.datetime | None
    resolve_by: dt.datetime


def time_to_failure_h(
    *,
    probability: float | None,
    horizon_h: float | None,
    rul_lo_h: float | None,
    likely_probability: float,
) -> float | None:
    """Hours within which failure is *likely*: the RUL lower bound, else a likely horizon."""
    candidates = []
    if rul_lo_h is not None:
        candidates.append(max(rul_lo_h, 0.0))
    if probability is not None and horizon_h is not None and probability >= likely_probability:
        candidates.append(horizon_h)
    return min(candidates) if candidates else None


def classify(
    *,
    rule_based: bool,
    probability: float | None = None,
    horizon_h: float | None = None,
    rul_lo_h: float | None = None,
    criticality: str = "medium",
    production_stopped: bool = False,
    tier: str = "Regular",
    policy: ServicePolicy,
) -> Priority:
    """The priority of a work order, tier included (DESIGN.md "Default service levels").

    Args:
        rule_based: A calendar or usage rule (P4 before the tier), not a model's prediction.
        probability: The failure probability within `horizon_h`.
        horizon_h: The probability's horizon, hours.
        rul_lo_h: The lower bound of the remaining-life interval, hours.
        criticality: The asset's criticality (``low`` ... ``critical``).
        production_stopped: Production is down: P1 whatever the prediction.
        tier: ``VIP`` moves up one level; ``Gold`` and ``Regular`` keep it.
        policy: Thresholds.

    Returns:
        P1 to P4.
    """
    c = policy.classification
    ttf = time_to_failure_h(
        probability=probability,
        horizon_h=horizon_h,
        rul_lo_h=rul_lo_h,
        likely_probability=c.likely_probability,
    )
    hours = dt.timedelta(hours=ttf) if ttf is not None else None
    critical = str(criticality).casefold() in {x.casefold() for x in c.critical}
    if production_stopped or (hours is not None and hours <= c.p1_within and critical):
        level = Priority.P1
    elif rule_based:
        level = Priority.P4
    elif hours is not None and hours <= c.p2_within:
        level = Priority.P2
    else:
        level = Priority.P3
    return level.raised() if str(tier).casefold() == "vip" else level


def _is_business_day(day: dt.date, cal: Calendar) -> bool:
    return WEEKDAYS[day.weekday()] in cal.workdays and day not in cal.holidays


def add_business_days(start: dt.datetime, days: int, cal: Calendar) -> dt.datetime:
    """`days` business days after `start`, at the same local time of day.

    Work raised on a day off counts from the next business day at ``day_start``.

    Args:
        start: Timezone-aware.
        days: Whole business days (0 = the start, moved to a business day).
        cal: Workdays, holidays, time zone.

    Returns:
        Timezone-aware, in UTC.
    """
    local = start.astimezone(cal.zone)
    if not _is_business_day(local.date(), cal):
        day = local.date()
        while not _is_business_day(day, cal):
            day += dt.timedelta(days=1)
        local = dt.datetime.combine(day, cal.day_start, tzinfo=cal.zone)
    day = local.date()
    for _ in range(days):
        day += dt.timedelta(days=1)
        while not _is_business_day(day, cal):
            day += dt.timedelta(days=1)
    return dt.datetime.combine(
        day, local.timetz().replace(tzinfo=None), tzinfo=cal.zone
    ).astimezone(dt.UTC)


def next_planning_cycle(after: dt.datetime, cal: Calendar) -> dt.datetime:
    """The first planning-cycle start strictly after `after` (UTC)."""
    local = after.astimezone(cal.zone)
    target = WEEKDAYS.index(cal.planning_weekday)
    day = local.date()
    while True:
        start = dt.datetime.combine(day, cal.planning_time, tzinfo=cal.zone)
        if day.weekday() == target and start > local:
            return start.astimezone(dt.UTC)
        day += dt.timedelta(days=1)


def resolve_span(
    span: Span, start: dt.datetime, *, due_by: dt.datetime, cal: Calendar
) -> dt.datetime:
    """The deadline `span` after `start` (see the module docstring)."""
    if isinstance(span, dt.timedelta):
        return start + span
    if isinstance(span, BusinessDays):
        return add_business_days(start, span.days, cal)
    if isinstance(span, NextPlanningCycle):
        return next_planning_cycle(start, cal)
    if isinstance(span, UntilDueBy):
        return max(due_by, start)
    raise TypeError(span)  # pragma: no cover - the union is closed


def deadlines(
    priority: Priority,
    *,
    tier: str,
    created_at: dt.datetime,
    due_by: dt.datetime,
    policy: ServicePolicy,
) -> Deadlines:
    """Respond, on-site and resolve deadlines of a work order.

    Args:
        priority: After the tier's move (`classify`).
        tier: ``Gold`` takes the level's ``respond_gold``.
        created_at: When the work order was raised.
        due_by: Its due-by date.
        policy: Service levels and calendar.

    Returns:
        The deadlines, UTC.
    """
    level = policy.level(priority)
    cal = policy.calendar
    respond = level.respond
    if str(tier).casefold() == "gold" and level.respond_gold is not None:
        respond = level.respond_gold
    return Deadlines(
        respond_by=resolve_span(respond, created_at, due_by=due_by, cal=cal),
        onsite_by=(
            None
            if level.onsite is None
            else resolve_span(level.onsite, created_at, due_by=due_by, cal=cal)
        ),
        resolve_by=resolve_span(level.resolve, created_at, due_by=due_by, cal=cal),
    )


def due_by_date(
    *,
    created_at: dt.datetime,
    rul_lo_h: float | None,
    horizon_h: float | None,
    policy: ServicePolicy,
) -> dt.datetime:
    """When the work must be done: before the remaining life's lower bound runs out.

    Without a remaining-life interval, the probability's horizon; without that, the planning
    horizon.
    """
    if rul_lo_h is not None:
        return created_at + dt.timedelta(hours=max(rul_lo_h, 0.0))
    if horizon_h is not None:
        return created_at + dt.timedelta(hours=horizon_h)
    return created_at + policy.classification.planning_horizon


def order_by_date(
    due_by: dt.datetime, part_numbers: list[str] | tuple[str, ...], policy: ServicePolicy
) -> dt.datetime | None:
    """The last day to order the parts: due-by minus the longest supplier lead time.

    Returns:
        None when no part is needed.
    """
    if not part_numbers:
        return None
    p = policy.parts
    lead = max(p.lead_time_days.get(n, p.default_lead_time_days) for n in part_numbers)
    return due_by - dt.timedelta(days=lead)


def resolution_mode(
    failure_mode: str | None, part_numbers: list[str] | tuple[str, ...], policy: ServicePolicy
) -> Literal["remote", "on-site"]:
    """``remote`` if a remote command or reset fixes it and no part is needed, else ``on-site``."""
    if not part_numbers and failure_mode in policy.resolution.remote_failure_modes:
        return "remote"
    return "on-site"
