"""The published JSON Schemas agree with the decoders of contract v1."""

import json
import typing
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from prognos_contract import (
    AGENT_VERSION_PATTERN,
    EVENT_KINDS,
    EVENT_SCHEMA_ID,
    ID_PATTERN,
    MAX_DETAIL_ENTRIES,
    MAX_HEALTH_METRICS,
    MAX_INT,
    MAX_READINGS_PER_BATCH,
    MAX_STRING_LEN,
    MAX_VALUES_PER_READING,
    NAME_PATTERN,
    REASONS,
    RESERVED_NAMES,
    SCHEMA_NAMES,
    TELEMETRY_SCHEMA_ID,
    TS_MAX_MS,
    TS_MIN_MS,
    ContractError,
    Reason,
    decode_event,
    decode_health,
    decode_status,
    decode_telemetry,
    schema,
)

NOW_MS = 1_763_805_599_000
GOOD = {"asset": "pump-07", "ts": NOW_MS, "values": {"t": 1.5}}


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name))


def strict_json(payload: bytes) -> object:
    """Parse as RFC 8259 does: NaN, Infinity and duplicate keys are not JSON."""

    def no_constant(literal: str) -> None:
        raise ValueError(literal)

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in pairs}) != len(pairs):
            raise ValueError(pairs)
        return dict(pairs)

    return json.loads(payload, parse_constant=no_constant, object_pairs_hook=no_duplicates)


def schema_accepts(name: str, payload: bytes) -> bool:
    try:
        document = strict_json(payload)
    except ValueError:
        return False
    return bool(validator(name).is_valid(document))


def batch(*, readings: list[object] | None = None, **changes: object) -> bytes:
    document = {
        "schema": TELEMETRY_SCHEMA_ID,
        "gateway": "gw-plant1-01",
        "seq": 18234,
        "readings": [GOOD] if readings is None else readings,
    }
    return json.dumps(document | changes).encode()


def test_reason_codes_are_documented_once_each() -> None:
    """Every reason code of the Reason type is documented in REASONS, and no other."""
    assert sorted(typing.get_args(Reason)) == sorted(REASONS)
    assert all(code.isidentifier() and code.islower() for code in REASONS)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_schema_is_valid_draft_2020_12(name: str) -> None:
    """Each packaged schema is a valid draft 2020-12 schema, returned as a fresh copy."""
    document = schema(name)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    document.clear()
    assert schema(name)


def test_an_unknown_schema_name_is_refused() -> None:
    """schema() names the schemas it knows when asked for another."""
    with pytest.raises(ValueError, match=r"telemetry\.v1"):
        schema("telemetry.v2")


def test_the_schema_states_the_same_limits_as_the_code() -> None:
    """Patterns, bounds and counts in telemetry.v1.schema.json equal the module constants."""
    document = schema("telemetry.v1")
    defs = document["$defs"]
    reading = defs["reading"]["properties"]
    assert document["properties"]["schema"]["const"] == TELEMETRY_SCHEMA_ID
    assert defs["id"]["pattern"] == ID_PATTERN
    assert defs["name"]["pattern"] == NAME_PATTERN
    assert set(defs["signal"]["not"]["enum"]) == RESERVED_NAMES
    assert (defs["ts"]["minimum"], defs["ts"]["exclusiveMaximum"]) == (TS_MIN_MS, TS_MAX_MS)
    assert document["properties"]["seq"]["maximum"] == MAX_INT
    assert document["properties"]["readings"]["maxItems"] == MAX_READINGS_PER_BATCH
    assert reading["values"]["maxProperties"] == MAX_VALUES_PER_READING
    assert reading["bad"]["maxItems"] == MAX_VALUES_PER_READING
    assert defs["value"]["anyOf"][1]["maxLength"] == MAX_STRING_LEN
    event = schema("event.v1")["properties"]
    assert event["schema"]["const"] == EVENT_SCHEMA_ID
    assert tuple(event["kind"]["enum"]) == EVENT_KINDS
    assert event["detail"]["maxProperties"] == MAX_DETAIL_ENTRIES
    assert schema("health.v1")["maxProperties"] == MAX_HEALTH_METRICS + 1
    assert schema("status.v1")["properties"]["agent_version"]["pattern"] == AGENT_VERSION_PATTERN


# Payloads both sides reject. "reading" means the decoder rejects that reading only (the batch
# decodes, without it); the schema, judging the document as a whole, rejects the document.
INVALID_TELEMETRY = {
    "nan_literal": (batch().replace(b"1.5", b"NaN"), "non_finite", "batch"),
    "infinity_literal": (batch().replace(b"1.5", b"Infinity"), "non_finite", "batch"),
    "overflow_to_infinity": (batch().replace(b"1.5", b"1e999"), "non_finite", "reading"),
    "wrong_schema_id": (batch(schema="prognos.telemetry.v2"), "wrong_schema", "batch"),
    "missing_schema_id": (batch().replace(b'"schema"', b'"schemo"'), "missing_field", "batch"),
    "bad_gateway_name": (batch(gateway="GW plant 1"), "bad_name", "batch"),
    "negative_seq": (batch(seq=-1), "out_of_range", "batch"),
    "bool_as_seq": (batch(seq=True), "wrong_type", "batch"),
    "string_as_seq": (batch(seq="1"), "wrong_type", "batch"),
    "unknown_top_level_key": (batch(compressed=False), "unknown_field", "batch"),
    "readings_not_array": (batch(readings={"0": GOOD}), "wrong_type", "batch"),  # type: ignore[arg-type]
    "duplicate_key": (
        batch().replace(b'"seq": 18234', b'"seq": 1, "seq": 2'),
        "duplicate_key",
        "batch",
    ),
    "string_too_long": (
        batch(readings=[GOOD | {"values": {"s": "x" * (MAX_STRING_LEN + 1)}}]),
        "too_long",
        "reading",
    ),
    "bool_as_ts": (batch(readings=[GOOD | {"ts": True}]), "wrong_type", "reading"),
    "ts_before_2000": (
        batch(readings=[GOOD | {"ts": TS_MIN_MS - 1}]),
        "ts_out_of_range",
        "reading",
    ),
    "ts_in_seconds": (
        batch(readings=[GOOD | {"ts": NOW_MS // 1000}]),
        "ts_out_of_range",
        "reading",
    ),
    "null_value": (batch(readings=[GOOD | {"values": {"t": None}}]), "wrong_type", "reading"),
    "nested_value": (batch(readings=[GOOD | {"values": {"t": {"v": 1}}}]), "wrong_type", "reading"),
    "bad_asset_name": (batch(readings=[GOOD | {"asset": "pump 7"}]), "bad_name", "reading"),
    "bad_signal_name": (batch(readings=[GOOD | {"values": {"t,x=1": 1}}]), "bad_name", "reading"),
    "reserved_signal": (
        batch(readings=[GOOD | {"values": {"time": 1}}]),
        "reserved_name",
        "reading",
    ),
    "unknown_reading_key": (batch(readings=[GOOD | {"unit": "C"}]), "unknown_field", "reading"),
    "missing_values": (batch(readings=[{"asset": "a", "ts": NOW_MS}]), "missing_field", "reading"),
    "bad_twice": (batch(readings=[GOOD | {"bad": ["u", "u"]}]), "duplicate_name", "reading"),
    "reading_not_object": (batch(readings=[[GOOD]]), "wrong_type", "reading"),
}

# What JSON Schema cannot say, the decoder still rejects (see telemetry.v1.schema.json).
DECODER_ONLY = {
    "values_and_bad_overlap": (batch(readings=[GOOD | {"bad": ["t"]}]), "value_and_bad"),
    "int_beyond_int64": (batch(readings=[GOOD | {"values": {"t": 2**63}}]), "out_of_range"),
    "integer_ts_as_float": (batch(readings=[GOOD | {"ts": float(NOW_MS)}]), "wrong_type"),
    "lone_surrogate": (batch(readings=[GOOD | {"values": {"t": "\ud800"}}]), "bad_encoding"),
    "ts_in_future": (batch(readings=[GOOD | {"ts": NOW_MS + 86_400_001}]), "ts_in_future"),
}


def decoder_rejects(payload: bytes) -> tuple[str, str]:
    """Return (level, reason) of the decoder's rejection, failing if it accepts everything."""
    try:
        decoded = decode_telemetry(payload, now_ms=NOW_MS)
    except ContractError as exc:
        return "batch", exc.reason
    assert decoded.batch.seq == 18234
    assert len(decoded.rejected) == 1, decoded
    assert decoded.batch.readings == ()
    return "reading", decoded.rejected[0].reason


def test_the_valid_reference_payload_passes_both() -> None:
    """The reference batch used by the invalid table is valid to schema and decoder alike."""
    assert schema_accepts("telemetry.v1", batch())
    assert decode_telemetry(batch(), now_ms=NOW_MS).rejected == ()


@pytest.mark.parametrize(
    ("payload", "reason", "level"), INVALID_TELEMETRY.values(), ids=INVALID_TELEMETRY
)
def test_an_invalid_payload_is_rejected_by_schema_and_decoder(
    payload: bytes, reason: str, level: str
) -> None:
    """Schema and decoder both reject it: the decoder a reading or the batch, with the reason."""
    assert not schema_accepts("telemetry.v1", payload)
    assert decoder_rejects(payload) == (level, reason)


@pytest.mark.parametrize(("payload", "reason"), DECODER_ONLY.values(), ids=DECODER_ONLY)
def test_the_decoder_rejects_what_json_schema_cannot_express(payload: bytes, reason: str) -> None:
    """Rules JSON Schema cannot state (overlap, int64, UTF-8, clock) still hold in the decoder."""
    assert schema_accepts("telemetry.v1", payload)
    assert decoder_rejects(payload) == ("reading", reason)


# ---------------------------------------------------------------- status, events, health

STATUS = {"state": "online", "ts": NOW_MS, "agent_version": "0.1.0"}
EVENT = {
    "schema": EVENT_SCHEMA_ID,
    "gateway": "gw-01",
    "ts": NOW_MS,
    "kind": "threshold_alarm",
    "asset": "pump-07",
    "detail": {"signal": "bearing_temp_c", "value": 93.5, "limit": 90, "rising": True},
}
HEALTH = {"ts": NOW_MS, "outbox_depth": 12, "dropped": 0, "rss_bytes": 41234432, "cpu_percent": 2.5}
DECODERS = {"status.v1": decode_status, "event.v1": decode_event, "health.v1": decode_health}

INVALID_OTHERS = [
    ("status.v1", STATUS | {"state": "away"}, "bad_value"),
    ("status.v1", STATUS | {"agent_version": "v 1"}, "bad_value"),
    ("status.v1", STATUS | {"ts": "now"}, "wrong_type"),
    ("status.v1", STATUS | {"extra": 1}, "unknown_field"),
    ("status.v1", {"state": "offline", "ts": NOW_MS}, "missing_field"),
    ("event.v1", EVENT | {"schema": "prognos.event.v2"}, "wrong_schema"),
    ("event.v1", EVENT | {"kind": "meltdown"}, "bad_value"),
    ("event.v1", EVENT | {"gateway": "GW"}, "bad_name"),
    ("event.v1", EVENT | {"asset": ""}, "bad_name"),
    ("event.v1", EVENT | {"detail": {"nested": {}}}, "wrong_type"),
    ("event.v1", EVENT | {"detail": []}, "wrong_type"),
    ("event.v1", EVENT | {"detail": {str(i): i for i in range(65)}}, "too_many"),
    ("event.v1", EVENT | {"ts": TS_MAX_MS}, "ts_out_of_range"),
    ("health.v1", HEALTH | {"healthy": True}, "wrong_type"),
    ("health.v1", HEALTH | {"mode": "ok"}, "wrong_type"),
    ("health.v1", HEALTH | {"time": 1}, "reserved_name"),
    ("health.v1", HEALTH | {"bad name": 1}, "bad_name"),
    ("health.v1", {"outbox_depth": 1}, "missing_field"),
    ("health.v1", {"ts": NOW_MS} | {f"m{i}": i for i in range(257)}, "too_many"),
]


@pytest.mark.parametrize(
    ("name", "document"), [("status.v1", STATUS), ("event.v1", EVENT), ("health.v1", HEALTH)]
)
def test_a_valid_message_passes_schema_and_decoder(name: str, document: dict[str, Any]) -> None:
    """The reference status, event and health messages pass both the schema and the decoder."""
    payload = json.dumps(document).encode()
    assert schema_accepts(name, payload)
    DECODERS[name](payload)


@pytest.mark.parametrize(("name", "document", "reason"), INVALID_OTHERS)
def test_an_invalid_message_is_rejected_by_schema_and_decoder(
    name: str, document: dict[str, Any], reason: str
) -> None:
    """An invalid status, event or health message fails both schema and decoder, with a reason."""
    payload = json.dumps(document).encode()
    assert not schema_accepts(name, payload)
    with pytest.raises(ContractError) as info:
        DECODERS[name](payload)
    assert info.value.reason == reason
