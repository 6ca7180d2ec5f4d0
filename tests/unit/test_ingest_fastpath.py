"""The ingester's fast path never accepts what the contract's decoder would not, nor alters it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

import prognos_contract as pc
from cloud.ingest._fastpath import fast_telemetry
from cloud.store import Point, encode_lines

NOW = 1_763_805_600_000

NAMES = st.sampled_from(
    ["t", "bearing_temp_c", "a.b:c-d", "time", "site", "_x", "a b", "é", "x" * 128, "x" * 129, ""]
)
TEXT = st.sampled_from(["ok", 'a"b\\c', "ü", "x" * 256, "x" * 257, "\ud800", "tab\there", ""])
VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.booleans(),
    TEXT,
    st.none(),
    st.lists(st.integers(), max_size=2),
)
TS = st.one_of(
    st.integers(min_value=pc.TS_MIN_MS - 5, max_value=pc.TS_MIN_MS + 5),
    st.integers(min_value=NOW - 10**6, max_value=NOW + pc.DEFAULT_MAX_FUTURE_SKEW_MS + 10),
    st.just(pc.TS_MAX_MS),
    st.floats(min_value=NOW, max_value=NOW + 1),
    st.booleans(),
    st.just("1763805600000"),
)
READING = st.fixed_dictionaries(
    {
        "asset": st.one_of(NAMES, st.integers()),
        "ts": TS,
        "values": st.dictionaries(NAMES, VALUES, max_size=4),
    },
    optional={"bad": st.lists(NAMES, max_size=3), "extra": st.integers()},
)
BATCH = st.fixed_dictionaries(
    {
        "schema": st.sampled_from([pc.TELEMETRY_SCHEMA_ID, "prognos.telemetry.v2"]),
        "gateway": st.sampled_from(["gw-1", "GW", "gw 1", "g" * 65]),
        "seq": st.one_of(st.integers(min_value=-1, max_value=2**64), st.floats(0, 10)),
        "readings": st.lists(READING, max_size=4),
    },
    optional={"extra": st.booleans()},
)


def _fields(values: dict[str, object]) -> str:
    return encode_lines([Point("m", {}, values)], "ns").decode()[2:-1]  # type: ignore[arg-type]


def _duplicate_ts(text: str) -> str:
    return text.replace('"ts": ', '"ts" : 5, "ts": ', 1)


def _duplicate_value(text: str) -> str:
    return text.replace('"values": {', '"values": {"t": 1, ', 1)


TRANSFORMS = st.sampled_from(
    [
        lambda t: t,
        lambda t: t.replace(": ", " :\t "),
        _duplicate_ts,
        _duplicate_value,
        lambda t: t.replace('"asset"', '"asset" :"x":', 1),
        lambda t: "\ufeff" + t,
    ]
)


@settings(max_examples=800)
@given(BATCH, TRANSFORMS, st.booleans())
def test_fast_path_agrees_with_the_contract(
    document: dict[str, object], transform: Callable[[str], str], compress: bool
) -> None:
    """Whatever the fast path accepts, the contract's decoder accepts whole, with equal content."""
    payload = transform(json.dumps(document)).encode()
    if compress:
        payload = gzip.compress(payload, mtime=0)
    fast = fast_telemetry(
        payload, content_type=None, now_ms=NOW, max_future_skew_ms=pc.DEFAULT_MAX_FUTURE_SKEW_MS,
        types={},
    )  # fmt: skip
    # Again with the types it learnt: now by the formats the first call made (rules 5 and 6).
    types: dict[str, str] = {}
    for _ in range(2):
        again = fast_telemetry(
            payload, content_type=None, now_ms=NOW,
            max_future_skew_ms=pc.DEFAULT_MAX_FUTURE_SKEW_MS, types=types,
        )  # fmt: skip
        assert again == fast
    try:
        decoded = pc.decode_telemetry(payload, now_ms=NOW)
    except pc.ContractError:
        assert fast is None
        return
    if fast is None:
        return  # the slow path decides: allowed (it is the contract's decoder)
    assert decoded.rejected == ()
    gateway, seq, readings = fast
    assert (gateway, seq) == (decoded.batch.gateway, decoded.batch.seq)
    assert len(readings) == len(decoded.batch.readings)
    # By position: two equal readings in a batch are both kept, each with its own index.
    for position, ((index, asset, ts, fields, bad), reading) in enumerate(
        zip(readings, decoded.batch.readings, strict=True)
    ):
        assert (asset, ts, bad) == (reading.asset, reading.ts, len(reading.bad))
        assert fields == (_fields(dict(reading.values)) if reading.values else "")
        assert index == position


def test_fast_path_takes_a_plain_valid_batch() -> None:
    """The common case is taken by the fast path (else it would be pointless)."""
    batch = pc.TelemetryBatch(
        gateway="gw-1",
        seq=7,
        readings=(
            pc.Reading(asset="p-1", ts=NOW, values={"t": 1.5, "n": 3, "ok": True, "s": "a"}),
        ),
    )
    fast = fast_telemetry(
        pc.encode_telemetry(batch, compress=True), content_type=None, now_ms=NOW,
        max_future_skew_ms=0, types={},
    )  # fmt: skip
    assert fast == ("gw-1", 7, [(0, "p-1", NOW, 't=1.5,n=3i,ok=true,s="a"', 0)])


def test_fast_path_leaves_type_conflicts_to_the_slow_path() -> None:
    """A value of another type than its signal's makes the fast path step aside."""
    payload = pc.encode_telemetry(
        pc.TelemetryBatch(
            gateway="gw-1", seq=1, readings=(pc.Reading(asset="p", ts=NOW, values={"t": "x"}),)
        )
    )
    types = {"t": "float"}
    assert (
        fast_telemetry(payload, content_type=None, now_ms=NOW, max_future_skew_ms=0, types=types)
        is None
    )
    assert types == {"t": "float"}


def test_a_key_given_twice_goes_to_the_slow_path() -> None:
    """The C parser merges a duplicate key silently; the fast path notices and steps aside."""
    text = (
        '{"schema":"prognos.telemetry.v1","gateway":"gw-1","seq":1,"readings":'
        f'[{{"asset":"p","ts":{NOW},"ts":{NOW + 1},"values":{{"t":1.5}}}}]}}'
    )
    assert (
        fast_telemetry(
            text.encode(), content_type=None, now_ms=NOW, max_future_skew_ms=10, types={}
        )
        is None
    )
    with_space = text.replace(f'"ts":{NOW},', f'"ts" :{NOW},')
    assert (
        fast_telemetry(
            with_space.encode(), content_type=None, now_ms=NOW, max_future_skew_ms=10, types={}
        )
        is None
    )


def test_minus_zero_keeps_its_sign_after_plus_zero() -> None:
    """Float texts are cached, but 0.0 and -0.0 are equal keys with different texts."""
    fields = []
    for value in (0.0, -0.0, 0.0, 2.5, 2.5):
        text = json.dumps(
            {"schema": pc.TELEMETRY_SCHEMA_ID, "gateway": "gw-1", "seq": 1,
             "readings": [{"asset": "p", "ts": NOW, "values": {"t": value}}]}
        )  # fmt: skip
        fast = fast_telemetry(
            text.encode(), content_type=None, now_ms=NOW, max_future_skew_ms=0, types={}
        )
        assert fast is not None
        fields.append(fast[2][0][3])
    assert fields == ["t=0.0", "t=-0.0", "t=0.0", "t=2.5", "t=2.5"]


def test_a_colon_inside_a_string_still_counts_keys_exactly() -> None:
    """A `:` not right after a quote (here in a value) makes the key count use the pattern."""
    text = (
        '{"schema":"prognos.telemetry.v1","gateway":"gw-1","seq":1,"readings":'
        f'[{{"asset":"p","ts":{NOW},"values":{{"mode":"a: b","t":1.5}}}}]}}'
    )
    fast = fast_telemetry(
        text.encode(), content_type=None, now_ms=NOW, max_future_skew_ms=0, types={}
    )
    assert fast is not None
    assert fast[2][0][3] == 'mode="a: b",t=1.5'
    merged = text.replace('"t":1.5', '"t" :1.5,"t":2.5')
    assert (
        fast_telemetry(
            merged.encode(), content_type=None, now_ms=NOW, max_future_skew_ms=0, types={}
        )
        is None
    )


def _payload(*values: Mapping[str, object], seq: int = 1) -> bytes:
    readings = [{"asset": "p-1", "ts": NOW - i, "values": v} for i, v in enumerate(values)]
    return json.dumps(
        {"schema": pc.TELEMETRY_SCHEMA_ID, "gateway": "gw-1", "seq": seq, "readings": readings}
    ).encode()


def _fast(payload: bytes, types: dict[str, str]) -> list[str] | None:
    fast = fast_telemetry(payload, content_type=None, now_ms=NOW, max_future_skew_ms=0, types=types)
    return None if fast is None else [reading[3] for reading in fast[2]]


EDGE_FLOATS = [0.1, -0.0, 1e-4, 2.5e-05, 1e-7, 1e15, 1e16, 123456.789, 2.0**53, 1 / 3, 5e-324]


def test_formats_write_what_cloud_store_writes() -> None:
    """By the format (orjson's texts) or by the loop, a field set is `cloud.store`'s text."""
    types: dict[str, str] = {}
    for value in EDGE_FLOATS:
        values: dict[str, object] = {"f": value, "n": 2**62, "k": -5}
        expected = _fields(values)
        for _ in range(3):  # the loop, then a format for one reading, then for the message
            assert _fast(_payload(values, values), types) == [expected, expected]


def test_an_integer_beyond_int64_never_passes_as_a_float() -> None:
    """A 21-digit integer literal, a float to orjson, is rejected by the contract, not taken."""
    types: dict[str, str] = {}
    assert _fast(_payload({"t": 1.5}, {"t": 2.5}), types) == ["t=1.5", "t=2.5"]
    for literal in ("100000000000000000000", "-9223372036854775809", "9223372036854775808"):
        payload = _payload({"t": 1.5}, {"t": 2.5}).replace(b"2.5", literal.encode())
        assert _fast(payload, types) is None
        decoded = pc.decode_telemetry(payload, now_ms=NOW)
        assert [r.reason for r in decoded.rejected] != []


def test_formats_follow_the_known_types() -> None:
    """A format is used only while its signals keep the types it was made for."""
    types: dict[str, str] = {}
    assert _fast(_payload({"t": 1.5, "n": 2}), types) == ["t=1.5,n=2i"]
    assert _fast(_payload({"t": 1.5, "n": 2}, {"t": 3, "n": 4}), types) == [
        "t=1.5,n=2i",
        "t=3.0,n=4i",  # an integer for a float signal: the loop writes it as a float
    ]
    types["n"] = "float"  # the server's word changed (a refresh after a refused write)
    assert _fast(_payload({"t": 1.5, "n": 2}), types) == ["t=1.5,n=2.0"]
    types["t"] = "string"
    assert _fast(_payload({"t": 1.5, "n": 2}), types) is None  # a conflict: the slow path


def test_a_nan_or_a_string_among_formatted_values_goes_to_the_loop() -> None:
    """Values that the format cannot take make the message take the loop (or the slow path)."""
    types: dict[str, str] = {}
    assert _fast(_payload({"t": 1.5}, {"t": 2.5}), types) == ["t=1.5", "t=2.5"]
    assert _fast(_payload({"t": 1.5}, {"t": True}), types) is None  # a conflict: slow path
    mixed = _payload({"t": 1.5}, {"t": 2.5}).replace(b'{"t": 2.5}', b'{"t": 2.5, "s": "x"}')
    assert _fast(mixed, types) == ["t=1.5", 't=2.5,s="x"']
    assert _fast(_payload({"t": 1.5}, {"t": 2.5}).replace(b"2.5", b"NaN"), types) is None
