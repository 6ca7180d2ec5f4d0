"""The agent's config file (`config/edge.yaml`): one typed model, validated at load.

Loading does no I/O beyond reading the file (and, on request, listing the profiles folder); it
builds the model, checks the rules that span several keys, and fails with one `ConfigError`
whose lines each name the file, the device, the key path, the rule and the value (STYLE.md 4):

    config/edge.yaml: device "boiler-2": transport.parity must be one of 'N', 'E' or 'O'.
    Got 'X' instead.

(one line in the message; wrapped here).

A device that is unreachable at startup is not a config error: see `startup_error_behavior`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from edge_agent._exceptions import ConfigError
from edge_agent._mqtt_config import MqttConfig
from prognos_contract import DEFAULT_PREFIX, MAX_READINGS_PER_BATCH, ContractError, build_topic

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""`site` and `gateway`: they are MQTT topic levels and InfluxDB tags (DESIGN.md)."""
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Device names, asset ids, bus names, signal names."""
PROFILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
"""A profile file stem under `profiles_dir` (`acme_pump_fw2` for `acme_pump_fw2.yaml`)."""
AUTO_PROFILE = "auto"
"""`profile: auto` asks the agent to identify the device (Modbus device identification)."""


def _config_error(lines: Sequence[str], source: str) -> ConfigError:
    """The one `ConfigError` for a file's problems, a line each: file, device, key, rule, value."""
    return ConfigError("\n".join(lines), path=source)


# ---------------------------------------------------------------- building blocks


def _canonical_parity(value: object) -> object:
    """Accept `none`/`even`/`odd` in any case as aliases of `N`/`E`/`O` (canonicalised once)."""
    if isinstance(value, str):
        return {"n": "N", "none": "N", "e": "E", "even": "E", "o": "O", "odd": "O"}.get(
            value.strip().lower(), value
        )
    return value


Parity = Annotated[Literal["N", "E", "O"], BeforeValidator(_canonical_parity)]
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SerialPort(_Strict):
    port: str = Field(
        min_length=1, description="Serial device, e.g. `/dev/ttyUSB0`, or a pyserial URL."
    )
    bytesize: Literal[7, 8] = Field(default=8, description="Data bits.")
    parity: Parity = Field(
        default="N", description="`N`, `E` or `O` (aliases `none`, `even`, `odd` accepted)."
    )
    stopbits: Literal[1, 2] = Field(default=1, description="Stop bits.")


class SerialBusConfig(_SerialPort):
    """One Modbus RTU bus (an RS-485 port) shared by the devices that name it."""

    baudrate: int = Field(default=19200, gt=0, le=4_000_000, description="Bits per second.")
    timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Response timeout per request, seconds. While one device times out the "
        "bus is busy, so keep it short.",
    )
    inter_frame_delay_s: float | None = Field(
        default=None,
        ge=0,
        le=5,
        description="Silence between frames, seconds; omitted means the RTU minimum for the "
        "baud rate (3.5 characters). Raise it for devices that need a turnaround delay.",
    )


class TcpTransportConfig(_Strict):
    """Modbus TCP to a device or a gateway."""

    type: Literal["tcp"] = Field(description="Transport kind.")
    host: str = Field(min_length=1, description="Host name or IP address.")
    port: int = Field(default=502, ge=1, le=65535, description="TCP port.")
    unit: int = Field(
        default=1, ge=0, le=255, description="Unit (slave) id; matters behind a gateway."
    )
    timeout_s: float = Field(
        default=1.0, gt=0, le=60, description="Connect and response timeout, seconds."
    )


class RtuTransportConfig(_Strict):
    """Modbus RTU: one unit id on a bus declared under `buses`."""

    type: Literal["rtu"] = Field(description="Transport kind.")
    bus: str = Field(min_length=1, description="Name of a bus under `buses`.")
    unit: int = Field(ge=1, le=247, description="Unit (slave) id on the bus.")


class FieldConfig(_Strict):
    """How one text field of a line becomes a signal."""

    signal: Identifier | None = Field(
        default=None,
        description="Signal name; omitted means the group or key name (required for CSV).",
    )
    kind: Literal["float", "int", "str"] = Field(
        default="float", description="`float`/`int` parse a number, `str` keeps the text."
    )
    scale: float = Field(default=1.0, allow_inf_nan=False, description="value * scale + offset.")
    offset: float = Field(default=0.0, allow_inf_nan=False, description="Added after scaling.")


def _field_shorthand(value: object) -> object:
    """A bare string is a field with that signal name and the defaults."""
    return {"signal": value} if isinstance(value, str) else value


FieldSpec = Annotated[FieldConfig, BeforeValidator(_field_shorthand)]


class RegexParserConfig(_Strict):
    """Named groups of a regular expression become signals."""

    type: Literal["regex"] = Field(description="Parser kind.")
    pattern: str = Field(
        description="Python regular expression with named groups, searched in each line."
    )
    fields: dict[str, FieldSpec] | None = Field(
        default=None,
        description="Group name to field (or signal name); omitted: every group, as float.",
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise PydanticCustomError(
                "rule", "must be a valid regular expression ({error})", {"error": str(exc)}
            ) from exc
        if not compiled.groupindex:
            raise PydanticCustomError("rule", "must have at least one named group (?P<name>...)")
        return pattern

    @model_validator(mode="after")
    def _fields_are_groups(self) -> RegexParserConfig:
        groups = set(re.compile(self.pattern).groupindex)
        if self.fields and (unknown := sorted(set(self.fields) - groups)):
            raise PydanticCustomError(
                "rule",
                "fields must name groups of the pattern ({groups}); {unknown} are not",
                {"groups": sorted(groups), "unknown": unknown},
            )
        return self


class KeyValueParserConfig(_Strict):
    """`key=value` pairs become signals."""

    type: Literal["key_value"] = Field(description="Parser kind.")
    fields: dict[str, FieldSpec] = Field(
        min_length=1, description="Key to field (or signal name); other keys are ignored."
    )
    pair_separator: str | None = Field(
        default=None, min_length=1, description="Between pairs; omitted means whitespace."
    )
    separator: str = Field(default="=", min_length=1, description="Between key and value.")


class CsvParserConfig(_Strict):
    """Delimited columns become signals, by position."""

    type: Literal["csv"] = Field(description="Parser kind.")
    columns: list[FieldSpec | None] = Field(
        min_length=1, description="One entry per column: a field, a signal name, or null (skip)."
    )
    delimiter: str = Field(default=",", min_length=1, max_length=1, description="One character.")

    @model_validator(mode="after")
    def _columns_have_signals(self) -> CsvParserConfig:
        for index, column in enumerate(self.columns):
            if column is not None and column.signal is None:
                raise PydanticCustomError(
                    "rule", "columns[{index}].signal is required", {"index": index}
                )
        if all(column is None for column in self.columns):
            raise PydanticCustomError("rule", "columns must name at least one signal")
        return self


ParserConfig = Annotated[
    RegexParserConfig | KeyValueParserConfig | CsvParserConfig, Field(discriminator="type")
]


class SerialLineTransportConfig(_SerialPort):
    """A line-oriented ASCII device on its own serial port."""

    type: Literal["serial_line"] = Field(description="Transport kind.")
    baudrate: int = Field(default=9600, gt=0, le=4_000_000, description="Bits per second.")
    line_ending: Literal["lf", "cr"] = Field(
        default="lf", description="`lf`: lines end at LF (CR LF too); `cr`: at CR."
    )
    encoding: Literal["ascii", "latin-1", "utf-8"] = Field(
        default="ascii", description="Text encoding of lines."
    )
    max_line_bytes: int = Field(
        default=1024, ge=16, le=65536, description="Longer lines are bad (`line_too_long`)."
    )
    timeout_s: float = Field(
        default=10.0, gt=0, le=3600, description="Silent this long (seconds): device down."
    )
    request: str | None = Field(
        default=None,
        min_length=1,
        description='Prompt written every `interval_s` (YAML escapes, e.g. "P\\r\\n"); '
        "omitted for devices that send by themselves.",
    )
    parser: ParserConfig = Field(description="How a line becomes signals.")


TransportConfig = Annotated[
    TcpTransportConfig | RtuTransportConfig | SerialLineTransportConfig,
    Field(discriminator="type"),
]


class PlannerLimits(_Strict):
    """Limits for batching a device's registers into requests.

    The keys and defaults are those of the read planner's `PlanLimits`
    (`PlanLimits(**limits.model_dump())`); a profile's own `request_limits` may narrow them.
    """

    max_registers: int = Field(
        default=125, ge=1, le=125, description="Most registers in one read (Modbus: 125)."
    )
    max_bits: int = Field(
        default=2000, ge=1, le=2000, description="Most coils/inputs in one read (Modbus: 2000)."
    )
    max_gap_registers: int = Field(
        default=16,
        ge=0,
        le=124,
        description="Unused registers one read may span to join two signals; 0 for a device "
        "that answers an unmapped address with an exception.",
    )
    max_gap_bits: int = Field(
        default=256, ge=0, le=1999, description="Unused bits one read may span to join two signals."
    )


class BackoffConfig(_Strict):
    """Retry timing for a device that stops answering."""

    initial_s: float | None = Field(
        default=None,
        gt=0,
        description="Wait after the first failure, seconds; omitted means the device's fastest "
        "poll interval. Doubles per failure.",
    )
    max_s: float = Field(default=300.0, gt=0, description="Longest wait between retries, seconds.")

    @model_validator(mode="after")
    def _ordered(self) -> BackoffConfig:
        if self.initial_s is not None and self.initial_s > self.max_s:
            raise PydanticCustomError(
                "rule",
                "initial_s must not exceed max_s ({max_s})",
                {"max_s": self.max_s},
            )
        return self


class DeadbandOverride(_Strict):
    """A signal's report-by-exception band, replacing the profile's `deadband` for it."""

    deadband_abs: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="Absolute band, in the signal's unit."
    )
    deadband_pct: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="Band in percent of the last reported value (`1.0` is 1 %).",
    )


class AggregateSection(_Strict):
    """Min/mean/max of fast signals over tumbling, epoch-aligned windows."""

    signals: list[Identifier] = Field(min_length=1, description="The signals to aggregate.")
    window_s: float = Field(
        ge=0.001, allow_inf_nan=False, description="Window length, seconds (10 s: :00, :10, ...)."
    )
    counts: Literal["omit", "emit"] = Field(
        default="omit", description="`emit` adds `{signal}_count` and `{signal}_bad_count`."
    )
    raw: Literal["drop", "keep"] = Field(
        default="drop", description="`keep` also passes the raw readings of `signals` on."
    )
    grace_s: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="Wait for late readings, seconds."
    )


class OperatingHoursSection(_Strict):
    """Operating hours and starts of the asset, from one signal that tells whether it runs."""

    signal: Identifier = Field(description="The signal, e.g. `motor_current_a` or `running`.")
    running_above: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Running while the value is above this; omitted: use `running_values`.",
    )
    stopped_below: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Hysteresis: once running, stopped only below this (default running_above).",
    )
    running_values: list[bool | int | str] | None = Field(
        default=None,
        min_length=1,
        description="Without a threshold, the values meaning running (default `[true]`).",
    )
    max_gap_s: float | None = Field(
        default=None,
        ge=0.001,
        allow_inf_nan=False,
        description="Longest gap between two samples that still accrues time, seconds; "
        "omitted: 3 poll intervals of `signal`.",
    )
    hours_name: Identifier = Field(default="operating_hours", description="Signal of the hours.")
    starts_name: Identifier = Field(default="starts", description="Signal of the start count.")

    @model_validator(mode="after")
    def _consistent(self) -> OperatingHoursSection:
        if self.running_above is None and self.stopped_below is not None:
            raise PydanticCustomError("rule", "stopped_below needs running_above")
        if self.running_above is not None and self.running_values is not None:
            raise PydanticCustomError("rule", "running_above and running_values exclude each other")
        if (
            self.running_above is not None
            and self.stopped_below is not None
            and self.stopped_below > self.running_above
        ):
            raise PydanticCustomError(
                "rule",
                "stopped_below must be at most running_above ({above}). Got {below} instead",
                {"above": self.running_above, "below": self.stopped_below},
            )
        if self.hours_name == self.starts_name:
            raise PydanticCustomError("rule", "hours_name and starts_name must differ")
        return self


class UsageSection(_Strict):
    """A usage total of the asset: the integral of a rate, or a device counter's increments."""

    signal: Identifier = Field(description="The source signal.")
    name: Identifier = Field(description="The signal the total is published as.")
    kind: Literal["rate", "counter"] = Field(
        description="`rate`: integrate over time; `counter`: add up the increments."
    )
    scale: float = Field(
        default=1.0, gt=0, allow_inf_nan=False, description="Output units per unit of usage."
    )
    rate_unit_s: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="`rate` only: seconds in the rate's time unit (3600 for m3/h); default 1.",
    )
    max_gap_s: float | None = Field(
        default=None,
        ge=0.001,
        allow_inf_nan=False,
        description="`rate` only: longest gap that is integrated, seconds; omitted: 3 poll "
        "intervals of `signal`.",
    )
    counter_modulus: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="`counter` only: where the counter wraps to 0 (65536 for a 16-bit one).",
    )

    @model_validator(mode="after")
    def _kind_keys(self) -> UsageSection:
        if self.kind == "counter":
            wrong = [k for k in ("rate_unit_s", "max_gap_s") if getattr(self, k) is not None]
        else:
            wrong = ["counter_modulus"] if self.counter_modulus is not None else []
        if wrong:
            raise PydanticCustomError(
                "rule",
                "{keys} must be omitted for kind '{kind}'",
                {"keys": " and ".join(wrong), "kind": self.kind},
            )
        return self


def _yaml_off(value: object) -> object:
    """YAML 1.1 reads an unquoted `off` as false: take it as the `off` the user wrote."""
    return "off" if value is False else value


class PreprocessConfig(_Strict):
    """Edge pre-processing of one device's readings, in this order: usage, aggregate, deadband."""

    deadband: Annotated[Literal["profile", "off"], BeforeValidator(_yaml_off)] = Field(
        default="profile",
        description="`profile`: report a number only when it leaves the profile's per-signal "
        "`deadband` (booleans and strings on change); `off`: report every poll.",
    )
    heartbeat_s: float | None = Field(
        default=300.0,
        gt=0,
        allow_inf_nan=False,
        description="Report every signal at least this often, seconds, even when flat; null: "
        "never.",
    )
    deadbands: dict[Identifier, DeadbandOverride] = Field(
        default_factory=dict, description="Per-signal bands that replace the profile's."
    )
    aggregate: AggregateSection | None = Field(
        default=None, description="Min/mean/max of fast signals per window."
    )
    operating_hours: list[OperatingHoursSection] = Field(
        default_factory=list, description="Operating hours and starts rules."
    )
    usage: list[UsageSection] = Field(default_factory=list, description="Usage totals.")

    @model_validator(mode="after")
    def _outputs_unique(self) -> PreprocessConfig:
        if self.deadband == "off" and self.deadbands:
            raise PydanticCustomError("rule", "deadbands needs deadband: profile (it is 'off')")
        names = [n for rule in self.operating_hours for n in (rule.hours_name, rule.starts_name)]
        names += [rule.name for rule in self.usage]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise PydanticCustomError(
                "rule",
                "operating_hours and usage must publish distinct names; {names} repeat",
                {"names": twice},
            )
        return self

    @property
    def has_usage(self) -> bool:
        """Whether the device accrues usage (its state must be persisted)."""
        return bool(self.operating_hours or self.usage)

    def signals_named(self) -> list[tuple[str, str]]:
        """Every `(key path, signal)` that must be a signal of the device."""
        named = [(f"deadbands.{name}", name) for name in self.deadbands]
        if self.aggregate is not None:
            named += [(f"aggregate.signals[{i}]", s) for i, s in enumerate(self.aggregate.signals)]
        named += [
            (f"operating_hours[{i}].signal", r.signal) for i, r in enumerate(self.operating_hours)
        ]
        named += [(f"usage[{i}].signal", r.signal) for i, r in enumerate(self.usage)]
        return [(f"preprocess.{key}", signal) for key, signal in named]


class DeviceConfig(_Strict):
    """One device: where it is, what it is, how to poll it."""

    name: Identifier = Field(description="Unique name, used in logs and state.")
    asset: Identifier = Field(description="Unique asset id its readings carry (MQTT `asset`).")
    transport: TransportConfig = Field(description="How to reach it: `tcp`, `rtu`, `serial_line`.")
    profile: str | None = Field(
        default=None,
        pattern=PROFILE_PATTERN,
        description="Firmware profile file stem under `profiles_dir`, or `auto` to identify the "
        "device; required for Modbus, omitted for `serial_line` (its parser names the signals).",
    )
    interval_s: float | None = Field(
        default=None,
        gt=0,
        description="Poll interval override for every signal, seconds; for `serial_line`, the "
        "period of `request`.",
    )
    startup_error_behavior: Literal["error", "ignore", "retry"] = Field(
        default="retry",
        description="If the first poll fails: `error` stops the agent, `ignore` drops the "
        "device, `retry` keeps retrying with back-off (as Telegraf).",
    )
    limits: PlannerLimits = Field(
        default_factory=PlannerLimits, description="Request batching limits."
    )
    writes: Literal["disabled", "enabled"] = Field(
        default="disabled", description="Whether commands may write to the device."
    )
    backoff: BackoffConfig = Field(
        default_factory=BackoffConfig, description="Retry timing when the device stops answering."
    )
    preprocess: PreprocessConfig = Field(
        default_factory=PreprocessConfig,
        description="Deadband, aggregation and usage counters applied to its readings.",
    )

    @model_validator(mode="after")
    def _profile_matches_transport(self) -> DeviceConfig:
        line = isinstance(self.transport, SerialLineTransportConfig)
        if not line and self.profile is None:
            raise PydanticCustomError(
                "rule", "profile is required for a Modbus device (a file stem, or 'auto')"
            )
        if line and self.profile is not None:
            raise PydanticCustomError(
                "rule",
                "profile must be omitted for a serial_line device: its parser names the signals."
                " Got {profile!r} instead",
                {"profile": self.profile},
            )
        prompted = isinstance(self.transport, SerialLineTransportConfig) and self.transport.request
        if prompted and self.interval_s is None:
            raise PydanticCustomError(
                "rule", "interval_s is required when transport.request is set"
            )
        return self


OUTBOX_FILE = "outbox.db"
"""The outbox file under `state_dir` when `outbox.path` is omitted."""


class OutboxSection(_Strict):
    """The durable outbox (`edge_agent._outbox.SqliteOutbox`): where, how large, how durable."""

    path: Path | None = Field(
        default=None,
        description="The SQLite file; relative to the config file's folder; omitted: "
        "`state_dir/outbox.db` (then `state_dir` is required).",
    )
    max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=64 * 1024,
        description="Size cap on the payload bytes held; when full the oldest batches are "
        "dropped, counted and reported as an `outbox_dropped` event.",
    )
    max_messages: int = Field(
        default=1_000_000, ge=1, description="Size cap on the batches held (same policy)."
    )
    sync: Literal["full", "normal"] = Field(
        default="full",
        description="`full`: fsync every batch (survives power loss); `normal`: fsync before a "
        "batch is first published (survives a crash; a power cut loses only unsent batches).",
    )
    compress: Annotated[Literal["off", "gzip"], BeforeValidator(_yaml_off)] = Field(
        default="off", description="`gzip` compresses each batch (`application/json+gzip`)."
    )


class BatchSection(_Strict):
    """How readings are grouped into telemetry batches."""

    max_readings: int = Field(
        default=500,
        ge=1,
        le=MAX_READINGS_PER_BATCH,
        description="Most readings (one asset at one time) per batch.",
    )
    linger_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Longest a reading waits for its batch to fill, seconds.",
    )


def _listen_address(value: object) -> object:
    value = _yaml_off(value)
    if value == "off" or not isinstance(value, str):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:  # noqa: PLR2004
        raise PydanticCustomError("rule", "must be HOST:PORT (e.g. 127.0.0.1:9108) or off")
    return value


class HealthSection(_Strict):
    """Agent health: published on the health topic and served at `/metrics`."""

    interval_s: float = Field(
        default=60.0,
        ge=0.1,
        le=86400,
        allow_inf_nan=False,
        description="How often health is published, seconds.",
    )
    metrics_listen: Annotated[str, BeforeValidator(_listen_address)] = Field(
        default="127.0.0.1:9108",
        description="HOST:PORT of the local Prometheus `/metrics` endpoint, or `off`.",
    )

    @property
    def listen(self) -> tuple[str, int] | None:
        """`metrics_listen` as (host, port), or None when `off`."""
        if self.metrics_listen == "off":
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host.strip("[]"), int(port)


def _check_prefix(value: str) -> str:
    try:
        build_topic("status", site="s", gateway="g", prefix=value)
    except (ContractError, ValueError) as exc:
        raise PydanticCustomError(
            "rule", "must be a valid topic prefix ({why})", {"why": str(exc)}
        ) from None
    return value


class EdgeConfig(_Strict):
    """The whole agent config."""

    site: str = Field(pattern=NAME_PATTERN, description="Site id (MQTT topic level).")
    gateway: str = Field(pattern=NAME_PATTERN, description="This gateway's id (MQTT topic level).")
    profiles_dir: Path = Field(
        default=Path("firmware_profiles"),
        description="Folder of firmware profiles; relative to the config file's folder.",
    )
    buses: dict[Identifier, SerialBusConfig] = Field(
        default_factory=dict, description="Modbus RTU buses by name."
    )
    state_dir: Path | None = Field(
        default=None,
        description="Folder for persisted agent state (usage counters, `usage.json`); relative "
        "to the config file's folder. Required when a device has usage rules.",
    )
    state_save_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="How often usage state is saved, seconds (and always at stop).",
    )
    devices: list[DeviceConfig] = Field(min_length=1, description="The devices to poll.")
    mqtt: MqttConfig | None = Field(
        default=None,
        description="The broker; omitted: `prognos-edge run` writes readings to stdout.",
    )
    topic_prefix: Annotated[str, AfterValidator(_check_prefix)] = Field(
        default=DEFAULT_PREFIX, description="MQTT topic prefix of contract v1."
    )
    outbox: OutboxSection = Field(default_factory=OutboxSection, description="Durable outbox.")
    batch: BatchSection = Field(default_factory=BatchSection, description="Batching.")
    health: HealthSection = Field(default_factory=HealthSection, description="Agent health.")

    @property
    def outbox_path(self) -> Path | None:
        """The outbox file: `outbox.path`, else `state_dir/outbox.db`, else None."""
        if self.outbox.path is not None:
            return self.outbox.path
        return None if self.state_dir is None else self.state_dir / OUTBOX_FILE


# ---------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of duplicate keys silently; a config must not."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def parse_config(text: str, *, source: str = "edge.yaml") -> EdgeConfig:
    """Validate config text (no I/O); `source` names the file in error messages.

    Raises:
        ConfigError: The text is not YAML, or breaks a rule; one line per problem.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise _config_error([f"{source}: {where}not valid YAML: {problem}"], source) from None
    if not isinstance(data, dict):
        raise _config_error(
            [f"{source}: the file must be a mapping of keys. Got {_short(data)} instead."], source
        )
    try:
        config = EdgeConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(error, data, source) for error in exc.errors()]
        raise _config_error(lines, source) from None
    if lines := _cross_check(config, source):
        raise _config_error(lines, source)
    return config


def load_config(path: str | Path, *, check_profiles: bool = True) -> EdgeConfig:
    """Read and validate the config file.

    `profiles_dir` and `state_dir` come back resolved against the file's folder. With
    `check_profiles`, every `profile` (other than `auto`) must name a `.yaml` file there.

    Raises:
        ConfigError: The file cannot be read, or the config is invalid.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _config_error([f"{path}: cannot read the config file: {exc}"], str(path)) from None
    config = parse_config(text, source=str(path))
    update: dict[str, object] = {"profiles_dir": path.parent / config.profiles_dir}
    if config.state_dir is not None:
        update["state_dir"] = path.parent / config.state_dir
    if config.outbox.path is not None:
        outbox = config.outbox.model_copy(update={"path": path.parent / config.outbox.path})
        update["outbox"] = outbox
    config = config.model_copy(update=update)
    if check_profiles:
        _check_profiles(config, str(path))
    return config


def _check_profiles(config: EdgeConfig, source: str) -> None:
    wanted = [(d.name, d.profile) for d in config.devices if d.profile not in (None, AUTO_PROFILE)]
    if not wanted:
        return
    if not config.profiles_dir.is_dir():
        where = str(config.profiles_dir)
        raise _config_error(
            [f"{source}: profiles_dir must be an existing folder. Got {where!r} instead."], source
        )
    known = sorted(p.stem for p in config.profiles_dir.iterdir() if p.suffix in {".yaml", ".yml"})
    listing = ", ".join(known) or "none there"
    lines = [
        (
            f'{source}: device "{name}": profile must name a .yaml file in '
            f"{config.profiles_dir} ({listing}). Got {profile!r} instead."
        )
        for name, profile in wanted
        if profile not in known
    ]
    if lines:
        raise _config_error(lines, source)


def _cross_check(config: EdgeConfig, source: str) -> list[str]:
    """Rules that span devices: unique names, assets, units per bus, ports, known buses."""
    lines: list[str] = []
    if config.mqtt is not None and config.outbox_path is None:
        lines.append(
            f"{source}: outbox.path is required when mqtt is set and state_dir is not "
            "(the outbox must be on disk)."
        )
    names: dict[str, int] = {}
    assets: dict[str, str] = {}
    channels: dict[tuple[object, ...], str] = {
        ("port", bus.port): f'bus "{name}"' for name, bus in config.buses.items()
    }
    for index, device in enumerate(config.devices):
        problems: list[tuple[str, str, object]] = []
        if device.preprocess.has_usage and config.state_dir is None:
            lines.append(
                f'{source}: device "{device.name}": preprocess has usage rules, so state_dir is '
                "required (accrued operating hours must survive a restart)."
            )
        if (first := names.setdefault(device.name, index)) != index:
            problems.append(("name", f"must be unique (devices[{first}] has it too)", device.name))
        if (owner := assets.setdefault(device.asset, device.name)) != device.name:
            problems.append(
                ("asset", f'must be unique (device "{owner}" has it too)', device.asset)
            )
        problems.extend(_transport_problems(device, config, channels))
        lines.extend(
            f'{source}: device "{device.name}": {key} {rule}. Got {value!r} instead.'
            for key, rule, value in problems
        )
    return lines


def _transport_problems(
    device: DeviceConfig, config: EdgeConfig, channels: dict[tuple[object, ...], str]
) -> list[tuple[str, str, object]]:
    """Clashes of one device's transport with earlier devices' (records its own in `channels`)."""
    me = f'device "{device.name}"'
    transport = device.transport
    problems: list[tuple[str, str, object]] = []
    if isinstance(transport, RtuTransportConfig):
        if transport.bus not in config.buses:
            known = ", ".join(repr(b) for b in config.buses) or "none declared"
            problems.append(
                ("transport.bus", f"must name a bus under buses ({known})", transport.bus)
            )
        owner = channels.setdefault(("rtu", transport.bus, transport.unit), me)
        where = f'bus "{transport.bus}"'
    elif isinstance(transport, TcpTransportConfig):
        owner = channels.setdefault(("tcp", transport.host, transport.port, transport.unit), me)
        where = f"{transport.host}:{transport.port}"
    else:
        if (user := channels.setdefault(("port", transport.port), me)) != me:
            problems.append(
                ("transport.port", f"must not be shared ({user} uses it)", transport.port)
            )
        return problems
    if owner != me:
        rule = f"must be unique on {where} ({owner} has it too)"
        problems.append(("transport.unit", rule, transport.unit))
    return problems


_RULES: Mapping[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a known key",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "string_pattern_mismatch": "must match {pattern}",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must have at least {min_length} character(s)",
    "string_too_long": "must have at most {max_length} character(s)",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "literal_error": "must be one of {expected}",
    "union_tag_invalid": "must be one of {expected_tags}",
    "union_tag_not_found": "is required",
    "path_type": "must be a path",
}


def _describe(error: Any, data: Mapping[str, Any], source: str) -> str:  # noqa: ANN401 - pydantic's ErrorDetails
    """One pydantic error as one line: file, device, key path, rule and value."""
    loc: list[str | int] = list(error["loc"])
    kind: str = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    value = error.get("input")
    where = source
    if len(loc) >= 2 and loc[0] == "devices" and isinstance(loc[1], int):  # noqa: PLR2004
        raw = data.get("devices")
        entry = raw[loc[1]] if isinstance(raw, list) and loc[1] < len(raw) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        where += f': device "{name}"' if isinstance(name, str) else f": devices[{loc[1]}]"
        loc, node = loc[2:], entry
    elif len(loc) >= 2 and loc[0] == "buses":  # noqa: PLR2004
        where += f': bus "{loc[1]}"'
        buses = data.get("buses")
        node = buses.get(loc[1]) if isinstance(buses, dict) else None
        loc = loc[2:]
    else:
        node = data
    path = _key_path(loc, node)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        path = f"{path}.type" if path else "type"
        value = ctx.get("tag")
    if kind == "rule" or kind not in _RULES:
        rule = error["msg"]
    else:
        rule = _RULES[kind].format(**{k: _plain(v) for k, v in ctx.items()})
    head = f"{where}: {path} {rule}" if path else f"{where}: {rule}"
    if kind in ("missing", "union_tag_not_found") or isinstance(value, Mapping):
        return f"{head}."  # nothing to quote, or a whole section (a rule across its keys)
    return f"{head}. Got {_short(value)} instead."


def _key_path(loc: Sequence[str | int], node: object) -> str:
    """`transport.parser.columns[2]` from a pydantic location, without union tags."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue  # the discriminated union's tag, not a key of the file
        if part.startswith(("function-", "nullable[")) or part in ("str", "none"):
            continue
        parts.append(f".{part}" if parts else part)
        node = node.get(part) if isinstance(node, dict) else None
    return "".join(parts)


def _plain(value: object) -> object:
    return value.pattern if isinstance(value, re.Pattern) else value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004
