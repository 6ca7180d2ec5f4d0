"""Modbus TCP against a real pymodbus server on a free loopback port (no other services needed)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from structlog.testing import capture_logs
from support import FakeModbusDevice, ReadingLog, UnitData, WordPlan, cancel, run_async

from edge_agent._config import parse_config
from edge_agent._model import BlockResult, Quality, ReadRequest
from edge_agent.sources import (
    ModbusDevice,
    ModbusTcpTransport,
    ModbusWorker,
    build_sources,
    start_source,
)

TIMEOUT_S = 0.3


def _device() -> FakeModbusDevice:
    return FakeModbusDevice(
        {
            1: UnitData(
                holding={0: 16890, 1: 0, 2: 65535, 3: 7},
                input={10: 1234, 11: 5678},
                coil={0: True, 1: False, 2: True},
                discrete={5: False, 6: True},
            )
        }
    )


async def _read(port: int, *requests: ReadRequest) -> list[BlockResult]:
    link = ModbusTcpTransport(host="127.0.0.1", port=port, timeout_s=TIMEOUT_S)
    try:
        return [await link.read(request) for request in requests]
    finally:
        await link.close()


def test_reads_all_four_tables() -> None:
    """Holding and input registers come back as words, coils and discrete inputs as bits."""

    async def scenario() -> list[BlockResult]:
        device = _device()
        port = await device.start_tcp()
        try:
            return await _read(
                port,
                ReadRequest("holding", 1, 0, 4),
                ReadRequest("input", 1, 10, 2),
                ReadRequest("coil", 1, 0, 3),
                ReadRequest("discrete", 1, 5, 2),
            )
        finally:
            await device.stop()

    holding, inputs, coils, discrete = run_async(scenario())
    assert holding.words == [16890, 0, 65535, 7]
    assert inputs.words == [1234, 5678]
    assert coils.bits == [True, False, True]
    assert discrete.bits == [False, True]
    assert all(r.error is None and r.ts_ms > 0 for r in (holding, inputs, coils, discrete))


def test_an_exception_response_is_a_result_with_its_code() -> None:
    """An address the device lacks answers exception 2; a forced code comes through as it is."""

    async def scenario() -> tuple[BlockResult, BlockResult]:
        device = _device()
        port = await device.start_tcp()
        try:
            (missing,) = await _read(port, ReadRequest("holding", 1, 100, 2))
            device.fail_with(1, 4)
            (failing,) = await _read(port, ReadRequest("holding", 1, 0, 2))
            return missing, failing
        finally:
            await device.stop()

    missing, failing = run_async(scenario())
    assert missing.error == "exception_code_2"
    assert failing.error == "exception_code_4"
    assert missing.words is None


def test_a_device_that_does_not_answer_times_out_and_recovers() -> None:
    """A silent unit gives `timeout` after the timeout; the same link reads it once it answers."""

    async def scenario() -> tuple[BlockResult, float, BlockResult]:
        device = _device()
        port = await device.start_tcp()
        link = ModbusTcpTransport(host="127.0.0.1", port=port, timeout_s=TIMEOUT_S)
        try:
            device.stop_answering(1)
            started = asyncio.get_running_loop().time()
            dead = await link.read(ReadRequest("holding", 1, 0, 1))
            took = asyncio.get_running_loop().time() - started
            device.answer_again(1)
            alive = await link.read(ReadRequest("holding", 1, 0, 1))
            return dead, took, alive
        finally:
            await link.close()
            await device.stop()

    dead, took, alive = run_async(scenario())
    assert dead.error == "timeout"
    assert TIMEOUT_S * 0.9 <= took < TIMEOUT_S + 1.0
    assert alive.words == [16890]


@pytest.mark.parametrize(
    ("mode", "reason", "bits_reason"),
    [
        ("garbage", "bad_frame", "bad_frame"),
        ("wrong_unit", "bad_frame", "bad_frame"),
        ("truncate", "short_response", "short_response"),
        ("short", "short_response", "short_response"),
        # pymodbus decodes coils by the frame's length, not its byte count: the bits are there.
        ("bad_count", "short_response", None),
    ],
)
def test_spoiled_answers_are_bad_results_with_the_reason(
    mode: str, reason: str, bits_reason: str | None
) -> None:
    """Garbage, a frame cut short, too few values or another unit's frame: a reason, no crash."""

    async def scenario() -> tuple[BlockResult, BlockResult, BlockResult]:
        device = _device()
        port = await device.start_tcp()
        link = ModbusTcpTransport(host="127.0.0.1", port=port, timeout_s=TIMEOUT_S)
        try:
            device.garble(1, mode)  # type: ignore[arg-type]
            words = await link.read(ReadRequest("holding", 1, 0, 4))
            bits = await link.read(ReadRequest("coil", 1, 0, 3))
            device.garble(1, None)
            healed = await link.read(ReadRequest("holding", 1, 0, 4))
            return words, bits, healed
        finally:
            await link.close()
            await device.stop()

    words, bits, healed = run_async(scenario())
    assert words.error == reason
    assert bits.error == bits_reason
    assert healed.words == [16890, 0, 65535, 7]


def test_a_closed_port_is_disconnected() -> None:
    """Nobody listening: `disconnected`, quickly, and no exception."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    (result,) = run_async(_read(port, ReadRequest("holding", 1, 0, 1)))
    assert result.error == "disconnected"


def test_the_trace_hook_sees_requests_and_answers() -> None:
    """The packet trace hook gets the bytes sent and the bytes received."""
    seen: list[tuple[bool, bytes]] = []

    async def scenario() -> None:
        device = _device()
        port = await device.start_tcp()
        link = ModbusTcpTransport(
            host="127.0.0.1",
            port=port,
            timeout_s=TIMEOUT_S,
            trace_packet=lambda sending, data: seen.append((sending, data)),
        )
        try:
            await link.read(ReadRequest("holding", 1, 0, 1))
        finally:
            await link.close()
            await device.stop()

    run_async(scenario())
    sent = [data for sending, data in seen if sending]
    received = [data for sending, data in seen if not sending]
    assert sent[0][6:] == bytes([1, 3, 0, 0, 0, 1])  # unit 1, fc 3, address 0, count 1
    assert received[-1][6:] == bytes([1, 3, 2]) + (16890).to_bytes(2, "big")


def test_a_worker_reports_a_dead_device_bad_then_recovered_with_one_line_each() -> None:
    """Readings carry the reason; the device goes down with one ERROR and recovers with one INFO."""
    log = ReadingLog()
    plan = WordPlan.one_group(
        asset="pump-07", unit=1, interval_s=0.1, requests=[("holding", 0, 2), ("holding", 100, 1)]
    )

    async def scenario() -> ModbusWorker:
        device = _device()
        port = await device.start_tcp()
        worker = ModbusWorker(
            name="pump-7",
            link=ModbusTcpTransport(host="127.0.0.1", port=port, timeout_s=TIMEOUT_S),
            devices=[ModbusDevice(name="pump-7", asset="pump-07", plan=plan, backoff_max_s=0.4)],
        )
        task = start_source(worker, log)
        try:
            assert task.get_name() == "edge[pump-7].poll"
            await log.wait_for(lambda lg: len(lg.good_times("pump-07", "holding_0")) >= 2)
            device.stop_answering(1)
            await log.wait_for(lambda lg: "timeout" in lg.reasons("pump-07"))
            await asyncio.sleep(0.5)
            device.answer_again(1)
            count = len(log.good_times("pump-07", "holding_0"))
            await log.wait_for(lambda lg: len(lg.good_times("pump-07", "holding_0")) > count)
        finally:
            await cancel(task)
            await worker.aclose()
            await device.stop()
        return worker

    with capture_logs() as logs:
        worker = run_async(scenario())
    state = worker.states["pump-7"]
    assert state.available is True
    assert state.last_error == "timeout"
    assert state.counters.errors["exception_code_2"] >= 3
    assert state.counters.errors["timeout"] >= 1
    assert state.counters.requests_skipped >= 1  # the dead poll's second request was not sent
    assert "exception_code_2" in log.reasons("pump-07")
    down = [e for e in logs if e["event"] == "device_unavailable"]
    up = [e for e in logs if e["event"] == "device_recovered"]
    assert [(e["log_level"], e["device"], e["reason"]) for e in down] == [
        ("error", "pump-7", "timeout")
    ]
    assert [(e["log_level"], e["device"]) for e in up] == [("info", "pump-7")]
    bad = [r for _, r in log.of("pump-07", "holding_100")]
    assert all(r.quality is Quality.BAD for r in bad)


def test_a_config_file_becomes_a_running_tcp_source() -> None:
    """YAML → `EdgeConfig` → `build_sources` → good readings from the fake device."""
    log = ReadingLog()

    async def scenario() -> None:
        device = _device()
        port = await device.start_tcp()
        config = parse_config(
            f"""
site: plant1
gateway: gw-plant1-01
devices:
  - name: boiler-2
    asset: boiler-2
    profile: auto
    transport: {{type: tcp, host: 127.0.0.1, port: {port}, unit: 1, timeout_s: {TIMEOUT_S}}}
""",
            source="edge.yaml",
        )
        plan = WordPlan.one_group(
            asset="boiler-2", unit=1, interval_s=0.1, requests=[("input", 10, 2)]
        )
        (source,) = build_sources(config, {"boiler-2": plan})
        task = start_source(source, log)
        try:
            await log.wait_for(lambda lg: len(lg.good_times("boiler-2", "input_11")) >= 2)
        finally:
            await cancel(task)
            await source.aclose()
            await device.stop()

    run_async(scenario())
    assert [r.value for _, r in log.of("boiler-2", "input_11")][:2] == [5678, 5678]
