"""Status, event and health payloads of contract v1: round trips and construction checks."""

import gzip
import json
import operator
import pickle
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from prognos_contract import (
    CONTENT_TYPE_JSON_GZIP,
    EVENT_KINDS,
    MAX_INT,
    MAX_STRING_LEN,
    MIN_INT,
    RESERVED_NAMES,
    TS_MAX_MS,
    TS_MIN_MS,
    ContractError,
    Event,
    Health,
    Status,
    decode_event,
    decode_health,
    decode_status,
    encode_event,
    encode_health,
    encode_status,
    schema,
)

NOW_MS = 1_763_805_599_000
ALNUM = string.ascii_letters + string.digits
names = st.builds(operator.add, st.sampled_from(ALNUM), st.text(ALNUM + "_.:-", max_size=40))
metric_names = names.filter(lambda name: name not in RESERVED_NAMES and name != "ts")
ids = st.builds(
    operator.add,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + "-", max_size=20),
)
timestamps = st.integers(min_value=TS_MIN_MS, max_value=TS_MAX_MS - 1)
numbers = st.one_of(
    st.integers(min_value=MIN_INT, max_value=MAX_INT),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.one_of(
    st.booleans(), numbers, st.text(st.characters(codec="utf-8"), max_size=MAX_STRING_LEN)
)

statuses = st.builds(
    Status,
    state=st.sampled_from(["online", "offline"]),
    ts=timestamps,
    agent_version=st.from_regex(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,20}", fullmatch=True),
)
events = st.builds(
    Event,
    gateway=ids,
    ts=timestamps,
    kind=st.sampled_from(EVENT_KINDS),
    asset=st.none() | names,
    detail=st.dictionaries(metric_names, values, max_size=5),
)
healths = st.builds(
    Health, ts=timestamps, metrics=st.dictionaries(metric_names, numbers, max_size=8)
)


@settings(max_examples=100)
@given(status=statuses)
def test_any_status_round_trips_and_validates(status: Status) -> None:
    """Any status decodes to itself and is valid under status.v1.schema.json."""
    payload = encode_status(status)
    assert decode_status(payload) == status
    Draft202012Validator(schema("status.v1")).validate(json.loads(payload))


@settings(max_examples=100)
@given(event=events)
def test_any_event_round_trips_and_validates(event: Event) -> None:
    """Any event decodes to itself and is valid under event.v1.schema.json."""
    payload = encode_event(event)
    assert decode_event(payload) == event
    assert [repr(v) for v in decode_event(payload).detail.values()] == [
        repr(v) for v in event.detail.values()
    ]
    Draft202012Validator(schema("event.v1")).validate(json.loads(payload))


@settings(max_examples=100)
@given(health=healths)
def test_any_health_snapshot_round_trips_and_validates(health: Health) -> None:
    """Any health snapshot decodes to itself and is valid under health.v1.schema.json."""
    payload = encode_health(health)
    assert decode_health(payload) == health
    Draft202012Validator(schema("health.v1")).validate(json.loads(payload))


def test_messages_are_compact_and_optional_fields_are_left_out() -> None:
    """Encoders write compact JSON and leave out an absent asset and an empty detail."""
    status = Status(state="offline", ts=NOW_MS, agent_version="0.1.0")
    assert encode_status(status) == (
        b'{"state":"offline","ts":1763805599000,"agent_version":"0.1.0"}'
    )
    event = Event(gateway="gw-01", ts=NOW_MS, kind="agent_started")
    assert encode_event(event) == (
        b'{"schema":"prognos.event.v1","gateway":"gw-01","ts":1763805599000,"kind":"agent_started"}'
    )
    assert encode_health(Health(ts=NOW_MS, metrics={"dropped": 0})) == (
        b'{"ts":1763805599000,"dropped":0}'
    )


def test_gzipped_messages_decode_too() -> None:
    """Status, event and health payloads may be gzipped like telemetry."""
    status = Status(state="online", ts=NOW_MS, agent_version="1.2.3+g1a2b3c")
    payload = gzip.compress(encode_status(status))
    assert decode_status(payload, content_type=CONTENT_TYPE_JSON_GZIP) == status


@pytest.mark.parametrize(
    ("factory", "fields", "reason"),
    [
        (Status, {"state": "up", "ts": NOW_MS, "agent_version": "1"}, "bad_value"),
        (Status, {"state": "online", "ts": NOW_MS, "agent_version": ""}, "bad_value"),
        (Status, {"state": "online", "ts": NOW_MS, "agent_version": 1}, "wrong_type"),
        (Event, {"gateway": "gw", "ts": NOW_MS, "kind": "boom"}, "bad_value"),
        (
            Event,
            {"gateway": "gw", "ts": NOW_MS, "kind": "outbox_dropped", "asset": 1},
            "wrong_type",
        ),
        (
            Event,
            {
                "gateway": "gw",
                "ts": NOW_MS,
                "kind": "outbox_dropped",
                "detail": {"n": float("nan")},
            },
            "non_finite",
        ),
        (Health, {"ts": NOW_MS, "metrics": {"ts": 1}}, "reserved_name"),
        (Health, {"ts": NOW_MS, "metrics": {"up": True}}, "wrong_type"),
        (Health, {"ts": NOW_MS, "metrics": {"rss": float("inf")}}, "non_finite"),
        (Health, {"ts": 0, "metrics": {}}, "ts_out_of_range"),
    ],
)
def test_an_invalid_message_cannot_be_built(
    factory: Any, fields: dict[str, Any], reason: str
) -> None:
    """Status, Event and Health check their fields on construction."""
    with pytest.raises(ContractError) as info:
        factory(**fields)
    assert info.value.reason == reason


def test_a_contract_error_is_a_value_error_that_survives_pickling() -> None:
    """ContractError is a ValueError and keeps reason, path and message across pickling."""
    error = ContractError("too_large", "too big", "/readings")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  our own bytes
    assert isinstance(copy, ContractError)
    assert isinstance(copy, ValueError)
    assert (copy.reason, copy.path, copy.message) == ("too_large", "/readings", "too big")
    assert str(copy) == "/readings: too big (too_large)"
