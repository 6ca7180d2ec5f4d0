"""Field types of the profile model, alias canonicalisation, and the rule validators.

Validation helpers: every rule raises `_RuleError`, which the error formatter
(`edge_agent._profile._errors`) turns into a line naming the key, the rule and the value.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from edge_agent._model import RegisterKind
from edge_agent._profile._versions import VersionSpec
from edge_agent.codecs import (
    BYTE_ORDERS,
    DATA_TYPES,
    ByteOrder,
    DataType,
    canonical_byte_order,
    canonical_data_type,
)
from prognos_contract import NAME_PATTERN, RESERVED_NAMES


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
