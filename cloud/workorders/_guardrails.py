"""Guardrails against flooding planners: per asset class a mode, per team a daily budget (pure).

``suggest``: every work order waits in the planners' feed (``proposed``) until approved.
``auto``: it goes straight to the outbox (``pending``), unless the team's daily budget is spent;
then it waits for a planner like a suggestion. Priorities in ``budget_exempt`` (P1, P2 by
default) never wait for the budget: an emergency is not rationed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from cloud.workorders._policy import Priority, ServicePolicy
from cloud.workorders._state import WoState


@dataclasses.dataclass(frozen=True, slots=True)
class Admission:
    """Where a new work order starts, and why."""

    state: WoState
    reason: str


def admit(
    *,
    priority: Priority,
    asset_class: str,
    team: str,
    sent_today: int,
    policy: ServicePolicy,
) -> Admission:
    """Where a new work order starts: ``proposed`` or ``pending``.

    Args:
        priority: Its priority.
        asset_class: Its asset's class (the mode).
        team: Its team (the budget).
        sent_today: The team's work orders already admitted to the outbox today.
        policy: Modes and budgets.

    Returns:
        The starting state and the reason (``suggest_mode``, ``budget_exhausted``, ``auto``,
        ``budget_exempt``).
    """
    g = policy.guardrails
    if g.modes.get(asset_class, g.default_mode) == "suggest":
        return Admission(WoState.PROPOSED, "suggest_mode")
    budget = g.daily_budget.get(team, g.default_daily_budget)
    if budget is None:
        return Admission(WoState.PENDING, "auto")
    if priority in g.budget_exempt:
        return Admission(WoState.PENDING, "budget_exempt")
    if sent_today >= budget:
        return Admission(WoState.PROPOSED, "budget_exhausted")
    return Admission(WoState.PENDING, "auto")


def budget_day(now: dt.datetime, policy: ServicePolicy) -> dt.date:
    """The budget's day of `now`, in the policy's calendar time zone."""
    return now.astimezone(policy.calendar.zone).date()
