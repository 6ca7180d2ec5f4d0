"""Compiling a config for the agent, and identification, with a fake link (no network)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from edge_agent._agent_devices import (
    CompiledAgent,
    IdentifyPlan,
    Selection,
    channel_key,
    compile_agent,
    identify,
    read_once,
    read_requests,
)
from edge_agent._config import parse_config
from edge_agent._exceptions import ConfigError
from edge_agent._model import BlockResult, Quality, ReadRequest
from edge_agent._preprocess import DeadbandConfig

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "firmware_profiles"
CASES = ROOT / "tests" / "firmware_profiles"
PUMP = "aquaflo_cpv150_2.x"


class RegistersLink:
    """A `ModbusLink` answering from a golden registers.json; silent when `silent` is set."""

    def __init__(self, case: str, *, silent: str | None = None) -> None:
        self.registers: dict[str, Any] = json.loads((CASES / case / "registers.json").read_text())
        self.silent = silent
        self.sent: list[ReadRequest] = []
        self.closed = False

    async def read(self, request: ReadRequest) -> BlockResult:
        """Answer from the registers, as a device that reads unlisted addresses as 0."""
        self.sent.append(request)
        if self.silent is not None or request.unit != self.registers["unit"]:
            return BlockResult(ts_ms=1, error=self.silent or "timeout")
        table = self.registers.get(request.kind, {})
        span = range(request.address, request.address + request.count)
        if request.kind in ("coil", "discrete"):
            return BlockResult(ts_ms=1, bits=[bool(table.get(str(a), False)) for a in span])
        return BlockResult(ts_ms=1, words=[int(table.get(str(a), 0)) for a in span])

    async def close(self) -> None:
        """Nothing to close."""
        self.closed = True


def _compile(devices: str, *, head: str = "") -> CompiledAgent:
    text = f"site: s\ngateway: g\nprofiles_dir: {PROFILES}\n{head}devices:\n"
    config = parse_config(text + textwrap.indent(textwrap.dedent(devices), "  "), source="e.yaml")
    return compile_agent(config, source="e.yaml")


def test_a_named_profile_is_compiled_with_the_devices_interval_and_limits() -> None:
    """`interval_s` overrides every signal's; the plan carries the device's unit and asset."""
    compiled = _compile(
        f"""\
        - name: pump-7
          asset: pump-07
          profile: {PUMP}
          interval_s: 2
          limits: {{max_registers: 8}}
          transport: {{type: tcp, host: h, unit: 7}}
        """
    )

    (device,) = compiled.devices
    assert device.plan is not None
    assert {group.interval_s for group in device.plan.groups} == {2.0}
    assert {request.unit for request in device.plan.requests} == {7}
    assert max(request.count for request in device.plan.requests) <= 8
    assert device.plan.asset == "pump-07"
    assert isinstance(device.steps[-1], DeadbandConfig)


def test_every_devices_problems_come_in_one_error() -> None:
    """An unknown profile and an unknown preprocess signal of two devices: one message."""
    with pytest.raises(ConfigError) as info:
        _compile(
            f"""\
            - name: a
              asset: a
              profile: acme_nope
              transport: {{type: tcp, host: h}}
            - name: b
              asset: b
              profile: {PUMP}
              transport: {{type: tcp, host: h2}}
              preprocess: {{deadbands: {{nope: {{deadband_abs: 1}}}}}}
            """
        )

    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith('e.yaml: device "a": profile must name a profile in profiles_dir')
    assert lines[0].endswith("Got 'acme_nope' instead.")
    assert lines[1].startswith('e.yaml: device "b": preprocess.deadbands.nope must name a signal')


def test_an_auto_devices_rules_are_checked_against_every_identifiable_profile() -> None:
    """`profile: auto` has no plan until identified; its rule names must exist in some profile."""
    compiled = _compile(
        """\
        - name: p
          asset: p
          profile: auto
          transport: {type: tcp, host: h}
          preprocess: {aggregate: {signals: [spindle_speed_rpm], window_s: 5}}
        """
    )
    (device,) = compiled.devices
    assert (device.auto, device.plan, device.steps) == (True, None, ())

    with pytest.raises(ConfigError, match="must name a signal of the identifiable profiles"):
        _compile(
            """\
            - name: p
              asset: p
              profile: auto
              transport: {type: tcp, host: h}
              preprocess: {aggregate: {signals: [warp_factor], window_s: 5}}
            """
        )


def test_identification_selects_the_profile_and_compiles_it() -> None:
    """The identification registers choose the profile; the device is then compiled with it."""
    compiled = _compile(
        """\
        - name: p
          asset: p-1
          profile: auto
          transport: {type: tcp, host: h, unit: 1}
          preprocess: {aggregate: {signals: [spindle_speed_rpm], window_s: 5}}
        """
    )
    (device,) = compiled.devices
    link = RegistersLink(PUMP)

    found = asyncio.run(identify(link, compiled.library, unit=1))

    assert found.silent is None
    assert found.selection.profile is not None
    identified = compiled.identified(device, found.selection.profile)
    assert identified.profile is not None
    assert identified.profile.profile_id == PUMP
    assert identified.plan is not None
    readings = asyncio.run(read_once(link, identified.plan))
    assert {r.signal for r in readings if r.quality is Quality.GOOD} >= {"flow_m3_h"}


def test_a_silent_device_costs_one_request_not_one_per_register() -> None:
    """After a timeout, the remaining requests are not sent and carry the same reason."""
    link = RegistersLink(PUMP, silent="timeout")
    requests = [ReadRequest("holding", 1, a, 1) for a in range(5)]

    results = asyncio.run(read_requests(link, requests))

    assert len(link.sent) == 1
    assert {r.error for r in results.values()} == {"timeout"}


def test_a_silent_device_is_not_identified_and_says_why() -> None:
    """No answer: the identification carries the silence reason, not a mismatch."""
    compiled = _compile("- {name: p, asset: p, profile: auto, transport: {type: tcp, host: h}}\n")
    found = asyncio.run(
        identify(RegistersLink(PUMP, silent="disconnected"), compiled.library, unit=1)
    )
    assert (found.selection.profile, found.silent, found.reason) == (
        None,
        "disconnected",
        "disconnected",
    )


def test_identify_plan_reports_a_match_once_and_yields_no_readings() -> None:
    """Polled by a worker, the identification plan calls back once when a profile matches."""
    compiled = _compile("- {name: p, asset: p, profile: auto, transport: {type: tcp, host: h}}\n")
    calls: list[Selection] = []
    plan = IdentifyPlan(library=compiled.library, unit=1, interval_s=5, on_identified=calls.append)
    link = RegistersLink(PUMP)
    (group,) = plan.groups
    assert group.interval_s == 5

    for _ in range(2):
        results = asyncio.run(read_requests(link, group.requests))
        assert plan.decode(results) == []

    assert len(calls) == 1
    assert calls[0].profile is not None
    assert calls[0].profile.profile_id == PUMP


def test_channels_group_devices_as_the_sources_do() -> None:
    """One channel per RTU bus, per TCP host and port, per line device."""
    config = parse_config(
        textwrap.dedent(
            """\
            site: s
            gateway: g
            buses: {b1: {port: /dev/null}}
            devices:
              - {name: a, asset: a, profile: x, transport: {type: rtu, bus: b1, unit: 1}}
              - {name: b, asset: b, profile: x, transport: {type: tcp, host: h, unit: 2}}
              - name: c
                asset: c
                transport: {type: serial_line, port: /dev/ttyS0, parser: {type: csv, columns: [v]}}
            """
        )
    )
    keys = [channel_key(d) for d in config.devices]
    assert keys == [("rtu", "b1"), ("tcp", "h", "502"), ("line", "c")]
