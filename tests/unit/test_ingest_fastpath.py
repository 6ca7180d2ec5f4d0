"""The ingester's fast path never accepts what the contract's decoder would not, nor alters it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable

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
    for (index, asset, ts, fields, bad), reading in zip(
        readings, decoded.batch.readings, strict=True
    ):
        assert (asset, ts, bad) == (reading.asset, reading.ts, len(reading.bad))
        assert fields == (_fields(dict(reading.values)) if reading.values else "")
        assert index == decoded.batch.readings.index(reading)


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
