"""`prognos ingest` configuration: one typed model, validated at load, no I/O beyond the file.

Precedence (lowest first): defaults, the YAML file, the environment written by
`scripts/services.py` (`PROGNOS_MQTT_HOST`, `PROGNOS_MQTT_PORT`, `PROGNOS_INFLUX_URL`,
`PROGNOS_INFLUX_USER`, `PROGNOS_INFLUX_PASSWORD`), then command-line flags. Every error names the
file, the key and the value: `ingest.yaml: batch.max_points must be at least 1. Got 0 instead.`
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

# The edge agent's TLS section and context builder: one TLS policy for both MQTT clients.
from edge_agent._mqtt_config import TlsConfig

ENV_KEYS: Mapping[str, tuple[str, str]] = {
    "PROGNOS_MQTT_HOST": ("mqtt", "host"),
    "PROGNOS_MQTT_PORT": ("mqtt", "port"),
    "PROGNOS_INFLUX_URL": ("influx", "url"),
    "PROGNOS_INFLUX_USER": ("influx", "username"),
    "PROGNOS_INFLUX_PASSWORD": ("influx", "password"),
}
"""Environment variables read at load, and the key each one sets."""


class IngestConfigError(ValueError):
    """The ingest configuration is invalid; startup stops with this message (never retried).

    Attributes:
        source: The file (or "environment", "flags") at fault.
    """

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSection(_Strict):
    """The broker, the session and the subscriptions."""

    host: str = Field(default="127.0.0.1", min_length=1, description="Broker host.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port.")
    client_id: str = Field(
        default_factory=lambda: f"prognos-ingest-{socket.gethostname()}"[:64],
        min_length=1,
        max_length=64,
        description="MQTT client id, fixed per process and stable across restarts: the broker "
        "keeps the persistent session (and the unacknowledged messages) under it. Two "
        "processes must never share one.",
    )
    username: str | None = Field(default=None, min_length=1, description="MQTT user name.")
    password: SecretStr | None = Field(default=None, description="MQTT password.")
    tls: TlsConfig | None = Field(default=None, description="TLS, as the edge agent's.")
    keepalive_s: int = Field(default=30, ge=5, le=65535, description="MQTT keep-alive, seconds.")
    session_expiry_s: int = Field(
        default=24 * 3600,
        ge=1,
        le=0xFFFFFFFF,
        description="MQTT 5 Session Expiry Interval, seconds: how long the broker queues "
        "messages for this process while it is away.",
    )
    receive_maximum: int = Field(
        default=5000,
        ge=1,
        le=65535,
        description="MQTT 5 Receive Maximum: most unacknowledged QoS 1 messages the broker "
        "sends this process. This is the back-pressure: while InfluxDB does not accept, "
        "nothing is acknowledged and the broker stops sending (DESIGN.md, delivery).",
    )
    topic_prefix: str = Field(default="prognos/v1", description="Topic prefix of contract v1.")
    share_group: str = Field(
        default="ingest",
        description="Share name of `$share/{group}/...`: processes of one group split the load.",
    )
    deadletter_topic: str | None = Field(
        default=None,
        description="Where dead letters are also published (QoS 1, JSON); omitted: "
        "`{topic_prefix}/_ingest/deadletter`; empty string: not published.",
    )


class InfluxSection(_Strict):
    """The InfluxDB v1 HTTP API to write to."""

    url: str = Field(default="http://127.0.0.1:8086", description="Base URL.")
    database: str = Field(default="prognos", min_length=1, description="Database.")
    username: str | None = Field(default=None, description="User (InfluxDB 1.x basic auth).")
    password: SecretStr | None = Field(default=None, description="Password.")
    token: SecretStr | None = Field(default=None, description="Token (2.x/3.x); not with user.")
    timeout_s: float = Field(default=10.0, gt=0, allow_inf_nan=False, description="Per request.")
    gzip: Literal["no", "yes"] = Field(default="no", description="Gzip write bodies.")
    retention_policy: str | None = Field(default=None, description="Retention policy of writes.")
    create_database: Literal["no", "yes"] = Field(
        default="yes", description="CREATE DATABASE at start (InfluxDB 1.x only)."
    )


class BatchSection(_Strict):
    """When a batch of points is written: whichever comes first."""

    max_points: int = Field(default=5000, ge=1, le=1_000_000, description="Points per write.")
    max_wait_ms: int = Field(
        default=200, ge=1, le=60_000, description="Longest a point waits for its write, ms."
    )


class RetrySection(_Strict):
    """Retry of writes InfluxDB did not accept (down, slow, 5xx): capped exponential back-off."""

    backoff_min_s: float = Field(default=0.2, gt=0, allow_inf_nan=False)
    backoff_max_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)


class DedupeSection(_Strict):
    """Duplicate detection by (gateway, seq)."""

    window: int = Field(
        default=100_000,
        ge=0,
        description="Most recent (gateway, seq) pairs remembered per process (SQLite in "
        "`state_dir`); 0 turns dedupe off (writes are idempotent anyway).",
    )


class GapsSection(_Strict):
    """Gap detection in `seq` from the shared record in InfluxDB (`ingest_batches`)."""

    scan: Literal["yes", "no"] = Field(
        default="yes",
        description="Scan for gaps in this process. Any number of processes may scan; each "
        "reports from the same shared record (see docs/ingest.md).",
    )
    scan_interval_s: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    grace_s: float = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description="A missing seq is a gap only once a later seq has been stored this long.",
    )
    epoch_jump_min: int = Field(
        default=1_000_000,
        ge=2,
        description="A forward jump of at least this many is a new outbox (its seq starts at "
        "its creation time in ms), reported as `outbox_epoch`, not as a gap.",
    )


class DeadLetterSection(_Strict):
    """The dead-letter store: an SQLite table in `state_dir`, plus the dead-letter topic."""

    max_payload_bytes: int = Field(
        default=65_536, ge=0, description="Payload bytes kept per dead letter (the rest cut)."
    )


class IngestConfig(_Strict):
    """Everything `prognos ingest` needs; see config/ingest.example.yaml."""

    mqtt: MqttSection = Field(default_factory=MqttSection)
    influx: InfluxSection = Field(default_factory=InfluxSection)
    batch: BatchSection = Field(default_factory=BatchSection)
    retry: RetrySection = Field(default_factory=RetrySection)
    dedupe: DedupeSection = Field(default_factory=DedupeSection)
    gaps: GapsSection = Field(default_factory=GapsSection)
    deadletter: DeadLetterSection = Field(default_factory=DeadLetterSection)
    state_dir: Path = Field(
        default=Path("/var/lib/prognos-ingest"),
        description="Dedupe window and dead letters (`ingest.db`, SQLite WAL).",
    )
    registry: Path | None = Field(
        default=None,
        description="Asset registry (YAML or CSV); omitted: every asset is unknown but kept.",
    )
    metrics_listen: str | None = Field(
        default="127.0.0.1:9109",
        description="host:port of the Prometheus `/metrics` endpoint; null: none (port 0: any).",
    )
    max_future_skew_ms: int = Field(
        default=300_000, ge=0, description="Readings stamped further ahead are rejected."
    )

    @property
    def deadletter_topic(self) -> str | None:
        """The resolved dead-letter topic, or None when not published."""
        topic = self.mqtt.deadletter_topic
        if topic is None:
            return f"{self.mqtt.topic_prefix}/_ingest/deadletter"
        return topic or None

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """`metrics_listen` as (host, port)."""
        if not self.metrics_listen:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host or "127.0.0.1", int(port)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004 - readable width


def _describe(error: Mapping[str, Any], source: str) -> str:
    path = ".".join(str(p) for p in error["loc"])
    head = f"{source}: {path} {error['msg'].lower()}" if path else f"{source}: {error['msg']}"
    if error["type"] == "missing" or isinstance(error.get("input"), Mapping):
        return f"{head}."
    return f"{head}. Got {_short(error.get('input'))} instead."


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> IngestConfig:
    """Load and validate the configuration.

    Args:
        path: The YAML file, or None for defaults only.
        env: The environment (default `os.environ`); see `ENV_KEYS`.
        overrides: Nested keys set last (the command line's flags).

    Returns:
        The validated configuration.

    Raises:
        IngestConfigError: The file cannot be read or parsed, or a key breaks a rule; one line
            per problem, each naming the file, the key and the value.
    """
    source = str(path) if path is not None else "(defaults)"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise IngestConfigError(f"{source}: cannot read: {exc}", source=source) from None
        except yaml.YAMLError as exc:
            raise IngestConfigError(f"{source}: not valid YAML: {exc}", source=source) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise IngestConfigError(
                f"{source}: the file must be a mapping of keys. Got {_short(loaded)} instead.",
                source=source,
            )
        data = loaded or {}
    environment = os.environ if env is None else env
    from_env: dict[str, Any] = {}
    for name, (section, key) in ENV_KEYS.items():
        if environment.get(name):
            from_env.setdefault(section, {})[key] = environment[name]
    data = _merge(_merge(data, from_env), overrides or {})
    try:
        return IngestConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(e, source) for e in exc.errors()]
        raise IngestConfigError("\n".join(lines), source=source) from None
