"""Polling the service system for status and feedback (for systems that cannot call back).

The same effect as a signed inbound callback (`Store.apply_status`): resolved work orders
resolve their alerts, feedback becomes labels, closed ones join the case library. A status that
the work order's state does not allow (the service system went back and forth between polls) is
logged and skipped, never applied half.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import structlog

from cloud.workorders._adapters import RemoteStatus
from cloud.workorders._inbound import STATUS_EVENTS
from cloud.workorders._state import IllegalWorkOrderTransition, WoState
from cloud.workorders._store import STATUS_STATE, Feedback, Store

log = structlog.get_logger("prognos.workorders.poll")

WATCHED = (WoState.CREATED, WoState.ASSIGNED, WoState.IN_PROGRESS, WoState.RESOLVED)


class StatusSource(Protocol):
    """A service system that can report the status of many work orders at once."""

    def statuses(self, keys: list[str]) -> list[RemoteStatus]:
        """The current status of each of `keys` it knows (others are left out)."""
        ...


def poll_statuses(store: Store, source: StatusSource, *, now: dt.datetime, batch: int = 100) -> int:
    """Fetch the status of every delivered, unfinished work order and apply the changes.

    Args:
        store: The decision-state store.
        source: The service system (`ServiceNowServiceSystem`).
        now: The current time.
        batch: Keys per request.

    Returns:
        How many work orders changed state.

    Raises:
        DeliveryError: The service system could not be asked; try again later.
    """
    records = {r.key: r for state in WATCHED for r in store.work_orders(state=state)}
    keys = sorted(records)
    changed = 0
    for i in range(0, len(keys), batch):
        for remote in source.statuses(keys[i : i + batch]):
            event = STATUS_EVENTS[remote.status]
            if STATUS_STATE[event] is records[remote.key].state:
                continue
            feedback = Feedback(
                failure_confirmed=remote.failure_confirmed,
                root_cause=remote.root_cause,
                parts_used=remote.parts_used,
                resolution_mode=remote.resolution_mode,
            )
            try:
                store.apply_status(
                    remote.key, event, now=now, external_id=remote.external_id, feedback=feedback
                )
            except IllegalWorkOrderTransition as exc:
                log.warning("polled_status_refused", key=remote.key, error=str(exc))
                continue
            changed += 1
    return changed
