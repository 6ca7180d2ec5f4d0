"""What a query returns: statements, their series, and conversions to rows and a DataFrame.

The JSON of InfluxDB's `/query` holds one result per statement, each with series of `name`, `tags`,
`columns` and `values`. A chunked answer (newline-delimited JSON) splits a series over several
chunks; `merge_chunks` joins them back, so the caller never sees the split.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

Value = str | int | float | bool | None
"""One cell of a query answer, as JSON gave it (whole floats arrive as int)."""

_TIME_UNITS: Mapping[str, Literal["s", "ms", "us", "ns"]] = {
    "ns": "ns",
    "us": "us",
    "ms": "ms",
    "s": "s",
}


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def as_ns(value: dt.datetime) -> int:
    """Epoch nanoseconds of a timezone-aware time (InfluxQL's time literals), exact to the µs."""
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000


def as_time(value: Value, *, epoch: str = "ms") -> dt.datetime:
    """A ``time`` cell as an aware UTC time: RFC3339 text, or a number in `epoch` units.

    Example:
        >>> as_time(1_700_000_000_000).isoformat()
        '2023-11-14T22:13:20+00:00'
    """
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return dt.datetime.fromtimestamp(float(value or 0) / _PER_SECOND[epoch], tz=dt.UTC)


def as_float(value: Value) -> float | None:
    """A numeric cell as a float; None for an empty cell, text or a boolean."""
    if value is None or isinstance(value, str | bool):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a statement's answer.

    Attributes:
        name: The measurement (or "measurements", "databases" ... for SHOW statements).
        tags: The GROUP BY tags of this series; empty without GROUP BY.
        columns: The column names; "time" first for SELECT.
        values: The rows, each a tuple in the order of `columns`.
    """

    name: str
    tags: Mapping[str, str]
    columns: tuple[str, ...]
    values: tuple[tuple[Value, ...], ...]

    def rows(self) -> Iterator[dict[str, Value]]:
        """Yield each row as a dict: "time" first, then the series' tags, then the other columns."""
        has_time = self.columns[:1] == ("time",)
        for row in self.values:
            out: dict[str, Value] = {"time": row[0]} if has_time else {}
            out.update(self.tags)
            out.update(zip(self.columns[has_time:], row[has_time:], strict=True))
            yield out


@dataclass(frozen=True, slots=True)
class StatementResult:
    """The answer to one statement of a query.

    Attributes:
        statement_id: The statement's position in the query, from 0.
        series: Its series, in the server's order.
        messages: The server's informational messages (e.g. deprecation warnings), as
            "level: text".
    """

    statement_id: int
    series: tuple[Series, ...]
    messages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The answer to a query: one `StatementResult` per statement, in order.

    Attributes:
        statements: The statements' answers.
    """

    statements: tuple[StatementResult, ...] = field(default_factory=tuple)

    @property
    def series(self) -> tuple[Series, ...]:
        """All series of all statements, in order."""
        return tuple(s for st in self.statements for s in st.series)

    def rows(self) -> Iterator[dict[str, Value]]:
        """Yield every row of every series as a dict of time, tags and fields merged."""
        for series in self.series:
            yield from series.rows()


@dataclass(slots=True)
class _Building:
    """A series being assembled from chunks."""

    name: str
    tags: dict[str, str]
    columns: tuple[str, ...]
    rows: list[tuple[Value, ...]]


def merge_chunks(results: Iterable[Mapping[str, object]]) -> QueryResult:
    """Assemble statement results from the `results` entries of one or more answer chunks.

    Series of the same statement with the same name, tags and columns are joined, in arrival
    order: that is how a chunked answer splits a long series.

    Args:
        results: Every entry of every chunk's "results" list, in order; errors already removed.

    Returns:
        The merged answer.
    """
    order: list[int] = []
    series: dict[int, dict[tuple[object, ...], _Building]] = {}
    messages: dict[int, list[str]] = {}
    for result in results:
        sid = int(str(result.get("statement_id", 0)))
        if sid not in series:
            order.append(sid)
            series[sid] = {}
            messages[sid] = []
        for msg in _dicts(result.get("messages")):
            messages[sid].append(f"{msg.get('level', 'info')}: {msg.get('text', '')}")
        for raw in _dicts(result.get("series")):
            name = str(raw.get("name", ""))
            raw_tags = raw.get("tags")
            tags = (
                {str(k): str(v) for k, v in raw_tags.items()} if isinstance(raw_tags, dict) else {}
            )
            raw_columns = raw.get("columns")
            columns = tuple(str(c) for c in raw_columns) if isinstance(raw_columns, list) else ()
            key = (name, tuple(sorted(tags.items())), columns)
            building = series[sid].setdefault(key, _Building(name, tags, columns, []))
            raw_values = raw.get("values")
            if isinstance(raw_values, list):
                building.rows.extend(tuple(v) for v in raw_values)
    return QueryResult(
        tuple(
            StatementResult(
                sid,
                tuple(
                    Series(b.name, b.tags, b.columns, tuple(b.rows)) for b in series[sid].values()
                ),
                tuple(messages[sid]),
            )
            for sid in order
        )
    )


def _dicts(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def to_dataframe(
    result: QueryResult, *, epoch: str | None, measurement_column: str | None = None
) -> pd.DataFrame:
    """Turn a query answer into a DataFrame: tz-aware UTC time index, tags and fields as columns.

    pandas is imported here, not at module import: the ingester never pays for it.

    Args:
        result: The answer.
        epoch: The unit of integer times ("s", "ms", "us", "ns"), or None for RFC3339 strings.
        measurement_column: If given, a column of that name holds each row's series name.

    Returns:
        The frame; an empty frame with an empty UTC index when there are no rows. Answers
        without a time column (SHOW ...) keep a default integer index.
    """
    import pandas as pd  # noqa: PLC0415 - lazy on purpose: notebooks use it, the ingester must not

    rows: list[dict[str, Value]] = []
    for series in result.series:
        for row in series.rows():
            if measurement_column is not None:
                row[measurement_column] = series.name
            rows.append(row)
    frame = pd.DataFrame.from_records(rows)
    if "time" not in frame.columns:
        if not rows:
            return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="time"))
        return frame
    if epoch is None:
        times = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    else:
        times = pd.to_datetime(frame["time"].astype("int64"), unit=_TIME_UNITS[epoch], utc=True)
    frame = frame.drop(columns="time")
    frame.index = pd.DatetimeIndex(times, name="time")
    return frame
