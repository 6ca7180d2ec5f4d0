"""The profile model: frozen pydantic models of a profile file and their cross-field rules.

`Profile` is the root: its signals (`Signal`), identification registers (`Identification`),
consumables, failure modes and spare parts. Every rule raises `_RuleError`
(`edge_agent._profile._fields`), which becomes one line of a `ProfileError`.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)

from edge_agent._profile._fields import (
    Address,
    ByteOrderField,
    DataTypeField,
    Int,
    KindField,
    Label,
    Name,
    Number,
    PartNumber,
    RegisterTable,
    Sentinels,
    Text,
    _canonical,
    _check_firmware,
    _kind_of,
    _RuleError,
    _scalar,
)
from edge_agent._profile._versions import VersionSpec
from edge_agent.codecs import (
    FLOAT_TYPES,
    INTEGER_TYPES,
    DataType,
    StringEncoding,
    StringPadding,
    canonical_byte_order,
    canonical_data_type,
    word_count,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Defaults(_Model):
    """Values every signal takes unless it sets its own."""

    byte_order: ByteOrderField = "ABCD"
    """Byte order of multi-register numbers (and the byte swap of 16-bit ones)."""
    interval_s: Annotated[Number, Field(gt=0)] = 10.0
    """Poll interval, in seconds."""


class RequestLimits(_Model):
    """What this device model accepts in one request, when it is less than the Modbus maximum."""

    max_registers: Annotated[Int, Field(ge=1, le=125)] | None = None
    """Most registers per read (the protocol allows 125)."""
    max_bits: Annotated[Int, Field(ge=1, le=2000)] | None = None
    """Most coils or discrete inputs per read (the protocol allows 2000)."""
    max_gap_registers: Annotated[Int, Field(ge=0)] | None = None
    """Most unused registers a request may read to join two signals; 0 if the device answers an
    unmapped address with an exception."""
    max_gap_bits: Annotated[Int, Field(ge=0)] | None = None
    """Most unused bits a request may read to join two signals."""


class Clamp(_Model):
    """Bounds the engineering value is saturated to (after scale and offset)."""

    min: Number | None = None
    """Lowest value; a lower reading is reported as this value."""
    max: Number | None = None
    """Highest value; a higher reading is reported as this value."""

    @model_validator(mode="after")
    def _ordered(self) -> Clamp:
        if self.min is None and self.max is None:
            raise _RuleError((), "needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise _RuleError(("max",), f"must be >= min ({self.min:g})", self.max)
        return self


_REGISTER_ONLY: Final = ("scale", "offset", "nan_value", "clamp", "enum", "deadband", "bit")
_INT_RANGES: Final[dict[DataType, tuple[int, int]]] = {
    "int16": (-(2**15), 2**16 - 1),
    "uint16": (-(2**15), 2**16 - 1),
    "int32": (-(2**31), 2**32 - 1),
    "uint32": (-(2**31), 2**32 - 1),
    "int64": (-(2**63), 2**64 - 1),
    "uint64": (-(2**63), 2**64 - 1),
}


class Signal(_Model):
    """One value a device exposes: where it lives, how to decode it, how often to poll it."""

    name: Name
    """Signal name, as published (``bearing_temp_c``): put the unit in the name."""
    description: Text = ""
    kind: KindField
    """Modbus table: ``holding``, ``input`` (16-bit registers), ``coil``, ``discrete`` (bits)."""
    address: Address
    """Zero-based protocol address (a manual's register 40001 is holding address 0)."""
    type: DataTypeField
    """Data type; ``bool`` for coils and discrete inputs."""
    byte_order: ByteOrderField = "ABCD"
    """Byte order (defaults to ``defaults.byte_order``; see firmware_profiles/README.md)."""
    length_words: Annotated[Int, Field(ge=1, le=125)] | None = None
    """For ``string``: length in registers (two characters each)."""
    encoding: StringEncoding = "ascii"
    """For ``string``: text encoding."""
    padding: StringPadding = "null"
    """For ``string``: ``null`` (ends at the first NUL), ``space`` (trailing spaces) or ``none``."""
    bit: Annotated[Int, Field(ge=0, le=15)] | None = None
    """For ``bool`` in a register: the bit (0 = least significant); unset means word != 0."""
    bit_range: (
        tuple[Annotated[Int, Field(ge=0, le=15)], Annotated[Int, Field(ge=0, le=15)]] | None
    ) = None
    """For ``bits``: the inclusive [lo, hi] bits of the register, read as an unsigned integer."""
    scale: Number = 1.0
    """Engineering value = raw * scale + offset."""
    offset: Number = 0.0
    unit: Annotated[str, Field(max_length=32)] = ""
    """Engineering unit, e.g. ``bar``, ``m3/h``, ``degC``, ``K``, ``A``, ``mm/s``, ``h``."""
    nan_value: Sentinels = ()
    """Raw values that mean "invalid" (sensor open, not available): the reading is bad with reason
    ``sentinel``. Integers may be written as the register pattern (``0x8000``) or signed."""
    clamp: Clamp | None = None
    interval_s: Annotated[Number, Field(gt=0)] = 10.0
    """Poll interval in seconds (defaults to ``defaults.interval_s``)."""
    deadband: Annotated[Number, Field(ge=0)] | None = None
    """Report-by-exception threshold in the signal's unit; unset reports every poll."""
    access: Literal["read", "read_write"] = "read"
    """``read_write`` for setpoints and commands the agent may write (holding registers, coils)."""
    enum: Annotated[
        dict[int, Label] | None, Field(json_schema_extra={"propertyNames": {"pattern": r"^-?\d+$"}})
    ] = None
    """Code -> label (fault codes, states); only for integer types."""
    enum_value: Literal["label", "code"] | None = None
    """What an enum signal publishes: its ``label`` (default; unknown codes as ``unknown_<code>``)
    or its integer ``code``."""

    @model_validator(mode="after")
    def _consistent(self) -> Signal:  # noqa: C901, PLR0912 - one flat list of rules reads best
        is_bit = self.kind in {"coil", "discrete"}
        set_fields = self.model_fields_set
        if is_bit:
            if self.type != "bool":
                raise _RuleError(("type",), f"must be 'bool' for a {self.kind}", self.type)
            for key in (*_REGISTER_ONLY, "length_words", "bit_range", "byte_order"):
                if key in set_fields:
                    raise _RuleError((key,), f"does not apply to a {self.kind}")
        if self.type == "string":
            if self.length_words is None:
                raise _RuleError(("length_words",), "is required for type 'string'")
            if self.byte_order not in {"ABCD", "BADC"}:
                raise _RuleError(
                    ("byte_order",), "must be 'ABCD' or 'BADC' for a string", self.byte_order
                )
        elif self.length_words is not None:
            raise _RuleError(("length_words",), "only applies to type 'string'", self.length_words)
        for key in ("encoding", "padding"):
            if key in set_fields and self.type != "string":
                raise _RuleError((key,), "only applies to type 'string'")
        if self.bit is not None and (self.type != "bool" or is_bit):
            raise _RuleError(("bit",), "only applies to type 'bool' in a register", self.bit)
        if self.type == "bits":
            if self.bit_range is None:
                raise _RuleError(("bit_range",), "is required for type 'bits' ([lo, hi])")
            if self.bit_range[0] > self.bit_range[1]:
                raise _RuleError(
                    ("bit_range",), "must be [lo, hi] with lo <= hi", list(self.bit_range)
                )
        elif self.bit_range is not None:
            raise _RuleError(("bit_range",), "only applies to type 'bits'", list(self.bit_range))
        if self.address + self.words - 1 > 65535:  # noqa: PLR2004 - the last Modbus address
            raise _RuleError(
                ("address",), f"leaves no room for {self.words} registers", self.address
            )
        self._check_numbers(set_fields)
        if self.access == "read_write" and (
            self.kind not in {"holding", "coil"} or self.type == "bits" or self.bit is not None
        ):
            raise _RuleError(
                ("access",),
                "may be 'read_write' only for a whole holding register value or a coil",
                self.access,
            )
        return self

    def _check_numbers(self, set_fields: set[str]) -> None:  # noqa: C901, PLR0912 - flat rule list
        numeric = self.type not in {"bool", "string"}
        for key in ("scale", "offset", "clamp", "deadband", "nan_value"):
            if key in set_fields and not numeric:
                raise _RuleError((key,), f"does not apply to type {self.type!r}")
        if self.scale == 0:
            raise _RuleError(("scale",), "must not be 0", self.scale)
        if self.enum is not None:
            if self.type not in INTEGER_TYPES:
                raise _RuleError(("enum",), "only applies to integer types", self.type)
            for key in ("scale", "offset", "clamp", "deadband"):
                if key in set_fields:
                    raise _RuleError((key,), "does not apply to an enum")
        elif self.enum_value is not None:
            raise _RuleError(("enum_value",), "needs an enum", self.enum_value)
        low, high = _INT_RANGES.get(self.type, (None, None))
        for index, sentinel in enumerate(self.nan_value):
            if self.type in FLOAT_TYPES:
                continue
            if not isinstance(sentinel, int) or (
                low is not None and high is not None and not low <= sentinel <= high
            ):
                rule = f"must be integers that fit {self.type}"
                raise _RuleError(("nan_value", index), rule, sentinel)
        if self.clamp is not None and self.value_type == "int":
            for key in ("min", "max"):
                bound = getattr(self.clamp, key)
                if bound is not None and bound != int(bound):
                    raise _RuleError(
                        ("clamp", key), "must be a whole number for an integer signal", bound
                    )

    @property
    def words(self) -> int:
        """Registers the value spans (1 for coils and discrete inputs, which count bits)."""
        if self.kind in {"coil", "discrete"}:
            return 1
        return word_count(self.type, length_words=self.length_words)

    @property
    def value_type(self) -> Literal["bool", "int", "float", "str"]:
        """The type of the published value, which is also its InfluxDB field type."""
        if self.type == "bool":
            return "bool"
        if self.type == "string" or (self.enum is not None and self.enum_value != "code"):
            return "str"
        if self.type in FLOAT_TYPES or self.scale != 1 or self.offset != 0:
            return "float"
        return "int"


class ModelCode(_Model):
    """The register that tells the device model, and the value this profile's model reports."""

    kind: RegisterTable
    address: Address
    type: DataTypeField
    byte_order: ByteOrderField = "ABCD"
    length_words: Annotated[Int, Field(ge=1, le=125)] | None = None
    """For ``string``: length in registers."""
    equals: Annotated[int | str, BeforeValidator(_scalar)]
    """The value the device reports: an integer, or text for a ``string`` register."""

    @model_validator(mode="after")
    def _consistent(self) -> ModelCode:
        if self.type == "string":
            if self.length_words is None:
                raise _RuleError(("length_words",), "is required for type 'string'")
            if not isinstance(self.equals, str):
                raise _RuleError(("equals",), "must be text for a string register", self.equals)
        elif self.type in INTEGER_TYPES - {"bits"}:
            if not isinstance(self.equals, int):
                raise _RuleError(("equals",), f"must be an integer for {self.type}", self.equals)
        else:
            raise _RuleError(("type",), "must be an integer type or 'string'", self.type)
        return self


class FirmwareRegister(_Model):
    """The register that tells the firmware version, and how it encodes it."""

    kind: RegisterTable
    address: Address
    format: Literal["major_minor_bytes", "hundredths", "bcd_bytes", "text"]
    """``major_minor_bytes``: high byte major, low byte minor (0x0204 is 2.4); ``hundredths``:
    major * 100 + minor (512 is 5.12); ``bcd_bytes``: two BCD bytes (0x0215 is 2.15); ``text``: a
    string register such as ``V4.2.1``."""
    byte_order: Literal["ABCD", "BADC"] = "ABCD"
    """``BADC`` if the device swaps the bytes of the register (or of the text)."""
    length_words: Annotated[Int, Field(ge=1, le=125)] | None = None
    """For ``text``: length in registers."""

    @model_validator(mode="after")
    def _consistent(self) -> FirmwareRegister:
        if (self.format == "text") != (self.length_words is not None):
            raise _RuleError(("length_words",), "is required for format 'text', and only for it")
        return self


class Identification(_Model):
    """Registers that identify the device, for choosing its profile automatically."""

    model_code: ModelCode
    firmware_version: FirmwareRegister | None = None
    """Unset if the device does not report its firmware: the profile then matches on the model
    code alone."""


class Consumable(_Model):
    """A part that wears out and is replaced on condition or on a schedule (filter, tool)."""

    name: Name
    description: Text = ""
    signal: Name | None = None
    """The signal that shows its wear (a differential pressure, tool wear minutes)."""
    threshold: Number | None = None
    """Replace when ``signal`` crosses this value, in the signal's unit."""
    replace_when: Literal["above", "below"] = "above"
    """Whether wear makes ``signal`` rise (``above`` the threshold) or fall."""
    interval_h: Annotated[Number, Field(gt=0)] | None = None
    """Replace after this many operating hours."""
    interval_days: Annotated[Number, Field(gt=0)] | None = None
    """Replace after this many calendar days."""
    spare_part: PartNumber | None = None
    """Part number of the replacement (one of ``spare_parts``)."""

    @model_validator(mode="after")
    def _consistent(self) -> Consumable:
        if self.threshold is not None and self.signal is None:
            raise _RuleError(("signal",), "is required with a threshold")
        if self.threshold is None and self.interval_h is None and self.interval_days is None:
            raise _RuleError((), "needs a threshold, interval_h or interval_days")
        return self


class FailureMode(_Model):
    """A way this model fails, the signals that show it coming, and the parts that fix it."""

    name: Name
    description: Text = ""
    signals: tuple[Name, ...] = ()
    """Signals that carry evidence of this failure mode."""
    fault_signal: Name | None = None
    """The enum signal whose codes report this failure."""
    fault_codes: tuple[Int, ...] = ()
    """Codes of ``fault_signal`` that mean this failure happened."""
    spare_parts: tuple[PartNumber, ...] = ()
    """Part numbers (from ``spare_parts``) a repair usually needs."""

    @model_validator(mode="after")
    def _consistent(self) -> FailureMode:
        if bool(self.fault_codes) != (self.fault_signal is not None):
            raise _RuleError(("fault_codes",), "and fault_signal go together")
        return self


class SparePart(_Model):
    """A part the service technician may need for this model."""

    part_number: PartNumber
    description: Text
    quantity: Annotated[Int, Field(ge=1)] = 1
    """How many one repair or replacement uses."""


class Profile(_Model):
    """A device model and firmware range: registers, signals, consumables, failure modes, parts."""

    vendor: Annotated[str, Field(min_length=1, max_length=64)]
    model: Annotated[str, Field(min_length=1, max_length=64)]
    """The model name, as an asset record or device configuration names it."""
    firmware: Annotated[str, BeforeValidator(_check_firmware), WithJsonSchema({"type": "string"})]
    """The firmware this profile covers: ``"2.4"``, ``">=2.1,<3"``, ``"~=5.1"``, ``"2.*"``, ``"*"``
    (quote it: YAML reads 2.10 as a number)."""
    description: Text = ""
    defaults: Defaults = Defaults()
    request_limits: RequestLimits = RequestLimits()
    identification: Identification | None = None
    signals: tuple[Signal, ...]
    """The values the device exposes (at least one)."""
    consumables: tuple[Consumable, ...] = ()
    failure_modes: tuple[FailureMode, ...] = ()
    spare_parts: tuple[SparePart, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: object) -> object:
        """Fill signals' byte order and interval from ``defaults`` (Rule 3), on the raw mapping."""
        if not isinstance(data, dict) or not isinstance(data.get("signals"), list):
            return data
        defaults = data.get("defaults")
        if not isinstance(defaults, dict):
            return data
        fill: dict[str, object] = {}
        with contextlib.suppress(ValueError, AttributeError):  # reported at defaults.byte_order
            fill["byte_order"] = canonical_byte_order(defaults.get("byte_order", "ABCD"))
        interval = defaults.get("interval_s")
        if isinstance(interval, int | float) and not isinstance(interval, bool) and interval > 0:
            fill["interval_s"] = interval
        signals = []
        for signal in data["signals"]:
            if isinstance(signal, dict):
                extra = {key: value for key, value in fill.items() if key not in signal}
                text = _canonical(canonical_data_type)(signal.get("type")) == "string"
                if text or _canonical(_kind_of)(signal.get("kind")) in {"coil", "discrete"}:
                    extra.pop("byte_order", None)
                signal = {**signal, **extra}  # noqa: PLW2901 - a filled copy, never the input
            signals.append(signal)
        return {**data, "signals": signals}

    @model_validator(mode="after")
    def _cross_references(self) -> Profile:  # noqa: C901, PLR0912 - one flat list of rules
        if not self.signals:
            # Checked here, not with min_length, which pydantic also reports when items fail.
            raise _RuleError(("signals",), "must not be empty", [])
        by_name: dict[str, int] = {}
        for index, signal in enumerate(self.signals):
            if signal.name in by_name:
                rule = f"is already used by signals[{by_name[signal.name]}]"
                raise _RuleError(("signals", index, "name"), rule, signal.name)
            by_name[signal.name] = index
        parts = {part.part_number for part in self.spare_parts}
        seen: set[str] = set()
        for index, consumable in enumerate(self.consumables):
            where = ("consumables", index)
            _unique(consumable.name, seen, (*where, "name"))
            if consumable.signal is not None:
                signal = _known_signal(by_name, self.signals, consumable.signal, (*where, "signal"))
                if signal.value_type not in {"int", "float"}:
                    raise _RuleError(
                        (*where, "signal"), "must name a numeric signal", consumable.signal
                    )
            _known_part(parts, consumable.spare_part, (*where, "spare_part"))
        seen = set()
        for index, mode in enumerate(self.failure_modes):
            where = ("failure_modes", index)
            _unique(mode.name, seen, (*where, "name"))
            for position, name in enumerate(mode.signals):
                _known_signal(by_name, self.signals, name, (*where, "signals", position))
            if mode.fault_signal is not None:
                fault = _known_signal(
                    by_name, self.signals, mode.fault_signal, (*where, "fault_signal")
                )
                codes = fault.enum or {}
                for position, code in enumerate(mode.fault_codes):
                    if code not in codes:
                        rule = f"must be codes of {fault.name}'s enum ({sorted(codes)})"
                        raise _RuleError((*where, "fault_codes", position), rule, code)
            for position, part in enumerate(mode.spare_parts):
                _known_part(parts, part, (*where, "spare_parts", position))
        seen = set()
        for index, spare in enumerate(self.spare_parts):
            _unique(spare.part_number, seen, ("spare_parts", index, "part_number"))
        return self

    _path: Path | None = PrivateAttr(default=None)
    _spec: VersionSpec = PrivateAttr(default_factory=lambda: VersionSpec("*"))

    def model_post_init(self, context: Any, /) -> None:  # noqa: ANN401 - pydantic's signature
        """Remember the file the profile came from (passed as validation context ``path``)."""
        path = context.get("path") if isinstance(context, dict) else None
        self._path = Path(path) if path is not None else None
        self._spec = VersionSpec(self.firmware)

    @property
    def path(self) -> Path | None:
        """The file this profile was loaded from, if any."""
        return self._path

    @property
    def firmware_spec(self) -> VersionSpec:
        """The parsed ``firmware`` specifier."""
        return self._spec

    @property
    def profile_id(self) -> str:
        """The profile's name: its file stem (``aquaflo_cpv150_2.x``), or vendor_model_firmware."""
        if self.path is not None:
            return self.path.stem
        return re.sub(r"[^a-z0-9.]+", "_", f"{self.vendor}_{self.model}_{self.firmware}".lower())

    def signal(self, name: str) -> Signal:
        """Return the signal called ``name``.

        Raises:
            KeyError: no such signal.
        """
        for signal in self.signals:
            if signal.name == name:
                return signal
        raise KeyError(name)

    def matches(self, *, model: str, firmware: str) -> bool:
        """Whether this profile covers ``model`` (case-insensitive) at firmware ``firmware``."""
        return self.model.casefold() == model.casefold() and firmware in self.firmware_spec


def _unique(name: str, seen: set[str], key: tuple[str | int, ...]) -> None:
    if name in seen:
        raise _RuleError(key, "is already used", name)
    seen.add(name)


def _known_signal(
    by_name: Mapping[str, int], signals: Sequence[Signal], name: str, key: tuple[str | int, ...]
) -> Signal:
    if name not in by_name:
        close = difflib.get_close_matches(name, list(by_name), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _RuleError(key, f"must name a signal of this profile{hint}", name)
    return signals[by_name[name]]


def _known_part(parts: set[str], part: str | None, key: tuple[str | int, ...]) -> None:
    if part is not None and part not in parts:
        raise _RuleError(key, "must be the part_number of one of spare_parts", part)
