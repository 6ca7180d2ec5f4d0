"""Golden cases over the wire: registers.json served by a real pymodbus server, read by the agent.

Every folder `tests/firmware_profiles/<case>/` with `registers.json` and `expected.jsonl` is a
case (STYLE.md 5: adding a device is adding data, not code). The registers are served by a real
pymodbus TCP server (and, per case, by a pymodbus RTU server on a socat pty pair); the agent's own
link polls them once with the compiled plan, and the decoded readings must equal
`expected.jsonl` exactly: value, JSON type, quality and reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import FakeModbusDevice, run_async, socat_pty_pair

from edge_agent._agent_devices import identify
from edge_agent._model import Quality, Reading
from edge_agent._planner import CompiledPlan, compile_plan
from edge_agent._profile import Profile, ProfileLibrary, load_profile
from edge_agent.sources import ModbusLink, ModbusRtuBus, ModbusTcpTransport

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "firmware_profiles"
CASES = ROOT / "tests" / "firmware_profiles"
GOLDEN = sorted(
    path.parent
    for path in CASES.glob("*/registers.json")
    if (path.parent / "expected.jsonl").is_file()
)
TIMEOUT_S = 1.0


def _profile(case: Path) -> Profile:
    own = case / "profile.yaml"
    return load_profile(own if own.exists() else PROFILES / f"{case.name}.yaml")


def _unit(case: Path) -> int:
    unit: int = json.loads((case / "registers.json").read_text())["unit"]
    return unit


def _expected(case: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in (case / "expected.jsonl").read_text().splitlines() if line]
    return {row["signal"]: row for row in rows}


async def _poll_once(link: ModbusLink, plan: CompiledPlan) -> list[Reading]:
    """One poll of every group, request by request, as a worker sends them."""
    try:
        results = {request: await link.read(request) for request in plan.requests}
    finally:
        await link.close()
    return plan.decode(results)


def _assert_matches(readings: list[Reading], case: Path) -> None:
    expected = _expected(case)
    assert sorted(r.signal for r in readings) == sorted(expected)
    for reading in readings:
        want = expected[reading.signal]
        assert reading.ts_ms > 0
        assert reading.quality == Quality(want["quality"]), reading
        if reading.quality is Quality.GOOD:
            assert reading.value == want["value"], reading
            assert type(reading.value) is type(want["value"]), reading
        else:
            assert reading.reason == want["reason"], reading


def test_every_shipped_profile_is_a_golden_case() -> None:
    """No shipped profile escapes the wire-level golden test."""
    assert {p.stem for p in PROFILES.glob("*.yaml")} <= {case.name for case in GOLDEN}


@pytest.mark.parametrize("case", GOLDEN, ids=[case.name for case in GOLDEN])
def test_a_poll_over_modbus_tcp_decodes_to_the_expected_readings(case: Path) -> None:
    """Served by a pymodbus TCP server, one poll decodes to expected.jsonl exactly."""
    profile = _profile(case)
    plan = compile_plan(profile, asset="golden", unit=_unit(case))

    async def scenario() -> list[Reading]:
        device = FakeModbusDevice.from_registers_json(case / "registers.json")
        port = await device.start_tcp()
        try:
            link = ModbusTcpTransport(host="127.0.0.1", port=port, timeout_s=TIMEOUT_S)
            return await _poll_once(link, plan)
        finally:
            await device.stop()

    readings = run_async(scenario())

    _assert_matches(readings, case)
    assert {r.asset for r in readings} == {"golden"}


@pytest.mark.parametrize("case", GOLDEN, ids=[case.name for case in GOLDEN])
def test_identification_over_modbus_tcp_selects_the_cases_profile(case: Path) -> None:
    """The identification registers, read over the wire, select this case's profile."""
    library = ProfileLibrary.load(PROFILES)
    if _profile(case).identification is None:
        pytest.skip("the profile declares no identification registers")

    async def scenario() -> str | None:
        device = FakeModbusDevice.from_registers_json(case / "registers.json")
        port = await device.start_tcp()
        link = ModbusTcpTransport(host="127.0.0.1", port=port, timeout_s=TIMEOUT_S)
        try:
            found = await identify(link, library, unit=_unit(case))
        finally:
            await link.close()
            await device.stop()
        return found.selection.profile.profile_id if found.selection.profile else None

    assert run_async(scenario()) == case.name


@pytest.fixture
def ptys(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with socat_pty_pair(tmp_path) as pair:
        yield pair


@pytest.mark.parametrize("case", GOLDEN, ids=[case.name for case in GOLDEN])
def test_a_poll_over_modbus_rtu_decodes_to_the_expected_readings(
    case: Path, ptys: tuple[str, str]
) -> None:
    """Served by a pymodbus RTU server on a socat pty pair, one poll decodes exactly too."""
    server_end, bus_end = ptys
    plan = compile_plan(_profile(case), asset="golden", unit=_unit(case))

    async def scenario() -> list[Reading]:
        device = FakeModbusDevice.from_registers_json(case / "registers.json")
        await device.start_rtu(server_end, baudrate=19200)
        try:
            link = ModbusRtuBus(port=bus_end, baudrate=19200, timeout_s=TIMEOUT_S)
            return await _poll_once(link, plan)
        finally:
            await device.stop()

    _assert_matches(run_async(scenario()), case)
