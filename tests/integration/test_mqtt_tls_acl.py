"""TLS with client certificates and the shipped ACL, on a Mosquitto run from the shipped config.

A throw-away PKI is made with the `openssl` command line (Debian package `openssl`): a CA, a
broker certificate for localhost/127.0.0.1, and client certificates whose CN is the identity the
ACL sees: gateways `gw-a` and `gw-b`, the ingester `ingest`, the command sender `prognos-cmd`.
The broker's config is `config/mosquitto/prognos.conf` with only paths and port changed.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from _mqtt_harness import (
    Broker,
    FakeOutbox,
    Subscriber,
    seq_of,
    shipped_settings,
    subscriber,
    telemetry,
    wait_for,
)
from _tls import Identity, Pki, make_ca, make_client, make_pki
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

import prognos_contract as pc
from edge_agent._exceptions import ConfigError
from edge_agent._mqtt_config import MqttConfig, TlsConfig
from edge_agent._publisher import MqttPublisher

SITE = "plant1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """CA, broker certificate, and client certificates for two gateways and two services."""
    return make_pki(tmp_path_factory.mktemp("pki"), ["gw-a", "gw-b", "ingest", "prognos-cmd"])


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Identity]:
    """Another CA, and a certificate for `gw-a` signed by it (what an attacker could make)."""
    directory = tmp_path_factory.mktemp("rogue")
    ca = make_ca(directory, cn="Rogue CA")
    return ca[0], make_client(directory, ca, "gw-a")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Broker]:
    """Mosquitto with the shipped config and ACL, on a TLS listener requiring certificates."""
    with Broker(tmp_path_factory.mktemp("tls-broker"), pki=pki, acl=True) as running:
        yield running


def _tls(pki: Pki, cn: str | None) -> TlsConfig:
    if cn is None:
        return TlsConfig(ca_file=pki.ca_cert)
    return TlsConfig(
        ca_file=pki.ca_cert, cert_file=pki.clients[cn].cert, key_file=pki.clients[cn].key
    )


def _config(broker: Broker, tls: TlsConfig, client_id: str) -> MqttConfig:
    return MqttConfig(
        host=broker.host,
        port=broker.port,
        client_id=client_id,
        protocol="5",
        tls=tls,
        reconnect_backoff_min_s=0.1,
        reconnect_backoff_max_s=0.3,
        connect_timeout_s=5,
    )


@contextlib.contextmanager
def _publisher(
    config: MqttConfig, outbox: FakeOutbox, *, gateway: str
) -> Iterator[MqttPublisher[Any]]:
    publisher = MqttPublisher(
        config=config, outbox=outbox, site=SITE, gateway=gateway, agent_version="0.1.0"
    )
    publisher.start()
    try:
        yield publisher
    finally:
        publisher.stop(timeout_s=2)
        assert outbox.errors == []


@contextlib.contextmanager
def _tls_client(broker: Broker, pki: Pki, cn: str, topics: list[str]) -> Iterator[Subscriber]:
    with subscriber(
        host="localhost",  # the broker's certificate names localhost and 127.0.0.1
        port=broker.port,
        topics=topics,
        client_id=f"{cn}-client",
        ca_file=pki.ca_cert,
        identity=pki.clients[cn],
    ) as sub:
        yield sub


def test_the_shipped_broker_config_is_sized_and_locked_as_designed() -> None:
    """Persistence on, queues of 1,000,000, inflight unlimited, certificates required, CN = user."""
    settings = dict(shipped_settings())
    assert settings["persistence"] == "true"
    assert settings["max_queued_messages"] == "1000000"
    assert settings["max_inflight_messages"] == "0"
    assert settings["allow_anonymous"] == "false"
    assert settings["require_certificate"] == "true"
    assert settings["use_identity_as_username"] == "true"
    assert settings["acl_file"].endswith("/acl")


def test_a_gateway_publishes_under_its_own_id_and_is_refused_under_another(
    broker: Broker, pki: Pki
) -> None:
    """gw-a's own telemetry is accepted and read by the ingester; under gw-b's id: 0x87, unseen."""
    own = pc.build_topic("telemetry", site=SITE, gateway="gw-a")
    foreign = pc.build_topic("telemetry", site=SITE, gateway="gw-b")
    outbox = FakeOutbox()
    outbox.add(own, telemetry(0, gateway="gw-a"), seq=0)
    outbox.add(foreign, telemetry(1, gateway="gw-a"), seq=1)
    outbox.add(own, telemetry(2, gateway="gw-a"), seq=2)
    config = _config(broker, _tls(pki, "gw-a"), "gw-a")
    with (
        _tls_client(broker, pki, "ingest", ["prognos/v1/#"]) as ingest,
        _publisher(config, outbox, gateway="gw-a") as publisher,
    ):
        wait_for(lambda: len(outbox) == 0, 5, "the outbox to drain")
        received = ingest.collect(lambda got: sum(m.topic == own for m in got) >= 2, 5)
        received += ingest.quiet(0.3)
        stats = publisher.stats()
    assert [m.seq for m in outbox.accepted] == [0, 2]
    assert [m.seq for m in outbox.rejected] == [1]
    assert dict(stats.rejected_by_reason) == {0x87: 1}
    assert [seq_of(m) for m in received if m.topic == own] == [0, 2]
    assert all(m.topic != foreign for m in received)
    # The birth message passed the ACL too: status is a gateway's own topic.
    status = pc.build_topic("status", site=SITE, gateway="gw-a")
    assert any(m.topic == status for m in received)


def test_the_ingester_reads_every_gateway_through_a_shared_subscription(
    broker: Broker, pki: Pki
) -> None:
    """Telemetry of gw-a and gw-b both reach `$share/ingest/prognos/v1/+/+/telemetry`."""
    outboxes = {gw: FakeOutbox() for gw in ("gw-a", "gw-b")}
    for gw, outbox in outboxes.items():
        outbox.add(
            pc.build_topic("telemetry", site=SITE, gateway=gw), telemetry(0, gateway=gw), seq=0
        )
    with (
        _tls_client(broker, pki, "ingest", [pc.shared_subscription("ingest")]) as ingest,
        _publisher(_config(broker, _tls(pki, "gw-a"), "gw-a"), outboxes["gw-a"], gateway="gw-a"),
        _publisher(_config(broker, _tls(pki, "gw-b"), "gw-b"), outboxes["gw-b"], gateway="gw-b"),
    ):
        received = ingest.collect(lambda got: len(got) >= 2, 5)
    assert ingest.suback == [1]
    assert sorted(pc.parse_topic(m.topic).gateway for m in received) == ["gw-a", "gw-b"]
    assert all(not o.rejected for o in outboxes.values())


def test_a_gateway_receives_only_its_own_commands_and_cannot_send_any(
    broker: Broker, pki: Pki
) -> None:
    """Subscribed to everything, gw-a gets only its own cmd; its own cmd publish is refused."""
    cmd_a = pc.build_topic("cmd", site=SITE, gateway="gw-a", name="reload")
    cmd_b = pc.build_topic("cmd", site=SITE, gateway="gw-b", name="reload")
    with (
        _tls_client(broker, pki, "gw-a", ["prognos/v1/#"]) as gateway,
        _tls_client(broker, pki, "prognos-cmd", [pc.topic_filter("cmd-result")]) as sender,
    ):
        for topic in (cmd_b, cmd_a):
            sender.client.publish(topic, b"{}", qos=1).wait_for_publish(5)
        got = gateway.collect(lambda got: len(got) >= 1, 5) + gateway.quiet(0.3)
        refused: list[int] = []
        gateway.client.on_publish = lambda _c, _u, _mid, rc, _p: refused.append(rc.value)
        gateway.client.publish(cmd_b, b"{}", qos=1).wait_for_publish(5)
        wait_for(lambda: refused, 5, "the PUBACK")
    assert [m.topic for m in got] == [cmd_a]
    assert refused == [0x87]


def test_only_the_ingester_publishes_dead_letters(broker: Broker, pki: Pki) -> None:
    """`prognos/v1/_ingest/deadletter`: the ingester's publish is accepted, a gateway's refused."""
    topic = "prognos/v1/_ingest/deadletter"
    with (
        _tls_client(broker, pki, "ingest", ["prognos/v1/#"]) as ingest,
        _tls_client(broker, pki, "gw-a", [f"prognos/v1/{SITE}/gw-a/cmd/#"]) as gateway,
    ):
        answers: dict[str, list[int]] = {"ingest": [], "gw-a": []}
        for name, client in (("ingest", ingest), ("gw-a", gateway)):
            client.client.on_publish = lambda _c, _u, _mid, rc, _p, n=name: answers[n].append(
                rc.value
            )
            client.client.publish(topic, f'{{"from": "{name}"}}'.encode(), qos=1)
        wait_for(lambda: answers["ingest"] and answers["gw-a"], 5, "both PUBACKs")
        got = ingest.collect(lambda got: any(m.topic == topic for m in got), 5)
        got += ingest.quiet(0.3)
    assert answers == {"ingest": [0], "gw-a": [0x87]}
    assert [m.payload for m in got if m.topic == topic] == [b'{"from": "ingest"}']


def test_a_client_without_a_certificate_is_refused_at_connect(broker: Broker, pki: Pki) -> None:
    """No client certificate: the TLS handshake fails, nothing is published, it is counted."""
    outbox = FakeOutbox()
    outbox.add(pc.build_topic("telemetry", site=SITE, gateway="gw-a"), b"{}", seq=0)
    log_before = len(broker.log())
    with _publisher(_config(broker, _tls(pki, None), "gw-a"), outbox, gateway="gw-a") as publisher:
        assert not publisher.wait_connected(1.0)
        wait_for(lambda: publisher.stats().connect_failures >= 2, 5, "retries with back-off")
        stats = publisher.stats()
    assert not stats.connected
    assert stats.connects == 0
    # The gateway sees the broker's TLS alert "certificate required", or only the EOF after it.
    assert stats.last_error is not None
    assert "ssl" in stats.last_error.lower()
    assert "peer did not return a certificate" in broker.log()[log_before:]
    assert len(outbox) == 1
    assert outbox.accepted == outbox.rejected == []


def test_a_certificate_from_another_ca_is_refused(
    broker: Broker, pki: Pki, rogue: tuple[Path, Identity]
) -> None:
    """A certificate with CN gw-a, but not signed by the Prognos CA, does not get in."""
    _, identity = rogue
    tls = TlsConfig(ca_file=pki.ca_cert, cert_file=identity.cert, key_file=identity.key)
    with _publisher(_config(broker, tls, "gw-a"), FakeOutbox(), gateway="gw-a") as publisher:
        wait_for(lambda: publisher.stats().connect_failures >= 1, 5, "a refused attempt")
        assert not publisher.stats().connected
        assert publisher.stats().connects == 0


def test_the_gateway_refuses_a_broker_its_ca_did_not_sign(
    broker: Broker, pki: Pki, rogue: tuple[Path, Identity]
) -> None:
    """Trusting only another CA, the gateway rejects the broker's certificate itself."""
    rogue_ca, _ = rogue
    tls = TlsConfig(
        ca_file=rogue_ca, cert_file=pki.clients["gw-a"].cert, key_file=pki.clients["gw-a"].key
    )
    with _publisher(_config(broker, tls, "gw-a"), FakeOutbox(), gateway="gw-a") as publisher:
        wait_for(lambda: publisher.stats().connect_failures >= 1, 5, "a refused attempt")
        stats = publisher.stats()
    assert stats.connects == 0
    assert stats.last_error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in stats.last_error


def test_an_unreadable_certificate_stops_startup_naming_the_file(pki: Pki, tmp_path: Path) -> None:
    """A missing key file is a config error at start(), not a retry loop."""
    tls = TlsConfig(
        ca_file=pki.ca_cert, cert_file=pki.clients["gw-a"].cert, key_file=tmp_path / "nope.key"
    )
    config = MqttConfig(host="localhost", tls=tls)
    publisher = MqttPublisher(
        config=config, outbox=FakeOutbox(), site=SITE, gateway="gw-a", agent_version="0.1.0"
    )
    with pytest.raises(ConfigError, match=r"nope\.key") as info:
        publisher.start()
    assert info.value.key == "mqtt.tls.cert_file"
    assert not publisher.stats().running


def test_the_tls_listener_announces_the_shipped_limits_in_connack(broker: Broker, pki: Pki) -> None:
    """The CONNACK states the shipped packet limit and no Receive Maximum below 65535."""
    connack: list[tuple[ReasonCode, Properties | None]] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="ingest-probe", protocol=mqtt.MQTTv5
    )
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.clients["ingest"].cert), str(pki.clients["ingest"].key))
    client.tls_set_context(context)
    client.on_connect = lambda _c, _u, _f, rc, props: connack.append((rc, props))
    try:
        client.connect("localhost", broker.port)
        deadline = time.monotonic() + 5
        while not connack and time.monotonic() < deadline:
            client.loop(0.05)
        client.disconnect()
    finally:
        client._reset_sockets()
    reason, props = connack[0]
    assert not reason.is_failure
    assert getattr(props, "MaximumPacketSize", None) == 1_114_112
    assert getattr(props, "ReceiveMaximum", 65535) == 65535
