"""A profile's register map, run backwards: engineering values to the words a device serves (pure).

`RegisterImage` compiles one encoder per signal of a firmware profile (with the edge agent's own
codec, `edge_agent.codecs.make_encoder`, so the simulator serves exactly the layout the profile
declares) and turns a dict of values into the four Modbus tables. A value of None serves the
signal's "invalid" pattern: the first `nan_value` of the profile, or NaN for a float without one,
which the edge agent reports as a bad reading (`sentinel`, `not_finite`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cloud.sim._trajectory import Value
from edge_agent._profile import Profile, Signal
from edge_agent.codecs import FLOAT_TYPES, make_encoder, word_count

Table = Literal["holding", "input", "coil", "discrete"]
TABLES: tuple[Table, ...] = ("holding", "input", "coil", "discrete")

_INT_RANGE: dict[str, tuple[int, int]] = {
    "int16": (-(1 << 15), (1 << 15) - 1),
    "uint16": (0, (1 << 16) - 1),
    "int32": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, (1 << 32) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint64": (0, (1 << 64) - 1),
    "bits": (0, (1 << 16) - 1),
}


@dataclass
class Tables:
    """The four Modbus tables of one unit: address to word (registers) or bit."""

    holding: dict[int, int] = field(default_factory=dict)
    input: dict[int, int] = field(default_factory=dict)
    coil: dict[int, bool] = field(default_factory=dict)
    discrete: dict[int, bool] = field(default_factory=dict)

    def words(self, table: Literal["holding", "input"]) -> dict[int, int]:
        """A register table by name."""
        return self.holding if table == "holding" else self.input

    def bits(self, table: Literal["coil", "discrete"]) -> dict[int, bool]:
        """A bit table by name."""
        return self.coil if table == "coil" else self.discrete


@dataclass(frozen=True, slots=True)
class _Slot:
    signal: Signal
    table: Table
    address: int
    count: int
    encode: Callable[[Value | None], list[int] | bool]


def _sentinel_raw(signal: Signal) -> int | float | None:
    if not signal.nan_value:
        return math.nan if signal.type in FLOAT_TYPES else None
    raw = signal.nan_value[0]
    if signal.type in FLOAT_TYPES:
        return float(raw)
    lo, hi = _INT_RANGE.get(signal.type, (0, 0xFFFF))
    raw = int(raw)
    return raw - (hi - lo + 1) if lo < 0 and raw > hi else raw


def _compile(signal: Signal) -> Callable[[Value | None], list[int] | bool]:
    table = signal.kind
    if table in ("coil", "discrete"):
        return bool
    encoder = make_encoder(
        signal.type,
        byte_order=signal.byte_order,
        length_words=signal.length_words,
        encoding=signal.encoding,
        padding=signal.padding,
        bit=signal.bit,
        bit_range=signal.bit_range,
    )
    sentinel = _sentinel_raw(signal)
    scale, offset = signal.scale, signal.offset
    kind = signal.type
    limits = _INT_RANGE.get(kind)

    def encode(value: Value | None) -> list[int]:
        if value is None:
            if sentinel is None:
                raise ValueError(f"signal {signal.name!r} has no invalid value to serve")
            return encoder(sentinel)
        if kind in ("string", "bool"):
            return encoder(value)
        raw = (float(value) - offset) / scale
        if kind in FLOAT_TYPES:
            return encoder(raw)
        lo, hi = limits or (0, 0xFFFF)
        return encoder(min(hi, max(lo, round(raw))))

    return encode


class RegisterImage:
    """Engineering values of one profile's signals to the registers and bits a device serves.

    Args:
        profile: The firmware profile.
        firmware: The firmware version the device reports in its identification register
            (default: the first version number in the profile's ``firmware``).
    """

    def __init__(self, profile: Profile, *, firmware: str | None = None) -> None:
        self.profile = profile
        self._slots = [
            _Slot(
                s,
                s.kind,
                s.address,
                word_count(s.type, length_words=s.length_words)
                if s.kind in ("holding", "input")
                else 1,
                _compile(s),
            )
            for s in profile.signals
        ]
        self._by_table: dict[Table, list[_Slot]] = {t: [] for t in TABLES}
        for slot in self._slots:
            self._by_table[slot.table].append(slot)
        self.firmware = firmware or _first_version(profile.firmware)
        self._identity = self._identification()

    @property
    def signals(self) -> tuple[str, ...]:
        """The profile's signal names, in profile order."""
        return tuple(slot.signal.name for slot in self._slots)

    def can_drop_out(self, name: str) -> bool:
        """Whether the signal has an invalid pattern to serve (a sentinel, or NaN for a float)."""
        signal = next(s.signal for s in self._slots if s.signal.name == name)
        return signal.kind in ("holding", "input") and _sentinel_raw(signal) is not None

    def encode(self, values: Mapping[str, Value | None]) -> Tables:
        """The tables for `values` (None: the signal's invalid pattern; missing: raw 0)."""
        tables = Tables()
        tables.input.update(self._identity.input)
        tables.holding.update(self._identity.holding)
        for slot in self._slots:
            if slot.signal.name not in values:
                continue
            encoded = slot.encode(values[slot.signal.name])
            if isinstance(encoded, bool):
                tables.bits(slot.table)[slot.address] = encoded  # type: ignore[arg-type]
                continue
            words = tables.words(slot.table)  # type: ignore[arg-type]
            for offset, word in enumerate(encoded):
                # Bit fields share their register with others: OR them together.
                words[slot.address + offset] = words.get(slot.address + offset, 0) | word
        return tables

    def signals_in(self, table: Table, address: int, count: int) -> list[str]:
        """Signals whose whole value lies in `count` registers (or bits) from `address`."""
        end = address + count
        return [
            s.signal.name
            for s in self._by_table[table]
            if s.address >= address and s.address + s.count <= end
        ]

    def _identification(self) -> Tables:
        tables = Tables()
        ident = self.profile.identification
        if ident is None:
            return tables
        code = ident.model_code
        encoder = make_encoder(
            code.type, byte_order=code.byte_order, length_words=code.length_words
        )
        target = tables.words(code.kind)
        for offset, word in enumerate(encoder(code.equals)):
            target[code.address + offset] = word
        fw = ident.firmware_version
        if fw is not None:
            major, minor = (int(p) for p in [*self.firmware.split("."), "0"][:2])
            words: list[int]
            if fw.format == "major_minor_bytes":
                words = [(major << 8) | minor]
            elif fw.format == "hundredths":
                words = [major * 100 + minor]
            elif fw.format == "bcd_bytes":
                words = [int(f"{major:02d}", 16) << 8 | int(f"{minor:02d}", 16)]
            else:
                words = make_encoder(
                    "string", byte_order=fw.byte_order, length_words=fw.length_words
                )(f"V{self.firmware}")
            if fw.format != "text" and fw.byte_order == "BADC":
                words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
            fw_table = tables.words(fw.kind)
            for offset, word in enumerate(words):
                fw_table[fw.address + offset] = word
        return tables


def _first_version(spec: str) -> str:
    match = re.search(r"\d+(?:\.\d+)?", spec)
    return match.group(0) if match else "1.0"
