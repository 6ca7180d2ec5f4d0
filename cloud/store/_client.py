"""The sync and the async client: thin shells that send what `_protocol` builds.

Every method is `build_<op>` -> send -> `read_<op>`; only `_send` differs between the two
clients, and only `_send` touches httpx (inside `map_transport_errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self

import httpx

from cloud.store._errors import map_transport_errors
from cloud.store._influxql import quote_ident
from cloud.store._line import Point, Precision, encode_lines
from cloud.store._protocol import (
    BindValue,
    Endpoint,
    InfluxAuth,
    Reply,
    Request,
    build_ping,
    build_query,
    build_write,
    describe,
    read_ping,
    read_query,
    read_write,
)
from cloud.store._result import QueryResult, to_dataframe

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_DATABASE = "prognos"
DEFAULT_TIMEOUT_S = 10.0


def _endpoint(
    *, url: str, database: str, auth: InfluxAuth | None, gzip: bool, retention_policy: str | None
) -> Endpoint:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"url must be an http:// or https:// URL with a host. Got {url!r}.")
    if parsed.userinfo:
        raise ValueError("url must not carry credentials; pass auth=InfluxAuth.basic(...) instead.")
    if not database:
        raise ValueError(f"database must be a non-empty name. Got {database!r}.")
    return Endpoint(url, database, auth, gzip, retention_policy)


def _body(data: Iterable[Point] | bytes, precision: Precision) -> bytes:
    """The write body: raw line protocol as given, or points encoded (validated) first."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    return encode_lines(data, precision)


def _show_databases(result: QueryResult) -> list[str]:
    return [str(row["name"]) for row in result.rows()]


class InfluxClient:
    """A synchronous client for the InfluxDB v1 HTTP API (`/ping`, `/write`, `/query`).

    Works with InfluxDB 1.x, 2.x (v1 compatibility API) and 3.x Core (v1 endpoints); see
    docs/influxdb.md. Not thread-safe beyond what `httpx.Client` is; one per thread is simplest.

    Args:
        url: The server's base URL, e.g. "http://127.0.0.1:8086" (a path prefix is kept).
        database: The default database of writes and queries.
        auth: `InfluxAuth.token(...)` or `InfluxAuth.basic(...)`; None sends no credentials.
        timeout_s: Seconds to wait for connect, each read and each write of a request.
        gzip: Gzip write bodies (`Content-Encoding: gzip`) and accept gzipped answers.
        retention_policy: The retention policy of writes and queries; None for the default.
        transport: An httpx transport for the client this object creates (tests pass
            `httpx.MockTransport`). Not together with `client`.
        client: An httpx client to use instead of creating one; the caller closes it.

    Raises:
        ValueError: A bad URL or database name, or both `transport` and `client`.
    """

    def __init__(
        self,
        *,
        url: str,
        database: str = DEFAULT_DATABASE,
        auth: InfluxAuth | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        gzip: bool = False,
        retention_policy: str | None = None,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if transport is not None and client is not None:
            raise ValueError("pass either transport or client, not both")
        self._endpoint = _endpoint(
            url=url, database=database, auth=auth, gzip=gzip, retention_policy=retention_policy
        )
        self._timeout = httpx.Timeout(timeout_s)
        self._owns_client = client is None
        self._client = client or httpx.Client(transport=transport, timeout=self._timeout)

    def __repr__(self) -> str:
        return f"InfluxClient(url={self._endpoint.url!r}, database={self._endpoint.database!r})"

    def _send(self, request: Request) -> Reply:
        with map_transport_errors(request.operation, describe(request)):
            response = self._client.request(
                request.method,
                request.url,
                params=request.params,
                headers=request.headers,
                content=request.content,
                timeout=self._timeout,
            )
        return Reply(response.status_code, response.headers, response.content)

    def ping(self) -> str:
        """Check the server answers and return its version (the `X-Influxdb-Version` header).

        Raises:
            InfluxError: Any subclass, as for every method (see the module's tree).
        """
        request = build_ping(self._endpoint)
        return read_ping(request, self._send(request))

    def write(
        self,
        data: Iterable[Point] | bytes,
        *,
        precision: Precision = "ms",
        database: str | None = None,
    ) -> None:
        """Write points (encoded and checked here) or raw line protocol; empty data sends nothing.

        Writing the same points again is harmless: a point with the same measurement, tags and
        time replaces the earlier one.

        Args:
            data: Points, or line-protocol bytes sent as they are.
            precision: The unit of the timestamps.
            database: The database, or None for the client's.

        Raises:
            LineProtocolError: A point cannot be written; nothing was sent.
            PartialWriteError: The server stored some points and dropped `dropped` others.
            DatabaseNotFound: The database does not exist.
            InfluxError: Any other subclass (see the module's tree).
        """
        body = _body(data, precision)
        if not body:
            return
        request = build_write(self._endpoint, body, precision=precision, database=database)
        read_write(request, self._send(request))

    def query(
        self,
        q: str,
        *,
        database: str | None = None,
        epoch: Precision | None = "ms",
        params: Mapping[str, BindValue] | None = None,
        chunked: bool = True,
    ) -> QueryResult:
        """Run InfluxQL: GET when every statement reads (SELECT, SHOW), POST otherwise.

        Args:
            q: One or more statements; quote names with `quote_ident`, or bind values.
            database: The database; None for the client's, "" for none (SHOW DATABASES ...).
            epoch: The unit of integer times in the answer; None for RFC3339 strings.
            params: Bind parameters, referenced as `$name` in `q`.
            chunked: Let the server stream the answer in chunks (merged here).

        Returns:
            The statements' series.

        Raises:
            InfluxRequestError: A bad query, or a statement failed; the message names it.
            InfluxError: Any other subclass (see the module's tree).
        """
        request = build_query(
            self._endpoint, q, database=database, epoch=epoch, params=params, chunked=chunked
        )
        return read_query(request, self._send(request))

    def query_df(
        self,
        q: str,
        *,
        database: str | None = None,
        epoch: Precision | None = "ms",
        params: Mapping[str, BindValue] | None = None,
        chunked: bool = True,
        measurement_column: str | None = None,
    ) -> pd.DataFrame:
        """Run a query and return its rows as a DataFrame (pandas is imported only here).

        Args:
            q: The query, as for `query`.
            database: The database, or None for the client's.
            epoch: The unit the server sends times in; the index is UTC datetimes either way.
            params: Bind parameters, as for `query`.
            chunked: As for `query`.
            measurement_column: If given, a column of that name holds each row's measurement.

        Returns:
            A frame indexed by tz-aware UTC time, with tags and fields as columns.
        """
        result = self.query(q, database=database, epoch=epoch, params=params, chunked=chunked)
        return to_dataframe(result, epoch=epoch, measurement_column=measurement_column)

    def create_database(self, name: str) -> None:
        """Create a database; creating one that exists is not an error.

        Args:
            name: The database name.
        """
        self.query(f"CREATE DATABASE {quote_ident(name)}", database="")

    def drop_database(self, name: str) -> None:
        """Drop a database and all its data; dropping one that does not exist is not an error.

        Args:
            name: The database name.
        """
        self.query(f"DROP DATABASE {quote_ident(name)}", database="")

    def databases(self) -> list[str]:
        """Return the names of the databases the credentials may see."""
        return _show_databases(self.query("SHOW DATABASES", database=""))

    def close(self) -> None:
        """Close the connections, unless the httpx client was passed in (its owner closes it)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncInfluxClient:
    """The asyncio twin of `InfluxClient`: same arguments, same methods, awaited.

    Args:
        url: The server's base URL, e.g. "http://127.0.0.1:8086" (a path prefix is kept).
        database: The default database of writes and queries.
        auth: `InfluxAuth.token(...)` or `InfluxAuth.basic(...)`; None sends no credentials.
        timeout_s: Seconds to wait for connect, each read and each write of a request.
        gzip: Gzip write bodies (`Content-Encoding: gzip`) and accept gzipped answers.
        retention_policy: The retention policy of writes and queries; None for the default.
        transport: An httpx async transport for the client this object creates. Not together
            with `client`.
        client: An `httpx.AsyncClient` to use instead of creating one; the caller closes it.

    Raises:
        ValueError: A bad URL or database name, or both `transport` and `client`.
    """

    def __init__(
        self,
        *,
        url: str,
        database: str = DEFAULT_DATABASE,
        auth: InfluxAuth | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        gzip: bool = False,
        retention_policy: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if transport is not None and client is not None:
            raise ValueError("pass either transport or client, not both")
        self._endpoint = _endpoint(
            url=url, database=database, auth=auth, gzip=gzip, retention_policy=retention_policy
        )
        self._timeout = httpx.Timeout(timeout_s)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(transport=transport, timeout=self._timeout)

    def __repr__(self) -> str:
        return (
            f"AsyncInfluxClient(url={self._endpoint.url!r}, database={self._endpoint.database!r})"
        )

    async def _send(self, request: Request) -> Reply:
        with map_transport_errors(request.operation, describe(request)):
            response = await self._client.request(
                request.method,
                request.url,
                params=request.params,
                headers=request.headers,
                content=request.content,
                timeout=self._timeout,
            )
        return Reply(response.status_code, response.headers, response.content)

    async def ping(self) -> str:
        """Check the server answers and return its version; see `InfluxClient.ping`."""
        request = build_ping(self._endpoint)
        return read_ping(request, await self._send(request))

    async def write(
        self,
        data: Iterable[Point] | bytes,
        *,
        precision: Precision = "ms",
        database: str | None = None,
    ) -> None:
        """Write points or raw line protocol; see `InfluxClient.write`.

        Args:
            data: Points, or line-protocol bytes sent as they are.
            precision: The unit of the timestamps.
            database: The database, or None for the client's.
        """
        body = _body(data, precision)
        if not body:
            return
        request = build_write(self._endpoint, body, precision=precision, database=database)
        read_write(request, await self._send(request))

    async def query(
        self,
        q: str,
        *,
        database: str | None = None,
        epoch: Precision | None = "ms",
        params: Mapping[str, BindValue] | None = None,
        chunked: bool = True,
    ) -> QueryResult:
        """Run InfluxQL; see `InfluxClient.query`.

        Args:
            q: One or more statements.
            database: The database; None for the client's, "" for none (SHOW DATABASES ...).
            epoch: The unit of integer times in the answer; None for RFC3339 strings.
            params: Bind parameters, referenced as `$name` in `q`.
            chunked: Let the server stream the answer in chunks (merged here).

        Returns:
            The statements' series.
        """
        request = build_query(
            self._endpoint, q, database=database, epoch=epoch, params=params, chunked=chunked
        )
        return read_query(request, await self._send(request))

    async def query_df(
        self,
        q: str,
        *,
        database: str | None = None,
        epoch: Precision | None = "ms",
        params: Mapping[str, BindValue] | None = None,
        chunked: bool = True,
        measurement_column: str | None = None,
    ) -> pd.DataFrame:
        """Run a query and return a DataFrame; see `InfluxClient.query_df`.

        Args:
            q: The query, as for `query`.
            database: The database, or None for the client's.
            epoch: The unit the server sends times in; the index is UTC datetimes either way.
            params: Bind parameters, as for `query`.
            chunked: As for `query`.
            measurement_column: If given, a column of that name holds each row's measurement.

        Returns:
            A frame indexed by tz-aware UTC time, with tags and fields as columns.
        """
        result = await self.query(q, database=database, epoch=epoch, params=params, chunked=chunked)
        return to_dataframe(result, epoch=epoch, measurement_column=measurement_column)

    async def create_database(self, name: str) -> None:
        """Create a database; see `InfluxClient.create_database`.

        Args:
            name: The database name.
        """
        await self.query(f"CREATE DATABASE {quote_ident(name)}", database="")

    async def drop_database(self, name: str) -> None:
        """Drop a database and all its data; see `InfluxClient.drop_database`.

        Args:
            name: The database name.
        """
        await self.query(f"DROP DATABASE {quote_ident(name)}", database="")

    async def databases(self) -> list[str]:
        """Return the names of the databases the credentials may see."""
        return _show_databases(await self.query("SHOW DATABASES", database=""))

    async def close(self) -> None:
        """Close the connections, unless the httpx client was passed in (its owner closes it)."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
