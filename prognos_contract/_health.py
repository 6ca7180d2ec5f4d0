"""Agent health: the payload of ``{prefix}/{site}/{gateway}/health`` (QoS 0).

A flat JSON object: ``ts`` (epoch milliseconds) and one finite number per metric, e.g.
``{"ts": 1763805599000, "outbox_depth": 12, "dropped": 0, "poll_errors": 3, "rss_bytes": 41234432,
"cpu_percent": 2.5}``. Metric names follow ``NAME_PATTERN``, are not reserved, and map onto
fields of the ``agent_health`` measurement. Booleans are not numbers here either.
"""

import dataclasses
import types
from collections.abc import Mapping

from prognos_contract import _codec
from prognos_contract._errors import ContractError
from prognos_contract._rules import check_flat_values, check_ts, check_type

MAX_HEALTH_METRICS = 256
"""Most metrics in one health message."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """A snapshot of an edge agent's own metrics.

    Attributes:
        ts: When the snapshot was taken, epoch milliseconds.
        metrics: Up to ``MAX_HEALTH_METRICS`` metric names (not ``ts``) to finite numbers.

    Raises:
        ContractError: If any field breaks the contract.
    """

    ts: int
    metrics: Mapping[str, int | float]

    def __post_init__(self) -> None:
        check_ts(self.ts, path="/ts")
        metrics: object = self.metrics
        if isinstance(metrics, Mapping) and "ts" in metrics:
            raise ContractError("reserved_name", "'ts' is the timestamp, not a metric", "/ts")
        checked = check_flat_values(
            metrics,
            path="",
            what="metrics",
            noun="metric",
            limit=MAX_HEALTH_METRICS,
            numbers_only=True,
        )
        object.__setattr__(self, "metrics", types.MappingProxyType(checked))


def encode_health(health: Health) -> bytes:
    """Return the payload of a health message (compact UTF-8 JSON).

    Args:
        health: A snapshot (checked on construction).

    Returns:
        The payload.
    """
    return _codec.dump({"ts": health.ts, **health.metrics}, compress=False)


def decode_health(payload: bytes, *, content_type: str | None = None) -> Health:
    """Return the health snapshot in a payload.

    Args:
        payload: The MQTT payload.
        content_type: The MQTT 5 content type, if the message had one.

    Returns:
        The snapshot.

    Raises:
        ContractError: If the payload breaks the contract.
    """
    document = check_type(
        _codec.load(payload, content_type=content_type), dict, path="", what="a health message"
    )
    if "ts" not in document:
        raise ContractError("missing_field", "the field 'ts' is missing", "/ts")
    metrics = {name: value for name, value in document.items() if name != "ts"}
    return Health(ts=document["ts"], metrics=metrics)
