"""The ingester's state file, dead-letter encoding, config loading, metrics text and writer."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cloud.ingest import (
    DeadLetter,
    IngestConfigError,
    Metrics,
    Reject,
    StateStore,
    encode_deadletter,
    load_config,
)
from cloud.ingest._writer import Abandoned, BatchWriter, describe_refusal
from cloud.store import InfluxClient


def _letter(payload: bytes, size: int | None = None) -> DeadLetter:
    return DeadLetter(
        ts_ms=1,
        topic="t",
        gateway="gw-1",
        seq=3,
        whole=False,
        rejects=(Reject("too_long", "/readings/0/values/x", "too long", 0),),
        payload=payload,
        payload_bytes=len(payload) if size is None else size,
    )


def test_deadletter_json_keeps_text_or_base64() -> None:
    """UTF-8 payloads are kept as text, others as base64; a cut payload says so."""
    doc = json.loads(encode_deadletter(_letter(b'{"a":1}')))
    assert doc["payload"] == '{"a":1}'
    assert doc["rejects"] == [
        {"index": 0, "reason": "too_long", "path": "/readings/0/values/x", "message": "too long"}
    ]
    assert doc["truncated"] is False
    doc = json.loads(encode_deadletter(_letter(b"\xff\x00", size=10)))
    assert base64.b64decode(doc["payload_base64"]) == b"\xff\x00"
    assert doc["truncated"] is True


def test_state_store_round_trip(tmp_path: Path) -> None:
    """Dead letters and stored seqs survive reopening; forgotten seqs are deleted."""
    store = StateStore(tmp_path / "ingest.db")
    store.commit_flush(letters=[_letter(b"x")], seen=[("g", 1), ("g", 2)], forget=[])
    store.commit_flush(letters=[], seen=[("g", 3)], forget=[("g", 1)])
    store.set_gap_position("g", 4)
    store.close()
    store = StateStore(tmp_path / "ingest.db")
    try:
        assert store.recent_seen(10) == [("g", 2), ("g", 3)]
        assert store.recent_seen(1) == [("g", 3)]
        assert store.deadletter_counts() == {"too_long": 1}
        assert store.deadletters(limit=5, reason="too_long")[0].payload == b"x"
        assert store.deadletters(limit=5, reason="other") == []
        assert store.gap_positions() == {"g": 4}
    finally:
        store.close()


def test_config_errors_name_file_key_and_value(tmp_path: Path) -> None:
    """A bad value names the file, the key and the value; unknown keys are refused."""
    path = tmp_path / "ingest.yaml"
    path.write_text("batch:\n  max_points: 0\nmqtt:\n  recieve_maximum: 10\n")
    with pytest.raises(IngestConfigError) as info:
        load_config(path, env={})
    text = str(info.value)
    assert f"{path}: batch.max_points" in text
    assert "Got 0 instead." in text
    assert f"{path}: mqtt.recieve_maximum" in text


def test_the_example_config_loads() -> None:
    """config/ingest.example.yaml is valid (and so documents real keys)."""
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "config" / "ingest.example.yaml", env={})
    assert config.mqtt.receive_maximum == 5000
    assert config.batch.max_points == 5000


def test_environment_and_flags_override_the_file(tmp_path: Path) -> None:
    """Precedence: file < PROGNOS_* environment < flags."""
    path = tmp_path / "ingest.yaml"
    path.write_text("mqtt:\n  host: from-file\n  port: 1\ninflux:\n  database: filedb\n")
    config = load_config(
        path,
        env={"PROGNOS_MQTT_HOST": "from-env", "PROGNOS_INFLUX_PASSWORD": "pw"},
        overrides={"influx": {"database": "flagdb"}},
    )
    assert config.mqtt.host == "from-env"
    assert config.mqtt.port == 1
    assert config.influx.database == "flagdb"
    assert config.influx.password is not None
    assert config.influx.password.get_secret_value() == "pw"
    assert config.deadletter_topic == "prognos/v1/_ingest/deadletter"


def test_metrics_render_prometheus_text() -> None:
    """Counters, gauges and histograms render in the text format with escaped labels."""
    m = Metrics()
    m.histogram("lag_seconds", (0.1, 1.0))
    m.inc("rejects_total", labels={"reason": 'a"b'})
    m.set("influx_up", 1)
    m.observe_many("lag_seconds", [0.05, 0.5, 5.0])
    text = m.render()
    assert 'prognos_ingest_rejects_total{reason="a\\"b"} 1.0' in text
    assert "# TYPE prognos_ingest_lag_seconds histogram" in text
    assert 'prognos_ingest_lag_seconds_bucket{le="1.0"} 2' in text
    assert 'prognos_ingest_lag_seconds_bucket{le="+Inf"} 3' in text
    assert m.quantile("lag_seconds", 0.5) == 1.0


def test_refusal_names_the_conflicting_field() -> None:
    """InfluxDB's type-conflict text becomes a field_type_conflict reject naming both types."""
    reason, message = describe_refusal(
        'field type conflict: input field "t" on measurement "telemetry" is type string, '
        "already exists as type float"
    )
    assert reason == "field_type_conflict"
    assert message == "signal 't' is stored as float, this reading sends string"


def _writer(
    handler: Callable[[httpx.Request], httpx.Response], give_up: threading.Event | None = None
) -> tuple[BatchWriter, Metrics]:
    metrics = Metrics()
    metrics.histogram("write_duration_seconds", (1.0,))
    influx = InfluxClient(url="http://influx:8086", transport=httpx.MockTransport(handler))
    return (
        BatchWriter(
            influx=influx,
            database="prognos",
            metrics=metrics,
            backoff_min_s=0.001,
            backoff_max_s=0.002,
            give_up=give_up or threading.Event(),
        ),
        metrics,
    )


def _points(n: int) -> list[str]:
    return [f"telemetry,asset=a v={float(i)!r} {i}" for i in range(n)]


def test_partial_write_is_bisected_to_the_refused_points() -> None:
    """Only the lines InfluxDB refuses come back as dropped; the rest is written."""
    bad = {b"v=3.0 3", b"v=6.0 6"}

    def handler(request: httpx.Request) -> httpx.Response:
        lines = request.content.decode().splitlines()
        hits = [line for line in lines if any(line.endswith(b.decode()) for b in bad)]
        if hits:
            return httpx.Response(
                400, json={"error": f"partial write: points beyond retention dropped={len(hits)}"}
            )
        return httpx.Response(204)

    writer, _ = _writer(handler)
    dropped = writer.write(_points(8))
    assert sorted(dropped) == [3, 6]
    assert dropped[3][0] == "write_rejected"


def test_outage_is_retried_until_accepted_and_reported_once() -> None:
    """Connection failures are retried; influx_up goes 0 then back to 1."""
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(204)

    writer, metrics = _writer(handler)
    assert writer.write(_points(2)) == {}
    assert calls["n"] == 4
    assert metrics.value("write_retries_total") == 3
    assert metrics.value("influx_up") == 1


def test_give_up_abandons_the_write() -> None:
    """At shutdown a write that cannot pass raises Abandoned (nothing is acknowledged)."""
    give_up = threading.Event()
    give_up.set()

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="down")

    writer, metrics = _writer(handler, give_up)
    with pytest.raises(Abandoned):
        writer.write(_points(1))
    assert metrics.value("influx_up") == 0
