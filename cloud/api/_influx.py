"""Reading scores and telemetry from InfluxDB for the API (InfluxQL over `cloud.store`).

Names go through `quote_ident`, asset, site and target values through bind parameters, and
times are integer nanoseconds: nothing from a request is pasted into a query as text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from cloud.store import InfluxClient, Value, as_float, as_ns, as_time, quote_ident

SCORES: Final = "scores"
TELEMETRY: Final = "telemetry"
SCORE_FIELDS: Final = ("health", "probability", "horizon_h", "rul", "rul_lo", "rul_hi")
Aggregate = Literal["mean", "min", "max", "last"]
EVERY_PATTERN: Final = r"^[1-9][0-9]{0,5}(s|m|h|d)$"
_UNIT_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NUMERIC: Final = {"float", "integer"}


def every_seconds(every: str) -> int:
    """The seconds of an InfluxQL duration matching `EVERY_PATTERN`."""
    return int(every[:-1]) * _UNIT_S[every[-1]]


_LADDER: Final = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200)


def auto_every(span: dt.timedelta, points: int) -> str:
    """A round bucket width (1s ... 12h, then whole days) giving at most `points` over `span`."""
    seconds = max(1, -(-int(span.total_seconds()) // points))
    width = next((w for w in _LADDER if w >= seconds), None)
    if width is None:
        return f"{-(-seconds // 86400)}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if width >= size:
            return f"{width // size}{unit}"
    return f"{width}s"


@dataclasses.dataclass(frozen=True, slots=True)
class ScoreRow:
    """One `scores` point of one (asset, target, model)."""

    asset: str
    target: str
    model_name: str
    model_version: str
    time: dt.datetime
    fields: Mapping[str, float | None]


def _score_rows(result_rows: Sequence[dict[str, Value]]) -> list[ScoreRow]:
    return [
        ScoreRow(
            asset=str(r.get("asset") or ""),
            target=str(r.get("target") or ""),
            model_name=str(r.get("model_name") or ""),
            model_version=str(r.get("model_version") or ""),
            time=as_time(r["time"]),
            fields={f: as_float(r.get(f)) for f in SCORE_FIELDS},
        )
        for r in result_rows
    ]


_FIELDS_SQL: Final = ", ".join(quote_ident(f) for f in SCORE_FIELDS)
_GROUP_SQL: Final = ", ".join(
    quote_ident(t) for t in ("asset", "target", "model_name", "model_version")
)


def latest_scores(
    influx: InfluxClient,
    *,
    since: dt.datetime,
    asset: str | None = None,
) -> list[ScoreRow]:
    """The latest score of every (asset, target, model) since `since`: one query for the fleet."""
    where = f"time >= {as_ns(since)}"
    params: dict[str, str] = {}
    if asset is not None:
        where += " AND asset = $asset"
        params["asset"] = asset
    q = (
        f"SELECT {_FIELDS_SQL} FROM {quote_ident(SCORES)} WHERE {where} "  # noqa: S608 - quoted names, bound values
        f"GROUP BY {_GROUP_SQL} ORDER BY time DESC LIMIT 1"
    )
    return _score_rows(list(influx.query(q, params=params or None).rows()))


def score_history(
    influx: InfluxClient,
    *,
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    target: str | None,
    limit: int,
) -> list[ScoreRow]:
    """An asset's scores between `start` and `end` (inclusive), oldest first per series."""
    where = f"asset = $asset AND time >= {as_ns(start)} AND time <= {as_ns(end)}"
    params = {"asset": asset}
    if target is not None:
        where += " AND target = $target"
        params["target"] = target
    q = (
        f"SELECT {_FIELDS_SQL} FROM {quote_ident(SCORES)} WHERE {where} "  # noqa: S608 - quoted names, bound values
        f"GROUP BY {_GROUP_SQL} ORDER BY time ASC LIMIT {int(limit)}"
    )
    return _score_rows(list(influx.query(q, params=params).rows()))


def numeric_signals(influx: InfluxClient) -> list[str]:
    """The numeric fields of `telemetry` (what can be averaged), sorted."""
    result = influx.query(f"SHOW FIELD KEYS FROM {quote_ident(TELEMETRY)}")
    return sorted(
        {str(r["fieldKey"]) for r in result.rows() if str(r.get("fieldType")) in _NUMERIC}
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Buckets:
    """Telemetry aggregated per time bucket."""

    times: list[dt.datetime]
    values: dict[str, list[float | None]]


def telemetry(
    influx: InfluxClient,
    *,
    asset: str,
    signals: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    every: str,
    aggregate: Aggregate,
) -> Buckets:
    """`aggregate` of each signal per `every` bucket between `start` (incl.) and `end` (excl.).

    Buckets without data are left out (``fill(none)``).
    """
    if re.fullmatch(EVERY_PATTERN, every) is None:
        raise ValueError(f"every must match {EVERY_PATTERN}. Got {every!r} instead.")
    cols = ", ".join(f"{aggregate}({quote_ident(s)}) AS {quote_ident(s)}" for s in signals)
    q = (
        f"SELECT {cols} FROM {quote_ident(TELEMETRY)} "  # noqa: S608 - quoted names, bound values
        f"WHERE asset = $asset AND time >= {as_ns(start)} AND time < {as_ns(end)} "
        f"GROUP BY time({every}) fill(none)"
    )
    rows = list(influx.query(q, params={"asset": asset}).rows())
    return Buckets(
        times=[as_time(r["time"]) for r in rows],
        values={s: [as_float(r.get(s)) for r in rows] for s in signals},
    )
