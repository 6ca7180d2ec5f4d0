"""The ingester in process against the real Mosquitto and influxd.

What is stored, what is dead-lettered, duplicates, status, field types, metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Services
from support.ingest import BASE_TS_MS, Publisher, count, make_batch, scrape, wait_until

import prognos_contract as pc
from cloud.ingest import IngestConfig, Ingester, StateStore, load_config
from cloud.store import InfluxAuth, InfluxClient


def _config(services: Services, prefix: str, db: str, state: Path, **over: object) -> IngestConfig:
    overrides: dict[str, object] = {
        "mqtt": {
            "host": services.mqtt_host,
            "port": services.mqtt_port,
            "topic_prefix": prefix,
            "client_id": f"ingest-{state.name}",
        },
        "influx": {
            "url": services.influx_url,
            "username": services.influx_user,
            "password": services.influx_password,
            "database": db,
        },
        "state_dir": state,
        "metrics_listen": "127.0.0.1:0",
        "gaps": {"scan": "no"},
    }
    overrides.update(over)
    return load_config(None, env={}, overrides=overrides)


@pytest.fixture
def ingester(
    services: Services, topic_prefix: str, influx_db: str, tmp_path: Path
) -> Iterator[Ingester]:
    ing = Ingester(_config(services, topic_prefix, influx_db, tmp_path / "state"))
    ing.start()
    try:
        yield ing
    finally:
        ing.stop()


def _done(ing: Ingester, messages: int) -> bool:
    return ing.metrics.total("messages_total") >= messages


def test_good_bad_and_malformed_messages(
    services: Services, topic_prefix: str, influx_db: str, ingester: Ingester, tmp_path: Path
) -> None:
    """Good readings are stored, a bad reading is dead-lettered alone, a malformed message whole.

    A duplicate seq is dropped, and everything is acknowledged.
    """
    topic = pc.build_topic("telemetry", site="plant1", gateway="gw-1", prefix=topic_prefix)
    good = make_batch("gw-1", 1, 20)
    document = json.loads(make_batch("gw-1", 2, 5))
    document["readings"][3]["values"]["temp_c"] = "hot" * 100  # too long a string
    document["readings"][4]["ts"] = 10**18  # out of range
    partial = json.dumps(document).encode()
    pub = Publisher(services.mqtt_host, services.mqtt_port, client_id=f"pub-{influx_db}")
    try:
        pub.publish(topic, good)
        pub.publish(topic, partial)
        pub.publish(topic, b'{"schema": "prognos.telemetry.v1", "gateway": NaN}')
        pub.publish(topic, good)  # a redelivery from the edge: the same seq and bytes
        pub.flush()
        wait_until(lambda: _done(ingester, 4), timeout_s=30, what="4 messages handled")
    finally:
        pub.close()
    stored = count(services, influx_db, 'SELECT count("rpm") FROM telemetry')
    assert stored == 20 + 3
    m = ingester.metrics
    assert m.value("duplicates_total") == 1
    assert m.value("rejects_total", {"reason": "too_long"}) == 1
    assert m.value("rejects_total", {"reason": "ts_out_of_range"}) == 1
    assert m.value("rejects_total", {"reason": "non_finite"}) == 1
    assert m.value("messages_total", {"kind": "telemetry", "outcome": "partial"}) == 1
    assert m.value("unknown_asset_readings_total", {"asset": "pump-000"}) >= 1
    tags = services.influx_query('SHOW TAG VALUES FROM telemetry WITH KEY = "model"', db=influx_db)
    assert "unknown" in json.dumps(tags)
    state = StateStore(tmp_path / "state" / "ingest.db")
    try:
        counts = state.deadletter_counts()
        letters = state.deadletters(limit=10)
    finally:
        state.close()
    assert counts == {"non_finite": 1, "too_long": 1, "ts_out_of_range": 1}
    whole = [letter for letter in letters if letter.whole]
    assert len(whole) == 1
    assert whole[0].payload.startswith(b'{"schema"')


def test_field_type_conflict_rejects_one_reading(
    services: Services, topic_prefix: str, influx_db: str, ingester: Ingester
) -> None:
    """A signal sent with another type than it has is one rejected reading, not a failed batch.

    An integer for a float signal is written as a float.
    """
    topic = pc.build_topic("telemetry", site="plant1", gateway="gw-2", prefix=topic_prefix)
    first = pc.TelemetryBatch(
        gateway="gw-2",
        seq=1,
        readings=(pc.Reading(asset="a-1", ts=BASE_TS_MS, values={"temp_c": 1.5, "mode": "auto"}),),
    )
    second = pc.TelemetryBatch(
        gateway="gw-2",
        seq=2,
        readings=(
            pc.Reading(asset="a-1", ts=BASE_TS_MS + 1, values={"temp_c": 2}),  # int for float
            pc.Reading(asset="a-1", ts=BASE_TS_MS + 2, values={"temp_c": 2.5, "mode": True}),
            pc.Reading(asset="a-1", ts=BASE_TS_MS + 3, values={"temp_c": 3.5}),
        ),
    )
    pub = Publisher(services.mqtt_host, services.mqtt_port, client_id=f"pub-{influx_db}")
    try:
        pub.publish(topic, pc.encode_telemetry(first))
        pub.flush()
        wait_until(lambda: _done(ingester, 1), timeout_s=30, what="the first batch")
        pub.publish(topic, pc.encode_telemetry(second))
        pub.flush()
        wait_until(lambda: _done(ingester, 2), timeout_s=30, what="the second batch")
    finally:
        pub.close()
    assert count(services, influx_db, 'SELECT count("temp_c") FROM telemetry') == 3
    assert ingester.metrics.value("rejects_total", {"reason": "field_type_conflict"}) == 1


def test_conflict_found_by_the_server_is_isolated(
    services: Services, topic_prefix: str, influx_db: str, tmp_path: Path
) -> None:
    """When only InfluxDB knows the stored type, its partial write is narrowed to the readings.

    (Another writer set the type after the ingester read SHOW FIELD KEYS.)
    """
    body = f'telemetry,asset=x v="text" {BASE_TS_MS}\n'.encode()
    with InfluxClient(
        url=services.influx_url,
        database=influx_db,
        auth=InfluxAuth.basic(services.influx_user, services.influx_password),
    ) as influx:
        influx.write(body, precision="ms")
    ing = Ingester(_config(services, topic_prefix, influx_db, tmp_path / "s"))
    ing.start()
    try:
        ing._types.clear()  # the cache was seeded at start: leave it to the server
        topic = pc.build_topic("telemetry", site="plant1", gateway="gw-3", prefix=topic_prefix)
        readings = tuple(
            pc.Reading(asset="a-1", ts=BASE_TS_MS + i, values={"v": 1.5 + i}) for i in range(8)
        )
        pub = Publisher(services.mqtt_host, services.mqtt_port, client_id=f"pub-{influx_db}")
        try:
            pub.publish(
                topic,
                pc.encode_telemetry(pc.TelemetryBatch(gateway="gw-3", seq=1, readings=readings)),
            )
            pub.flush()
            wait_until(lambda: _done(ing, 1), timeout_s=30, what="the batch")
        finally:
            pub.close()
        # The stored type is string: every float reading conflicts, each one rejected alone.
        assert ing.metrics.value("rejects_total", {"reason": "field_type_conflict"}) == 8
        assert ing.metrics.value("messages_total", {"kind": "telemetry", "outcome": "partial"}) == 1
    finally:
        ing.stop()


def test_status_and_metrics_endpoint(
    services: Services, topic_prefix: str, influx_db: str, ingester: Ingester
) -> None:
    """Retained status sets the gateway online and offline; /metrics serves Prometheus text."""
    status = pc.build_topic("status", site="plant1", gateway="gw-4", prefix=topic_prefix)
    pub = Publisher(services.mqtt_host, services.mqtt_port, client_id=f"pub-{influx_db}")
    try:
        online = pc.Status(state="online", ts=BASE_TS_MS, agent_version="0.1.0")
        pub.publish(status, pc.encode_status(online), retain=True)
        pub.flush()
        wait_until(
            lambda: ingester.metrics.value("gateway_online", {"gateway": "gw-4"}) == 1,
            timeout_s=30,
            what="gw-4 online",
        )
        assert ingester.metrics.value("gateways_online") == 1
        offline = pc.Status(state="offline", ts=BASE_TS_MS + 1000, agent_version="0.1.0")
        pub.publish(status, pc.encode_status(offline), retain=True)
        pub.publish(status, b"", retain=True)  # clear the retained message (dead-lettered)
        pub.flush()
        wait_until(
            lambda: ingester.metrics.value("gateways_online") == 0, timeout_s=30, what="offline"
        )
    finally:
        pub.close()
    wait_until(
        lambda: count(services, influx_db, 'SELECT count("state") FROM gateway_status') == 2,
        timeout_s=30,
        what="two status points",
    )
    port = ingester.metrics_port
    assert port is not None
    samples = scrape(port)
    assert samples['prognos_ingest_gateway_online{gateway="gw-4"}'] == 0
    assert samples["prognos_ingest_influx_up"] == 1
    assert "prognos_ingest_batch_latency_seconds_count" in samples


def test_agent_health_is_stored_in_agent_health(
    services: Services, topic_prefix: str, influx_db: str, ingester: Ingester
) -> None:
    """An agent's health messages (QoS 0) become `agent_health` points tagged site and gateway."""
    topic = pc.build_topic("health", site="plant1", gateway="gw-5", prefix=topic_prefix)
    pub = Publisher(services.mqtt_host, services.mqtt_port, client_id=f"pub-h-{influx_db}")
    try:
        for i, cpu in enumerate((0, 2.5)):  # an integer, then a float: one field type
            health = pc.Health(ts=BASE_TS_MS + i * 1000, metrics={"outbox_depth": 3, "cpu": cpu})
            pub.publish(topic, pc.encode_health(health))
        pub.flush()
        wait_until(
            lambda: count(services, influx_db, 'SELECT count("cpu") FROM agent_health') == 2,
            timeout_s=30,
            what="two agent_health points",
        )
    finally:
        pub.close()
    body: Any = services.influx_query(
        'SELECT "cpu", "outbox_depth" FROM agent_health WHERE "gateway" = \'gw-5\' '
        "AND \"site\" = 'plant1'",
        db=influx_db,
    )
    (series,) = body["results"][0]["series"]
    assert [row[1:] for row in series["values"]] == [[0.0, 3.0], [2.5, 3.0]]
    assert ingester.metrics.total("rejects_total") == 0


def test_gap_scan_reports_gaps_and_epochs_from_the_shared_record(
    services: Services, topic_prefix: str, influx_db: str, tmp_path: Path
) -> None:
    """Missing seqs are one gap once past the grace; a new outbox's seq jump is an epoch."""
    config = _config(
        services,
        topic_prefix,
        influx_db,
        tmp_path / "state",
        gaps={"scan": "yes", "scan_interval_s": 0.2, "grace_s": 0},
    )
    ing = Ingester(config)
    ing.start()
    try:
        topic = pc.build_topic("telemetry", site="plant1", gateway="gw-gap", prefix=topic_prefix)
        pub = Publisher(services.mqtt_host, services.mqtt_port, client_id=f"pub-{influx_db}")
        new_epoch = BASE_TS_MS - 60_000  # a new outbox: seq from its creation time in ms
        try:
            for n, seq in enumerate((1, 2, 3, 7, 8, new_epoch, new_epoch + 1)):
                reading = pc.Reading(asset="p-1", ts=BASE_TS_MS + n, values={"t": 1.0})
                batch = pc.TelemetryBatch(gateway="gw-gap", seq=seq, readings=(reading,))
                pub.publish(topic, pc.encode_telemetry(batch))
            pub.flush()
        finally:
            pub.close()
        wait_until(
            lambda: ing.metrics.value("outbox_epochs_total", {"gateway": "gw-gap"}) == 1,
            timeout_s=30,
            what="the epoch found",
        )
        assert ing.metrics.value("seq_gaps_total", {"gateway": "gw-gap"}) == 1
        assert ing.metrics.value("seq_missing_total", {"gateway": "gw-gap"}) == 3
    finally:
        ing.stop()
    assert count(services, influx_db, 'SELECT count("missing") FROM ingest_gaps') == 2
