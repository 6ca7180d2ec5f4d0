"""The ingester's guarantees, with `prognos ingest` run as real processes on the real services.

A SIGKILL under load, InfluxDB gone for a minute under load, and two processes on one shared
subscription. After each, the points stored equal the points sent, exactly.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from conftest import Services
from support.ingest import (
    Publisher,
    SteadyPublisher,
    count,
    ingester_env,
    make_batch,
    metrics_port_from_log,
    private_influxd,
    scrape,
    spawn_ingester,
    stop_process,
    wait_until,
)

import prognos_contract as pc

READINGS = 50  # per batch


def _sum(samples: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in samples.items() if k.startswith(prefix))


@pytest.mark.slow
def test_sigkill_under_load_loses_nothing(
    services: Services, topic_prefix: str, influx_db: str, tmp_path: Path
) -> None:
    """SIGKILL the ingester while a publisher sends; restarted, it stores every point exactly."""
    env = ingester_env(services)
    state, log = tmp_path / "state", tmp_path / "ingest.log"
    kwargs = {"prefix": topic_prefix, "database": influx_db, "state_dir": state, "log": log}
    proc = spawn_ingester(env, client_id="ingest-kill", **kwargs)  # type: ignore[arg-type]
    metrics_port_from_log(log)
    topic = pc.build_topic("telemetry", site="plant1", gateway="gw-kill", prefix=topic_prefix)
    pub = Publisher(services.mqtt_host, services.mqtt_port, client_id=f"pub-{influx_db}")
    batches = 800
    sender = SteadyPublisher(
        pub, topic, "gw-kill", batches=batches, readings=READINGS, rate_msgs_s=100
    )
    sender.start()
    try:
        wait_until(
            lambda: count(services, influx_db, 'SELECT count("rpm") FROM telemetry') > 5000,
            timeout_s=60,
            what="some points stored before the kill",
        )
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
        at_kill = count(services, influx_db, 'SELECT count("rpm") FROM telemetry')
        assert sender.is_alive(), "the publisher must still be sending during the outage"
        time.sleep(2)  # the publisher keeps sending into the persistent session
        proc = spawn_ingester(env, client_id="ingest-kill", **kwargs)  # type: ignore[arg-type]
        sender.join(120)
        assert sender.error is None
        sent = sender.sent_batches * READINGS
        assert sent == batches * READINGS
        wait_until(
            lambda: count(services, influx_db, 'SELECT count("rpm") FROM telemetry') >= sent,
            timeout_s=120,
            what=f"{sent} points stored",
        )
        time.sleep(1)  # nothing more may arrive: the count must not go past what was sent
        assert count(services, influx_db, 'SELECT count("rpm") FROM telemetry') == sent
        assert at_kill < sent
        seqs = count(services, influx_db, 'SELECT count(distinct("seq")) FROM ingest_batches')
        assert seqs == batches
        # The restarted process resumed its session: the broker had kept its messages.
        resumed = [
            json.loads(line) for line in log.read_text().splitlines() if '"mqtt_connected"' in line
        ]
        assert [e["session_present"] for e in resumed] == [False, True]
    finally:
        pub.close()
        assert stop_process(proc) == 0


@pytest.mark.slow
def test_influxdb_down_for_a_minute_under_load(
    services: Services, topic_prefix: str, tmp_path: Path
) -> None:
    """InfluxDB stopped for a full minute while a publisher sends: nothing lost, nothing acked.

    The ingester acknowledges nothing meanwhile, holds at most Receive Maximum messages, and
    after InfluxDB is back every point sent is stored, exactly.
    """
    with private_influxd(tmp_path / "influx") as influx:
        svc = influx.services(services)
        db = "recovery"
        env = ingester_env(svc, influx_url=influx.url)
        state, log = tmp_path / "state", tmp_path / "ingest.log"
        config = tmp_path / "ingest.yaml"
        config.write_text("mqtt:\n  receive_maximum: 500\nretry:\n  backoff_max_s: 2\n")
        proc = spawn_ingester(
            env,
            client_id="ingest-outage",
            prefix=topic_prefix,
            database=db,
            state_dir=state,
            log=log,
            extra=("--config", str(config)),
        )
        try:
            port = metrics_port_from_log(log)
            topic = pc.build_topic(
                "telemetry", site="plant1", gateway="gw-out", prefix=topic_prefix
            )
            pub = Publisher(services.mqtt_host, services.mqtt_port, client_id=f"pub-{db}-{port}")
            batches = 1700  # 20/s: ~85 s of sending, of which 60 s without InfluxDB
            sender = SteadyPublisher(
                pub, topic, "gw-out", batches=batches, readings=20, rate_msgs_s=20
            )
            sender.start()
            wait_until(
                lambda: count(svc, db, 'SELECT count("rpm") FROM telemetry') > 0,
                timeout_s=60,
                what="points stored before the outage",
            )
            influx.stop()
            down_at = time.monotonic()
            wait_until(
                lambda: scrape(port)["prognos_ingest_influx_up"] == 0,
                timeout_s=30,
                what="influx_up == 0",
            )
            before = scrape(port)
            time.sleep(max(0.0, 55 - (time.monotonic() - down_at)))
            during = scrape(port)
            # Nothing was handled (acknowledged) while InfluxDB was away...
            assert _sum(during, "prognos_ingest_messages_total") == _sum(
                before, "prognos_ingest_messages_total"
            )
            assert during["prognos_ingest_flushes_total"] == before["prognos_ingest_flushes_total"]
            # ...and the broker stopped sending at Receive Maximum: the rest waits at the broker.
            assert during["prognos_ingest_inflight_unacked"] == 500
            assert sender.is_alive()
            time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
            influx.start()
            sender.join(180)
            assert sender.error is None
            sent = batches * 20
            wait_until(
                lambda: count(svc, db, 'SELECT count("rpm") FROM telemetry') >= sent,
                timeout_s=120,
                what=f"{sent} points stored",
            )
            time.sleep(1)
            assert count(svc, db, 'SELECT count("rpm") FROM telemetry') == sent
            after = scrape(port)
            assert after["prognos_ingest_influx_up"] == 1
            assert after["prognos_ingest_write_retries_total"] > 0
            pub.close()
        finally:
            assert stop_process(proc) == 0


def test_two_processes_share_the_load(
    services: Services, topic_prefix: str, influx_db: str, tmp_path: Path
) -> None:
    """Two ingesters on one shared subscription both take work; nothing is lost or doubled."""
    env = ingester_env(services)
    procs, logs = [], []
    for name in ("a", "b"):
        log = tmp_path / f"ingest-{name}.log"
        procs.append(
            spawn_ingester(
                env,
                client_id=f"ingest-share-{name}",
                prefix=topic_prefix,
                database=influx_db,
                state_dir=tmp_path / f"state-{name}",
                log=log,
                extra=("--max-points", "1000", "--gap-scan", "yes" if name == "a" else "no"),
            )
        )
        logs.append(log)
    try:
        ports = [metrics_port_from_log(log) for log in logs]
        pub = Publisher(services.mqtt_host, services.mqtt_port, client_id=f"pub-{influx_db}")
        senders = [
            SteadyPublisher(
                pub,
                pc.build_topic("telemetry", site="plant1", gateway=gw, prefix=topic_prefix),
                gw,
                batches=300,
                readings=READINGS,
            )
            for gw in ("gw-s1", "gw-s2")
        ]
        for s in senders:
            s.start()
        for s in senders:
            s.join(120)
            assert s.error is None
        pub.close()
        sent = 2 * 300 * READINGS
        wait_until(
            lambda: count(services, influx_db, 'SELECT count("rpm") FROM telemetry') >= sent,
            timeout_s=120,
            what=f"{sent} points stored",
        )
        assert count(services, influx_db, 'SELECT count("rpm") FROM telemetry') == sent
        samples = [scrape(p) for p in ports]
        written = [s["prognos_ingest_points_written_total"] for s in samples]
        assert all(w > 0 for w in written), f"each process must take work, wrote {written}"
        assert sum(written) == sent, f"nothing written twice: {written}"
        ok = [
            s.get('prognos_ingest_messages_total{kind="telemetry",outcome="ok"}', 0)
            for s in samples
        ]
        assert sum(ok) == 600
        # Each (gateway, seq) was recorded once, by one process.
        assert count(services, influx_db, 'SELECT count("seq") FROM ingest_batches') == 600
        assert (
            count(
                services,
                influx_db,
                'SELECT count(distinct("seq")) FROM ingest_batches GROUP BY "gateway"',
            )
            == 600
        )
    finally:
        for proc in procs:
            assert stop_process(proc) == 0


@pytest.mark.slow
def test_broker_restart_under_load_loses_nothing(
    services: Services, topic_prefix: str, influx_db: str, tmp_path: Path
) -> None:
    """The broker restarts (persistence on, the shipped config) while a publisher sends.

    The ingester reconnects to its resumed session; messages it had not acknowledged come again
    and are acknowledged on the new connection (never an old packet id on it): stored == sent.
    """
    from _mqtt_harness import Broker  # noqa: PLC0415 - the MQTT tests' restartable broker

    from cloud.ingest import Ingester, load_config  # noqa: PLC0415

    broker = Broker(tmp_path / "broker")
    broker.start()
    config = load_config(
        None,
        env={},
        overrides={
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "topic_prefix": topic_prefix,
                "client_id": "ingest-restart",
            },
            "influx": {
                "url": services.influx_url,
                "username": services.influx_user,
                "password": services.influx_password,
                "database": influx_db,
            },
            "state_dir": tmp_path / "state",
            "metrics_listen": None,
            "gaps": {"scan": "no"},
        },
    )
    ingester = Ingester(config)
    ingester.start()
    pub = Publisher(broker.host, broker.port, client_id=f"pub-{influx_db}")
    topic = pc.build_topic("telemetry", site="plant1", gateway="gw-rst", prefix=topic_prefix)
    infos = []
    batches = 600
    try:
        for seq in range(1, batches + 1):
            payload = make_batch("gw-rst", seq, 20)
            info = pub.client.publish(topic, payload, qos=1)
            while info.rc != mqtt.MQTT_ERR_SUCCESS:
                # Not connected: paho keeps it for later, but says nothing more of it; publish
                # again (the same seq and bytes, as an edge agent does) once reconnected.
                time.sleep(0.05)
                info = pub.client.publish(topic, payload, qos=1)
            infos.append(info)
            if seq == batches // 3:
                wait_until(
                    lambda: ingester.metrics.value("points_written_total") > 0,
                    timeout_s=60,
                    what="points stored before the restart",
                )
                broker.stop()
                broker.start()
            time.sleep(0.005)
        wait_until(lambda: all(i.is_published() for i in infos), timeout_s=120, what="every PUBACK")
        sent = batches * 20
        wait_until(
            lambda: (
                ingester.metrics.value("points_written_total") >= sent
                and count(services, influx_db, 'SELECT count("rpm") FROM telemetry') >= sent
            ),
            timeout_s=120,
            what=f"{sent} points stored",
        )
        assert count(services, influx_db, 'SELECT count("rpm") FROM telemetry') == sent
        assert ingester.metrics.value("mqtt_connected") == 1
    finally:
        pub.client.disconnect()
        pub.client.loop_stop()
        ingester.stop()
        broker.stop()
