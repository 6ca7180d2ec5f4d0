"""Line-oriented ASCII devices over a socat pty pair (needs the Debian package `socat`).

A writer thread on the other end of the pair plays the device.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest
import serial
from structlog.testing import capture_logs
from support import ReadingLog, cancel, run_async, socat_pty_pair

from edge_agent._config import parse_config
from edge_agent._model import Quality
from edge_agent.sources import (
    KeyValueParser,
    LineField,
    SerialLineSource,
    SerialSettings,
    Source,
    build_sources,
    start_source,
)


class FakeLineDevice:
    """A thread writing lines to one end of the pty pair; `respond` makes it answer prompts."""

    def __init__(
        self,
        port: str,
        *,
        lines: list[bytes] | None = None,
        respond: Callable[[bytes], bytes] | None = None,
        period_s: float = 0.05,
    ) -> None:
        self.port = port
        self.lines = lines or [b"\n"]
        self.respond = respond
        self.period_s = period_s
        self.paused = threading.Event()
        self.prompts: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-line-device")

    def _run(self) -> None:
        with serial.Serial(self.port, timeout=self.period_s) as port:
            index, pending = 0, b""
            while not self._stop.is_set():
                if self.respond is not None:
                    pending += port.read(64)
                    while b"\n" in pending:
                        prompt, _, pending = pending.partition(b"\n")
                        self.prompts.append(prompt + b"\n")
                        port.write(self.respond(prompt + b"\n"))
                    continue
                if not self.paused.is_set():
                    port.write(self.lines[index % len(self.lines)])
                    index += 1
                time.sleep(self.period_s)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def ptys(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with socat_pty_pair(tmp_path) as pair:
        yield pair


def _kv_source(port: str, **kwargs: object) -> SerialLineSource:
    return SerialLineSource(
        name="flow-1",
        asset="flowmeter-1",
        settings=SerialSettings(port=port, baudrate=9600),
        parser=KeyValueParser(
            fields={
                "T": LineField(signal="temp_c", scale=0.1),
                "P": LineField(signal="pressure_bar"),
            }
        ),
        **kwargs,  # type: ignore[arg-type]
    )


def test_lines_become_scaled_readings_and_garbage_lines_bad_ones(ptys: tuple[str, str]) -> None:
    """`T=215 P=1.013` gives temp 21.5 and pressure 1.013; a garbage line gives `no_match`."""
    device_end, agent_end = ptys
    log = ReadingLog()
    lines = [b"T=215 P=1.013\r\n", b"###garbage###\r\n", b"T=216 P=oops\r\n"]

    async def scenario() -> SerialLineSource:
        source = _kv_source(agent_end, timeout_s=2.0)
        task = start_source(source, log)
        try:
            assert task.get_name() == "edge[flow-1].poll"
            await log.wait_for(lambda lg: len(lg.of("flowmeter-1", "temp_c")) >= 6)
        finally:
            await cancel(task)
            await source.aclose()
        return source

    with FakeLineDevice(device_end, lines=lines):
        source = run_async(scenario())
    temps = {
        (r.quality, None if r.value is None else round(float(r.value), 6), r.reason)
        for _, r in log.of("flowmeter-1", "temp_c")
    }
    pressures = {(r.quality, r.value, r.reason) for _, r in log.of("flowmeter-1", "pressure_bar")}
    assert (Quality.GOOD, 21.5, None) in temps
    assert (Quality.GOOD, 21.6, None) in temps
    assert (Quality.BAD, None, "no_match") in temps
    assert (Quality.GOOD, 1.013, None) in pressures
    assert (Quality.BAD, None, "not_a_number") in pressures
    state = source.states["flow-1"]
    assert state.available is True
    assert state.counters.errors["no_match"] >= 1


def test_a_prompted_csv_device_answers_each_request(ptys: tuple[str, str]) -> None:
    """With `request`, the source writes the prompt every interval and parses each answer."""
    device_end, agent_end = ptys
    log = ReadingLog()
    config = parse_config(
        f"""
site: plant1
gateway: gw-1
devices:
  - name: scale-1
    asset: scale-1
    interval_s: 0.1
    transport:
      type: serial_line
      port: {agent_end}
      line_ending: cr
      request: "READ\\r\\n"
      parser:
        type: csv
        columns: [{{signal: weight_kg, scale: 0.001}}, null, {{signal: status, kind: str}}]
        delimiter: ";"
"""
    )

    async def scenario() -> Source:
        (source,) = build_sources(config, plans={})
        assert isinstance(source, SerialLineSource)
        task = start_source(source, log)
        try:
            await log.wait_for(lambda lg: len(lg.good_times("scale-1", "weight_kg")) >= 3)
        finally:
            await cancel(task)
            await source.aclose()
        return source

    def respond(prompt: bytes) -> bytes:
        return b"12345;x;OK\r\n" if prompt == b"READ\r\n" else b"?\r"

    with FakeLineDevice(device_end, respond=respond) as device:
        source = run_async(scenario())
    assert [r.value for _, r in log.of("scale-1", "weight_kg")][:3] == [12.345] * 3
    assert {r.value for _, r in log.of("scale-1", "status")} == {"OK"}
    assert len(device.prompts) >= 3
    assert source.states["scale-1"].counters.requests >= 3


def test_a_silent_device_goes_down_with_one_error_and_recovers_with_one_info(
    ptys: tuple[str, str],
) -> None:
    """No line for `timeout_s`: bad `timeout` readings, one ERROR; lines again: one INFO."""
    device_end, agent_end = ptys
    log = ReadingLog()

    async def scenario(device: FakeLineDevice) -> SerialLineSource:
        source = _kv_source(agent_end, timeout_s=0.3)
        task = start_source(source, log)
        try:
            await log.wait_for(lambda lg: bool(lg.good_times("flowmeter-1", "temp_c")))
            device.paused.set()
            await log.wait_for(
                lambda lg: (
                    sum(r.reason == "timeout" for _, r in lg.of("flowmeter-1", "temp_c")) >= 2
                )
            )
            device.paused.clear()
            count = len(log.good_times("flowmeter-1", "temp_c"))
            await log.wait_for(lambda lg: len(lg.good_times("flowmeter-1", "temp_c")) > count)
        finally:
            await cancel(task)
            await source.aclose()
        return source

    with FakeLineDevice(device_end, lines=[b"T=200 P=1\n"]) as device, capture_logs() as logs:
        source = run_async(scenario(device))
    events = [(e["event"], e["log_level"]) for e in logs if e["event"].startswith("device_")]
    assert events.count(("device_unavailable", "error")) == 1
    assert events.count(("device_recovered", "info")) == 1
    assert ("device_poll_failed", "debug") in events
    assert source.states["flow-1"].last_error == "timeout"


def test_a_vanished_port_is_disconnected_and_reopened(tmp_path: Path) -> None:
    """Socat goes away (the port with it): `disconnected`; it comes back: readings again."""
    log = ReadingLog()

    async def scenario() -> SerialLineSource:
        with socat_pty_pair(tmp_path) as (device_end, agent_end):
            source = _kv_source(agent_end, timeout_s=2.0, backoff_initial_s=0.1, backoff_max_s=0.2)
            task = start_source(source, log)
            with FakeLineDevice(device_end, lines=[b"T=1 P=2\n"]):
                await log.wait_for(lambda lg: bool(lg.good_times("flowmeter-1", "temp_c")))
        try:
            await log.wait_for(lambda lg: "disconnected" in lg.reasons("flowmeter-1"))
            await asyncio.sleep(0.3)
            # The same path again, as when a USB serial adapter comes back.
            with socat_pty_pair(tmp_path) as (device_end, _):
                count = len(log.good_times("flowmeter-1", "temp_c"))
                with FakeLineDevice(device_end, lines=[b"T=3 P=4\n"]):
                    await log.wait_for(
                        lambda lg: len(lg.good_times("flowmeter-1", "temp_c")) > count
                    )
        finally:
            await cancel(task)
            await source.aclose()
        return source

    source = run_async(scenario())
    state = source.states["flow-1"]
    assert state.available is True
    assert state.counters.errors["disconnected"] >= 1
    assert {r.value for _, r in log.of("flowmeter-1", "pressure_bar")} >= {2.0, 4.0}
