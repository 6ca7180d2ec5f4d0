"""Firmware profiles: shipped ones load, broken ones fail with the right message, selection works.

Broken-profile cases are data (STYLE.md 5): each folder `tests/firmware_profiles/<case>/` with an
`init.err` holds a `profile.yaml` and, one per line, the texts its load error must contain.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import prognos_contract
from edge_agent._exceptions import (
    BufferCorrupt,
    ConfigError,
    DeviceError,
    DeviceException,
    DeviceTimeout,
    EdgeAgentError,
    NotConnected,
    PublishError,
    Rejected,
)
from edge_agent._model import BlockResult, ReadRequest
from edge_agent._profile import (
    Profile,
    ProfileError,
    ProfileLibrary,
    VersionSpec,
    load_profile,
    parse_profile,
    parse_version,
    profile_json_schema_text,
)

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "firmware_profiles"
CASES = ROOT / "tests" / "firmware_profiles"
SHIPPED = sorted(PROFILES.glob("*.yaml"))
BROKEN = sorted(path.parent for path in CASES.glob("*/init.err"))

MINIMAL = """\
vendor: Acme
model: P-1
firmware: "{firmware}"
signals:
  - {{name: flow_m3_h, kind: input, address: 0, type: float32}}
"""


def write_profile(
    folder: Path, name: str, *, firmware: str, model: str = "P-1", extra: str = ""
) -> Path:
    path = folder / name
    path.write_text(MINIMAL.format(firmware=firmware).replace("P-1", model) + extra)
    return path


# ---------------------------------------------------------------- shipped profiles


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_profile_loads(path: Path) -> None:
    """Each profile in firmware_profiles/ is valid and knows the file it came from."""
    profile = load_profile(path)
    assert profile.path == path
    assert profile.profile_id == path.stem
    assert profile.signals


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_profiles_follow_the_naming_rule(path: Path) -> None:
    """Files are named <vendor>_<model>_<fw>.yaml, lower case, model without punctuation."""
    profile = load_profile(path)
    vendor = re.sub(r"[^a-z0-9]", "", profile.vendor.lower())
    model = re.sub(r"[^a-z0-9]", "", profile.model.lower())
    assert re.fullmatch(rf"{vendor}_{model}_[0-9][0-9a-z.]*", path.stem)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_profiles_identify_and_declare_maintenance_data(path: Path) -> None:
    """Every shipped profile can be auto-selected and tells the cloud how to maintain the model."""
    profile = load_profile(path)
    assert profile.identification is not None
    assert profile.identification.firmware_version is not None
    assert profile.consumables
    assert profile.failure_modes
    assert profile.spare_parts
    assert any(signal.enum for signal in profile.signals), "a fault code enum"
    assert {signal.byte_order for signal in profile.signals if signal.words > 1} != {"ABCD"}


def test_shipped_profiles_form_a_library() -> None:
    """The shipped profiles load as one library without overlaps."""
    library = ProfileLibrary.load(PROFILES)
    assert len(library) == len(SHIPPED) >= 3
    assert {p.profile_id for p in library} == {p.stem for p in SHIPPED}


def test_consumable_thresholds_are_in_their_signals_units() -> None:
    """The shipped consumables use realistic thresholds (filters in bar, tool wear in minutes)."""
    compressor = load_profile(PROFILES / "airtek_sc75_4.2.yaml")
    thresholds = {c.name: (c.signal, c.threshold) for c in compressor.consumables}
    assert thresholds["oil_separator"] == ("separator_dp_bar", 0.6)
    assert thresholds["air_filter"] == ("air_filter_dp_bar", 0.05)
    assert compressor.signal("separator_dp_bar").unit == "bar"
    spindle = load_profile(PROFILES / "millrite_spx12_5.1.yaml")
    tool = next(c for c in spindle.consumables if c.name == "cutting_tool")
    assert (tool.signal, tool.threshold, tool.replace_when) == ("tool_wear_min", 200, "above")
    assert spindle.signal("tool_wear_min").unit == "min"


# ---------------------------------------------------------------- the JSON Schema


def test_committed_schema_matches_the_model() -> None:
    """firmware_profiles/profile.schema.json is exactly what the pydantic model generates.

    To regenerate:
    .venv/bin/python -c "from edge_agent._profile import profile_json_schema_text as t;
    open('firmware_profiles/profile.schema.json', 'w').write(t())"
    """
    assert (PROFILES / "profile.schema.json").read_text() == profile_json_schema_text()


def _jsonable(value: Any) -> Any:
    """YAML data as JSON would carry it (mapping keys become strings)."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_profiles_validate_against_the_schema(path: Path) -> None:
    """An editor using the published schema accepts every shipped profile."""
    schema = json.loads((PROFILES / "profile.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = _jsonable(yaml.safe_load(path.read_text()))
    errors = [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(data)]
    assert errors == []


def test_schema_rejects_what_the_loader_rejects() -> None:
    """The schema is not a rubber stamp: a typo'd key and a bad byte order fail it too."""
    schema = json.loads((PROFILES / "profile.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    good = _jsonable(yaml.safe_load(MINIMAL.format(firmware="2.1")))
    assert list(validator.iter_errors(good)) == []
    typo = json.loads(json.dumps(good))
    typo["signals"][0]["adress"] = 1
    assert list(validator.iter_errors(typo))
    order = json.loads(json.dumps(good))
    order["signals"][0]["byte_order"] = "ABDC"
    assert list(validator.iter_errors(order))


# ---------------------------------------------------------------- broken profiles


@pytest.mark.parametrize("case", BROKEN, ids=[case.name for case in BROKEN])
def test_broken_profile_fails_with_its_message(case: Path) -> None:
    """Each broken profile fails to load, and the message names file, key, rule and value."""
    with pytest.raises(ProfileError) as caught:
        load_profile(case / "profile.yaml")
    message = str(caught.value)
    for expected in (case / "init.err").read_text().splitlines():
        if expected.strip():
            assert expected in message
    assert message.startswith(str(case / "profile.yaml") + ": ")
    assert caught.value.path == str(case / "profile.yaml")


def test_the_message_has_the_style_guide_shape(tmp_path: Path) -> None:
    """file: key must be one of ... Got ... instead. (STYLE.md 4), with structured attributes."""
    path = tmp_path / "acme_pump_2.1.yaml"
    text = MINIMAL.format(firmware="2.1") + "    byte_order: ABDC\n"
    path.write_text(
        text.replace("type: float32}", "type: float32, byte_order: ABDC}").replace(
            "    byte_order: ABDC\n", ""
        )
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    error = caught.value
    assert str(error) == (
        f"{path}: signals[0].byte_order must be one of 'ABCD','BADC','CDAB','DCBA'. "
        "Got 'ABDC' instead. (line 5)"
    )
    assert isinstance(error, ConfigError)
    assert error.key == "signals[0].byte_order"
    [issue] = error.issues
    assert (issue.key, issue.value, issue.line) == ("signals[0].byte_order", "ABDC", 5)
    assert issue.rule == "must be one of 'ABCD','BADC','CDAB','DCBA'"


def test_an_unreadable_file_is_a_profile_error(tmp_path: Path) -> None:
    """A missing file is reported with its path, not as a traceback."""
    with pytest.raises(ProfileError, match=r"missing\.yaml: cannot read the profile: No such file"):
        load_profile(tmp_path / "missing.yaml")


def test_an_empty_file_is_not_a_profile() -> None:
    """An empty document is refused with the shape a profile must have."""
    with pytest.raises(ProfileError, match="the document must be a mapping of profile keys"):
        parse_profile("", path="empty.yaml")


def test_yaml_anchors_and_merge_keys_still_work() -> None:
    """The duplicate-key check does not break YAML merge keys, which long register maps use."""
    profile = parse_profile(
        """\
vendor: Acme
model: P-1
firmware: "2.1"
signals:
  - &temp {name: oil_temp_c, kind: input, address: 0, type: int16, scale: 0.1, unit: degC}
  - <<: *temp
    name: water_temp_c
    address: 1
"""
    )
    water = profile.signal("water_temp_c")
    assert (water.address, water.scale, water.unit) == (1, 0.1, "degC")


# ---------------------------------------------------------------- canonicalisation and defaults


def test_aliases_are_canonicalised_at_load() -> None:
    """Byte orders, types and tables are canonical after loading, whatever the file spelled."""
    profile = parse_profile(
        """\
vendor: Acme
model: P-1
firmware: "2.1"
defaults: {byte_order: LSW-BE, interval_s: 2}
signals:
  - {name: a, kind: holding_registers, address: 0, type: REAL}
  - {name: b, kind: input_register, address: 2, type: DINT, byte_order: big}
  - {name: c, kind: Holding, address: 4, type: lreal, byte_order: little, interval_s: 0.5}
  - {name: d, kind: coils, address: 0, type: BOOL}
  - {name: e, kind: holding, address: 8, type: STRING, length_words: 2}
  - {name: f, kind: discrete_inputs, address: 0, type: boolean}
"""
    )
    got = [(s.kind, s.type, s.byte_order, s.interval_s) for s in profile.signals]
    assert got == [
        ("holding", "float32", "CDAB", 2.0),
        ("input", "int32", "ABCD", 2.0),
        ("holding", "float64", "DCBA", 0.5),
        ("coil", "bool", "ABCD", 2.0),
        ("holding", "string", "ABCD", 2.0),  # text ignores the default byte order
        ("discrete", "bool", "ABCD", 2.0),
    ]


def test_value_types_are_what_the_cloud_stores() -> None:
    """Each signal publishes one type: scaled integers are floats, enums labels or codes."""
    profile = parse_profile(
        """\
vendor: Acme
model: P-1
firmware: "*"
signals:
  - {name: count, kind: input, address: 0, type: uint16}
  - {name: scaled, kind: input, address: 1, type: uint16, scale: 0.1}
  - {name: offset, kind: input, address: 2, type: int16, offset: -40}
  - {name: real, kind: input, address: 3, type: float32}
  - {name: state, kind: input, address: 5, type: uint16, enum: {0: stopped}}
  - {name: state_code, kind: input, address: 6, type: uint16, enum: {0: stopped}, enum_value: code}
  - {name: flag, kind: input, address: 7, type: bool, bit: 2}
  - {name: text, kind: input, address: 8, type: string, length_words: 2}
"""
    )
    assert {s.name: s.value_type for s in profile.signals} == {
        "count": "int",
        "scaled": "float",
        "offset": "float",
        "real": "float",
        "state": "str",
        "state_code": "int",
        "flag": "bool",
        "text": "str",
    }


def test_sentinels_accept_one_value_or_a_list() -> None:
    """nan_value: 0x8000 and nan_value: [0x8000, 0x7FFF] both load as tuples."""
    profile = parse_profile(
        MINIMAL.format(firmware="1")
        + "  - {name: t1, kind: input, address: 2, type: int16, nan_value: 0x8000}\n"
        + "  - {name: t2, kind: input, address: 3, type: int16, nan_value: [0x8000, -1]}\n"
    )
    assert profile.signal("t1").nan_value == (0x8000,)
    assert profile.signal("t2").nan_value == (0x8000, -1)


def test_profile_signal_lookup_raises_key_error() -> None:
    """Profile.signal names the missing signal."""
    profile = parse_profile(MINIMAL.format(firmware="1"))
    with pytest.raises(KeyError, match="nope"):
        profile.signal("nope")


def test_signal_names_follow_the_contract_pattern() -> None:
    """Signal names are valid MQTT contract v1 names (same pattern, same reserved set)."""
    profile = load_profile(PROFILES / "aquaflo_cpv150_2.x.yaml")
    for signal in profile.signals:
        assert re.fullmatch(prognos_contract.NAME_PATTERN, signal.name)
        assert signal.name not in prognos_contract.RESERVED_NAMES


# ---------------------------------------------------------------- firmware versions


@pytest.mark.parametrize(
    ("spec", "version", "matches"),
    [
        ("2.1", "2.1", True),
        ("2.1", "2.1.0", True),
        ("2.1", "v2.1", True),
        ("2.1", "2.10", False),
        (">=2.1,<3", "2.1", True),
        (">=2.1,<3", "2.10", True),
        (">=2.1,<3", "2.9.9", True),
        (">=2.1,<3", "3.0", False),
        (">=2.1,<3", "2.0.9", False),
        ("~=5.1", "5.12", True),
        ("~=5.1", "5.0", False),
        ("~=5.1", "6.0", False),
        ("~=2.1.3", "2.1.9", True),
        ("~=2.1.3", "2.2", False),
        ("2.*", "2.99", True),
        ("2.x", "3", False),
        ("==2.1.*", "2.1.7", True),
        ("!=2.1.*", "2.1.7", False),
        ("!=2.3", "2.4", True),
        (">2,<=2.5", "2.5", True),
        (">2,<=2.5", "2", False),
        ("*", "17.3", True),
        ("*", "garbage", False),
        (">=1", "1.0-beta", False),
    ],
)
def test_firmware_specifiers(spec: str, version: str, matches: bool) -> None:
    """Versions compare numerically per component; specifiers combine with commas."""
    assert (version in VersionSpec(spec)) is matches


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        (">=2.0,<3", "2.5", True),
        (">=2.0,<3", ">=3,<4", False),
        (">=2.0,<=3", ">=3,<4", True),
        ("~=4.2", "4.*", True),
        ("~=4.2", "4.1", False),
        ("2.*", "3.*", False),
        ("*", "1.0", True),
        ("2.1", "2.1.0", True),
        ("<2", ">2", False),
    ],
)
def test_firmware_specifier_overlap(a: str, b: str, overlap: bool) -> None:
    """Two specifiers overlap when some version satisfies both."""
    assert VersionSpec(a).overlaps(VersionSpec(b)) is overlap
    assert VersionSpec(b).overlaps(VersionSpec(a)) is overlap


@pytest.mark.parametrize("spec", ["", ">=2.1,<<3", "2.1-beta", "~=2", ">=2.*", ">=3,<2", "==2,==3"])
def test_bad_firmware_specifiers_raise(spec: str) -> None:
    """A specifier that is not one, or that no version satisfies, is refused."""
    with pytest.raises(ValueError, match=re.escape(repr(spec.strip()))):
        VersionSpec(spec)


def test_parse_version_strips_trailing_zeros() -> None:
    """2.1 and 2.1.0 are the same firmware."""
    assert parse_version("2.1.0") == parse_version("v2.1") == (2, 1)
    with pytest.raises(ValueError, match="numbers separated by dots"):
        parse_version("2.1b")


# ---------------------------------------------------------------- the library


def test_two_files_for_one_model_and_firmware_name_both(tmp_path: Path) -> None:
    """Duplicates of (model, firmware) are an error naming both files."""
    first = write_profile(tmp_path, "acme_p1_2.1.yaml", firmware="2.1")
    second = write_profile(tmp_path, "acme_p1_2.1_copy.yaml", firmware="2.1")
    with pytest.raises(ProfileError) as caught:
        ProfileLibrary.load(tmp_path)
    message = str(caught.value)
    assert str(first) in message
    assert str(second) in message
    assert "is already declared by" in message


def test_overlapping_firmware_ranges_name_both_files(tmp_path: Path) -> None:
    """A range that overlaps another profile's of the same model is refused."""
    write_profile(tmp_path, "a.yaml", firmware=">=2.0,<3")
    write_profile(tmp_path, "b.yaml", firmware="2.5")
    write_profile(tmp_path, "c.yaml", firmware=">=3,<4")  # adjacent, not overlapping
    write_profile(tmp_path, "d.yaml", firmware="2.5", model="P-2")  # other model
    with pytest.raises(ProfileError) as caught:
        ProfileLibrary.load(tmp_path)
    lines = str(caught.value).splitlines()
    assert lines == [
        (
            f"{tmp_path / 'b.yaml'}: model 'P-1' firmware '2.5' overlaps firmware '>=2.0,<3' of "
            f"{tmp_path / 'a.yaml'}; a device could match both."
        )
    ]


def test_every_broken_file_of_a_folder_is_reported_at_once(tmp_path: Path) -> None:
    """One message lists every invalid file, so a technician fixes them in one pass."""
    write_profile(tmp_path, "a.yaml", firmware="2.1", extra="    scale: 1\n")
    (tmp_path / "b.yaml").write_text("vendor: [\n")
    write_profile(tmp_path, "c.yaml", firmware="3.1")
    with pytest.raises(ProfileError) as caught:
        ProfileLibrary.load(tmp_path)
    message = str(caught.value)
    assert f"{tmp_path / 'a.yaml'}: " in message
    assert f"{tmp_path / 'b.yaml'}: line 2, column 1: " in message
    assert len(caught.value.issues) == 2


def test_library_ignores_other_files_and_refuses_empty_folders(tmp_path: Path) -> None:
    """Only *.yaml and *.yml are profiles; a folder without any is an error."""
    (tmp_path / "README.md").write_text("# profiles\n")
    with pytest.raises(ProfileError, match="holds no profile"):
        ProfileLibrary.load(tmp_path)
    with pytest.raises(ProfileError, match="no such profile folder"):
        ProfileLibrary.load(tmp_path / "missing")
    write_profile(tmp_path, "a.yml", firmware="1")
    assert len(ProfileLibrary.load(tmp_path)) == 1


def test_find_by_model_and_firmware() -> None:
    """A device configuration naming model and firmware gets its profile, case-insensitively."""
    library = ProfileLibrary.load(PROFILES)
    assert library.find(model="cpv-150", firmware="2.4").profile_id == "aquaflo_cpv150_2.x"
    assert library.find(model="SC-75", firmware="4.9.1").profile_id == "airtek_sc75_4.2"
    assert library.get("millrite_spx12_5.1").model == "SPX-12"


def test_find_says_what_the_library_has() -> None:
    """No match names the firmware ranges of the model, or the known models."""
    library = ProfileLibrary.load(PROFILES)
    with pytest.raises(
        ProfileError, match=r"no profile for model 'CPV-150' firmware '3.0'; it has '>=2.0,<3' \("
    ):
        library.find(model="CPV-150", firmware="3.0")
    with pytest.raises(
        ProfileError,
        match=r"no profile for model 'X-1'; known models: 'CPV-150', 'HCM-10', 'SC-75', 'SPX-12'",
    ):
        library.find(model="X-1", firmware="1.0")
    with pytest.raises(ProfileError, match=r"no profile 'nope'; known profiles: airtek_sc75_4\.2,"):
        library.get("nope")


# ---------------------------------------------------------------- identification


def answer(words: list[int]) -> BlockResult:
    return BlockResult(1, words=words)


def test_identification_reads_each_register_once() -> None:
    """Identification asks for every profile's model and firmware registers, each on its own."""
    library = ProfileLibrary.load(PROFILES)
    requests = library.identification_requests(unit=4)
    assert len(requests) == len(set(requests)) == 6
    assert ReadRequest("holding", 4, 9000, 1) in requests
    assert ReadRequest("holding", 1000, 4, 1) not in requests
    assert ReadRequest("holding", 4, 1000, 4) in requests
    assert all(request.unit == 4 for request in requests)


def test_select_explains_why_nothing_matched() -> None:
    """A pump on firmware 3.0 matches the model code but not the 2.x profile, and it says so."""
    library = ProfileLibrary.load(PROFILES)
    results = {
        ReadRequest("holding", 1, 9000, 1): answer([0x0C96]),
        ReadRequest("holding", 1, 9001, 1): answer([0x0300]),
        ReadRequest("holding", 1, 1000, 4): BlockResult(1, error="exception_code_2"),
        ReadRequest("input", 1, 1000, 1): answer([0x1234]),
    }
    selection = library.select(results, unit=1)
    assert selection.profile is None
    assert selection.reason.startswith("no profile matches unit 1: ")
    assert set(selection.details) == {
        "aquaflo_cpv150_2.x: model matches, but firmware '3.0' is not in '>=2.0,<3'",
        "airtek_sc75_4.2: model code (holding 1000) not read (exception_code_2)",
        "fluidsense_hcm10_1.0: model code (input 1000) reads 4660 (0x1234), expects 18499 (0x4843)",
        "millrite_spx12_5.1: model code (input 1000) reads 4660 (0x1234), expects 21328 (0x5350)",
        "turbomon_tm21_1.0: model code (input 1000) reads 4660 (0x1234), expects 21581 (0x544D)",
    }


def test_select_reports_several_matches() -> None:
    """Two profiles that both match one device are reported, never picked at random."""
    text = """\
vendor: Acme
model: {model}
firmware: "*"
identification:
  model_code: {{kind: holding, address: 0, type: uint16, equals: 7}}
signals:
  - {{name: flow_m3_h, kind: input, address: 0, type: float32}}
"""
    library = ProfileLibrary(
        [
            parse_profile(text.format(model="A"), path="a.yaml"),
            parse_profile(text.format(model="B"), path="b.yaml"),
        ]
    )
    selection = library.select({ReadRequest("holding", 1, 0, 1): answer([7])}, unit=1)
    assert selection.profile is None
    assert selection.reason == "unit 1 matches several profiles: a, b"


def test_select_handles_garbage_answers() -> None:
    """Short answers and non-BCD firmware are reasons, not exceptions."""
    text = """\
vendor: Acme
model: P-1
firmware: "2.*"
identification:
  model_code: {kind: input, address: 0, type: uint32, equals: 0x00010002}
  firmware_version: {kind: input, address: 2, format: bcd_bytes}
signals:
  - {name: flow_m3_h, kind: input, address: 0, type: float32}
"""
    library = ProfileLibrary([parse_profile(text)])
    short = library.select({ReadRequest("input", 1, 0, 2): answer([1])}, unit=1)
    assert short.profile is None
    assert "answer is unusable" in short.reason
    not_bcd = library.select(
        {
            ReadRequest("input", 1, 0, 2): answer([1, 2]),
            ReadRequest("input", 1, 2, 1): answer([0x02FA]),
        },
        unit=1,
    )
    assert "0x02FA is not BCD" in not_bcd.reason
    bcd = library.select(
        {
            ReadRequest("input", 1, 0, 2): answer([1, 2]),
            ReadRequest("input", 1, 2, 1): answer([0x0215]),
        },
        unit=1,
    )
    assert bcd.profile is not None
    assert "firmware '2.*'" in bcd.reason


def test_profiles_without_identification_are_never_selected() -> None:
    """A profile without identification registers only comes from the device configuration."""
    library = ProfileLibrary([parse_profile(MINIMAL.format(firmware="1"), path="p.yaml")])
    assert library.identification_requests(unit=1) == ()
    selection = library.select({}, unit=1)
    assert selection.details == ("p: declares no identification registers",)


# ---------------------------------------------------------------- the exception tree


def test_exception_tree_follows_the_style_guide() -> None:
    """EdgeAgentError > ConfigError > ProfileError, DeviceError > ..., PublishError > ..."""
    assert issubclass(ProfileError, ConfigError)
    assert issubclass(ConfigError, EdgeAgentError)
    assert issubclass(DeviceTimeout, DeviceError)
    assert issubclass(DeviceException, DeviceError)
    assert issubclass(NotConnected, PublishError)
    assert issubclass(Rejected, PublishError)
    assert issubclass(BufferCorrupt, EdgeAgentError)
    assert not issubclass(BufferCorrupt, PublishError)


def test_exceptions_carry_structured_attributes() -> None:
    """Callers act on attributes, not on message text."""
    exc = DeviceException("illegal address", device="pump-07", fc=3, code=2, unit=1, address=9000)
    assert (exc.device, exc.unit, exc.address, exc.fc, exc.code) == ("pump-07", 1, 9000, 3, 2)
    assert exc.reason == "exception_code_2"
    timeout = DeviceTimeout("no answer", device="pump-07", timeout_s=1.5)
    assert (timeout.reason, timeout.timeout_s) == ("timeout", 1.5)
    rejected = Rejected("quota exceeded", packet_id=7, reason_code=0x97)
    assert (rejected.packet_id, rejected.reason_code) == (7, 0x97)
    assert BufferCorrupt("bad page", path="/var/lib/prognos/outbox.db").path.endswith("outbox.db")
    assert ConfigError("x", path="edge.yaml", key="devices[0]").key == "devices[0]"


def test_profile_model_is_frozen() -> None:
    """A loaded profile cannot be changed behind the compiled plans' back."""
    profile = load_profile(PROFILES / "aquaflo_cpv150_2.x.yaml")
    with pytest.raises(ValueError, match="frozen"):
        profile.signals[0].address = 5
    assert isinstance(profile, Profile)
