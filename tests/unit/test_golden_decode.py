"""Golden cases: raw registers of every shipped profile decode to hand-checked readings.

Each folder `tests/firmware_profiles/<profile-stem>/` with a `registers.json` is one case (the
format is in `tests/firmware_profiles/README.md`). The raw words there were computed with
`struct.pack`, not with our codec, and `expected.jsonl` holds the values a technician reads off
the device's display: so a byte-order or scaling mistake in the decoder shows up here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent._model import BlockResult, Quality, ReadRequest
from edge_agent._planner import compile_plan
from edge_agent._profile import Profile, ProfileLibrary, load_profile

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "firmware_profiles"
CASES = ROOT / "tests" / "firmware_profiles"
TS_MS = 1_763_805_599_000
GOLDEN = sorted(path.parent for path in CASES.glob("*/registers.json"))


def profile_for(case: Path) -> Profile:
    """A case's own `profile.yaml`, else the shipped profile named like the folder."""
    own = case / "profile.yaml"
    return load_profile(own if own.exists() else PROFILES / f"{case.name}.yaml")


def load_registers(case: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((case / "registers.json").read_text())
    return data


def serve(registers: dict[str, Any], request: ReadRequest) -> BlockResult:
    """Answer one request from registers.json as a device would; unlisted addresses read 0."""
    table: dict[str, Any] = registers.get(request.kind, {})
    span = range(request.address, request.address + request.count)
    if request.kind in {"coil", "discrete"}:
        return BlockResult(TS_MS, bits=[bool(table.get(str(a), False)) for a in span])
    return BlockResult(TS_MS, words=[int(table.get(str(a), 0)) for a in span])


def expected_readings(case: Path) -> dict[str, dict[str, Any]]:
    lines = (case / "expected.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    by_signal = {row["signal"]: row for row in rows}
    assert len(by_signal) == len(rows), "expected.jsonl names a signal twice"
    return by_signal


def test_every_shipped_profile_has_a_golden_case() -> None:
    """Adding a profile without golden data fails: every profile is proven by a case."""
    shipped = {path.stem for path in PROFILES.glob("*.yaml")}
    assert shipped
    assert shipped <= {case.name for case in GOLDEN}


@pytest.mark.parametrize("case", GOLDEN, ids=[case.name for case in GOLDEN])
def test_registers_decode_to_the_expected_readings(case: Path) -> None:
    """Every signal decodes to its hand-checked value and type, or is bad with its reason."""
    profile = profile_for(case)
    registers = load_registers(case)
    plan = compile_plan(profile, asset="golden", unit=registers["unit"])
    results = {request: serve(registers, request) for request in plan.requests}

    readings = plan.decode(results)

    expected = expected_readings(case)
    assert sorted(r.signal for r in readings) == sorted(expected)
    for reading in readings:
        want = expected[reading.signal]
        assert reading.ts_ms == TS_MS
        assert reading.quality == Quality(want["quality"]), reading
        if reading.quality is Quality.GOOD:
            # Same value *and* type: the type is the signal's InfluxDB field type.
            assert (reading.signal, reading.value) == (reading.signal, want["value"])
            assert type(reading.value) is type(want["value"]), reading
        else:
            assert reading.reason == want["reason"], reading


@pytest.mark.parametrize("case", GOLDEN, ids=[case.name for case in GOLDEN])
def test_registers_identify_their_profile(case: Path) -> None:
    """The identification registers in a case select that case's profile from the library."""
    library = ProfileLibrary.load(PROFILES)
    registers = load_registers(case)
    unit = registers["unit"]
    requests = library.identification_requests(unit=unit)
    results = {request: serve(registers, request) for request in requests}

    selection = library.select(results, unit=unit)

    assert selection.profile is not None, selection.reason
    assert selection.profile.profile_id == case.name
    assert f"unit {unit} is" in selection.reason


@pytest.mark.parametrize("case", GOLDEN, ids=[case.name for case in GOLDEN])
def test_registers_json_is_well_formed(case: Path) -> None:
    """registers.json follows the documented format, so the Modbus server fixture can serve it."""
    registers = load_registers(case)
    assert set(registers) <= {"unit", "holding", "input", "coil", "discrete", "_comment", "_notes"}
    assert isinstance(registers["unit"], int)
    assert 0 <= registers["unit"] <= 255
    for kind in ("holding", "input"):
        for address, word in registers.get(kind, {}).items():
            assert 0 <= int(address) <= 65535
            assert isinstance(word, int)
            assert 0 <= word <= 0xFFFF
    for kind in ("coil", "discrete"):
        for address, bit in registers.get(kind, {}).items():
            assert 0 <= int(address) <= 65535
            assert isinstance(bit, bool)
