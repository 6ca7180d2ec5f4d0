"""Edge events: the payload of ``{prefix}/{site}/{gateway}/events``.

``{"schema": "prognos.event.v1", "gateway": ..., "ts": ms, "kind": ..., "asset": ...,
"detail": {...}}``; ``asset`` and ``detail`` are optional. ``kind`` is a closed set
(``EVENT_KINDS``): a new kind is added here first, and the cloud, which is upgraded before the
gateways, then knows it before any gateway sends it. ``detail`` is flat, like a reading's
``values``, so it maps onto InfluxDB fields and JSON Schema can check it.
"""

import dataclasses
import types
from collections.abc import Mapping
from typing import Any, Literal, get_args

from prognos_contract import _codec
from prognos_contract._errors import ContractError, show
from prognos_contract._rules import (
    Value,
    check_fields,
    check_flat_values,
    check_id,
    check_name,
    check_ts,
    check_type,
)

EVENT_SCHEMA_ID = "prognos.event.v1"
"""The ``schema`` field of an event of contract v1."""

EventKind = Literal[
    "agent_started",
    "config_reloaded",
    "device_recovered",
    "device_unreachable",
    "outbox_dropped",
    "threshold_alarm",
    "threshold_cleared",
]
"""What happened at the edge."""

EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
"""Every ``EventKind``."""

MAX_DETAIL_ENTRIES = 64
"""Most entries in an event's ``detail``."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something the edge agent detected, such as a device that stopped answering.

    Attributes:
        gateway: The gateway, matching ``ID_PATTERN``.
        ts: When it happened, epoch milliseconds.
        kind: One of ``EVENT_KINDS``.
        asset: The asset concerned, matching ``NAME_PATTERN``, if any.
        detail: Up to ``MAX_DETAIL_ENTRIES`` name-value pairs, with the names and values of a
            reading's ``values`` (e.g. ``{"signal": "bearing_temp_c", "value": 93.5}``).

    Raises:
        ContractError: If any field breaks the contract.
    """

    gateway: str
    ts: int
    kind: EventKind
    asset: str | None = None
    detail: Mapping[str, Value] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({})
    )

    def __post_init__(self) -> None:
        check_id(self.gateway, path="/gateway", what="gateway")
        check_ts(self.ts, path="/ts")
        if self.kind not in EVENT_KINDS:
            raise ContractError(
                "bad_value",
                f"event kind {show(self.kind)} is not one of {', '.join(EVENT_KINDS)}",
                "/kind",
            )
        if self.asset is not None:
            check_name(self.asset, path="/asset", what="asset")
        detail = check_flat_values(
            self.detail, path="/detail", what="detail", noun="detail", limit=MAX_DETAIL_ENTRIES
        )
        object.__setattr__(self, "detail", types.MappingProxyType(detail))


def encode_event(event: Event) -> bytes:
    """Return the payload of an event (compact UTF-8 JSON; empty ``asset``/``detail`` left out).

    Args:
        event: An event (checked on construction).

    Returns:
        The payload.
    """
    document: dict[str, Any] = {
        "schema": EVENT_SCHEMA_ID,
        "gateway": event.gateway,
        "ts": event.ts,
        "kind": event.kind,
    }
    if event.asset is not None:
        document["asset"] = event.asset
    if event.detail:
        document["detail"] = dict(event.detail)
    return _codec.dump(document, compress=False)


def decode_event(payload: bytes, *, content_type: str | None = None) -> Event:
    """Return the event in a payload.

    Args:
        payload: The MQTT payload.
        content_type: The MQTT 5 content type, if the message had one.

    Returns:
        The event.

    Raises:
        ContractError: If the payload breaks the contract.
    """
    document = check_type(
        _codec.load(payload, content_type=content_type), dict, path="", what="an event"
    )
    check_fields(
        document,
        required=("gateway", "ts", "kind"),
        optional=("asset", "detail"),
        path="",
        schema_id=EVENT_SCHEMA_ID,
    )
    return Event(
        gateway=document["gateway"],
        ts=document["ts"],
        kind=document["kind"],
        asset=document.get("asset"),
        detail=check_type(document.get("detail", {}), dict, path="/detail", what="detail"),
    )
