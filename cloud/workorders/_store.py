"""The cloud's decision state in one SQLite file (WAL).

Work orders, outbox, deliveries, alerts (with their history), feedback labels, the case library,
seen webhook ids and sent SLA notifications.

Theory of operation
-------------------
Every change is one transaction, committed before anything is sent (``synchronous=FULL``): a
process killed at any point finds on restart exactly what it had decided. The outbox row of a
create is marked *uncertain* in the same transaction that counts the attempt, before the request
leaves; only a definite "not created" (connection refused) clears it. A later attempt on an
uncertain row looks the key up on the service system before creating again.

One delivery worker per file (the outbox claims no rows); readers (the CLI, the API) may run
beside it, which WAL allows.

Rules:
1. A work order's key is its primary key: adding the same key twice changes nothing.
2. Work-order states change only through `cloud.workorders._state.apply`, logged in ``wo_events``.
3. Every delivery attempt is a row in ``deliveries`` (what happened, when, why): all visible.
4. An alert changes only through `Store.apply_alert_event` (or `Store.insert_alert` when it is
   raised): read, the alerting table applied to the state *as stored*, and written back with
   ``UPDATE ... WHERE version = ?`` in one ``BEGIN IMMEDIATE`` transaction, retried on a
   conflict. Writers that read earlier (the API, the scorer's in-memory engine) therefore never
   overwrite each other's transitions; each applied event is a row in ``alert_events``.

Schema changes are additive and applied on open (`Store.__init__`): a file written by an older
version gains the ``alerts.version`` column (existing alerts start at 0) and the
``alert_events`` table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog

from cloud.alerting import TRANSITIONS as ALERT_TRANSITIONS
from cloud.alerting import Alert, AlertChange, AlertEvent, AlertState, IllegalAlertTransition
from cloud.alerting import transition as alert_transition
from cloud.workorders._exceptions import AlertConflictError
from cloud.workorders._guardrails import Admission
from cloud.workorders._model import SimilarCase, WorkOrder
from cloud.workorders._state import OPEN_STATES, TRANSITIONS, WoEvent, WoState, apply

log = structlog.get_logger("prognos.workorders")

STATUS_STATE = {
    WoEvent.ASSIGNED: WoState.ASSIGNED,
    WoEvent.IN_PROGRESS: WoState.IN_PROGRESS,
    WoEvent.RESOLVED: WoState.RESOLVED,
    WoEvent.CLOSED: WoState.CLOSED,
    WoEvent.CANCEL: WoState.CANCELLED,
}
"""The state each service-system status leads to."""

ALERT_CAS_ATTEMPTS = 20
"""Compare-and-set attempts of `Store.apply_alert_event` before it gives up."""

UPDATED_OK = {s: WoEvent.UPDATED in TRANSITIONS[s] for s in WoState}
"""States in which the service system holds the work order and takes updates."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS work_orders (
    key TEXT PRIMARY KEY, state TEXT NOT NULL, priority TEXT NOT NULL, team TEXT NOT NULL,
    asset TEXT NOT NULL, asset_class TEXT NOT NULL, profile TEXT NOT NULL, target TEXT NOT NULL,
    alert_id TEXT, external_id TEXT, reason TEXT NOT NULL, admitted_on TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, respond_by TEXT NOT NULL,
    payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS wo_state ON work_orders(state);
CREATE INDEX IF NOT EXISTS wo_team_day ON work_orders(team, admitted_on);
CREATE TABLE IF NOT EXISTS wo_events (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL,
    old TEXT NOT NULL, new TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    key TEXT NOT NULL, op TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL, uncertain INTEGER NOT NULL, last_error TEXT,
    PRIMARY KEY (key, op));
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_attempt_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, op TEXT NOT NULL, attempt INTEGER NOT NULL,
    at TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY, asset TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL,
    updated_at TEXT NOT NULL, record TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL,
    old TEXT NOT NULL, new TEXT NOT NULL, source TEXT NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events(alert_id, id);
CREATE TABLE IF NOT EXISTS labels (
    key TEXT PRIMARY KEY, asset TEXT NOT NULL, profile TEXT NOT NULL, target TEXT NOT NULL,
    at TEXT NOT NULL, failure_confirmed INTEGER, root_cause TEXT NOT NULL,
    parts_used TEXT NOT NULL, resolution_mode TEXT);
CREATE TABLE IF NOT EXISTS cases (
    key TEXT PRIMARY KEY, asset TEXT NOT NULL, profile TEXT NOT NULL, target TEXT NOT NULL,
    closed_at TEXT NOT NULL, failure_confirmed INTEGER, root_cause TEXT NOT NULL,
    parts_used TEXT NOT NULL, resolution_mode TEXT);
CREATE INDEX IF NOT EXISTS cases_kind ON cases(profile, target, closed_at);
CREATE TABLE IF NOT EXISTS seen_webhooks (msg_id TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sla_notifications (
    key TEXT NOT NULL, step INTEGER NOT NULL, at TEXT NOT NULL, action TEXT NOT NULL,
    PRIMARY KEY (key, step));
"""


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _dt(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


@dataclasses.dataclass(frozen=True, slots=True)
class WorkOrderRecord:
    """A stored work order and its delivery state."""

    work_order: WorkOrder
    state: WoState
    reason: str
    external_id: str | None
    updated_at: dt.datetime

    @property
    def key(self) -> str:
        """The work order's key."""
        return self.work_order.key


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxItem:
    """One pending call to the service system."""

    key: str
    op: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    uncertain: bool
    last_error: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Feedback:
    """What the service system reported about the work (labels for retraining)."""

    failure_confirmed: bool | None = None
    root_cause: str = ""
    parts_used: tuple[str, ...] = ()
    resolution_mode: str | None = None


class Store:
    """The decision-state database. Not thread-safe: one instance per thread or process.

    Args:
        path: The SQLite file (created with its tables when missing).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # Used by one thread at a time, not always the same one (FastAPI runs a request's
        # dependencies and its route on different worker threads).
        self._db = sqlite3.connect(
            self.path, isolation_level=None, timeout=30, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a file written by an older version up to this schema (additive only)."""
        if "version" in self._columns("alerts"):
            return
        with self._tx() as db:
            if "version" not in self._columns("alerts"):  # another process may have done it
                db.execute("ALTER TABLE alerts ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
                log.info("store_migrated", path=str(self.path), change="alerts.version")

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---------------------------------------------------------------- work orders

    def add(
        self, wo: WorkOrder, admission: Admission, *, now: dt.datetime, day: dt.date | None = None
    ) -> bool:
        """Store a new work order in its admitted state (``pending`` also queues its create).

        Args:
            wo: The work order.
            admission: Its starting state (`cloud.workorders.admit`).
            now: The current time.
            day: The budget day it counts on (default: `now`'s UTC date).

        Returns:
            False when the key exists already (nothing changed): one work order per key.
        """
        counted = (day or now.date()).isoformat() if admission.state is WoState.PENDING else None
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO work_orders VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
                (
                    wo.key,
                    admission.state.value,
                    wo.priority.value,
                    wo.team,
                    wo.asset,
                    wo.asset_class,
                    wo.profile,
                    wo.target,
                    wo.alert_id,
                    admission.reason,
                    counted,
                    _ts(wo.created_at),
                    _ts(now),
                    _ts(wo.respond_by),
                    wo.model_dump_json(),
                ),
            )
            if cur.rowcount == 0:
                return False
            if admission.state is WoState.PENDING:
                self._enqueue(db, wo.key, "create", now)
        log.info(
            "work_order_added", key=wo.key, state=admission.state.value, reason=admission.reason
        )
        return True

    def get(self, key: str) -> WorkOrderRecord:
        """The work order with this key.

        Raises:
            KeyError: No such key.
        """
        row = self._db.execute("SELECT * FROM work_orders WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return self._record(row)

    def find_external(self, external_id: str) -> WorkOrderRecord | None:
        """The work order the service system knows by `external_id`."""
        row = self._db.execute(
            "SELECT * FROM work_orders WHERE external_id = ?", (external_id,)
        ).fetchone()
        return None if row is None else self._record(row)

    def work_orders(
        self, *, state: WoState | None = None, limit: int = 1000
    ) -> list[WorkOrderRecord]:
        """Work orders, newest first."""
        sql = "SELECT * FROM work_orders"
        args: tuple[Any, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state.value,)
        rows = self._db.execute(sql + " ORDER BY created_at DESC, key LIMIT ?", (*args, limit))
        return [self._record(r) for r in rows]

    def sent_today(self, team: str, day: dt.date) -> int:
        """Work orders of `team` admitted to the outbox on `day` (the budget's count)."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM work_orders WHERE team = ? AND admitted_on = ?",
            (team, day.isoformat()),
        ).fetchone()
        return int(row[0])

    def transition(
        self,
        key: str,
        event: WoEvent,
        *,
        now: dt.datetime,
        source: str,
        external_id: str | None = None,
        reason: str | None = None,
    ) -> WoState:
        """Apply `event` to a work order (and queue what it implies).

        ``approve`` and ``retry`` queue the create; ``cancel`` of a delivered work order queues a
        cancel call (unless the service system itself cancelled: `source` ``service_system``).

        Args:
            key: The work order.
            event: What happened.
            now: The current time.
            source: Who did it (``planner``, ``scorer``, ``cli``...), for the history.
            external_id: The service system's id, when this event brings it.
            reason: Recorded on the work order (sent with a cancel).

        Raises:
            KeyError: No such key.
            IllegalWorkOrderTransition: The state does not allow `event`.
        """
        with self._tx() as db:
            state = self._transition(
                db, key, event, now=now, source=source, external_id=external_id
            )
            if reason is not None:
                db.execute("UPDATE work_orders SET reason = ? WHERE key = ?", (reason, key))
            return state

    def _transition(
        self,
        db: sqlite3.Connection,
        key: str,
        event: WoEvent,
        *,
        now: dt.datetime,
        source: str,
        external_id: str | None = None,
    ) -> WoState:
        row = db.execute(
            "SELECT state, external_id FROM work_orders WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            raise KeyError(key)
        old = WoState(row["state"])
        new = apply(old, event)
        ext = external_id or row["external_id"]
        admitted = ", admitted_on = ?" if event is WoEvent.APPROVE else ""
        args: tuple[Any, ...] = (new.value, ext, _ts(now))
        if admitted:
            args += (now.date().isoformat(),)
        db.execute(
            f"UPDATE work_orders SET state = ?, external_id = ?, updated_at = ?{admitted} "  # noqa: S608 - fixed text
            "WHERE key = ?",
            (*args, key),
        )
        db.execute(
            "INSERT INTO wo_events (key, at, event, old, new, source) VALUES (?, ?, ?, ?, ?, ?)",
            (key, _ts(now), event.value, old.value, new.value, source),
        )
        if event in {WoEvent.APPROVE, WoEvent.RETRY}:
            self._enqueue(db, key, "create", now)
        if event in {WoEvent.CANCEL, WoEvent.REJECT} and source != "service_system":
            # A create not yet sent is dropped; one that may have reached the service system
            # (attempted) is followed by a cancel, which looks the key up when it has no id.
            row = db.execute(
                "SELECT attempts FROM outbox WHERE key = ? AND op = 'create'", (key,)
            ).fetchone()
            db.execute(
                "UPDATE outbox SET status = 'cancelled' "
                "WHERE key = ? AND op = 'create' AND status IN ('queued', 'dead')",
                (key,),
            )
            if ext is not None or (row is not None and row["attempts"] > 0):
                self._enqueue(db, key, "cancel", now)
        if new is not old or event is not WoEvent.UPDATED:
            log.info(
                "work_order_state_changed",
                key=key,
                wo_event=event.value,
                old=old.value,
                new=new.value,
                source=source,
            )
        return new

    def update(self, wo: WorkOrder, *, now: dt.datetime, source: str) -> WoState:
        """New content for an existing work order (priority, evidence, due-by...).

        Not yet delivered: the create will carry it. Delivered and open: an update call is
        queued. Done (resolved, closed, cancelled, rejected): nothing changes.

        Raises:
            KeyError: No work order with this key.
        """
        with self._tx() as db:
            row = db.execute("SELECT state FROM work_orders WHERE key = ?", (wo.key,)).fetchone()
            if row is None:
                raise KeyError(wo.key)
            state = WoState(row["state"])
            if state not in OPEN_STATES:
                return state
            db.execute(
                "UPDATE work_orders SET payload = ?, priority = ?, respond_by = ?, updated_at = ? "
                "WHERE key = ?",
                (wo.model_dump_json(), wo.priority.value, _ts(wo.respond_by), _ts(now), wo.key),
            )
            if UPDATED_OK.get(state):
                self._enqueue(db, wo.key, "update", now)
                return self._transition(db, wo.key, WoEvent.UPDATED, now=now, source=source)
            return state

    def events(self, key: str) -> list[dict[str, str]]:
        """The state history of a work order."""
        rows = self._db.execute(
            "SELECT at, event, old, new, source FROM wo_events WHERE key = ? ORDER BY id", (key,)
        )
        return [dict(r) for r in rows]

    def _record(self, row: sqlite3.Row) -> WorkOrderRecord:
        return WorkOrderRecord(
            work_order=WorkOrder.model_validate_json(row["payload"]),
            state=WoState(row["state"]),
            reason=row["reason"],
            external_id=row["external_id"],
            updated_at=_dt(row["updated_at"]),
        )

    # ---------------------------------------------------------------- outbox

    def _enqueue(self, db: sqlite3.Connection, key: str, op: str, now: dt.datetime) -> None:
        db.execute(
            "INSERT INTO outbox VALUES (?, ?, 'queued', 0, ?, 0, NULL) "
            "ON CONFLICT (key, op) DO UPDATE SET status = 'queued', attempts = 0, "
            "next_attempt_at = excluded.next_attempt_at",
            (key, op, _ts(now)),
        )

    def outbox(self, *, status: str | None = None) -> list[OutboxItem]:
        """Outbox rows (``queued``, ``done``, ``dead``), oldest first."""
        rows = self._db.execute(
            "SELECT * FROM outbox WHERE ? IS NULL OR status = ? ORDER BY next_attempt_at, key",
            (status, status),
        )
        return [self._item(r) for r in rows]

    def due(self, now: dt.datetime, *, limit: int = 100) -> list[OutboxItem]:
        """Queued rows whose next attempt is due at `now`."""
        rows = self._db.execute(
            "SELECT * FROM outbox WHERE status = 'queued' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, key LIMIT ?",
            (_ts(now), limit),
        )
        return [self._item(r) for r in rows]

    def next_due_at(self) -> dt.datetime | None:
        """When the next queued row is due; None when the outbox is empty."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'queued'"
        ).fetchone()
        return None if row[0] is None else _dt(row[0])

    def begin_attempt(
        self, item: OutboxItem, *, now: dt.datetime, retry_at: dt.datetime
    ) -> OutboxItem:
        """Count an attempt and mark it uncertain *before* the request leaves (committed).

        Args:
            item: The row.
            now: The attempt's time.
            retry_at: When to try again if this attempt never reports back (killed).

        Returns:
            The row as it was before this attempt (its ``uncertain`` says whether an earlier
            attempt may have created the work order).
        """
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM outbox WHERE key = ? AND op = ?", (item.key, item.op)
            ).fetchone()
            before = self._item(row)
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, uncertain = 1, next_attempt_at = ? "
                "WHERE key = ? AND op = ?",
                (_ts(retry_at), item.key, item.op),
            )
            db.execute(
                "INSERT INTO deliveries (key, op, attempt, at, outcome, detail) "
                "VALUES (?, ?, ?, ?, 'started', ?)",
                (
                    item.key,
                    item.op,
                    before.attempts + 1,
                    _ts(now),
                    "lookup" if before.uncertain else "send",
                ),
            )
        return before

    def succeed(
        self, item: OutboxItem, *, now: dt.datetime, external_id: str | None, outcome: str
    ) -> None:
        """The call succeeded (``created``, ``found`` by key, ``updated``, ``cancelled``)."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET status = 'done', uncertain = 0, last_error = NULL "
                "WHERE key = ? AND op = ?",
                (item.key, item.op),
            )
            db.execute(
                "INSERT INTO deliveries (key, op, attempt, at, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (item.key, item.op, item.attempts + 1, _ts(now), outcome, external_id or ""),
            )
            if item.op == "create":
                state = WoState(
                    db.execute(
                        "SELECT state FROM work_orders WHERE key = ?", (item.key,)
                    ).fetchone()[0]
                )
                if state in {WoState.PENDING, WoState.FAILED}:
                    self._transition(
                        db,
                        item.key,
                        WoEvent.DELIVERED,
                        now=now,
                        source="outbox",
                        external_id=external_id,
                    )
                else:  # A status callback overtook the answer: keep its state, record the id.
                    db.execute(
                        "UPDATE work_orders SET external_id = COALESCE(external_id, ?) "
                        "WHERE key = ?",
                        (external_id, item.key),
                    )

    def fail(
        self,
        item: OutboxItem,
        *,
        now: dt.datetime,
        reason: str,
        detail: str,
        uncertain: bool,
        retry_at: dt.datetime | None,
    ) -> None:
        """The call failed: retry at `retry_at`, or dead-letter (`retry_at` None)."""
        with self._tx() as db:
            status = "queued" if retry_at is not None else "dead"
            db.execute(
                "UPDATE outbox SET status = ?, uncertain = ?, last_error = ?, "
                "next_attempt_at = COALESCE(?, next_attempt_at) WHERE key = ? AND op = ?",
                (
                    status,
                    int(uncertain),
                    f"{reason}: {detail}",
                    _ts(retry_at) if retry_at else None,
                    item.key,
                    item.op,
                ),
            )
            db.execute(
                "INSERT INTO deliveries (key, op, attempt, at, outcome, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (item.key, item.op, item.attempts + 1, _ts(now), reason, detail),
            )
            if status == "dead" and item.op == "create":
                self._transition(db, item.key, WoEvent.DEAD_LETTER, now=now, source="outbox")

    def deliveries(self, key: str | None = None) -> list[dict[str, Any]]:
        """The delivery log (every attempt and its outcome)."""
        sql = "SELECT key, op, attempt, at, outcome, detail FROM deliveries"
        rows = self._db.execute(
            sql + (" WHERE key = ?" if key else "") + " ORDER BY id", (key,) if key else ()
        )
        return [dict(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Work orders per state and outbox rows per status, for metrics and ``list``."""
        out: dict[str, int] = {}
        for row in self._db.execute("SELECT state, COUNT(*) FROM work_orders GROUP BY state"):
            out[f"work_orders_{row[0]}"] = row[1]
        for row in self._db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status"):
            out[f"outbox_{row[0]}"] = row[1]
        return out

    @staticmethod
    def _item(row: sqlite3.Row) -> OutboxItem:
        return OutboxItem(
            key=row["key"],
            op=row["op"],
            status=row["status"],
            attempts=row["attempts"],
            next_attempt_at=_dt(row["next_attempt_at"]),
            uncertain=bool(row["uncertain"]),
            last_error=row["last_error"],
        )

    # ---------------------------------------------------------------- alerts

    def save_alert(self, alert: Alert) -> None:
        """Insert or overwrite an alert's record as given (blind: imports and test set-up).

        Live writers use `insert_alert` and `apply_alert_event`, which never lose another
        writer's change; this one bumps the version, so their compare-and-set still holds.
        """
        with self._tx() as db:
            db.execute(
                "INSERT INTO alerts (alert_id, asset, target, state, updated_at, record, version) "
                "VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (alert_id) DO UPDATE SET "
                "state = excluded.state, updated_at = excluded.updated_at, "
                "record = excluded.record, version = alerts.version + 1",
                _alert_row(alert),
            )

    def insert_alert(self, alert: Alert, *, source: str) -> bool:
        """Store a newly raised alert; an alert already stored under its id is kept as it is.

        Args:
            alert: The alert the engine raised.
            source: Who raised it (``scorer``), for the history.

        Returns:
            False when the id existed (nothing changed: the stored alert has the say).
        """
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO alerts "
                "(alert_id, asset, target, state, updated_at, record, version) "
                "VALUES (?, ?, ?, ?, ?, ?, 1)",
                _alert_row(alert),
            )
            if cur.rowcount == 0:
                return False
            db.execute(
                "INSERT INTO alert_events (alert_id, at, event, old, new, source, version) "
                "VALUES (?, ?, 'raise', '', ?, ?, 1)",
                (alert.alert_id, _ts(alert.updated_at), alert.state.value, source),
            )
        return True

    def apply_alert_event(
        self,
        alert_id: str,
        event: AlertEvent,
        *,
        now: dt.datetime,
        source: str,
        until: dt.datetime | None = None,
        reason: str | None = None,
        observed: Alert | None = None,
    ) -> Alert:
        """Apply one lifecycle event to the stored alert: compare-and-set, never a lost update.

        Reads the alert and its version, applies `cloud.alerting.transition` (the one table) to
        the state *as stored now*, and writes with ``UPDATE ... WHERE version = ?`` inside one
        ``BEGIN IMMEDIATE`` transaction, with a row in ``alert_events``. A conflict (the version
        moved) rolls back and tries again, up to `ALERT_CAS_ATTEMPTS` times. So a planner's
        acknowledge and the scorer's resolve that race are both applied, in some order, or the
        second is refused because the first made it illegal.

        Args:
            alert_id: The alert.
            event: What happened.
            now: The current time.
            source: Who did it (``api:alice``, ``scorer``, ``service_system``), for the history.
            until: For snooze: when it wakes.
            reason: Recorded on the alert (defaults to the event's name).
            observed: The scorer's view of the alert after the change (its engine's copy): its
                score fields (latest score, peak, opened and resolved times, reason) are kept.

        Returns:
            The alert as stored after the event.

        Raises:
            KeyError: No such alert.
            IllegalAlertTransition: The stored state does not allow `event` (nothing changed).
            ValueError: A snooze without a future `until`.
            AlertConflictError: Every attempt lost to another writer.
        """
        for _attempt in range(ALERT_CAS_ATTEMPTS):
            with self._tx() as db:
                changed = self._alert_cas(
                    db,
                    alert_id,
                    event,
                    now=now,
                    source=source,
                    until=until,
                    reason=reason,
                    observed=observed,
                )
            if changed is not None:
                return changed
            log.debug("alert_version_conflict", alert=alert_id, alert_event=event.value)
        raise AlertConflictError(
            f"alert {alert_id!r} kept changing: {event.value!r} not applied after "
            f"{ALERT_CAS_ATTEMPTS} attempts",
            alert_id=alert_id,
            attempts=ALERT_CAS_ATTEMPTS,
        )

    def save_alert_change(self, change: AlertChange, *, source: str) -> Alert | None:
        """Store one change the alert engine made (the scorer's save path).

        A raised alert is inserted (`insert_alert`); any other change is applied as its event
        to the alert *as stored* (`apply_alert_event`, keeping the engine's score fields). When
        the stored state no longer allows it (a planner closed the alert meanwhile), the stored
        alert wins: the change is dropped and logged, and the engine takes the stored alert in
        on its next ``restore``.

        Returns:
            The alert as stored after the change, or None when it was not applied.
        """
        alert = change.alert
        if change.event is None:
            return alert if self.insert_alert(alert, source=source) else None
        try:
            return self.apply_alert_event(
                alert.alert_id, change.event, now=alert.updated_at, source=source, observed=alert
            )
        except (KeyError, IllegalAlertTransition) as exc:
            log.info(
                "alert_change_superseded",
                alert=alert.alert_id,
                alert_event=change.event.value,
                stored=None if isinstance(exc, KeyError) else exc.state.value,
            )
            return None

    def _alert_cas(
        self,
        db: sqlite3.Connection,
        alert_id: str,
        event: AlertEvent,
        *,
        now: dt.datetime,
        source: str,
        until: dt.datetime | None = None,
        reason: str | None = None,
        observed: Alert | None = None,
    ) -> Alert | None:
        """One compare-and-set attempt inside `db`'s transaction; None on a version conflict."""
        row = db.execute(
            "SELECT record, version FROM alerts WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        if row is None:
            raise KeyError(alert_id)
        stored = alert_from_record(row["record"])
        version = int(row["version"])
        changed = alert_transition(stored, event, now=now, until=until, reason=reason)
        if observed is not None:
            changed = dataclasses.replace(
                changed,
                opened_at=observed.opened_at,
                last_score=observed.last_score,
                last_score_at=observed.last_score_at,
                peak=observed.peak,
                reason=observed.reason,
                resolved_at=observed.resolved_at
                if event is AlertEvent.RESOLVE
                else changed.resolved_at,
            )
        cur = db.execute(
            "UPDATE alerts SET state = ?, updated_at = ?, record = ?, version = version + 1 "
            "WHERE alert_id = ? AND version = ?",
            (changed.state.value, _ts(changed.updated_at), _alert_json(changed), alert_id, version),
        )
        if cur.rowcount != 1:
            return None
        db.execute(
            "INSERT INTO alert_events (alert_id, at, event, old, new, source, version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                alert_id,
                _ts(now),
                event.value,
                stored.state.value,
                changed.state.value,
                source,
                version + 1,
            ),
        )
        return changed

    def alert_events(self, alert_id: str) -> list[dict[str, Any]]:
        """The lifecycle history of an alert, oldest first (one row per applied event)."""
        rows = self._db.execute(
            "SELECT at, event, old, new, source, version FROM alert_events "
            "WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        )
        return [dict(r) for r in rows]

    def get_alert(self, alert_id: str) -> tuple[Alert, int] | None:
        """The stored alert and its version; None when unknown."""
        row = self._db.execute(
            "SELECT record, version FROM alerts WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        return None if row is None else (alert_from_record(row["record"]), int(row["version"]))

    def alerts(self) -> list[Alert]:
        """Every saved alert (for `AlertEngine.restore`), by id."""
        rows = self._db.execute("SELECT record FROM alerts ORDER BY alert_id")
        return [alert_from_record(row[0]) for row in rows]

    def alert_state(self, alert_id: str) -> AlertState | None:
        """The stored state of an alert; None when unknown."""
        row = self._db.execute(
            "SELECT state FROM alerts WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        return None if row is None else AlertState(row[0])

    def _alert_event(
        self,
        db: sqlite3.Connection,
        alert_id: str,
        event: AlertEvent,
        now: dt.datetime,
        reason: str,
    ) -> None:
        # Inside the caller's BEGIN IMMEDIATE: the version cannot move between read and write.
        state = db.execute("SELECT state FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        if state is None or event not in ALERT_TRANSITIONS[AlertState(state[0])]:
            return  # Unknown, or already resolved or closed: the work order's news changes nothing.
        self._alert_cas(db, alert_id, event, now=now, source="work_order", reason=reason)

    # ---------------------------------------------------------------- feedback

    def apply_status(
        self,
        key: str,
        event: WoEvent,
        *,
        now: dt.datetime,
        external_id: str | None,
        feedback: Feedback | None,
    ) -> WoState:
        """A status from the service system: move the work order, its alert, labels and cases.

        A status equal to the current state is a no-op (callbacks repeat). ``resolved`` resolves
        the alert and stores the feedback as a label; ``closed`` closes the alert and adds the
        work order to the case library.

        Raises:
            KeyError: Unknown key.
            IllegalWorkOrderTransition: The state does not allow the status.
        """
        with self._tx() as db:
            rec = self._record(
                db.execute("SELECT * FROM work_orders WHERE key = ?", (key,)).fetchone()
                or _missing(key)
            )
            wo = rec.work_order
            state = rec.state
            if STATUS_STATE.get(event) is not state:  # Callbacks repeat: same status, no-op.
                state = self._transition(
                    db, key, event, now=now, source="service_system", external_id=external_id
                )
            if feedback is not None and event in {WoEvent.RESOLVED, WoEvent.CLOSED}:
                db.execute(
                    "INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        wo.asset,
                        wo.profile,
                        wo.target,
                        _ts(now),
                        _bool(feedback.failure_confirmed),
                        feedback.root_cause,
                        json.dumps(list(feedback.parts_used)),
                        feedback.resolution_mode,
                    ),
                )
            if wo.alert_id and event is WoEvent.RESOLVED:
                self._alert_event(db, wo.alert_id, AlertEvent.RESOLVE, now, "work_order_resolved")
            if event is WoEvent.CLOSED:
                if wo.alert_id:
                    self._alert_event(db, wo.alert_id, AlertEvent.CLOSE, now, "work_order_closed")
                label = db.execute("SELECT * FROM labels WHERE key = ?", (key,)).fetchone()
                db.execute(
                    "INSERT OR REPLACE INTO cases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        wo.asset,
                        wo.profile,
                        wo.target,
                        _ts(now),
                        label["failure_confirmed"] if label else None,
                        label["root_cause"] if label else "",
                        label["parts_used"] if label else "[]",
                        label["resolution_mode"] if label else None,
                    ),
                )
        return state

    def labels(self) -> list[dict[str, Any]]:
        """The stored feedback labels (for retraining)."""
        rows = self._db.execute("SELECT * FROM labels ORDER BY at, key")
        return [dict(r) | {"parts_used": json.loads(r["parts_used"])} for r in rows]

    def similar_cases(self, profile: str, target: str, *, limit: int = 3) -> list[SimilarCase]:
        """Closed work orders of the same failure mode (or consumable), newest first.

        Those of the same profile come first, then other profiles' (a bearing is a bearing).
        """
        rows = list(
            self._db.execute(
                "SELECT * FROM cases WHERE target = ? "
                "ORDER BY profile = ? DESC, closed_at DESC, key LIMIT ?",
                (target, profile, limit),
            )
        )
        return [
            SimilarCase(
                key=r["key"],
                asset=r["asset"],
                closed_at=_dt(r["closed_at"]),
                failure_confirmed=None
                if r["failure_confirmed"] is None
                else bool(r["failure_confirmed"]),
                root_cause=r["root_cause"],
                parts_used=tuple(json.loads(r["parts_used"])),
                resolution_mode=r["resolution_mode"],
            )
            for r in rows
        ]

    # ---------------------------------------------------------------- inbound replay, SLA

    def remember_webhook(self, msg_id: str, *, now: dt.datetime, keep: dt.timedelta) -> bool:
        """Record an inbound webhook id; False when it was seen already (a replay).

        Ids older than `keep` (twice the signature tolerance is enough: older messages are
        refused as stale anyway) are forgotten.
        """
        with self._tx() as db:
            db.execute("DELETE FROM seen_webhooks WHERE at < ?", (_ts(now - keep),))
            cur = db.execute(
                "INSERT OR IGNORE INTO seen_webhooks VALUES (?, ?)", (msg_id, _ts(now))
            )
            return cur.rowcount == 1

    def forget_webhook(self, msg_id: str) -> None:
        """Forget an inbound webhook id (its processing failed; a retry may reuse it)."""
        with self._tx() as db:
            db.execute("DELETE FROM seen_webhooks WHERE msg_id = ?", (msg_id,))

    def sla_done(self) -> set[tuple[str, int]]:
        """(key, step) of every SLA notification sent."""
        return {(r[0], r[1]) for r in self._db.execute("SELECT key, step FROM sla_notifications")}

    def mark_sla(self, key: str, step: int, *, action: str, now: dt.datetime) -> None:
        """Record that a step was sent."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO sla_notifications VALUES (?, ?, ?, ?)",
                (key, step, _ts(now), action),
            )


_ALERT_TIMES = (
    "opened_at",
    "updated_at",
    "last_score_at",
    "snoozed_until",
    "resolved_at",
    "closed_at",
)


def _alert_json(alert: Alert) -> str:
    return json.dumps(
        dataclasses.asdict(alert),
        default=lambda v: v.isoformat() if isinstance(v, dt.datetime) else str(v),
    )


def _alert_row(alert: Alert) -> tuple[str, str, str, str, str, str]:
    return (
        alert.alert_id,
        alert.asset,
        alert.target,
        alert.state.value,
        _ts(alert.updated_at),
        _alert_json(alert),
    )


def alert_from_record(record: str) -> Alert:
    """An `Alert` from its stored JSON record (the inverse of `Store.save_alert`)."""
    r = json.loads(record)
    for name in _ALERT_TIMES:
        r[name] = None if r.get(name) in {None, "None"} else _dt(r[name])
    r["state"] = AlertState(r["state"])
    return Alert(**r)


def _missing(key: str) -> sqlite3.Row:
    raise KeyError(key)


def _bool(value: bool | None) -> int | None:  # noqa: FBT001 - a tri-state column value
    return None if value is None else int(value)
