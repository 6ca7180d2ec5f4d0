"""A real local HTTP service system for tests and the simulator: webhook receiver + ServiceNow.

It speaks the two adapters' protocols over real sockets (stdlib ``http.server`` in a thread):

- ``POST /webhook``: Standard Webhooks events (verified with the shared secret), a create stored
  by its ``Idempotency-Key`` (switchable off, to make a duplicate visible in tests);
  ``GET /webhook/by-key/{key}``: the lookup.
- ``POST|GET /api/now/table/{table}`` and ``PATCH /api/now/table/{table}/{sys_id}``: ServiceNow's
  Table API subset (basic or bearer auth). Like ServiceNow, a second record with the same
  ``correlation_id`` is *not* refused.

Fault modes switch at run time (`FakeServiceSystem.set_mode`): ``ok``; ``down`` (the port is
closed: connection refused); ``slow`` (every request waits ``delay_s`` first); ``error500``
(every request answers 500, creating nothing); ``error500_after_create`` and
``timeout_after_create`` (the create is stored, then the answer is a 500, or comes ``delay_s``
late: the cases that break naive retries). ``on_create`` is called with the running count of
stored creates, before the answer (a test kills the client there).

`send_status` posts a signed ``workorder.status`` callback to Prognos' inbound endpoint.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import http.server
import itertools
import json
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from cloud.workorders._exceptions import InboundRejectedError
from cloud.workorders._signing import signed_headers, verify

MODES = ("ok", "down", "slow", "error500", "error500_after_create", "timeout_after_create")


@dataclasses.dataclass(frozen=True, slots=True)
class CapturedRequest:
    """One request as received, for independent checks in tests."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeServiceSystem:
    """The fake service system. Thread-safe; start it, point the adapters at it, stop it.

    Args:
        secret: The webhook secret (``whsec_...``).
        sn_user: ServiceNow basic-auth user.
        sn_password: ServiceNow basic-auth password.
        sn_token: A bearer token accepted instead.
        host: Listen address.
        port: Listen port (0 = any free one, kept across ``down``/``ok``).
        callback_url: Prognos' inbound endpoint, for `send_status`.
        honour_idempotency_key: Store one webhook record per key (the contract); off, every
            create is a new record.
        clock: The receiver's "now" for signature tolerance (tests with a controlled clock).
    """

    def __init__(
        self,
        *,
        secret: str,
        sn_user: str = "prognos",
        sn_password: str = "secret",  # noqa: S107 - a test double's default
        sn_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        callback_url: str | None = None,
        honour_idempotency_key: bool = True,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._clock = clock
        self.secret = secret
        self.sn_auth = {"Basic " + base64.b64encode(f"{sn_user}:{sn_password}".encode()).decode()}
        if sn_token:
            self.sn_auth.add(f"Bearer {sn_token}")
        self.callback_url = callback_url
        self.honour_idempotency_key = honour_idempotency_key
        self.mode = "ok"
        self.delay_s = 0.5
        self.on_create: Callable[[int], None] | None = None
        self.webhook_records: list[dict[str, Any]] = []
        self.sn_records: list[dict[str, Any]] = []
        self.requests: list[CapturedRequest] = []
        self.creates = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._host = host
        self._port = port
        self._server: http.server.ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """``http://host:port``."""
        return f"http://{self._host}:{self._port}"

    @property
    def webhook_url(self) -> str:
        """The webhook receiver's URL."""
        return f"{self.base_url}/webhook"

    def start(self) -> None:
        """Listen and serve in a background thread."""
        server = _QuietServer((self._host, self._port), _make_handler(self))
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="fake-service-system", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port (connections are then refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:  # Keep-alive connections would outlive the port.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def set_mode(self, mode: str, *, delay_s: float | None = None) -> None:
        """Switch the fault mode (see the module docstring)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}. Got {mode!r} instead")
        if delay_s is not None:
            self.delay_s = delay_s
        if mode == "down" and self._server is not None:
            self.stop()
        elif mode != "down" and self._server is None:
            self.start()
        self.mode = mode

    # ------------------------------------------------------------- views

    @property
    def request_count(self) -> int:
        """Requests received so far."""
        with self._lock:
            return len(self.requests)

    def webhook_keys(self) -> list[str]:
        """The key of every stored webhook work order (duplicates repeat)."""
        with self._lock:
            return [r["key"] for r in self.webhook_records]

    def sn_keys(self) -> list[str]:
        """The ``correlation_id`` of every ServiceNow record (duplicates repeat)."""
        with self._lock:
            return [r["correlation_id"] for r in self.sn_records]

    # ------------------------------------------------------------- callbacks

    def send_status(
        self,
        key: str,
        status: str,
        *,
        external_id: str | None = None,
        feedback: dict[str, Any] | None = None,
        now: dt.datetime | None = None,
        msg_id: str | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        """POST a signed ``workorder.status`` event to `callback_url`.

        Args:
            key: The work order's key.
            status: ``assigned``, ``in_progress``, ``resolved``, ``closed`` or ``cancelled``.
            external_id: Our id of it.
            feedback: ``failure_confirmed``, ``root_cause``, ``parts_used``, ``resolution_mode``.
            now: The signature's time (a stale one for tests).
            msg_id: The ``webhook-id`` (reuse one to replay).
            secret: Sign with another secret (a forged message).

        Returns:
            The response.
        """
        if self.callback_url is None:
            raise RuntimeError("no callback_url set")
        now = now or dt.datetime.now(dt.UTC)
        data: dict[str, Any] = {"key": key, "status": status}
        if external_id is not None:
            data["external_id"] = external_id
        if feedback is not None:
            data["feedback"] = feedback
        body = json.dumps(
            {"type": "workorder.status", "timestamp": now.isoformat(), "data": data}
        ).encode()
        msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
        headers = signed_headers(secret or self.secret, msg_id, now, body)
        headers["content-type"] = "application/json"
        return httpx.post(self.callback_url, content=body, headers=headers, timeout=10)

    # ------------------------------------------------------------- request handling

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(CapturedRequest(method, path, headers, body))
            mode = self.mode
        if mode == "slow":
            time.sleep(self.delay_s)
        if mode == "error500":
            return 500, {"error": "internal"}
        url = urllib.parse.urlsplit(path)
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["webhook"]:
            return self._webhook(method, parts, headers, body, mode)
        if parts[:3] == ["api", "now", "table"] and len(parts) in {4, 5}:
            if headers.get("authorization") not in self.sn_auth:
                return 401, {"error": {"message": "User Not Authenticated"}}
            return self._table(method, parts, url.query, body, mode)
        return 404, {"error": "not_found"}

    def _created(self, mode: str) -> tuple[int, Any] | None:
        self.creates += 1
        if self.on_create is not None:
            self.on_create(self.creates)
        if mode == "timeout_after_create":
            time.sleep(self.delay_s)
        if mode == "error500_after_create":
            return 500, {"error": "internal"}
        return None

    def _webhook(
        self, method: str, parts: list[str], headers: dict[str, str], body: bytes, mode: str
    ) -> tuple[int, Any]:
        try:
            verify(headers, body, secrets_=[self.secret], now=self._clock())
        except InboundRejectedError as exc:
            return exc.status, {"error": exc.reason}
        if method == "GET" and len(parts) == 3 and parts[1] == "by-key":  # noqa: PLR2004
            key = urllib.parse.unquote(parts[2])
            with self._lock:
                found = next((r for r in self.webhook_records if r["key"] == key), None)
            return (
                (200, {"id": found["id"], "key": key}) if found else (404, {"error": "not_found"})
            )
        if method != "POST" or len(parts) != 1:
            return 405, {"error": "method"}
        event = json.loads(body)
        key = headers.get("idempotency-key", "")
        if event["type"] == "workorder.created":
            with self._lock:
                existing = next((r for r in self.webhook_records if r["key"] == key), None)
                if existing is not None and self.honour_idempotency_key:
                    return 200, {"id": existing["id"], "key": key}
                record = {
                    "id": f"WO-{next(self._ids):05d}",
                    "key": key,
                    "data": event["data"],
                    "status": "new",
                }
                self.webhook_records.append(record)
            answer = self._created(mode)
            return answer or (201, {"id": record["id"], "key": key})
        with self._lock:
            for r in self.webhook_records:
                if r["key"] == key:
                    r["status"] = (
                        "cancelled" if event["type"] == "workorder.cancelled" else r["status"]
                    )
                    r["data"] = event["data"] if event["type"] == "workorder.updated" else r["data"]
        return 200, {"key": key}

    def _table(
        self, method: str, parts: list[str], query: str, body: bytes, mode: str
    ) -> tuple[int, Any]:
        if method == "POST" and len(parts) == 4:  # noqa: PLR2004
            fields = json.loads(body)
            with self._lock:
                record = fields | {"sys_id": uuid.uuid4().hex, "number": f"WO{next(self._ids):07d}"}
                self.sn_records.append(record)
            answer = self._created(mode)
            return answer or (201, {"result": record})
        if method == "GET" and len(parts) == 4:  # noqa: PLR2004
            q = urllib.parse.parse_qs(query)
            cond = q.get("sysparm_query", [""])[0]
            limit = int(q.get("sysparm_limit", ["10000"])[0])
            if "IN" in cond and "=" not in cond:
                field, _, values = cond.partition("IN")
                wanted = set(values.split(","))
            else:
                field, _, value = cond.partition("=")
                wanted = {value}
            with self._lock:
                hits = [r for r in self.sn_records if not cond or r.get(field) in wanted]
            return 200, {"result": hits[:limit]}
        if method == "PATCH" and len(parts) == 5:  # noqa: PLR2004
            with self._lock:
                for r in self.sn_records:
                    if r["sys_id"] == parts[4]:
                        r.update(json.loads(body))
                        return 200, {"result": r}
            return 404, {"error": {"message": "No Record found"}}
        return 405, {"error": "method"}


class _QuietServer(http.server.ThreadingHTTPServer):
    """Clients that give up (timeouts, killed processes) are the point here, not errors."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore a client's reset or timeout."""


def _make_handler(fake: FakeServiceSystem) -> type[http.server.BaseHTTPRequestHandler]:
    class _Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with fake._lock:  # noqa: SLF001 - the handler is part of the fake
                fake._connections.add(self.connection)  # noqa: SLF001

        def finish(self) -> None:
            with fake._lock:  # noqa: SLF001
                fake._connections.discard(self.connection)  # noqa: SLF001
            with contextlib.suppress(OSError):
                super().finish()

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.casefold(): v for k, v in self.headers.items()}
            status, answer = fake._handle(self.command, self.path, headers, body)  # noqa: SLF001
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # The client gave up (timeout): exactly the case under test.

        do_GET = do_POST = do_PATCH = _serve  # noqa: N815 - the stdlib's handler names

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
            pass

    return _Handler
