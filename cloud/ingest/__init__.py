"""The production ingester, `prognos ingest`: MQTT contract v1 in, InfluxDB out.

Shared subscription (any number of processes split the load), persistent session, PUBACK only
after InfluxDB accepted (a crash or an InfluxDB outage loses nothing), batching by size and time,
back-pressure through MQTT 5 Receive Maximum, dead letters with reasons, dedupe by (gateway, seq),
gap detection, gateway status, Prometheus metrics. docs/ingest.md is the operator's guide.

    from cloud.ingest import Ingester, load_config

    ingester = Ingester(load_config(Path("config/ingest.yaml")))
    ingester.start()
    ...
    ingester.stop()     # flush, acknowledge, disconnect
"""

from cloud.ingest._config import IngestConfig, IngestConfigError, load_config
from cloud.ingest._core import (
    Batcher,
    Classifier,
    FieldTypes,
    Finding,
    Outcome,
    Reject,
    SeqWindow,
    is_epoch,
    scan_gaps,
)
from cloud.ingest._ingester import Ingester
from cloud.ingest._metrics import Metrics
from cloud.ingest._state import DeadLetter, StateStore, encode_deadletter

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "Batcher",
    "Classifier",
    "DeadLetter",
    "encode_deadletter",
    "FieldTypes",
    "Finding",
    "IngestConfig",
    "IngestConfigError",
    "Ingester",
    "is_epoch",
    "load_config",
    "Metrics",
    "Outcome",
    "Reject",
    "scan_gaps",
    "SeqWindow",
    "StateStore",
]
