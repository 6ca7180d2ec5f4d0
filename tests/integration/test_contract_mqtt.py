"""Contract v1 over the real Mosquitto: what one side encodes, the other side decodes."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest
from conftest import Services
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

import prognos_contract as pc

NOW_MS = 1_763_805_599_000


@contextmanager
def _client(services: Services, client_id: str, **will: object) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if will:
        client.will_set(**will)  # type: ignore[arg-type]
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect(services.mqtt_host, services.mqtt_port)
    client.loop_start()
    assert connected.wait(10), "no CONNACK from the real broker"
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


@contextmanager
def _subscriber(services: Services, topic_filter: str) -> Iterator[queue.Queue[mqtt.MQTTMessage]]:
    inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = threading.Event()
    with _client(services, f"sub-{time.monotonic_ns()}") as client:
        client.on_message = lambda _c, _u, msg: inbox.put(msg)
        client.on_subscribe = lambda *_a: subscribed.set()
        client.subscribe(topic_filter, qos=1)
        assert subscribed.wait(10), "no SUBACK from the real broker"
        yield inbox


def _batch(seq: int) -> pc.TelemetryBatch:
    readings = (
        pc.Reading(
            asset="pump-07",
            ts=NOW_MS + i,
            values={
                "bearing_temp_c": 71.25 + i,
                "run_hours": 10234,
                "running": True,
                "mode": "auto",
            },
            bad=("discharge_pressure_bar",),
        )
        for i in range(50)
    )
    return pc.TelemetryBatch(gateway="gw-plant1-01", seq=seq, readings=tuple(readings))


@pytest.mark.parametrize("compress", [False, True], ids=["json", "gzip"])
def test_telemetry_published_by_a_gateway_decodes_on_the_shared_subscription(
    services: Services, topic_prefix: str, compress: bool
) -> None:
    """A batch published at QoS 1 arrives through `$share` and decodes to what was sent."""
    topic = pc.build_topic("telemetry", site="plant1", gateway="gw-plant1-01", prefix=topic_prefix)
    sent = [_batch(seq) for seq in range(3)]
    with (
        _subscriber(services, pc.shared_subscription("ingest", prefix=topic_prefix)) as inbox,
        _client(services, "gw-plant1-01") as gateway,
    ):
        for batch in sent:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ContentType = "application/json+gzip" if compress else "application/json"
            payload = pc.encode_telemetry(batch, compress=compress)
            gateway.publish(topic, payload, qos=1, properties=props).wait_for_publish(10)
        received = [inbox.get(timeout=10) for _ in sent]
    for batch, msg in zip(sent, received, strict=True):
        assert msg.topic == topic
        parsed = pc.parse_topic(msg.topic, prefix=topic_prefix)
        assert (parsed.site, parsed.gateway, parsed.kind) == ("plant1", "gw-plant1-01", "telemetry")
        content_type = getattr(msg.properties, "ContentType", None)
        decoded = pc.decode_telemetry(bytes(msg.payload), content_type=content_type)
        assert decoded.rejected == ()
        assert decoded.batch == batch


def test_a_malformed_payload_from_the_broker_is_rejected_with_a_reason(
    services: Services, topic_prefix: str
) -> None:
    """Bytes that break the contract arrive intact and are rejected with a reason, not a crash."""
    topic = pc.build_topic("telemetry", site="plant1", gateway="gw-1", prefix=topic_prefix)
    payload = pc.encode_telemetry(_batch(0))[:-7]
    with (
        _subscriber(services, pc.topic_filter("telemetry", prefix=topic_prefix)) as inbox,
        _client(services, "gw-1") as gateway,
    ):
        gateway.publish(topic, payload, qos=1).wait_for_publish(10)
        msg = inbox.get(timeout=10)
    with pytest.raises(pc.ContractError) as info:
        pc.decode_telemetry(bytes(msg.payload))
    assert info.value.reason == "invalid_json"


def test_last_will_marks_a_vanished_gateway_offline_and_retained(
    services: Services, topic_prefix: str
) -> None:
    """The retained status says online while the gateway is up, the Last Will offline after."""
    status_topic = pc.build_topic("status", site="plant1", gateway="gw-1", prefix=topic_prefix)
    will = pc.encode_status(pc.Status(state="offline", ts=NOW_MS, agent_version="0.1.0"))
    online = pc.encode_status(pc.Status(state="online", ts=NOW_MS, agent_version="0.1.0"))
    with _client(services, "gw-1-will", topic=status_topic, payload=will, qos=1, retain=True) as gw:
        gw.publish(status_topic, online, qos=1, retain=True).wait_for_publish(10)
        with _subscriber(services, status_topic) as inbox:
            assert pc.decode_status(bytes(inbox.get(timeout=10).payload)).state == "online"
        # MQTT 5 reason code 0x04: "disconnect with Will Message", as if the link had dropped.
        gw.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=4))
    with _subscriber(services, status_topic) as inbox:
        msg = inbox.get(timeout=10)
    assert msg.retain
    assert pc.decode_status(bytes(msg.payload)).state == "offline"
