"""The MQTT publisher's counters: a mutable tally on its thread, a frozen snapshot for the rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from edge_agent._mqtt_link import MqttVersion


@dataclass(frozen=True, slots=True, kw_only=True)
class PublisherStats:
    """A snapshot of the publisher's counters, for the health topic and ``/metrics``.

    Attributes:
        running: The publisher's thread is alive.
        connected: A CONNACK was accepted and the connection has not been lost since.
        protocol: The MQTT version of the current or last connection, if any.
        inflight: QoS 1 messages sent and not yet acknowledged.
        replaying: A backlog is being replayed at the paced rate.
        published_messages: Telemetry messages acknowledged by the broker.
        published_readings: Readings in those messages.
        rejected_messages: Telemetry messages refused (broker PUBACK >= 0x80, or locally).
        rejected_by_reason: ``rejected_messages`` by MQTT reason code.
        connects: Accepted CONNACKs.
        reconnects: Accepted CONNACKs after the first.
        connect_failures: Connection attempts that failed.
        disconnects: Connections lost or closed.
        events_published: Events acknowledged by the broker.
        events_rejected: Events the broker refused.
        events_dropped: Events dropped: the queue was full while offline, or the publisher stopped.
        health_published: Health messages sent (QoS 0).
        health_skipped: Health messages not sent because the publisher was offline.
        last_error: The last connection error or refusal, if any.
    """

    running: bool
    connected: bool
    protocol: MqttVersion | None
    inflight: int
    replaying: bool
    published_messages: int
    published_readings: int
    rejected_messages: int
    rejected_by_reason: Mapping[int, int]
    connects: int
    reconnects: int
    connect_failures: int
    disconnects: int
    events_published: int
    events_rejected: int
    events_dropped: int
    health_published: int
    health_skipped: int
    last_error: str | None

    def metrics(self) -> dict[str, float]:
        """The counters as flat metrics, in the form ``edge_agent._health`` renders.

        Returns:
            Names such as ``mqtt_published_messages_total`` and
            ``mqtt_rejected_messages_total{reason_code="0x87"}``.
        """
        out: dict[str, float] = {
            "mqtt_connected": float(self.connected),
            "mqtt_inflight_messages": float(self.inflight),
            "mqtt_replaying": float(self.replaying),
            "mqtt_published_messages_total": float(self.published_messages),
            "mqtt_published_readings_total": float(self.published_readings),
            "mqtt_rejected_messages_total": float(self.rejected_messages),
            "mqtt_connects_total": float(self.connects),
            "mqtt_reconnects_total": float(self.reconnects),
            "mqtt_connect_failures_total": float(self.connect_failures),
            "mqtt_disconnects_total": float(self.disconnects),
            "mqtt_events_published_total": float(self.events_published),
            "mqtt_events_rejected_total": float(self.events_rejected),
            "mqtt_events_dropped_total": float(self.events_dropped),
            "mqtt_health_published_total": float(self.health_published),
            "mqtt_health_skipped_total": float(self.health_skipped),
        }
        for code, count in sorted(self.rejected_by_reason.items()):
            out[f'mqtt_rejected_messages_total{{reason_code="0x{code:02x}"}}'] = float(count)
        return out


@dataclass(slots=True)
class Counters:
    """The publisher's tally; changed under the publisher's lock."""

    connected: bool = False
    protocol: MqttVersion | None = None
    replaying: bool = False
    published_messages: int = 0
    published_readings: int = 0
    rejected_messages: int = 0
    rejected_by_reason: dict[int, int] = field(default_factory=dict)
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0
    events_published: int = 0
    events_rejected: int = 0
    events_dropped: int = 0
    health_published: int = 0
    health_skipped: int = 0
    last_error: str | None = None

    def snapshot(self, *, running: bool, inflight: int) -> PublisherStats:
        """A frozen copy, with the two figures the tally does not hold."""
        return PublisherStats(
            running=running,
            connected=self.connected,
            protocol=self.protocol,
            inflight=inflight,
            replaying=self.replaying,
            published_messages=self.published_messages,
            published_readings=self.published_readings,
            rejected_messages=self.rejected_messages,
            rejected_by_reason=dict(self.rejected_by_reason),
            connects=self.connects,
            reconnects=max(0, self.connects - 1),
            connect_failures=self.connect_failures,
            disconnects=self.disconnects,
            events_published=self.events_published,
            events_rejected=self.events_rejected,
            events_dropped=self.events_dropped,
            health_published=self.health_published,
            health_skipped=self.health_skipped,
            last_error=self.last_error,
        )
