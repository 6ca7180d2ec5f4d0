"""The simulated plant's technicians: work orders completed when the simulator does the work.

In a plant, the technician who replaces a worn air filter completes the work orders that asked
for it, and the service system reports that back: signed ``workorder.status`` callbacks,
``resolved`` (with the technician's feedback) then ``closed`` (docs/workorders.md, inbound).
Closing a work order closes its alert, which ends the alert's period (cloud/alerting): the next
life of the filter can raise a new alert and get a new work order. Without this loop, the
first life's alert is only resolved, and it reopens when the next filter wears: one work order
for every life after the first.

The simulator replaces consumables on its own schedule (``consumable_replaced`` in
``ground_truth.jsonl``). `completions` matches each replacement with the work orders the
service system holds for that asset and consumable (a prediction whose ``failure_mode`` is the
consumable, or a rule for it), created before the replacement; `Technician` sends their
callbacks through the fake service system to Prognos's inbound endpoint. Failures are not
repaired (a failed engine stays failed in the replay): their work orders stay open.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from cloud.workorders import FakeServiceSystem, Store, WorkOrderRecord, WoState

log = structlog.get_logger("prognos.plant.technician")

HELD = frozenset({WoState.CREATED, WoState.ASSIGNED, WoState.IN_PROGRESS, WoState.RESOLVED})
"""States in which the service system holds a work order a technician can complete."""


@dataclasses.dataclass(frozen=True, slots=True)
class Completion:
    """One work order a replacement completes, and what the technician reports."""

    key: str
    external_id: str | None
    state: WoState
    feedback: dict[str, Any]


def replacements(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The ``consumable_replaced`` events among ground-truth lines (blank lines skipped)."""
    events = (json.loads(line) for line in lines if line.strip())
    return [e for e in events if e.get("event") == "consumable_replaced"]


def completions(
    events: Sequence[Mapping[str, Any]], work_orders: Sequence[WorkOrderRecord], done: set[str]
) -> list[Completion]:
    """The work orders the replacements in `events` complete, except those in `done`.

    Args:
        events: ``consumable_replaced`` ground-truth events (``asset``, ``consumable``,
            ``wall_ms``, ``detail``).
        work_orders: The decision store's work orders.
        done: Keys already completed.
    """
    out: list[Completion] = []
    for event in events:
        at = dt.datetime.fromtimestamp(int(event["wall_ms"]) / 1000, dt.UTC)
        item = str(event["consumable"])
        worn = "limit_t_sim_s" in event.get("detail", {})
        for record in work_orders:
            wo = record.work_order
            if (
                record.key in done
                or record.state not in HELD
                or wo.asset != event["asset"]
                or item not in {wo.consumable, wo.failure_mode}
                or wo.created_at > at
            ):
                continue
            done.add(record.key)
            feedback = {
                "failure_confirmed": worn,
                "root_cause": f"{item} worn" if worn else f"{item} replaced before its limit",
                "parts_used": [item],
                "resolution_mode": "on-site",
            }
            out.append(Completion(record.key, record.external_id, record.state, feedback))
    return out


class Technician:
    """Completes work orders as the simulator replaces consumables; call `step` now and then.

    Args:
        ground_truth: The simulator's ``ground_truth.jsonl`` (appended while it runs).
        db: The decision store.
        service: The fake service system, its ``callback_url`` set to the inbound endpoint.
    """

    def __init__(self, ground_truth: Path, db: Path, service: FakeServiceSystem) -> None:
        self._path = ground_truth
        self._db = db
        self._service = service
        self._offset = 0
        self._events: list[dict[str, Any]] = []
        self._done: set[str] = set()
        self.completed = 0
        """Work orders completed so far."""

    def step(self) -> int:
        """Read new replacements, complete their work orders; returns how many were completed.

        A callback the endpoint refuses is logged and not retried (the work order then stays
        open, as it would if the technician forgot to close it).
        """
        if self._path.exists():
            with self._path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
            whole = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
            self._offset += len(whole)
            self._events += replacements(whole.decode().splitlines())
        if not self._events:
            return 0
        store = Store(self._db)
        try:
            todo = completions(self._events, store.work_orders(limit=100_000), self._done)
        finally:
            store.close()
        for job in todo:
            statuses = ["closed"] if job.state is WoState.RESOLVED else ["resolved", "closed"]
            for status in statuses:
                reply = self._service.send_status(
                    job.key,
                    status,
                    external_id=job.external_id,
                    feedback=job.feedback if status == "resolved" else None,
                )
                if not reply.is_success:
                    log.warning(
                        "completion_refused", key=job.key, status=status, answer=reply.text[:200]
                    )
                    break
            else:
                self.completed += 1
                log.info("work_order_completed", key=job.key, consumable=job.feedback["parts_used"])
        return len(todo)
