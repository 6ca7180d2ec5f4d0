"""Pure Modbus register codec: words and bits to values and back, for every type and byte order.

Theory of operation
-------------------
A Modbus register is a 16-bit word sent high byte first. A value wider than one register spans
several consecutive registers, and devices disagree on the order of its bytes. Name the value's
bytes in big-endian order ``A B C D`` (``A`` most significant); the byte order names what the
registers carry, in address order:

==========  ====================  =========================================================
order       registers (32 bit)    also known as
==========  ====================  =========================================================
``ABCD``    ``AB`` ``CD``         big endian, Motorola, ``MSW-BE``
``BADC``    ``BA`` ``DC``         big endian with bytes swapped in each word, ``MSW-LE``
``CDAB``    ``CD`` ``AB``         little-endian word order ("word swap"), ``LSW-BE``
``DCBA``    ``DC`` ``BA``         little endian, Intel, ``LSW-LE``
==========  ====================  =========================================================

The same two rules extend to every width: ``CDAB`` and ``DCBA`` reverse the order of the words,
``BADC`` and ``DCBA`` swap the two bytes of each word. So a 16-bit value has two layouts (``AB``
for ``ABCD``/``CDAB``, ``BA`` for ``BADC``/``DCBA``), and a 64-bit value has four (``CDAB`` is
``GH EF CD AB``), as in Telegraf's Modbus input.

Everything here is compiled once: `make_decoder` and `make_encoder` return closures over
precompiled `struct.Struct` objects, so decoding a poll runs no branches on the type. Nothing here
does I/O, reads a clock or logs.

Rules:
1. ``decode(encode(x)) == x`` for every type and byte order (for strings: text that fits and does
   not end in padding).
2. A decoder raises `ValueError` when given the wrong number of words or a word outside
   ``0..65535``; an encoder raises `ValueError` for a value its type cannot hold. Nothing else
   raises.
3. Bits are numbered from the least significant bit of the word (bit 0) after the word's own byte
   swap (``BADC``/``DCBA``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

ByteOrder = Literal["ABCD", "BADC", "CDAB", "DCBA"]
"""Canonical byte orders (see the module docstring)."""

DataType = Literal[
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
    "string",
    "bool",
    "bits",
]
"""Register data types. ``bool`` is one bit of a word (or the whole word non-zero); ``bits`` is an
unsigned bit field of one word; ``string`` spans ``length_words`` registers."""

StringEncoding = Literal["ascii", "latin-1", "utf-8"]
"""How the bytes of a ``string`` register block are turned into text."""

StringPadding = Literal["null", "space", "none"]
"""How a ``string`` fills its registers: ``null`` ends at the first NUL byte, ``space`` is padded
with trailing spaces (trailing NULs are stripped too), ``none`` keeps every byte."""

Decoded = int | float | str | bool
"""What a decoder returns."""

BYTE_ORDERS: Final[tuple[ByteOrder, ...]] = get_args(ByteOrder)
DATA_TYPES: Final[tuple[DataType, ...]] = get_args(DataType)
NUMERIC_TYPES: Final[frozenset[DataType]] = frozenset(
    {"int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"}
)
INTEGER_TYPES: Final[frozenset[DataType]] = frozenset(
    {"int16", "uint16", "int32", "uint32", "int64", "uint64", "bits"}
)
FLOAT_TYPES: Final[frozenset[DataType]] = frozenset({"float32", "float64"})

_WORDS: Final[dict[DataType, int]] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "int64": 4,
    "uint64": 4,
    "float32": 2,
    "float64": 4,
    "bool": 1,
    "bits": 1,
}
_STRUCT_CODE: Final[dict[DataType, str]] = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}
_WORD_BITS: Final = 16

BYTE_ORDER_ALIASES: Final[dict[str, ByteOrder]] = {
    "abcd": "ABCD",
    "big": "ABCD",
    "big-endian": "ABCD",
    "msw-be": "ABCD",
    "abcdefgh": "ABCD",
    "badc": "BADC",
    "byte-swap": "BADC",
    "msw-le": "BADC",
    "badcfehg": "BADC",
    "cdab": "CDAB",
    "word-swap": "CDAB",
    "lsw-be": "CDAB",
    "ghefcdab": "CDAB",
    "dcba": "DCBA",
    "little": "DCBA",
    "little-endian": "DCBA",
    "lsw-le": "DCBA",
    "hgfedcba": "DCBA",
}
"""Accepted spellings (compared case-insensitively) and the canonical order each stands for.

``MSW``/``LSW`` say which word comes first, ``BE``/``LE`` the byte order inside a word (Telegraf's
names); the eight-letter forms are Telegraf's 64-bit spellings.
"""

DATA_TYPE_ALIASES: Final[dict[str, DataType]] = {
    **{name: name for name in get_args(DataType)},
    # IEC 61131-3 names, as PLC and drive manuals print them.
    "int": "int16",
    "uint": "uint16",
    "word": "uint16",
    "dint": "int32",
    "udint": "uint32",
    "dword": "uint32",
    "lint": "int64",
    "ulint": "uint64",
    "lword": "uint64",
    "real": "float32",
    "float": "float32",
    "lreal": "float64",
    "double": "float64",
    "boolean": "bool",
    "bitfield": "bits",
}
"""Accepted type names (compared case-insensitively) and the canonical type each stands for."""


def canonical_byte_order(name: str) -> ByteOrder:
    """Return the canonical byte order for ``name`` or one of its aliases.

    Args:
        name: ``ABCD``/``BADC``/``CDAB``/``DCBA`` or an alias such as ``big``, ``little``,
            ``MSW-BE`` or ``GHEFCDAB`` (case-insensitive).

    Returns:
        The canonical byte order.

    Raises:
        ValueError: ``name`` is no known byte order.
    """
    try:
        return BYTE_ORDER_ALIASES[name.strip().casefold()]
    except KeyError:
        raise ValueError(
            f"byte order must be one of {', '.join(map(repr, BYTE_ORDERS))}. Got {name!r} instead."
        ) from None


def canonical_data_type(name: str) -> DataType:
    """Return the canonical data type for ``name`` or an IEC 61131-3 alias (``REAL``, ``DINT``).

    Raises:
        ValueError: ``name`` is no known type.
    """
    try:
        return DATA_TYPE_ALIASES[name.strip().casefold()]
    except KeyError:
        raise ValueError(
            f"type must be one of {', '.join(map(repr, DATA_TYPES))}. Got {name!r} instead."
        ) from None


def word_count(data_type: DataType, *, length_words: int | None = None) -> int:
    """Return how many registers a value of ``data_type`` spans.

    Args:
        data_type: The register data type.
        length_words: The length of a ``string``, in registers (two bytes each).

    Raises:
        ValueError: a ``string`` without a positive ``length_words``.
    """
    if data_type == "string":
        if length_words is None or length_words < 1:
            raise ValueError(f"a string needs length_words >= 1. Got {length_words!r} instead.")
        return length_words
    return _WORDS[data_type]


def _word_layout(byte_order: ByteOrder) -> tuple[str, bool]:
    """The struct byte-order character for one word, and whether the word order is reversed."""
    swap_bytes = byte_order in {"BADC", "DCBA"}
    reverse_words = byte_order in {"CDAB", "DCBA"}
    return ("<" if swap_bytes else ">"), reverse_words


def _checked_range(lo: int, hi: int) -> None:
    if not 0 <= lo <= hi < _WORD_BITS:
        raise ValueError(f"a bit range must satisfy 0 <= lo <= hi <= 15. Got ({lo}, {hi}) instead.")


def make_decoder(
    data_type: DataType,
    *,
    byte_order: ByteOrder = "ABCD",
    length_words: int | None = None,
    encoding: StringEncoding = "ascii",
    padding: StringPadding = "null",
    bit: int | None = None,
    bit_range: tuple[int, int] | None = None,
) -> Callable[[Sequence[int]], Decoded]:
    """Compile a decoder from raw registers to a value.

    Args:
        data_type: The register data type.
        byte_order: The canonical byte order (see the module docstring).
        length_words: For ``string``: its length in registers.
        encoding: For ``string``: the text encoding; undecodable bytes become U+FFFD.
        padding: For ``string``: how the text fills its registers.
        bit: For ``bool``: the bit of the word (0 = least significant); ``None`` means the whole
            word, non-zero is ``True``.
        bit_range: For ``bits``: the inclusive ``(lo, hi)`` bits of the word, read as an unsigned
            integer.

    Returns:
        A function from exactly `word_count` registers to the value. It raises `ValueError` for the
        wrong number of words or a word outside ``0..65535``.

    Raises:
        ValueError: an impossible combination (a ``string`` in ``CDAB`` order, a bit above 15, ...).
    """
    count = word_count(data_type, length_words=length_words)
    word_char, reverse = _word_layout(byte_order)
    words_struct = struct.Struct(f"{word_char}{count}H")

    pack = words_struct.pack

    def bad_words(words: Sequence[int]) -> ValueError:
        return ValueError(
            f"expected {count} words in 0..65535 for {data_type}. Got {list(words)!r} instead."
        )

    def to_bytes(words: Sequence[int]) -> bytes:
        try:
            return pack(*(reversed(words) if reverse else words))
        except struct.error as exc:
            raise bad_words(words) from exc

    if data_type in NUMERIC_TYPES:
        unpack = struct.Struct(">" + _STRUCT_CODE[data_type]).unpack
        return _number_decoder(pack, unpack, reverse=reverse, bad_words=bad_words)
    if data_type == "string":
        return _string_decoder(to_bytes, byte_order=byte_order, encoding=encoding, padding=padding)
    word_struct = struct.Struct(">H")
    if data_type == "bool":
        if bit is None:
            return lambda words: word_struct.unpack(to_bytes(words))[0] != 0
        _checked_range(bit, bit)
        mask = 1 << bit
        return lambda words: bool(word_struct.unpack(to_bytes(words))[0] & mask)
    if bit_range is None:
        raise ValueError("type 'bits' needs a bit_range (lo, hi).")
    lo, hi = bit_range
    _checked_range(lo, hi)
    field_mask = (1 << (hi - lo + 1)) - 1
    return lambda words: (word_struct.unpack(to_bytes(words))[0] >> lo) & field_mask


def _number_decoder(
    pack: Callable[..., bytes],
    unpack: Callable[[bytes], tuple[int | float, ...]],
    *,
    reverse: bool,
    bad_words: Callable[[Sequence[int]], ValueError],
) -> Callable[[Sequence[int]], Decoded]:
    """A numeric decoder with `to_bytes` inlined: a decoder runs once per signal per poll."""

    def decode_number(words: Sequence[int]) -> Decoded:
        try:
            packed = pack(*words)
        except struct.error as exc:
            raise bad_words(words) from exc
        value: int | float = unpack(packed)[0]
        return value

    def decode_number_reversed(words: Sequence[int]) -> Decoded:
        try:
            packed = pack(*reversed(words))
        except struct.error as exc:
            raise bad_words(words) from exc
        value: int | float = unpack(packed)[0]
        return value

    return decode_number_reversed if reverse else decode_number


def _check_string_order(byte_order: ByteOrder) -> None:
    # Text is stored first character first; only the byte order inside a word varies by device.
    if byte_order not in {"ABCD", "BADC"}:
        raise ValueError(
            f"a string's byte order must be 'ABCD' or 'BADC'. Got {byte_order!r} instead."
        )


def _string_decoder(
    to_bytes: Callable[[Sequence[int]], bytes],
    *,
    byte_order: ByteOrder,
    encoding: StringEncoding,
    padding: StringPadding,
) -> Callable[[Sequence[int]], Decoded]:
    _check_string_order(byte_order)

    def decode_string(words: Sequence[int]) -> Decoded:
        raw = to_bytes(words)
        if padding == "null":
            raw = raw.split(b"\0", 1)[0]
        elif padding == "space":
            raw = raw.rstrip(b" \0")
        return raw.decode(encoding, errors="replace")

    return decode_string


def make_encoder(
    data_type: DataType,
    *,
    byte_order: ByteOrder = "ABCD",
    length_words: int | None = None,
    encoding: StringEncoding = "ascii",
    padding: StringPadding = "null",
    bit: int | None = None,
    bit_range: tuple[int, int] | None = None,
) -> Callable[[Decoded], list[int]]:
    """Compile an encoder from a value to raw registers (the inverse of `make_decoder`).

    A ``bool`` or ``bits`` field encodes into an otherwise zero word: writing it to a device that
    keeps other data in the same register needs a mask write (Modbus function 22) or a
    read-modify-write, with `field_mask` giving the bits that belong to the field.

    Args:
        data_type: The register data type.
        byte_order: The canonical byte order.
        length_words: For ``string``: its length in registers.
        encoding: For ``string``: the text encoding.
        padding: For ``string``: ``null`` pads with NUL bytes, ``space`` with spaces; ``none``
            needs text that fills the registers exactly.
        bit: For ``bool``: the bit of the word; ``None`` writes 1 or 0 to the whole word.
        bit_range: For ``bits``: the inclusive ``(lo, hi)`` bits of the word.

    Returns:
        A function from a value to a list of `word_count` registers. It raises `ValueError` for a
        value the type cannot hold (out of range, wrong Python type, text too long or not
        encodable).

    Raises:
        ValueError: an impossible combination, as for `make_decoder`.
    """
    count = word_count(data_type, length_words=length_words)
    word_char, reverse = _word_layout(byte_order)
    words_struct = struct.Struct(f"{word_char}{count}H")

    def to_words(raw: bytes) -> list[int]:
        words = list(words_struct.unpack(raw))
        return words[::-1] if reverse else words

    if data_type in NUMERIC_TYPES:
        return _number_encoder(data_type, to_words)
    if data_type == "string":
        _check_string_order(byte_order)
        return _string_encoder(to_words, count=count, encoding=encoding, padding=padding)
    if data_type == "bits" and bit_range is None:
        raise ValueError("type 'bits' needs a bit_range (lo, hi).")
    lo, hi = (bit, bit) if data_type == "bool" and bit is not None else (bit_range or (0, 15))
    _checked_range(lo, hi)
    return _field_encoder(to_words, is_bool=data_type == "bool", lo=lo, hi=hi)


def _number_encoder(
    data_type: DataType, to_words: Callable[[bytes], list[int]]
) -> Callable[[Decoded], list[int]]:
    value_struct = struct.Struct(">" + _STRUCT_CODE[data_type])
    is_float = data_type in FLOAT_TYPES

    def encode_number(value: Decoded) -> list[int]:
        # A bool is an int to Python, but never a number to a register.
        if isinstance(value, bool | str) or (not is_float and not isinstance(value, int)):
            raise ValueError(f"{data_type} cannot hold {value!r}.")
        try:
            return to_words(value_struct.pack(value))
        except (struct.error, OverflowError) as exc:
            raise ValueError(f"{data_type} cannot hold {value!r}.") from exc

    return encode_number


def _string_encoder(
    to_words: Callable[[bytes], list[int]],
    *,
    count: int,
    encoding: StringEncoding,
    padding: StringPadding,
) -> Callable[[Decoded], list[int]]:
    size = 2 * count
    pad = b" " if padding == "space" else b"\0"

    def encode_string(value: Decoded) -> list[int]:
        if not isinstance(value, str):
            raise ValueError(f"a string register cannot hold {value!r}.")  # noqa: TRY004 - Rule 2
        raw = value.encode(encoding)  # UnicodeEncodeError is a ValueError
        if len(raw) > size or (padding == "none" and len(raw) != size):
            raise ValueError(f"{value!r} does not fit {count} registers ({size} bytes).")
        return to_words(raw.ljust(size, pad))

    return encode_string


def _field_encoder(
    to_words: Callable[[bytes], list[int]], *, is_bool: bool, lo: int, hi: int
) -> Callable[[Decoded], list[int]]:
    word_struct = struct.Struct(">H")
    limit = (1 << (hi - lo + 1)) - 1

    def encode_field(value: Decoded) -> list[int]:
        if is_bool:
            if not isinstance(value, bool):
                raise ValueError(f"a bool cannot hold {value!r}.")
            field = int(value)
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
            raise ValueError(f"bits {lo}..{hi} cannot hold {value!r} (0..{limit}).")
        else:
            field = value
        return to_words(word_struct.pack(field << lo))

    return encode_field


def field_mask(*, bit: int | None = None, bit_range: tuple[int, int] | None = None) -> int:
    """Return the mask of the bits a ``bool`` or ``bits`` field occupies in its word.

    With neither argument, the whole word (``0xFFFF``).
    """
    lo, hi = (bit, bit) if bit is not None else (bit_range or (0, 15))
    _checked_range(lo, hi)
    return ((1 << (hi - lo + 1)) - 1) << lo


def decode(
    words: Sequence[int],
    data_type: DataType,
    *,
    byte_order: ByteOrder = "ABCD",
    length_words: int | None = None,
    encoding: StringEncoding = "ascii",
    padding: StringPadding = "null",
    bit: int | None = None,
    bit_range: tuple[int, int] | None = None,
) -> Decoded:
    """Decode raw registers once (`make_decoder` for repeated use).

    Args:
        words: Exactly `word_count` registers, in address order.
        data_type: The register data type.
        byte_order: The canonical byte order.
        length_words: For ``string``; defaults to ``len(words)``.
        encoding: For ``string``.
        padding: For ``string``.
        bit: For ``bool``.
        bit_range: For ``bits``.

    Returns:
        The value.

    Raises:
        ValueError: wrong word count, a word outside ``0..65535``, or an impossible combination.
    """
    if data_type == "string" and length_words is None:
        length_words = len(words)
    return make_decoder(
        data_type,
        byte_order=byte_order,
        length_words=length_words,
        encoding=encoding,
        padding=padding,
        bit=bit,
        bit_range=bit_range,
    )(words)


def encode(
    value: Decoded,
    data_type: DataType,
    *,
    byte_order: ByteOrder = "ABCD",
    length_words: int | None = None,
    encoding: StringEncoding = "ascii",
    padding: StringPadding = "null",
    bit: int | None = None,
    bit_range: tuple[int, int] | None = None,
) -> list[int]:
    """Encode a value to raw registers once (`make_encoder` for repeated use).

    Args:
        value: The value.
        data_type: The register data type.
        byte_order: The canonical byte order.
        length_words: For ``string``: the length in registers.
        encoding: For ``string``.
        padding: For ``string``.
        bit: For ``bool``.
        bit_range: For ``bits``.

    Returns:
        The registers in address order.

    Raises:
        ValueError: the type cannot hold the value, or an impossible combination.
    """
    return make_encoder(
        data_type,
        byte_order=byte_order,
        length_words=length_words,
        encoding=encoding,
        padding=padding,
        bit=bit,
        bit_range=bit_range,
    )(value)


@dataclass(frozen=True, slots=True)
class RawView:
    """One register pair read under one byte order: what a technician compares to the display."""

    byte_order: ByteOrder
    hex: str
    """The four bytes in value order (``A B C D``) under this byte order, e.g. ``42F6E979``."""
    float32: float
    int32: int
    uint32: int


def raw_views(words: Sequence[int]) -> tuple[RawView, ...]:
    """Show a register pair under all four byte orders as float32, int32 and uint32.

    Args:
        words: Two registers, in address order.

    Returns:
        One view per byte order, ``ABCD`` first.

    Raises:
        ValueError: not exactly two words in ``0..65535``.
    """
    views = []
    for order in BYTE_ORDERS:
        uint32 = decode(words, "uint32", byte_order=order)
        views.append(
            RawView(
                byte_order=order,
                hex=f"{uint32:08X}",
                float32=float(decode(words, "float32", byte_order=order)),
                int32=int(decode(words, "int32", byte_order=order)),
                uint32=int(uint32),
            )
        )
    return tuple(views)


def format_raw_views(words: Sequence[int]) -> str:
    """Return `raw_views` as a small text table for the commissioning CLI.

    Example for the registers ``0x42F6 0xE979`` (float32 123.456 in ``ABCD``)::

        registers 0x42F6 0xE979
        order  bytes            float32        int32       uint32
        ABCD   42F6E979          123.456   1123477881   1123477881
        ...
    """
    lines = [
        "registers " + " ".join(f"0x{word:04X}" for word in words),
        f"{'order':<6} {'bytes':<8} {'float32':>16} {'int32':>12} {'uint32':>12}",
    ]
    for view in raw_views(words):
        shown = f"{view.float32:.7g}" if math.isfinite(view.float32) else str(view.float32)
        lines.append(
            f"{view.byte_order:<6} {view.hex:<8} {shown:>16} {view.int32:>12} {view.uint32:>12}"
        )
    return "\n".join(lines)
