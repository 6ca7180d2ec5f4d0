"""SLA tracking: which warnings and escalations are due now (pure, time passed in).

Each escalation step of the policy fires at a fraction of the response window (``at: 0.5`` = half
way from creation to ``respond_by``), once per work order and step, while the service system has
not acknowledged it (state before ``assigned``). With the default policy a warning goes out half
way and the escalation at 80 %: both *before* the deadline passes. A step whose time passed while
the tracker was down fires late rather than never (``late=True``). A proposed (not yet approved)
or dead-lettered work order is not acknowledged either: it escalates like any other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Iterable

from cloud.workorders._policy import Priority, ServicePolicy
from cloud.workorders._state import ACKNOWLEDGED_STATES, WoState


@dataclasses.dataclass(frozen=True, slots=True)
class SlaView:
    """What the tracker needs of a work order."""

    key: str
    state: WoState
    priority: Priority
    created_at: dt.datetime
    respond_by: dt.datetime
    team: str = ""
    title: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class SlaAction:
    """One warning or escalation to send now."""

    key: str
    step: int
    action: str
    channels: tuple[str, ...]
    to: tuple[str, ...]
    fire_at: dt.datetime
    respond_by: dt.datetime
    priority: Priority
    title: str
    late: bool


def due_actions(
    orders: Iterable[SlaView],
    *,
    policy: ServicePolicy,
    now: dt.datetime,
    done: Collection[tuple[str, int]],
) -> list[SlaAction]:
    """The escalation steps due at `now` and not yet sent.

    Args:
        orders: Work orders to watch (any state; acknowledged and terminal ones are skipped).
        policy: The escalation steps.
        now: The current time.
        done: (key, step) pairs already sent.

    Returns:
        The actions, ordered by their firing time.
    """
    actions = []
    for wo in orders:
        if wo.state in ACKNOWLEDGED_STATES:
            continue
        window = wo.respond_by - wo.created_at
        for i, step in enumerate(policy.escalation):
            fire_at = wo.created_at + window * step.at
            if now >= fire_at and (wo.key, i) not in done:
                actions.append(
                    SlaAction(
                        key=wo.key,
                        step=i,
                        action=step.action,
                        channels=step.channels,
                        to=step.to,
                        fire_at=fire_at,
                        respond_by=wo.respond_by,
                        priority=wo.priority,
                        title=wo.title,
                        late=now >= wo.respond_by,
                    )
                )
    return sorted(actions, key=lambda a: (a.fire_at, a.key, a.step))
