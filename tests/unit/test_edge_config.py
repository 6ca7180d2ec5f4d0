"""The agent config: the example loads, and every error names file, device, key, rule and value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from support import WordPlan

from edge_agent._config import (
    EdgeConfig,
    KeyValueParserConfig,
    RtuTransportConfig,
    SerialLineTransportConfig,
    TcpTransportConfig,
    load_config,
    parse_config,
)
from edge_agent._exceptions import ConfigError
from edge_agent.sources import build_line_parser, build_sources

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "edge.example.yaml"

HEAD = """
site: plant1
gateway: gw-1
buses:
  rs485-1: {port: /dev/ttyUSB0}
devices:
"""


def _config(devices: str, head: str = HEAD) -> EdgeConfig:
    return parse_config(head + textwrap.indent(textwrap.dedent(devices), "  "), source="edge.yaml")


def _error(devices: str, head: str = HEAD) -> str:
    with pytest.raises(ConfigError) as info:
        _config(devices, head)
    return str(info.value)


def test_the_shipped_example_is_valid() -> None:
    """`config/edge.example.yaml` loads, with its profile references unchecked (data elsewhere)."""
    config = load_config(EXAMPLE, check_profiles=False)
    assert (config.site, config.gateway) == ("plant1", "gw-plant1-01")
    assert config.profiles_dir == EXAMPLE.parent / "../firmware_profiles"
    assert config.buses["rs485-1"].parity == "E"
    kinds = [type(d.transport).__name__ for d in config.devices]
    assert kinds == [
        "TcpTransportConfig",
        "RtuTransportConfig",
        "RtuTransportConfig",
        "SerialLineTransportConfig",
        "SerialLineTransportConfig",
        "SerialLineTransportConfig",
    ]
    scale = config.devices[4].transport
    assert isinstance(scale, SerialLineTransportConfig)
    assert scale.request == "READ\r\n"
    for device in config.devices[3:]:
        assert isinstance(device.transport, SerialLineTransportConfig)
        build_line_parser(device.transport.parser)  # every parser in the example builds


def test_defaults_and_canonical_aliases() -> None:
    """Defaults fill in; `parity: even` is canonicalised to `E` once, at load."""
    config = _config(
        """
        - {name: p1, asset: p1, profile: x, transport: {type: rtu, bus: rs485-1, unit: 1}}
        - {name: t1, asset: t1, profile: auto, transport: {type: tcp, host: h}}
        """,
        head=HEAD.replace("{port: /dev/ttyUSB0}", "{port: /dev/ttyUSB0, parity: even}"),
    )
    assert config.buses["rs485-1"].parity == "E"
    assert config.buses["rs485-1"].baudrate == 19200
    rtu, tcp = config.devices
    assert isinstance(rtu.transport, RtuTransportConfig)
    assert isinstance(tcp.transport, TcpTransportConfig)
    assert (tcp.transport.port, tcp.transport.unit, tcp.transport.timeout_s) == (502, 1, 1.0)
    assert rtu.startup_error_behavior == "retry"
    assert rtu.writes == "disabled"
    limits = rtu.limits
    assert (limits.max_registers, limits.max_bits) == (125, 2000)
    assert (limits.max_gap_registers, limits.max_gap_bits) == (16, 256)
    assert (rtu.backoff.initial_s, rtu.backoff.max_s) == (None, 300.0)


def test_field_shorthands_name_signals() -> None:
    """A bare string is a field with that signal name; kv keys default to float fields."""
    config = _config(
        """
        - name: f1
          asset: f1
          transport:
            type: serial_line
            port: /dev/ttyS1
            parser: {type: key_value, fields: {T: temp_c, P: {kind: int}}}
        """
    )
    transport = config.devices[0].transport
    assert isinstance(transport, SerialLineTransportConfig)
    assert isinstance(transport.parser, KeyValueParserConfig)
    assert build_line_parser(transport.parser).signals == ("temp_c", "P")


DEVICE: dict[str, object] = {
    "name": "b2",
    "asset": "b2",
    "profile": "x",
    "transport": {"type": "tcp", "host": "h"},
}
DROP = object()
ON_B2 = 'edge.yaml: device "b2": '


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"transport": {"type": "rtu", "bus": "rs485-1", "unit": 1, "parity": "X"}},
            ON_B2 + "transport.parity is not a known key. Got 'X' instead.",
        ),
        (
            {"transport": {"type": "rtu", "bus": "rs485-1", "unit": 300}},
            ON_B2 + "transport.unit must be at most 247. Got 300 instead.",
        ),
        (
            {"transport": {"type": "modbus", "host": "h"}},
            ON_B2 + "transport.type must be one of 'tcp', 'rtu', 'serial_line'. Got 'modbus' "
            "instead.",
        ),
        ({"transport": {"host": "h"}}, ON_B2 + "transport.type is required."),
        ({"transport": "h:502"}, ON_B2 + "transport must be a mapping. Got 'h:502' instead."),
        (
            {"transport": {"type": "tcp", "host": "h", "port": "http"}},
            ON_B2 + "transport.port must be an integer. Got 'http' instead.",
        ),
        (
            {"startup_error_behavior": "crash"},
            ON_B2 + "startup_error_behavior must be one of 'error', 'ignore' or 'retry'. "
            "Got 'crash' instead.",
        ),
        (
            {"profile": DROP},
            ON_B2 + "profile is required for a Modbus device (a file stem, or 'auto').",
        ),
        (
            {"limits": {"max_registers": 200}},
            ON_B2 + "limits.max_registers must be at most 125. Got 200 instead.",
        ),
        (
            {"backoff": {"initial_s": 10, "max_s": 5}},
            ON_B2 + "backoff initial_s must not exceed max_s (5.0).",
        ),
        ({"name": DROP}, "edge.yaml: devices[0]: name is required."),
        (
            {"name": "bad name"},
            (
                'edge.yaml: device "bad name": name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$. '
                "Got 'bad name' instead."
            ),
        ),
    ],
)
def test_errors_name_file_device_key_rule_and_value(
    changes: dict[str, object], expected: str
) -> None:
    """One line per problem, in the STYLE.md 4 shape."""
    device = {k: v for k, v in (DEVICE | changes).items() if v is not DROP}
    assert _error(yaml.safe_dump([device])) == expected


@pytest.mark.parametrize(
    ("parser", "expected"),
    [
        (
            "{type: regex, pattern: 'T=(\\d+)'}",
            (
                "transport.parser.pattern must have at least one named group (?P<name>...). "
                "Got 'T=(\\\\d+)' instead."
            ),
        ),
        (
            "{type: regex, pattern: 'T=(?P<t>\\d+)', fields: {x: x_c}}",
            "transport.parser fields must name groups of the pattern (['t']); ['x'] are not.",
        ),
        (
            "{type: csv, columns: [null, {scale: 2}]}",
            "transport.parser columns[1].signal is required.",
        ),
        (
            "{type: csv, columns: [a], delimiter: ';;'}",
            "transport.parser.delimiter must have at most 1 character(s). Got ';;' instead.",
        ),
        (
            "{type: json}",
            "transport.parser.type must be one of 'regex', 'key_value', 'csv'. Got 'json' instead.",
        ),
        (
            "{type: key_value, fields: {T: {signal: t, scale: .nan}}}",
            "transport.parser.fields.T.scale must be a finite number. Got nan instead.",
        ),
    ],
)
def test_parser_errors_point_into_the_parser(parser: str, expected: str) -> None:
    """Parser rules are checked at load, with the path into the parser."""
    line = f"{{type: serial_line, port: /dev/ttyS1, parser: {parser}}}"
    devices = f"- {{name: f1, asset: f1, transport: {line}}}"
    assert _error(devices) == f'edge.yaml: device "f1": {expected}'


def test_serial_line_devices_take_no_profile_and_a_prompt_needs_an_interval() -> None:
    """The parser names a line device's signals; `request` without `interval_s` is an error."""
    line = (
        "{type: serial_line, port: /dev/ttyS1, request: 'P\\r', parser: {type: csv, columns: [a]}}"
    )
    message = _error(f"- {{name: f1, asset: f1, profile: x, interval_s: 1, transport: {line}}}")
    assert "profile must be omitted for a serial_line device" in message
    message = _error(f"- {{name: f1, asset: f1, transport: {line}}}")
    assert (
        message == 'edge.yaml: device "f1": interval_s is required when transport.request is set.'
    )


def test_rules_across_devices_are_all_reported() -> None:
    """Duplicate names and assets, unknown buses, shared units and shared ports: every one."""
    message = _error(
        """
        - {name: a, asset: x, profile: p, transport: {type: rtu, bus: rs485-1, unit: 1}}
        - {name: a, asset: y, profile: p, transport: {type: rtu, bus: rs485-1, unit: 2}}
        - {name: b, asset: x, profile: p, transport: {type: rtu, bus: rs485-1, unit: 1}}
        - {name: c, asset: c, profile: p, transport: {type: rtu, bus: rs485-9, unit: 1}}
        - {name: d, asset: d, profile: p, transport: {type: tcp, host: h, unit: 3}}
        - {name: e, asset: e, profile: p, transport: {type: tcp, host: h, unit: 3}}
        - name: f
          asset: f
          transport: {type: serial_line, port: /dev/ttyUSB0, parser: {type: csv, columns: [v]}}
        """
    )
    assert message.splitlines() == [
        "edge.yaml: device \"a\": name must be unique (devices[0] has it too). Got 'a' instead.",
        'edge.yaml: device "b": asset must be unique (device "a" has it too). Got \'x\' instead.',
        (
            'edge.yaml: device "b": transport.unit must be unique on bus "rs485-1" '
            '(device "a" has it too). Got 1 instead.'
        ),
        (
            "edge.yaml: device \"c\": transport.bus must name a bus under buses ('rs485-1'). "
            "Got 'rs485-9' instead."
        ),
        (
            'edge.yaml: device "e": transport.unit must be unique on h:502 (device "d" has it '
            "too). Got 3 instead."
        ),
        (
            'edge.yaml: device "f": transport.port must not be shared (bus "rs485-1" uses it). '
            "Got '/dev/ttyUSB0' instead."
        ),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("site: a\nsite: b\n", "edge.yaml: line 2: not valid YAML: duplicate key 'site'"),
        ("site: [a\n", "edge.yaml: line 2: not valid YAML:"),
        ("- a\n- b\n", "edge.yaml: the file must be a mapping of keys. Got ['a', 'b'] instead."),
        (
            "site: Plant 1\ngateway: gw\ndevices: []\nmystery: 1\n",
            (
                "edge.yaml: site must match ^[a-z0-9][a-z0-9_-]{0,63}$. Got 'Plant 1' instead.\n"
                "edge.yaml: devices must have at least 1 item(s). Got [] instead.\n"
                "edge.yaml: mystery is not a known key. Got 1 instead."
            ),
        ),
        (
            "site: a\ngateway: b\nbuses: {rs485-1: {port: /dev/x, stopbits: 3}}\ndevices: []\n",
            'edge.yaml: bus "rs485-1": stopbits must be one of 1 or 2. Got 3 instead.',
        ),
    ],
)
def test_file_level_errors(text: str, expected: str) -> None:
    """Duplicate keys (PyYAML would keep the last silently), bad YAML, bad top-level keys."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="edge.yaml")
    assert str(info.value).startswith(expected)


def test_profiles_must_exist_in_the_profiles_folder(tmp_path: Path) -> None:
    """With the profiles folder checked, a missing profile names the folder's contents."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "acme_pump_fw1.yaml").write_text("{}")
    path = tmp_path / "edge.yaml"
    path.write_text(
        HEAD.replace("devices:", "profiles_dir: profiles\ndevices:")
        + "  - {name: a, asset: a, profile: acme_pump_fw1, transport: {type: tcp, host: h}}\n"
        + "  - {name: b, asset: b, profile: auto, transport: {type: tcp, host: h, unit: 2}}\n"
        + "  - {name: c, asset: c, profile: acme_pump_fw9, transport: {type: tcp, host: h, unit: 3"
        + "}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f'{path}: device "c": profile must name a .yaml file in {tmp_path / "profiles"} '
        "(acme_pump_fw1). Got 'acme_pump_fw9' instead."
    )
    assert load_config(path, check_profiles=False).profiles_dir == tmp_path / "profiles"


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing file is one clear line, not a traceback."""
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "nope.yaml")


def test_the_example_wires_into_one_source_per_channel() -> None:
    """One worker for the TCP device, one for the RTU bus (both units), one per line device."""
    config = load_config(EXAMPLE, check_profiles=False)
    plans = {
        device.name: WordPlan.one_group(
            asset=device.asset,
            unit=device.transport.unit,
            interval_s=1.0,
            requests=[("holding", 0, 1)],
        )
        for device in config.devices
        if isinstance(device.transport, (TcpTransportConfig, RtuTransportConfig))
    }
    sources = build_sources(config, plans)
    assert [source.name for source in sources] == [
        "boiler-2",
        "rs485-1",
        "flowmeter-1",
        "scale-1",
        "analyser-1",
    ]
    assert sorted(sources[1].states) == ["pump-7", "pump-8"]
    with pytest.raises(ValueError, match="no poll plan"):
        build_sources(config, {})
    wrong_unit = dict(plans)
    wrong_unit["pump-7"] = plans["pump-8"]
    with pytest.raises(ValueError, match="addresses units"):
        build_sources(config, wrong_unit)
