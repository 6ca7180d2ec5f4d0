"""Submitting a built work order: guardrails decide where it starts, the store keeps it once."""

from __future__ import annotations

import datetime as dt

from cloud.workorders._guardrails import Admission, admit, budget_day
from cloud.workorders._model import WorkOrder
from cloud.workorders._policy import ServicePolicy
from cloud.workorders._store import Store


def submit(
    store: Store, work_order: WorkOrder, *, policy: ServicePolicy, now: dt.datetime
) -> Admission | None:
    """Admit and store a work order (its create is queued when it starts ``pending``).

    Args:
        store: The decision-state store.
        work_order: The built work order.
        policy: Modes and budgets.
        now: The current time.

    Returns:
        Its admission, or None when a work order with the same key exists (nothing changed).
    """
    day = budget_day(now, policy)
    admission = admit(
        priority=work_order.priority,
        asset_class=work_order.asset_class,
        team=work_order.team,
        sent_today=store.sent_today(work_order.team, day),
        policy=policy,
    )
    return admission if store.add(work_order, admission, now=now, day=day) else None
