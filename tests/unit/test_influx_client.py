"""Both clients against `httpx.MockTransport`: what they send, and how they read every answer.

Each test runs twice, once with `InfluxClient` and once with `AsyncInfluxClient` (driven through a
small synchronous facade), which proves the two share one behaviour.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from cloud.store import (
    AsyncInfluxClient,
    DatabaseNotFound,
    InfluxAuth,
    InfluxAuthError,
    InfluxClient,
    InfluxConnectError,
    InfluxError,
    InfluxRequestError,
    InfluxServerError,
    InfluxTimeout,
    LineProtocolError,
    PartialWriteError,
    Point,
)

URL = "http://influx.test:8086"
Handler = Callable[[httpx.Request], httpx.Response]
Make = Callable[..., "Facade"]


class Facade:
    """Drives either client with plain calls; async methods run to completion on a fresh loop."""

    def __init__(self, kind: str, handler: Handler, **kwargs: Any) -> None:
        self.kind = kind
        transport = httpx.MockTransport(handler)
        self.client: InfluxClient | AsyncInfluxClient = (
            InfluxClient(url=kwargs.pop("url", URL), transport=transport, **kwargs)
            if kind == "sync"
            else AsyncInfluxClient(url=kwargs.pop("url", URL), transport=transport, **kwargs)
        )

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if self.kind == "sync":
            return method
        return lambda *args, **kwargs: asyncio.run(method(*args, **kwargs))


class Recorder:
    """A MockTransport handler that routes on the URL path and keeps every request."""

    def __init__(self, routes: dict[str, Callable[[httpx.Request], httpx.Response]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Record the request and answer with the route's handler."""
        self.requests.append(request)
        request.read()
        return self.routes[request.url.path](request)


def _no_content(_: httpx.Request) -> httpx.Response:
    return httpx.Response(204, headers={"X-Influxdb-Version": "1.8.10"})


def _json(body: object, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, json=body)


def _ndjson(*chunks: object) -> Callable[[httpx.Request], httpx.Response]:
    text = "".join(json.dumps(c) + "\n" for c in chunks)
    return lambda _: httpx.Response(200, text=text, headers={"Content-Type": "application/json"})


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(kind: str) -> Iterator[Callable[..., Facade]]:
    made: list[Facade] = []

    def factory(handler: Handler, **kwargs: Any) -> Facade:
        made.append(Facade(kind, handler, **kwargs))
        return made[-1]

    yield factory
    for facade in made:
        facade.close()


POINT = Point("telemetry", {"site": "north", "asset": "p 1"}, {"temp_c": 21.5, "on": True}, 17)

# ---------------------------------------------------------------- what is sent


def test_token_auth_sends_a_token_header(make: Make) -> None:
    """InfluxAuth.token sends `Authorization: Token <token>` on every request."""
    rec = Recorder({"/ping": _no_content, "/write": _no_content})
    influx = make(rec, auth=InfluxAuth.token("s3cr3t"))
    influx.ping()
    influx.write([POINT])
    assert [r.headers["Authorization"] for r in rec.requests] == ["Token s3cr3t"] * 2


def test_basic_auth_sends_http_basic(make: Make) -> None:
    """InfluxAuth.basic sends HTTP Basic credentials, never credentials in the URL."""
    rec = Recorder({"/write": _no_content})
    make(rec, auth=InfluxAuth.basic("prognos", "pa:ss")).write([POINT])
    (request,) = rec.requests
    assert (
        request.headers["Authorization"] == "Basic " + base64.b64encode(b"prognos:pa:ss").decode()
    )
    assert "pa" not in str(request.url.query)


def test_no_auth_sends_no_authorization_header(make: Make) -> None:
    """Without auth no Authorization header is sent."""
    rec = Recorder({"/ping": _no_content})
    make(rec).ping()
    assert "Authorization" not in rec.requests[0].headers


def test_auth_repr_hides_the_secret() -> None:
    """Neither the credentials' repr nor the client's repr shows the secret."""
    auth = InfluxAuth.basic("user", "hunter2")
    client = InfluxClient(url=URL, auth=auth, transport=httpx.MockTransport(_no_content))
    assert "hunter2" not in repr(auth)
    assert "aHVudGVyMg" not in repr(auth)
    assert "hunter2" not in repr(client)
    assert repr(InfluxAuth.token("tok")) == "InfluxAuth.token(<redacted>)"
    client.close()


def test_write_posts_line_protocol_with_db_precision_and_rp(make: Make) -> None:
    """A write POSTs line protocol to /write with db, precision (us spelt u) and rp."""
    rec = Recorder({"/write": _no_content})
    make(rec, database="plant", retention_policy="raw").write([POINT], precision="us")
    (request,) = rec.requests
    assert request.method == "POST"
    assert dict(request.url.params) == {"db": "plant", "precision": "u", "rp": "raw"}
    assert request.content == b"telemetry,asset=p\\ 1,site=north temp_c=21.5,on=true 17\n"
    assert "Content-Encoding" not in request.headers
    assert request.headers["Accept-Encoding"] == "identity"


def test_gzip_compresses_the_write_body(make: Make) -> None:
    """With gzip=True the write body is gzipped, says so, and gzipped answers are accepted."""
    rec = Recorder({"/write": _no_content})
    make(rec, gzip=True).write([POINT], database="other")
    (request,) = rec.requests
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Accept-Encoding"] == "gzip"
    assert gzip.decompress(request.content).startswith(b"telemetry,asset=p\\ 1")
    assert request.url.params["db"] == "other"


def test_gzipped_answers_are_decoded(make: Make) -> None:
    """A gzip-encoded query answer is decoded before parsing."""
    body = gzip.compress(json.dumps({"results": [{"statement_id": 0}]}).encode())
    rec = Recorder(
        {
            "/query": lambda _: httpx.Response(
                200, content=body, headers={"Content-Encoding": "gzip"}
            )
        }
    )
    assert make(rec, gzip=True).query("SHOW DATABASES").statements[0].statement_id == 0


def test_raw_bytes_are_written_as_given(make: Make) -> None:
    """Raw line protocol goes out byte for byte, unchecked."""
    rec = Recorder({"/write": _no_content})
    make(rec).write(b"m f=1i 1\nm f=2i 2\n", precision="s")
    assert rec.requests[0].content == b"m f=1i 1\nm f=2i 2\n"
    assert rec.requests[0].url.params["precision"] == "s"


def test_an_empty_write_sends_nothing(make: Make) -> None:
    """Writing no points sends no request."""
    rec = Recorder({})
    influx = make(rec)
    influx.write([])
    influx.write(b"")
    assert rec.requests == []


def test_a_bad_point_fails_before_anything_is_sent(make: Make) -> None:
    """A point line protocol cannot carry raises LineProtocolError and nothing is sent."""
    rec = Recorder({})
    with pytest.raises(LineProtocolError, match="newline"):
        make(rec).write([POINT, Point("m", {"site": "a\nb"}, {"f": 1})])
    assert rec.requests == []


def test_reads_go_over_get_with_q_in_the_url(make: Make) -> None:
    """SELECT and SHOW are sent with GET, the query and its options in the URL."""
    rec = Recorder({"/query": _json({"results": [{"statement_id": 0}]})})
    make(rec).query("SELECT * FROM m WHERE t = $t", params={"t": "x"}, epoch="us")
    (request,) = rec.requests
    assert request.method == "GET"
    assert dict(request.url.params) == {
        "db": "prognos",
        "epoch": "u",
        "chunked": "true",
        "q": "SELECT * FROM m WHERE t = $t",
        "params": '{"t": "x"}',
    }


@pytest.mark.parametrize(
    "q", ["CREATE DATABASE x", "SELECT * INTO b FROM a", "SHOW DATABASES; DROP DATABASE x"]
)
def test_everything_else_goes_over_post_with_q_in_the_body(make: Make, q: str) -> None:
    """Statements that change data are POSTed with q in a form body (1.x refuses them on GET)."""
    rec = Recorder({"/query": _json({"results": [{"statement_id": 0}, {"statement_id": 1}]})})
    make(rec).query(q, chunked=False, epoch=None)
    (request,) = rec.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {"q": [q]}
    assert dict(request.url.params) == {"db": "prognos"}


def test_create_and_drop_database_quote_the_name_and_name_no_db(make: Make) -> None:
    """create_database and drop_database POST a quoted name without a db parameter."""
    rec = Recorder({"/query": _json({"results": [{"statement_id": 0}]})})
    influx = make(rec)
    influx.create_database('we"ird')
    influx.drop_database('we"ird')
    assert [parse_qs(r.content.decode())["q"][0] for r in rec.requests] == [
        'CREATE DATABASE "we\\"ird"',
        'DROP DATABASE "we\\"ird"',
    ]
    assert all("db" not in r.url.params for r in rec.requests)


def test_a_path_prefix_in_the_url_is_kept(make: Make) -> None:
    """A base URL with a path (a reverse proxy) keeps it in front of /write."""
    rec = Recorder({"/influx/write": _no_content})
    make(rec, url="http://proxy.test/influx/").write([POINT])
    assert rec.requests[0].url.path == "/influx/write"


# ---------------------------------------------------------------- what is read


def test_ping_returns_the_server_version(make: Make) -> None:
    """ping() returns the X-Influxdb-Version header."""
    assert make(Recorder({"/ping": _no_content})).ping() == "1.8.10"


def test_ping_reads_a_json_version_when_the_header_is_missing(make: Make) -> None:
    """A server that puts the version only in a JSON body (3.x Core) still reports it."""
    rec = Recorder({"/ping": _json({"version": "3.0.1", "revision": "x"})})
    assert make(rec).ping() == "3.0.1"


def _cpu(host: str, values: list[list[float]], *, partial: bool = False) -> dict[str, object]:
    series = {"name": "cpu", "tags": {"host": host}, "columns": ["time", "v"], "values": values}
    return series | ({"partial": True} if partial else {})


def _chunk(sid: int, *series: dict[str, object], **extra: object) -> dict[str, object]:
    return {"results": [{"statement_id": sid, "series": list(series), **extra}]}


# One GROUP BY answer split over three chunks, then a second statement with a message.
CHUNKS = (
    _chunk(0, _cpu("a", [[1, 1.5], [2, 2]], partial=True), partial=True),
    _chunk(0, _cpu("a", [[3, 3.5]]), _cpu("b", [[1, 9]], partial=True), partial=True),
    _chunk(0, _cpu("b", [[2, 8]])),
    _chunk(
        1,
        {"name": "measurements", "columns": ["name"], "values": [["cpu"]]},
        messages=[{"level": "warning", "text": "deprecated"}],
    ),
)


def test_chunks_of_the_same_series_are_merged(make: Make) -> None:
    """A chunked answer's pieces of one series come back as one series, in order."""
    result = make(Recorder({"/query": _ndjson(*CHUNKS)})).query(
        "SELECT v FROM cpu GROUP BY host; SHOW MEASUREMENTS"
    )
    first, second = result.statements
    assert [(s.tags, s.values) for s in first.series] == [
        ({"host": "a"}, ((1, 1.5), (2, 2), (3, 3.5))),
        ({"host": "b"}, ((1, 9), (2, 8))),
    ]
    assert second.series[0].values == (("cpu",),)
    assert second.messages == ("warning: deprecated",)
    assert list(result.rows())[:2] == [
        {"time": 1, "host": "a", "v": 1.5},
        {"time": 2, "host": "a", "v": 2},
    ]
    assert list(result.rows())[-1] == {"name": "cpu"}


def test_query_df_has_a_utc_time_index_and_tag_columns(make: Make) -> None:
    """query_df returns tz-aware UTC times as the index and tags as columns."""
    frame = make(Recorder({"/query": _ndjson(*CHUNKS[:3])})).query_df(
        "SELECT v FROM cpu GROUP BY host"
    )
    assert str(frame.index.tz) == "UTC"
    assert frame.index.name == "time"
    assert list(frame.columns) == ["host", "v"]
    assert frame.index[2].value == 3_000_000  # 3 ms, the default epoch, in ns
    assert list(frame["host"]) == ["a", "a", "a", "b", "b"]


def test_query_df_of_nothing_is_an_empty_frame_with_a_utc_index(make: Make) -> None:
    """An answer without rows gives an empty frame with an empty UTC time index."""
    frame = make(Recorder({"/query": _json({"results": [{"statement_id": 0}]})})).query_df(
        "SELECT * FROM nothing"
    )
    assert frame.empty
    assert str(frame.index.tz) == "UTC"


def test_query_df_parses_rfc3339_times(make: Make) -> None:
    """With epoch=None the RFC3339 times become the same UTC index."""
    body = {"results": [{"statement_id": 0, "series": [{"name": "m", "columns": ["time", "v"],
            "values": [["2024-01-02T03:04:05.123456789Z", 1]]}]}]}  # fmt: skip
    frame = make(Recorder({"/query": _json(body)})).query_df("SELECT v FROM m", epoch=None)
    assert frame.index[0].isoformat() == "2024-01-02T03:04:05.123456789+00:00"


# ---------------------------------------------------------------- errors


def test_401_is_an_auth_error(make: Make) -> None:
    """401 raises InfluxAuthError carrying the status and the body."""
    rec = Recorder({"/write": _json({"error": "authorization failed"}, 401)})
    with pytest.raises(InfluxAuthError) as info:
        make(rec).write([POINT])
    assert info.value.status == 401
    assert "authorization failed" in info.value.body


def test_403_is_an_auth_error(make: Make) -> None:
    """403 raises InfluxAuthError too: the credentials lack the right."""
    rec = Recorder({"/query": _json({"error": "forbidden"}, 403)})
    with pytest.raises(InfluxAuthError):
        make(rec).query("DROP DATABASE x")


def test_404_on_write_is_database_not_found(make: Make) -> None:
    """A write to a missing database raises DatabaseNotFound naming it."""
    rec = Recorder({"/write": _json({"error": 'database not found: "plant"'}, 404)})
    with pytest.raises(DatabaseNotFound) as info:
        make(rec, database="plant").write([POINT])
    assert info.value.database == "plant"
    assert isinstance(info.value, InfluxRequestError)


def test_partial_write_reports_dropped_and_reason(make: Make) -> None:
    """1.x's 400 "partial write: ... dropped=N" raises PartialWriteError with N and the reason."""
    body = {
        "error": 'partial write: field type conflict: input field "temp_c" on measurement '
        '"telemetry" is type string, already exists as type float dropped=1'
    }
    with pytest.raises(PartialWriteError) as info:
        make(Recorder({"/write": _json(body, 400)})).write([POINT])
    assert info.value.dropped == 1
    assert info.value.reason.startswith("field type conflict: input field")
    assert info.value.reason.endswith("already exists as type float")
    assert info.value.status == 400


def test_partial_write_of_2x_in_a_message_field_is_recognised(make: Make) -> None:
    """2.x's 422 with the reason in `message` is a PartialWriteError too."""
    body = {"code": "unprocessable entity", "message": "failure writing points to database: "
            "partial write: points beyond retention policy dropped=3"}  # fmt: skip
    with pytest.raises(PartialWriteError) as info:
        make(Recorder({"/write": _json(body, 422)})).write([POINT])
    assert (info.value.dropped, info.value.reason) == (3, "points beyond retention policy")


def test_partial_write_of_3x_counts_the_rejected_lines(make: Make) -> None:
    """3.x's list of rejected lines becomes dropped=len(list), the reasons joined."""
    line = {"original_line": "m f=1i", "line_number": 2, "error_message": "invalid column type"}
    body = {"error": "partial write of line protocol occurred", "data": [line]}
    with pytest.raises(PartialWriteError) as info:
        make(Recorder({"/write": _json(body, 400)})).write([POINT])
    assert (info.value.dropped, info.value.reason) == (1, "invalid column type")


@pytest.mark.parametrize(("status", "error"), [(500, InfluxServerError), (503, InfluxServerError),
                         (429, InfluxServerError), (408, InfluxTimeout), (400, InfluxRequestError),
                         (413, InfluxRequestError), (404, InfluxRequestError)])  # fmt: skip
def test_statuses_map_to_the_tree(make: Make, status: int, error: type[InfluxError]) -> None:
    """Each HTTP status raises the class whose advice fits (retry 5xx/429, never a 4xx)."""
    rec = Recorder({"/write": lambda _: httpx.Response(status, text="x" * 10_000)})
    with pytest.raises(error) as info:
        make(rec).write([POINT])
    assert type(info.value) is error
    assert info.value.status == status
    assert len(info.value.body) == 500


def test_an_error_inside_a_200_answer_names_the_statement(make: Make) -> None:
    """A statement's error inside a 200 answer raises InfluxRequestError naming that statement."""
    body = {
        "results": [{"statement_id": 0}, {"statement_id": 1, "error": "undefined function nope()"}]
    }
    with pytest.raises(InfluxRequestError) as info:
        make(Recorder({"/query": _json(body)})).query("SELECT 1 FROM m; SELECT nope(v) FROM m")
    assert info.value.statement == "SELECT nope(v) FROM m"
    assert "statement 1 ('SELECT nope(v) FROM m')" in str(info.value)
    assert "undefined function nope()" in str(info.value)


def test_a_missing_database_in_a_query_is_database_not_found(make: Make) -> None:
    """A "database not found" inside a query answer raises DatabaseNotFound."""
    body = {"results": [{"statement_id": 0, "error": "database not found: plant"}]}
    with pytest.raises(DatabaseNotFound) as info:
        make(Recorder({"/query": _json(body)})).query("SELECT * FROM m", database="plant")
    assert info.value.database == "plant"


def test_a_bad_query_is_a_request_error(make: Make) -> None:
    """A 400 parse error raises InfluxRequestError with the server's message."""
    body = {"error": "error parsing query: found SELEC, expected SELECT"}
    with pytest.raises(InfluxRequestError, match="found SELEC"):
        make(Recorder({"/query": _json(body, 400)})).query("SELEC 1")


def test_an_answer_that_is_not_json_is_a_server_error(make: Make) -> None:
    """A 200 query answer that is not JSON raises InfluxServerError."""
    rec = Recorder({"/query": lambda _: httpx.Response(200, text="<html>proxy</html>")})
    with pytest.raises(InfluxServerError, match="not JSON"):
        make(rec).query("SELECT 1 FROM m")


def _raiser(exc: Exception) -> Handler:
    def handler(_request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("refused"), InfluxConnectError),
        (httpx.ConnectTimeout("slow connect"), InfluxConnectError),
        (httpx.ReadTimeout("slow answer"), InfluxTimeout),
        (httpx.WriteTimeout("slow upload"), InfluxTimeout),
        (httpx.ReadError("reset"), InfluxConnectError),
        (httpx.RemoteProtocolError("garbled"), InfluxConnectError),
        (httpx.UnsupportedProtocol("gopher"), InfluxError),
    ],
)
def test_transport_errors_are_mapped_with_their_cause(
    make: Make, exc: Exception, error: type[InfluxError]
) -> None:
    """Errors of httpx become the tree's classes, the original kept as __cause__."""
    with pytest.raises(error) as info:
        make(_raiser(exc)).write([POINT])
    assert type(info.value) is error
    assert info.value.__cause__ is exc
    assert info.value.status is None
    assert "/write" in str(info.value)


# ---------------------------------------------------------------- construction and ownership


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"url": "ftp://x"}, "http"),
        ({"url": "http://user:pw@x"}, "credentials"),
        ({"url": URL, "database": ""}, "database"),
        (
            {"url": URL, "transport": httpx.MockTransport(_no_content), "client": httpx.Client()},
            "either",
        ),
    ],
)
def test_bad_construction_is_a_value_error(kwargs: dict[str, Any], match: str) -> None:
    """A bad URL, an empty database or both transport and client raise ValueError at once."""
    with pytest.raises(ValueError, match=match):
        InfluxClient(**kwargs)
    client = kwargs.get("client")
    if isinstance(client, httpx.Client):
        client.close()


def test_an_injected_client_is_used_and_left_open() -> None:
    """A passed-in httpx.Client carries the requests and stays open after close()."""
    rec = Recorder({"/ping": _no_content})
    http = httpx.Client(transport=httpx.MockTransport(rec))
    with InfluxClient(url=URL, client=http) as influx:
        assert influx.ping() == "1.8.10"
    assert not http.is_closed
    http.close()


def test_an_injected_async_client_is_used_and_left_open() -> None:
    """A passed-in httpx.AsyncClient carries the requests and stays open after close()."""

    async def scenario() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(Recorder({"/ping": _no_content})))
        async with AsyncInfluxClient(url=URL, client=http) as influx:
            assert await influx.ping() == "1.8.10"
        assert not http.is_closed
        await http.aclose()

    asyncio.run(scenario())


def test_an_owned_client_is_closed_by_the_context_manager() -> None:
    """The client the object created is closed when the with-block ends."""
    with InfluxClient(url=URL, transport=httpx.MockTransport(_no_content)) as influx:
        pass
    assert influx._client.is_closed


def test_a_long_server_message_is_shortened_in_the_exception(make: Make) -> None:
    """An error echoing a huge line keeps the exception message and the reason readable."""
    body = {"error": f"partial write: unable to parse '{'x' * 5000}': bad dropped=0"}
    with pytest.raises(PartialWriteError) as info:
        make(Recorder({"/write": _json(body, 400)})).write([POINT])
    assert info.value.dropped == 0
    assert len(str(info.value)) < 700
    assert info.value.reason.endswith("characters)")


def test_an_unknown_epoch_is_a_value_error(make: Make) -> None:
    """Only s, ms, us, ns or None are epochs; anything else fails before sending."""
    rec = Recorder({})
    with pytest.raises(ValueError, match="epoch"):
        make(rec).query("SELECT 1 FROM m", epoch="h")
    assert rec.requests == []
