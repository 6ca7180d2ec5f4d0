"""Hostile names and values survive line protocol and InfluxQL quoting through the real influxd."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Protocol

import pytest
from hypothesis import HealthCheck, assume, given, note, reject, settings
from hypothesis import strategies as st

from cloud.store import FieldValue, InfluxAuth, InfluxClient, LineProtocolError, Point, encode_lines
from cloud.store import quote_ident as qi
from cloud.store import quote_literal as ql

# Characters that line protocol or InfluxQL treat specially, plus look-alikes and astral planes.
# Backslashes and quotes appear several times: they are the hardest characters, so draw them often.
HOSTILE = (
    '\\\\"" ,="\'\\#\t.:;/$%{}[]()*?|~`^<>@!-_+'
    "\u00e9\u00fc\u20ac\U0001f600\u5b57\u200b\u00a0\u2028\ufeff"
)
NAMES = st.text(
    alphabet=st.sampled_from(HOSTILE) | st.characters(codec="utf-8"),
    min_size=1,
    max_size=12,
)
VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(max_size=24),
)
FIELD_TYPES = {bool: "boolean", int: "integer", float: "float", str: "string"}
_EXAMPLE = itertools.count()


class InfluxServices(Protocol):
    """What these tests use of conftest's `services` fixture."""

    influx_url: str
    influx_user: str
    influx_password: str


@pytest.fixture
def admin(services: InfluxServices) -> Iterator[InfluxClient]:
    auth = InfluxAuth.basic(services.influx_user, services.influx_password)
    with InfluxClient(url=services.influx_url, auth=auth) as client:
        yield client


def _same(expected: FieldValue, got: object) -> bool:
    if isinstance(expected, bool):
        return got is expected
    if isinstance(expected, float):
        # JSON carries a whole float as an integer literal ("1e16" arrives as 10000000000000000);
        # float() of it is the exact float again, because the server writes shortest round-trip.
        return isinstance(got, int | float) and not isinstance(got, bool) and float(got) == expected
    return type(got) is type(expected) and got == expected


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(
    point=st.builds(
        Point,
        NAMES,
        st.dictionaries(NAMES, NAMES | st.just(""), max_size=3),
        st.dictionaries(NAMES, VALUES, min_size=1, max_size=3),
        st.integers(-(2**62), 2**62),
    )
)
def test_hostile_points_round_trip_exactly(
    admin: InfluxClient, influx_db: str, point: Point
) -> None:
    """A point the encoder accepts reads back the same: names, tag values, field values, types."""
    measurement, tags, fields, ts = point.measurement, point.tags, point.fields, point.ts
    assume(not set(tags) & set(fields))  # a tag and a field of one name read back as "k", "k_1"
    try:
        note(repr(encode_lines([point], "ns")))
    except LineProtocolError:
        reject()
    # Its own database per example: no field type or series of one example meets another's.
    db = f"{influx_db}_{next(_EXAMPLE)}"
    admin.create_database(db)
    try:
        admin.write([point], precision="ns", database=db)
        stored_tags = {k: v for k, v in tags.items() if v}
        columns = [f"{qi(k)}::field" for k in fields] + [f"{qi(k)}::tag" for k in stored_tags]
        where = " AND ".join(f"{qi(k)}::tag = {ql(v)}" for k, v in stored_tags.items())
        q = f"SELECT {', '.join(columns)} FROM {qi(measurement)}" + (  # noqa: S608 - quoted
            f" WHERE {where}" if where else ""
        )
        rows = list(admin.query(q, database=db, epoch="ns").rows())
        assert len(rows) == 1, rows
        (row,) = rows
        assert row.pop("time") == ts
        assert {k: row[k] for k in stored_tags} == stored_tags
        for key, value in fields.items():
            assert _same(value, row[key]), (key, value, row[key])
        field_keys = admin.query(f"SHOW FIELD KEYS FROM {qi(measurement)}", database=db)
        assert {str(k): v for k, v in field_keys.series[0].values} == {
            k: FIELD_TYPES[type(v)] for k, v in fields.items()
        }
        tag_keys = admin.query(f"SHOW TAG KEYS FROM {qi(measurement)}", database=db).series
        assert {v[0] for s in tag_keys for v in s.values} == set(stored_tags)
        measurements = admin.query("SHOW MEASUREMENTS", database=db).series[0].values
        assert measurements == ((measurement,),)
    finally:
        admin.drop_database(db)
