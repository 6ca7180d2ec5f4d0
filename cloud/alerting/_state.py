"""The alert lifecycle: the one transition table, and a pure `apply` (STYLE.md 12).

Theory of operation
-------------------
An alert is born ``open`` (the engine raised it) and ends ``closed``. In between, a planner
acknowledges it, snoozes it until a time, or suppresses it (known cause, no work wanted); the
score falling below the clear level, or the work order that fixed it, resolves it; a planner (or
the work order closing) closes it.

Rules:
1. `TRANSITIONS` is the only definition of the lifecycle; nothing else compares states.
2. An event that the table does not allow in the current state raises `IllegalAlertTransition`
   naming the state and the events it allows; the alert is unchanged.
3. ``closed`` is terminal: a new episode for the same asset and failure mode is a new alert.
4. At most one alert per (asset, failure mode) is *active* (any state but ``closed`` and
   ``resolved``); the engine (`cloud.alerting.AlertEngine`) keeps that invariant.
"""

from __future__ import annotations

import enum
from typing import Final


class AlertState(enum.StrEnum):
    """Where an alert is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    SUPPRESSED = "suppressed"
    RESOLVED = "resolved"
    CLOSED = "closed"


class AlertEvent(enum.StrEnum):
    """What can happen to an alert."""

    ACKNOWLEDGE = "acknowledge"
    """A planner has seen it."""
    SNOOZE = "snooze"
    """A planner hides it until a time."""
    WAKE = "wake"
    """The snooze time has passed."""
    SUPPRESS = "suppress"
    """A planner knows the cause and wants no work order."""
    UNSUPPRESS = "unsuppress"
    """A planner lifts the suppression."""
    RESOLVE = "resolve"
    """The score cleared, or the work order for it was resolved."""
    REOPEN = "reopen"
    """The score rose again (or late data undid the clearing) before the alert was closed."""
    CLOSE = "close"
    """Done: a planner closed it, or its work order was closed."""


S = AlertState
E = AlertEvent

TRANSITIONS: Final[dict[AlertState, dict[AlertEvent, AlertState]]] = {
    S.OPEN: {
        E.ACKNOWLEDGE: S.ACKNOWLEDGED,
        E.SNOOZE: S.SNOOZED,
        E.SUPPRESS: S.SUPPRESSED,
        E.RESOLVE: S.RESOLVED,
        E.CLOSE: S.CLOSED,
    },
    S.ACKNOWLEDGED: {
        E.SNOOZE: S.SNOOZED,
        E.SUPPRESS: S.SUPPRESSED,
        E.RESOLVE: S.RESOLVED,
        E.CLOSE: S.CLOSED,
    },
    S.SNOOZED: {
        E.WAKE: S.OPEN,
        E.ACKNOWLEDGE: S.ACKNOWLEDGED,
        E.SUPPRESS: S.SUPPRESSED,
        E.RESOLVE: S.RESOLVED,
        E.CLOSE: S.CLOSED,
    },
    S.SUPPRESSED: {
        E.UNSUPPRESS: S.OPEN,
        E.RESOLVE: S.RESOLVED,
        E.CLOSE: S.CLOSED,
    },
    S.RESOLVED: {
        E.REOPEN: S.OPEN,
        E.CLOSE: S.CLOSED,
    },
    S.CLOSED: {},
}
"""state -> event -> next state. Absent means illegal."""

ACTIVE_STATES: Final = frozenset({S.OPEN, S.ACKNOWLEDGED, S.SNOOZED, S.SUPPRESSED})
"""States in which an alert is the one alert of its (asset, failure mode)."""


class IllegalAlertTransition(ValueError):  # noqa: N818 - reads as what happened, like h11's
    """An event the current state does not allow; the caller's request is wrong, do not retry.

    Attributes:
        state: The alert's state.
        event: The refused event.
        allowed: The events `state` allows, sorted.
    """

    def __init__(self, state: AlertState, event: AlertEvent) -> None:
        self.state = state
        self.event = event
        self.allowed = tuple(sorted(TRANSITIONS[state]))
        allowed = ", ".join(self.allowed) or "none (terminal state)"
        super().__init__(
            f"alert event {event.value!r} is not allowed in state {state.value!r}; "
            f"allowed: {allowed}"
        )


def apply(state: AlertState, event: AlertEvent) -> AlertState:
    """The state after `event`.

    Args:
        state: The current state.
        event: What happened.

    Returns:
        The next state.

    Raises:
        IllegalAlertTransition: `state` does not allow `event`.
    """
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalAlertTransition(state, event) from None
