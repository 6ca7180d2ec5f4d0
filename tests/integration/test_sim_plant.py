"""The simulated plant over real Modbus: pymodbus clients, the pty, the edge agent, the CLI.

Time is frozen (the plant's wall clock is injected), so every read can be compared with the pure
core's value at exactly that simulated time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from support import run_async

from cloud.sim import Member, Plant, SimClock, build_fleet, parse_fleet, run_plant
from cloud.sim._cli import main as sim_main
from edge_agent._model import BlockResult, Quality
from edge_agent._planner import compile_plan
from edge_agent._profile import Signal

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
FLEET_YAML = """\
seed: 3
speed: 600
engines: {units: [1, 2], cycle_s: 60, last_cycles: 8}
mills: {count: 1, row_s: 60, history_rows: 10}
compressors: {count: 1, sample_s: 60, filter_life_h: 0.5, fail_after_h: {compressor-01: 0.4}}
hydraulics: {count: 1, cycle_s: 60, cycles_per_stage: 3}
faults:
  dropouts: null
  exceptions: null
  offline: {assets: [engine-002], every_h: 1, for_h: 0.25}
serial: {asset: engine-001, baudrate: 38400, unit: 7}
"""


class FrozenWall:
    """An injectable wall clock (epoch ms) that moves only when told."""

    def __init__(self) -> None:
        self.ms = 0.0

    def __call__(self) -> float:
        """The frozen time."""
        return self.ms

    def at_sim(self, clock: SimClock, t_s: float) -> None:
        """Move to the wall time at which the plant's clock reads `t_s`."""
        self.ms = clock.wall_start_ms + t_s / clock.speed * 1000


@pytest.fixture
def fleet() -> list[Member]:
    config = parse_fleet(FLEET_YAML)
    return build_fleet(config, start=dt.date(2026, 1, 1))


def matches(signal: Signal, served: object, decoded: object) -> bool:
    """Whether a decoded value is the served engineering value within register precision."""
    if signal.enum is not None and signal.enum_value != "code":
        return decoded == signal.enum[int(served)]  # type: ignore[call-overload]
    if isinstance(served, (bool, str)):
        return decoded == served
    value = float(served)  # type: ignore[arg-type]
    if signal.clamp is not None:
        lo = -math.inf if signal.clamp.min is None else signal.clamp.min
        hi = math.inf if signal.clamp.max is None else signal.clamp.max
        value = min(hi, max(lo, value))
    if signal.type == "float32":
        return math.isclose(float(decoded), value, rel_tol=1e-6, abs_tol=1e-9)  # type: ignore[arg-type]
    return abs(float(decoded) - value) <= abs(signal.scale) / 2 + 1e-9  # type: ignore[arg-type]


async def read_device(client: Any, member: Member, unit: int) -> dict[str, Any]:
    """Read every request of the device's plan with a real pymodbus client and decode it."""
    profile = member.device.image.profile
    plan = compile_plan(profile, asset=member.device.asset, unit=unit)
    calls: dict[str, Callable[..., Awaitable[Any]]] = {
        "holding": client.read_holding_registers,
        "input": client.read_input_registers,
        "coil": client.read_coils,
        "discrete": client.read_discrete_inputs,
    }
    results = {}
    for request in plan.requests:
        pdu = await calls[request.kind](request.address, count=request.count, device_id=unit)
        assert not pdu.isError(), (request, pdu)
        if request.kind in ("coil", "discrete"):
            results[request] = BlockResult(1, bits=list(pdu.bits[: request.count]))
        else:
            results[request] = BlockResult(1, words=list(pdu.registers))
    return {
        r.signal: r.value if r.quality is Quality.GOOD else ("bad", r.reason)
        for r in plan.decode(results)
    }


def assert_served(member: Member, t_s: float, decoded: dict[str, Any]) -> None:
    state = member.device.state_at(t_s)
    by_name = {s.name: s for s in member.device.image.profile.signals}
    assert set(decoded) == set(by_name)
    for name, value in state.values.items():
        assert value is not None
        assert matches(by_name[name], value, decoded[name]), (member.device.asset, name)


def start_plant(
    fleet: list[Member], tmp_path: Path, wall: FrozenWall, t_s: float
) -> tuple[Plant, SimClock]:
    clock = SimClock(wall_start_ms=1_800_000_000_000, speed=600)
    wall.at_sim(clock, t_s)
    return Plant(fleet, clock=clock, out_dir=tmp_path / "out", now_ms=wall), clock


def test_tcp_devices_serve_the_trajectory_values_at_the_simulated_time(
    fleet: list[Member], tmp_path: Path
) -> None:
    """A real pymodbus client reads, the agent's decoder decodes: the trajectory, to precision."""
    wall = FrozenWall()
    plant, clock = start_plant(fleet, tmp_path, wall, t_s=150.0)

    async def scenario() -> None:
        await plant.start()
        try:
            # Before and after failures (hpu-01's cooler fails at 360 s, after 2 x 3 cycles).
            for t_s in (150.0, 290.0, 10_000.0):
                wall.at_sim(clock, t_s)
                await plant.step()
                for member in fleet:
                    if member.transport != "tcp" or not member.device.online_at(t_s):
                        continue
                    endpoint = plant.endpoints[member.device.name]
                    client = AsyncModbusTcpClient("127.0.0.1", port=endpoint.port, timeout=2)
                    await client.connect()
                    try:
                        decoded = await read_device(client, member, endpoint.unit)
                    finally:
                        client.close()
                    assert_served(member, t_s, decoded)
        finally:
            await plant.stop()

    run_async(scenario(), timeout_s=60)
    served = json.loads((tmp_path / "out" / "served.json").read_text())["devices"]
    assert served["mill-01"]["good"]["tool_wear_min"] == 3
    assert served["mill-01"]["invalid"] == {}
    assert served["hpu-01"]["good"]["cooling_efficiency_pct"] == 3


def test_the_serial_device_answers_modbus_rtu_on_the_pty(
    fleet: list[Member], tmp_path: Path
) -> None:
    """engine-001 is served on a socat pty pair; its values are the trajectory's."""
    wall = FrozenWall()
    plant, _ = start_plant(fleet, tmp_path, wall, t_s=200.0)
    serial_member = next(m for m in fleet if m.transport == "rtu")

    async def scenario() -> None:
        await plant.start()
        try:
            endpoint = plant.endpoints[serial_member.device.name]
            assert endpoint.serial_port is not None
            client = AsyncModbusSerialClient(
                endpoint.serial_port, baudrate=endpoint.baudrate, timeout=2, retries=0
            )
            assert await client.connect()
            try:
                decoded = await read_device(client, serial_member, endpoint.unit)
            finally:
                client.close()
            assert_served(serial_member, 200.0, decoded)
            assert (
                decoded["cycle_count"]
                == serial_member.device.trajectory.values_at(200.0)["cycle_count"]
            )
        finally:
            await plant.stop()

    run_async(scenario(), timeout_s=60)


def test_the_offline_device_refuses_connections_during_its_window(
    fleet: list[Member], tmp_path: Path
) -> None:
    """engine-002 stops listening inside its offline window and is back, same port, after it."""
    wall = FrozenWall()
    plant, clock = start_plant(fleet, tmp_path, wall, t_s=0.0)
    member = next(m for m in fleet if m.device.asset == "engine-002")
    window = member.device.faults.offline[0]

    async def scenario() -> None:
        await plant.start()
        try:
            port = plant.endpoints["engine-002"].port
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            wall.at_sim(clock, window.start_s + 1)
            await plant.step()
            assert not plant.servers["engine-002"].listening
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", port)
            wall.at_sim(clock, window.end_s + 1)
            await plant.step()
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2)
            assert await client.connect()
            try:
                decoded = await read_device(client, member, 1)
            finally:
                client.close()
            assert_served(member, window.end_s + 1, decoded)
        finally:
            await plant.stop()

    run_async(scenario(), timeout_s=60)


def test_the_edge_agent_reads_the_trajectory_through_the_generated_config(
    fleet: list[Member], tmp_path: Path
) -> None:
    """`prognos-edge read` with the generated config decodes what the trajectory says."""
    wall = FrozenWall()
    t_s = 250.0
    plant, _ = start_plant(fleet, tmp_path, wall, t_s=t_s)

    async def agent_read(config: Path, device: str) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            str(VENV_BIN / "prognos-edge"),
            "read",
            str(config),
            "--device",
            device,
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        readings = json.loads(out)["readings"]
        return {
            r["signal"]: r["value"] if r["quality"] == "good" else ("bad", r.get("reason"))
            for r in readings
        }

    async def scenario() -> None:
        await plant.start()
        try:
            (config,) = plant.edge_config_paths
            for member in fleet:
                decoded = await agent_read(config, member.device.name)
                assert_served(member, t_s, decoded)
        finally:
            await plant.stop()

    run_async(scenario(), timeout_s=90)


def test_plant_cli_writes_its_outputs_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """`prognos sim plant` serves, records failures as they happen, and exits 0 on SIGTERM."""
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(FLEET_YAML)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGNOS_MQTT")}
    proc = subprocess.Popen(
        [str(VENV_BIN / "prognos"), "sim", "plant", "--fleet", str(fleet_file), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        # Engines fail after 7 cycles of 60 s (0.7 s of wall time at speed 600).
        while not _failures(out) >= {"engine-001", "engine-002"}:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the engines' failures were never recorded"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert "stopped:" in output
    manifest = json.loads((out / "manifest.json").read_text())
    assert {d["asset"] for d in manifest["devices"]} == {
        "engine-001",
        "engine-002",
        "mill-01",
        "compressor-01",
        "hpu-01",
    }
    assert (out / "edge-gw-sim-plant.yaml").exists()
    assert (out / "assets.yaml").exists()
    assert not (out / "pty-sim").exists() or not (out / "pty-sim").resolve().exists()
    served = json.loads((out / "served.json").read_text())
    assert set(served["devices"]) == {
        "engine-001",
        "engine-002",
        "mill-01",
        "compressor-01",
        "hpu-01",
    }


def test_plant_cli_stops_by_itself_after_duration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --duration the command ends on its own with exit 0 (run in-process)."""
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(
        FLEET_YAML.replace("serial: {asset: engine-001, ", "serial: {asset: null, ")
    )
    argv = ["plant", "--fleet", str(fleet_file), "--out", str(tmp_path / "out"), "--duration", "1"]
    assert sim_main([*argv, "--mqtt-host", ""]) == 0
    assert "stopped:" in capsys.readouterr().out
    assert (tmp_path / "out" / "served.json").exists()


def test_plant_cli_refuses_an_invalid_fleet_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid fleet config exits 2 with a line naming the file, key and value."""
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text("speed: 0\n")
    assert sim_main(["plant", "--fleet", str(fleet_file)]) == 2
    expected = f"{fleet_file}: speed Input should be greater than 0. Got 0 instead."
    assert expected in capsys.readouterr().err


def _failures(out: Path) -> set[str]:
    path = out / "ground_truth.jsonl"
    if not path.exists():
        return set()
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["asset"] for r in records if r["event"] == "failure"}


def test_every_value_served_good_is_a_good_reading_of_the_edge_agent(tmp_path: Path) -> None:
    """Loss accounting, device to agent: per signal, the plant's good count is the agent's.

    The plant runs on the real clock (dropouts, exceptions and an offline device included) and
    `prognos-edge run` polls it through the generated config, printing readings. The plant stops
    first, then the agent (after it has seen every device go away), so no answer is in flight.
    """
    fleet_yaml = FLEET_YAML.replace(
        "  dropouts: null\n  exceptions: null\n  offline: {assets: [engine-002], every_h: 1, "
        "for_h: 0.25}",
        "  dropouts: {mean_gap_h: 0.2, mean_length_h: 0.05}\n"
        "  exceptions: {mean_gap_h: 0.5, mean_length_h: 0.02}\n"
        "  offline: {assets: [engine-002], every_h: 0.5, for_h: 0.1}",
    )
    assert fleet_yaml != FLEET_YAML
    members = build_fleet(parse_fleet(fleet_yaml), start=dt.date(2026, 1, 1))
    clock = SimClock(wall_start_ms=round(time.time() * 1000), speed=600)
    plant = Plant(members, clock=clock, out_dir=tmp_path / "out")
    readings_path = tmp_path / "agent.jsonl"

    def readings() -> list[dict[str, Any]]:
        lines = readings_path.read_text().splitlines()
        return [json.loads(line) for line in lines[:-1]]  # the last line may be half written

    async def scenario() -> None:
        await plant.start()
        stop = asyncio.Event()
        runner = asyncio.create_task(run_plant(plant, duration_s=None, stop=stop))
        (config,) = plant.edge_config_paths
        with readings_path.open("w") as out, (tmp_path / "agent.err").open("w") as err:
            agent = await asyncio.create_subprocess_exec(
                str(VENV_BIN / "prognos-edge"), "run", str(config), stdout=out, stderr=err
            )
        try:
            # Until every device has answered and the latest fault codes are all set: the run
            # covers each device's failure (the engines fail after about 0.7 s of wall time).
            while len({r["asset"] for r in readings() if r["quality"] == "good"}) < 5 or any(
                r["signal"] == "fault_code" and r.get("value") in (0, "none")
                for r in readings()[-200:]
            ):
                assert agent.returncode is None, (tmp_path / "agent.err").read_text()
                await asyncio.sleep(0.2)
            stop.set()
            await runner  # every server closed: from now on the agent only sees errors
            stopped_ms = time.time() * 1000
            while not _all_down_since(readings(), stopped_ms, {m.device.asset for m in members}):  # noqa: ASYNC110 - polls a file another process writes
                await asyncio.sleep(0.2)
        finally:
            if agent.returncode is None:
                agent.send_signal(signal.SIGTERM)
            await agent.wait()

    run_async(scenario(), timeout_s=150)
    good: dict[tuple[str, str], int] = {}
    for reading in readings():
        if reading["quality"] == "good":
            key = (reading["asset"], reading["signal"])
            good[key] = good.get(key, 0) + 1
    served = json.loads((tmp_path / "out" / "served.json").read_text())["devices"]
    served_good = {
        (asset, name): n for asset, counts in served.items() for name, n in counts["good"].items()
    }
    assert served_good
    assert good == served_good
    failures = _failures(tmp_path / "out")
    assert failures == {"engine-001", "engine-002", "mill-01", "compressor-01", "hpu-01"}


def _all_down_since(readings: list[dict[str, Any]], stopped_ms: float, assets: set[str]) -> bool:
    """Whether every asset has a bad reading read after the plant stopped."""
    late_bad = {r["asset"] for r in readings if r["quality"] == "bad" and r["ts"] > stopped_ms}
    return late_bad >= assets
