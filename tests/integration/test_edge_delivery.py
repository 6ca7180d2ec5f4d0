"""The assembled agent with MQTT delivery against the real Mosquitto and fake Modbus devices.

Each test runs `EdgeRuntime` (or `prognos-edge run`) on an aquaflo pump served by a real pymodbus
server, and checks what a plain MQTT subscriber receives: contract-valid batches, `seq` without
gaps, events, health and command answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
from _mqtt_harness import Broker, Subscriber, subscriber
from conftest import Services
from support import FakeModbusDevice, run_async

import prognos_contract as pc
from edge_agent._config import load_config
from edge_agent._outbox import SqliteOutbox
from edge_agent._runtime import EdgeRuntime

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "firmware_profiles"
CASES = ROOT / "tests" / "firmware_profiles"
PUMP = "aquaflo_cpv150_2.x"
SITE, GATEWAY = "s1", "gw1"


def _write_config(
    tmp: Path,
    *,
    device_port: int,
    mqtt_port: int,
    prefix: str,
    interval_s: float = 0.2,
    writes: str = "disabled",
    outbox: str = "{}",
    batch: str = "{max_readings: 5, linger_s: 0.2}",
) -> Path:
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
            health: {{interval_s: 0.3, metrics_listen: "127.0.0.1:0"}}
            devices:
              - name: pump
                asset: pump-asset
                profile: {PUMP}
                interval_s: {interval_s}
                writes: {writes}
                transport: {{type: tcp, host: 127.0.0.1, port: {device_port}, unit: 1,
                             timeout_s: 0.3}}
                preprocess: {{deadband: "off"}}
            """
        )
    )
    return path


def _fake() -> FakeModbusDevice:
    return FakeModbusDevice.from_registers_json(CASES / PUMP / "registers.json")


def _base(prefix: str) -> str:
    return f"{prefix}/{SITE}/{GATEWAY}"


def _seqs(messages: Sequence[mqtt.MQTTMessage]) -> list[int]:
    return [
        pc.decode_telemetry(
            bytes(m.payload), content_type=getattr(m.properties, "ContentType", None)
        ).batch.seq
        for m in messages
        if m.topic.endswith("/telemetry")
    ]


def _contiguous(seqs: Sequence[int], *, first: int, last: int) -> None:
    """Every seq first..last arrived, in order (duplicates allowed, recognisable by seq)."""
    high = first - 1
    for s in seqs:
        assert s <= high + 1, f"gap: seq {s} after {high}"
        high = max(high, s)
    assert set(range(first, last + 1)) <= set(seqs)


async def _wait(predicate: object, timeout_s: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _command(sub: Subscriber, topic: str, args: dict[str, object], cid: str) -> None:
    sub.client.publish(topic, json.dumps({"id": cid, "args": args}), qos=1)


def test_readings_reach_the_broker_as_contract_batches_with_health(
    services: Services, topic_prefix: str, tmp_path: Path
) -> None:
    """Polled readings arrive as valid v1 batches with contiguous seq; health and /metrics too."""
    base = _base(topic_prefix)

    async def scenario() -> None:
        device = _fake()
        port = await device.start_tcp()
        cfg = _write_config(
            tmp_path, device_port=port, mqtt_port=services.mqtt_port, prefix=topic_prefix
        )
        with subscriber(
            host=services.mqtt_host, port=services.mqtt_port, topics=[f"{base}/#"]
        ) as sub:
            runtime = EdgeRuntime(config=load_config(cfg), config_path=cfg)
            task = asyncio.create_task(runtime.run())
            try:
                got = await asyncio.to_thread(
                    sub.collect,
                    lambda ms: (
                        len(_seqs(ms)) >= 6
                        and any(m.topic.endswith("/health") for m in ms)
                        and any(m.topic.endswith("/events") for m in ms)
                    ),
                    15,
                )
                url = f"http://127.0.0.1:{runtime.metrics_port}/metrics"
                body = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(url, timeout=5).read().decode()
                )
            finally:
                runtime.request_stop()
                await task
                await device.stop()
        batches = [
            pc.decode_telemetry(bytes(m.payload)) for m in got if m.topic.endswith("/telemetry")
        ]
        assert all(not d.rejected for d in batches)
        assert {r.asset for d in batches for r in d.batch.readings} == {"pump-asset"}
        seqs = [d.batch.seq for d in batches]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        health = next(pc.decode_health(bytes(m.payload)) for m in got if "/health" in m.topic)
        for name in (
            "outbox_depth_messages",
            "outbox_depth_readings",
            "outbox_depth_bytes",
            "outbox_oldest_age_seconds",
            "outbox_dropped_messages_total",
            "mqtt_published_messages_total",
            "mqtt_rejected_messages_total",
            "poll_errors_total.pump",
            "process_resident_memory_bytes",
        ):
            assert name in health.metrics, name
        started = [pc.decode_event(bytes(m.payload)) for m in got if "/events" in m.topic]
        assert started[0].kind == "agent_started"
        assert "prognos_edge_outbox_depth_messages " in body
        assert 'prognos_edge_poll_errors_total{device="pump"} 0.0' in body

    run_async(scenario(), timeout_s=25)


def test_commands_reload_set_interval_and_write(  # noqa: PLR0915 - one scenario
    services: Services, topic_prefix: str, tmp_path: Path
) -> None:
    """Write refused, then allowed after a reload; set-interval speeds polling; seq continues."""
    base = _base(topic_prefix)

    async def scenario() -> None:  # noqa: PLR0915 - one scenario, step by step
        device = _fake()
        port = await device.start_tcp()
        cfg = _write_config(
            tmp_path,
            device_port=port,
            mqtt_port=services.mqtt_port,
            prefix=topic_prefix,
            interval_s=1.0,
        )
        with subscriber(
            host=services.mqtt_host,
            port=services.mqtt_port,
            topics=[f"{base}/cmd-result/#", f"{base}/telemetry", f"{base}/events"],
        ) as sub:
            runtime = EdgeRuntime(config=load_config(cfg), config_path=cfg)
            task = asyncio.create_task(runtime.run())
            seen: list[mqtt.MQTTMessage] = []

            async def answer(cid: str) -> dict[str, object]:
                def has(ms: list[mqtt.MQTTMessage]) -> bool:
                    return any(
                        "/cmd-result/" in m.topic and json.loads(m.payload)["id"] == cid for m in ms
                    )

                got = await asyncio.to_thread(sub.collect, has, 10)
                seen.extend(got)
                return next(
                    json.loads(m.payload)
                    for m in got
                    if "/cmd-result/" in m.topic and json.loads(m.payload)["id"] == cid
                )

            try:
                await _wait(lambda: runtime.agent is not None, 5, "the agent")
                await asyncio.sleep(0.5)  # the command subscription is in place
                write = {"device": "pump", "signal": "speed_setpoint_rpm", "value": 1450}
                _command(sub, f"{base}/cmd/write", write, "w1")
                refused = await answer("w1")
                assert refused["ok"] is False
                assert "writes: disabled" in str(refused["error"])
                ro = {"device": "pump", "signal": "run_hours_h", "value": 1}
                cfg.write_text(cfg.read_text().replace("writes: disabled", "writes: enabled"))
                _command(sub, f"{base}/cmd/reload", {}, "r1")
                assert (await answer("r1"))["ok"] is True
                _command(sub, f"{base}/cmd/write", ro, "w2")
                not_writable = await answer("w2")
                assert not_writable["ok"] is False
                assert "not writable" in str(not_writable["error"])
                _command(sub, f"{base}/cmd/write", write, "w3")
                assert (await answer("w3"))["ok"] is True
                assert device.units[1].table("holding")[100] == 1450
                before = len(device.requests_to(1))
                await asyncio.sleep(1.0)
                slow = len(device.requests_to(1)) - before
                _command(
                    sub, f"{base}/cmd/set-interval", {"device": "pump", "interval_s": 0.1}, "i1"
                )
                assert (await answer("i1"))["ok"] is True
                before = len(device.requests_to(1))
                await asyncio.sleep(1.0)
                fast = len(device.requests_to(1)) - before
                assert fast >= 3 * max(slow, 1), (slow, fast)
                bad = "devices: []\n"
                cfg.write_text(cfg.read_text() + bad)
                _command(sub, f"{base}/cmd/reload", {}, "r2")
                failed = await answer("r2")
                assert failed["ok"] is False
                assert runtime.agent is not None
            finally:
                runtime.request_stop()
                await task
                await device.stop()
            seen.extend(sub.quiet(0.5))
        seqs = _seqs(seen)
        _contiguous(seqs, first=min(seqs), last=max(seqs))
        kinds = [pc.decode_event(bytes(m.payload)).kind for m in seen if "/events" in m.topic]
        assert "config_reloaded" in kinds

    run_async(scenario(), timeout_s=30)


def test_reload_with_the_broker_down_keeps_the_outbox_and_its_pending_batches(
    tmp_path: Path,
) -> None:
    """A reload never touches the outbox: same file, pending batches kept, seq continues."""
    broker = Broker(tmp_path / "broker")
    prefix = "prognos-test/reload/v1"
    base = _base(prefix)
    broker.start()
    sub = Subscriber(
        host=broker.host,
        port=broker.port,
        topics=[f"{base}/telemetry"],
        client_id="sub-reload",
        persistent=True,
    )
    broker.stop()

    async def scenario() -> None:
        device = _fake()
        port = await device.start_tcp()
        cfg = _write_config(tmp_path, device_port=port, mqtt_port=broker.port, prefix=prefix)
        runtime = EdgeRuntime(config=load_config(cfg), config_path=cfg)
        task = asyncio.create_task(runtime.run())
        try:
            await _wait(
                lambda: runtime.metrics().get("outbox_depth_messages", 0) >= 4, 8, "a backlog"
            )
            outbox_file = tmp_path / "state" / "outbox.db"
            inode = outbox_file.stat().st_ino
            before = runtime.metrics()
            await runtime.reload()
            after = runtime.metrics()
            assert outbox_file.stat().st_ino == inode
            assert after["outbox_depth_messages"] >= before["outbox_depth_messages"]
            assert after["outbox_next_seq"] >= before["outbox_next_seq"]
            assert after["outbox_published_messages_total"] == 0
            await asyncio.to_thread(broker.start)
            await _wait(lambda: runtime.metrics()["outbox_depth_messages"] == 0, 10, "the replay")
        finally:
            runtime.request_stop()
            await task
            await device.stop()
        end = SqliteOutbox(path=outbox_file, gateway=GATEWAY, max_bytes=1 << 20, max_messages=10)
        stats = end.stats(0)
        end.close()
        first = stats.next_seq - stats.enqueued_messages
        last = stats.next_seq - 1 - stats.depth_messages  # the rest waits for the next run
        got = await asyncio.to_thread(sub.collect, lambda ms: last in _seqs(ms), 10)
        _contiguous(_seqs(got), first=first, last=last)
        assert stats.dropped_messages == 0

    try:
        run_async(scenario(), timeout_s=30)
    finally:
        sub.close()
        broker.stop()


# ---------------------------------------------------------------- writes over Modbus RTU


def test_rtu_bus_writes_between_polls_through_its_lock(tmp_path: Path) -> None:
    """`ModbusRtuBus.write` over a socat pty: coil, one and several registers, while polling."""
    from support import UnitData, socat_pty_pair  # noqa: PLC0415 - only this test needs ptys

    from edge_agent._model import ReadRequest  # noqa: PLC0415
    from edge_agent.sources import ModbusRtuBus  # noqa: PLC0415

    async def scenario(server_end: str, bus_end: str) -> None:
        device = FakeModbusDevice(
            {u: UnitData(holding={0: 1, 1: 2, 2: 3}, coil={0: False}) for u in (1, 2)}
        )
        await device.start_rtu(server_end)
        bus = ModbusRtuBus(port=bus_end, timeout_s=0.25)
        reads: list[str | None] = []

        async def poll() -> None:
            while True:
                result = await bus.read(ReadRequest("holding", 1, 0, 3))
                reads.append(result.error)

        poller = asyncio.create_task(poll())
        try:
            await _wait(lambda: len(reads) >= 3, 5, "polls")
            assert await bus.write(unit=2, kind="holding", address=1, data=[4242]) is None
            assert await bus.write(unit=2, kind="holding", address=0, data=[7, 8, 9]) is None
            assert await bus.write(unit=1, kind="coil", address=0, data=[True]) is None
            assert await bus.write(unit=9, kind="holding", address=0, data=[1]) == "timeout"
            done = len(reads)
            await _wait(lambda: len(reads) >= done + 3, 5, "polls after the writes")
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            await bus.close()
            await device.stop()
        assert device.units[2].table("holding") == {0: 7, 1: 8, 2: 9}
        assert device.units[1].table("coil")[0] is True
        assert device.units[1].table("holding") == {0: 1, 1: 2, 2: 3}
        assert set(reads) == {None}, reads  # no poll was disturbed by the writes

    with socat_pty_pair(tmp_path) as (server_end, bus_end):
        run_async(scenario(server_end, bus_end), timeout_s=20)


# ---------------------------------------------------------------- the sink at stop


def test_readings_batched_during_the_last_commit_are_committed_at_close() -> None:
    """Readings added while a commit runs, then `aclose()`: committed too, none left in memory.

    The writer used to return after its last commit when closing, without draining the batcher
    again: readings polled while that commit ran (in its worker thread) were lost at a graceful
    stop. Found by test_edge_crash.py (a polled reading neither arrived nor was held).
    """
    import threading  # noqa: PLC0415 - only this test

    from edge_agent._delivery import DeliverySink  # noqa: PLC0415
    from edge_agent._model import Reading  # noqa: PLC0415
    from edge_agent._outbox import EnqueueResult, MemoryOutbox  # noqa: PLC0415

    ts = 1_763_805_599_000
    entered, release = threading.Event(), threading.Event()

    class SlowOutbox(MemoryOutbox):
        def enqueue(
            self, readings: Sequence[pc.Reading], *, topic: str, now_ms: int
        ) -> EnqueueResult:
            entered.set()
            release.wait(5)
            return super().enqueue(readings, topic=topic, now_ms=now_ms)

    outbox = SlowOutbox(gateway=GATEWAY, max_bytes=10_000_000, max_messages=100)

    async def scenario() -> None:
        sink = DeliverySink(
            outbox=outbox,
            topic=f"prognos/v1/{SITE}/{GATEWAY}/telemetry",
            max_readings=2,
            linger_s=60,
            on_dropped=lambda _r: None,
            wall_clock_ms=lambda: ts,
            monotonic_s=lambda: 0.0,
        )
        sink.start()
        sink([Reading("pump", "t", ts, 1.0), Reading("pump", "t", ts + 1, 2.0)])  # one full batch
        await asyncio.to_thread(entered.wait, 5)  # its commit runs in the worker thread
        sink([Reading("pump", "t", ts + 2, 3.0)])  # into the open batch, meanwhile
        closing = asyncio.create_task(sink.aclose())
        await asyncio.sleep(0.05)
        release.set()
        await closing
        assert sink.failure is None
        assert sink.buffered_readings == 0

    run_async(scenario(), timeout_s=10)
    stats = outbox.stats(ts)
    assert (stats.enqueued_messages, stats.enqueued_readings) == (2, 3)
