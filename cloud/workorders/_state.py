"""The work-order lifecycle: the one transition table, and a pure `apply` (STYLE.md 12).

Theory of operation
-------------------
A work order is born ``proposed`` (its asset class is in ``suggest`` mode, or the team's daily
budget is spent: a planner approves or rejects it) or ``pending`` (``auto`` mode: it waits in the
outbox). The delivery worker turns ``pending`` into ``created`` once the service system holds it
(with its external id), or into ``failed`` after the last attempt (dead letter; a planner may
retry). From ``created`` on, the service system's status callbacks drive it: ``assigned``,
``in_progress``, ``resolved``, ``closed``; either side may cancel it.

Rules:
1. `TRANSITIONS` is the only definition of the lifecycle; nothing else compares states.
2. An event the table does not allow raises `IllegalWorkOrderTransition` naming the state and
   the allowed events; the work order is unchanged.
3. ``closed``, ``cancelled`` and ``rejected`` are terminal.
4. A status callback may overtake our own record of the delivery (the service system created
   it, the answer timed out, its callback came first): ``pending`` and ``failed`` accept the
   service system's statuses directly, which also records the delivery.
"""

from __future__ import annotations

import enum
from typing import Final


class WoState(enum.StrEnum):
    """Where a work order is in its lifecycle."""

    PROPOSED = "proposed"
    PENDING = "pending"
    FAILED = "failed"
    CREATED = "created"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class WoEvent(enum.StrEnum):
    """What can happen to a work order."""

    APPROVE = "approve"
    """A planner approves a proposed work order: it goes to the outbox."""
    REJECT = "reject"
    """A planner rejects a proposed work order."""
    DELIVERED = "delivered"
    """The service system holds it (created, or found by key after a timeout)."""
    DEAD_LETTER = "dead_letter"
    """The last delivery attempt failed."""
    RETRY = "retry"
    """A planner puts a dead-lettered work order back in the outbox."""
    UPDATED = "updated"
    """We sent an update (new evidence, priority) to the service system."""
    ASSIGNED = "assigned"
    """The service system assigned a technician."""
    IN_PROGRESS = "in_progress"
    """Work started."""
    RESOLVED = "resolved"
    """The work is done (with feedback)."""
    CLOSED = "closed"
    """The service system closed it."""
    CANCEL = "cancel"
    """Either side cancelled it."""


S = WoState
E = WoEvent
_FEEDBACK: Final = {
    E.ASSIGNED: S.ASSIGNED,
    E.IN_PROGRESS: S.IN_PROGRESS,
    E.RESOLVED: S.RESOLVED,
    E.CLOSED: S.CLOSED,
    E.CANCEL: S.CANCELLED,
}

TRANSITIONS: Final[dict[WoState, dict[WoEvent, WoState]]] = {
    S.PROPOSED: {E.APPROVE: S.PENDING, E.REJECT: S.REJECTED, E.CANCEL: S.CANCELLED},
    S.PENDING: {E.DELIVERED: S.CREATED, E.DEAD_LETTER: S.FAILED} | _FEEDBACK,
    S.FAILED: {E.RETRY: S.PENDING, E.DELIVERED: S.CREATED} | _FEEDBACK,
    S.CREATED: {E.UPDATED: S.CREATED, E.DELIVERED: S.CREATED} | _FEEDBACK,
    S.ASSIGNED: {E.UPDATED: S.ASSIGNED} | _FEEDBACK,
    S.IN_PROGRESS: {E.UPDATED: S.IN_PROGRESS} | _FEEDBACK,
    S.RESOLVED: {E.IN_PROGRESS: S.IN_PROGRESS, E.CLOSED: S.CLOSED},
    S.CLOSED: {},
    S.CANCELLED: {},
    S.REJECTED: {},
}
"""state -> event -> next state. Absent means illegal."""

ACKNOWLEDGED_STATES: Final = frozenset(
    {S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED, S.CLOSED, S.CANCELLED, S.REJECTED}
)
"""States in which the service system has responded: the response deadline is met."""

OPEN_STATES: Final = frozenset(
    {S.PROPOSED, S.PENDING, S.FAILED, S.CREATED, S.ASSIGNED, S.IN_PROGRESS}
)
"""States in which the work is still to do; they count against nothing else being raised."""


class IllegalWorkOrderTransition(ValueError):  # noqa: N818 - reads as what happened, like h11's
    """An event the current state does not allow; the caller's request is wrong, do not retry.

    Attributes:
        state: The work order's state.
        event: The refused event.
        allowed: The events `state` allows, sorted.
    """

    def __init__(self, state: WoState, event: WoEvent) -> None:
        self.state = state
        self.event = event
        self.allowed = tuple(sorted(TRANSITIONS[state]))
        allowed = ", ".join(self.allowed) or "none (terminal state)"
        super().__init__(
            f"work-order event {event.value!r} is not allowed in state {state.value!r}; "
            f"allowed: {allowed}"
        )


def apply(state: WoState, event: WoEvent) -> WoState:
    """The state after `event`.

    Args:
        state: The current state.
        event: What happened.

    Returns:
        The next state.

    Raises:
        IllegalWorkOrderTransition: `state` does not allow `event`.
    """
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalWorkOrderTransition(state, event) from None
