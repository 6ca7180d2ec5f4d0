"""Exceptions of the InfluxDB adapter, and the one place that maps httpx's exceptions onto them.

```
ValueError
└── LineProtocolError        a point line protocol cannot carry; fix the data, never retry

InfluxError                  anything the server or the network did; `status`, `body` when known
├── InfluxConnectError       no connection (refused, reset, DNS); retry with back-off
├── InfluxTimeout            no answer in time; retry (writes are idempotent by design)
├── InfluxAuthError          401/403: wrong or missing credentials or rights; stop, fix the config
├── InfluxRequestError       4xx or an error inside a query answer: bad request; never retry as is
│   ├── PartialWriteError    some points were dropped (`dropped`, `reason`), the others stored
│   └── DatabaseNotFound     the database (or 2.x bucket mapping) does not exist (`database`)
└── InfluxServerError        5xx, 429 or an unreadable answer; retry with back-off
```

Rules:

- `map_transport_errors` is the only code that catches httpx exceptions; it re-raises them as the
  classes above with `raise ... from exc`, so the cause stays in the traceback.
- `error_for_status` is the only code that turns an HTTP status into an exception. Both are pure
  enough for the sync and the async client to share.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

BODY_LIMIT = 500
"""How many characters of a response body an exception keeps (error bodies can echo whole lines)."""

HTTP_BAD_REQUEST = 400
HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
HTTP_REQUEST_TIMEOUT = 408
HTTP_TOO_MANY_REQUESTS = 429
HTTP_SERVER_ERROR = 500

_DROPPED = re.compile(r"\s*dropped=(\d+)\s*$")


class LineProtocolError(ValueError):
    """A point that InfluxDB line protocol cannot carry; nothing of the batch was sent.

    The message names the point (its index in the batch and its measurement), the key and the
    offending value. The caller should fix or drop the point, count it, and never retry it as is.
    """


class InfluxError(Exception):
    """Base class of every error the server or the network caused.

    Attributes:
        status: The HTTP status, or None when no answer arrived.
        body: The start of the response body (at most 500 characters), or "".
    """

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body[:BODY_LIMIT]


class InfluxConnectError(InfluxError):
    """The server could not be reached or dropped the connection; retry with back-off."""


class InfluxTimeout(InfluxError):  # noqa: N818 - a timeout is an event, not a fault; the agreed name
    """The server did not answer in time; retry. A write may have landed: writing again is safe."""


class InfluxAuthError(InfluxError):
    """The server refused the credentials (401) or the rights (403); stop, fix the configuration."""


class InfluxRequestError(InfluxError):
    """The server refused the request or the query as bad; retrying it unchanged cannot help.

    Attributes:
        statement: The InfluxQL statement that failed, when the error belongs to one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        statement: str | None = None,
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.statement = statement


class PartialWriteError(InfluxRequestError):
    """The server stored some points of a write and dropped others; retrying cannot store those.

    InfluxDB 1.x answers `400 {"error": "partial write: <reason> dropped=<n>"}`, typically for a
    field type conflict or points outside the retention policy. Count the dropped points as
    rejected; the rest of the batch is stored.

    Attributes:
        dropped: How many points the server dropped, or None when it did not say. InfluxDB 1.x
            says `dropped=0` when a line did not parse; such lines are lost as well.
        reason: The server's reason, without the "partial write:" prefix and the count.
    """

    def __init__(
        self, message: str, *, status: int | None, body: str, dropped: int | None, reason: str
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.dropped = dropped
        self.reason = reason


class DatabaseNotFound(InfluxRequestError):  # noqa: N818 - names the condition, like KeyError
    """The database does not exist: create it (or the 2.x DBRP mapping) and write again.

    Attributes:
        database: The database that was asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        body: str,
        database: str,
        statement: str | None = None,
    ) -> None:
        super().__init__(message, status=status, body=body, statement=statement)
        self.database = database


class InfluxServerError(InfluxError):
    """The server failed (5xx), said "slow down" (429) or answered garbage; retry with back-off."""


def _shorten(text: str) -> str:
    """Cut server text that can echo whole lines of line protocol down to a readable size."""
    return text if len(text) <= BODY_LIMIT else f"{text[:BODY_LIMIT]}... ({len(text)} characters)"


def error_message(body: bytes) -> str:
    """Return the error text of an InfluxDB answer: 1.x `error`, 2.x/3.x `message`, or the body."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if not isinstance(parsed, dict):
        return text
    for key in ("error", "message"):
        value = parsed.get(key)
        if isinstance(value, str) and value:
            details = parsed.get("data")
            if isinstance(details, list) and details:
                # 3.x lists the rejected lines instead of counting them; say it the 1.x way.
                lines = "; ".join(
                    str(d.get("error_message", d)) if isinstance(d, dict) else str(d)
                    for d in details
                )
                if "partial write" in value:
                    return f"partial write: {lines} dropped={len(details)}"
                return f"{value}: {lines}"
            return value
    return text


def partial_write(message: str, *, status: int, body: str) -> PartialWriteError:
    """Build a PartialWriteError from a message containing "partial write: <reason> dropped=<n>"."""
    _, _, after = message.partition("partial write:")
    reason = after.strip() or message
    match = _DROPPED.search(reason)
    dropped = int(match.group(1)) if match else None
    if match:
        reason = reason[: match.start()].strip()
    reason = _shorten(reason)
    return PartialWriteError(
        f"partial write: the server dropped {dropped if dropped is not None else 'some'} "
        f"point(s): {reason}",
        status=status,
        body=body,
        dropped=dropped,
        reason=reason,
    )


def error_for_status(
    status: int, body: bytes, *, operation: str, database: str | None
) -> InfluxError:
    """Return the exception for an unsuccessful HTTP answer.

    Args:
        status: The HTTP status of the answer.
        body: The raw answer body.
        operation: What was asked ("write", "query", "ping"), for the message.
        database: The database the request named, if any.

    Returns:
        The exception to raise; the caller raises it.
    """
    message = error_message(body)
    text = body.decode("utf-8", errors="replace")
    what = f"{operation} failed with HTTP {status}: {_shorten(message)}"
    if status in (HTTP_UNAUTHORIZED, HTTP_FORBIDDEN):
        return InfluxAuthError(what, status=status, body=text)
    if status == HTTP_REQUEST_TIMEOUT:
        return InfluxTimeout(what, status=status, body=text)
    if status == HTTP_TOO_MANY_REQUESTS or status >= HTTP_SERVER_ERROR:
        return InfluxServerError(what, status=status, body=text)
    if "partial write" in message:
        return partial_write(message, status=status, body=text)
    lowered = message.lower()
    if status == HTTP_NOT_FOUND and any(
        k in lowered for k in ("database not found", "bucket", "dbrp")
    ):
        return DatabaseNotFound(
            what, status=status, body=text, database=database or "", statement=None
        )
    return InfluxRequestError(what, status=status, body=text)


@contextmanager
def map_transport_errors(operation: str, url: str) -> Iterator[None]:
    """Re-raise httpx's exceptions raised inside the block as the adapter's exceptions.

    Works around `await` too: the sync and the async client both send inside this block.

    Args:
        operation: What was being done ("write", "query", "ping"), for the message.
        url: Where it was sent, for the message (never carries credentials).

    Raises:
        InfluxConnectError: No connection, or it broke before an answer arrived.
        InfluxTimeout: The server took longer than the configured timeout.
        InfluxServerError: The answer could not be decoded.
        InfluxError: Any other httpx error (for example an unsupported URL scheme).
    """
    try:
        yield
    except httpx.ConnectTimeout as exc:
        # Nothing reached the server: the same as a refused connection for the caller.
        raise InfluxConnectError(f"{operation}: could not connect to {url} in time") from exc
    except httpx.TimeoutException as exc:
        raise InfluxTimeout(f"{operation}: no answer from {url} in time ({exc})") from exc
    except httpx.DecodingError as exc:
        raise InfluxServerError(
            f"{operation}: could not decode the answer of {url}: {exc}"
        ) from exc
    except httpx.UnsupportedProtocol as exc:
        raise InfluxError(f"{operation}: unsupported URL {url}: {exc}") from exc
    except httpx.TransportError as exc:
        raise InfluxConnectError(f"{operation}: connection to {url} failed: {exc}") from exc
    except httpx.HTTPError as exc:
        raise InfluxError(f"{operation}: request to {url} failed: {exc}") from exc
