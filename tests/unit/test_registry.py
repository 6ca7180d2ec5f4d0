"""The asset registry: loading YAML and CSV, the records' rules, and the messages of bad files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cloud.registry import (
    Asset,
    AssetRegistry,
    Criticality,
    RegistryError,
    Tier,
    load_registry,
    parse_registry_csv,
    parse_registry_yaml,
)
from cloud.registry._cli import main as assets_main
from edge_agent._profile import ProfileLibrary

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "firmware_profiles"
EXAMPLE_YAML = ROOT / "config" / "assets.example.yaml"
EXAMPLE_CSV = ROOT / "config" / "assets.example.csv"

GOOD = """\
assets:
  - asset_id: pump-07
    site: plant1
    customer: Northwater
    tier: vip
    model: CPV-150
    firmware: "2.4"
    profile: aquaflo_cpv150_2.x
    serial: S-1
    asset_class: pump
    team: mech-north
    criticality: Critical
    commissioned: 2021-05-17
    operating_hours: 31250
    operating_hours_as_of: 2026-11-01
    warranty_end: 2026-05-16
    location: {lat: 52.37, lon: 4.90}
    consumables:
      mechanical_seal: {replaced_on: 2024-09-12, replaced_at_hours: 24310}
"""

HEADER = (
    "asset_id,site,customer,tier,model,firmware,profile,serial,asset_class,team,criticality,"
    "commissioned"
)
ROW = (
    "pump-07,plant1,Northwater,VIP,CPV-150,2.4,aquaflo_cpv150_2.x,S-1,pump,mech-north,high,"
    "2021-05-17"
)


@pytest.fixture(scope="module")
def library() -> ProfileLibrary:
    return ProfileLibrary.load(PROFILES)


def _errors(text: str, *, csv: bool = False, library: ProfileLibrary | None = None) -> str:
    parse = parse_registry_csv if csv else parse_registry_yaml
    source = "assets.csv" if csv else "assets.yaml"
    with pytest.raises(RegistryError) as info:
        parse(text, source=source, library=library)
    assert info.value.path == source
    return str(info.value)


def _yaml_with(**changes: str) -> str:
    """GOOD with `key: value` lines replaced (or added when new); value "DELETE" drops the key."""
    lines = GOOD.splitlines()
    for key, value in changes.items():
        index = next((i for i, line in enumerate(lines) if line[4:].startswith(f"{key}:")), None)
        if index is None:
            lines.append(f"    {key}: {value}")
            continue
        while index + 1 < len(lines) and lines[index + 1].startswith("      "):
            del lines[index + 1]  # the key's nested lines
        if value == "DELETE":
            del lines[index]
        else:
            lines[index] = f"{lines[index][:4]}{key}: {value}"
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- good files


def test_a_good_yaml_record_is_loaded_with_its_aliases_canonicalised(
    library: ProfileLibrary,
) -> None:
    """Tier and criticality accept any letter case and become their enums."""
    registry = parse_registry_yaml(GOOD, library=library)
    asset = registry.get("pump-07")
    assert asset is not None
    assert asset.tier is Tier.VIP
    assert asset.criticality is Criticality.CRITICAL
    assert asset.commissioned == dt.date(2021, 5, 17)
    assert asset.location is not None
    assert (asset.location.lat, asset.location.lon) == (52.37, 4.90)
    assert asset.consumables["mechanical_seal"].replaced_at_hours == 24310
    assert asset.profile == "aquaflo_cpv150_2.x"


def test_the_registry_answers_lookups_membership_length_and_iteration() -> None:
    """`get` returns None for an unknown asset; `in`, len() and iteration see every record."""
    registry = parse_registry_yaml(GOOD)
    assert "pump-07" in registry
    assert "pump-99" not in registry
    assert registry.get("pump-99") is None
    assert len(registry) == 1
    assert [asset.asset_id for asset in registry] == ["pump-07"]
    assert registry.sites() == ["plant1"]
    assert [a.asset_id for a in registry.at_site("plant1")] == ["pump-07"]


@pytest.mark.parametrize("path", [EXAMPLE_YAML, EXAMPLE_CSV], ids=["yaml", "csv"])
def test_the_example_files_are_valid_against_the_shipped_profiles(path: Path) -> None:
    registry = load_registry(path, profiles_dir=PROFILES)
    assert len(registry) == 5
    assert {a.profile for a in registry} == {
        "airtek_sc75_4.2",
        "aquaflo_cpv150_2.x",
        "millrite_spx12_5.1",
    }


def test_the_yaml_and_csv_examples_hold_the_same_records() -> None:
    assert list(load_registry(EXAMPLE_YAML)) == list(load_registry(EXAMPLE_CSV))


def test_the_examples_name_the_assets_of_the_example_edge_config() -> None:
    """config/edge.example.yaml's Modbus devices read assets that the registry knows."""
    registry = load_registry(EXAMPLE_YAML)
    edge = (ROOT / "config" / "edge.example.yaml").read_text(encoding="utf-8")
    for asset_id in ("pump-07", "pump-08", "compressor-2"):
        assert f"asset: {asset_id}" in edge
        assert asset_id in registry


def test_a_missing_profile_is_resolved_from_model_and_firmware(library: ProfileLibrary) -> None:
    registry = parse_registry_yaml(_yaml_with(profile="DELETE"), library=library)
    asset = registry.get("pump-07")
    assert asset is not None
    assert asset.profile == "aquaflo_cpv150_2.x"


def test_a_csv_row_with_empty_cells_leaves_the_optional_fields_out() -> None:
    registry = parse_registry_csv(f"{HEADER},lat,lon,consumables\n{ROW},,,\n")
    asset = registry.get("pump-07")
    assert asset is not None
    assert asset.location is None
    assert asset.warranty_end is None
    assert asset.consumables == {}


def test_csv_consumables_take_a_date_hours_or_both() -> None:
    cell = "mechanical_seal=2024-09-12 24310h; bearing_grease=2026-02-03;air_filter=39000.5h"
    registry = parse_registry_csv(f"{HEADER},consumables\n{ROW},{cell}\n")
    asset = registry.get("pump-07")
    assert asset is not None
    seal = asset.consumables["mechanical_seal"]
    assert (seal.replaced_on, seal.replaced_at_hours) == (dt.date(2024, 9, 12), 24310)
    assert asset.consumables["bearing_grease"].replaced_at_hours is None
    assert asset.consumables["air_filter"].replaced_at_hours == 39000.5


def test_a_csv_with_a_byte_order_mark_and_crlf_line_ends_loads(tmp_path: Path) -> None:
    """Spreadsheets save UTF-8 CSV with a BOM and CR LF."""
    path = tmp_path / "assets.csv"
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + ROW + "\r\n").encode())
    assert "pump-07" in load_registry(path)


def test_an_empty_asset_list_is_an_empty_registry() -> None:
    assert len(parse_registry_yaml("assets: []\n")) == 0
    assert len(parse_registry_csv(HEADER + "\n")) == 0


def test_warranty_is_active_up_to_and_including_its_last_day() -> None:
    asset = parse_registry_yaml(GOOD).get("pump-07")
    assert asset is not None
    assert asset.warranty_active(dt.date(2026, 5, 16))
    assert not asset.warranty_active(dt.date(2026, 5, 17))
    no_warranty = asset.model_copy(update={"warranty_end": None})
    assert not no_warranty.warranty_active(dt.date(2021, 6, 1))


def test_criticality_ranks_low_to_critical() -> None:
    ranks = [c.rank for c in (Criticality.LOW, Criticality.MEDIUM, Criticality.HIGH)]
    assert [*ranks, Criticality.CRITICAL.rank] == [0, 1, 2, 3]


def test_assets_are_frozen() -> None:
    asset = parse_registry_yaml(GOOD).get("pump-07")
    assert isinstance(asset, Asset)
    with pytest.raises(ValueError, match="frozen"):
        asset.site = "other"


# ---------------------------------------------------------------- one line per problem


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"tier": "Platinum"},
            (
                "assets[0] (asset \"pump-07\"): tier must be one of 'VIP', 'Gold' or 'Regular'. "
                "Got 'Platinum' instead."
            ),
        ),
        (
            {"criticality": "crit"},
            "criticality must be one of 'low', 'medium', 'high' or 'critical'. Got 'crit' instead.",
        ),
        ({"firmware": "2.4"}, "firmware must be a string (quote it in YAML). Got 2.4 instead."),
        ({"site": "Plant 1"}, "site must match ^[a-z0-9][a-z0-9_-]{0,63}$. Got 'Plant 1' instead."),
        ({"asset_id": "pump 07"}, "asset_id must match"),
        (
            {"commissioned": "'2021-13-01'"},
            "commissioned must be a date (YYYY-MM-DD). Got '2021-13",
        ),
        ({"commissioned": "2021-13-01"}, "assets.yaml: month must be in 1..12 (YAML value)."),
        (
            {"commissioned": "2021-05-17T10:00:00"},
            "commissioned must be a date (YYYY-MM-DD), not a",
        ),
        ({"location": "{lat: 95, lon: 4.9}"}, "location.lat must be at most 90. Got 95 instead."),
        ({"location": "{lat: 52, lon: -181}"}, "location.lon must be at least -180. Got -181"),
        ({"location": "{lat: .nan, lon: 4}"}, "location.lat must be a finite number. Got nan"),
        ({"operating_hours": "-5"}, "operating_hours must be at least 0. Got -5 instead."),
        (
            {"operating_hours_as_of": "DELETE"},
            "operating_hours and operating_hours_as_of go together",
        ),
        ({"warranty_end": "2020-01-01"}, "warranty_end (2020-01-01) is before commissioned"),
        ({"serial": "DELETE"}, 'assets[0] (asset "pump-07"): serial is required.'),
        ({"colour": "red"}, "colour is not a known key."),
        ({"customer": "''"}, "customer must not be empty. Got '' instead."),
        ({"team": "mech north"}, "team must match"),
        ({"gateway": "GW_1"}, "gateway must match"),
        (
            {"consumables": "{seal: {}}"},
            "consumables.seal needs replaced_on or replaced_at_hours (or both).",
        ),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_a_bad_value_is_one_line_naming_file_record_key_and_value(
    changes: dict[str, str], expected: str
) -> None:
    assert expected in _errors(_yaml_with(**changes))


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    first = _yaml_with(criticality="huge")
    second = (
        _yaml_with(tier="Iron", serial="DELETE")
        .replace("pump-07", "pump-08")
        .removeprefix("assets:\n")
    )
    lines = _errors(first + second).splitlines()
    assert len(lines) == 3
    assert 'assets[0] (asset "pump-07"): criticality must be one of' in lines[0]
    assert 'assets[1] (asset "pump-08"): tier must be one of' in lines[1]
    assert 'assets[1] (asset "pump-08"): serial is required.' in lines[2]


def test_a_duplicate_asset_id_names_both_records() -> None:
    second = GOOD.split("assets:\n", 1)[1]
    message = _errors(GOOD + second)
    assert message == (
        'assets.yaml: assets[1] (asset "pump-07"): '
        "asset_id 'pump-07' is already used by assets[0]."
    )


def test_a_duplicate_asset_id_in_csv_names_both_lines() -> None:
    message = _errors(f"{HEADER}\n{ROW}\n{ROW.replace('S-1', 'S-2')}\n", csv=True)
    assert message == (
        "assets.csv: line 3 (asset \"pump-07\"): asset_id 'pump-07' is already used by line 2."
    )


def test_two_tiers_for_one_customer_are_refused() -> None:
    other = ROW.replace("pump-07", "pump-08").replace(",VIP,", ",Gold,")
    message = _errors(f"{HEADER}\n{ROW}\n{other}\n", csv=True)
    assert "line 3 (asset \"pump-08\"): tier 'Gold' of customer 'Northwater' differs" in message
    assert "'VIP' in line 2" in message


def test_registry_built_in_code_refuses_duplicate_ids() -> None:
    asset = parse_registry_yaml(GOOD).get("pump-07")
    assert asset is not None
    with pytest.raises(RegistryError, match="asset_id 'pump-07' is used twice"):
        AssetRegistry([asset, asset], source="code")


# ---------------------------------------------------------------- profiles


def test_an_unknown_profile_lists_the_known_ones(library: ProfileLibrary) -> None:
    message = _errors(_yaml_with(profile="acme_9000"), library=library)
    assert "profile must name a firmware profile (airtek_sc75_4.2, aquaflo_cpv150_2.x" in message
    assert "Got 'acme_9000' instead." in message


def test_a_firmware_outside_the_profile_is_refused(library: ProfileLibrary) -> None:
    message = _errors(_yaml_with(firmware='"3.0"'), library=library)
    assert (
        "model 'CPV-150' firmware '3.0' is not covered by profile 'aquaflo_cpv150_2.x'" in message
    )


def test_a_consumable_the_profile_lacks_is_refused(library: ProfileLibrary) -> None:
    message = _errors(_yaml_with(consumables="{oil: {replaced_on: 2024-01-01}}"), library=library)
    assert "consumables.oil is not a consumable of profile 'aquaflo_cpv150_2.x'" in message
    assert "(bearing_grease, mechanical_seal)" in message


def test_without_a_profile_and_without_a_library_the_profile_is_required() -> None:
    message = _errors(_yaml_with(profile="DELETE"))
    assert message.count("\n") == 0
    assert "profile is required (or pass a profiles folder" in message


def test_an_unresolvable_model_says_what_the_library_has(library: ProfileLibrary) -> None:
    message = _errors(_yaml_with(profile="DELETE", model="XYZ-1"), library=library)
    assert "profile is not given and no profile for model 'XYZ-1'; known models:" in message


def test_the_profiles_folder_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "assets.yaml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(RegistryError, match="the profiles folder is invalid"):
        load_registry(path, profiles_dir=tmp_path / "nope")


# ---------------------------------------------------------------- the command line


def test_assets_check_prints_a_summary_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = assets_main(["check", str(EXAMPLE_YAML), "--profiles", str(PROFILES)])
    out = capsys.readouterr().out
    assert code == 0
    assert "5 assets, 2 sites" in out
    assert "Northwater Utilities (VIP) 3" in out
    assert "aquaflo_cpv150_2.x 2" in out


def test_assets_check_prints_problems_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "assets.yaml"
    path.write_text(_yaml_with(tier="Platinum"), encoding="utf-8")
    code = assets_main(["check", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert f'{path}: assets[0] (asset "pump-07"): tier must be one of' in captured.err
