"""The edge agent's MQTT publisher against the real Mosquitto: order, acks, outages, refusals.

The shared test broker serves the plain cases; a dedicated Mosquitto, built from the shipped
`config/mosquitto/prognos.conf`, serves the restart, ACL and packet-size cases. The outbox is
`FakeOutbox`, which honours the agreed interface of `edge_agent._outbox`.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from _mqtt_harness import (
    NOW_MS,
    Broker,
    FakeOutbox,
    free_port,
    in_order_without_gaps,
    seq_of,
    subscriber,
    telemetry,
    wait_for,
)
from conftest import Services
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError
from structlog.testing import capture_logs

import prognos_contract as pc
from edge_agent._mqtt_config import MqttConfig, TlsConfig
from edge_agent._mqtt_flow import Pacer, publish_packet_size, reconnect_delay_s
from edge_agent._mqtt_link import MqttVersion, paho_client
from edge_agent._outbox import SqliteOutbox
from edge_agent._publisher import MqttPublisher

SITE = "plant1"


def _config(host: str, port: int, **overrides: Any) -> MqttConfig:
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "client_id": f"gw-test-{uuid.uuid4().hex[:10]}",
        "protocol": "5",
        "reconnect_backoff_min_s": 0.05,
        "reconnect_backoff_max_s": 0.3,
        "connect_timeout_s": 5,
        "replay_rate_msgs_s": None,
        "replay_rate_bytes_s": None,
    }
    return MqttConfig(**(values | overrides))


@contextlib.contextmanager
def _publisher(
    config: MqttConfig,
    outbox: FakeOutbox,
    *,
    gateway: str,
    prefix: str = pc.DEFAULT_PREFIX,
    **kwargs: Any,
) -> Iterator[MqttPublisher[Any]]:
    publisher = MqttPublisher(
        config=config,
        outbox=outbox,
        site=SITE,
        gateway=gateway,
        agent_version="0.1.0",
        prefix=prefix,
        **kwargs,
    )
    publisher.start()
    try:
        yield publisher
    finally:
        publisher.stop(timeout_s=2)
        assert not publisher.stats().running, "the publisher's thread did not end"
        assert outbox.errors == [], "the outbox interface was broken"


class _CountingFactory:
    """A `ClientFactory` that keeps the clients and counts every publish per topic."""

    def __init__(self) -> None:
        self.clients: list[mqtt.Client] = []
        self.publishes: Counter[str] = Counter()

    def __call__(self, client_id: str, protocol: MqttVersion) -> mqtt.Client:
        client = paho_client(client_id, protocol)
        original = client.publish

        def publish(topic: str, *args: Any, **kwargs: Any) -> mqtt.MQTTMessageInfo:
            self.publishes[topic] += 1
            return original(topic, *args, **kwargs)

        client.publish = publish  # type: ignore[method-assign]
        self.clients.append(client)
        return client


def _status(msg: mqtt.MQTTMessage) -> str:
    return pc.decode_status(bytes(msg.payload)).state


# ---------------------------------------------------------------- shared broker


def test_batches_arrive_in_order_all_accepted_never_more_than_the_window_in_flight(
    services: Services, topic_prefix: str
) -> None:
    """Every message arrives once, in order, with its content type; all are accepted."""
    gateway = "gw-order"
    topic = pc.build_topic("telemetry", site=SITE, gateway=gateway, prefix=topic_prefix)
    outbox = FakeOutbox()
    config = _config(services.mqtt_host, services.mqtt_port, max_inflight=8)
    with (
        subscriber(host=services.mqtt_host, port=services.mqtt_port, topics=[topic]) as sub,
        capture_logs() as logs,
        _publisher(config, outbox, gateway=gateway, prefix=topic_prefix) as publisher,
    ):
        assert publisher.wait_connected(5)
        for seq in range(300):
            outbox.add(topic, telemetry(seq, gateway=gateway), seq=seq, readings=3)
            if seq % 100 == 99:
                wait_for(lambda: len(outbox) == 0, 10, "the outbox to drain")
        received = sub.collect(lambda got: len(got) >= 300, 10)
        stats = publisher.stats()
    assert [seq_of(m) for m in received] == list(range(300))
    assert {getattr(m.properties, "ContentType", None) for m in received} == {pc.CONTENT_TYPE_JSON}
    assert [m.seq for m in outbox.accepted] == list(range(300))
    assert outbox.rejected == []
    # One slot of the window of 8 stays free for status and events.
    assert max(outbox.max_batches) <= 7
    assert stats.published_messages == 300
    assert stats.published_readings == 900
    assert stats.rejected_messages == 0
    assert stats.inflight == 0
    # State changes only: one line for the connect, one for the stop, none per message.
    assert [e["event"] for e in logs] == ["mqtt_connected", "mqtt_stopped"]


def test_birth_is_retained_online_will_says_offline_on_abrupt_loss_and_stop_says_offline(
    services: Services, topic_prefix: str
) -> None:
    """Online on every connect, the Will's offline on a lost link, offline again on stop()."""
    gateway = "gw-status"
    status_topic = pc.build_topic("status", site=SITE, gateway=gateway, prefix=topic_prefix)
    factory = _CountingFactory()
    config = _config(services.mqtt_host, services.mqtt_port)
    with (
        capture_logs() as logs,
        _publisher(
            config, FakeOutbox(), gateway=gateway, prefix=topic_prefix, client_factory=factory
        ) as publisher,
    ):
        assert publisher.wait_connected(5)
        with subscriber(
            host=services.mqtt_host, port=services.mqtt_port, topics=[status_topic]
        ) as sub:
            first = sub.collect(lambda got: len(got) >= 1, 5)[0]
            assert first.retain
            assert _status(first) == "online"
            # 0x04 "disconnect with Will Message": the broker acts as if the link had dropped.
            factory.clients[-1].disconnect(
                reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=4)
            )
            will, rebirth = sub.collect(lambda got: len(got) >= 2, 5)
            assert (_status(will), _status(rebirth)) == ("offline", "online")
            wait_for(lambda: publisher.stats().connected, 5, "the reconnect")
            publisher.stop(timeout_s=2)
            last = sub.collect(lambda got: len(got) >= 1, 5)[0]
            assert _status(last) == "offline"
        stats = publisher.stats()
    with subscriber(host=services.mqtt_host, port=services.mqtt_port, topics=[status_topic]) as sub:
        retained = sub.collect(lambda got: len(got) >= 1, 5)[0]
    assert retained.retain
    assert _status(retained) == "offline"
    assert (stats.connects, stats.reconnects, stats.disconnects) == (2, 1, 2)
    events = [e["event"] for e in logs]
    assert events == ["mqtt_connected", "mqtt_disconnected", "mqtt_reconnected", "mqtt_stopped"]


def test_events_and_health_go_to_their_topics(services: Services, topic_prefix: str) -> None:
    """An event arrives at QoS 1 on `events`, health at QoS 0 on `health`; both are counted."""
    gateway = "gw-events"
    events_topic = pc.build_topic("events", site=SITE, gateway=gateway, prefix=topic_prefix)
    health_topic = pc.build_topic("health", site=SITE, gateway=gateway, prefix=topic_prefix)
    event = pc.Event(gateway=gateway, ts=pc.TS_MIN_MS + 1, kind="device_unreachable", asset="p1")
    health = pc.Health(ts=pc.TS_MIN_MS + 1, metrics={"outbox_depth": 3})
    config = _config(services.mqtt_host, services.mqtt_port)
    with (
        subscriber(
            host=services.mqtt_host, port=services.mqtt_port, topics=[events_topic, health_topic]
        ) as sub,
        _publisher(config, FakeOutbox(), gateway=gateway, prefix=topic_prefix) as publisher,
    ):
        publisher.publish_event(event)  # queued before the connection exists: sent after it
        assert publisher.wait_connected(5)
        publisher.publish_health(health)
        got = {m.topic: m for m in sub.collect(lambda got: len(got) >= 2, 5)}
        wait_for(lambda: publisher.stats().events_published == 1, 5, "the event's PUBACK")
        stats = publisher.stats()
    assert pc.decode_event(bytes(got[events_topic].payload)) == event
    assert got[events_topic].qos == 1
    assert not got[events_topic].retain
    assert pc.decode_health(bytes(got[health_topic].payload)) == health
    assert got[health_topic].qos == 0
    assert (stats.events_published, stats.health_published) == (1, 1)


def test_a_backlog_replays_at_the_configured_pace(services: Services, topic_prefix: str) -> None:
    """60 waiting messages at 20 msg/s: a one-second burst, then paced until one window is left."""
    gateway = "gw-pace"
    topic = pc.build_topic("telemetry", site=SITE, gateway=gateway, prefix=topic_prefix)
    outbox = FakeOutbox()
    for seq in range(60):
        outbox.add(topic, telemetry(seq, gateway=gateway), seq=seq)
    config = _config(
        services.mqtt_host, services.mqtt_port, max_inflight=10, replay_rate_msgs_s=20.0
    )
    with (
        subscriber(host=services.mqtt_host, port=services.mqtt_port, topics=[topic]) as sub,
        capture_logs() as logs,
        _publisher(config, outbox, gateway=gateway, prefix=topic_prefix) as publisher,
    ):
        assert publisher.wait_connected(5)
        started = time.monotonic()
        assert publisher.stats().replaying
        received = sub.collect(lambda got: len(got) >= 60, 10)
        elapsed_s = time.monotonic() - started
        wait_for(lambda: not publisher.stats().replaying, 5, "the replay to finish")
    assert [seq_of(m) for m in received] == list(range(60))
    # 20 go at once (the bucket starts full); then 20/s until the rest fits in one window (9
    # messages), which is no flood: (60 - 20 - 9) / 20 = 1.55 s.
    assert 1.4 <= elapsed_s < 5.0
    events = [e["event"] for e in logs]
    assert events[:3] == ["mqtt_connected", "mqtt_replay_started", "mqtt_replay_finished"]


def test_the_sqlite_outbox_drains_through_the_publisher_in_order(
    services: Services, topic_prefix: str, tmp_path: Path
) -> None:
    """The real `SqliteOutbox`: what the poller enqueues arrives in seq order; totals agree."""
    gateway = "gw-sqlite"
    topic = pc.build_topic("telemetry", site=SITE, gateway=gateway, prefix=topic_prefix)
    outbox = SqliteOutbox(
        path=tmp_path / "outbox.db",
        gateway=gateway,
        max_bytes=10_000_000,
        max_messages=10_000,
        sync="normal",
    )
    config = _config(services.mqtt_host, services.mqtt_port, max_inflight=16)
    publisher = MqttPublisher(
        config=config,
        outbox=outbox,
        site=SITE,
        gateway=gateway,
        agent_version="0.1.0",
        prefix=topic_prefix,
    )
    try:
        with subscriber(host=services.mqtt_host, port=services.mqtt_port, topics=[topic]) as sub:
            publisher.start()
            for i in range(100):
                readings = [pc.Reading(asset="pump-07", ts=NOW_MS + i, values={"temp_c": 20.5 + i})]
                outbox.enqueue(readings, topic=topic, now_ms=NOW_MS + i)
            received = sub.collect(lambda got: len(got) >= 100, 10)
            wait_for(lambda: len(outbox) == 0, 5, "the outbox to drain")
            publisher.stop(timeout_s=2)
        totals = outbox.stats(NOW_MS)
        stats = publisher.stats()
    finally:
        publisher.stop(timeout_s=2)
        outbox.close()
    assert [seq_of(m) for m in received] == list(range(100))
    assert (totals.published_messages, totals.published_readings) == (100, 100)
    assert (stats.published_messages, stats.published_readings) == (100, 100)


# ---------------------------------------------------------------- broker restart


def test_broker_restarted_mid_stream_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    """Broker stopped and started again under load: every seq arrives, in order, no gap."""
    gateway = "gw-restart"
    topic = pc.build_topic("telemetry", site=SITE, gateway=gateway)
    total = 400
    outbox = FakeOutbox()
    broker = Broker(tmp_path / "broker")
    broker.start()
    config = _config(broker.host, broker.port, max_inflight=20)
    try:
        with (
            subscriber(
                host=broker.host,
                port=broker.port,
                topics=[pc.topic_filter("telemetry")],
                client_id=f"ingest-{uuid.uuid4().hex[:8]}",
                persistent=True,
            ) as sub,
            capture_logs() as logs,
            _publisher(config, outbox, gateway=gateway) as publisher,
        ):
            assert publisher.wait_connected(5)

            def produce() -> None:
                for seq in range(total):
                    outbox.add(topic, telemetry(seq, gateway=gateway), seq=seq)
                    time.sleep(0.005)

            producer = threading.Thread(target=produce, name="test-producer")
            producer.start()
            wait_for(lambda: len(outbox.accepted) >= 100, 10, "100 messages through")
            broker.stop()
            time.sleep(0.5)  # the producer keeps adding; the publisher keeps retrying
            broker.start()
            producer.join()
            wait_for(lambda: len(outbox) == 0, 10, "the outbox to drain after the restart")
            seen: set[int] = set()

            def all_seen(got: list[mqtt.MQTTMessage]) -> bool:
                if got:  # called once per message received: decode each once
                    seen.add(seq_of(got[-1]))
                return len(seen) >= total

            received = sub.collect(all_seen, 10)
            stats = publisher.stats()
    finally:
        broker.stop()
    seqs = [seq_of(m) for m in received]
    in_order_without_gaps(seqs, total)
    assert outbox.rejected == []
    assert stats.reconnects >= 1
    assert stats.disconnects >= 1
    events = [e["event"] for e in logs]
    assert events[:2] == ["mqtt_connected", "mqtt_disconnected"]
    assert "mqtt_reconnected" in events
    # The outage may cost several failed attempts: one ERROR per distinct cause, not per try.
    failures = [
        e for e in logs if e["event"] == "mqtt_connect_failed" and e["log_level"] == "error"
    ]
    assert len(failures) <= 2


# ---------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto with the shipped config and ACL, on a plain listener (user names, no TLS)."""
    with Broker(tmp_path_factory.mktemp("acl-broker"), acl=True) as broker:
        yield broker


def test_a_publish_the_acl_refuses_is_rejected_counted_and_never_retried(
    acl_broker: Broker,
) -> None:
    """PUBACK 0x87 for a topic under another gateway: rejected once, the others accepted."""
    own = pc.build_topic("telemetry", site=SITE, gateway="gw-a")
    foreign = pc.build_topic("telemetry", site=SITE, gateway="gw-b")
    outbox = FakeOutbox()
    outbox.add(own, telemetry(0, gateway="gw-a"), seq=0)
    outbox.add(foreign, telemetry(1, gateway="gw-a"), seq=1)
    outbox.add(own, telemetry(2, gateway="gw-a"), seq=2)
    factory = _CountingFactory()
    config = _config(acl_broker.host, acl_broker.port, username="gw-a")
    with (
        subscriber(
            host=acl_broker.host, port=acl_broker.port, topics=["prognos/v1/#"], username="ingest"
        ) as sub,
        capture_logs() as logs,
        _publisher(config, outbox, gateway="gw-a", client_factory=factory) as publisher,
    ):
        wait_for(lambda: len(outbox) == 0, 5, "the outbox to drain")
        received = sub.collect(lambda got: sum(m.topic == own for m in got) >= 2, 5)
        received += sub.quiet(0.3)
        stats = publisher.stats()
    assert [m.seq for m in outbox.accepted] == [0, 2]
    assert [m.seq for m in outbox.rejected] == [1]
    assert stats.rejected_messages == 1
    assert dict(stats.rejected_by_reason) == {0x87: 1}
    assert stats.last_error is not None
    assert "Not authorized" in stats.last_error
    assert factory.publishes[foreign] == 1
    assert [seq_of(m) for m in received if m.topic == own] == [0, 2]
    assert all(m.topic != foreign for m in received)
    rejections = [e for e in logs if e["event"] == "publish_rejected"]
    assert len(rejections) == 1
    assert rejections[0]["reason_code"] == "0x87"
    assert stats.metrics()['mqtt_rejected_messages_total{reason_code="0x87"}'] == 1.0


def test_a_message_over_the_brokers_packet_limit_is_rejected_locally(acl_broker: Broker) -> None:
    """Beyond the CONNACK's Maximum Packet Size: rejected 0x95 without sending; link stays up."""
    own = pc.build_topic("telemetry", site=SITE, gateway="gw-a")
    outbox = FakeOutbox()
    outbox.add(own, b"x" * 1_200_000, seq=0)  # the shipped max_packet_size is 1,114,112
    outbox.add(own, telemetry(1, gateway="gw-a"), seq=1)
    factory = _CountingFactory()
    config = _config(acl_broker.host, acl_broker.port, username="gw-a")
    with _publisher(config, outbox, gateway="gw-a", client_factory=factory) as publisher:
        wait_for(lambda: len(outbox) == 0, 5, "the outbox to drain")
        stats = publisher.stats()
    assert [m.seq for m in outbox.rejected] == [0]
    assert [m.seq for m in outbox.accepted] == [1]
    assert dict(stats.rejected_by_reason) == {0x95: 1}
    assert factory.publishes[own] == 1
    assert stats.connects == 1


# ---------------------------------------------------------------- MQTT 3.1.1 fallback


def _protocol_level_offset(head: bytes) -> int | None:
    """Where a CONNECT's protocol level is: after the fixed header and "MQTT" (2+4 bytes)."""
    for n in range(1, 5):  # the remaining length is 1 to 4 bytes, 7 bits each
        if len(head) <= n:
            return None
        if head[n] < 0x80:  # no continuation bit
            return 1 + n + 6
    return None


class _RefuseV5Proxy:
    """A TCP proxy to the real broker that answers an MQTT 5 CONNECT as a 3.1.1-only broker does.

    CONNACK with return code 1, "unacceptable protocol version", then close; 3.1.1 connections
    are passed through.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.refused = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.1)
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, name="test-proxy")
        self._accepting.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), name="test-proxy-conn")
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            level_at = None
            while level_at is None or len(head) <= level_at:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
                level_at = _protocol_level_offset(head)
            if head[level_at] == 5:  # MQTT 5's protocol level
                self.refused += 1
                conn.sendall(b"\x20\x02\x00\x01")
                return
            with socket.create_connection(self.upstream) as up:
                up.sendall(head)
                self._pipe(conn, up)

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._closing.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.1)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)

    def close(self) -> None:
        self._closing.set()
        self._accepting.join()
        for thread in self._threads:
            thread.join()
        self._listener.close()


def test_auto_falls_back_to_mqtt_311_when_the_broker_refuses_v5(
    services: Services, topic_prefix: str
) -> None:
    """`protocol: auto` meets a broker without v5: one refusal, then 3.1.1, and it delivers."""
    gateway = "gw-311"
    topic = pc.build_topic("telemetry", site=SITE, gateway=gateway, prefix=topic_prefix)
    outbox = FakeOutbox()
    for seq in range(5):
        outbox.add(topic, telemetry(seq, gateway=gateway), seq=seq)
    proxy = _RefuseV5Proxy((services.mqtt_host, services.mqtt_port))
    config = _config("127.0.0.1", proxy.port, protocol="auto")
    try:
        with (
            subscriber(host=services.mqtt_host, port=services.mqtt_port, topics=[topic]) as sub,
            capture_logs() as logs,
            _publisher(config, outbox, gateway=gateway, prefix=topic_prefix) as publisher,
        ):
            assert publisher.wait_connected(5)
            received = sub.collect(lambda got: len(got) >= 5, 5)
            wait_for(lambda: len(outbox) == 0, 5, "the outbox to drain")
            stats = publisher.stats()
    finally:
        proxy.close()
    assert proxy.refused == 1
    assert stats.protocol == "3.1.1"
    assert stats.connect_failures == 0
    # Without MQTT 5 there is no content type: the ingester recognises JSON (or gzip) itself.
    assert [seq_of(m) for m in received] == list(range(5))
    assert [e["event"] for e in logs][:2] == ["mqtt_protocol_fallback", "mqtt_connected"]


# ---------------------------------------------------------------- pure parts and config


def test_pacer_holds_the_byte_rate_and_lets_an_oversized_message_through() -> None:
    """A message larger than the bucket passes, then its debt is repaid at the byte rate."""
    pacer = Pacer(rate_msgs_s=None, rate_bytes_s=1000.0, now_s=0.0)
    assert pacer.delay_s(0.0) == 0.0
    pacer.spend(nbytes=3000, now_s=0.0)
    assert pacer.delay_s(0.0) == pytest.approx(2.001)
    assert pacer.delay_s(2.001) == pytest.approx(0.0, abs=1e-9)


def test_pacer_spaces_messages_at_the_message_rate_after_the_burst() -> None:
    """Ten messages at 10/s go at once (the burst), the eleventh a tenth of a second later."""
    pacer = Pacer(rate_msgs_s=10.0, rate_bytes_s=None, now_s=0.0)
    for _ in range(10):
        assert pacer.delay_s(0.0) == 0.0
        pacer.spend(nbytes=100, now_s=0.0)
    assert pacer.delay_s(0.0) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("failures", "jitter", "expected_s"),
    [
        (0, 0.5, 0.0),
        (1, 0.0, 0.25),
        (1, 1.0, 0.5),
        (3, 1.0, 2.0),
        (10, 1.0, 30.0),
        (10**6, 0.0, 15.0),
    ],
)
def test_reconnect_delay_doubles_to_the_cap_with_equal_jitter(
    failures: int, jitter: float, expected_s: float
) -> None:
    """The base doubles per failure up to the cap; the wait is 50-100 % of it."""
    assert reconnect_delay_s(failures, min_s=0.5, max_s=30.0, jitter=jitter) == expected_s


def test_publish_packet_size_counts_header_topic_id_properties_and_payload() -> None:
    """A 200-byte payload on a 10-byte topic: 2+10+2 + 1+19 properties + 200, plus 1+2 header."""
    size = publish_packet_size(
        topic="a/b/c/d/ef", payload_len=200, content_type="application/json", mqtt5=True
    )
    assert size == 1 + 2 + (2 + 10 + 2 + 1 + (1 + 2 + 16) + 200)
    assert publish_packet_size(topic="t", payload_len=0, content_type=None, mqtt5=False) == 7


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"hots": "x"}, "Extra inputs are not permitted"),
        ({"password": "p", "password_file": "/run/pw"}, "exclude each other"),
        ({"password": "p"}, "a password needs a username"),
        ({"tls": {"cert_file": "/c.pem"}}, "cert_file and key_file go together"),
        ({"tls": {"insecure_skip_verify": True}}, "Input should be 'no' or 'yes'"),
        ({"protocol": "4"}, "Input should be 'auto', '5' or '3.1.1'"),
        ({"reconnect_backoff_min_s": 9, "reconnect_backoff_max_s": 1}, "at most"),
        ({"max_inflight": 1}, "greater than or equal to 2"),
    ],
)
def test_config_refuses_what_it_cannot_honour(overrides: dict[str, Any], message: str) -> None:
    """Typos, contradictions and booleans where a word is asked for fail at load."""
    with pytest.raises(ValidationError, match=re.escape(message)):
        MqttConfig.model_validate({"host": "broker"} | overrides)


def test_config_defaults_to_mqtt5_with_fallback_and_the_port_follows_tls() -> None:
    """Defaults: auto (v5 first), 1883 in clear, 8883 with TLS."""
    assert MqttConfig(host="b").protocol == "auto"
    assert MqttConfig(host="b").effective_port == 1883
    assert MqttConfig(host="b", tls=TlsConfig()).effective_port == 8883
