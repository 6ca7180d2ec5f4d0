"""Broken and hostile asset files: each fails with one message naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.registry import RegistryError, load_registry

HEADER = (
    "asset_id,site,customer,tier,model,firmware,profile,serial,asset_class,team,criticality,"
    "commissioned"
)
ROW = (
    "pump-07,plant1,Northwater,VIP,CPV-150,2.4,aquaflo_cpv150_2.x,S-1,pump,mech-north,high,"
    "2021-05-17"
)


def _load_error(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return message


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("assets.json", "{}", "the file must end in .yaml, .yml or .csv. Got '.json' instead."),
        ("assets.yaml", "", "the file must be a mapping with one key, 'assets'. Got None instead."),
        ("assets.yaml", "- a\n- b\n", "Got ['a', 'b'] instead."),
        ("assets.yaml", "assets: []\nextra: 1\n", "Got ['assets', 'extra'] instead."),
        ("assets.yaml", "assets: {pump-07: {}}\n", "assets must be a list. Got {'pump-07': {}}"),
        (
            "assets.yaml",
            "assets:\n  - 42\n",
            "assets[0]: an asset must be a mapping of keys. Got 42",
        ),
        ("assets.yaml", "assets:\n  - [a, b]\n", "assets[0]: an asset must be a mapping"),
        ("assets.yaml", "assets: [\n", "(YAML syntax)."),
        ("assets.yaml", "assets:\n\t- x\n", "(YAML syntax)."),
        (
            "assets.yaml",
            "assets:\n  - asset_id: a\n    asset_id: b\n",
            "line 3: duplicate key 'asset_id' (first on line 2) (YAML syntax).",
        ),
        ("assets.yaml", "assets:\n  - {site: x, site: y}\n", "duplicate key 'site'"),
        ("assets.yaml", "assets: !!python/object:os.system {}\n", "(YAML syntax)."),
        ("assets.yaml", "a: &a [*a]\n", "line 1: found unconstructable recursive node"),
        ("assets.yaml", "assets: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply (YAML)."),
        ("assets.yaml", "assets: " + "[" * 100_000 + "\n", "nested too deeply (YAML)."),
        (
            "assets.yaml",
            "assets:\n  - {asset_id: 7}\n",
            "asset_id must be a string (quote it in YAML)",
        ),
        ("assets.yaml", 'assets:\n  - {asset_id: "pump\\u0000x"}\n', "asset_id must match"),
        ("assets.yaml", 'assets:\n  - {asset_id: "p\u00fcmpe"}\n', "Got 'p\u00fcmpe' instead."),
        ("assets.yaml", "assets:\n  - {asset_id: " + "x" * 500 + "}\n", "asset_id must match"),
        (
            "assets.yaml",
            b"assets:\n  - {asset_id: \xff\xfe}\n",
            "not UTF-8 text (byte 23: b'\\xff').",
        ),
        ("assets.csv", "", "the file is empty; it needs a header row."),
        ("assets.csv", "site,customer\nplant1,x\n", "line 1: column 'asset_id' is required."),
        ("assets.csv", f"{HEADER},colour\n{ROW},red\n", "line 1: column 'colour' is not a known"),
        ("assets.csv", f"{HEADER},site\n{ROW},x\n", "line 1: column 'site' appears twice."),
        (
            "assets.csv",
            f"{HEADER}\n{ROW},extra\n",
            'line 2 (asset "pump-07"): has 13 cells, the header 12.',
        ),
        ("assets.csv", f'{HEADER}\n"pump-07,unclosed\n', "(CSV syntax)."),
        (
            "assets.csv",
            f"{HEADER},lat\n{ROW},52.1\n",
            "lat and lon go together. Got lat='52.1', lon=''",
        ),
        ("assets.csv", f"{HEADER},lat,lon\n{ROW},nan,4\n", "location.lat must be a finite number."),
        (
            "assets.csv",
            f"{HEADER},lat,lon\n{ROW},north,4\n",
            "location.lat must be a number. Got 'north'",
        ),
        (
            "assets.csv",
            f"{HEADER},lat,lon\n{ROW},1e999,4\n",
            "location.lat must be a finite number.",
        ),
        (
            "assets.csv",
            f"{HEADER},consumables\n{ROW},seal\n",
            "consumables must be NAME=DATE HOURSh entries separated by ';'. Got 'seal' instead.",
        ),
        ("assets.csv", f"{HEADER},consumables\n{ROW},seal=1h 2h\n", "consumables.seal must be"),
        ("assets.csv", f"{HEADER},consumables\n{ROW},a=1h;a=2h\n", "consumables names 'a' twice."),
        (
            "assets.csv",
            f"{HEADER},consumables\n{ROW},seal=yesterday\n",
            "consumables.seal.replaced_on must be a date (YYYY-MM-DD). Got 'yesterday' instead.",
        ),
        (
            "assets.csv",
            f"{HEADER},consumables\n{ROW},seal=-4h\n",
            "replaced_at_hours must be at least 0",
        ),
        ("assets.csv", b"asset_id\n\x80\n", "not UTF-8 text (byte 9: b'\\x80')."),
    ],
)
def test_a_broken_file_fails_with_a_message_naming_file_and_problem(
    tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    assert expected in _load_error(tmp_path, name, content)


def test_exponential_yaml_aliases_are_refused_quickly(tmp_path: Path) -> None:
    """A billion-laughs file: 9 levels of 9 aliases. The message stays short."""
    levels = ["&a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    message = _load_error(tmp_path, "assets.yaml", f"assets:\n  - [{', '.join(levels)}]\n")
    assert "assets[0]: an asset must be a mapping of keys. Got [['x', 'x'," in message
    assert len(message) < 400


def test_a_control_character_in_an_asset_id_cannot_forge_a_message_line(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "assets.yaml", 'assets:\n  - {asset_id: "x\\nfake: ok"}\n')
    assert "\nfake" not in message
    assert "(asset 'x\\nfake: ok')" in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"nope\.yaml: cannot read: No such file"):
        load_registry(tmp_path / "nope.yaml")


def test_a_file_with_thousands_of_problems_caps_the_message(tmp_path: Path) -> None:
    """Every problem is kept on the error; the message shows the first 50 and counts the rest."""
    rows = "\n".join(f"pump-{i},BAD SITE" for i in range(300))
    path = tmp_path / "assets.csv"
    path.write_text(f"asset_id,site\n{rows}\n", encoding="utf-8")
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert len(info.value.problems) > 300
    lines = str(info.value).splitlines()
    assert len(lines) == 51
    assert lines[-1].endswith(f"and {len(info.value.problems) - 50} more problems.")
