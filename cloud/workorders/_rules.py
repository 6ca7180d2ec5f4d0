"""Calendar and usage rules: consumables due by operating hours or by days (pure).

A consumable of the asset's profile with ``interval_h`` is due ``interval_h`` operating hours
after its last replacement (or commissioning); with ``interval_days``, that many days after. With
both, whichever comes first. The date an hours rule falls due is estimated from the asset's mean
usage since commissioning. A rule fires ``lookahead`` before it is due, so parts can be ordered.

The rule's window (part of the work-order key) is the last replacement, not the due date: the
due-date estimate moves as usage changes, the last replacement does not, so one replacement cycle
is one work order until the asset record says it was replaced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Protocol

from cloud.workorders._model import ProfileLike


class ConsumableStateLike(Protocol):
    """When a consumable was last replaced (`cloud.registry` ``ConsumableState``)."""

    @property
    def replaced_on(self) -> dt.date | None: ...
    @property
    def replaced_at_hours(self) -> float | None: ...


class RuleAssetLike(Protocol):
    """The fields of an asset record the rules read."""

    @property
    def commissioned(self) -> dt.date: ...
    @property
    def consumables(self) -> Mapping[str, ConsumableStateLike]: ...


@dataclasses.dataclass(frozen=True, slots=True)
class RuleDue:
    """A consumable that needs replacing soon (or now)."""

    consumable: str
    window: str
    due_by: dt.datetime
    reason: str


def due_consumables(
    asset: RuleAssetLike,
    profile: ProfileLike,
    *,
    now: dt.datetime,
    hours_now: float | None,
    lookahead: dt.timedelta = dt.timedelta(days=30),
) -> list[RuleDue]:
    """The consumables whose replacement falls due within `lookahead`.

    Args:
        asset: The asset record (commissioning, last replacements).
        profile: Its firmware profile (the consumables and their intervals).
        now: The current time (aware).
        hours_now: The asset's operating hours now; None skips the hours rules.
        lookahead: How early a rule fires.

    Returns:
        One entry per due consumable, in profile order.
    """
    due: list[RuleDue] = []
    days_in_service = max((now.date() - asset.commissioned).days, 1)
    for item in profile.consumables:
        state = asset.consumables.get(item.name)
        base_day = (state.replaced_on if state else None) or asset.commissioned
        base_h = (state.replaced_at_hours if state else None) or 0.0
        candidates: list[tuple[dt.datetime, str]] = []
        if item.interval_h is not None and hours_now is not None:
            due_h = base_h + item.interval_h
            rate = hours_now / days_in_service
            left_h = due_h - hours_now
            when = now if left_h <= 0 or rate <= 0 else now + dt.timedelta(days=left_h / rate)
            if rate > 0 or left_h <= 0:
                reason = f"operating hours {hours_now:,.0f} of {due_h:,.0f}"
                candidates.append((when, reason))
        if item.interval_days is not None:
            start = dt.datetime.combine(base_day, dt.time(0), tzinfo=dt.UTC)
            when = start + dt.timedelta(days=item.interval_days)
            candidates.append((when, f"every {item.interval_days:g} days since {base_day}"))
        if not candidates:
            continue
        when, reason = min(candidates)
        if when <= now + lookahead:
            window = f"since-{base_day.isoformat()}-{base_h:g}h"
            due.append(RuleDue(item.name, window, max(when, now), reason))
    return due
