"""Hostile telemetry: a deterministic generator of payloads that must each be dead-lettered.

Every `HostileCase` carries the reason (a `prognos_contract.REASONS` code) the ingester must
dead-letter it with, and at which level:

- ``message``: the payload as a whole breaks contract v1 (truncated or fuzzed JSON, invalid UTF-8,
  bad gzip, oversized, NaN literals, duplicate keys, deep nesting, wrong envelope types, bad seq):
  one dead-letter entry, no points.
- ``reading``: one reading of an otherwise valid batch is bad (wrong types, far-future or far-past
  timestamps, unicode or control characters or very long names, reserved names, overflowing
  numbers): one dead-letter entry for that reading, and the batch's good readings
  (`HostileCase.good`) are stored.
- ``topic``: the payload is valid but the topic's site or gateway level breaks the contract.

The reasons are known by construction; `tests/unit/test_hostile_generator.py` checks each case
against `prognos_contract.decode_telemetry` and `parse_topic`, so the generator cannot drift from
the contract. Time is a parameter (``now_ms``), so the same arguments give the same bytes.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Final, Literal

from prognos_contract import (
    CONTENT_TYPE_JSON_GZIP,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_BATCH,
    MAX_STRING_LEN,
    MAX_VALUES_PER_READING,
    TELEMETRY_SCHEMA_ID,
    Reading,
)

Level = Literal["message", "reading", "topic"]

HOSTILE_SITE: Final = "hostile"
"""The site of every hostile case whose topic is valid."""
HOSTILE_GATEWAY: Final = "gw-hostile"
"""The gateway of every hostile case whose topic is valid (seq rises by one per case)."""
GOOD_GATEWAY: Final = "gw-good"
"""The gateway of the good batches interleaved with the hostile ones."""
GOOD_ASSETS: Final = ("pump-07", "compressor-2", "spindle-a3")
"""The assets of good readings."""
_STRUCTURAL: Final = b"{}[]:,"
_FUTURE_MS: Final = 30 * 86_400_000


@dataclasses.dataclass(frozen=True, slots=True)
class HostileCase:
    """One hostile MQTT message and how the ingester must treat it.

    Attributes:
        number: The case's position in the generated list.
        category: What kind of hostility (``truncated_json``, ``far_future_ts``, ...).
        site: The topic's site level.
        gateway: The topic's gateway level.
        payload: The MQTT payload.
        content_type: The MQTT 5 content type to publish with, or None for none.
        reason: The expected dead-letter reason.
        level: ``message``, ``reading`` or ``topic`` (see the module docstring).
        index: For ``reading``: the bad reading's index in ``readings``.
        good: The batch's good readings, which must be stored (``reading`` level only).
    """

    number: int
    category: str
    site: str
    gateway: str
    payload: bytes
    content_type: str | None
    reason: str
    level: Level
    index: int | None = None
    good: tuple[Reading, ...] = ()

    def topic(self, prefix: str) -> str:
        """The telemetry topic to publish on, under ``prefix``."""
        return f"{prefix}/{self.site}/{self.gateway}/telemetry"


@dataclasses.dataclass(frozen=True, slots=True)
class GoodBatch:
    """A valid telemetry message: every reading must be stored exactly once."""

    site: str
    gateway: str
    seq: int
    payload: bytes
    readings: tuple[Reading, ...]

    def topic(self, prefix: str) -> str:
        """The telemetry topic to publish on, under ``prefix``."""
        return f"{prefix}/{self.site}/{self.gateway}/telemetry"


class _Stamps:
    """Unique timestamps for good readings, so InfluxDB never merges two of them."""

    def __init__(self, start_ms: int) -> None:
        self._next = start_ms

    def __call__(self) -> int:
        self._next += 1
        return self._next


def good_reading(asset: str, ts: int, n: int) -> Reading:
    """A valid reading whose signals keep one type each (float, integer, boolean, string)."""
    return Reading(
        asset=asset,
        ts=ts,
        values={
            "bearing_temp_c": 40.25 + (n % 97) / 4,  # never integral: stays a float field
            "run_hours": 10_000 + n,
            "running": n % 2 == 0,
            "state": "RUN" if n % 3 else "IDLE",
        },
        bad=("discharge_pressure_bar",) if n % 5 == 0 else (),
    )


def _reading_json(reading: Reading) -> dict[str, object]:
    item: dict[str, object] = {
        "asset": reading.asset,
        "ts": reading.ts,
        "values": dict(reading.values),
    }
    if reading.bad:
        item["bad"] = list(reading.bad)
    return item


def _dumps(document: object) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True)


def _envelope(gateway: str, seq: int, readings_json: Sequence[str]) -> bytes:
    """A batch whose readings are given as JSON text (so they can be hostile text)."""
    head = (
        f'{{"schema":"{TELEMETRY_SCHEMA_ID}","gateway":{_dumps(gateway)},"seq":{seq},"readings":['
    )
    return (head + ",".join(readings_json) + "]}").encode()


def good_batches(
    count: int, *, now_ms: int, readings_per_batch: int = 10, site: str = HOSTILE_SITE
) -> list[GoodBatch]:
    """``count`` valid batches from `GOOD_GATEWAY`, seq 1, 2, ..., every ts distinct.

    Args:
        count: How many batches.
        now_ms: The clock; readings are stamped in the two hours before it.
        readings_per_batch: Readings per batch.
        site: The topic's site.

    Returns:
        The batches, in seq order.
    """
    stamps = _Stamps(now_ms - 7_200_000)
    batches = []
    n = 0
    for seq in range(1, count + 1):
        readings = []
        for _ in range(readings_per_batch):
            readings.append(good_reading(GOOD_ASSETS[n % len(GOOD_ASSETS)], stamps(), n))
            n += 1
        payload = _envelope(GOOD_GATEWAY, seq, [_dumps(_reading_json(r)) for r in readings])
        batches.append(GoodBatch(site, GOOD_GATEWAY, seq, payload, tuple(readings)))
    return batches


# ---------------------------------------------------------------------------------------------
# The generator


@dataclasses.dataclass(slots=True)
class _Ctx:
    rng: random.Random
    now_ms: int
    seq: int
    stamps: _Stamps
    n: int = 0

    def good(self) -> Reading:
        self.n += 1
        return good_reading(GOOD_ASSETS[self.n % len(GOOD_ASSETS)], self.stamps(), self.n)

    def valid_payload(self) -> bytes:
        """A valid ASCII batch (two good readings), for cutting and fuzzing (never stored)."""
        readings = [_dumps(_reading_json(self.good())) for _ in range(2)]
        return _envelope(HOSTILE_GATEWAY, self.seq, readings)

    def envelope_with(self, **fields: str) -> bytes:
        """A batch envelope whose top-level fields are the given JSON texts (others valid)."""
        parts = {
            "schema": _dumps(TELEMETRY_SCHEMA_ID),
            "gateway": _dumps(HOSTILE_GATEWAY),
            "seq": str(self.seq),
            "readings": "[" + _dumps(_reading_json(self.good())) + "]",
        }
        parts.update(fields)
        body = ",".join(f"{_dumps(k)}:{v}" for k, v in parts.items() if v != "DROP")
        return ("{" + body + "}").encode()


# A maker returns (payload, reason, level, content_type) for message-level cases, or
# (hostile reading JSON text, reason) for reading-level cases.
_MessageCase = tuple[bytes, str, str | None]
_ReadingCase = tuple[str, str]


def _truncated_json(ctx: _Ctx) -> _MessageCase:
    payload = ctx.valid_payload()
    return payload[: ctx.rng.randrange(len(payload) - 1)], "invalid_json", None


def _fuzz_delete_structural(ctx: _Ctx) -> _MessageCase:
    payload = ctx.valid_payload()
    positions = _outside_strings(payload, _STRUCTURAL)
    cut = ctx.rng.choice(positions)
    return payload[:cut] + payload[cut + 1 :], "invalid_json", None


def _fuzz_insert_junk(ctx: _Ctx) -> _MessageCase:
    payload = ctx.valid_payload()
    at = ctx.rng.choice([*_outside_strings(payload, _STRUCTURAL), len(payload)])
    junk = ctx.rng.choice([b"@", b"#", b"]", b"}", b";", b"'", b"\\", b"<>", b"undefined"])
    return payload[:at] + junk + payload[at:], "invalid_json", None


def _garbage_text(ctx: _Ctx) -> _MessageCase:
    alphabet = "abcdefghijklmnopqrstuvwxyz<>!?$%&()=*+~ "
    text = "x" + "".join(ctx.rng.choice(alphabet) for _ in range(ctx.rng.randrange(1, 200)))
    return text.encode(), "invalid_json", None


def _garbage_binary(ctx: _Ctx) -> _MessageCase:
    return b"\xff" + ctx.rng.randbytes(ctx.rng.randrange(0, 300)), "bad_encoding", None


def _invalid_utf8(ctx: _Ctx) -> _MessageCase:
    bad = ctx.rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xf8\x88"])
    reading = b'{"asset":"pump-' + bad + b'","ts":' + str(ctx.stamps()).encode() + b',"values":{}}'
    head = _envelope(HOSTILE_GATEWAY, ctx.seq, []).removesuffix(b"]}")
    return head + reading + b"]}", "bad_encoding", None


def _byte_order_mark(ctx: _Ctx) -> _MessageCase:
    return b"\xef\xbb\xbf" + ctx.valid_payload(), "invalid_json", None


def _top_level_type(ctx: _Ctx) -> _MessageCase:
    text = ctx.rng.choice(["[]", "42", '"telemetry"', "null", "true", "-0.5", "[{}]"])
    return text.encode(), "wrong_type", None


def _wrong_schema(ctx: _Ctx) -> _MessageCase:
    schema = ctx.rng.choice(['"prognos.telemetry.v2"', '"PROGNOS.TELEMETRY.V1"', "1", "null", '""'])
    return ctx.envelope_with(schema=schema), "wrong_schema", None


def _missing_field(ctx: _Ctx) -> _MessageCase:
    field = ctx.rng.choice(["schema", "gateway", "seq", "readings"])
    return ctx.envelope_with(**{field: "DROP"}), "missing_field", None


def _unknown_field(ctx: _Ctx) -> _MessageCase:
    name = ctx.rng.choice(["extra", "Seq", "readings ", "\u00fcber", "site"])
    payload = ctx.envelope_with().removesuffix(b"}") + b"," + _dumps(name).encode() + b":1}"
    return payload, "unknown_field", None


def _gateway_wrong_type(ctx: _Ctx) -> _MessageCase:
    return (
        ctx.envelope_with(gateway=ctx.rng.choice(["42", "null", "[]", "{}", "true"])),
        "wrong_type",
        None,
    )


def _gateway_bad_name(ctx: _Ctx) -> _MessageCase:
    name = ctx.rng.choice(
        [
            "GW-1",
            "gw 1",
            "gw/1",
            "gw-pl\u00e4nt",
            "",
            "-gw",
            "g" * 65,
            "gw\u0000",
            "gw\n1",
            "\u2603",
        ]
    )
    return ctx.envelope_with(gateway=_dumps(name)), "bad_name", None


def _bad_seq(ctx: _Ctx) -> _MessageCase:
    seq, reason = ctx.rng.choice(
        [
            ("-1", "out_of_range"),
            (str(2**63), "out_of_range"),
            ("9" * 101, "out_of_range"),
            ("1.5", "wrong_type"),
            ("1e3", "wrong_type"),
            ("10.0", "wrong_type"),
            ('"5"', "wrong_type"),
            ("true", "wrong_type"),
            ("null", "wrong_type"),
            ("[1]", "wrong_type"),
        ]
    )
    return ctx.envelope_with(seq=seq), reason, None


def _readings_wrong_type(ctx: _Ctx) -> _MessageCase:
    readings = ctx.rng.choice(["{}", '"readings"', "null", "1", "true"])
    return ctx.envelope_with(readings=readings), "wrong_type", None


def _too_many_readings(ctx: _Ctx) -> _MessageCase:
    readings = "[" + ",".join(["0"] * (MAX_READINGS_PER_BATCH + 1)) + "]"
    return ctx.envelope_with(readings=readings), "too_many", None


def _non_finite_literal(ctx: _Ctx) -> _MessageCase:
    literal = ctx.rng.choice(["NaN", "Infinity", "-Infinity"])
    where = ctx.rng.choice(["value", "ts", "seq"])
    if where == "seq":
        return ctx.envelope_with(seq=literal), "non_finite", None
    reading = _reading_json(ctx.good())
    text = _dumps(reading)
    if where == "ts":
        text = text.replace(f'"ts":{reading["ts"]}', f'"ts":{literal}')
    else:
        text = text.replace('"run_hours":', f'"run_hours":{literal},"x":', 1)
    return ctx.envelope_with(readings=f"[{text}]"), "non_finite", None


def _duplicate_key(ctx: _Ctx) -> _MessageCase:
    where = ctx.rng.choice(["top", "reading", "values"])
    if where == "top":
        payload = ctx.envelope_with().removesuffix(b"}") + f',"seq":{ctx.seq}}}'.encode()
        return payload, "duplicate_key", None
    text = _dumps(_reading_json(ctx.good()))
    if where == "reading":
        text = text.removesuffix("}") + ',"asset":"pump-07"}'
    else:
        text = text.replace('"values":{', '"values":{"running":true,', 1)
    return ctx.envelope_with(readings=f"[{text}]"), "duplicate_key", None


def _deep_nesting(ctx: _Ctx) -> _MessageCase:
    depth = ctx.rng.randrange(5_000, 50_000)
    nested = ctx.rng.choice(["[", '{"a":'])
    closing = "]" if nested == "[" else "}"
    return ctx.envelope_with(readings=nested * depth + "1" + closing * depth), "too_deep", None


def _oversized(ctx: _Ctx) -> _MessageCase:
    size = MAX_PAYLOAD_BYTES + ctx.rng.randrange(1, 4096)
    if ctx.rng.random() < 0.5:
        pad = '"' + "a" * size + '"'
        payload = ctx.envelope_with(readings=f"[{pad}]")
    else:
        payload = ctx.rng.randbytes(size)
    return payload, "too_large", None


def _gzip_bomb(ctx: _Ctx) -> _MessageCase:
    pad = " " * (MAX_PAYLOAD_BYTES + ctx.rng.randrange(1, 1_000_000))
    inner = ctx.envelope_with(readings=f"[{pad}]")
    content_type = ctx.rng.choice([None, CONTENT_TYPE_JSON_GZIP])
    return gzip.compress(inner, mtime=0), "too_large", content_type


def _bad_gzip(ctx: _Ctx) -> _MessageCase:
    packed = gzip.compress(ctx.valid_payload(), mtime=0)
    kind = ctx.rng.choice(["garbage", "truncated", "trailing", "plain_as_gzip", "flipped"])
    if kind == "garbage":
        return b"\x1f\x8b" + ctx.rng.randbytes(ctx.rng.randrange(0, 200)), "bad_gzip", None
    if kind == "truncated":
        return packed[: ctx.rng.randrange(10, len(packed) - 1)], "bad_gzip", None
    if kind == "trailing":
        return packed + ctx.rng.randbytes(ctx.rng.randrange(1, 50)), "bad_gzip", None
    if kind == "plain_as_gzip":
        return ctx.valid_payload(), "bad_gzip", CONTENT_TYPE_JSON_GZIP
    at = ctx.rng.randrange(10, len(packed) - 8)  # the deflate data: the CRC or the inflater fails
    return packed[:at] + bytes([packed[at] ^ 0xFF]) + packed[at + 1 :], "bad_gzip", None


def _gzip_inner_invalid(ctx: _Ctx) -> _MessageCase:
    payload = ctx.valid_payload()
    return gzip.compress(payload[: len(payload) // 2], mtime=0), "invalid_json", None


def _bad_content_type(ctx: _Ctx) -> _MessageCase:
    content_type = ctx.rng.choice(["text/plain", "application/xml", "application/cbor", "gzip"])
    return ctx.valid_payload(), "bad_content_type", content_type


MESSAGE_CATEGORIES: Final[dict[str, tuple[Callable[[_Ctx], _MessageCase], int]]] = {
    # name: (maker, weight); the costly ones (1 MiB and more) are rare.
    "truncated_json": (_truncated_json, 40),
    "fuzz_delete_structural": (_fuzz_delete_structural, 40),
    "fuzz_insert_junk": (_fuzz_insert_junk, 40),
    "garbage_text": (_garbage_text, 20),
    "garbage_binary": (_garbage_binary, 20),
    "invalid_utf8": (_invalid_utf8, 30),
    "byte_order_mark": (_byte_order_mark, 10),
    "top_level_type": (_top_level_type, 15),
    "wrong_schema": (_wrong_schema, 15),
    "missing_field": (_missing_field, 20),
    "unknown_field": (_unknown_field, 15),
    "gateway_wrong_type": (_gateway_wrong_type, 10),
    "gateway_bad_name": (_gateway_bad_name, 20),
    "bad_seq": (_bad_seq, 30),
    "readings_wrong_type": (_readings_wrong_type, 10),
    "too_many_readings": (_too_many_readings, 1),
    "non_finite_literal": (_non_finite_literal, 30),
    "duplicate_key": (_duplicate_key, 30),
    "deep_nesting": (_deep_nesting, 2),
    "oversized": (_oversized, 1),
    "gzip_bomb": (_gzip_bomb, 2),
    "bad_gzip": (_bad_gzip, 30),
    "gzip_inner_invalid": (_gzip_inner_invalid, 10),
    "bad_content_type": (_bad_content_type, 10),
}


def _reading_not_object(ctx: _Ctx) -> _ReadingCase:
    return ctx.rng.choice(["42", '"pump-07"', "null", "[]", "true", "[[[[1]]]]"]), "wrong_type"


def _reading_missing_field(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    del item[ctx.rng.choice(["asset", "ts", "values"])]
    return _dumps(item), "missing_field"


def _reading_unknown_field(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    item[ctx.rng.choice(["quality", "site", "Asset", "unit"])] = "x"
    return _dumps(item), "unknown_field"


def _asset_wrong_type(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    item["asset"] = ctx.rng.choice([7, None, ["pump-07"], {"id": 1}, True])
    return _dumps(item), "wrong_type"


def _unicode_name(ctx: _Ctx) -> str:
    return ctx.rng.choice(
        [
            "pump-\u00e4",
            "\u6cf5-07",
            "pump\u200b07",  # zero-width space
            "pump\u202e70",  # right-to-left override
            "\U0001f4a5",
            "pump 07",
            "pump,07",
            "pump=07",
            'pump"07',
            "pump\\07",
            "pump\u000007",
            "pump\n07",
            "pump\t07",
            "\u0007bell",
            "",
            "-pump",
            "p" * ctx.rng.randrange(129, 5000),
        ]
    )


def _asset_bad_name(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    item["asset"] = _unicode_name(ctx)
    return _dumps(item), "bad_name"


def _ts_wrong_type(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    text = _dumps(item)
    literal = ctx.rng.choice([f'"{item["ts"]}"', f"{item['ts']}.0", "1.7e12", "null", "true", "[]"])
    return text.replace(f'"ts":{item["ts"]}', f'"ts":{literal}'), "wrong_type"


def _far_ts(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    ts, reason = ctx.rng.choice(
        [
            (0, "ts_out_of_range"),
            (-1, "ts_out_of_range"),
            (946_684_799_999, "ts_out_of_range"),  # 1999-12-31T23:59:59.999Z
            (4_102_444_800_000, "ts_out_of_range"),  # 2100-01-01
            (253_402_300_800_000, "ts_out_of_range"),  # year 10000
            (2**62, "ts_out_of_range"),
            (ctx.now_ms // 1000, "ts_out_of_range"),  # seconds, not milliseconds
            (ctx.now_ms * 1000, "ts_out_of_range"),  # microseconds
            (ctx.now_ms + _FUTURE_MS, "ts_in_future"),
            (ctx.now_ms + 365 * 86_400_000, "ts_in_future"),
        ]
    )
    item["ts"] = ts
    return _dumps(item), reason


def _values_wrong_type(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    if ctx.rng.random() < 0.2:
        item["values"] = ctx.rng.choice([[1, 2], "x", None, 3])
    else:
        values = dict(item["values"])  # type: ignore[call-overload]
        values["bearing_temp_c"] = ctx.rng.choice([None, [71.2], {"v": 71.2}, {"a": {"b": {}}}])
        item["values"] = values
    return _dumps(item), "wrong_type"


def _value_overflow(ctx: _Ctx) -> _ReadingCase:
    text = _dumps(_reading_json(ctx.good()))
    literal, reason = ctx.rng.choice(
        [
            ("1e999", "non_finite"),
            ("-1e400", "non_finite"),
            (str(2**63), "out_of_range"),
            (str(-(2**63) - 1), "out_of_range"),
            ("1" + "0" * 99, "out_of_range"),
        ]
    )
    return text.replace('"run_hours":', f'"run_hours":{literal},"x":', 1), reason


def _value_too_long(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    values = dict(item["values"])  # type: ignore[call-overload]
    values["state"] = ctx.rng.choice(["R", "\u00e9", "\U0001f600"]) * ctx.rng.randrange(
        MAX_STRING_LEN + 1, 20_000
    )
    item["values"] = values
    return _dumps(item), "too_long"


def _lone_surrogate(ctx: _Ctx) -> _ReadingCase:
    text = _dumps(_reading_json(ctx.good()))
    escape = ctx.rng.choice(["\\ud800", "\\udfff", "x\\ud83d"])
    return text.replace('"state":"', f'"state":"{escape}', 1), "bad_encoding"


def _too_many_values(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    item["values"] = {f"s{i}": i for i in range(MAX_VALUES_PER_READING + 1)}
    return _dumps(item), "too_many"


def _signal_bad_name(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    values = dict(item["values"])  # type: ignore[call-overload]
    values[_unicode_name(ctx)] = 1.5
    item["values"] = values
    return _dumps(item), "bad_name"


def _signal_reserved(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    name = ctx.rng.choice(["time", "asset", "site", "gateway", "model"])
    if ctx.rng.random() < 0.5:
        values = dict(item["values"])  # type: ignore[call-overload]
        values[name] = 1.5
        item["values"] = values
    else:
        item["bad"] = [name]
    return _dumps(item), "reserved_name"


def _bad_list(ctx: _Ctx) -> _ReadingCase:
    item = _reading_json(ctx.good())
    kind = ctx.rng.choice(["not_list", "entry_type", "duplicate", "also_value", "too_many"])
    reasons = {
        "not_list": ("discharge_pressure_bar", "wrong_type"),
        "entry_type": ([7], "wrong_type"),
        "duplicate": (["flow_m3_h", "flow_m3_h"], "duplicate_name"),
        "also_value": (["bearing_temp_c"], "value_and_bad"),
        "too_many": ([f"b{i}" for i in range(MAX_VALUES_PER_READING + 1)], "too_many"),
    }
    item["bad"], reason = reasons[kind]
    return _dumps(item), reason


READING_CATEGORIES: Final[dict[str, tuple[Callable[[_Ctx], _ReadingCase], int]]] = {
    "reading_not_object": (_reading_not_object, 20),
    "reading_missing_field": (_reading_missing_field, 20),
    "reading_unknown_field": (_reading_unknown_field, 15),
    "asset_wrong_type": (_asset_wrong_type, 15),
    "asset_bad_name": (_asset_bad_name, 40),
    "ts_wrong_type": (_ts_wrong_type, 20),
    "far_ts": (_far_ts, 40),
    "values_wrong_type": (_values_wrong_type, 30),
    "value_overflow": (_value_overflow, 20),
    "value_too_long": (_value_too_long, 10),
    "lone_surrogate": (_lone_surrogate, 15),
    "too_many_values": (_too_many_values, 3),
    "signal_bad_name": (_signal_bad_name, 40),
    "signal_reserved": (_signal_reserved, 15),
    "bad_list": (_bad_list, 25),
}

TOPIC_SITES: Final = ("Plant1", "pl\u00e4nt", "site one", "s" * 65, "-site", "SITE", "\u5de5\u5382")
"""Site levels that match the subscription filter but break the contract's topic rule."""
TOPIC_WEIGHT: Final = 15


def _outside_strings(payload: bytes, wanted: bytes) -> list[int]:
    """Positions of bytes in ``wanted`` that are not inside a JSON string."""
    positions, in_string, escaped = [], False, False
    for at, byte in enumerate(payload):
        if in_string:
            if escaped:
                escaped = False
            elif byte == ord("\\"):
                escaped = True
            elif byte == ord('"'):
                in_string = False
        elif byte == ord('"'):
            in_string = True
        elif byte in wanted:
            positions.append(at)
    return positions


def _schedule(rng: random.Random, count: int) -> Iterator[tuple[Level, str]]:
    """``count`` categories drawn by weight (deterministic for the seed)."""
    names: list[tuple[Level, str]] = [("message", n) for n in MESSAGE_CATEGORIES]
    names += [("reading", n) for n in READING_CATEGORIES]
    names.append(("topic", "topic_bad_site"))
    weights = [w for _, w in MESSAGE_CATEGORIES.values()]
    weights += [w for _, w in READING_CATEGORIES.values()]
    weights.append(TOPIC_WEIGHT)
    # Every category at least once, then by weight.
    yield from names[:count]
    yield from rng.choices(names, weights=weights, k=max(0, count - len(names)))


def generate(count: int = 10_000, *, now_ms: int, seed: int = 0) -> list[HostileCase]:
    """``count`` hostile cases, every category at least once (when ``count`` allows).

    Args:
        count: How many cases.
        now_ms: The clock: good readings are stamped in the hour before it, far-future ones
            30 days or more after it.
        seed: The random seed; the same arguments give the same cases, byte for byte.

    Returns:
        The cases; on the valid topic, case ``i`` has seq ``i + 1`` from `HOSTILE_GATEWAY`.
    """
    rng = random.Random(seed)
    stamps = _Stamps(now_ms - 3_600_000)
    cases = []
    for number, (level, category) in enumerate(_schedule(rng, count)):
        ctx = _Ctx(rng=rng, now_ms=now_ms, seq=number + 1, stamps=stamps, n=number * 3)
        if level == "message":
            payload, reason, content_type = MESSAGE_CATEGORIES[category][0](ctx)
            case = HostileCase(
                number,
                category,
                HOSTILE_SITE,
                HOSTILE_GATEWAY,
                payload,
                content_type,
                reason,
                level,
            )
        elif level == "reading":
            text, reason = READING_CATEGORIES[category][0](ctx)
            good = (ctx.good(), ctx.good())
            index = rng.randrange(3)
            readings = [_dumps(_reading_json(r)) for r in good]
            readings.insert(index, text)
            payload = _envelope(HOSTILE_GATEWAY, ctx.seq, readings)
            case = HostileCase(
                number,
                category,
                HOSTILE_SITE,
                HOSTILE_GATEWAY,
                payload,
                None,
                reason,
                level,
                index,
                good,
            )
        else:
            site = rng.choice(TOPIC_SITES)
            case = HostileCase(
                number,
                category,
                site,
                HOSTILE_GATEWAY,
                ctx.valid_payload(),
                None,
                "bad_name",
                level,
            )
        cases.append(case)
    return cases
