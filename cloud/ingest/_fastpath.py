"""Fast path for the common case: a telemetry payload that is entirely valid.

`prognos_contract.decode_telemetry` builds a checked `Reading` object per reading and reports every
problem with its path; that costs about 40 µs per reading, which caps one ingester process far
below InfluxDB's write rate. This module checks the same rules in one tight loop and builds the
line protocol directly, but it never *rejects* anything: at the first doubt it returns None and
the caller decodes the payload with the contract's decoder, which then says exactly what is wrong.
A reading of ten signals costs about 6 µs here, parsing included (py-spy --gil in the benchmark).

Rules:

1. Whatever `fast_telemetry` accepts, `decode_telemetry` accepts with no rejected reading and the
   same gateway, seq and readings (tests/unit/test_ingest_fastpath.py checks this against the
   contract's decoder on generated payloads, valid and broken).
2. Plain JSON is parsed by orjson (strict RFC 8259: NaN/Infinity literals, bad UTF-8, lone
   surrogates, a BOM, control characters in strings and too deep nesting are errors: the slow
   path then). Duplicate keys (which it silently merges) are ruled out by counting key tokens
   (`"` + optional space + `:`) in the bytes: that count is never below the number of keys
   written, and equals the number of keys parsed only if no key was merged (a value containing
   `":` makes it larger: the slow path then). orjson reads an integer literal beyond 64 bits as a
   float, so a float of magnitude 2**63 or more is never accepted here (the slow path tells a
   huge float from an integer out of range). Anything but `application/json` goes to the slow
   path; gzip is inflated by the contract's own strict parser (`prognos_contract._codec.load`).
3. Names that pass `NAME_PATTERN` / `ID_PATTERN` need no escaping in line protocol; string values
   are escaped; floats are finite, integers int64 (checked here).
4. Floats are written as `repr` writes them, as `cloud.store` does; the texts of recent values are
   kept (bounded), as formatting a float is most of the cost of a field.
5. The common reading repeats the signal names and value types of the ones before it: its field
   set is then one `%` format (`s1=%si,s2=%s,...`) of the values' texts, which orjson writes all
   at once (a float's shortest round-trip digits, as `repr`, about five times faster). The
   format is made from a reading the per-field loop accepted whose values are all floats and
   integers of matching types (not an integer for a float signal, whose text would differ), and
   used only while the known types of its signals are still the ones it was made for (checked
   once per message). The loop takes the reading instead when a value is NaN or infinite
   (orjson writes `null`), when any text has an exponent or is below 1e-4 (where orjson's
   notation differs from `repr`'s), or when an integer lies outside int64: the text is then
   always `repr`'s, as `cloud.store` writes it. Should an orjson release write plain floats
   otherwise, an import-time probe turns orjson's texts off (`%r` then).
6. A message whose readings are all plain (asset, ts and values only, each reading's signals
   and types those of a known format) is checked and formatted column by column (`map`, `zip`,
   one `orjson.dumps` of all values), without a Python loop per reading; anything else goes
   through the per-reading loop, which is the reference (rules 1 to 5).
"""

from __future__ import annotations

import operator
import re
from itertools import chain, repeat
from typing import Literal

import orjson

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
_KEY_TOKEN = re.compile(rb'"\s*:')
_float_repr = float.__repr__
# Float -> its repr (rule 4). Sensor values repeat (a scaled register has a few thousand values at
# most) and the repr is most of a field's cost; bounded like the name caches. Never 0.0: -0.0
# equals it as a key, and has another repr.
_FLOAT_TEXT: dict[float, str] = {}
_FLOAT_CACHE = 65_536
_FLOAT_LIMIT = 2.0**63  # rule 2: a float this large may have been an integer literal
# Rule 5: (signal names, value types) -> (the known types it was made for, its `%` format).
Signature = tuple[tuple[str, ...], tuple[type, ...]]
_FORMATS: dict[Signature, tuple[tuple[str | None, ...], str, bool]] = {}
# Rule 6: signal names -> (known types, format, value types, has an integer) of the latest format.
_BY_NAMES: dict[tuple[str, ...], tuple[tuple[str | None, ...], str, tuple[type, ...], bool]] = {}
_FORMAT_CACHE = 4096
_MIN_INT, _MAX_INT = pc.MIN_INT, pc.MAX_INT
_dumps = orjson.dumps
# Rule 5: orjson's plain (no exponent, >= 1e-4) float texts are `repr`'s; probed once.
_PROBES = (0.1, 21.625, -3.5, 1234567.891, 2.0**53, 1e15, 1e-4, 0.00012345678901234567, 1 / 3)
_ORJSON_FLOATS = all(_dumps(x).decode() == repr(x) for x in _PROBES)
_FORMAT_SPEC = (
    {float: ("float", "%s"), int: ("integer", "%si")}  # the texts orjson wrote
    if _ORJSON_FLOATS
    else {float: ("float", "%r"), int: ("integer", "%di")}
)

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
            if text is None:  # not seen yet (every cached value is finite and below the limit)
                if not -_FLOAT_LIMIT < value < _FLOAT_LIMIT:  # type: ignore[operator]
                    return None  # NaN and infinities too
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


def _make_format(values: dict[str, object], types: dict[str, str]) -> None:
    """Remember the `%` format of a reading the loop accepted, if it can have one (rule 5)."""
    if len(_FORMATS) >= _FORMAT_CACHE:
        return
    parts: list[str] = []
    for key, value in values.items():
        spec = _FORMAT_SPEC.get(type(value))
        if spec is None or types.get(key) != spec[0]:
            return  # bool, str, or an integer for a float signal: the loop's job
        parts.append(f"{key}={spec[1]}")  # a valid name has no `%` (NAME_PATTERN)
    keys, kinds = tuple(values), tuple(map(type, values.values()))
    known, fmt = tuple(map(types.get, keys)), ",".join(parts)
    _FORMATS[keys, kinds] = (known, fmt, int in kinds)
    _BY_NAMES[keys] = (known, fmt, kinds, int in kinds)


_UNSEEN = ("", False)
_PLAIN = operator.itemgetter("asset", "ts", "values")
_mod = operator.mod
_DICT, _STR, _INT = {dict}, {str}, {int}
_THREE = {3}


def _columns(  # noqa: C901, PLR0911, PLR0912 - each early return: "the loop then"
    readings: list[object], types: dict[str, str], earliest: int, latest: int
) -> tuple[list[FastReading], int] | None:
    """Rule 6: (readings, keys parsed) of a message of plain readings with known formats."""
    if set(map(type, readings)) != _DICT or set(map(len, readings)) != _THREE:  # type: ignore[arg-type]
        return None
    try:
        assets, stamps, valuess = zip(*map(_PLAIN, readings), strict=True)  # type: ignore[arg-type]
    except KeyError:
        return None
    if set(map(type, assets)) != _STR or set(map(type, valuess)) != _DICT:
        return None
    if set(map(type, stamps)) != _INT or min(stamps) < earliest or max(stamps) > latest:
        return None
    for asset in set(assets).difference(_VALID_ASSETS):
        if _NAME.fullmatch(asset) is None:
            return None
        if len(_VALID_ASSETS) < _NAME_CACHE:
            _VALID_ASSETS.add(asset)
    names = list(map(tuple, valuess))
    fmts: dict[tuple[str, ...], str] = {}
    kinds: dict[tuple[str, ...], tuple[type, ...]] = {}
    has_int = False
    for key in set(names):
        known = _BY_NAMES.get(key)
        if known is None or tuple(map(types.get, key)) != known[0]:
            return None
        fmts[key], kinds[key] = known[1], known[2]
        has_int = has_int or known[3]
    if not _ORJSON_FLOATS:
        return None
    numbers = list(map(tuple, map(dict.values, valuess)))
    flat = list(chain.from_iterable(numbers))
    if list(map(type, flat)) != list(chain.from_iterable(map(kinds.__getitem__, names))):
        return None  # some value of another type than its format's: the loop then
    if has_int and (max(flat) > _MAX_INT or min(flat) < _MIN_INT):
        return None
    data = _dumps(numbers)  # b"[[1,2.5],[3,4.5]]": values are numbers, so "],[" splits readings
    if b"null" in data or b"e" in data or b"0.0000" in data:
        return None
    texts = map(str.split, data[2:-2].decode().split("],["), repeat(","))
    fields = list(map(_mod, map(fmts.__getitem__, names), map(tuple, texts)))
    count = len(readings)
    out = list(zip(range(count), assets, stamps, fields, repeat(0, count), strict=True))
    return out, 3 * count + sum(map(len, valuess))


def _format(fmt: str, numbers: tuple[float, ...], *, has_int: bool) -> str | None:
    """The field set of one reading by its `%` format (rule 5), or None: the loop's job."""
    if has_int and (max(numbers) > _MAX_INT or min(numbers) < _MIN_INT):
        return None
    if not _ORJSON_FLOATS:
        text = fmt % numbers
        return None if "nan" in text or "inf" in text else text
    data = _dumps(numbers)  # b"[1,2.5,...]"
    if b"null" in data or b"e" in data or b"0.0000" in data:
        return None
    return fmt % tuple(data[1:-1].decode().split(","))


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
    keys = len(_FAST_KEYS)
    columns = _columns(readings, types, pc.TS_MIN_MS, min(latest, pc.TS_MAX_MS - 1))
    if columns is not None:
        if key_tokens is not None and keys + columns[1] != key_tokens:
            return None
        return gateway, seq, columns[0]
    out: list[FastReading] = []
    # checked against `types`; False: no format for it, already tried in this message
    formats: dict[Signature, tuple[str, bool] | Literal[False] | None] = {}
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
        fields = None
        numbers = tuple(values.values())
        signature = (tuple(values), tuple(map(type, numbers)))
        fmt = formats.get(signature, _UNSEEN)
        if fmt is _UNSEEN:  # not looked up in this message yet
            known = _FORMATS.get(signature)
            fmt = formats[signature] = (
                (known[1], known[2])
                if known is not None and tuple(map(types.get, signature[0])) == known[0]
                else None
            )
        if fmt:
            fields = _format(fmt[0], numbers, has_int=fmt[1])
        if fields is None:
            fields = _field_set(values, types)
            if fields is None:
                return None
            if fmt is None and fields:
                _make_format(values, types)
                formats[signature] = False  # once per signature and message, not per reading
        out.append((index, asset, ts, fields, bad))
        keys += size + len(values)
    if key_tokens is not None and keys != key_tokens:
        return None  # a key given twice (merged by the parser), or `":` inside a string
    return gateway, seq, out


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
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:  # a ValueError: bad UTF-8, NaN, nesting too deep included
        return None
    return document, _key_tokens(payload)


def _key_tokens(data: bytes) -> int:
    """Occurrences of `"`, optional whitespace, `:` in `data` (rule 2).

    When every `:` directly follows a `"` (compact JSON, the encoders' output), that is a plain
    substring count, about ten times cheaper than the pattern; else the pattern counts. (No byte
    of a multi-byte UTF-8 character is `"`, `:` or ASCII whitespace.)
    """
    tight = data.count(b'":')
    if tight == data.count(b":"):
        return tight
    return len(_KEY_TOKEN.findall(data))


def escape_tag(value: str) -> str:
    """A tag value escaped for line protocol (`,`, `=` and space)."""
    return value.translate(_TAG_ESCAPES)
