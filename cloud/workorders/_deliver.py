"""The delivery worker: the outbox to the service system, exactly once in effect.

Theory of operation
-------------------
For each due outbox row the worker first *commits* the attempt (count + 1, marked uncertain,
next try scheduled) and only then calls the service system, so a process killed mid-call leaves
a row that a restarted worker retries. A create whose row was already uncertain (an earlier
attempt timed out, answered 5xx or never reported back) starts with ``find_by_key``: a found
work order is recorded as delivered, not created again.

=====================================  ==============================================
outcome of the call                    then
=====================================  ==============================================
created / found / updated / cancelled  row done; the work order ``created``
`ServiceUnavailableError`              retry after back-off; uncertainty unchanged
`DeliveryUncertainError`               retry after back-off; uncertain (look up first)
`DeliveryRejectedError`                dead letter at once
the attempt was the ``max_attempts``th  dead letter (work order ``failed``)
=====================================  ==============================================

Back-off doubles from ``backoff_min`` to ``backoff_max`` with equal jitter (each wait is 50-100 %
of the step), so workers that lost the same service system do not return at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from collections.abc import Callable

import structlog

from cloud.workorders._adapters import ServiceSystem
from cloud.workorders._exceptions import (
    DeliveryError,
    DeliveryRejectedError,
    DeliveryUncertainError,
)
from cloud.workorders._policy import Delivery
from cloud.workorders._store import OutboxItem, Store

log = structlog.get_logger("prognos.workorders.delivery")


def backoff_delay(attempts: int, *, policy: Delivery, jitter: float) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt (pure).

    Args:
        attempts: Failed attempts so far (1 after the first).
        policy: ``backoff_min`` and ``backoff_max``.
        jitter: A number in [0, 1), e.g. `random.random()`.

    Returns:
        ``min(backoff_min * 2**(attempts-1), backoff_max)`` times 0.5 to 1.
    """
    factor: int = 2 ** min(max(attempts - 1, 0), 30)
    step: dt.timedelta = min(policy.backoff_min * factor, policy.backoff_max)
    return step * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


@dataclasses.dataclass(slots=True)
class DeliveryReport:
    """What one pass of the worker did (counters, STYLE.md 9)."""

    created: int = 0
    found: int = 0
    updated: int = 0
    retried: int = 0
    dead: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            *(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self))
        )


class DeliveryWorker:
    """Delivers a store's outbox to one service system. One worker per store file.

    Args:
        store: The decision-state store.
        service: The service system adapter.
        policy: Attempts and back-off.
        clock: The current time (tests pass a controlled clock).
        jitter: Numbers in [0, 1) for the back-off.
    """

    def __init__(
        self,
        *,
        store: Store,
        service: ServiceSystem,
        policy: Delivery,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._service = service
        self._policy = policy
        self._clock = clock
        self._jitter = jitter
        self._failing = False

    def run_once(self) -> DeliveryReport:
        """Try every row due now, once each."""
        report = DeliveryReport()
        for item in self._store.due(self._clock()):
            report += self._deliver(item)
        return report

    def run(
        self,
        *,
        until_idle: bool = False,
        poll_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> DeliveryReport:
        """Deliver until stopped (or, with `until_idle`, until no row is queued).

        Args:
            until_idle: Return when the outbox has no queued row left.
            poll_s: Longest sleep between passes (new rows appear from other processes).
            sleep: Sleeps; tests may pass a fake.
        """
        total = DeliveryReport()
        while True:
            total += self.run_once()
            nxt = self._store.next_due_at()
            if nxt is None and until_idle:
                return total
            wait = poll_s if nxt is None else (nxt - self._clock()).total_seconds()
            sleep(min(max(wait, 0.0), poll_s))

    def _deliver(self, item: OutboxItem) -> DeliveryReport:
        now = self._clock()
        delay = backoff_delay(item.attempts + 1, policy=self._policy, jitter=self._jitter())
        before = self._store.begin_attempt(item, now=now, retry_at=now + delay)
        record = self._store.get(item.key)
        try:
            if item.op == "create":
                found = self._service.find_by_key(item.key) if before.uncertain else None
                if found is not None:
                    self._store.succeed(
                        before, now=self._clock(), external_id=found, outcome="found"
                    )
                    self._recovered()
                    return DeliveryReport(found=1)
                external_id = self._service.create(record.work_order, item.key)
                self._store.succeed(
                    before, now=self._clock(), external_id=external_id, outcome="created"
                )
                self._recovered()
                return DeliveryReport(created=1)
            if item.op == "cancel" and record.external_id is None:
                found = self._service.find_by_key(item.key)
                if found is None:
                    self._store.succeed(
                        before, now=self._clock(), external_id=None, outcome="nothing_to_cancel"
                    )
                    return DeliveryReport(updated=1)
                record = dataclasses.replace(record, external_id=found)
            if record.external_id is None:
                raise DeliveryRejectedError(
                    f"{item.op} of {item.key!r} before it was delivered",
                    key=item.key,
                    reason="no_external_id",
                )
            if item.op == "update":
                self._service.update(record.external_id, record.work_order, item.key)
            else:
                self._service.cancel(record.external_id, item.key, record.reason)
            self._store.succeed(
                before,
                now=self._clock(),
                external_id=record.external_id,
                outcome={"update": "updated"}.get(item.op, "cancelled"),
            )
            self._recovered()
            return DeliveryReport(updated=1)
        except DeliveryError as exc:
            return self._failed(before, exc)

    def _failed(self, before: OutboxItem, exc: DeliveryError) -> DeliveryReport:
        now = self._clock()
        attempts = before.attempts + 1
        uncertain = before.uncertain or isinstance(exc, DeliveryUncertainError)
        dead = isinstance(exc, DeliveryRejectedError) or attempts >= self._policy.max_attempts
        retry_at = (
            None
            if dead
            else now + backoff_delay(attempts, policy=self._policy, jitter=self._jitter())
        )
        self._store.fail(
            before,
            now=now,
            reason=exc.reason,
            detail=str(exc),
            uncertain=uncertain,
            retry_at=retry_at,
        )
        if dead:
            log.error(
                "work_order_dead_lettered",
                key=before.key,
                op=before.op,
                attempts=attempts,
                reason=exc.reason,
            )
            return DeliveryReport(dead=1)
        if not self._failing:
            self._failing = True
            log.warning(
                "service_system_unavailable", key=before.key, reason=exc.reason, error=str(exc)
            )
        else:
            log.debug("delivery_retry", key=before.key, attempts=attempts, reason=exc.reason)
        return DeliveryReport(retried=1)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("service_system_recovered")
