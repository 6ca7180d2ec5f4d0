"""Telemetry batches of MQTT contract v1: round trips, hostile bytes, per-reading rejection."""

import gzip
import json
import operator
import string
import tracemalloc
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from prognos_contract import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_JSON_GZIP,
    MAX_INT,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_BATCH,
    MAX_STRING_LEN,
    MAX_VALUES_PER_READING,
    MIN_INT,
    REASONS,
    RESERVED_NAMES,
    TS_MAX_MS,
    TS_MIN_MS,
    ContractError,
    DecodedBatch,
    Reading,
    TelemetryBatch,
    decode_telemetry,
    encode_telemetry,
    schema,
)

VALIDATOR = Draft202012Validator(schema("telemetry.v1"))
NOW_MS = 1_763_805_599_000

ALNUM = string.ascii_letters + string.digits
# Built from characters rather than from_regex: several times faster, same strings.
names = st.builds(operator.add, st.sampled_from(ALNUM), st.text(ALNUM + "_.:-", max_size=127))
signals = names.filter(lambda name: name not in RESERVED_NAMES)
ids = st.builds(
    operator.add,
    st.sampled_from(string.ascii_lowercase + string.digits),
    st.text(string.ascii_lowercase + string.digits + "_-", max_size=63),
)
values = st.one_of(
    st.booleans(),
    st.integers(min_value=MIN_INT, max_value=MAX_INT),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), max_size=MAX_STRING_LEN),
)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    signal_values = draw(st.dictionaries(signals, values, max_size=6))
    bad = draw(st.lists(signals.filter(lambda n: n not in signal_values), max_size=3, unique=True))
    return Reading(
        asset=draw(names),
        ts=draw(st.integers(min_value=TS_MIN_MS, max_value=TS_MAX_MS - 1)),
        values=signal_values,
        bad=tuple(bad),
    )


batches = st.builds(
    TelemetryBatch,
    gateway=ids,
    seq=st.integers(min_value=0, max_value=MAX_INT),
    readings=st.lists(readings(), max_size=5).map(tuple),
)


def typed(batch: TelemetryBatch) -> object:
    """Compare by repr too: ``1 == 1.0 == True`` must not hide a changed type."""
    return (
        batch.gateway,
        batch.seq,
        [
            (r.asset, r.ts, [(k, repr(v)) for k, v in r.values.items()], r.bad)
            for r in batch.readings
        ],
    )


def example(**changes: Any) -> dict[str, Any]:
    """The telemetry batch of DESIGN.md as a JSON document, with top-level ``changes``."""
    document: dict[str, Any] = {
        "schema": "prognos.telemetry.v1",
        "gateway": "gw-plant1-01",
        "seq": 18234,
        "readings": [
            {
                "asset": "pump-07",
                "ts": 1763805599000,
                "values": {
                    "bearing_temp_c": 71.25,
                    "vibration_rms_mm_s": 3.12,
                    "run_hours": 10234,
                    "fault_code": 0,
                },
                "bad": ["discharge_pressure_bar"],
            }
        ],
    }
    return document | changes


def dumps(document: object) -> bytes:
    return json.dumps(document).encode()


# ---------------------------------------------------------------- round trips


@settings(max_examples=150, deadline=None)
@given(batch=batches, compress=st.booleans())
def test_any_valid_batch_round_trips(*, batch: TelemetryBatch, compress: bool) -> None:
    """Any valid batch decodes, plain or gzipped, to itself with no rejected reading."""
    decoded = decode_telemetry(encode_telemetry(batch, compress=compress))
    assert decoded == DecodedBatch(batch=batch, rejected=())
    assert typed(decoded.batch) == typed(batch)


@settings(max_examples=100, deadline=None)
@given(batch=batches)
def test_every_encoded_batch_validates_against_the_schema(batch: TelemetryBatch) -> None:
    """Whatever the encoder writes is valid under telemetry.v1.schema.json."""
    VALIDATOR.validate(json.loads(encode_telemetry(batch)))


def test_the_design_example_decodes() -> None:
    """The example batch of DESIGN.md decodes completely and is valid under the schema."""
    document = example()
    VALIDATOR.validate(document)
    decoded = decode_telemetry(dumps(document))
    assert decoded.rejected == ()
    assert decoded.batch.seq == 18234
    assert decoded.batch.readings[0].bad == ("discharge_pressure_bar",)
    assert dict(decoded.batch.readings[0].values) == document["readings"][0]["values"]


def test_encoding_is_compact_deterministic_and_utf8() -> None:
    """The encoder writes compact UTF-8 JSON, omits an empty bad list, and gzips reproducibly."""
    reading = Reading(asset="pump-07", ts=NOW_MS, values={"mode": "Überlast"})
    batch = TelemetryBatch(gateway="gw", seq=1, readings=(reading,))
    plain = encode_telemetry(batch)
    assert (
        plain
        == (
            '{"schema":"prognos.telemetry.v1","gateway":"gw","seq":1,"readings":'
            '[{"asset":"pump-07","ts":1763805599000,"values":{"mode":"Überlast"}}]}'
        ).encode()
    )
    assert encode_telemetry(batch, compress=True) == encode_telemetry(batch, compress=True)
    assert gzip.decompress(encode_telemetry(batch, compress=True)) == plain


@pytest.mark.parametrize(
    ("content_type", "compress"),
    [
        (None, False),
        (None, True),
        (CONTENT_TYPE_JSON, False),
        (CONTENT_TYPE_JSON, True),
        (CONTENT_TYPE_JSON_GZIP, True),
        ("Application/JSON; charset=utf-8", False),
    ],
)
def test_gzip_is_recognised_by_content_type_or_magic(
    *, content_type: str | None, compress: bool
) -> None:
    """Gzip is recognised by its content type or by its magic bytes; media types are case-blind."""
    batch = TelemetryBatch(gateway="gw", seq=7)
    decoded = decode_telemetry(
        encode_telemetry(batch, compress=compress), content_type=content_type
    )
    assert decoded.batch == batch


# ---------------------------------------------------------------- hostile bytes


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches, compress=st.booleans(), declared=st.booleans())
def test_every_truncation_is_rejected_with_a_reason(
    *, batch: TelemetryBatch, compress: bool, declared: bool
) -> None:
    """A truncated payload, plain or gzipped, is always rejected with a reason."""
    payload = encode_telemetry(batch, compress=compress)
    content_type = CONTENT_TYPE_JSON_GZIP if compress and declared else None
    for end in range(len(payload)):
        with pytest.raises(ContractError) as info:
            decode_telemetry(payload[:end], content_type=content_type)
        assert info.value.reason in REASONS


def corrupt(payload: bytes, data: st.DataObject) -> bytes:
    """Flip, insert and delete a few random bytes."""
    out = bytearray(payload)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "insert" or not out:
            out.insert(data.draw(st.integers(0, len(out))), data.draw(st.integers(0, 255)))
        elif op == "flip":
            out[data.draw(st.integers(0, len(out) - 1))] ^= data.draw(st.integers(1, 255))
        else:
            del out[data.draw(st.integers(0, len(out) - 1))]
    return bytes(out)


def outcome(payload: bytes) -> DecodedBatch | ContractError:
    """Return what decoding gives, the batch or the rejection; any other exception escapes."""
    try:
        return decode_telemetry(payload)
    except ContractError as exc:
        return exc


def assert_rejected_or_valid(payload: bytes) -> None:
    """Decoding raises ContractError with a reason or yields a batch valid under the schema."""
    result = outcome(payload)
    if isinstance(result, ContractError):
        assert result.reason in REASONS
        assert result.message
    else:
        assert all(r.reason in REASONS for r in result.rejected)
        VALIDATOR.validate(json.loads(encode_telemetry(result.batch)))


@settings(max_examples=300, deadline=None)
@given(batch=batches, compress=st.booleans(), data=st.data())
def test_corruption_is_rejected_or_decodes_to_a_valid_batch(
    *, batch: TelemetryBatch, compress: bool, data: st.DataObject
) -> None:
    """Corrupted bytes are rejected with a reason or decode to a valid batch, nothing else."""
    assert_rejected_or_valid(corrupt(encode_telemetry(batch, compress=compress), data))


@pytest.mark.parametrize("compress", [False, True])
def test_every_single_bit_flip_is_rejected_or_decodes_to_a_valid_batch(*, compress: bool) -> None:
    """Flipping any one bit of the example payload never escapes as another exception."""
    payload = encode_telemetry(decode_telemetry(dumps(example())).batch, compress=compress)
    changed = 0
    for index in range(len(payload)):
        for bit in range(8):
            flipped = bytearray(payload)
            flipped[index] ^= 1 << bit
            assert_rejected_or_valid(bytes(flipped))
            result = outcome(bytes(flipped))
            if compress and isinstance(result, DecodedBatch):
                # Only header bits (mtime, flags, OS) can flip unnoticed: CRC32 guards the content.
                changed += result.batch != decode_telemetry(payload).batch
    assert changed == 0


def test_a_gzip_bomb_is_rejected_without_inflating_it() -> None:
    """100 MB of zeros gzipped is rejected as too_large after inflating at most about 1 MiB."""
    deflater = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1_000_000)
    bomb = b"".join(deflater.compress(chunk) for _ in range(100)) + deflater.flush()
    assert len(bomb) < MAX_PAYLOAD_BYTES
    tracemalloc.start()
    try:
        with pytest.raises(ContractError) as info:
            decode_telemetry(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == "too_large"
    assert peak < 3 * MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    ("payload", "content_type", "reason"),
    [
        (b"", None, "invalid_json"),
        (b" ", None, "invalid_json"),
        (b"\xef\xbb\xbf{}", None, "invalid_json"),
        (b"{} {}", None, "invalid_json"),
        (b"\xff{}", None, "bad_encoding"),
        (b"[" * 200_000, None, "too_deep"),
        (b"{}", "text/plain", "bad_content_type"),
        (b"{}", CONTENT_TYPE_JSON_GZIP, "bad_gzip"),
        (gzip.compress(b"{}") + b"x", None, "bad_gzip"),
        (gzip.compress(b"{}") * 2, None, "bad_gzip"),
        (b"\x1f\x8b\x08\x00garbage", None, "bad_gzip"),
        (b" " * (MAX_PAYLOAD_BYTES + 1), None, "too_large"),
        (gzip.compress(b" " * MAX_PAYLOAD_BYTES + b"{}"), None, "too_large"),
        (b"[]", None, "wrong_type"),
        (b'"prognos.telemetry.v1"', None, "wrong_type"),
        (dumps({"gateway": "gw", "seq": 1, "readings": []}), None, "missing_field"),
        (dumps(example(schema="prognos.telemetry.v2")), None, "wrong_schema"),
        (dumps(example(schema=None)), None, "wrong_schema"),
        (dumps(example(extra=1)), None, "unknown_field"),
        (
            dumps({"schema": "prognos.telemetry.v1", "gateway": "gw", "seq": 1}),
            None,
            "missing_field",
        ),
        (dumps(example(gateway="GW-1")), None, "bad_name"),
        (dumps(example(gateway="gw/1")), None, "bad_name"),
        (dumps(example(gateway="")), None, "bad_name"),
        (dumps(example(gateway=7)), None, "wrong_type"),
        (dumps(example(seq=-1)), None, "out_of_range"),
        (dumps(example(seq=2**63)), None, "out_of_range"),
        (dumps(example(seq=True)), None, "wrong_type"),
        (dumps(example(seq=1.0)), None, "wrong_type"),
        (dumps(example(seq="1")), None, "wrong_type"),
        (dumps(example(readings={})), None, "wrong_type"),
        (dumps(example(readings=[{}] * (MAX_READINGS_PER_BATCH + 1))), None, "too_many"),
        (
            b'{"schema":"prognos.telemetry.v1","schema":"prognos.telemetry.v1"}',
            None,
            "duplicate_key",
        ),
        (dumps(example()).replace(b'"fault_code": 0', b'"fault_code": NaN'), None, "non_finite"),
        (dumps(example()).replace(b"71.25", b"-Infinity"), None, "non_finite"),
        (dumps(example()).replace(b"71.25", b"1" * 200), None, "out_of_range"),
        (dumps(example()).replace(b'"bad"', b'"values"'), None, "duplicate_key"),
    ],
)
def test_a_malformed_batch_is_rejected_whole(
    payload: bytes, content_type: str | None, reason: str
) -> None:
    """A batch-level problem rejects the whole payload with a stable reason and a message."""
    with pytest.raises(ContractError) as info:
        decode_telemetry(payload, content_type=content_type)
    assert info.value.reason == reason
    assert reason in REASONS
    assert info.value.message


def test_a_rejection_names_the_offending_value() -> None:
    """The message quotes the offending value, truncated, and str() adds path and reason."""
    with pytest.raises(ContractError) as info:
        decode_telemetry(dumps(example(gateway="Gateway-" + "x" * 500)))
    assert info.value.path == "/gateway"
    assert "'Gateway-xxx" in info.value.message
    assert "(508 characters)" in info.value.message
    assert len(info.value.message) < 200
    assert str(info.value).startswith("/gateway: gateway 'Gateway-xxx")
    assert str(info.value).endswith("(bad_name)")


# ---------------------------------------------------------------- per-reading rejection

GOOD = {"asset": "pump-07", "ts": NOW_MS, "values": {"t": 1.5}}


@pytest.mark.parametrize(
    ("reading", "reason", "path"),
    [
        ({"ts": NOW_MS, "values": {}}, "missing_field", "/asset"),
        ({"asset": "a", "values": {}}, "missing_field", "/ts"),
        ({"asset": "a", "ts": NOW_MS}, "missing_field", "/values"),
        (GOOD | {"extra": 1}, "unknown_field", "/extra"),
        (GOOD | {"asset": "pump 07"}, "bad_name", "/asset"),
        (GOOD | {"asset": "x" * 129}, "bad_name", "/asset"),
        (GOOD | {"asset": "pump-07\n"}, "bad_name", "/asset"),
        (GOOD | {"asset": 7}, "wrong_type", "/asset"),
        (GOOD | {"ts": TS_MIN_MS - 1}, "ts_out_of_range", "/ts"),
        (GOOD | {"ts": TS_MAX_MS}, "ts_out_of_range", "/ts"),
        (GOOD | {"ts": float(NOW_MS)}, "wrong_type", "/ts"),
        (GOOD | {"ts": True}, "wrong_type", "/ts"),
        (GOOD | {"ts": NOW_MS + 86_400_001}, "ts_in_future", "/ts"),
        (GOOD | {"values": []}, "wrong_type", "/values"),
        (GOOD | {"values": {"a b": 1}}, "bad_name", "/values"),
        (GOOD | {"values": {"time": 1}}, "reserved_name", "/values"),
        (GOOD | {"values": {"t": None}}, "wrong_type", "/values/t"),
        (GOOD | {"values": {"t": [1]}}, "wrong_type", "/values/t"),
        (GOOD | {"values": {"t": 1e308}}, "non_finite", "/values/t"),  # made 1e999 below
        (GOOD | {"values": {"t": 2**63}}, "out_of_range", "/values/t"),
        (GOOD | {"values": {"t": -(2**63) - 1}}, "out_of_range", "/values/t"),
        (GOOD | {"values": {"t": "x" * 257}}, "too_long", "/values/t"),
        (GOOD | {"values": {"t": "\ud800"}}, "bad_encoding", "/values/t"),
        (GOOD | {"values": {str(i): i for i in range(1025)}}, "too_many", "/values"),
        (GOOD | {"bad": "t"}, "wrong_type", "/bad"),
        (GOOD | {"bad": [1]}, "wrong_type", "/bad/0"),
        (GOOD | {"bad": ["u", "u"]}, "duplicate_name", "/bad/1"),
        (GOOD | {"bad": ["u", "t"]}, "value_and_bad", "/bad/1"),
        (GOOD | {"bad": ["site"]}, "reserved_name", "/bad/0"),
        (GOOD | {"bad": [str(i) for i in range(1025)]}, "too_many", "/bad"),
        ("pump-07", "wrong_type", ""),
    ],
)
def test_a_bad_reading_is_rejected_alone(reading: object, reason: str, path: str) -> None:
    """A bad reading is left out with its reason and path; the readings around it are kept."""
    document = example(readings=[GOOD, reading, GOOD])
    decoded = decode_telemetry(dumps(document).replace(b"1e+308", b"1e999"), now_ms=NOW_MS)
    assert [r.asset for r in decoded.batch.readings] == ["pump-07", "pump-07"]
    assert decoded.batch.seq == 18234
    (rejected,) = decoded.rejected
    assert (rejected.index, rejected.reason, rejected.path) == (1, reason, "/readings/1" + path)
    assert rejected.message


def test_future_timestamps_are_checked_only_against_a_given_clock() -> None:
    """A reading at most the allowed skew ahead of now_ms is kept; one millisecond more is not."""
    document = example(readings=[GOOD | {"ts": NOW_MS + 1000}, GOOD | {"ts": NOW_MS + 1001}])
    payload = dumps(document)
    assert decode_telemetry(payload).rejected == ()
    decoded = decode_telemetry(payload, now_ms=NOW_MS, max_future_skew_ms=1000)
    assert [r.ts for r in decoded.batch.readings] == [NOW_MS + 1000]
    assert [r.reason for r in decoded.rejected] == ["ts_in_future"]


def test_a_batch_of_only_bad_readings_keeps_its_seq() -> None:
    """When every reading is rejected the batch still decodes, empty, so its seq can be acked."""
    decoded = decode_telemetry(dumps(example(readings=[{}, 1, None])))
    assert decoded.batch == TelemetryBatch(gateway="gw-plant1-01", seq=18234)
    assert [r.index for r in decoded.rejected] == [0, 1, 2]


# ---------------------------------------------------------------- construction and encoding


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"asset": "a", "ts": NOW_MS, "values": {"x": float("nan")}}, "non_finite"),
        ({"asset": "a", "ts": NOW_MS, "values": {"x": float("inf")}}, "non_finite"),
        ({"asset": "a", "ts": NOW_MS, "values": {"x": None}}, "wrong_type"),
        ({"asset": "a", "ts": NOW_MS, "values": {1: 1}}, "wrong_type"),
        ({"asset": "a", "ts": NOW_MS, "values": {"x": 1}, "bad": ("x",)}, "value_and_bad"),
        ({"asset": "a", "ts": NOW_MS, "values": {}, "bad": "x"}, "wrong_type"),
        ({"asset": "a", "ts": 1.5e12, "values": {}}, "wrong_type"),
        ({"asset": "", "ts": NOW_MS, "values": {}}, "bad_name"),
    ],
)
def test_an_invalid_reading_cannot_be_built(fields: dict[str, Any], reason: str) -> None:
    """The edge agent cannot build a reading the cloud would reject (NaN goes to bad)."""
    with pytest.raises(ContractError) as info:
        Reading(**fields)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"gateway": "GW", "seq": 0}, "bad_name"),
        ({"gateway": "gw", "seq": -1}, "out_of_range"),
        ({"gateway": "gw", "seq": False}, "wrong_type"),
        ({"gateway": "gw", "seq": 0, "readings": ({},)}, "wrong_type"),
        ({"gateway": "gw", "seq": 0, "readings": "abc"}, "wrong_type"),
    ],
)
def test_an_invalid_batch_cannot_be_built(fields: dict[str, Any], reason: str) -> None:
    """A batch checks its gateway, seq and readings on construction."""
    with pytest.raises(ContractError) as info:
        TelemetryBatch(**fields)
    assert info.value.reason == reason


def test_a_reading_is_immutable_and_owns_its_values() -> None:
    """A reading copies its values: changing the caller's dict later changes nothing."""
    signal_values: dict[str, float] = {"t": 1.0}
    reading = Reading(asset="a", ts=NOW_MS, values=signal_values, bad=["u"])  # type: ignore[arg-type]
    signal_values["t"] = 2.0
    assert reading.values == {"t": 1.0}
    assert reading.bad == ("u",)
    with pytest.raises(TypeError):
        reading.values["t"] = 3.0  # type: ignore[index]
    batch = TelemetryBatch(gateway="gw", seq=0, readings=[reading])  # type: ignore[arg-type]
    assert batch.readings == (reading,)


def test_a_batch_too_large_to_publish_is_refused_by_the_encoder() -> None:
    """Encoding a batch over MAX_PAYLOAD_BYTES raises too_large, so the agent splits it."""
    big = Reading(asset="a", ts=NOW_MS, values={f"s{i}": "x" * MAX_STRING_LEN for i in range(8)})
    batch = TelemetryBatch(gateway="gw", seq=0, readings=(big,) * 600)
    with pytest.raises(ContractError) as info:
        encode_telemetry(batch, compress=True)
    assert info.value.reason == "too_large"


def test_the_largest_batches_still_decode() -> None:
    """Limits are inclusive: the most readings and values allowed are accepted."""
    reading = Reading(
        asset="a", ts=NOW_MS, values={f"s{i}": i for i in range(MAX_VALUES_PER_READING)}
    )
    assert decode_telemetry(
        encode_telemetry(TelemetryBatch(gateway="g", seq=0, readings=(reading,)))
    )
    small = Reading(asset="a", ts=NOW_MS, values={"v": 1})
    batch = TelemetryBatch(gateway="g", seq=MAX_INT, readings=(small,) * MAX_READINGS_PER_BATCH)
    assert decode_telemetry(encode_telemetry(batch)).batch == batch
