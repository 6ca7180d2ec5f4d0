"""The one exception of the contract, its reason codes and message helpers.

Tree (one class on purpose: every rejection is handled the same way)::

    ValueError
    └── ContractError   a payload or topic breaks MQTT contract v1.
                        Caller: dead-letter the message with ``reason``, count it, never retry it.

Messages quote the offending value with ``repr``, truncated (Telegraf's ``%q`` rule), so a hostile
payload can neither flood a log line nor hide in it.
"""

import types
from collections.abc import Mapping
from typing import Literal

Reason = Literal[
    "bad_content_type",
    "bad_encoding",
    "bad_gzip",
    "bad_name",
    "bad_topic",
    "bad_value",
    "duplicate_key",
    "duplicate_name",
    "invalid_json",
    "missing_field",
    "non_finite",
    "out_of_range",
    "reserved_name",
    "too_deep",
    "too_large",
    "too_long",
    "too_many",
    "ts_in_future",
    "ts_out_of_range",
    "unknown_field",
    "value_and_bad",
    "wrong_schema",
    "wrong_type",
]
"""A short, stable snake_case code for why something was rejected (see ``REASONS``)."""

REASONS: Mapping[str, str] = types.MappingProxyType(
    {
        "bad_content_type": "the MQTT content type is neither application/json nor its +gzip form",
        "bad_encoding": "the payload, or a string in it, is not valid UTF-8",
        "bad_gzip": "the gzip stream is corrupt, truncated, or followed by extra bytes",
        "bad_name": "a site, gateway, asset, signal or command name breaks its pattern",
        "bad_topic": "a topic, topic prefix or topic kind is not one of contract v1",
        "bad_value": "a value is not one of those allowed (status state, event kind, version)",
        "duplicate_key": "a JSON object has the same key twice (ambiguous: rejected)",
        "duplicate_name": "a signal is listed twice in 'bad'",
        "invalid_json": "the payload is not JSON text (syntax error, truncated, trailing data)",
        "missing_field": "a required field is absent",
        "non_finite": "a NaN or Infinity literal, or a number that overflows a double",
        "out_of_range": "an integer is outside its range (seq >= 0, values within int64)",
        "reserved_name": "a signal or metric name is reserved by the InfluxDB layout",
        "too_deep": "the JSON nesting is too deep to parse",
        "too_large": "the payload exceeds MAX_PAYLOAD_BYTES, compressed or inflated",
        "too_long": "a string value exceeds MAX_STRING_LEN characters",
        "too_many": "more readings, values, bad signals, details or metrics than allowed",
        "ts_in_future": "a timestamp is further ahead of the receiver's clock than allowed",
        "ts_out_of_range": "a timestamp is outside [2000-01-01, 2100-01-01)",
        "unknown_field": "a field that contract v1 does not define",
        "value_and_bad": "a signal is both in 'values' and in 'bad'",
        "wrong_schema": "the 'schema' field names another payload or version",
        "wrong_type": "a field has the wrong JSON type (booleans are not numbers)",
    }
)
"""Every reason code with a one-line description; the keys are exactly those of ``Reason``."""

_SHOW_CHARS = 60


class ContractError(ValueError):
    """A payload or topic breaks MQTT contract v1.

    The caller dead-letters the message with ``reason`` and counts it; retrying cannot help.

    Attributes:
        reason: A short stable code, one of ``REASONS``.
        path: Where the problem is, as a JSON pointer into the payload (``/readings/3/ts``);
            empty for the whole payload. For topics, ``/site``, ``/gateway``, ``/name`` or empty.
        message: What is wrong, quoting the offending value (repr, truncated).
    """

    reason: Reason
    path: str
    message: str

    def __init__(self, reason: Reason, message: str, path: str = "") -> None:
        super().__init__(reason, message, path)
        self.reason = reason
        self.message = message
        self.path = path

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message} ({self.reason})"


def under(exc: ContractError, prefix: str) -> ContractError:
    """Return ``exc`` re-rooted below the JSON pointer ``prefix``."""
    return ContractError(exc.reason, exc.message, prefix + exc.path)


def pointer(key: str) -> str:
    """Return ``key`` escaped as one JSON-pointer reference token (RFC 6901)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def show(value: object) -> str:
    """Return a short, safe description of a value for an error message."""
    if isinstance(value, str):
        if len(value) > _SHOW_CHARS:
            return f"{value[:_SHOW_CHARS]!r}... ({len(value)} characters)"
        return repr(value)
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
        return text if len(text) <= _SHOW_CHARS else f"{text[:_SHOW_CHARS]}... ({len(text)} digits)"
    return f"a {type(value).__name__}"


def json_type(value: object) -> str:
    """Return the JSON name of a value's type, for messages ("boolean", not "bool")."""
    names: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (dict, "object"),
        ((list, tuple), "array"),
        (type(None), "null"),
    )
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return type(value).__name__
