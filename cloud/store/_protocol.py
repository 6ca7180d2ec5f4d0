"""Sans-I/O core of the v1 HTTP API: build requests, read answers. No sockets, no httpx clients.

Each operation is a pair of pure functions, `build_<op>` -> `Request` and `read_<op>(request,
reply)`. The sync and the async client only send the `Request` and hand the `Reply` back, so the
two share every rule:

- `/ping` (GET) returns the version in the `X-Influxdb-Version` header;
- `/write` (POST) takes line protocol, optionally gzipped, answers 204;
- `/query` takes InfluxQL over GET when every statement reads (SELECT, SHOW, EXPLAIN) and POST
  otherwise (1.x refuses writes over GET); POST carries `q` and `params` in a form body so long
  queries never meet URL limits. A chunked answer is newline-delimited JSON.
- Credentials travel only in the `Authorization` header, never in the URL.
"""

from __future__ import annotations

import base64
import gzip as gzip_lib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from cloud.store._errors import (
    DatabaseNotFound,
    InfluxRequestError,
    InfluxServerError,
    error_for_status,
)
from cloud.store._influxql import is_read_only, split_statements
from cloud.store._line import NS_PER_UNIT, Precision
from cloud.store._result import QueryResult, merge_chunks

# The v1 API spells microseconds "u" (1.x ignores "us" in `epoch` and silently answers in ns).
_UNIT_PARAM: Mapping[str, str] = {"ns": "ns", "us": "u", "ms": "ms", "s": "s"}
HTTP_OK = 200
HTTP_MULTIPLE_CHOICES = 300
_GZIP_LEVEL = 6  # zlib's default: most of the gain for a fraction of level 9's CPU

BindValue = str | int | float | bool


@dataclass(frozen=True, slots=True, repr=False)
class InfluxAuth:
    """Credentials for the v1 API, sent in the `Authorization` header; never in the URL or a repr.

    Build one with `InfluxAuth.token(...)` or `InfluxAuth.basic(...)`.

    Attributes:
        scheme: "token" or "basic".
    """

    scheme: Literal["token", "basic"]
    _header: str

    @classmethod
    def token(cls, token: str) -> InfluxAuth:
        """Token auth (`Authorization: Token <token>`): InfluxDB 2.x v1 compatibility and 3.x Core.

        Args:
            token: The API token.

        Returns:
            The credentials.
        """
        return cls("token", f"Token {token}")

    @classmethod
    def basic(cls, user: str, password: str) -> InfluxAuth:
        """HTTP Basic auth: InfluxDB 1.x users, or 2.x v1 compatibility with a token as password.

        Args:
            user: The user name (any name on 2.x when the password is a token).
            password: The password or token.

        Returns:
            The credentials.
        """
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return cls("basic", f"Basic {encoded}")

    @property
    def header(self) -> str:
        """The value of the `Authorization` header."""
        return self._header

    def __repr__(self) -> str:
        return f"InfluxAuth.{self.scheme}(<redacted>)"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to talk to one server: what every request shares."""

    url: str
    database: str
    auth: InfluxAuth | None = None
    gzip: bool = False
    retention_policy: str | None = None

    def headers(self) -> dict[str, str]:
        """Headers every request carries."""
        headers = {"Accept-Encoding": "gzip" if self.gzip else "identity"}
        if self.auth is not None:
            headers["Authorization"] = self.auth.header
        return headers


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request to send, fully described."""

    operation: Literal["ping", "write", "query"]
    method: Literal["GET", "POST"]
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    content: bytes | None = None
    database: str | None = None
    statements: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer, as the client received it (body already un-gzipped)."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""


def _url(endpoint: Endpoint, path: str) -> str:
    return endpoint.url.rstrip("/") + path


def build_ping(endpoint: Endpoint) -> Request:
    """Build `GET /ping`."""
    return Request("ping", "GET", _url(endpoint, "/ping"), {}, endpoint.headers())


def read_ping(request: Request, reply: Reply) -> str:
    """Return the server version of a `/ping` answer, or raise the error it carries."""
    _raise_for_status(request, reply)
    version = reply.headers.get("x-influxdb-version")
    if version:
        return version
    try:  # 3.x Core also answers with a JSON body
        body = json.loads(reply.body or b"{}")
    except ValueError:
        body = {}
    return str(body.get("version", "unknown")) if isinstance(body, dict) else "unknown"


def build_write(
    endpoint: Endpoint, body: bytes, *, precision: Precision, database: str | None
) -> Request:
    """Build `POST /write` for a body of line protocol.

    Args:
        endpoint: The server.
        body: Line protocol, one point per line.
        precision: The unit of the body's timestamps.
        database: The database, or None for the endpoint's.

    Returns:
        The request; gzipped with `Content-Encoding: gzip` when the endpoint says so.
    """
    if precision not in NS_PER_UNIT:
        raise ValueError(f"precision must be one of 's', 'ms', 'us', 'ns'. Got {precision!r}.")
    db = database or endpoint.database
    params = {"db": db, "precision": _UNIT_PARAM[precision]}
    if endpoint.retention_policy:
        params["rp"] = endpoint.retention_policy
    headers = endpoint.headers() | {"Content-Type": "text/plain; charset=utf-8"}
    if endpoint.gzip:
        body = gzip_lib.compress(body, compresslevel=_GZIP_LEVEL, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Request("write", "POST", _url(endpoint, "/write"), params, headers, body, database=db)


def read_write(request: Request, reply: Reply) -> None:
    """Accept a `/write` answer (204, or 200 on some servers), or raise the error it carries."""
    _raise_for_status(request, reply)


def build_query(
    endpoint: Endpoint,
    q: str,
    *,
    database: str | None = None,
    epoch: Precision | None = "ms",
    params: Mapping[str, BindValue] | None = None,
    chunked: bool = True,
) -> Request:
    """Build a `/query` request: GET if every statement only reads, else POST.

    Args:
        endpoint: The server.
        q: One or more InfluxQL statements, separated by `;`.
        database: The database; None for the endpoint's, "" for none (server-wide statements).
        epoch: The unit of the time column, or None for RFC3339 strings.
        params: Bind parameters, referenced as `$name` in `q`.
        chunked: Ask for a chunked (newline-delimited JSON) answer.

    Returns:
        The request.
    """
    if epoch is not None and epoch not in _UNIT_PARAM:
        raise ValueError(f"epoch must be one of 's', 'ms', 'us', 'ns' or None. Got {epoch!r}.")
    db = endpoint.database if database is None else database
    query: dict[str, str] = {}
    if db:
        query["db"] = db
    if endpoint.retention_policy:
        query["rp"] = endpoint.retention_policy
    if epoch is not None:
        query["epoch"] = _UNIT_PARAM[epoch]
    if chunked:
        query["chunked"] = "true"
    form = {"q": q}
    if params:
        form["params"] = json.dumps(dict(params))
    statements = tuple(split_statements(q))
    if is_read_only(q):
        return Request(
            "query", "GET", _url(endpoint, "/query"), query | form, endpoint.headers(),
            database=db, statements=statements,
        )  # fmt: skip
    headers = endpoint.headers() | {"Content-Type": "application/x-www-form-urlencoded"}
    return Request(
        "query", "POST", _url(endpoint, "/query"), query, headers, urlencode(form).encode(),
        database=db, statements=statements,
    )  # fmt: skip


def read_query(request: Request, reply: Reply) -> QueryResult:
    """Parse a `/query` answer, chunked or not, merging the chunks of each series.

    Raises:
        InfluxRequestError: The server refused the query, or a statement failed (the error is
            inside a 200 answer); the message names the statement.
        DatabaseNotFound: A statement named a database that does not exist.
        InfluxServerError: The answer is not the JSON the v1 API sends.
    """
    _raise_for_status(request, reply)
    return merge_chunks(_results(request, reply))


def _results(request: Request, reply: Reply) -> Iterator[dict[str, object]]:
    for line in reply.body.splitlines():
        if not line.strip():
            continue
        try:
            chunk = json.loads(line)
        except ValueError as exc:
            raise InfluxServerError(
                f"query: the answer is not JSON: {line[:200]!r}",
                status=reply.status,
                body=reply.body.decode(errors="replace"),
            ) from exc
        if not isinstance(chunk, dict):
            raise InfluxServerError(
                f"query: unexpected answer {line[:200]!r}", status=reply.status, body=str(chunk)
            )
        if isinstance(chunk.get("error"), str):
            raise _statement_error(request, reply, None, chunk["error"])
        for result in chunk.get("results") or ():
            if not isinstance(result, dict):
                continue
            if isinstance(result.get("error"), str):
                raise _statement_error(request, reply, result.get("statement_id"), result["error"])
            yield result


def _statement_error(
    request: Request, reply: Reply, statement_id: object, error: str
) -> InfluxRequestError:
    body = reply.body.decode(errors="replace")
    statement: str | None = None
    if isinstance(statement_id, int) and 0 <= statement_id < len(request.statements):
        statement = request.statements[statement_id]
        where = f"statement {statement_id} ({statement!r})"
    elif isinstance(statement_id, int):
        where = f"statement {statement_id}"
    else:
        where = "the query"
    message = f"query: {where} failed: {error}"
    if error.startswith("database not found"):
        database = error.partition(":")[2].strip().strip('"') or (request.database or "")
        return DatabaseNotFound(
            message, status=reply.status, body=body, database=database, statement=statement
        )
    return InfluxRequestError(message, status=reply.status, body=body, statement=statement)


def _raise_for_status(request: Request, reply: Reply) -> None:
    if HTTP_OK <= reply.status < HTTP_MULTIPLE_CHOICES:
        return
    raise error_for_status(
        reply.status, reply.body, operation=request.operation, database=request.database
    )


def describe(request: Request) -> str:
    """A short description of a request for messages: method and URL, never credentials."""
    return f"{request.method} {request.url}"
