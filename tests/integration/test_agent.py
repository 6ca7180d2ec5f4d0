"""The assembled agent against fake devices: real pymodbus TCP servers on loopback ports.

Each device is served from its golden `registers.json` (tests/firmware_profiles), so the values
the agent delivers are the hand-checked ones of `expected.jsonl`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import textwrap
from collections.abc import AsyncIterator, MutableMapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from support import FakeModbusDevice, ReadingLog, run_async

from edge_agent._agent import Agent
from edge_agent._agent_devices import DeviceNotIdentified
from edge_agent._config import EdgeConfig, parse_config
from edge_agent._exceptions import ConfigError
from edge_agent._model import Quality, Reading

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "firmware_profiles"
CASES = ROOT / "tests" / "firmware_profiles"
PUMP, COMPRESSOR, CNC = "aquaflo_cpv150_2.x", "airtek_sc75_4.2", "millrite_spx12_5.1"
UNITS = {PUMP: 1, COMPRESSOR: 1, CNC: 3}
INTERVAL_S = 0.2


def _fake(case: str) -> FakeModbusDevice:
    return FakeModbusDevice.from_registers_json(CASES / case / "registers.json")


@asynccontextmanager
async def _serving(
    *cases: str,
) -> AsyncIterator[tuple[dict[str, FakeModbusDevice], dict[str, int]]]:
    devices = {case: _fake(case) for case in cases}
    ports: dict[str, int] = {}
    try:
        for case, device in devices.items():
            ports[case] = await device.start_tcp()
        yield devices, ports
    finally:
        for device in devices.values():
            await device.stop()


def _device(
    name: str,
    case: str,
    port: int,
    *,
    profile: str | None = None,
    extra: str = "",
    preprocess: str = 'deadband: "off"',
) -> str:
    return textwrap.dedent(
        f"""\
        - name: {name}
          asset: {name}-asset
          profile: {profile or case}
          interval_s: {INTERVAL_S}
          transport: {{type: tcp, host: 127.0.0.1, port: {port}, unit: {UNITS[case]},
                       timeout_s: 0.3}}
          backoff: {{initial_s: 0.2, max_s: 0.4}}
          preprocess: {{{preprocess}}}
        """
    ) + textwrap.indent(textwrap.dedent(extra), "  ")


def _config(*devices: str, state_dir: Path | None = None) -> EdgeConfig:
    head = f"site: plant1\ngateway: gw-1\nprofiles_dir: {PROFILES}\n"
    if state_dir is not None:
        head += f"state_dir: {state_dir}\nstate_save_interval_s: 0.2\n"
    body = "".join(textwrap.indent(device, "  ") for device in devices)
    return parse_config(head + "devices:\n" + body, source="edge.yaml")


def _open_connections(fake: FakeModbusDevice) -> int:
    server = fake._server
    assert server is not None
    return len(server.active_connections)


def _good(log: ReadingLog, asset: str, signal: str) -> list[Reading]:
    return [r for _, r in log.of(asset, signal) if r.quality is Quality.GOOD]


def test_three_devices_of_three_profiles_deliver_readings_with_their_quality() -> None:
    """Three fake devices, three profiles: every reading reaches the sink, good or bad + reason."""
    log = ReadingLog()

    async def scenario() -> dict[str, str | None]:
        async with _serving(PUMP, COMPRESSOR, CNC) as (_, ports):
            config = _config(
                _device("pump", PUMP, ports[PUMP]),
                _device("comp", COMPRESSOR, ports[COMPRESSOR]),
                _device("cnc", CNC, ports[CNC]),
            )
            async with Agent.from_config(config, sink=log) as agent:
                await log.wait_for(
                    lambda log: all(
                        len(_good(log, asset, signal)) >= 3
                        for asset, signal in (
                            ("pump-asset", "flow_m3_h"),
                            ("comp-asset", "discharge_pressure_bar"),
                            ("cnc-asset", "spindle_speed_rpm"),
                        )
                    ),
                    timeout_s=6,
                )
                profiles = agent.profiles
                return {name: p.profile_id if p else None for name, p in profiles.items()}

    profiles = run_async(scenario())

    assert profiles == {"pump": PUMP, "comp": COMPRESSOR, "cnc": CNC}
    assert {r.asset for _, r in log.entries} == {"pump-asset", "comp-asset", "cnc-asset"}
    assert all(r.quality in (Quality.GOOD, Quality.BAD) for _, r in log.entries)
    assert _good(log, "pump-asset", "flow_m3_h")[0].value == 42.5
    # A sentinel is a bad reading with its reason, never a number.
    bearing = [r for _, r in log.of("pump-asset", "bearing_temp_c")]
    assert bearing
    assert all((r.quality, r.reason, r.value) == (Quality.BAD, "sentinel", None) for r in bearing)


def test_profile_auto_identifies_each_unit_behind_one_endpoint() -> None:
    """Two `auto` devices behind one TCP endpoint are identified by their registers."""
    log = ReadingLog()
    both = FakeModbusDevice.from_registers_json(
        CASES / PUMP / "registers.json", CASES / CNC / "registers.json"
    )

    async def scenario() -> tuple[dict[str, str | None], list[MutableMapping[str, Any]]]:
        port = await both.start_tcp()
        try:
            config = _config(
                _device("pump", PUMP, port, profile="auto"),
                _device("cnc", CNC, port, profile="auto"),
            )
            with capture_logs() as logs:
                async with Agent.from_config(config, sink=log) as agent:
                    await log.wait_for(
                        lambda log: (
                            bool(_good(log, "pump-asset", "flow_m3_h"))
                            and bool(_good(log, "cnc-asset", "spindle_speed_rpm"))
                        )
                    )
                    profiles = {n: p.profile_id if p else None for n, p in agent.profiles.items()}
            return profiles, logs
        finally:
            await both.stop()

    profiles, logs = run_async(scenario())

    assert profiles == {"pump": PUMP, "cnc": CNC}
    identified = {e["device"]: e["profile"] for e in logs if e["event"] == "device_identified"}
    assert identified == {"pump": PUMP, "cnc": CNC}


def test_a_dead_device_is_reported_bad_while_the_others_keep_polling() -> None:
    """A silent device yields bad readings with the reason; the other two keep good readings."""
    log = ReadingLog()

    async def scenario() -> dict[str, object]:
        async with _serving(PUMP, COMPRESSOR, CNC) as (fakes, ports):
            fakes[COMPRESSOR].stop_answering(UNITS[COMPRESSOR])
            config = _config(
                _device("pump", PUMP, ports[PUMP]),
                _device("comp", COMPRESSOR, ports[COMPRESSOR]),
                _device("cnc", CNC, ports[CNC]),
            )
            async with Agent.from_config(config, sink=log) as agent:
                await asyncio.sleep(1.6)
                return {name: state.available for name, state in agent.states.items()}

    available = run_async(scenario())

    assert available == {"pump": True, "comp": False, "cnc": True}
    assert log.reasons("comp-asset") == {"timeout"}
    assert not [r for _, r in log.of("comp-asset") if r.quality is Quality.GOOD]
    # 1.6 s at 0.2 s: about 8 polls; a dead neighbour on another link costs them nothing.
    assert len(_good(log, "pump-asset", "flow_m3_h")) >= 5
    assert len(_good(log, "cnc-asset", "spindle_speed_rpm")) >= 5


def test_usage_counters_are_persisted_and_continue_after_a_restart(tmp_path: Path) -> None:
    """Operating hours are saved under state_dir and the next agent continues from them."""
    state_dir = tmp_path / "state"
    hours = (
        'deadband: "off", '
        "operating_hours: [{signal: running, hours_name: pump_hours, starts_name: pump_starts}]"
    )

    async def one_run(log: ReadingLog, *, seconds: float) -> None:
        async with _serving(PUMP) as (_, ports):
            config = _config(
                _device("pump", PUMP, ports[PUMP], preprocess=hours), state_dir=state_dir
            )
            async with Agent.from_config(config, sink=log):
                await asyncio.sleep(seconds)

    first, second = ReadingLog(), ReadingLog()
    run_async(one_run(first, seconds=1.0))
    saved = json.loads((state_dir / "usage.json").read_text())
    run_async(one_run(second, seconds=0.6))

    entry = saved["assets"]["pump-asset"]["steps"]["usage"]["operating_hours"][0]
    assert entry["name"] == "pump_hours"
    assert entry["running_ms"] > 0
    last_first = _good(first, "pump-asset", "pump_hours")[-1].value
    first_second = _good(second, "pump-asset", "pump_hours")[0].value
    assert isinstance(last_first, float)
    assert isinstance(first_second, float)
    saved_h = entry["running_ms"] / 3_600_000
    assert last_first == pytest.approx(saved_h)  # saved at stop: what was last published
    assert first_second >= saved_h > 0  # the restart continues from it, never from zero
    assert not list(state_dir.glob(".*.tmp"))  # the atomic write left no temporary file


def test_a_corrupt_state_file_stops_the_start_and_is_left_as_it_is(tmp_path: Path) -> None:
    """A usage state file that is not JSON is a config error naming it; it is not overwritten."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "usage.json").write_text("{not json")
    hours = "operating_hours: [{signal: running}]"

    async def scenario() -> None:
        async with _serving(PUMP) as (_, ports):
            config = _config(
                _device("pump", PUMP, ports[PUMP], preprocess=hours), state_dir=state_dir
            )
            async with Agent.from_config(config, sink=ReadingLog()):
                pass  # pragma: no cover - the start fails

    with pytest.raises(ConfigError, match=r"usage\.json: usage state is not valid JSON"):
        run_async(scenario())
    assert (state_dir / "usage.json").read_text() == "{not json"


def test_sigterm_stops_the_agent_and_closes_every_connection() -> None:
    """SIGTERM ends `run()` gracefully: tasks cancelled, links closed, nothing left open."""
    log = ReadingLog()

    async def scenario() -> tuple[int, dict[str, int]]:
        async with _serving(PUMP, CNC) as (fakes, ports):
            config = _config(_device("pump", PUMP, ports[PUMP]), _device("cnc", CNC, ports[CNC]))
            agent = Agent.from_config(config, sink=log)
            run = asyncio.create_task(agent.run(stop_signals=(signal.SIGTERM,)))
            await log.wait_for(lambda log: len(log.entries) > 0)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(run, timeout=5)
            count = len(log.entries)
            await asyncio.sleep(0.5)  # no poll after the stop
            connections = {case: _open_connections(fake) for case, fake in fakes.items()}
            return len(log.entries) - count, connections

    after_stop, connections = run_async(scenario())
    gc.collect()  # an unclosed transport would warn now (filterwarnings = error)

    assert after_stop == 0
    assert connections == {PUMP: 0, CNC: 0}


def test_a_device_identified_late_is_polled_with_its_profile() -> None:
    """`retry`: a device silent at start is identified when it answers, then polled normally."""
    log = ReadingLog()

    async def scenario() -> tuple[str | None, list[MutableMapping[str, Any]]]:
        async with _serving(PUMP, CNC) as (fakes, ports):
            fakes[PUMP].stop_answering(UNITS[PUMP])
            config = _config(
                _device("pump", PUMP, ports[PUMP], profile="auto"),
                _device("cnc", CNC, ports[CNC]),
            )
            with capture_logs() as logs:
                async with Agent.from_config(config, sink=log) as agent:
                    await asyncio.sleep(0.5)
                    assert not log.of("pump-asset")
                    fakes[PUMP].answer_again(UNITS[PUMP])
                    await log.wait_for(
                        lambda log: len(_good(log, "pump-asset", "flow_m3_h")) >= 2, timeout_s=6
                    )
                    profile = agent.profiles["pump"]
            return (profile.profile_id if profile else None), logs

    profile, logs = run_async(scenario())

    assert profile == PUMP
    events = [e["event"] for e in logs if e.get("device") == "pump"]
    assert events.index("device_not_identified") < events.index("device_identified")
    assert _good(log, "cnc-asset", "spindle_speed_rpm")


@pytest.mark.parametrize("behavior", ["error", "ignore"])
def test_a_device_that_cannot_be_identified_follows_its_startup_error_behavior(
    behavior: str,
) -> None:
    """`error` stops the start with the device's reason; `ignore` drops it, the others run."""
    log = ReadingLog()

    async def scenario() -> Sequence[str]:
        async with _serving(PUMP, CNC) as (fakes, ports):
            fakes[CNC].fail_with(UNITS[CNC], 2)  # answers, but no identification register
            config = _config(
                _device("pump", PUMP, ports[PUMP]),
                _device(
                    "cnc",
                    CNC,
                    ports[CNC],
                    profile="auto",
                    extra=f"startup_error_behavior: {behavior}\n",
                ),
            )
            async with Agent.from_config(config, sink=log) as agent:
                await log.wait_for(lambda log: bool(_good(log, "pump-asset", "flow_m3_h")))
                return sorted(agent.states)

    if behavior == "error":
        with pytest.raises(DeviceNotIdentified, match="cnc") as info:
            run_async(scenario())
        assert info.value.reason == "not_identified"
        assert not log.entries
    else:
        assert run_async(scenario()) == ["pump"]
        assert not log.of("cnc-asset")


def test_fast_signals_are_aggregated_per_window() -> None:
    """`aggregate` replaces a fast signal by min/mean/max per window, closed by the flush timer."""
    log = ReadingLog()
    preprocess = 'deadband: "off", aggregate: {signals: [flow_m3_h], window_s: 0.4}'

    async def scenario() -> None:
        async with _serving(PUMP) as (_, ports):
            config = _config(_device("pump", PUMP, ports[PUMP], preprocess=preprocess))
            async with Agent.from_config(config, sink=log, flush_interval_s=0.1):
                await log.wait_for(
                    lambda log: len(_good(log, "pump-asset", "flow_m3_h_mean")) >= 2, timeout_s=6
                )

    run_async(scenario())

    assert not log.of("pump-asset", "flow_m3_h")
    assert {r.value for r in _good(log, "pump-asset", "flow_m3_h_mean")} == {42.5}
    assert _good(log, "pump-asset", "flow_m3_h_min")
    assert _good(log, "pump-asset", "flow_m3_h_max")
    assert _good(log, "pump-asset", "motor_current_a")  # others pass through
