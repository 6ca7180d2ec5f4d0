"""Service-system adapters behind one interface: the signed webhook and ServiceNow's Table API.

Both take an `httpx.Client` (or build one with an injectable transport, STYLE.md 10) and
translate httpx's exceptions and HTTP statuses into this package's in exactly one place,
`_send`:

=========================================  ======================================
what happened                              raised
=========================================  ======================================
connection refused, connect timeout        `ServiceUnavailableError` (not sent)
read/write timeout, connection dropped     `DeliveryUncertainError` (may exist)
HTTP 5xx                                   `DeliveryUncertainError` (may exist)
HTTP 429                                   `ServiceUnavailableError`
HTTP 409 on create                         looked up by key (it exists)
other HTTP 4xx                             `DeliveryRejectedError` (dead-letter)
=========================================  ======================================
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx

from cloud.workorders._exceptions import (
    DeliveryRejectedError,
    DeliveryUncertainError,
    ServiceUnavailableError,
)
from cloud.workorders._model import WorkOrder
from cloud.workorders._signing import signed_headers

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ServiceSystem(Protocol):
    """A service system's work-order API. Calls are blocking and never concurrent on one instance.

    Every method raises `ServiceUnavailableError`, `DeliveryUncertainError` or
    `DeliveryRejectedError` (see the module docstring); nothing else escapes.
    """

    def create(self, work_order: WorkOrder, key: str) -> str:
        """Create the work order; returns the service system's id for it."""
        ...

    def find_by_key(self, key: str) -> str | None:
        """The id of the work order created with `key`, or None when there is none."""
        ...

    def update(self, external_id: str, work_order: WorkOrder, key: str) -> None:
        """Send the work order's new content (priority, evidence)."""
        ...

    def cancel(self, external_id: str, key: str, reason: str) -> None:
        """Cancel it (the alert was withdrawn, a planner cancelled)."""
        ...


def _send(client: httpx.Client, key: str, request: httpx.Request) -> httpx.Response:
    """Send one request, mapping every failure to the package's errors (the one place)."""
    try:
        response = client.send(request)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ServiceUnavailableError(
            f"{request.method} {request.url}: not sent: {exc!r}", key=key, reason="connect"
        ) from exc
    except httpx.TimeoutException as exc:
        raise DeliveryUncertainError(
            f"{request.method} {request.url}: no answer in time: {exc!r}", key=key, reason="timeout"
        ) from exc
    except httpx.TransportError as exc:
        raise DeliveryUncertainError(
            f"{request.method} {request.url}: connection lost: {exc!r}", key=key, reason="transport"
        ) from exc
    status = response.status_code
    if status >= 500:  # noqa: PLR2004 - HTTP status classes
        raise DeliveryUncertainError(
            f"{request.method} {request.url}: HTTP {status}", key=key, reason=f"http_{status}"
        )
    if status == 429:  # noqa: PLR2004
        raise ServiceUnavailableError(
            f"{request.method} {request.url}: HTTP 429", key=key, reason="http_429"
        )
    if status >= 400 and status not in {404, 409}:  # noqa: PLR2004
        raise DeliveryRejectedError(
            f"{request.method} {request.url}: HTTP {status}: {response.text[:200]!r}",
            key=key,
            reason=f"http_{status}",
        )
    return response


def _json(response: httpx.Response, key: str) -> Any:  # noqa: ANN401 - JSON is any
    try:
        return response.json()
    except ValueError as exc:
        raise DeliveryUncertainError(
            f"{response.request.url}: answer is not JSON: {response.text[:200]!r}",
            key=key,
            reason="bad_answer",
        ) from exc


class WebhookServiceSystem:
    """The generic signed webhook of DESIGN.md (Standard Webhooks); see docs/workorders.md.

    Args:
        url: Where events are POSTed; ``GET {url}/by-key/{key}`` looks a key up.
        secret: The shared ``whsec_...`` secret.
        client: An httpx client (its timeout applies); built from `transport` when None.
        transport: For tests: an `httpx.MockTransport` or any transport.
        timeout_s: The client's timeout when it is built here.
        clock: Gives the signature's timestamp.
    """

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 10.0,
        clock: Clock = _utcnow,
    ) -> None:
        self.url = url.rstrip("/")
        self._secret = secret
        self._client = client or httpx.Client(transport=transport, timeout=timeout_s)
        self._clock = clock

    def _event(self, kind: str, msg_id: str, key: str, data: dict[str, Any]) -> httpx.Request:
        now = self._clock()
        body = json.dumps(
            {"type": kind, "timestamp": now.isoformat(), "data": data}, separators=(",", ":")
        ).encode()
        headers = signed_headers(self._secret, msg_id, now, body) | {
            "content-type": "application/json",
            "idempotency-key": key,
        }
        return self._client.build_request("POST", self.url, content=body, headers=headers)

    def close(self) -> None:
        """Close the HTTP client (also one passed in)."""
        self._client.close()

    def create(self, work_order: WorkOrder, key: str) -> str:
        """POST ``workorder.created``; a 409 (exists) is looked up by key."""
        request = self._event("workorder.created", f"msg_{key}_created", key, work_order.payload())
        response = _send(self._client, key, request)
        if response.status_code == 409:  # noqa: PLR2004
            found = self.find_by_key(key)
            if found is None:
                raise DeliveryUncertainError(
                    f"{self.url}: 409 for {key!r} but no work order by that key",
                    key=key,
                    reason="http_409",
                )
            return found
        if response.status_code == 404:  # noqa: PLR2004
            raise DeliveryRejectedError(f"{self.url}: HTTP 404", key=key, reason="http_404")
        return str(_json(response, key)["id"])

    def find_by_key(self, key: str) -> str | None:
        """``GET {url}/by-key/{key}`` (signed, empty body): 200 with the id, or 404."""
        now = self._clock()
        msg_id = f"msg_{key}_lookup_{int(now.timestamp() * 1000)}"
        request = self._client.build_request(
            "GET",
            f"{self.url}/by-key/{urllib.parse.quote(key, safe='')}",
            headers=signed_headers(self._secret, msg_id, now, b""),
        )
        response = _send(self._client, key, request)
        if response.status_code == 404:  # noqa: PLR2004
            return None
        return str(_json(response, key)["id"])

    def update(self, external_id: str, work_order: WorkOrder, key: str) -> None:
        """POST ``workorder.updated`` with the full work order."""
        stamp = int(self._clock().timestamp() * 1000)
        data = work_order.payload() | {"external_id": external_id}
        _send(self._client, key, self._event("workorder.updated", f"msg_{key}_u{stamp}", key, data))

    def cancel(self, external_id: str, key: str, reason: str) -> None:
        """POST ``workorder.cancelled``."""
        data = {"key": key, "external_id": external_id, "reason": reason}
        _send(
            self._client, key, self._event("workorder.cancelled", f"msg_{key}_cancelled", key, data)
        )


PRIORITY_NUMBER = {"P1": "1", "P2": "2", "P3": "3", "P4": "4"}

DEFAULT_STATUS_MAP: dict[str, str] = {
    "assigned": "assigned",
    "accepted": "assigned",
    "work in progress": "in_progress",
    "in progress": "in_progress",
    "resolved": "resolved",
    "complete": "resolved",
    "closed complete": "closed",
    "closed": "closed",
    "closed incomplete": "cancelled",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
"""ServiceNow ``state`` display values (case-insensitive) -> our statuses; others are ignored."""


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteStatus:
    """A work order's status as the service system shows it (polled)."""

    key: str
    external_id: str
    status: str
    failure_confirmed: bool | None = None
    root_cause: str = ""
    parts_used: tuple[str, ...] = ()
    resolution_mode: str | None = None


class ServiceNowServiceSystem:
    """ServiceNow's Table API: one record per work order, ``correlation_id`` = the key.

    ServiceNow does not refuse a second record with the same ``correlation_id``, so exactly-once
    rests on the outbox looking the key up before creating again.

    Args:
        instance_url: ``https://<instance>.service-now.com``.
        table: The table (``wm_order`` for Field Service work orders, ``incident``...).
        user: Basic auth user (with `password`), or None with `token`.
        password: Basic auth password.
        token: An OAuth bearer token instead of basic auth.
        client: An httpx client; built from `transport` when None.
        transport: For tests.
        timeout_s: The client's timeout when it is built here.
        cancel_state: The ``state`` value that cancels a record in `table`.
        status_map: ``state`` display values -> our statuses, for `statuses` (polling).
    """

    def __init__(
        self,
        *,
        instance_url: str,
        table: str = "wm_order",
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 10.0,
        cancel_state: str = "cancelled",
        status_map: Mapping[str, str] | None = None,
    ) -> None:
        self._status_map = {k.casefold(): v for k, v in (status_map or DEFAULT_STATUS_MAP).items()}
        if token is None and (user is None or password is None):
            raise ValueError("ServiceNow needs user and password, or token")
        self.base = f"{instance_url.rstrip('/')}/api/now/table/{table}"
        if token is not None:
            auth = f"Bearer {token}"
        else:
            auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"authorization": auth, "accept": "application/json"}
        self._client = client or httpx.Client(transport=transport, timeout=timeout_s)
        self._cancel_state = cancel_state

    def _fields(self, wo: WorkOrder) -> dict[str, Any]:
        parts = ", ".join(f"{p.quantity}x {p.part_number}" for p in wo.parts) or "none"
        return {
            "short_description": wo.title[:160],
            "description": (
                f"{wo.description}\n\nDue by: {wo.due_by.isoformat()}\nParts: {parts}\n"
                f"Warranty: {wo.warranty}\nResolution: {wo.resolution_mode}\n{wo.asset_url}"
            ),
            "priority": PRIORITY_NUMBER[wo.priority.value],
            "correlation_id": wo.key,
            "correlation_display": "prognos",
            "cmdb_ci": wo.asset,
            "company": wo.customer,
            "location": wo.site,
            "due_date": wo.due_by.strftime("%Y-%m-%d %H:%M:%S"),
            "u_prognos_payload": json.dumps(wo.payload(), separators=(",", ":")),
        }

    def close(self) -> None:
        """Close the HTTP client (also one passed in)."""
        self._client.close()

    def create(self, work_order: WorkOrder, key: str) -> str:
        """``POST /api/now/table/{table}``: returns the record's ``sys_id``."""
        request = self._client.build_request(
            "POST",
            self.base,
            params={"sysparm_fields": "sys_id,number,correlation_id"},
            json=self._fields(work_order) | {"correlation_id": key},
            headers=self._headers,
        )
        response = _send(self._client, key, request)
        if response.status_code in {404, 409}:
            raise DeliveryRejectedError(
                f"{self.base}: HTTP {response.status_code}", key=key, reason="rejected"
            )
        return str(_json(response, key)["result"]["sys_id"])

    def statuses(self, keys: Sequence[str]) -> list[RemoteStatus]:
        """Poll the records of `keys` (one ``correlation_idIN...`` query, display values).

        Feedback comes from ``close_notes`` (root cause) and the custom fields
        ``u_failure_confirmed`` (``true``/``false``), ``u_parts_used`` (comma-separated) and
        ``u_resolution_mode``. Records whose state is not in the status map are left out.
        """
        if not keys:
            return []
        fields = (
            "sys_id,correlation_id,state,close_notes,"
            "u_failure_confirmed,u_parts_used,u_resolution_mode"
        )
        request = self._client.build_request(
            "GET",
            self.base,
            params={
                "sysparm_query": "correlation_idIN" + ",".join(keys),
                "sysparm_fields": fields,
                "sysparm_display_value": "true",
                "sysparm_limit": str(len(keys) * 2),
            },
            headers=self._headers,
        )
        response = _send(self._client, keys[0], request)
        out = []
        for r in _json(response, keys[0]).get("result") or []:
            status = self._status_map.get(str(r.get("state", "")).strip().casefold())
            if status is None or r.get("correlation_id") not in keys:
                continue
            confirmed = str(r.get("u_failure_confirmed") or "").casefold()
            parts = str(r.get("u_parts_used") or "")
            out.append(
                RemoteStatus(
                    key=str(r["correlation_id"]),
                    external_id=str(r["sys_id"]),
                    status=status,
                    failure_confirmed={"true": True, "false": False}.get(confirmed),
                    root_cause=str(r.get("close_notes") or ""),
                    parts_used=tuple(p.strip() for p in parts.split(",") if p.strip()),
                    resolution_mode=r.get("u_resolution_mode") or None,
                )
            )
        return out

    def find_by_key(self, key: str) -> str | None:
        """``GET ...?sysparm_query=correlation_id=KEY``: the first match's ``sys_id``."""
        request = self._client.build_request(
            "GET",
            self.base,
            params={
                "sysparm_query": f"correlation_id={key}",
                "sysparm_fields": "sys_id",
                "sysparm_limit": "1",
            },
            headers=self._headers,
        )
        response = _send(self._client, key, request)
        if response.status_code == 404:  # noqa: PLR2004
            return None
        result = _json(response, key).get("result") or []
        return str(result[0]["sys_id"]) if result else None

    def update(self, external_id: str, work_order: WorkOrder, key: str) -> None:
        """``PATCH /api/now/table/{table}/{sys_id}``."""
        request = self._client.build_request(
            "PATCH",
            f"{self.base}/{external_id}",
            json=self._fields(work_order),
            headers=self._headers,
        )
        _send(self._client, key, request)

    def cancel(self, external_id: str, key: str, reason: str) -> None:
        """``PATCH`` the record's ``state`` to `cancel_state`, with the reason as a work note."""
        request = self._client.build_request(
            "PATCH",
            f"{self.base}/{external_id}",
            json={"state": self._cancel_state, "work_notes": f"Cancelled by Prognos: {reason}"},
            headers=self._headers,
        )
        _send(self._client, key, request)
