"""`prognos-edge`: check, profiles, read (decoded and raw), run, against fake Modbus devices."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from support import FakeModbusDevice, run_async, socat_pty_pair

from edge_agent._cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "edge.example.yaml"
PROFILES = ROOT / "firmware_profiles"
CASES = ROOT / "tests" / "firmware_profiles"
PUMP = "aquaflo_cpv150_2.x"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`main()` configures structlog and the pymodbus logger: give other tests theirs back."""
    saved = structlog.get_config()
    level = logging.getLogger("pymodbus").level
    yield
    structlog.configure(**saved)
    logging.getLogger("pymodbus").setLevel(level)


@pytest.fixture
def pump_port() -> Iterator[int]:
    """A fake AquaFlo pump (golden registers) on a loopback TCP port, served from a thread."""
    device = FakeModbusDevice.from_registers_json(CASES / PUMP / "registers.json")
    with device.tcp_in_thread() as port:
        yield port


def _write_config(folder: Path, devices: str, *, head: str = "") -> Path:
    path = folder / "edge.yaml"
    text = f"site: plant1\ngateway: gw-1\nprofiles_dir: {PROFILES}\n{head}devices:\n"
    path.write_text(text + textwrap.indent(textwrap.dedent(devices), "  "))
    return path


def _pump_config(folder: Path, port: int, *, profile: str = PUMP) -> Path:
    return _write_config(
        folder,
        f"""\
        - name: pump-7
          asset: pump-07
          profile: {profile}
          transport: {{type: tcp, host: 127.0.0.1, port: {port}, unit: 1, timeout_s: 0.5}}
        - name: dead-1
          asset: dead-01
          profile: {PUMP}
          transport: {{type: tcp, host: 127.0.0.1, port: 1, unit: 1, timeout_s: 0.3}}
        """,
    )


# ---------------------------------------------------------------- check


def test_check_passes_on_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    """The example config and every profile it references are valid; each device's plan shows."""
    assert main(["check", str(EXAMPLE)]) == 0

    out = capsys.readouterr().out
    for name in ("boiler-2", "pump-7", "pump-8", "flowmeter-1", "scale-1", "analyser-1"):
        assert f'device "{name}"' in out
    assert "profile: airtek_sc75_4.2" in out
    assert "profile: aquaflo_cpv150_2.x" in out
    assert "profile: auto, identified at start" in out
    assert "requests per poll cycle: 8, theoretical minimum 8 (the minimum)" in out
    assert "#  every" in out  # the plan table of `plan.describe()`
    assert out.rstrip().endswith("OK")


def test_check_reports_a_broken_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken config exits 2 with one line naming the file, the device, the key and the value."""
    config = _write_config(
        tmp_path,
        f"""\
        - name: pump-7
          asset: pump-07
          profile: {PUMP}
          transport: {{type: tcp, host: 10.0.0.7, unit: 300}}
        """,
    )

    assert main(["check", str(config)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f'{config}: device "pump-7": transport.unit must be at most 255. Got 300 instead.'
    ]


def test_check_names_a_preprocess_signal_the_profile_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pre-processing rules are checked against the profile at load, with a suggestion."""
    config = _write_config(
        tmp_path,
        f"""\
        - name: pump-7
          asset: pump-07
          profile: {PUMP}
          transport: {{type: tcp, host: 10.0.0.7}}
          preprocess: {{aggregate: {{signals: [flow_m3h], window_s: 60}}}}
        """,
    )

    assert main(["check", str(config)]) == 2

    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f'{config}: device "pump-7": preprocess.aggregate.signals[0] must name a signal of the '
        "device (did you mean 'flow_m3_h'?). Got 'flow_m3h' instead."
    )


# ---------------------------------------------------------------- profiles


def test_profiles_lists_the_shipped_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    """`profiles DIR` shows each profile's model, firmware, signals and consumables."""
    assert main(["profiles", str(PROFILES)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["profile", "vendor"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert sorted(rows) == [
        "airtek_sc75_4.2",
        "aquaflo_cpv150_2.x",
        "fluidsense_hcm10_1.0",
        "millrite_spx12_5.1",
        "turbomon_tm21_1.0",
    ]
    assert "AquaFlo CPV-150" in rows[PUMP]
    assert "mechanical_seal" in rows[PUMP]  # a consumable
    assert "'~=4.2'" not in rows["airtek_sc75_4.2"]
    assert "~=4.2" in rows["airtek_sc75_4.2"]


def test_profiles_plan_prints_one_profiles_read_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """`profiles --plan NAME` prints the planner's table for that profile."""
    assert main(["profiles", str(PROFILES), "--plan", PUMP, "--unit", "7"]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"{PUMP} (AquaFlo CPV-150")
    assert "8 requests in 5 groups, theoretical minimum 8" in out


def test_profiles_plan_of_an_unknown_profile_is_a_config_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unknown profile name exits 2 and lists the known ones."""
    assert main(["profiles", str(PROFILES), "--plan", "nope"]) == 2
    assert "known profiles: airtek_sc75_4.2" in capsys.readouterr().err


# ---------------------------------------------------------------- read


def test_read_prints_the_decoded_table(
    tmp_path: Path, pump_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """`read CONFIG --device` prints signal, value, unit and quality (with the reason)."""
    config = _pump_config(tmp_path, pump_port)

    assert main(["read", str(config), "--device", "pump-7"]) == 0

    out = capsys.readouterr().out
    assert f"device \"pump-7\" (asset 'pump-07'), profile {PUMP}" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:]}
    assert rows["flow_m3_h"] == ["flow_m3_h", "42.5", "m3/h", "good"]
    assert rows["fault_code"] == ["fault_code", "high_vibration", "good"]
    assert rows["bearing_temp_c"] == ["bearing_temp_c", "degC", "bad:", "sentinel"]


def test_read_json_identifies_an_auto_device(
    tmp_path: Path, pump_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--json` prints one object; `profile: auto` is identified from the device first."""
    config = _pump_config(tmp_path, pump_port, profile="auto")

    assert main(["read", str(config), "--device", "pump-7", "--json"]) == 0

    data = json.loads(capsys.readouterr().out)
    assert (data["device"], data["asset"], data["profile"]) == ("pump-7", "pump-07", PUMP)
    by_signal = {r["signal"]: r for r in data["readings"]}
    assert by_signal["flow_m3_h"]["value"] == 42.5
    assert by_signal["flow_m3_h"]["unit"] == "m3/h"
    assert by_signal["bearing_temp_c"]["reason"] == "sentinel"


def test_read_of_a_dead_device_is_one_line_and_exit_1(
    tmp_path: Path, pump_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """A device that does not answer exits 1 with one line naming it and the reason."""
    config = _pump_config(tmp_path, pump_port)

    assert main(["read", str(config), "--device", "dead-1"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f'{config}: device "dead-1": did not answer (disconnected)')


def test_read_raw_shows_every_byte_order_and_the_right_one_reads_the_value(
    pump_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Input 0-1 hold 42.5 as float32 CDAB: that row shows 42.5, the other orders do not."""
    argv = ["read", "--raw", "--host", "127.0.0.1", "--port", str(pump_port)]
    argv += ["--kind", "input", "--address", "0", "--count", "2"]

    assert main(argv) == 0

    out = capsys.readouterr().out
    assert "0x422A" in out
    orders = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert set(orders) >= {"ABCD", "BADC", "CDAB", "DCBA"}
    assert orders["CDAB"][2] == "42.5"
    assert all(orders[o][2] != "42.5" for o in ("ABCD", "BADC", "DCBA"))


def test_read_raw_takes_host_and_unit_from_a_config_device(
    tmp_path: Path, pump_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """`read --raw CONFIG --device NAME` reads the device's endpoint; an exception is exit 1."""
    config = _pump_config(tmp_path, pump_port)

    assert main(["read", "--raw", str(config), "--device", "pump-7", "--address", "100"]) == 0
    assert "0x0B54" in capsys.readouterr().out  # holding 100: speed setpoint 2900

    assert main(["read", "--raw", str(config), "--device", "dead-1", "--address", "0"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert "reading holding 0-1 failed: disconnected" in line


def test_read_raw_over_rtu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--serial-port` reads the same registers over Modbus RTU (socat pty pair)."""
    device = FakeModbusDevice.from_registers_json(CASES / PUMP / "registers.json")

    async def serve_and_read(server_end: str, bus_end: str) -> int:
        await device.start_rtu(server_end)
        try:
            argv = ["read", "--raw", "--serial-port", bus_end, "--unit", "1", "--kind", "input"]
            argv += ["--address", "0", "--timeout", "0.5"]
            # The CLI runs its own event loop: give it a thread, keep serving on this one.
            return await asyncio.to_thread(main, argv)
        finally:
            await device.stop()

    with socat_pty_pair(tmp_path) as (server_end, bus_end):
        assert run_async(serve_and_read(server_end, bus_end)) == 0

    out = capsys.readouterr().out
    assert "rtu " in out
    assert any(line.split()[:1] == ["CDAB"] and "42.5" in line for line in out.splitlines())


def test_read_raw_needs_an_address_and_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    """Options that do not fit together exit 2 with a usage message."""
    with pytest.raises(SystemExit) as info:
        main(["read", "--raw", "--address", "0"])
    assert info.value.code == 2
    assert "--host HOST, --serial-port DEVICE, or CONFIG --device NAME" in capsys.readouterr().err


# ---------------------------------------------------------------- help and run


@pytest.mark.parametrize("command", ["check", "profiles", "read", "run", "validate"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`prognos-edge COMMAND --help` explains the command and exits 0."""
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"prognos-edge {command}" in capsys.readouterr().out


def test_run_help_says_readings_go_to_stdout_not_mqtt(capsys: pytest.CaptureFixture[str]) -> None:
    """Without an `mqtt` section, `run` says plainly that readings go to stdout."""
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "stdout" in text
    assert "Without one: readings go to stdout" in text


def test_run_writes_json_lines_and_stops_cleanly_on_sigterm(tmp_path: Path, pump_port: int) -> None:
    """`run` prints one JSON reading per line; SIGTERM exits 0 with no warning or traceback."""
    config = _write_config(
        tmp_path,
        f"""\
        - name: pump-7
          asset: pump-07
          profile: auto
          interval_s: 0.2
          transport: {{type: tcp, host: 127.0.0.1, port: {pump_port}, unit: 1, timeout_s: 0.5}}
          preprocess: {{operating_hours: [{{signal: running}}]}}
        """,
        head="state_dir: state\n",
    )
    env = {**os.environ, "PYTHONDEVMODE": "1", "PYTHONWARNINGS": "error"}
    out_path, err_path = tmp_path / "stdout.jsonl", tmp_path / "stderr.log"
    # Files, not pipes: nothing is lost between a first partial read and the final one.
    with out_path.open("w") as out, err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", str(config), "--log-format", "json"],
            stdout=out,
            stderr=err_file,
            cwd=ROOT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 20
            while out_path.stat().st_size == 0 and time.monotonic() < deadline:
                assert proc.poll() is None, err_path.read_text()
                time.sleep(0.05)
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:  # pragma: no cover - only when the test already failed
                proc.kill()
                proc.wait()
    err = err_path.read_text()

    assert proc.returncode == 0, err
    readings = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert {r["asset"] for r in readings} == {"pump-07"}
    assert {"signal", "ts", "value", "quality"} <= set(readings[0])
    flow = [r for r in readings if r["signal"] == "flow_m3_h"]
    assert flow, (readings, err)
    assert flow[0]["value"] == 42.5
    assert any(r["signal"] == "operating_hours" for r in readings)
    events = [json.loads(line)["event"] for line in err.splitlines()]
    assert events[:2] == ["mqtt_not_configured", "agent_starting"]
    assert "device_identified" in events
    assert events[-2:] == ["agent_stop_requested", "agent_stopped"]
    assert (tmp_path / "state" / "usage.json").is_file()
