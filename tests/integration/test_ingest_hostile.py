"""10,000 hostile payloads through a real `prognos ingest` process, real Mosquitto and influxd.

Fuzzed and truncated JSON, invalid UTF-8, wrong types everywhere, missing fields, oversized
messages, NaN literals, far-future and far-past timestamps, unicode and control characters in
names, bad gzip, bad topics, bad seqs, duplicate keys, deep nesting (`tests/support/hostile.py`),
interleaved with good batches. The process must survive, dead-letter every hostile payload exactly
once with the reason the contract gives, store every good reading exactly once, and count the
rejects by reason in its metrics.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from conftest import Services
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support.hostile import (
    GOOD_GATEWAY,
    HOSTILE_GATEWAY,
    HOSTILE_SITE,
    GoodBatch,
    HostileCase,
    generate,
    good_batches,
    good_reading,
)
from support.ingest import (
    ingester_env,
    metrics_port_from_log,
    scrape,
    spawn_ingester,
    stop_process,
    wait_until,
)

from prognos_contract import Reading, TelemetryBatch, encode_telemetry

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = 10_000
GOOD_EVERY = 50  # one good batch after every 50 hostile payloads
KEPT_BYTES = 65_536  # the ingester's default deadletter.max_payload_bytes
TYPE_CONFLICTS = 20


class _Publisher:
    """QoS 1 publisher over MQTT 5, with the content type as a message property."""

    def __init__(self, services: Services, client_id: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.connect(services.mqtt_host, services.mqtt_port)
        self.client.loop_start()
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes, content_type: str | None = None) -> None:
        props = None
        if content_type is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ContentType = content_type
        self.infos.append(self.client.publish(topic, payload, qos=1, properties=props))

    def flush(self) -> None:
        for info in self.infos:
            info.wait_for_publish(timeout=120)
            assert info.is_published()
        self.infos.clear()

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


class _DeadLetterTopic:
    """Collects what the ingester publishes on its dead-letter topic."""

    def __init__(self, services: Services, topic: str, client_id: str) -> None:
        self.documents: list[dict[str, Any]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_message = lambda _c, _u, msg: self.documents.append(json.loads(msg.payload))
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.client.connect(services.mqtt_host, services.mqtt_port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(services: Services, influx_db: str) -> Iterator[_Publisher]:
    pub = _Publisher(services, f"hostile-pub-{influx_db[-8:]}")
    try:
        yield pub
    finally:
        pub.close()


def _dead_letters(state_dir: Path) -> list[tuple[str, bytes, int | None, int, int | None, str]]:
    """(topic, kept payload, seq, whole, reading index, reason) of every reject recorded."""
    uri = f"file:{state_dir / 'ingest.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        rows = conn.execute(
            "SELECT d.topic, d.payload, d.seq, d.whole, r.idx, r.reason"
            " FROM rejects r JOIN deadletters d ON d.id = r.deadletter_id"
        ).fetchall()
    return [(str(t), bytes(p), s, int(w), i, str(r)) for t, p, s, w, i, r in rows]


def _influx_sum(services: Services, db: str, gateway: str) -> tuple[int, int]:
    """(count, sum) of `run_hours` of one gateway's stored telemetry."""
    body = services.influx_query(
        "SELECT count(run_hours), sum(run_hours) FROM telemetry "  # noqa: S608 - own names
        f"WHERE gateway = '{gateway}'",
        db=db,
    )
    for result in body.get("results", []):  # type: ignore[attr-defined]
        for series in result.get("series", []) or []:
            row = series["values"][0]
            return int(row[1]), int(row[2])
    return 0, 0


def _conflict_batches(now_ms: int) -> list[tuple[bytes, Reading]]:
    """Batches whose reading 0 sends `run_hours` as a string (stored as an integer): one good."""
    out = []
    for n in range(TYPE_CONFLICTS):
        seq = 1_000_000 + n
        bad = good_reading("pump-07", now_ms - 5_000_000 + n, n)
        good = good_reading("pump-08", now_ms - 5_000_000 + n, n)
        values = {**bad.values, "run_hours": f"{bad.values['run_hours']} h"}
        batch = TelemetryBatch(
            gateway=HOSTILE_GATEWAY,
            seq=seq,
            readings=(Reading(asset=bad.asset, ts=bad.ts, values=values), good),
        )
        out.append((encode_telemetry(batch), good))
    return out


def test_ten_thousand_hostile_payloads_are_dead_lettered_and_good_data_flows(
    services: Services,
    topic_prefix: str,
    influx_db: str,
    tmp_path: Path,
    publisher: _Publisher,
) -> None:
    now_ms = time.time_ns() // 1_000_000
    cases = generate(HOSTILE, now_ms=now_ms, seed=2026)
    goods = good_batches(HOSTILE // GOOD_EVERY, now_ms=now_ms)
    state_dir = tmp_path / "state"
    log = tmp_path / "ingest.log"
    topic = _DeadLetterTopic(
        services, f"{topic_prefix}/_ingest/deadletter", f"hostile-dl-{influx_db[-8:]}"
    )
    proc = spawn_ingester(
        ingester_env(services),
        prefix=topic_prefix,
        database=influx_db,
        state_dir=state_dir,
        client_id=f"hostile-{influx_db[-8:]}",
        log=log,
        extra=(
            "--share-group",
            f"hostile{influx_db[-8:]}",
            "--gap-scan",
            "no",
            "--registry",
            str(ROOT / "config" / "assets.example.yaml"),
        ),
    )
    try:
        port = metrics_port_from_log(log)
        # A probe until the subscription is in place (a redelivered probe is a duplicate).
        probe = encode_telemetry(
            TelemetryBatch(gateway="gw-probe", seq=1, readings=(good_reading("probe", now_ms, 0),))
        )

        def probe_received() -> bool:
            publisher.publish(f"{topic_prefix}/probe/gw-probe/telemetry", probe)
            return scrape(port).get("prognos_ingest_messages_received_total", 0) > 0

        wait_until(probe_received, timeout_s=30, what="the ingester's subscription")
        publisher.flush()
        received_before = scrape(port)["prognos_ingest_messages_received_total"]

        for number, case in enumerate(cases):
            publisher.publish(case.topic(topic_prefix), case.payload, case.content_type)
            if number % GOOD_EVERY == GOOD_EVERY - 1:
                good = goods[number // GOOD_EVERY]
                publisher.publish(good.topic(topic_prefix), good.payload)
                assert proc.poll() is None, "the ingester died"
        publisher.flush()
        conflicts = _conflict_batches(now_ms)
        for payload, _ in conflicts:
            publisher.publish(f"{topic_prefix}/{HOSTILE_SITE}/{HOSTILE_GATEWAY}/telemetry", payload)
        publisher.flush()
        sent = len(cases) + len(goods) + len(conflicts)

        wait_until(
            lambda: (
                scrape(port).get("prognos_ingest_messages_received_total", 0)
                >= received_before + sent
                and len(_dead_letters(state_dir)) >= len(cases) + len(conflicts)
            ),
            timeout_s=240,
            what=f"{sent} messages handled",
        )
        # Dead letters are committed with their flush; give the last write its moment.
        stored = sum(len(g.readings) for g in goods) + sum(len(c.good) for c in cases)
        wait_until(
            lambda: (
                _influx_sum(services, influx_db, GOOD_GATEWAY)[0]
                + _influx_sum(services, influx_db, HOSTILE_GATEWAY)[0]
                >= stored + len(conflicts)
            ),
            timeout_s=60,
            what="the good readings stored",
        )
        assert proc.poll() is None, "the ingester died"
        metrics = scrape(port)
        letters = _dead_letters(state_dir)
        # Each dead letter is also published, with the same reasons.
        wait_until(
            lambda: sum(len(d["rejects"]) for d in topic.documents) >= len(letters),
            timeout_s=60,
            what="the dead letters on their topic",
        )
    finally:
        code = stop_process(proc)
        topic.close()
    assert code == 0, log.read_text(errors="replace")[-3000:]
    on_topic = Counter(r["reason"] for d in topic.documents for r in d["rejects"])
    assert on_topic == Counter(reason for *_rest, reason in letters)
    _check_dead_letters(cases, conflicts, letters, topic_prefix)
    _check_stored(services, influx_db, cases, goods, conflicts)
    _check_metrics(cases, conflicts, metrics)


def _check_dead_letters(
    cases: list[HostileCase],
    conflicts: list[tuple[bytes, Reading]],
    letters: list[tuple[str, bytes, int | None, int, int | None, str]],
    prefix: str,
) -> None:
    """Every hostile case is dead-lettered exactly once, with its reason, whole or per reading."""
    expected_whole = Counter(
        (c.topic(prefix), c.payload[:KEPT_BYTES], c.reason)
        for c in cases
        if c.level in ("message", "topic")
    )
    expected_readings: Counter[tuple[int | None, int | None, str]] = Counter(
        (c.number + 1, c.index, c.reason) for c in cases if c.level == "reading"
    )
    expected_readings.update(
        (1_000_000 + n, 0, "field_type_conflict") for n in range(len(conflicts))
    )
    whole = Counter((t, p, r) for t, p, _s, w, _i, r in letters if w)
    readings = Counter((s, i, r) for _t, _p, s, w, i, r in letters if not w)
    missing_whole = expected_whole - whole
    extra_whole = whole - expected_whole
    assert not missing_whole, (
        f"{sum(missing_whole.values())} not dead-lettered, e.g. {_peek(missing_whole)}"
    )
    assert not extra_whole, f"{sum(extra_whole.values())} unexpected, e.g. {_peek(extra_whole)}"
    assert readings == expected_readings, (
        f"missing {_peek(expected_readings - readings)}; "
        f"unexpected {_peek(readings - expected_readings)}"
    )


def _peek(counter: Counter[Any]) -> list[tuple[str, ...]]:
    return [tuple(repr(part)[:120] for part in key) for key in list(counter)[:3]]


def _check_stored(
    services: Services,
    db: str,
    cases: list[HostileCase],
    goods: list[GoodBatch],
    conflicts: list[tuple[bytes, Reading]],
) -> None:
    """Every good reading is stored once: counts and sums of `run_hours` per gateway."""
    good_readings = [r for g in goods for r in g.readings]
    assert _influx_sum(services, db, GOOD_GATEWAY) == (
        len(good_readings),
        sum(int(r.values["run_hours"]) for r in good_readings),
    )
    kept = [r for c in cases for r in c.good] + [good for _, good in conflicts]
    assert _influx_sum(services, db, HOSTILE_GATEWAY) == (
        len(kept),
        sum(int(r.values["run_hours"]) for r in kept),
    )


def _check_metrics(
    cases: list[HostileCase], conflicts: list[tuple[bytes, Reading]], metrics: dict[str, float]
) -> None:
    """`prognos_ingest_rejects_total{reason=...}` counts each reason as the cases say."""
    expected = Counter(c.reason for c in cases)
    expected["field_type_conflict"] += len(conflicts)
    counted = {
        json.loads(name.split("reason=", 1)[1].split("}")[0]): int(value)
        for name, value in metrics.items()
        if name.startswith("prognos_ingest_rejects_total{")
    }
    assert counted == dict(expected)
