"""Reading what the reports count: the decision store (SQLite, read-only) and InfluxDB.

The work-order store (`cloud.workorders.Store`) has no time-ranged queries, so the reports read
its file through a read-only SQLite connection of their own (WAL lets them run beside the scorer
and the delivery worker); the tables and columns are those of ``cloud/workorders/_store.py``.
InfluxDB is read with InfluxQL over `cloud.store`: names through `quote_ident`, values through
`quote_literal`, times as integer nanoseconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

from cloud.reports._period import Period
from cloud.store import InfluxClient, as_float, as_ns, as_time, quote_ident, quote_literal, tag_in
from cloud.workorders import WorkOrder, WoState

RESPONDED: Final = frozenset(
    {WoState.ASSIGNED, WoState.IN_PROGRESS, WoState.RESOLVED, WoState.CLOSED}
)
"""States that show the service system responded (took the work up)."""
SCORES: Final = "scores"
TELEMETRY: Final = "telemetry"
GATEWAY_STATUS: Final = "gateway_status"
_CHUNK: Final = 50
"""Assets per InfluxQL regex filter (keeps each query short)."""


def _time(value: object) -> dt.datetime | None:
    if value in {None, "", "None"}:
        return None
    return dt.datetime.fromisoformat(str(value))


@dataclasses.dataclass(frozen=True, slots=True)
class Label:
    """The service system's feedback on a work order (`cloud.workorders.Feedback`, stored)."""

    failure_confirmed: bool | None
    root_cause: str
    parts_used: tuple[str, ...]
    resolution_mode: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class WoFacts:
    """One work order with the times the reports need, from its state history.

    Attributes:
        wo: The work order as created (customer, priority, deadlines...).
        state: Its state now.
        responded_at: First move into assigned, in progress, resolved or closed.
        started_at: First move into in progress.
        resolved_at: First move into resolved (or closed, when it was never resolved).
        reopened: It went from resolved back to in progress at least once.
        label: The feedback, if the service system sent any.
    """

    wo: WorkOrder
    state: WoState
    responded_at: dt.datetime | None
    started_at: dt.datetime | None
    resolved_at: dt.datetime | None
    reopened: bool
    label: Label | None

    @property
    def resolution_mode(self) -> str:
        """Remote or on-site: the feedback's, else what the work order suggested."""
        if self.label is not None and self.label.resolution_mode:
            return self.label.resolution_mode
        return self.wo.resolution_mode


@dataclasses.dataclass(frozen=True, slots=True)
class AlertFacts:
    """One alert: when it opened and how far it got."""

    alert_id: str
    asset: str
    target: str
    state: str
    opened_at: dt.datetime
    peak: float | None


def connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store file.

    Raises:
        FileNotFoundError: The file does not exist (a read-only open would not create it).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such work-order store")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    return db


def read_work_orders(db: sqlite3.Connection) -> list[WoFacts]:
    """Every work order of the store with its response, start and resolution times."""
    events: dict[str, list[sqlite3.Row]] = defaultdict(list)
    for row in db.execute("SELECT key, at, old, new FROM wo_events ORDER BY id"):
        events[row["key"]].append(row)
    labels = {
        row["key"]: Label(
            failure_confirmed=None
            if row["failure_confirmed"] is None
            else bool(row["failure_confirmed"]),
            root_cause=row["root_cause"],
            parts_used=tuple(json.loads(row["parts_used"])),
            resolution_mode=row["resolution_mode"],
        )
        for row in db.execute("SELECT * FROM labels")
    }
    out = []
    for row in db.execute("SELECT key, state, payload FROM work_orders ORDER BY created_at, key"):
        responded = started = resolved = closed = None
        reopened = False
        for ev in events.get(row["key"], ()):
            at, old, new = _time(ev["at"]), ev["old"], ev["new"]
            if new in RESPONDED and responded is None:
                responded = at
            if new == WoState.IN_PROGRESS and started is None:
                started = at
            if new == WoState.RESOLVED and resolved is None:
                resolved = at
            if new == WoState.CLOSED and closed is None:
                closed = at
            if old == WoState.RESOLVED and new == WoState.IN_PROGRESS:
                reopened = True
        out.append(
            WoFacts(
                wo=WorkOrder.model_validate_json(row["payload"]),
                state=WoState(row["state"]),
                responded_at=responded,
                started_at=started,
                resolved_at=resolved or closed,
                reopened=reopened,
                label=labels.get(row["key"]),
            )
        )
    return out


def read_alerts(db: sqlite3.Connection) -> list[AlertFacts]:
    """Every alert of the store."""
    out = []
    for row in db.execute("SELECT alert_id, asset, target, state, record FROM alerts"):
        record = json.loads(row["record"])
        opened = _time(record.get("opened_at"))
        if opened is None:
            continue
        peak = record.get("peak")
        out.append(
            AlertFacts(
                alert_id=row["alert_id"],
                asset=row["asset"],
                target=row["target"],
                state=row["state"],
                opened_at=opened,
                peak=float(peak) if isinstance(peak, int | float) else None,
            )
        )
    return out


# ---------------------------------------------------------------- InfluxDB


def _asset_filters(assets: Sequence[str]) -> Iterator[str]:
    """``asset =~ /^(a|b)$/`` clauses, `_CHUNK` assets each."""
    for i in range(0, len(assets), _CHUNK):
        yield tag_in("asset", assets[i : i + _CHUNK])


@dataclasses.dataclass(frozen=True, slots=True)
class LatestScore:
    """The last score of one (asset, target) in a period."""

    asset: str
    target: str
    model_name: str
    model_version: str
    time: dt.datetime
    health: float | None
    probability: float | None
    rul: float | None
    rul_lo: float | None
    rul_hi: float | None


def latest_scores(
    influx: InfluxClient, assets: Sequence[str], *, before: dt.datetime, since: dt.datetime
) -> list[LatestScore]:
    """The last score of every (asset, target, model) in ``[since, before)``."""
    fields = ", ".join(quote_ident(f) for f in ("health", "probability", "rul", "rul_lo", "rul_hi"))
    group = ", ".join(quote_ident(t) for t in ("asset", "target", "model_name", "model_version"))
    out: list[LatestScore] = []
    for where in _asset_filters(assets):
        q = (
            f"SELECT {fields} FROM {quote_ident(SCORES)} WHERE {where} "  # noqa: S608 - quoted
            f"AND time >= {as_ns(since)} AND time < {as_ns(before)} "
            f"GROUP BY {group} ORDER BY time DESC LIMIT 1"
        )
        out.extend(
            LatestScore(
                asset=str(r.get("asset") or ""),
                target=str(r.get("target") or ""),
                model_name=str(r.get("model_name") or ""),
                model_version=str(r.get("model_version") or ""),
                time=as_time(r["time"]),
                health=as_float(r.get("health")),
                probability=as_float(r.get("probability")),
                rul=as_float(r.get("rul")),
                rul_lo=as_float(r.get("rul_lo")),
                rul_hi=as_float(r.get("rul_hi")),
            )
            for r in influx.query(q).rows()
        )
    return out


def health_series(
    influx: InfluxClient, assets: Sequence[str], period: Period, *, every: str = "1d"
) -> dict[str, list[tuple[dt.datetime, float]]]:
    """Per asset, the lowest health of any target per `every` bucket (empty ones left out)."""
    out: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    for where in _asset_filters(assets):
        q = (
            f"SELECT min({quote_ident('health')}) AS {quote_ident('health')} "  # noqa: S608
            f"FROM {quote_ident(SCORES)} WHERE {where} "
            f"AND time >= {as_ns(period.start)} AND time < {as_ns(period.end)} "
            f"GROUP BY time({every}), {quote_ident('asset')} fill(none)"
        )
        for r in influx.query(q).rows():
            value = as_float(r.get("health"))
            if value is not None:
                out[str(r["asset"])].append((as_time(r["time"]), value))
    return dict(out)


def period_extremes(
    influx: InfluxClient, assets: Sequence[str], period: Period
) -> dict[str, tuple[float | None, float | None]]:
    """Per asset, (lowest health, highest failure probability) over the period."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for where in _asset_filters(assets):
        q = (
            f"SELECT min({quote_ident('health')}) AS lo, "  # noqa: S608 - quoted
            f"max({quote_ident('probability')}) AS hi FROM {quote_ident(SCORES)} WHERE {where} "
            f"AND time >= {as_ns(period.start)} AND time < {as_ns(period.end)} "
            f"GROUP BY {quote_ident('asset')}"
        )
        for r in influx.query(q).rows():
            out[str(r["asset"])] = (as_float(r.get("lo")), as_float(r.get("hi")))
    return out


def scoring_models(
    influx: InfluxClient, wanted: Iterable[tuple[str, str, dt.datetime]]
) -> dict[tuple[str, str, dt.datetime], str]:
    """Which model scored (asset, target) last before each time: ``name@version``.

    One ``SELECT last(health) ... GROUP BY model_name, model_version`` per work order, sent
    in batches of statements; the series with the latest point wins. Missing: not in the map.
    """
    keys = list(dict.fromkeys(wanted))
    out: dict[tuple[str, str, dt.datetime], str] = {}
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        statements = [
            f"SELECT last({quote_ident('health')}) FROM {quote_ident(SCORES)} "  # noqa: S608
            f"WHERE {quote_ident('asset')} = {quote_literal(asset)} "
            f"AND {quote_ident('target')} = {quote_literal(target)} "
            f"AND time <= {as_ns(at)} AND time > {as_ns(at - dt.timedelta(days=30))} "
            f"GROUP BY {quote_ident('model_name')}, {quote_ident('model_version')}"
            for asset, target, at in chunk
        ]
        result = influx.query("; ".join(statements))
        for key, statement in zip(chunk, result.statements, strict=True):
            best: tuple[dt.datetime, str] | None = None
            for series in statement.series:
                for row in series.rows():
                    name = f"{row.get('model_name')}@{row.get('model_version')}"
                    when = as_time(row["time"])
                    if best is None or when > best[0]:
                        best = (when, name)
            if best is not None:
                out[key] = best[1]
    return out


def asset_gateways(influx: InfluxClient) -> dict[str, set[str]]:
    """The gateways each asset's telemetry came through (``SHOW SERIES FROM telemetry``)."""
    out: dict[str, set[str]] = defaultdict(set)
    for r in influx.query(f"SHOW SERIES FROM {quote_ident(TELEMETRY)}").rows():
        tags = dict(
            part.split("=", 1) for part in str(r.get("key", "")).split(",")[1:] if "=" in part
        )
        if "asset" in tags and "gateway" in tags:
            out[tags["asset"]].add(tags["gateway"])
    return dict(out)


def gateway_offline(
    influx: InfluxClient, gateways: Iterable[str], period: Period
) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """Per gateway, the intervals inside the period it was offline (``gateway_status``).

    A gateway is offline from an ``offline`` status (its Last Will, or a clean stop) until its
    next ``online`` one; its state at the period's start is its last status before it. A
    gateway that never reported a status counts as online.
    """
    out: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    online = quote_ident("online")
    gw = quote_ident("gateway")
    for name in sorted(set(gateways)):
        where = f"{gw} = {quote_literal(name)}"
        before = list(
            influx.query(
                f"SELECT last({online}) AS {online} FROM {quote_ident(GATEWAY_STATUS)} "  # noqa: S608
                f"WHERE {where} AND time < {as_ns(period.start)}"
            ).rows()
        )
        changes = [
            (as_time(r["time"]), bool(r.get("online")))
            for r in influx.query(
                f"SELECT {online} FROM {quote_ident(GATEWAY_STATUS)} WHERE {where} "  # noqa: S608
                f"AND time >= {as_ns(period.start)} AND time < {as_ns(period.end)} "
                "ORDER BY time ASC"
            ).rows()
        ]
        state_online = bool(before[0].get("online")) if before else True
        down_since = None if state_online else period.start
        spans = []
        for when, is_online in changes:
            if is_online and down_since is not None:
                spans.append((down_since, when))
                down_since = None
            elif not is_online and down_since is None:
                down_since = when
        if down_since is not None:
            spans.append((down_since, period.end))
        out[name] = spans
    return out


def telemetry_hours(influx: InfluxClient, assets: Sequence[str], period: Period) -> dict[str, int]:
    """Per asset, the hours of the period with at least one stored reading."""
    out: dict[str, int] = defaultdict(int)
    for where in _asset_filters(assets):
        q = (
            f"SELECT count(*) FROM {quote_ident(TELEMETRY)} WHERE {where} "  # noqa: S608
            f"AND time >= {as_ns(period.start)} AND time < {as_ns(period.end)} "
            f"GROUP BY time(1h), {quote_ident('asset')} fill(none)"
        )
        for r in influx.query(q).rows():
            counts = [v for k, v in r.items() if k.startswith("count_") and isinstance(v, int)]
            if any(c > 0 for c in counts):
                out[str(r["asset"])] += 1
    return dict(out)
