"""The whole edge agent through broker outages, SIGKILL and a full outbox, on a real Mosquitto.

Each test runs the agent (`EdgeRuntime` in-process, or `prognos-edge run` as a child process)
polling fake Modbus devices (real pymodbus servers) and publishing to a Mosquitto of its own,
started from the shipped config (persistence on). A persistent MQTT 5 subscriber (clean start
off, a session expiry, QoS 1) receives what arrives; the outbox file, read at the end, says what
was committed. The checks are on behaviour only (what arrived against what was committed), never
on timing: the machine is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from _mqtt_harness import Broker, Subscriber
from support import FakeModbusDevice, run_async

import prognos_contract as pc
from edge_agent import _runtime
from edge_agent._config import load_config
from edge_agent._delivery import DeliverySink
from edge_agent._model import Reading as SignalReading
from edge_agent._outbox import OutboxStats, SqliteOutbox
from edge_agent._runtime import EdgeRuntime

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "firmware_profiles"
CASES = ROOT / "tests" / "firmware_profiles"
PUMP = "aquaflo_cpv150_2.x"
SITE, GATEWAY = "s1", "gw1"

Key = tuple[str, int]
"""(asset, ts) of one contract reading."""


def _write_config(
    tmp: Path,
    *,
    ports: Sequence[int],
    mqtt_port: int,
    prefix: str,
    interval_s: float,
    outbox: str = "{}",
    batch: str = "{max_readings: 10, linger_s: 0.2}",
) -> Path:
    devices = "".join(
        textwrap.dedent(
            f"""\
              - name: pump{i}
                asset: pump-{i}
                profile: {PUMP}
                interval_s: {interval_s}
                transport: {{type: tcp, host: 127.0.0.1, port: {port}, unit: 1, timeout_s: 0.5}}
                preprocess: {{deadband: "off"}}
            """
        )
        for i, port in enumerate(ports)
    )
    path = tmp / "edge.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            site: {SITE}
            gateway: {GATEWAY}
            profiles_dir: {PROFILES}
            state_dir: {tmp / "state"}
            topic_prefix: {prefix}
            mqtt: {{host: 127.0.0.1, port: {mqtt_port}, client_id: gw-{uuid.uuid4().hex[:8]},
                    replay_rate_msgs_s: null, replay_rate_bytes_s: null,
                    reconnect_backoff_min_s: 0.1, reconnect_backoff_max_s: 0.3}}
            outbox: {outbox}
            batch: {batch}
            health: {{interval_s: 1.0, metrics_listen: "off"}}
            devices:
            """
        )
        + devices
    )
    return path


def _fake() -> FakeModbusDevice:
    return FakeModbusDevice.from_registers_json(CASES / PUMP / "registers.json")


def _persistent_subscriber(broker: Broker, prefix: str) -> Subscriber:
    base = f"{prefix}/{SITE}/{GATEWAY}"
    return Subscriber(
        host=broker.host,
        port=broker.port,
        topics=[f"{base}/telemetry", f"{base}/events"],
        client_id=f"sub-{uuid.uuid4().hex[:8]}",
        persistent=True,
    )


def _drain(sub: Subscriber, into: list[mqtt.MQTTMessage]) -> set[int]:
    """Move everything received so far from the subscriber's inbox to `into`; seqs so far."""
    with contextlib.suppress(queue.Empty):
        while True:
            into.append(sub.inbox.get_nowait())
    return {b.seq for b, _ in _decoded(into)}


def _decoded(messages: Sequence[mqtt.MQTTMessage]) -> list[tuple[pc.TelemetryBatch, bytes]]:
    out = []
    for m in messages:
        if m.topic.endswith("/telemetry"):
            ct = getattr(m.properties, "ContentType", None)
            decoded = pc.decode_telemetry(bytes(m.payload), content_type=ct)
            assert not decoded.rejected, decoded
            out.append((decoded.batch, bytes(m.payload)))
    return out


def _events(messages: Sequence[mqtt.MQTTMessage]) -> list[pc.Event]:
    return [pc.decode_event(bytes(m.payload)) for m in messages if m.topic.endswith("/events")]


def _in_order_without_gap(seqs: Sequence[int], *, first: int, last: int) -> None:
    """Every seq first..last arrived; never one ahead of the highest + 1 (resends may repeat)."""
    assert seqs, "nothing arrived"
    high = first - 1
    for s in seqs:
        assert first <= s <= last, f"seq {s} outside {first}..{last}"
        assert s <= high + 1, f"gap: seq {s} after {high}"
        high = max(high, s)
    assert set(seqs) == set(range(first, last + 1))


def _identical_repeats(batches: Sequence[tuple[pc.TelemetryBatch, bytes]]) -> int:
    """Assert a repeated seq carries the byte-identical payload; return how many repeats."""
    payloads: dict[int, bytes] = {}
    for batch, payload in batches:
        assert payloads.setdefault(batch.seq, payload) == payload, f"seq {batch.seq} differs"
    return len(batches) - len(payloads)


def _final_outbox(path: Path) -> tuple[OutboxStats, list[Key]]:
    """The outbox's totals, and the readings still held in it (for the next run)."""
    box = SqliteOutbox(path=path, gateway=GATEWAY, max_bytes=1 << 30, max_messages=1 << 30)
    try:
        stats = box.stats(0)
        held = box.begin(max(stats.depth_messages, 1)).batch
        keys = [
            (r.asset, r.ts)
            for m in held
            for r in pc.decode_telemetry(m.payload, content_type=m.content_type).batch.readings
        ]
    finally:
        box.close()
    return stats, keys


def _wait_until(predicate: object, timeout_s: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


async def _await_until(predicate: object, timeout_s: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


def _recording_sink(polled: set[Key]) -> type[DeliverySink]:
    """The runtime's `DeliverySink`, also noting in `polled` (asset, ts) of every reading."""

    class Recording(DeliverySink):
        def __call__(self, readings: Sequence[SignalReading]) -> None:
            polled.update((r.asset, r.ts_ms) for r in readings)
            super().__call__(readings)

    return Recording


def test_broker_restart_under_load_loses_nothing_and_keeps_seq_order(  # noqa: PLR0915 - one scenario
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Broker SIGTERMed mid-stream and restarted: every polled reading and every seq arrives."""
    prefix = f"prognos-test/crash-b-{uuid.uuid4().hex[:6]}/v1"
    broker = Broker(tmp_path / "broker")
    broker.start()
    sub = _persistent_subscriber(broker, prefix)
    polled: set[Key] = set()
    monkeypatch.setattr(_runtime, "DeliverySink", _recording_sink(polled))
    received: list[mqtt.MQTTMessage] = []
    figures: dict[str, int] = {}
    before_stop: set[Key] = set()

    async def scenario() -> None:
        devices = [_fake() for _ in range(4)]
        ports = [await d.start_tcp() for d in devices]
        cfg = _write_config(
            tmp_path, ports=ports, mqtt_port=broker.port, prefix=prefix, interval_s=0.15
        )
        runtime = EdgeRuntime(config=load_config(cfg), config_path=cfg)
        task = asyncio.create_task(runtime.run())
        try:
            await _await_until(
                lambda: runtime.metrics().get("outbox_published_messages_total", 0) >= 10,
                10,
                "publishing to start",
            )
            await asyncio.sleep(1.0)
            await asyncio.to_thread(broker.stop)  # SIGTERM: Mosquitto saves its sessions
            before_stop.update(polled)
            await asyncio.sleep(3.0)
            figures["backlog_at_restart"] = int(runtime.metrics()["outbox_depth_messages"])
            await asyncio.to_thread(broker.start)
            await _await_until(
                lambda: (
                    runtime.metrics()["outbox_published_messages_total"]
                    >= runtime.metrics()["outbox_enqueued_messages_total"] - 5
                ),
                15,
                "the replay",
            )
            await asyncio.sleep(1.0)
        finally:
            runtime.request_stop()
            await task
            for d in devices:
                await d.stop()

    try:
        run_async(scenario(), timeout_s=40)
        stats, held = _final_outbox(tmp_path / "state" / "outbox.db")
        first = stats.next_seq - stats.enqueued_messages
        last = stats.next_seq - 1 - stats.depth_messages
        _wait_until(
            lambda: last in _drain(sub, received),
            15,
            f"seq {last}",
        )
        received.extend(sub.quiet(0.5))
    finally:
        sub.close()
        broker.stop()
    batches = _decoded(received)
    seqs = [b.seq for b, _ in batches]
    _in_order_without_gap(seqs, first=first, last=last)
    duplicates = _identical_repeats(batches)
    arrived = [(r.asset, r.ts) for b, _ in batches for r in b.readings]
    unique = set(arrived)
    assert stats.dropped_messages == 0
    assert stats.rejected_messages == 0
    assert unique.isdisjoint(held)
    assert unique | set(held) == polled, "a polled reading neither arrived nor is held"
    assert len(unique) + len(held) == stats.enqueued_readings
    assert before_stop <= unique, "a reading polled before the broker stopped did not arrive"
    assert figures["backlog_at_restart"] > 0, "the outage left no backlog: nothing was tested"
    print(  # noqa: T201 - the figures, for the report (-s)
        f"\nbroker restart: batches committed {stats.enqueued_messages}, arrived {len(seqs)} "
        f"({duplicates} duplicates), held {stats.depth_messages}; readings polled "
        f"{len(polled)} (before the stop {len(before_stop)}), arrived "
        f"{len(unique)}; backlog at restart {figures['backlog_at_restart']}"
    )


@contextlib.contextmanager
def _devices_in_threads(count: int) -> Iterator[list[int]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(_fake().tcp_in_thread()) for _ in range(count)]


def _start_agent(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
        )


def test_sigkill_mid_publish_loses_no_committed_batch(tmp_path: Path) -> None:
    """`prognos-edge run` SIGKILLed 4 times mid-publish: every seq arrives, repeats identical."""
    prefix = f"prognos-test/crash-c-{uuid.uuid4().hex[:6]}/v1"
    broker = Broker(tmp_path / "broker")
    broker.start()
    sub = _persistent_subscriber(broker, prefix)
    received: list[mqtt.MQTTMessage] = []
    log = tmp_path / "agent.log"
    rng = random.Random()
    kills = 0

    def seqs_now() -> set[int]:
        return _drain(sub, received)

    try:
        with _devices_in_threads(3) as ports:
            cfg = _write_config(
                tmp_path,
                ports=ports,
                mqtt_port=broker.port,
                prefix=prefix,
                interval_s=0.1,
                batch="{max_readings: 3, linger_s: 0.1}",
            )
            for _round in range(4):
                before = max(seqs_now(), default=0)
                proc = _start_agent(cfg, log)
                try:
                    _wait_until(
                        lambda b=before: max(seqs_now(), default=0) > b + 3,
                        15,
                        "the restarted agent to publish",
                    )
                    time.sleep(rng.uniform(0.1, 0.8))
                finally:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                assert proc.returncode == -signal.SIGKILL, log.read_text()[-2000:]
                kills += 1
            proc = _start_agent(cfg, log)
            try:
                before = max(seqs_now())
                _wait_until(lambda: max(seqs_now()) > before + 3, 15, "the last run to publish")
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(15)
            assert proc.returncode == 0, log.read_text()[-2000:]
        stats, _held = _final_outbox(tmp_path / "state" / "outbox.db")
        first = stats.next_seq - stats.enqueued_messages
        last = stats.next_seq - 1 - stats.depth_messages
        _wait_until(lambda: last in seqs_now(), 15, f"seq {last}")
        received.extend(sub.quiet(0.5))
    finally:
        sub.close()
        broker.stop()
    batches = _decoded(received)
    seqs = [b.seq for b, _ in batches]
    _in_order_without_gap(seqs, first=first, last=last)
    duplicates = _identical_repeats(batches)
    assert stats.dropped_messages == 0
    assert kills >= 3
    print(  # noqa: T201 - the figures, for the report (-s)
        f"\nSIGKILL x{kills}: batches committed {stats.enqueued_messages} "
        f"({stats.enqueued_readings} readings), arrived {len(seqs)}, distinct {len(set(seqs))}, "
        f"duplicates {duplicates}, held {stats.depth_messages}"
    )


def test_full_outbox_with_the_broker_down_drops_oldest_and_counts_exactly(  # noqa: PLR0915 - one scenario
    tmp_path: Path,
) -> None:
    """Outbox capped at 8 batches, broker down: arrived + dropped == committed, newest arrive."""
    prefix = f"prognos-test/crash-d-{uuid.uuid4().hex[:6]}/v1"
    broker = Broker(tmp_path / "broker")
    broker.start()
    sub = _persistent_subscriber(broker, prefix)
    broker.stop()
    received: list[mqtt.MQTTMessage] = []
    cap = 8

    async def scenario() -> None:
        devices = [_fake() for _ in range(2)]
        ports = [await d.start_tcp() for d in devices]
        cfg = _write_config(
            tmp_path,
            ports=ports,
            mqtt_port=broker.port,
            prefix=prefix,
            interval_s=0.1,
            outbox=f"{{max_messages: {cap}}}",
            batch="{max_readings: 4, linger_s: 0.1}",
        )
        runtime = EdgeRuntime(config=load_config(cfg), config_path=cfg)
        task = asyncio.create_task(runtime.run())
        try:
            await _await_until(
                lambda: runtime.metrics().get("outbox_dropped_messages_total", 0) >= 3 * cap,
                15,
                "the outbox to overflow",
            )
            assert runtime.metrics()["outbox_depth_messages"] == cap
            assert runtime.metrics()["outbox_published_messages_total"] == 0
            await asyncio.to_thread(broker.start)
            await _await_until(
                lambda: runtime.metrics()["outbox_published_messages_total"] >= cap,
                10,
                "the backlog to be sent",
            )
            await asyncio.sleep(0.5)
        finally:
            runtime.request_stop()
            await task
            for d in devices:
                await d.stop()

    try:
        run_async(scenario(), timeout_s=35)
        stats, _held = _final_outbox(tmp_path / "state" / "outbox.db")
        first = stats.next_seq - stats.enqueued_messages
        last = stats.next_seq - 1 - stats.depth_messages

        def complete() -> bool:
            arrived = _drain(sub, received)
            dropped = sum(
                int(e.detail["dropped_messages"])
                for e in _events(received)
                if e.kind == "outbox_dropped"
            )
            return dropped == stats.dropped_messages and last in arrived

        _wait_until(complete, 15, f"seq {last} and every outbox_dropped event")
        received.extend(sub.quiet(0.5))
    finally:
        sub.close()
        broker.stop()
    seqs = [b.seq for b, _ in _decoded(received)]
    distinct = set(seqs)
    dropped_events = [e for e in _events(received) if e.kind == "outbox_dropped"]
    reported = sum(int(e.detail["dropped_messages"]) for e in dropped_events)
    assert stats.rejected_messages == 0
    assert len(distinct) + stats.dropped_messages + stats.depth_messages == stats.enqueued_messages
    assert reported == stats.dropped_messages
    # Drop-oldest: the seqs that did not arrive are exactly as many as were dropped, and each
    # drop took batches older than the one whose commit caused it. (At the reconnect, batches
    # already handed to the publisher are never dropped, so a drop may skip over them: the
    # missing seqs are the oldest droppable ones, not always a prefix.)
    missing = set(range(first, last + 1)) - distinct
    assert len(missing) == stats.dropped_messages
    assert distinct <= set(range(first, last + 1))
    _in_order_without_gap([s for s in seqs if s > max(missing)], first=max(missing) + 1, last=last)
    total = 0
    for event in sorted(dropped_events, key=lambda e: int(e.detail["seq"])):
        total += int(event.detail["dropped_messages"])
        assert total <= sum(1 for m in missing if m < int(event.detail["seq"])), event
    prefix_dropped = missing == set(range(first, first + stats.dropped_messages))
    print(  # noqa: T201 - the figures, for the report (-s)
        f"\noutbox full (cap {cap}): batches committed {stats.enqueued_messages}, dropped "
        f"{stats.dropped_messages} ({stats.dropped_readings} readings; reported by "
        f"{len(dropped_events)} events: {reported}), arrived {len(distinct)} distinct "
        f"({len(seqs) - len(distinct)} duplicates), held {stats.depth_messages}; "
        f"dropped seqs a prefix: {prefix_dropped}"
    )
