"""The clients against the real influxd: writes, queries, errors, and what the encoder refuses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Protocol

import pandas as pd
import pytest

from cloud.store import (
    AsyncInfluxClient,
    DatabaseNotFound,
    InfluxAuth,
    InfluxAuthError,
    InfluxClient,
    InfluxConnectError,
    InfluxRequestError,
    LineProtocolError,
    PartialWriteError,
    Point,
    Precision,
    QueryResult,
    Value,
    quote_ident,
)


class InfluxServices(Protocol):
    """What these tests use of conftest's `services` fixture."""

    influx_url: str
    influx_user: str
    influx_password: str
    influx_version: str


def _auth(services: InfluxServices) -> InfluxAuth:
    return InfluxAuth.basic(services.influx_user, services.influx_password)


@pytest.fixture
def influx(services: InfluxServices, influx_db: str) -> Iterator[InfluxClient]:
    with InfluxClient(url=services.influx_url, database=influx_db, auth=_auth(services)) as client:
        yield client


def _values(result: QueryResult) -> list[tuple[object, ...]]:
    return [row for series in result.series for row in series.values]  # noqa: PD011 - not pandas


def _count(influx: InfluxClient, measurement: str) -> int:
    q = f"SELECT count(*) FROM {quote_ident(measurement)}"  # noqa: S608 - quoted identifier
    rows = list(influx.query(q).rows())
    return int(next(v for k, v in rows[0].items() if k.startswith("count_"))) if rows else 0  # type: ignore[arg-type]


def test_ping_reports_the_server_version(influx: InfluxClient, services: InfluxServices) -> None:
    """ping() returns the version influxd announces."""
    assert influx.ping() == services.influx_version


def test_a_newline_in_a_tag_fails_before_anything_is_sent(influx: InfluxClient) -> None:
    """A newline in a tag raises LineProtocolError and no point of the batch reaches the server."""
    good = Point("telemetry", {"site": "north"}, {"temp_c": 20.0}, 1)
    bad = Point("telemetry", {"site": "north\nsouth"}, {"temp_c": 21.0}, 2)
    with pytest.raises(LineProtocolError, match=r"tag 'site' value 'north\\nsouth'"):
        influx.write([good, bad])
    assert influx.query("SHOW MEASUREMENTS").series == ()


def test_a_gzipped_write_is_stored(services: InfluxServices, influx_db: str) -> None:
    """With gzip=True the server accepts the compressed body and stores every point."""
    points = [Point("telemetry", {"asset": f"p-{i % 7}"}, {"v": float(i)}, i) for i in range(2000)]
    with InfluxClient(
        url=services.influx_url, database=influx_db, auth=_auth(services), gzip=True
    ) as influx:
        influx.write(points, precision="s")
        assert _count(influx, "telemetry") == 2000


@pytest.mark.parametrize(
    ("precision", "ts", "ns"),
    [
        ("s", 1_700_000_000, 1_700_000_000_000_000_000),
        ("ms", 1_700_000_000_123, 1_700_000_000_123_000_000),
        ("us", 1_700_000_000_123_456, 1_700_000_000_123_456_000),
        ("ns", 1_700_000_000_123_456_789, 1_700_000_000_123_456_789),
    ],
)
def test_each_precision_round_trips(
    influx: InfluxClient, precision: Precision, ts: int, ns: int
) -> None:
    """A timestamp written at a precision reads back unchanged at that epoch, and exact in ns."""
    influx.write([Point("m", {}, {"f": 1.0}, ts)], precision=precision)
    assert [r["time"] for r in influx.query("SELECT f FROM m", epoch=precision).rows()] == [ts]
    assert [r["time"] for r in influx.query("SELECT f FROM m", epoch="ns").rows()] == [ns]


def test_query_df_returns_the_expected_frame(influx: InfluxClient) -> None:
    """query_df gives a UTC time index with tags and fields as columns, values as written."""
    influx.write(
        [
            Point(
                "telemetry", {"site": "north", "asset": "p-1"}, {"temp_c": 20.5, "run": True}, 1_000
            ),
            Point(
                "telemetry",
                {"site": "north", "asset": "p-2"},
                {"temp_c": 22.25, "run": False},
                2_000,
            ),
        ],
        precision="ms",
    )
    frame = influx.query_df('SELECT "asset", "run", "site", "temp_c" FROM "telemetry"')
    expected = pd.DataFrame(
        {
            "asset": ["p-1", "p-2"],
            "run": [True, False],
            "site": ["north"] * 2,
            "temp_c": [20.5, 22.25],
        },
        index=pd.DatetimeIndex(
            [pd.Timestamp("1970-01-01T00:00:01Z"), pd.Timestamp("1970-01-01T00:00:02Z")],
            name="time",
        ),
    )
    pd.testing.assert_frame_equal(frame, expected)


def test_query_df_groups_by_tag(influx: InfluxClient) -> None:
    """GROUP BY tags become columns of the frame, one row per group and interval."""
    influx.write(
        [Point("m", {"asset": a}, {"v": float(i)}, i) for i, a in enumerate("abab")], precision="s"
    )
    frame = influx.query_df("SELECT sum(v) FROM m WHERE time < 10s GROUP BY time(10s), asset")
    assert frame.to_dict("records") == [{"asset": "a", "sum": 2.0}, {"asset": "b", "sum": 4.0}]
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert str(frame.index.tz) == "UTC"


def test_a_field_type_conflict_is_a_partial_write(influx: InfluxClient) -> None:
    """A type conflict drops that point (PartialWriteError, dropped=1) and stores the others."""
    influx.write([Point("telemetry", {"asset": "p-1"}, {"temp_c": 20.0}, 1)], precision="s")
    batch = [
        Point("telemetry", {"asset": "p-1"}, {"temp_c": 21.0}, 2),
        Point("telemetry", {"asset": "p-1"}, {"temp_c": "hot"}, 3),
        Point("telemetry", {"asset": "p-2"}, {"temp_c": 23.0}, 4),
    ]
    with pytest.raises(PartialWriteError) as info:
        influx.write(batch, precision="s")
    assert info.value.dropped == 1
    assert info.value.reason.startswith("field type conflict")
    assert info.value.status == 400
    times = [r["time"] for r in influx.query('SELECT "temp_c" FROM "telemetry"', epoch="s").rows()]
    assert times == [1, 2, 4]


def test_bad_credentials_are_an_auth_error(services: InfluxServices, influx_db: str) -> None:
    """A wrong password, or none, raises InfluxAuthError on write and query (auth is on)."""
    for auth in (InfluxAuth.basic(services.influx_user, "wrong"), None):
        with InfluxClient(url=services.influx_url, database=influx_db, auth=auth) as influx:
            with pytest.raises(InfluxAuthError) as info:
                influx.write([Point("m", {}, {"f": 1.0})])
            assert info.value.status == 401
            with pytest.raises(InfluxAuthError):
                influx.query("SHOW MEASUREMENTS")


def test_writing_to_a_missing_database_is_database_not_found(
    influx: InfluxClient, influx_db: str
) -> None:
    """A write or a query naming a missing database raises DatabaseNotFound with its name."""
    missing = f"{influx_db}_missing"
    with pytest.raises(DatabaseNotFound) as info:
        influx.write([Point("m", {}, {"f": 1.0})], database=missing)
    assert (info.value.status, info.value.database) == (404, missing)
    with pytest.raises(DatabaseNotFound) as query_info:
        influx.query("SELECT * FROM m", database=missing)
    assert query_info.value.database == missing


def test_an_error_inside_the_answer_names_the_statement(influx: InfluxClient) -> None:
    """A failing statement inside a 200 answer raises InfluxRequestError naming it."""
    influx.write([Point("m", {}, {"f": 1.0}, 1)])
    with pytest.raises(InfluxRequestError) as info:
        influx.query("SELECT f FROM m; SELECT nope(f) FROM m")
    assert info.value.statement == "SELECT nope(f) FROM m"
    assert "undefined function nope()" in str(info.value)


def test_changes_go_over_post_without_a_deprecation_warning(influx: InfluxClient) -> None:
    """CREATE and SELECT INTO run as POST: the server adds no "read only context" warning."""
    influx.write([Point("m", {}, {"f": 1.0}, 1)])
    result = influx.query("SELECT * INTO copy FROM m GROUP BY *")
    assert result.statements[0].messages == ()
    assert _count(influx, "copy") == 1


def test_bind_parameters_carry_hostile_values(influx: InfluxClient) -> None:
    """A bind parameter matches a tag value full of quotes and backslashes."""
    value = 'it\'s "C:\\dir" ; DROP'
    influx.write([Point("m", {"path": value}, {"f": 1.0}, 1)])
    rows = list(influx.query('SELECT f FROM m WHERE "path" = $p', params={"p": value}).rows())
    assert rows == [{"time": 1, "f": 1}]


def test_a_long_chunked_answer_is_merged_into_one_series(influx: InfluxClient) -> None:
    """More rows than one chunk (10,000) come back as one series, in order, nothing lost."""
    influx.write([Point("m", {}, {"v": i}, i) for i in range(12_500)], precision="s")
    result = influx.query("SELECT v FROM m", epoch="s")
    assert len(result.series) == 1
    assert [row[0] for row in _values(result)] == list(range(12_500))


def test_create_and_drop_database_quote_hostile_names(influx: InfluxClient, influx_db: str) -> None:
    """A database name with quotes, spaces and unicode is created, listed and dropped."""
    name = f'{influx_db} "quoted" ü'
    influx.create_database(name)
    try:
        assert name in influx.databases()
        influx.write([Point("m", {}, {"f": 1.0}, 1)], database=name)
    finally:
        influx.drop_database(name)
    assert name not in influx.databases()


def test_the_async_client_writes_and_queries(services: InfluxServices, influx_db: str) -> None:
    """AsyncInfluxClient writes and reads back through the same server."""

    async def scenario() -> list[dict[str, Value]]:
        async with AsyncInfluxClient(
            url=services.influx_url, database=influx_db, auth=_auth(services), gzip=True
        ) as influx:
            assert await influx.ping() == services.influx_version
            await influx.write([Point("m", {"a": "x"}, {"f": 2.5}, 3)], precision="s")
            frame = await influx.query_df("SELECT * FROM m", epoch="s")
            assert list(frame.columns) == ["a", "f"]
            return list((await influx.query("SELECT * FROM m", epoch="s")).rows())

    assert asyncio.run(scenario()) == [{"time": 3, "a": "x", "f": 2.5}]


# ---------------------------------------------------------------- why the encoder refuses these
# Each case writes, as raw bytes, the line a naive encoder would produce, and shows what the server
# makes of it. The encoder raises LineProtocolError for every one of these points instead.


def test_a_measurement_starting_with_hash_is_silently_ignored(influx: InfluxClient) -> None:
    """The server takes "#m f=1" for a comment: 204, nothing stored. The encoder refuses it."""
    influx.write(b"#m f=1 1\n")
    assert influx.query("SHOW MEASUREMENTS").series == ()
    with pytest.raises(LineProtocolError, match="comment"):
        influx.write([Point("#m", {}, {"f": 1.0})])


def test_a_field_named_time_is_silently_dropped(influx: InfluxClient) -> None:
    """The server drops a field named "time" without a word. The encoder refuses it."""
    influx.write(b"m time=1,f=2 1\n")
    assert _values(influx.query("SHOW FIELD KEYS FROM m")) == [("f", "float")]
    with pytest.raises(LineProtocolError, match="reserved"):
        influx.write([Point("m", {}, {"time": 1.0})])


def test_a_tag_named_time_is_dropped_with_an_error(influx: InfluxClient) -> None:
    """The server refuses a tag named "time" (partial write). The encoder refuses it first."""
    with pytest.raises(PartialWriteError, match="invalid tag key"):
        influx.write(b"m,time=x f=1 1\n")
    with pytest.raises(LineProtocolError, match="reserved"):
        influx.write([Point("m", {"time": "x"}, {"f": 1.0})])


@pytest.mark.parametrize(
    "line",
    [b"m,k=a\\ f=1 1\n", b"m,k=a\\\\ f=1 1\n", b"m,k=a\\,b=c f=1 1\n"],
    ids=["backslash-before-space", "two-backslashes-before-space", "backslash-before-comma"],
)
def test_a_trailing_backslash_in_a_tag_value_cannot_be_written(
    influx: InfluxClient, line: bytes
) -> None:
    """No escaping writes a tag value ending in a backslash: the server misreads the line."""
    with pytest.raises(InfluxRequestError):
        influx.write(line)
    assert influx.query("SHOW TAG VALUES FROM m WITH KEY = k").series == ()
    with pytest.raises(LineProtocolError, match="backslash"):
        influx.write([Point("m", {"k": "a\\"}, {"f": 1.0})])


def test_a_leading_tab_is_lost(influx: InfluxClient) -> None:
    """The server skips a tab before the measurement and the first field key."""
    influx.write(b"\tm \tf=1 1\n")
    assert _values(influx.query("SHOW MEASUREMENTS")) == [("m",)]
    assert _values(influx.query("SHOW FIELD KEYS FROM m")) == [("f", "float")]
    with pytest.raises(LineProtocolError, match="tab"):
        influx.write([Point("m", {}, {"\tf": 1.0})])


@pytest.mark.parametrize("char", [b"\x00", b"\x0b", b"\x0c"], ids=["NUL", "VT", "FF"])
def test_a_control_character_in_a_name_garbles_the_error_answer(
    influx: InfluxClient, char: bytes
) -> None:
    """The server echoes names in an X-Influxdb-Error header, where control characters break HTTP.

    A type conflict on such a measurement should be a PartialWriteError; instead the answer cannot
    be parsed and the client sees a broken connection, which callers would retry forever. HTTP
    forbids every control character in a header, so the encoder refuses them all in names.
    """
    influx.write(b"m" + char + b" f=1 1\n")
    with pytest.raises(InfluxConnectError):
        influx.write(b"m" + char + b' f="text" 2\n')
    with pytest.raises(LineProtocolError, match="control character"):
        influx.write([Point("m" + char.decode(), {}, {"f": 1.0})])


def test_newlines_in_string_fields_are_kept(influx: InfluxClient) -> None:
    """A string field may hold newlines and carriage returns: they read back unchanged."""
    text = 'line one\nline "two"\r\n\\end\\'
    influx.write([Point("m", {}, {"log": text}, 1)])
    assert [r["log"] for r in influx.query("SELECT log FROM m").rows()] == [text]
