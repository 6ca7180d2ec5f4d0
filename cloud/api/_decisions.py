"""Reading the decision state (alerts, work orders) for the API, and the planner's actions.

Reads use a read-only SQLite connection of their own on the `cloud.workorders.Store` file (the
store has no filtered or paged queries); WAL lets them run beside the scorer and the delivery
worker. Every write goes through the store's public methods: alert lifecycle changes through
`Store.apply_alert_event` (compare-and-set, `cloud.alerting`'s one transition table), work
orders through `Store.transition`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cloud.alerting import ACTIVE_STATES, TRANSITIONS, Alert, AlertEvent, AlertState
from cloud.workorders import WoState, alert_from_record

OPEN_WO_STATES = (
    WoState.PROPOSED,
    WoState.PENDING,
    WoState.FAILED,
    WoState.CREATED,
    WoState.ASSIGNED,
    WoState.IN_PROGRESS,
)
"""Work orders still to do (the store's ``OPEN_STATES``, which it does not export)."""


def connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store file (it must exist)."""
    # One request at a time, on whichever worker thread FastAPI picks for each step.
    db = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30, check_same_thread=False
    )
    db.row_factory = sqlite3.Row
    return db


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def query_alerts(
    db: sqlite3.Connection,
    *,
    states: Sequence[AlertState] = (),
    assets: Sequence[str] | None = None,
    targets: Sequence[str] = (),
) -> list[Alert]:
    """Alerts matching the filters (SQL), unsorted.

    Args:
        db: A connection to the store file.
        states: Any of these states (all when empty).
        assets: Any of these assets (all when None; none when empty).
        targets: Any of these targets (all when empty).
    """
    sql = "SELECT record FROM alerts WHERE 1 = 1"
    args: list[object] = []
    for column, values in (("state", [s.value for s in states]), ("target", list(targets))):
        if values:
            sql += f" AND {column} IN ({_marks(values)})"
            args += values
    if assets is not None:
        if not assets:
            return []
        sql += f" AND asset IN ({_marks(assets)})"
        args += list(assets)
    return [alert_from_record(row[0]) for row in db.execute(sql, args)]


def get_alert(db: sqlite3.Connection, alert_id: str) -> Alert | None:
    """The stored alert with this id, or None."""
    row = db.execute("SELECT record FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone()
    return None if row is None else alert_from_record(row[0])


@dataclasses.dataclass(frozen=True, slots=True)
class WoRow:
    """A work order's list columns, read straight from the store's table."""

    key: str
    state: WoState
    priority: str
    alert_id: str | None
    external_id: str | None
    reason: str
    updated_at: dt.datetime
    payload: dict[str, Any]


def _wo_row(row: sqlite3.Row) -> WoRow:
    return WoRow(
        key=row["key"],
        state=WoState(row["state"]),
        priority=row["priority"],
        alert_id=row["alert_id"],
        external_id=row["external_id"],
        reason=row["reason"],
        updated_at=dt.datetime.fromisoformat(row["updated_at"]),
        payload=json.loads(row["payload"]),
    )


def work_orders_for_alerts(db: sqlite3.Connection, alert_ids: Iterable[str]) -> dict[str, WoRow]:
    """The work order of each alert that has one (the newest, should there be several)."""
    ids = list(dict.fromkeys(alert_ids))
    out: dict[str, WoRow] = {}
    # SQLite allows 32766 parameters; chunk well below.
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows = db.execute(
            f"SELECT * FROM work_orders WHERE alert_id IN ({_marks(chunk)}) "  # noqa: S608 - placeholders only
            "ORDER BY created_at",
            chunk,
        )
        for row in rows:
            out[row["alert_id"]] = _wo_row(row)
    return out


def query_work_orders(
    db: sqlite3.Connection,
    *,
    states: Sequence[WoState] = (),
    priorities: Sequence[str] = (),
    sites: Sequence[str] = (),
    assets: Sequence[str] = (),
    limit: int,
    offset: int,
) -> tuple[list[WoRow], int]:
    """Work orders matching the filters, newest first, one page; and the total that match."""
    where = " WHERE 1 = 1"
    args: list[object] = []
    for column, values in (
        ("state", [s.value for s in states]),
        ("priority", list(priorities)),
        ("json_extract(payload, '$.site')", list(sites)),
        ("asset", list(assets)),
    ):
        if values:
            where += f" AND {column} IN ({_marks(values)})"
            args += values
    total = db.execute("SELECT COUNT(*) FROM work_orders" + where, args).fetchone()[0]  # noqa: S608 - fixed text
    rows = db.execute(
        "SELECT * FROM work_orders" + where + " ORDER BY created_at DESC, key LIMIT ? OFFSET ?",  # noqa: S608 - fixed text
        [*args, limit, offset],
    )
    return [_wo_row(r) for r in rows], int(total)


def get_work_order(db: sqlite3.Connection, key: str) -> WoRow | None:
    """One work order's list columns, or None."""
    row = db.execute("SELECT * FROM work_orders WHERE key = ?", (key,)).fetchone()
    return None if row is None else _wo_row(row)


def history(db: sqlite3.Connection, key: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A work order's transitions and delivery log, oldest first.

    What `Store.events` and `Store.deliveries` read, on the read-only connection.
    """
    events = db.execute(
        "SELECT at, event, old, new, source FROM wo_events WHERE key = ? ORDER BY id", (key,)
    )
    deliveries = db.execute(
        "SELECT op, attempt, at, outcome, detail FROM deliveries WHERE key = ? ORDER BY id", (key,)
    )
    return [dict(r) for r in events], [dict(r) for r in deliveries]


def open_counts(db: sqlite3.Connection) -> tuple[dict[str, int], dict[str, int]]:
    """Per asset: active alerts, and work orders still to do."""
    states = [s.value for s in ACTIVE_STATES]
    alerts = {
        r[0]: r[1]
        for r in db.execute(
            f"SELECT asset, COUNT(*) FROM alerts WHERE state IN ({_marks(states)}) GROUP BY asset",  # noqa: S608 - placeholders only
            states,
        )
    }
    wo_states = [s.value for s in OPEN_WO_STATES]
    orders = {
        r[0]: r[1]
        for r in db.execute(
            f"SELECT asset, COUNT(*) FROM work_orders WHERE state IN ({_marks(wo_states)}) "  # noqa: S608 - placeholders only
            "GROUP BY asset",
            wo_states,
        )
    }
    return alerts, orders


def allowed_events(state: AlertState) -> list[AlertEvent]:
    """The events `state` allows, sorted (the alerting table's own order of names)."""
    return sorted(TRANSITIONS[state])
