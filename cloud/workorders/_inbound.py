"""Inbound status and feedback from the service system: verify, refuse replays, apply.

The service system POSTs a Standard-Webhooks-signed ``workorder.status`` event (contract in
docs/workorders.md) to the inbound endpoint. `InboundHandler.handle` is the whole logic (the HTTP
server around it only moves bytes): signature and age (`verify`), then the ``webhook-id`` against
the seen-id store (a replay inside the tolerance is refused; one outside it is stale), then the
body, then the work order's transition with its alert, labels and case library
(`Store.apply_status`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from cloud.workorders._exceptions import InboundRejectedError
from cloud.workorders._signing import verify
from cloud.workorders._state import IllegalWorkOrderTransition, WoEvent, WoState
from cloud.workorders._store import Feedback, Store

log = structlog.get_logger("prognos.workorders.inbound")

STATUS_EVENTS = {
    "assigned": WoEvent.ASSIGNED,
    "in_progress": WoEvent.IN_PROGRESS,
    "resolved": WoEvent.RESOLVED,
    "closed": WoEvent.CLOSED,
    "cancelled": WoEvent.CANCEL,
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusFeedback(_Model):
    """What the technician reported."""

    failure_confirmed: bool | None = None
    root_cause: str = ""
    parts_used: tuple[str, ...] = ()
    resolution_mode: Literal["remote", "on-site"] | None = None


class StatusData(_Model):
    """One status of one work order."""

    key: str
    external_id: str | None = None
    status: Literal["assigned", "in_progress", "resolved", "closed", "cancelled"]
    feedback: StatusFeedback | None = None


class StatusEvent(_Model):
    """The inbound event body."""

    type: Literal["workorder.status"]
    timestamp: str | None = None
    data: StatusData


@dataclasses.dataclass(frozen=True, slots=True)
class InboundResult:
    """What an accepted event did."""

    key: str
    state: WoState


class InboundHandler:
    """Verifies and applies inbound status events to a store.

    Args:
        store: The decision-state store.
        secrets: Accepted ``whsec_`` secrets (several during a rotation).
        tolerance: Largest accepted clock difference; older messages are stale.
    """

    def __init__(
        self,
        *,
        store: Store,
        secrets: Sequence[str],
        tolerance: dt.timedelta = dt.timedelta(minutes=5),
    ) -> None:
        self._store = store
        self._secrets = tuple(secrets)
        self._tolerance = tolerance

    def handle(self, headers: Mapping[str, str], body: bytes, *, now: dt.datetime) -> InboundResult:
        """Verify and apply one event.

        Raises:
            InboundRejectedError: Refused (the reason and HTTP status are on the error); nothing
                changed.
        """
        msg_id, _sent = verify(
            headers, body, secrets_=self._secrets, now=now, tolerance=self._tolerance
        )
        if not self._store.remember_webhook(msg_id, now=now, keep=2 * self._tolerance):
            raise InboundRejectedError(
                f"webhook {msg_id!r} was already received", reason="replayed", status=409
            )
        try:
            return self._apply(body, now=now)
        except InboundRejectedError:
            self._store.forget_webhook(msg_id)  # A corrected retry may use the same id.
            raise

    def _apply(self, body: bytes, *, now: dt.datetime) -> InboundResult:
        try:
            event = StatusEvent.model_validate_json(body)
        except ValidationError as exc:
            raise InboundRejectedError(
                f"inbound body is not a workorder.status event: {exc.errors()[0]['loc']} "
                f"{exc.errors()[0]['msg']}",
                reason="bad_body",
                status=400,
            ) from None
        d = event.data
        fb = d.feedback
        feedback = (
            None
            if fb is None
            else Feedback(
                failure_confirmed=fb.failure_confirmed,
                root_cause=fb.root_cause,
                parts_used=fb.parts_used,
                resolution_mode=fb.resolution_mode,
            )
        )
        try:
            state = self._store.apply_status(
                d.key,
                STATUS_EVENTS[d.status],
                now=now,
                external_id=d.external_id,
                feedback=feedback,
            )
        except KeyError:
            raise InboundRejectedError(
                f"no work order with key {d.key!r}", reason="unknown_work_order", status=404
            ) from None
        except IllegalWorkOrderTransition as exc:
            raise InboundRejectedError(str(exc), reason="illegal_transition", status=409) from None
        log.info("work_order_status_received", key=d.key, status=d.status, state=state.value)
        return InboundResult(d.key, state)


class InboundServer:
    """A small HTTP server for the inbound endpoint (``POST /hooks/service-system``).

    Each request opens the store, handles, and closes it, so the server's threads never share
    a connection. The REST API may mount `InboundHandler` instead.

    Args:
        db: The store file.
        secrets: Accepted secrets.
        host: Listen address.
        port: Listen port (0 = any free port).
        clock: The current time.
        tolerance: Signature tolerance.
    """

    PATH = "/hooks/service-system"

    def __init__(
        self,
        *,
        db: Path | str,
        secrets: Sequence[str],
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        tolerance: dt.timedelta = dt.timedelta(minutes=5),
    ) -> None:
        outer = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path != outer.PATH:
                    self._answer(404, b'{"error":"not_found"}')
                    return
                store = Store(db)
                try:
                    result = InboundHandler(
                        store=store, secrets=secrets, tolerance=tolerance
                    ).handle(dict(self.headers.items()), body, now=clock())
                    self._answer(200, f'{{"key":"{result.key}","state":"{result.state}"}}'.encode())
                except InboundRejectedError as exc:
                    log.warning("inbound_webhook_refused", reason=exc.reason, error=str(exc))
                    self._answer(exc.status, f'{{"error":"{exc.reason}"}}'.encode())
                finally:
                    store.close()

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
                pass

        self._server = http.server.ThreadingHTTPServer((host, port), _Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="prognos-inbound", daemon=True
        )

    @property
    def url(self) -> str:
        """The endpoint's URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.PATH}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
