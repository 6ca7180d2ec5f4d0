"""The `mqtt` section of the agent's config: broker, identity, session, flow control and pacing.

Loading does no I/O: files named here (CA, certificate, key, password file) are read when the
publisher starts, and a file that cannot be read then stops startup with a `ConfigError` naming it.
Booleans are spelled as `Literal` strings (STYLE.md 4); every duration and rate has its unit in
its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError

MqttProtocol = Literal["auto", "5", "3.1.1"]
"""`5`, `3.1.1`, or `auto`: MQTT 5 first, MQTT 3.1.1 if the broker answers that it lacks v5."""

MQTT_PORT = 1883
"""The IANA port of MQTT without TLS."""
MQTTS_PORT = 8883
"""The IANA port of MQTT over TLS."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    """TLS towards the broker: whom to trust, and the gateway's own certificate."""

    ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the broker's certificate; omitted: the "
        "system's trust store.",
    )
    cert_file: Path | None = Field(
        default=None,
        description="PEM certificate of this gateway (its CN is the gateway id the broker's ACL "
        "checks); needs `key_file`.",
    )
    key_file: Path | None = Field(
        default=None, description="PEM private key of `cert_file` (unencrypted)."
    )
    insecure_skip_verify: Literal["no", "yes"] = Field(
        default="no",
        description="`yes` accepts any broker certificate and host name: for a bench, never in "
        "the field (anyone on the path can then read and forge the traffic).",
    )

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise PydanticCustomError("rule", "cert_file and key_file go together")
        return self


class MqttConfig(_Strict):
    """How the edge agent reaches the broker (contract v1: MQTT 5, QoS 1, persistent session)."""

    host: str = Field(min_length=1, description="Broker host name or IP address.")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Broker port; omitted: 8883 with `tls`, 1883 without.",
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="MQTT client id, stable across restarts (the persistent session is keyed by "
        "it); omitted: the gateway id.",
    )
    protocol: MqttProtocol = Field(
        default="auto",
        description="`5`, `3.1.1`, or `auto` (MQTT 5; 3.1.1 if the broker refuses v5 with "
        "'unsupported protocol version'). Under 3.1.1 a broker's refusal of a message is "
        "invisible: it acknowledges and drops it.",
    )
    tls: TlsConfig | None = Field(default=None, description="TLS; omitted: plain TCP.")
    username: str | None = Field(
        default=None,
        min_length=1,
        description="MQTT user name (with client certificates the broker takes the CN instead).",
    )
    password: SecretStr | None = Field(default=None, description="MQTT password; needs username.")
    password_file: Path | None = Field(
        default=None,
        description="File whose first line is the password (keeps it out of the config); "
        "excludes `password`.",
    )
    keepalive_s: int = Field(
        default=30, ge=5, le=65535, description="MQTT keep-alive, seconds (a PING when idle)."
    )
    session_expiry_s: int = Field(
        default=7 * 24 * 3600,
        ge=1,
        le=0xFFFFFFFF,
        description="MQTT 5 session expiry, seconds: how long the broker keeps this gateway's "
        "session (its command subscription and queued commands) while it is offline. "
        "4294967295 means never.",
    )
    max_inflight: int = Field(
        default=100,
        ge=2,
        le=65535,
        description="Most QoS 1 messages sent and not yet acknowledged (lowered to the broker's "
        "Receive Maximum if that is smaller). One slot stays free for status and events.",
    )
    replay_rate_msgs_s: float | None = Field(
        default=200.0,
        gt=0,
        allow_inf_nan=False,
        description="Pace of a backlog's replay after a (re)connect, messages per second; "
        "null: unpaced.",
    )
    replay_rate_bytes_s: float | None = Field(
        default=1_000_000.0,
        gt=0,
        allow_inf_nan=False,
        description="Pace of a backlog's replay, payload bytes per second; null: unpaced.",
    )
    connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="Longest wait for TCP, TLS and the CONNACK of one attempt, seconds.",
    )
    reconnect_backoff_min_s: float = Field(
        default=0.5,
        gt=0,
        allow_inf_nan=False,
        description="Wait after the first failed attempt, seconds; doubles per further failure.",
    )
    reconnect_backoff_max_s: float = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="Longest wait between attempts, seconds (each wait is jittered to 50-100 %, "
        "so a fleet does not reconnect in step after a broker restart).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise PydanticCustomError("rule", "password and password_file exclude each other")
        if (self.password is not None or self.password_file is not None) and self.username is None:
            raise PydanticCustomError("rule", "a password needs a username")
        if self.reconnect_backoff_min_s > self.reconnect_backoff_max_s:
            raise PydanticCustomError(
                "rule",
                "reconnect_backoff_min_s must be at most reconnect_backoff_max_s ({max_s}). "
                "Got {min_s} instead",
                {"max_s": self.reconnect_backoff_max_s, "min_s": self.reconnect_backoff_min_s},
            )
        return self

    @property
    def effective_port(self) -> int:
        """The port to connect to: `port`, or the IANA default for plain or TLS MQTT."""
        if self.port is not None:
            return self.port
        return MQTTS_PORT if self.tls is not None else MQTT_PORT
