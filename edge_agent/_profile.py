"""Firmware profiles: one YAML file per device model and firmware, validated once at load.

Theory of operation
-------------------
A profile is data (STYLE.md 5): the register map of a device model (which table, address, type,
byte order, scale, unit, sentinels, interval and deadband of every signal) plus what the cloud needs
to maintain the model (consumables, failure modes, spare parts). `load_profile` reads one file into
a frozen, typed `Profile`; `ProfileLibrary.load` reads a folder of them and refuses two profiles a
device could match both.

Loading never does I/O beyond reading the file, and reports every error in one `ProfileError`
whose lines have the shape of STYLE.md 4::

    firmware_profiles/acme_pump_2.1.yaml: signals[3].byte_order must be one of
    'ABCD','BADC','CDAB','DCBA'. Got 'ABDC' instead. (line 42)

Aliases are canonicalised here, once: byte orders (``big``, ``MSW-LE``, ``GHEFCDAB``), data types
(IEC 61131-3 ``REAL``, ``DINT``, ...) and table names (``holding_registers``), so that nothing after
loading ever sees an alias.

A device's profile is found by model and firmware version: either named in the device
configuration (`ProfileLibrary.find`), or read from the device's identification registers
(`ProfileLibrary.identification_requests`, then the pure `ProfileLibrary.select`). A profile's
``firmware`` is an exact version (``"2.4"``) or a specifier (``">=2.1,<3"``, ``"~=5.1"``,
``"2.*"``, ``"*"``), compared by the tiny `VersionSpec` below (numeric components only).

Rules:
1. Every key of a profile is known (``extra="forbid"``); a typo is an error, never ignored.
2. A choice is a `Literal`, never a boolean (``access: read_write``, not ``writable: true``).
3. ``defaults.byte_order`` and ``defaults.interval_s`` fill a signal that does not set its own, so
   a loaded `Signal` always carries its effective values. A ``string`` ignores the default byte
   order (text byte order is independent of the device's number format) and defaults to ``ABCD``.
4. Two profiles of one model whose firmware specifiers overlap are an error naming both files.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from edge_agent._exceptions import ConfigError
from edge_agent._model import BlockResult, ReadRequest, RegisterKind
from edge_agent.codecs import (
    BYTE_ORDERS,
    DATA_TYPES,
    FLOAT_TYPES,
    INTEGER_TYPES,
    ByteOrder,
    DataType,
    StringEncoding,
    StringPadding,
    canonical_byte_order,
    canonical_data_type,
    make_decoder,
    word_count,
)
from prognos_contract import NAME_PATTERN, RESERVED_NAMES

# ---------------------------------------------------------------------------------------------
# Firmware versions and specifiers

Version = tuple[int, ...]
"""A firmware version: numeric components, trailing zeros stripped (``"2.10.0"`` is ``(2, 10)``)."""

_VERSION_RE: Final = re.compile(r"^[vV]?(\d+(?:\.\d+)*)$")
_CLAUSE_RE: Final = re.compile(r"^(==|!=|>=|<=|>|<|~=)?\s*[vV]?(\d+(?:\.\d+)*)(\.\*|\.x)?$")
_Bound = tuple[Version, bool] | None  # (version, inclusive), None = unbounded


def _normal(version: Sequence[int]) -> Version:
    parts = list(version)
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def parse_version(text: str) -> Version:
    """Parse a firmware version such as ``"2.4"``, ``"v4.2.1"`` or ``"5.12"``.

    Components are compared as integers, so ``"2.10"`` is newer than ``"2.9"``, and trailing zeros
    do not matter (``"2.1"`` equals ``"2.1.0"``).

    Raises:
        ValueError: ``text`` is not dot-separated numbers (with an optional leading ``v``).
    """
    match = _VERSION_RE.match(text.strip())
    if match is None:
        raise ValueError(f"a version must be numbers separated by dots. Got {text!r} instead.")
    return _normal([int(part) for part in match.group(1).split(".")])


@dataclass(frozen=True, slots=True)
class _Clause:
    op: str
    version: Version  # as written (not normalised) for prefix clauses
    prefix: bool

    def admits(self, version: Version) -> bool:
        if self.prefix:
            padded = (*version, *(0,) * len(self.version))[: len(self.version)]
            return (padded == self.version) == (self.op == "==")
        mine = _normal(self.version)
        return {
            "==": version == mine,
            "!=": version != mine,
            ">=": version >= mine,
            ">": version > mine,
            "<=": version <= mine,
            "<": version < mine,
        }[self.op]


def _bump(version: Version) -> Version:
    """The first version after every version that starts with ``version`` (``2.1`` -> ``2.2``)."""
    return _normal((*version[:-1], version[-1] + 1))


def _tighter_low(a: _Bound, b: _Bound) -> _Bound:
    if a is None or b is None:
        return a or b
    if a[0] != b[0]:
        return a if a[0] > b[0] else b
    return (a[0], a[1] and b[1])


def _tighter_high(a: _Bound, b: _Bound) -> _Bound:
    if a is None or b is None:
        return a or b
    if a[0] != b[0]:
        return a if a[0] < b[0] else b
    return (a[0], a[1] and b[1])


def _interval_empty(low: _Bound, high: _Bound) -> bool:
    if low is None or high is None:
        return False
    return low[0] > high[0] or (low[0] == high[0] and not (low[1] and high[1]))


class VersionSpec:
    """A firmware version or specifier: ``"2.4"``, ``">=2.1,<3"``, ``"~=5.1"``, ``"2.*"``, ``"*"``.

    Clauses are separated by commas and must all hold. Operators are ``== != >= <= > < ~=``; a
    bare version means ``==``; ``2.*`` (or ``2.x``) matches every version starting with 2;
    ``~=5.1`` means ``>=5.1,<6`` and ``~=2.1.3`` means ``>=2.1.3,<2.2`` (as in PEP 440); ``*``
    matches any version.

    Args:
        text: The specifier.

    Raises:
        ValueError: the text is no specifier, or no version can satisfy it.
    """

    __slots__ = ("_clauses", "_high", "_low", "text")

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        clauses: list[_Clause] = []
        if self.text != "*":
            for part in self.text.split(","):
                clauses.extend(_parse_clause(part.strip(), self.text))
        self._clauses = tuple(clauses)
        low: _Bound = None
        high: _Bound = None
        for clause in self._clauses:
            low, high = _narrow(clause, low, high)
        if _interval_empty(low, high):
            raise ValueError(f"{self.text!r} matches no version.")
        self._low, self._high = low, high

    def __contains__(self, version: object) -> bool:
        """Whether a version (text or `Version`) satisfies every clause (garbage text: no)."""
        if isinstance(version, str):
            try:
                version = parse_version(version)
            except ValueError:
                return False
        if not isinstance(version, tuple):
            return False
        normal = _normal(version)
        return all(clause.admits(normal) for clause in self._clauses)

    def overlaps(self, other: VersionSpec) -> bool:
        """Whether some version could satisfy both specifiers (``!=`` clauses are ignored).

        Ignoring ``!=`` errs on the safe side: two profiles that only a ``!=`` keeps apart are
        reported as overlapping.
        """
        low = _tighter_low(self._low, other._low)
        high = _tighter_high(self._high, other._high)
        return not _interval_empty(low, high)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"VersionSpec({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VersionSpec) and self._clauses == other._clauses

    def __hash__(self) -> int:
        return hash(self._clauses)


def _parse_clause(part: str, whole: str) -> list[_Clause]:
    match = _CLAUSE_RE.match(part)
    if match is None:
        raise ValueError(f"{whole!r} has a clause that is no version or comparison: {part!r}.")
    op, digits, wildcard = match.group(1) or "==", match.group(2), match.group(3)
    version = tuple(int(piece) for piece in digits.split("."))
    if wildcard:
        if op not in {"==", "!="}:
            raise ValueError(f"{whole!r}: a wildcard only goes with '==' or '!=': {part!r}.")
        return [_Clause(op, version, prefix=True)]
    if op == "~=":
        if len(version) < 2:  # noqa: PLR2004 - PEP 440: '~=' needs major.minor at least
            raise ValueError(f"{whole!r}: '~=' needs at least two components: {part!r}.")
        return [_Clause(">=", version, prefix=False), _Clause("==", version[:-1], prefix=True)]
    return [_Clause(op, version, prefix=False)]


def _narrow(clause: _Clause, low: _Bound, high: _Bound) -> tuple[_Bound, _Bound]:
    if clause.prefix:
        if clause.op == "==":
            low = _tighter_low(low, (_normal(clause.version), True))
            high = _tighter_high(high, (_bump(clause.version), False))
        return low, high
    version = _normal(clause.version)
    if clause.op in {"==", ">=", ">"}:
        low = _tighter_low(low, (version, clause.op != ">"))
    if clause.op in {"==", "<=", "<"}:
        high = _tighter_high(high, (version, clause.op != "<"))
    return low, high


# ---------------------------------------------------------------------------------------------
# Validation helpers: every rule raises `_RuleError`, which the error formatter turns into a line.


class _RuleError(ValueError):
    """A broken rule: the key (relative to where pydantic reports it), the rule and the value."""

    def __init__(self, key: tuple[str | int, ...], rule: str, value: object = ...) -> None:
        super().__init__(rule)
        self.key = key
        self.rule = rule
        self.value = value


def _one_of(values: Iterable[str]) -> str:
    return "must be one of " + ",".join(repr(value) for value in values)


_KIND_ALIASES: Final[dict[str, RegisterKind]] = {
    "holding": "holding",
    "holding_register": "holding",
    "holding_registers": "holding",
    "input": "input",
    "input_register": "input",
    "input_registers": "input",
    "coil": "coil",
    "coils": "coil",
    "discrete": "discrete",
    "discrete_input": "discrete",
    "discrete_inputs": "discrete",
}
_BYTE_ORDER_SPELLINGS: Final = (
    *BYTE_ORDERS,
    *("big", "big-endian", "little", "little-endian", "byte-swap", "word-swap"),
    *("MSW-BE", "MSW-LE", "LSW-BE", "LSW-LE", "ABCDEFGH", "BADCFEHG", "GHEFCDAB", "HGFEDCBA"),
)
_TYPE_SPELLINGS: Final = (
    *DATA_TYPES,
    *("INT", "UINT", "WORD", "DINT", "UDINT", "DWORD", "LINT", "ULINT", "LWORD", "REAL", "LREAL"),
    *("float", "double", "BOOL", "STRING"),
)


def _canonical(function: typing.Callable[[str], str]) -> typing.Callable[[object], object]:
    """Map a known alias to its canonical name; leave anything else for the `Literal` to reject."""

    def canonicalise(value: object) -> object:
        if isinstance(value, str):
            try:
                return function(value)
            except (ValueError, KeyError):
                return value
        return value

    return canonicalise


def _kind_of(name: str) -> str:
    return _KIND_ALIASES[name.strip().casefold()]


_NAME_RE: Final = re.compile(NAME_PATTERN)
_LABEL_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_PART_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")


def _check_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise _RuleError(
            (),
            "must be ASCII letters, digits and '_.:-' (not first), at most 128 characters",
            value,
        )
    if value in RESERVED_NAMES:
        raise _RuleError((), _one_of(sorted(RESERVED_NAMES)).replace("must", "must not"), value)
    return value


def _not_a_yaml_boolean(value: object) -> object:
    if isinstance(value, bool):
        rule = "must be a string (YAML reads on/off/yes/no unquoted as true/false: quote it)"
        raise _RuleError((), rule, value)
    return value


def _check_label(value: str) -> str:
    if not _LABEL_RE.match(value):
        raise _RuleError(
            (), "must be ASCII letters, digits and '_.:-' (not first), at most 64", value
        )
    return value


def _check_part_number(value: str) -> str:
    if not _PART_RE.match(value):
        raise _RuleError((), "must be letters, digits and '._/-' (not first), at most 64", value)
    return value


def _check_firmware(value: object) -> object:
    if not isinstance(value, str):
        raise _RuleError(
            (), "must be a quoted string (YAML reads 2.10 as the number 2.1), e.g. '2.10'", value
        )
    try:
        VersionSpec(value)
    except ValueError as exc:
        raise _RuleError(
            (),
            f"must be a version ('2.1') or a specifier ('>=2.1,<3', '~=2.1', '2.*'); {exc}",
            value,
        ) from None
    return value


def _sentinels(value: object) -> object:
    values = value if isinstance(value, list | tuple) else [value]
    for index, item in enumerate(values):
        if isinstance(item, bool) or not isinstance(item, int | float):
            key: tuple[str | int, ...] = (index,) if isinstance(value, list | tuple) else ()
            raise _RuleError(key, "must be a number or a list of numbers", item)
    return tuple(values)


def _scalar(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _RuleError((), "must be an integer or a string", value)
    return value


Int = Annotated[int, Field(strict=True)]
Number = Annotated[float, Field(strict=True)]
Address = Annotated[int, Field(strict=True, ge=0, le=65535)]
# The patterns go into the JSON Schema for editors; the validators give our own messages.
Name = Annotated[
    str, AfterValidator(_check_name), Field(json_schema_extra={"pattern": NAME_PATTERN})
]
Label = Annotated[
    str,
    BeforeValidator(_not_a_yaml_boolean),
    AfterValidator(_check_label),
    Field(json_schema_extra={"pattern": _LABEL_RE.pattern}),
]
PartNumber = Annotated[
    str, AfterValidator(_check_part_number), Field(json_schema_extra={"pattern": _PART_RE.pattern})
]
Text = Annotated[str, Field(max_length=1024)]
ByteOrderField = Annotated[
    ByteOrder,
    BeforeValidator(_canonical(canonical_byte_order)),
    WithJsonSchema({"type": "string", "enum": list(_BYTE_ORDER_SPELLINGS)}),
]
DataTypeField = Annotated[
    DataType,
    BeforeValidator(_canonical(canonical_data_type)),
    WithJsonSchema({"type": "string", "enum": list(_TYPE_SPELLINGS)}),
]
KindField = Annotated[
    RegisterKind,
    BeforeValidator(_canonical(_kind_of)),
    WithJsonSchema({"type": "string", "enum": list(_KIND_ALIASES)}),
]
RegisterTable = Annotated[
    Literal["holding", "input"],
    BeforeValidator(_canonical(_kind_of)),
    WithJsonSchema(
        {
            "type": "string",
            "enum": [k for k, v in _KIND_ALIASES.items() if v in {"holding", "input"}],
        }
    ),
]
Sentinels = Annotated[
    tuple[int | float, ...],
    BeforeValidator(_sentinels),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "array", "items": {"type": "number"}, "minItems": 1},
            ]
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


# ---------------------------------------------------------------------------------------------
# The profile model


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


# ---------------------------------------------------------------------------------------------
# Errors: pydantic's ValidationError and YAML errors, turned into STYLE.md 4 lines


@dataclass(frozen=True, slots=True)
class ProfileIssue:
    """One broken rule of one profile file.

    Attributes:
        key: The key path (``signals[3].byte_order``); empty for the file as a whole.
        rule: What the key must be (``must be one of 'ABCD','BADC','CDAB','DCBA'``).
        value: The offending value, or ``...`` when there is none to show (a missing key).
        line: The 1-based line of the key in the file, if known.
    """

    key: str
    rule: str
    value: object = ...
    line: int | None = None

    def message(self, path: str) -> str:
        """The issue as one line: file, key, rule, value (and the line, if known)."""
        rule = self.rule.rstrip(".")
        text = f"{path}: {self.key} {rule}." if self.key else f"{path}: {rule}."
        if self.value is not ...:
            text += f" Got {_show(self.value)} instead."
        if self.line is not None:
            text += f" (line {self.line})"
        return text


class ProfileError(ConfigError):
    """A firmware profile (or a folder of them) is invalid, or no profile fits a device.

    Caller: as for every `ConfigError`, print the message and stop; fix the file it names.
    The message has one line per issue, each naming the file, the key, the rule and the value.

    Attributes:
        issues: Every broken rule, in file order (empty for errors that span files).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        issues: Sequence[ProfileIssue] = (),
    ) -> None:
        super().__init__(message, path=path, key=key)
        self.issues = tuple(issues)

    @classmethod
    def from_issues(cls, path: str, issues: Sequence[ProfileIssue]) -> ProfileError:
        """Build the error for ``issues`` of the file ``path`` (at least one issue)."""
        message = "\n".join(issue.message(path) for issue in issues)
        return cls(message, path=path, key=issues[0].key or None, issues=issues)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004 - a log-friendly width


def _format_key(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


_TYPE_RULES: Final[dict[str, str]] = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
}
_BOUND_RULES: Final[dict[str, tuple[str, str]]] = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _rule(error: Mapping[str, Any], loc: Sequence[str | int]) -> tuple[str, object]:  # noqa: PLR0911 - one return per error type
    """The rule text and the value to show for one pydantic error (``...``: show none)."""
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input", ...)
    if kind == "missing":
        return "is required", ...
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"is not a known key{hint}", ...
    if kind == "literal_error":
        expected = re.split(r", | or ", str(ctx.get("expected", "")))
        return "must be one of " + ",".join(expected), value
    if kind in _TYPE_RULES:
        return _TYPE_RULES[kind], value
    if kind in _BOUND_RULES:
        name, symbol = _BOUND_RULES[kind]
        return f"must be {symbol} {ctx.get(name)}", value
    if kind in {"too_short", "string_too_short"}:
        least = ctx.get("min_length")
        return ("must not be empty" if least == 1 else f"must have at least {least} items"), value
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items", ...
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters", value
    message = str(error.get("msg", kind)).removeprefix("Value error, ")
    return message[:1].lower() + message[1:], value


def _known_keys(loc: Sequence[str | int]) -> list[str]:
    """The keys allowed at ``loc`` (for "did you mean"), by walking the model's annotations."""
    model: type[BaseModel] | None = Profile
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _issues(exc: ValidationError, text: str | None) -> list[ProfileIssue]:
    root = _compose(text) if text is not None else None
    issues = []
    for error in exc.errors(include_url=False):
        loc: tuple[str | int, ...] = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _RuleError):
            loc, rule, value = (*loc, *cause.key), cause.rule, cause.value
        else:
            rule, value = _rule(error, loc)
        line = _line_of(root, loc) if root is not None else None
        issues.append(ProfileIssue(_format_key(loc), rule, value, line))
    # In file order, as a reader fixes them; pydantic's order is the model's field order.
    return sorted(issues, key=lambda issue: issue.line or 0)


# ---------------------------------------------------------------------------------------------
# YAML: strict about duplicate keys, with line numbers for errors


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error.

    PyYAML keeps the last of two equal keys silently; in a profile that hides a typo such as two
    ``scale:`` lines, so it is refused (the Home Assistant anti-pattern STYLE.md 3 warns about).
    """


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.line)
        except TypeError:
            continue  # an unhashable key: the constructor below reports it
        if first != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {first + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_StrictLoader)
    except yaml.YAMLError:
        return None


def _line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """The line of the deepest node of ``loc`` that exists in the document."""
    node = root
    if node is None:
        return None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if str(k.value) == str(part)), None)
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
    line: int = node.start_mark.line + 1
    return line


def _parse_yaml(text: str, path: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        issue = ProfileIssue("", f"{where}{problem} (YAML syntax)", ..., None)
        raise ProfileError.from_issues(path, [issue]) from None
    except yaml.YAMLError as exc:
        raise ProfileError.from_issues(path, [ProfileIssue("", f"invalid YAML: {exc}")]) from None


# ---------------------------------------------------------------------------------------------
# Loading


def parse_profile(text: str, *, path: str = "<profile>") -> Profile:
    """Validate the YAML text of a profile.

    Args:
        text: The YAML document.
        path: The name to use in error messages.

    Returns:
        The profile, its aliases canonicalised and defaults applied.

    Raises:
        ProfileError: the text is not YAML or breaks a rule; every issue is in the message.
    """
    data = _parse_yaml(text, path)
    if not isinstance(data, dict):
        rule = "must be a mapping of profile keys (vendor, model, firmware, signals, ...)"
        raise ProfileError.from_issues(path, [ProfileIssue("", f"the document {rule}", data)])
    try:
        return Profile.model_validate(data, context={"path": path})
    except ValidationError as exc:
        raise ProfileError.from_issues(path, _issues(exc, text)) from None


def load_profile(path: str | Path) -> Profile:
    """Read and validate one profile file.

    Args:
        path: The YAML file; error messages name it as given.

    Returns:
        The profile; `Profile.path` is ``path``.

    Raises:
        ProfileError: the file cannot be read, is not YAML, or breaks a rule.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ProfileError(f"{path}: cannot read the profile: {reason}.", path=str(path)) from None
    return parse_profile(text, path=str(path))


def profile_json_schema() -> dict[str, Any]:
    """The JSON Schema of a profile file, generated from the pydantic model.

    ``firmware_profiles/profile.schema.json`` is this schema; a test keeps the two equal.
    """
    schema = Profile.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:prognos:schema:firmware-profile.v1",
        **schema,
        "title": "Prognos firmware profile",
    }


def profile_json_schema_text() -> str:
    """`profile_json_schema` as the exact text of ``firmware_profiles/profile.schema.json``."""
    return json.dumps(profile_json_schema(), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------
# The library: all profiles, selection by model and firmware, identification


@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome of identifying a device: the chosen profile, or why there is none.

    Attributes:
        profile: The one profile that matched, or None.
        reason: One line: what matched, or why nothing (or more than one profile) did.
        details: One line per profile with identification registers: what the device reported
            and how it compared.
    """

    profile: Profile | None
    reason: str
    details: tuple[str, ...] = ()


def _model_code_request(ident: Identification, unit: int) -> ReadRequest:
    code = ident.model_code
    count = word_count(code.type, length_words=code.length_words)
    return ReadRequest(code.kind, unit, code.address, count)


def _firmware_request(register: FirmwareRegister, unit: int) -> ReadRequest:
    return ReadRequest(register.kind, unit, register.address, register.length_words or 1)


def _decode_firmware(register: FirmwareRegister, words: Sequence[int]) -> str:
    """The version text a firmware register carries (raises ValueError for garbage)."""
    if register.format == "text":
        text = make_decoder(
            "string", byte_order=register.byte_order, length_words=register.length_words
        )(words)
        return str(text).strip()
    word = int(make_decoder("uint16", byte_order=register.byte_order)(words))
    high, low = word >> 8, word & 0xFF
    if register.format == "major_minor_bytes":
        return f"{high}.{low}"
    if register.format == "hundredths":
        return f"{word // 100}.{word % 100:02d}"
    digits = [high >> 4, high & 0xF, low >> 4, low & 0xF]
    if any(digit > 9 for digit in digits):  # noqa: PLR2004 - a BCD digit is 0..9
        raise ValueError(f"0x{word:04X} is not BCD")
    return f"{digits[0] * 10 + digits[1]}.{digits[2] * 10 + digits[3]}"


def _show_code(value: object) -> str:
    return f"{value} (0x{value:04X})" if isinstance(value, int) and value >= 0 else repr(value)


class ProfileLibrary:
    """Every profile of a folder, with selection by model and firmware or by identification.

    Args:
        profiles: The profiles.

    Raises:
        ProfileError: two profiles of one model have overlapping firmware (the message names
            both files).
    """

    def __init__(self, profiles: Iterable[Profile]) -> None:
        self._profiles = tuple(profiles)
        problems = []
        for index, profile in enumerate(self._profiles):
            for earlier in self._profiles[:index]:
                if earlier.model.casefold() != profile.model.casefold():
                    continue
                if not earlier.firmware_spec.overlaps(profile.firmware_spec):
                    continue
                verb = (
                    "is already declared by"
                    if earlier.firmware_spec == profile.firmware_spec
                    else f"overlaps firmware {earlier.firmware!r} of"
                )
                problems.append(
                    f"{_where(profile)}: model {profile.model!r} firmware {profile.firmware!r} "
                    f"{verb} {_where(earlier)}; a device could match both."
                )
        if problems:
            raise ProfileError("\n".join(problems), path=_where(self._profiles[0]))

    @classmethod
    def load(cls, directory: str | Path) -> ProfileLibrary:
        """Load every ``*.yaml`` and ``*.yml`` profile of ``directory`` (not its subfolders).

        Args:
            directory: The folder, e.g. ``firmware_profiles``.

        Returns:
            The library.

        Raises:
            ProfileError: the folder is missing or empty, a file is invalid (every invalid file is
                reported, one message), or two profiles overlap.
        """
        folder = Path(directory)
        if not folder.is_dir():
            raise ProfileError(f"{directory}: no such profile folder.", path=str(directory))
        files = sorted(p for p in folder.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())
        if not files:
            raise ProfileError(f"{directory}: holds no profile (*.yaml).", path=str(directory))
        profiles, errors = [], []
        for file in files:
            try:
                profiles.append(load_profile(file))
            except ProfileError as exc:
                errors.append(exc)
        if errors:
            raise ProfileError(
                "\n".join(str(error) for error in errors),
                path=errors[0].path,
                key=errors[0].key,
                issues=[issue for error in errors for issue in error.issues],
            )
        return cls(profiles)

    @property
    def profiles(self) -> tuple[Profile, ...]:
        """Every profile, in load order."""
        return self._profiles

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def find(self, *, model: str, firmware: str) -> Profile:
        """Return the profile for ``model`` (case-insensitive) at firmware version ``firmware``.

        Raises:
            ProfileError: no profile covers them; the message lists what the library has.
        """
        for profile in self._profiles:
            if profile.matches(model=model, firmware=firmware):
                return profile
        same_model = [p for p in self._profiles if p.model.casefold() == model.casefold()]
        if same_model:
            covered = ", ".join(f"{p.firmware!r} ({_where(p)})" for p in same_model)
            message = f"no profile for model {model!r} firmware {firmware!r}; it has {covered}."
        else:
            known = ", ".join(sorted({repr(p.model) for p in self._profiles}))
            message = f"no profile for model {model!r}; known models: {known}."
        raise ProfileError(message, key="model")

    def get(self, profile_id: str) -> Profile:
        """Return the profile whose `Profile.profile_id` (file stem) is ``profile_id``.

        Raises:
            ProfileError: no such profile.
        """
        for profile in self._profiles:
            if profile.profile_id == profile_id:
                return profile
        known = ", ".join(sorted(p.profile_id for p in self._profiles))
        raise ProfileError(f"no profile {profile_id!r}; known profiles: {known}.", key="profile")

    def identification_requests(self, *, unit: int) -> tuple[ReadRequest, ...]:
        """The reads that identify a device at ``unit``: every identification register once.

        Each register is read on its own, never merged: profiles of different vendors put them at
        different addresses, and a merged read that touches an address the device lacks fails as
        a whole (exception 2), hiding the registers it does have.
        """
        requests: dict[ReadRequest, None] = {}
        for profile in self._profiles:
            ident = profile.identification
            if ident is None:
                continue
            requests[_model_code_request(ident, unit)] = None
            if ident.firmware_version is not None:
                requests[_firmware_request(ident.firmware_version, unit)] = None
        return tuple(requests)

    def select(self, results: Mapping[ReadRequest, BlockResult], *, unit: int) -> Selection:
        """Choose the profile whose identification registers match what the device answered.

        Pure: ``results`` holds the answers to `identification_requests` (missing or failed ones
        count as "does not match").

        Args:
            results: Answers keyed by request.
            unit: The unit id the requests were sent to.

        Returns:
            The selection: one profile, or None with the reason and per-profile details.
        """
        matched: list[Profile] = []
        details: list[str] = []
        for profile in self._profiles:
            verdict = _identify(profile, results, unit)
            if verdict is None:
                matched.append(profile)
                details.append(f"{profile.profile_id}: matches")
            else:
                details.append(f"{profile.profile_id}: {verdict}")
        if len(matched) == 1:
            chosen = matched[0]
            return Selection(
                chosen,
                f"unit {unit} is {chosen.vendor} {chosen.model} firmware {chosen.firmware!r} "
                f"({chosen.profile_id})",
                tuple(details),
            )
        if matched:
            names = ", ".join(p.profile_id for p in matched)
            return Selection(None, f"unit {unit} matches several profiles: {names}", tuple(details))
        return Selection(
            None, f"no profile matches unit {unit}: " + "; ".join(details), tuple(details)
        )


def _where(profile: Profile) -> str:
    return str(profile.path) if profile.path is not None else profile.profile_id


def _identify(  # noqa: PLR0911 - one return per reason
    profile: Profile, results: Mapping[ReadRequest, BlockResult], unit: int
) -> str | None:
    """None if ``profile`` matches the answers, else why not."""
    ident = profile.identification
    if ident is None:
        return "declares no identification registers"
    code = ident.model_code
    request = _model_code_request(ident, unit)
    answer = results.get(request)
    where = f"model code ({code.kind} {code.address})"
    if answer is None or answer.words is None:
        return f"{where} not read ({answer.error if answer else 'no answer'})"
    try:
        decoder = make_decoder(
            code.type, byte_order=code.byte_order, length_words=code.length_words
        )
        reported = decoder(answer.words[: request.count])
    except ValueError:
        return f"{where} answer is unusable: {list(answer.words)!r}"
    if isinstance(reported, str):
        reported = reported.strip()
    if reported != code.equals:
        return f"{where} reads {_show_code(reported)}, expects {_show_code(code.equals)}"
    register = ident.firmware_version
    if register is None:
        return None
    request = _firmware_request(register, unit)
    answer = results.get(request)
    where = f"firmware ({register.kind} {register.address})"
    if answer is None or answer.words is None:
        return f"{where} not read ({answer.error if answer else 'no answer'})"
    try:
        version = _decode_firmware(register, answer.words[: request.count])
    except ValueError as exc:
        return f"{where} answer is unusable: {exc}"
    if version not in profile.firmware_spec:
        return f"model matches, but firmware {version!r} is not in {profile.firmware!r}"
    return None
