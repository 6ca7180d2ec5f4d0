"""Limits of contract v1 and the checks every payload shares.

The limits are published, in the same numbers, in the JSON Schema files next to this module; a test
keeps both in step. Each check takes an ``object`` (whatever JSON or a caller produced), returns it
narrowed, or raises ``ContractError`` with a reason, a path and the offending value.
"""

import math
import re
from collections.abc import Mapping, Sized
from typing import Any, TypeAlias, TypeVar

from prognos_contract._errors import ContractError, json_type, pointer, show

Value: TypeAlias = bool | int | float | str
"""A signal value: a finite number, a boolean, or a short string."""

MAX_PAYLOAD_BYTES = 1_048_576
"""Largest payload, in bytes, both as received and after gzip inflation (1 MiB)."""
MAX_READINGS_PER_BATCH = 10_000
"""Most readings in one telemetry batch."""
MAX_VALUES_PER_READING = 1_024
"""Most entries in one reading's ``values``; its ``bad`` list has the same bound."""
MAX_STRING_LEN = 256
"""Longest string value, in characters (Unicode code points, as JSON Schema counts)."""
MAX_NAME_LEN = 128
"""Longest asset, signal, metric or detail name."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
"""Asset, signal, metric and detail names: ASCII letters, digits and ``_ . : -``, not first.

No spaces, commas, equals signs, quotes or backslashes, so a name is a valid InfluxDB tag value,
tag key and field key without escaping, and a valid key in a Modbus firmware profile.
"""
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Site, gateway and command names and shared-subscription groups: one MQTT topic level."""
RESERVED_NAMES = frozenset({"asset", "gateway", "model", "site", "time"})
"""Names a signal or metric may not take: InfluxDB's ``time`` and the tag keys of the layout."""
TS_MIN_MS = 946_684_800_000
"""Earliest timestamp, 2000-01-01T00:00:00Z in epoch milliseconds (inclusive)."""
TS_MAX_MS = 4_102_444_800_000
"""Latest timestamp, 2100-01-01T00:00:00Z in epoch milliseconds (exclusive)."""
DEFAULT_MAX_FUTURE_SKEW_MS = 86_400_000
"""How far (24 h) a timestamp may be ahead of the receiver's ``now_ms`` before it is rejected."""
MIN_INT = -(2**63)
"""Smallest integer value (InfluxDB int64)."""
MAX_INT = 2**63 - 1
"""Largest integer value and largest ``seq`` (InfluxDB int64)."""

T = TypeVar("T")

_EXPECTED: Mapping[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    dict: "an object",
    list: "an array",
}
_NAME_RE = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))
_ID_RE = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))


def check_type(value: object, kind: type[T], *, path: str, what: str) -> T:
    """Return ``value`` if it is a ``kind``, else raise ``wrong_type`` (a boolean is no ``int``)."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    expected = _EXPECTED.get(kind, kind.__name__)
    raise ContractError(
        "wrong_type", f"{what} must be {expected}, got {show(value)} ({json_type(value)})", path
    )


def check_int(value: object, *, path: str, what: str, low: int = MIN_INT) -> int:
    """Return ``value`` if it is an integer in ``[low, MAX_INT]``."""
    value = check_type(value, int, path=path, what=what)
    if not low <= value <= MAX_INT:
        raise ContractError(
            "out_of_range", f"{what} is {show(value)}, outside [{low}, {MAX_INT}]", path
        )
    return value


def check_name(value: object, *, path: str, what: str, pattern: re.Pattern[str] = _NAME_RE) -> str:
    """Return ``value`` if it is a string matching ``NAME_PATTERN`` (or ``pattern``)."""
    value = check_type(value, str, path=path, what=what)
    if pattern.fullmatch(value) is None:
        raise ContractError(
            "bad_name", f"{what} {show(value)} does not match ^{pattern.pattern}$", path
        )
    return value


def check_id(value: object, *, path: str, what: str) -> str:
    """Return ``value`` if it is a string matching ``ID_PATTERN``."""
    return check_name(value, path=path, what=what, pattern=_ID_RE)


def check_signal_name(value: object, *, path: str, what: str) -> str:
    """Return ``value`` if it is a valid name and not one of ``RESERVED_NAMES``."""
    name = check_name(value, path=path, what=what)
    if name in RESERVED_NAMES:
        raise ContractError(
            "reserved_name",
            f"{what} {name!r} is reserved (one of {sorted(RESERVED_NAMES)})",
            path,
        )
    return name


def check_ts(
    value: object,
    *,
    path: str,
    now_ms: int | None = None,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> int:
    """Return ``value`` if it is an epoch-ms integer in range and not too far in the future."""
    value = check_type(value, int, path=path, what="ts")
    if not TS_MIN_MS <= value < TS_MAX_MS:
        raise ContractError(
            "ts_out_of_range",
            f"ts is {show(value)}, outside [{TS_MIN_MS}, {TS_MAX_MS}) "
            "(epoch milliseconds, 2000-01-01 to 2100-01-01)",
            path,
        )
    if now_ms is not None and value > now_ms + max_future_skew_ms:
        raise ContractError(
            "ts_in_future",
            f"ts {value} is {value - now_ms} ms ahead of now_ms {now_ms} "
            f"(at most {max_future_skew_ms} ms allowed)",
            path,
        )
    return value


def check_number(value: object, *, path: str, what: str) -> int | float:
    """Return ``value`` if it is a finite float or an int64 integer (never a boolean)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ContractError(
                "non_finite",
                f"{what} is {show(value)}, not finite; report a failed read in 'bad'",
                path,
            )
        return value
    return check_int(value, path=path, what=what)


def check_value(value: object, *, path: str, what: str) -> Value:
    """Return ``value`` if it is a boolean, a finite number, or a short UTF-8 string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING_LEN:
            raise ContractError(
                "too_long",
                f"{what} is {show(value)}, longer than {MAX_STRING_LEN} characters",
                path,
            )
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise ContractError(
                    "bad_encoding", f"{what} is {show(value)}, not valid UTF-8", path
                ) from None
        return value
    if isinstance(value, int | float):
        return check_number(value, path=path, what=what)
    raise ContractError(
        "wrong_type",
        f"{what} must be a number, a boolean or a string, got {show(value)} ({json_type(value)})",
        path,
    )


def check_count(items: Sized, limit: int, *, path: str, what: str) -> None:
    """Raise ``too_many`` if ``items`` holds more than ``limit`` entries."""
    count = len(items)
    if count > limit:
        raise ContractError("too_many", f"{what} has {count} entries, at most {limit}", path)


def check_flat_values(
    values: object, *, path: str, what: str, noun: str, limit: int, numbers_only: bool = False
) -> dict[str, Value]:
    """Return a copy of the flat ``{name: value}`` object ``what``, of ``noun``s, entry by entry."""
    if isinstance(values, Mapping):
        values = dict(values)
    values = check_type(values, dict, path=path, what=what)
    check_count(values, limit, path=path, what=what)
    out: dict[str, Value] = {}
    for key, value in values.items():
        name = check_signal_name(key, path=path, what=f"{noun} name")
        where = path + pointer(name)
        if numbers_only:
            out[name] = check_number(value, path=where, what=f"{noun} {name!r}")
        else:
            out[name] = check_value(value, path=where, what=f"{noun} {name!r}")
    return out


def check_fields(
    document: dict[str, Any],
    *,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    path: str,
    schema_id: str | None = None,
) -> None:
    """Check ``schema`` first (so a v2 payload is ``wrong_schema``), then missing, then unknown."""
    if schema_id is not None:
        if "schema" not in document:
            raise ContractError("missing_field", "the field 'schema' is missing", path + "/schema")
        if document["schema"] != schema_id:
            raise ContractError(
                "wrong_schema",
                f"schema {show(document['schema'])} is not {schema_id!r}",
                path + "/schema",
            )
        required = ("schema", *required)
    for name in required:
        if name not in document:
            raise ContractError(
                "missing_field", f"the field {name!r} is missing", path + pointer(name)
            )
    for name in document:
        if name not in required and name not in optional:
            raise ContractError(
                "unknown_field",
                f"the field {show(name)} is not part of contract v1",
                path + pointer(name),
            )
