"""MQTT contract v1 of Prognos: topics and payloads shared by the edge agent and the ingester.

Standard library only, so a gateway installs it without pulling anything else. Everything here is
pure: no sockets, no clocks (pass ``now_ms``), no files besides the packaged JSON Schemas.

- Topics: ``build_topic``, ``parse_topic``, ``topic_filter``, ``shared_subscription``.
- Telemetry: ``Reading``, ``TelemetryBatch``, ``encode_telemetry``, ``decode_telemetry`` (returns a
  ``DecodedBatch``: the valid readings and the ``RejectedReading`` list).
- Status, events, health: ``Status``/``Event``/``Health`` with ``encode_*`` and ``decode_*``.
- Signal names of the NASA C-MAPSS columns (``CMAPSS_SETTINGS``, ``CMAPSS_SENSORS``), shared by the
  simulator, the demo and the models.
- JSON Schemas (draft 2020-12): ``schema("telemetry.v1")`` and ``SCHEMA_NAMES``.
- Every rejection is a ``ContractError`` (a ``ValueError``) with ``reason`` (one of ``REASONS``),
  ``path`` (a JSON pointer) and ``message``.
"""

from prognos_contract._cmapss import (
    CMAPSS_SENSORS,
    CMAPSS_SETTINGS,
)
from prognos_contract._codec import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_JSON_GZIP,
)
from prognos_contract._errors import (
    REASONS,
    ContractError,
    Reason,
)
from prognos_contract._event import (
    EVENT_KINDS,
    EVENT_SCHEMA_ID,
    MAX_DETAIL_ENTRIES,
    Event,
    EventKind,
    decode_event,
    encode_event,
)
from prognos_contract._health import (
    MAX_HEALTH_METRICS,
    Health,
    decode_health,
    encode_health,
)
from prognos_contract._rules import (
    DEFAULT_MAX_FUTURE_SKEW_MS,
    ID_PATTERN,
    MAX_INT,
    MAX_NAME_LEN,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS_PER_BATCH,
    MAX_STRING_LEN,
    MAX_VALUES_PER_READING,
    MIN_INT,
    NAME_PATTERN,
    RESERVED_NAMES,
    TS_MAX_MS,
    TS_MIN_MS,
    Value,
)
from prognos_contract._schema import (
    SCHEMA_NAMES,
    schema,
)
from prognos_contract._status import (
    AGENT_VERSION_PATTERN,
    Status,
    StatusState,
    decode_status,
    encode_status,
)
from prognos_contract._telemetry import (
    TELEMETRY_SCHEMA_ID,
    DecodedBatch,
    Reading,
    RejectedReading,
    TelemetryBatch,
    decode_telemetry,
    encode_telemetry,
)
from prognos_contract._topics import (
    DEFAULT_PREFIX,
    TOPIC_KINDS,
    Topic,
    TopicKind,
    build_topic,
    parse_topic,
    shared_subscription,
    topic_filter,
)

# Sorted case-insensitively, as tests/unit/test_public_api.py checks (httpx style).
__all__ = [  # noqa: RUF022  isort-style order would split constants, classes and functions
    "AGENT_VERSION_PATTERN",
    "build_topic",
    "CMAPSS_SENSORS",
    "CMAPSS_SETTINGS",
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_JSON_GZIP",
    "ContractError",
    "decode_event",
    "decode_health",
    "decode_status",
    "decode_telemetry",
    "DecodedBatch",
    "DEFAULT_MAX_FUTURE_SKEW_MS",
    "DEFAULT_PREFIX",
    "encode_event",
    "encode_health",
    "encode_status",
    "encode_telemetry",
    "Event",
    "EVENT_KINDS",
    "EVENT_SCHEMA_ID",
    "EventKind",
    "Health",
    "ID_PATTERN",
    "MAX_DETAIL_ENTRIES",
    "MAX_HEALTH_METRICS",
    "MAX_INT",
    "MAX_NAME_LEN",
    "MAX_PAYLOAD_BYTES",
    "MAX_READINGS_PER_BATCH",
    "MAX_STRING_LEN",
    "MAX_VALUES_PER_READING",
    "MIN_INT",
    "NAME_PATTERN",
    "parse_topic",
    "Reading",
    "Reason",
    "REASONS",
    "RejectedReading",
    "RESERVED_NAMES",
    "schema",
    "SCHEMA_NAMES",
    "shared_subscription",
    "Status",
    "StatusState",
    "TELEMETRY_SCHEMA_ID",
    "TelemetryBatch",
    "Topic",
    "topic_filter",
    "TOPIC_KINDS",
    "TopicKind",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "Value",
]
