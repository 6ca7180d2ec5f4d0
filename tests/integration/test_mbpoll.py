"""`mbpoll` (Debian package `mbpoll`), an independent Modbus client, reads the fake device.

If another client sees what the fake device serves, the fake device is a fair stand-in for a
real one in the other tests (and the golden-profile tests' `registers.json` format loads).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest
from support import FakeModbusDevice, UnitData, run_async, socat_pty_pair

MBPOLL = shutil.which("mbpoll")
pytestmark = pytest.mark.skipif(MBPOLL is None, reason="mbpoll is not installed (Debian mbpoll)")

# mbpoll data types: 0 coils, 1 discrete inputs, 3 input registers, 4 holding registers.
TABLE_TYPES = {"coil": "0", "discrete": "1", "input": "3", "holding": "4"}


async def _mbpoll(*args: str) -> tuple[int, str, str]:
    assert MBPOLL is not None
    proc = await asyncio.create_subprocess_exec(
        MBPOLL,
        "-0",  # PDU addressing: reference 0 is address 0
        "-1",  # poll once
        "-o",
        "1",  # timeout, seconds
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _values(output: str) -> dict[int, dict[int, int]]:
    """`{slave: {address: value}}` from mbpoll's `-- Polling slave N...` / `[a]: v` lines."""
    values: dict[int, dict[int, int]] = {}
    slave = 0
    for line in output.splitlines():
        if match := re.match(r"-- Polling slave (\d+)", line):
            slave = int(match[1])
        elif match := re.match(r"\[(\d+)\]:\s+(-?\d+)", line):
            values.setdefault(slave, {})[int(match[1])] = int(match[2])
    return values


def test_mbpoll_reads_every_table_over_tcp_from_a_registers_json(tmp_path: Path) -> None:
    """The golden-test `registers.json` format, served over TCP, reads back the same in mbpoll.

    Strict mode answers an unlisted address with exception 2; the golden default reads it as 0.
    """
    registers = {
        "unit": 1,
        "holding": {"0": 16890, "1": 0, "2": 65535},
        "input": {"10": 1234},
        "coil": {"0": True, "1": False, "2": True},
        "discrete": {"4": 1},
    }
    path = tmp_path / "registers.json"
    path.write_text(json.dumps(registers))

    async def scenario() -> dict[str, tuple[int, str, str]]:
        device = FakeModbusDevice.from_registers_json(path, unlisted="illegal_address")
        port = await device.start_tcp()
        tcp = ("-m", "tcp", "-a", "1", "-p", str(port))
        try:
            return {
                "holding": await _mbpoll(*tcp, "-t", "4", "-r", "0", "-c", "3", "127.0.0.1"),
                "input": await _mbpoll(*tcp, "-t", "3", "-r", "10", "-c", "1", "127.0.0.1"),
                "coil": await _mbpoll(*tcp, "-t", "0", "-r", "0", "-c", "3", "127.0.0.1"),
                "discrete": await _mbpoll(*tcp, "-t", "1", "-r", "4", "-c", "1", "127.0.0.1"),
                "missing": await _mbpoll(*tcp, "-t", "4", "-r", "50", "-c", "1", "127.0.0.1"),
            }
        finally:
            await device.stop()

    async def golden_convention() -> tuple[int, str, str]:
        device = FakeModbusDevice.from_registers_json(path)  # unlisted addresses read 0
        port = await device.start_tcp()
        try:
            tcp = ("-m", "tcp", "-a", "1", "-p", str(port))
            return await _mbpoll(*tcp, "-t", "4", "-r", "1", "-c", "4", "127.0.0.1")
        finally:
            await device.stop()

    runs = run_async(scenario())
    assert _values(runs["holding"][1]) == {1: {0: 16890, 1: 0, 2: 65535}}
    assert _values(runs["input"][1]) == {1: {10: 1234}}
    assert _values(runs["coil"][1]) == {1: {0: 1, 1: 0, 2: 1}}
    assert _values(runs["discrete"][1]) == {1: {4: 1}}
    code, _, err = runs["missing"]
    assert code != 0
    assert "Illegal data address" in err
    assert _values(run_async(golden_convention())[1]) == {1: {1: 0, 2: 65535, 3: 0, 4: 0}}


def test_mbpoll_reads_three_units_over_rtu_on_a_pty(tmp_path: Path) -> None:
    """Over a socat pty pair, mbpoll reads units 1, 2 and 3 of the server; a silent one fails."""
    device = FakeModbusDevice(
        {unit: UnitData(holding={0: 100 * unit, 1: 100 * unit + 1}) for unit in (1, 2, 3)}
    )

    async def scenario(server_end: str, client_end: str) -> tuple[tuple[int, str, str], ...]:
        await device.start_rtu(server_end)
        rtu = ("-m", "rtu", "-b", "19200", "-P", "none", "-t", "4", "-r", "0", "-c", "2")
        try:
            all_units = await _mbpoll(*rtu, "-a", "1,2,3", client_end)
            device.stop_answering(2)
            silent = await _mbpoll(*rtu, "-a", "2", client_end)
            return all_units, silent
        finally:
            await device.stop()

    with socat_pty_pair(tmp_path) as (server_end, client_end):
        (code, out, err), silent = run_async(scenario(server_end, client_end))
    assert code == 0, err
    assert _values(out) == {1: {0: 100, 1: 101}, 2: {0: 200, 1: 201}, 3: {0: 300, 1: 301}}
    assert silent[0] != 0
    assert "timed out" in silent[2].lower() or "timeout" in silent[2].lower()
