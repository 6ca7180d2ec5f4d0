r"""Pure InfluxDB line-protocol encoder: `Point` in, bytes out, or a `LineProtocolError`.

Line protocol (InfluxDB 1.x rules, which 2.x shares):

```
measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
```

Escaping:

- measurement: `,` and space get a backslash;
- tag keys, tag values and field keys: `,`, `=` and space get a backslash;
- string field values are double-quoted; `"` and `\` inside get a backslash;
- integers end in `i`, booleans are `true`/`false`, floats use Python's shortest round-trip repr.

Rules (each one learnt from, and tested against, a real influxd; see docs/influxdb.md):

1. A backslash in a name or tag value is literal to 1.x/2.x, except before a character that can
   be escaped there (`,`, space, `=`; also `"` in measurements and field keys, a surprise), and a
   separator right after any backslash counts as escaped, so a trailing backslash cannot be
   written at all. 3.x Core reads `\\` as one backslash. A backslash followed by a backslash, `,`,
   `=`, a space, `"` or by nothing is therefore rejected; every other backslash round-trips.
2. Newlines end a line: rejected in names and tag values. Inside string field values they are kept
   (1.x reads a quoted string across lines).
3. Other ASCII control characters (and DEL) in names and tag values are rejected: influxd echoes
   the names in an `X-Influxdb-Error` header, where such a character makes the whole HTTP answer
   unreadable, turning a permanent error into one that looks like a broken connection.
4. A measurement starting with `#` is a comment line, silently ignored by the server. A tab at
   the start of the measurement or of a field key is skipped as whitespace by the server (a field
   key "\t" becomes ""). All three are rejected.
5. `time` as a tag key is refused by the server, as a field key silently dropped: both rejected.
6. An empty tag value is skipped: InfluxDB has no empty tags (a missing tag reads as "").
7. The series key (measurement and tags, escaped) is limited to 65,535 bytes by the server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from cloud.store._errors import LineProtocolError

FieldValue = float | int | bool | str
"""What a field can hold; the first value written fixes the field's type in a shard."""

Precision = Literal["s", "ms", "us", "ns"]
"""The unit of `Point.ts` in a write, and of the time column a query returns."""

NS_PER_UNIT: Mapping[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# influxd refuses the two extreme int64 values on each side (they mark "no time" internally).
TIME_MIN_NS = INT64_MIN + 2
TIME_MAX_NS = INT64_MAX - 1
MAX_SERIES_KEY_BYTES = 65_535

_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})

# One pattern per reason a name or tag value cannot be written, checked in this order.
_NEWLINE = re.compile(r"[\n\r]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BAD_BACKSLASH = re.compile(r"\\(?:[\\,= \"]|\Z)")


@dataclass(frozen=True, slots=True)
class Point:
    """One point: a measurement, its tags, its fields and an optional timestamp.

    Attributes:
        measurement: The measurement name, e.g. "telemetry".
        tags: Tag keys to values. A tag with an empty value is left out (InfluxDB has no empty
            tags).
        fields: Field keys to values; at least one. `int` is written as a 64-bit integer, `float`
            as a float, `bool` as a boolean and `str` as a string.
        ts: The timestamp in the unit of the write's precision, or None for the server's clock.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts: int | None = None


def _where(index: int, point: Point) -> str:
    return f"point {index} (measurement {point.measurement!r})"


def _check_name(what: str, value: object, where: str) -> str:
    """Return `value` if line protocol can carry it as a name or tag value; raise otherwise."""
    if not isinstance(value, str):
        raise LineProtocolError(
            f"{where}: {what} must be a str, got {type(value).__name__} {value!r}"
        )
    if not value:
        raise LineProtocolError(f"{where}: {what} is empty ({value!r})")
    if _NEWLINE.search(value):
        raise LineProtocolError(
            f"{where}: {what} {value!r} contains a newline, which line protocol cannot carry"
        )
    if _CONTROL.search(value):
        raise LineProtocolError(
            f"{where}: {what} {value!r} contains a control character, which influxd cannot report "
            "back in an error header"
        )
    if _BAD_BACKSLASH.search(value):
        raise LineProtocolError(
            f"{where}: {what} {value!r} has a backslash at the end or before a backslash, comma, "
            "'=', space or double quote, which line protocol cannot carry alike on InfluxDB "
            "1.x, 2.x and 3.x"
        )
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise LineProtocolError(
            f"{where}: {what} {value!r} is not valid Unicode ({exc.reason})"
        ) from exc
    return value


def _encode_field_value(key: str, value: object, where: str) -> str:
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise LineProtocolError(
                f"{where}: field {key!r} value {value!r} is outside the 64-bit integer range"
            )
        return f"{int.__repr__(value)}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(
                f"{where}: field {key!r} value {value!r} is not finite; InfluxDB stores no NaN/inf"
            )
        # float.__repr__: numpy's float64 subclass reprs as "np.float64(...)".
        return float.__repr__(value)
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise LineProtocolError(
                f"{where}: field {key!r} value {value!r} is not valid Unicode ({exc.reason})"
            ) from exc
        return f'"{value.translate(_STRING_ESCAPES)}"'
    raise LineProtocolError(
        f"{where}: field {key!r} value {value!r} has type {type(value).__name__}; "
        "use float, int, bool or str"
    )


def _check_ts(ts: object, factor: int, where: str) -> str:
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise LineProtocolError(f"{where}: ts must be an int or None, got {ts!r}")
    if not TIME_MIN_NS <= ts * factor <= TIME_MAX_NS:
        raise LineProtocolError(
            f"{where}: ts {ts!r} is outside the range InfluxDB can store "
            f"({TIME_MIN_NS} to {TIME_MAX_NS} ns)"
        )
    return int.__repr__(ts)


def _series_key(point: Point, where: str) -> str:
    """The escaped measurement and sorted tags, checked."""
    measurement = _check_name("measurement", point.measurement, where)
    if measurement[0] in "#\t":
        raise LineProtocolError(
            f"{where}: measurement {measurement!r} starts with {measurement[0]!r}, which the "
            "server reads as a comment or drops"
        )
    tags: list[tuple[str, str]] = []
    for key, value in point.tags.items():
        _check_name("tag key", key, where)
        if key == "time":
            raise LineProtocolError(f"{where}: tag key {key!r} is reserved for the timestamp")
        if value != "":  # InfluxDB has no empty tags: leave the tag out
            tags.append((key, _check_name(f"tag {key!r} value", value, where)))
    tags.sort()  # the server sorts tags by key; sending them sorted saves it the work
    series_key = measurement.translate(_MEASUREMENT_ESCAPES) + "".join(
        f",{k.translate(_KEY_ESCAPES)}={v.translate(_KEY_ESCAPES)}" for k, v in tags
    )
    size = len(series_key.encode())
    if size > MAX_SERIES_KEY_BYTES:
        raise LineProtocolError(
            f"{where}: the series key (measurement and tags) is {size} bytes long; the "
            f"server's limit is {MAX_SERIES_KEY_BYTES}"
        )
    return series_key


def _field_set(point: Point, where: str) -> str:
    """The escaped, typed fields, checked."""
    if not point.fields:
        raise LineProtocolError(f"{where}: a point needs at least one field, got {point.fields!r}")
    fields = []
    for key, value in point.fields.items():
        _check_name("field key", key, where)
        if key == "time":
            raise LineProtocolError(f"{where}: field key {key!r} is reserved for the timestamp")
        if key[0] == "\t":
            raise LineProtocolError(
                f"{where}: field key {key!r} starts with a tab, which the server drops"
            )
        fields.append(f"{key.translate(_KEY_ESCAPES)}={_encode_field_value(key, value, where)}")
    return ",".join(fields)


def encode_point(point: Point, precision: Precision = "ns", *, index: int = 0) -> str:
    """Encode one point as a line of line protocol, without the trailing newline.

    Args:
        point: The point to encode.
        precision: The unit of `point.ts`, used to check that the time is in InfluxDB's range.
        index: The point's position in its batch, for error messages.

    Returns:
        The line.

    Raises:
        LineProtocolError: The point cannot be written; the message names the point, the key
            and the offending value.
    """
    where = _where(index, point)
    line = f"{_series_key(point, where)} {_field_set(point, where)}"
    if point.ts is None:
        return line
    return f"{line} {_check_ts(point.ts, NS_PER_UNIT[precision], where)}"


def encode_lines(points: Iterable[Point], precision: Precision = "ns") -> bytes:
    """Encode points as UTF-8 line protocol, one line per point, each ending in a newline.

    Args:
        points: The points to encode; an empty iterable gives b"".
        precision: The unit of every `Point.ts` ("s", "ms", "us" or "ns"); the write must
            send the same precision.

    Returns:
        The request body for `/write`.

    Raises:
        LineProtocolError: A point cannot be written; nothing is returned for the batch. The
            message names the point, the key and the offending value.
    """
    if precision not in NS_PER_UNIT:
        raise ValueError(f"precision must be one of 's', 'ms', 'us', 'ns'. Got {precision!r}.")
    return "".join(
        f"{encode_point(p, precision, index=i)}\n" for i, p in enumerate(points)
    ).encode()
