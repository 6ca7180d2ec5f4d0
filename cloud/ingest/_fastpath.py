"""Fast path for the common case: a telemetry payload that is entirely valid.

`prognos_contract.decode_telemetry` builds a checked `Reading` object per reading and reports every
problem with its path; that costs about 40 µs per reading, which caps one ingester process far
below InfluxDB's write rate. This module checks the same rules in one tight loop and builds the
line protocol directly, but it never *rejects* anything: at the first doubt it returns None and
the caller decodes the payload with the contract's decoder, which then says exactly what is wrong.

Rules:

1. Whatever `fast_telemetry` accepts, `decode_telemetry` accepts with no rejected reading and the
   same gateway, seq and readings (tests/unit/test_ingest_fastpath.py checks this against the
   contract's decoder on generated payloads, valid and broken).
2. Plain JSON is parsed by the C parser without per-object hooks; duplicate keys (which it would
   silently merge) are ruled out by counting key tokens (`"` + optional space + `:`) in the text:
   that count is never below the number of keys written, and equals the number of keys parsed
   only if no key was merged (a value containing `":` makes it larger: the slow path then).
   NaN/Infinity literals, bad UTF-8, a BOM, integer literals too long for `int`, too deep nesting
   and anything but `application/json` go to the slow path. Gzip is inflated by the contract's
   own strict parser (`prognos_contract._codec.load`).
3. Names that pass `NAME_PATTERN` / `ID_PATTERN` need no escaping in line protocol; string values
   are escaped; floats are finite, integers int64 (checked here).
4. Floats are written as `repr` writes them, as `cloud.store` does; the texts of recent values are
   kept (bounded), as formatting a float is most of the cost of a field.
"""

from __future__ import annotations

import json
import math
import re

import prognos_contract as pc

# The contract's strict JSON parser (rule 2); private to the contract, shared on purpose.
from prognos_contract._codec import load as _load_json

_NAME = re.compile(pc.NAME_PATTERN.removeprefix("^").removesuffix("$"))
_ID = re.compile(pc.ID_PATTERN.removeprefix("^").removesuffix("$"))
_RESERVED = pc.RESERVED_NAMES
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
_TAG_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_FAST_KEYS = frozenset({"schema", "gateway", "seq", "readings"})
_FLOAT_EXACT = 2**53
# Names already checked (signals: also not reserved); bounded, so hostile names cannot grow them.
_NAME_CACHE = 65_536
_FIELD_KEYS: dict[str, str] = {}  # signal -> "signal=" (valid, not reserved)
_VALID_ASSETS: set[str] = set()
_GZIP_MAGIC = b"\x1f\x8b"
_KEY_TOKEN = re.compile(r'"\s*:')
_isfinite = math.isfinite
_float_repr = float.__repr__
# Float -> its repr (rule 4). Sensor values repeat (a scaled register has a few thousand values at
# most) and the repr is most of a field's cost; bounded like the name caches. Never 0.0: -0.0
# equals it as a key, and has another repr.
_FLOAT_TEXT: dict[float, str] = {}
_FLOAT_CACHE = 65_536

FastReading = tuple[int, str, int, str, int]
"""(index, asset, ts ms, encoded field set, number of bad signals) of one valid reading."""


def _valid_text(value: str) -> bool:
    if len(value) > pc.MAX_STRING_LEN:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _float_text(value: float) -> str:
    text = _float_repr(value)
    if value and len(_FLOAT_TEXT) < _FLOAT_CACHE:
        _FLOAT_TEXT[value] = text
    return text


def _field_set(  # noqa: C901, PLR0911, PLR0912 - one tight loop on purpose
    values: dict[str, object], types: dict[str, str]
) -> str | None:
    """The field set of valid values fitting `types` (learning new ones), else None."""
    if not values or len(values) > pc.MAX_VALUES_PER_READING:
        return None if values else ""
    parts: list[str] = []
    append = parts.append
    new: list[tuple[str, str]] = []
    for key, value in values.items():
        prefix = _FIELD_KEYS.get(key)
        if prefix is None:
            if _NAME.fullmatch(key) is None or key in _RESERVED:
                return None
            prefix = key + "="  # a valid name needs no escaping (rule 3)
            if len(_FIELD_KEYS) < _NAME_CACHE:
                _FIELD_KEYS[key] = prefix
        kind = type(value)
        stored = types.get(key)
        if kind is float:
            sent = "float"
            text = _FLOAT_TEXT.get(value)  # type: ignore[call-overload]
            if text is None:  # not seen yet (every cached value is finite)
                if not _isfinite(value):  # type: ignore[arg-type]
                    return None
                text = _float_text(value)  # type: ignore[arg-type]
            append(prefix + text)
        elif kind is int:
            if not pc.MIN_INT <= value <= pc.MAX_INT:  # type: ignore[operator]
                return None
            if stored == "float" and abs(value) <= _FLOAT_EXACT:  # type: ignore[arg-type]
                append(prefix + _float_text(float(value)))  # type: ignore[arg-type]
                continue
            sent = "integer"
            append(f"{prefix}{value}i")
        elif kind is bool:
            sent = "boolean"
            append(prefix + ("true" if value else "false"))
        elif kind is str:
            if not _valid_text(value):  # type: ignore[arg-type]
                return None
            sent = "string"
            append(f'{prefix}"{value.translate(_STRING_ESCAPES)}"')  # type: ignore[attr-defined]
        else:
            return None
        if stored is None:
            new.append((key, sent))
        elif stored != sent:
            return None  # a type conflict: the slow path rejects the reading, naming it
    if new:
        types.update(new)
    return ",".join(parts)


def _bad_count(bad: object, values: dict[str, object]) -> int | None:
    if type(bad) is not list or len(bad) > pc.MAX_VALUES_PER_READING:
        return None
    seen: set[str] = set()
    for name in bad:
        if type(name) is not str or _NAME.fullmatch(name) is None or name in _RESERVED:
            return None
        if name in values or name in seen:
            return None
        seen.add(name)
    return len(bad)


def fast_telemetry(  # noqa: C901, PLR0911, PLR0912 - each early return: "ask the contract"
    payload: bytes,
    *,
    content_type: str | None,
    now_ms: int,
    max_future_skew_ms: int,
    types: dict[str, str],
) -> tuple[str, int, list[FastReading]] | None:
    """Check a telemetry payload that is entirely valid, quickly.

    Args:
        payload: The MQTT payload.
        content_type: Its MQTT 5 content type, if any.
        now_ms: The receiver's clock, epoch ms.
        max_future_skew_ms: How far ahead of `now_ms` a reading may be.
        types: The known field types of `telemetry` (signal -> type); the types of new signals
            of each accepted reading are added. An integer for a float signal is written as a
            float; any other mismatch returns None (the slow path rejects that reading).

    Returns:
        (gateway, seq, readings), each reading with its field set already in line protocol; or
        None when anything is not plainly valid (decode it with `decode_telemetry` then).
    """
    parsed = _parse(payload, content_type)
    if parsed is None:
        return None
    document, key_tokens = parsed
    if type(document) is not dict or document.keys() != _FAST_KEYS:
        return None
    if document["schema"] != pc.TELEMETRY_SCHEMA_ID:
        return None
    gateway, seq, readings = document["gateway"], document["seq"], document["readings"]
    if type(gateway) is not str or _ID.fullmatch(gateway) is None:
        return None
    if type(seq) is not int or not 0 <= seq <= pc.MAX_INT:
        return None
    if type(readings) is not list or len(readings) > pc.MAX_READINGS_PER_BATCH:
        return None
    latest = now_ms + max_future_skew_ms
    out: list[FastReading] = []
    keys = len(_FAST_KEYS)
    for index, raw in enumerate(readings):
        if type(raw) is not dict:
            return None
        size = len(raw)
        asset, ts, values = raw.get("asset"), raw.get("ts"), raw.get("values")
        if type(asset) is not str or type(ts) is not int or type(values) is not dict:
            return None
        if size == 4:  # noqa: PLR2004 - asset, ts, values and bad
            bad = _bad_count(raw.get("bad", 0), values)
            if bad is None:
                return None
        elif size == 3:  # noqa: PLR2004 - asset, ts and values
            bad = 0
        else:
            return None
        if asset not in _VALID_ASSETS:
            if _NAME.fullmatch(asset) is None:
                return None
            if len(_VALID_ASSETS) < _NAME_CACHE:
                _VALID_ASSETS.add(asset)
        if not pc.TS_MIN_MS <= ts < pc.TS_MAX_MS or ts > latest:
            return None
        fields = _field_set(values, types)
        if fields is None:
            return None
        out.append((index, asset, ts, fields, bad))
        keys += size + len(values)
    if key_tokens is not None and keys != key_tokens:
        return None  # a key given twice (merged by the parser), or `":` inside a string
    return gateway, seq, out


def _no_constant(literal: str) -> float:
    raise ValueError(literal)  # NaN, Infinity: the slow path names them


_DECODER = json.JSONDecoder(parse_constant=_no_constant)  # one, not one per `json.loads`


def _parse(payload: bytes, content_type: str | None) -> tuple[object, int | None] | None:
    """(document, key tokens in the text, or None when the strict parser was used) or None."""
    if len(payload) > pc.MAX_PAYLOAD_BYTES:
        return None
    media = None if content_type is None else content_type.partition(";")[0].strip().lower()
    if payload.startswith(_GZIP_MAGIC) or media == pc.CONTENT_TYPE_JSON_GZIP:
        try:  # the contract's strict parser: inflation bounds, duplicate keys and all
            return _load_json(payload, content_type=content_type), None
        except pc.ContractError:
            return None
    if media not in (None, pc.CONTENT_TYPE_JSON):
        return None
    try:
        text = payload.decode()
        document = _DECODER.decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return None
    return document, _key_tokens(text)


def _key_tokens(text: str) -> int:
    """Occurrences of `"`, optional whitespace, `:` in `text` (rule 2).

    When every `:` directly follows a `"` (compact JSON, the encoders' output), that is a plain
    substring count, about ten times cheaper than the pattern; else the pattern counts.
    """
    tight = text.count('":')
    if tight == text.count(":"):
        return tight
    return len(_KEY_TOKEN.findall(text))


def escape_tag(value: str) -> str:
    """A tag value escaped for line protocol (`,`, `=` and space)."""
    return value.translate(_TAG_ESCAPES)
