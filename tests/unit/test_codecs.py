"""The register codec: known vectors, round trips for every type and byte order, hostile input."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.codecs import (
    BYTE_ORDERS,
    ByteOrder,
    DataType,
    canonical_byte_order,
    canonical_data_type,
    decode,
    encode,
    field_mask,
    format_raw_views,
    make_decoder,
    make_encoder,
    raw_views,
    word_count,
)

# Known vectors. The words were written down from struct.pack (">f" etc. gives the ABCD bytes) and
# rearranged by hand: BADC swaps the bytes of each word, CDAB reverses the words, DCBA both.
VECTORS: list[tuple[DataType, ByteOrder, int | float | str, list[int]]] = [
    ("float32", "ABCD", 123.456, [0x42F6, 0xE979]),
    ("float32", "BADC", 123.456, [0xF642, 0x79E9]),
    ("float32", "CDAB", 123.456, [0xE979, 0x42F6]),
    ("float32", "DCBA", 123.456, [0x79E9, 0xF642]),
    ("float32", "ABCD", -1.5, [0xBFC0, 0x0000]),
    ("uint32", "ABCD", 0x12345678, [0x1234, 0x5678]),
    ("uint32", "BADC", 0x12345678, [0x3412, 0x7856]),
    ("uint32", "CDAB", 0x12345678, [0x5678, 0x1234]),
    ("uint32", "DCBA", 0x12345678, [0x7856, 0x3412]),
    ("int32", "ABCD", -2, [0xFFFF, 0xFFFE]),
    ("int32", "CDAB", -2, [0xFFFE, 0xFFFF]),
    ("int32", "CDAB", 1551, [0x060F, 0x0000]),
    ("int16", "ABCD", -1, [0xFFFF]),
    ("int16", "ABCD", -32768, [0x8000]),
    ("int16", "BADC", 0x1234, [0x3412]),
    ("uint16", "CDAB", 0x1234, [0x1234]),
    ("uint16", "DCBA", 0x1234, [0x3412]),
    ("int64", "ABCD", 0x0102030405060708, [0x0102, 0x0304, 0x0506, 0x0708]),
    ("int64", "BADC", 0x0102030405060708, [0x0201, 0x0403, 0x0605, 0x0807]),
    ("int64", "CDAB", 0x0102030405060708, [0x0708, 0x0506, 0x0304, 0x0102]),
    ("int64", "DCBA", 0x0102030405060708, [0x0807, 0x0605, 0x0403, 0x0201]),
    ("int64", "ABCD", -1, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]),
    ("uint64", "ABCD", 2**64 - 1, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]),
    ("float64", "ABCD", 1.0, [0x3FF0, 0x0000, 0x0000, 0x0000]),
    ("float64", "CDAB", 1.0, [0x0000, 0x0000, 0x0000, 0x3FF0]),
    ("float64", "DCBA", 1.0, [0x0000, 0x0000, 0x0000, 0xF03F]),
    ("float64", "BADC", 1.0, [0xF03F, 0x0000, 0x0000, 0x0000]),
]


@pytest.mark.parametrize(("data_type", "byte_order", "value", "words"), VECTORS)
def test_known_vectors_decode_and_encode(
    data_type: DataType, byte_order: ByteOrder, value: float, words: list[int]
) -> None:
    """Each known register layout decodes to its value and the value encodes to it."""
    decoded = decode(words, data_type, byte_order=byte_order)
    if data_type == "float32":
        assert decoded == struct.unpack(">f", struct.pack(">f", value))[0]
    else:
        assert decoded == value
    assert encode(value, data_type, byte_order=byte_order) == words


def test_the_reference_vector_comes_from_struct() -> None:
    """The float32 vectors above really are struct.pack's bytes for 123.456."""
    assert struct.pack(">f", 123.456).hex() == "42f6e979"


@pytest.mark.parametrize(
    ("words", "byte_order", "padding", "text"),
    [
        ([0x5343, 0x3735, 0x0000, 0x0000], "ABCD", "null", "SC75"),
        ([0x4353, 0x3537, 0x0000, 0x0000], "BADC", "null", "SC75"),
        ([0x5343, 0x3735, 0x2020, 0x2020], "ABCD", "space", "SC75"),
        ([0x5343, 0x0037, 0x3500, 0x0000], "ABCD", "null", "SC"),  # ends at the first NUL
        ([0x5343, 0x3735, 0x2020, 0x2020], "ABCD", "none", "SC75    "),
        ([0x4142, 0x4344], "ABCD", "null", "ABCD"),  # fills the registers exactly
    ],
)
def test_strings_decode_with_their_byte_order_and_padding(
    words: list[int], byte_order: ByteOrder, padding: str, text: str
) -> None:
    """Text is read first character first; padding decides where it ends."""
    assert decode(words, "string", byte_order=byte_order, padding=padding) == text  # type: ignore[arg-type]


def test_undecodable_text_bytes_become_replacement_characters() -> None:
    """A garbage byte in a text register does not make the signal unreadable."""
    assert decode([0x41FF], "string") == "A\ufffd"
    assert decode([0x41E9], "string", encoding="latin-1") == "Aé"


def test_bits_and_bools_are_read_from_the_least_significant_bit() -> None:
    """Bit 0 is the least significant bit; a range reads as an unsigned integer."""
    word = 0b0000_0010_0000_1001  # bits 0, 3 and 9
    assert decode([word], "bool", bit=0) is True
    assert decode([word], "bool", bit=1) is False
    assert decode([word], "bool", bit=3) is True
    assert decode([word], "bits", bit_range=(8, 9)) == 2
    assert decode([word], "bits", bit_range=(0, 15)) == word
    assert decode([0], "bool") is False
    assert decode([7], "bool") is True
    # A byte-swapped register is swapped before its bits are numbered.
    assert decode([0x0100], "bool", bit=0, byte_order="BADC") is True


def test_field_mask_names_the_bits_of_a_field() -> None:
    """The mask for a mask write (function 22) covers exactly the field's bits."""
    assert field_mask(bit=3) == 0b1000
    assert field_mask(bit_range=(8, 9)) == 0x0300
    assert field_mask() == 0xFFFF


INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
orders = st.sampled_from(BYTE_ORDERS)


@pytest.mark.parametrize("data_type", sorted(INT_RANGES))
@given(data=st.data(), byte_order=orders)
def test_integers_round_trip(
    data: st.DataObject, data_type: DataType, byte_order: ByteOrder
) -> None:
    """decode(encode(x)) == x for every integer type and byte order."""
    low, high = INT_RANGES[data_type]
    value = data.draw(st.integers(low, high))
    words = encode(value, data_type, byte_order=byte_order)
    assert len(words) == word_count(data_type)
    assert all(0 <= word <= 0xFFFF for word in words)
    assert decode(words, data_type, byte_order=byte_order) == value


@given(value=st.floats(width=32, allow_nan=False), byte_order=orders)
def test_float32_round_trips(value: float, byte_order: ByteOrder) -> None:
    """decode(encode(x)) == x for every float32, infinities included, in every byte order."""
    assert (
        decode(encode(value, "float32", byte_order=byte_order), "float32", byte_order=byte_order)
        == value
    )


@given(value=st.floats(allow_nan=False), byte_order=orders)
def test_float64_round_trips(value: float, byte_order: ByteOrder) -> None:
    """decode(encode(x)) == x for every float64 in every byte order."""
    assert (
        decode(encode(value, "float64", byte_order=byte_order), "float64", byte_order=byte_order)
        == value
    )


@pytest.mark.parametrize("data_type", ["float32", "float64"])
@pytest.mark.parametrize("byte_order", BYTE_ORDERS)
def test_nan_round_trips_as_nan(data_type: DataType, byte_order: ByteOrder) -> None:
    """A NaN stays a NaN (the planner then reports it bad, never publishes it)."""
    decoded = decode(
        encode(math.nan, data_type, byte_order=byte_order), data_type, byte_order=byte_order
    )
    assert isinstance(decoded, float)
    assert math.isnan(decoded)


text_chars = st.characters(min_codepoint=1, max_codepoint=0x7E)


@given(
    text=st.text(text_chars, max_size=16).filter(lambda t: not t.endswith(" ")),
    byte_order=st.sampled_from(["ABCD", "BADC"]),
    padding=st.sampled_from(["null", "space"]),
)
def test_strings_round_trip(text: str, byte_order: ByteOrder, padding: str) -> None:
    """decode(encode(s)) == s for text that fits and does not end in padding."""
    words = encode(text, "string", byte_order=byte_order, length_words=8, padding=padding)  # type: ignore[arg-type]
    assert len(words) == 8
    assert decode(words, "string", byte_order=byte_order, padding=padding) == text  # type: ignore[arg-type]


@given(
    text=st.text(
        st.characters(min_codepoint=1, max_codepoint=0x10FFFF, exclude_categories=["Cs"]),
        max_size=5,
    )
)
def test_utf8_strings_round_trip(text: str) -> None:
    """Any text whose UTF-8 fits the registers round-trips."""
    words = encode(text, "string", length_words=10, encoding="utf-8")
    assert decode(words, "string", encoding="utf-8") == text


@given(word=st.integers(0, 0xFFFF), bit=st.integers(0, 15), byte_order=orders)
def test_bools_round_trip(word: int, bit: int, byte_order: ByteOrder) -> None:
    """A bit encodes into its own place and reads back."""
    value = bool(word >> bit & 1)
    words = encode(value, "bool", bit=bit, byte_order=byte_order)
    assert decode(words, "bool", bit=bit, byte_order=byte_order) is value
    assert encode(0, "uint16", byte_order=byte_order) == encode(
        value=False, data_type="bool", byte_order=byte_order
    )
    raw = decode(words, "uint16", byte_order=byte_order)
    assert isinstance(raw, int)
    assert raw & ~field_mask(bit=bit) == 0


@given(data=st.data(), byte_order=orders)
def test_bit_fields_round_trip(data: st.DataObject, byte_order: ByteOrder) -> None:
    """A bit range encodes into its own bits and reads back."""
    lo = data.draw(st.integers(0, 15))
    hi = data.draw(st.integers(lo, 15))
    value = data.draw(st.integers(0, 2 ** (hi - lo + 1) - 1))
    words = encode(value, "bits", bit_range=(lo, hi), byte_order=byte_order)
    assert decode(words, "bits", bit_range=(lo, hi), byte_order=byte_order) == value


@pytest.mark.parametrize(
    ("data_type", "length_words"),
    [
        ("int16", None),
        ("uint32", None),
        ("float32", None),
        ("int64", None),
        ("float64", None),
        ("string", 4),
    ],
)
def test_every_truncation_raises(data_type: DataType, length_words: int | None) -> None:
    """Too few (or too many) words is a ValueError, never a wrong value."""
    decoder = make_decoder(data_type, length_words=length_words)
    needed = word_count(data_type, length_words=length_words)
    for count in [*range(needed), needed + 1]:
        with pytest.raises(ValueError, match=f"expected {needed} words"):
            decoder([0x4142] * count)


@pytest.mark.parametrize("word", [-1, 0x10000, 2**40])
def test_a_word_outside_16_bits_raises(word: int) -> None:
    """A source bug that hands over a non-16-bit word is caught, not wrapped around."""
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        decode([word, 0], "uint32")


@pytest.mark.parametrize(
    ("value", "data_type", "kwargs"),
    [
        (70000, "uint16", {}),
        (-1, "uint32", {}),
        (2**63, "int64", {}),
        (1.5, "int16", {}),
        (True, "int16", {}),
        ("7", "float32", {}),
        (1e39, "float32", {}),
        ("too long for two", "string", {"length_words": 2}),
        ("é", "string", {"length_words": 2}),
        ("AB", "string", {"length_words": 2, "padding": "none"}),
        (1, "bool", {"bit": 0}),
        (4, "bits", {"bit_range": (0, 1)}),
    ],
)
def test_values_a_register_cannot_hold_raise(
    value: object, data_type: DataType, kwargs: dict[str, object]
) -> None:
    """Encoding refuses out-of-range, wrongly typed and oversized values with ValueError."""
    with pytest.raises(ValueError, match=r"."):
        encode(value, data_type, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data_type", "kwargs", "message"),
    [
        ("string", {"length_words": 2, "byte_order": "CDAB"}, "'ABCD' or 'BADC'"),
        ("string", {}, "length_words >= 1"),
        ("bits", {}, "needs a bit_range"),
        ("bits", {"bit_range": (9, 8)}, "lo <= hi"),
        ("bool", {"bit": 16}, "lo <= hi <= 15"),
    ],
)
def test_impossible_layouts_raise_at_compile_time(
    data_type: DataType, kwargs: dict[str, object], message: str
) -> None:
    """Nonsense layouts fail when the decoder and encoder are built, before any poll."""
    with pytest.raises(ValueError, match=message):
        make_decoder(data_type, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        make_encoder(data_type, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("ABCD", "ABCD"),
        ("big", "ABCD"),
        ("Big-Endian", "ABCD"),
        ("MSW-BE", "ABCD"),
        ("ABCDEFGH", "ABCD"),
        ("MSW-LE", "BADC"),
        ("byte-swap", "BADC"),
        ("BADCFEHG", "BADC"),
        ("LSW-BE", "CDAB"),
        ("word-swap", "CDAB"),
        ("GHEFCDAB", "CDAB"),
        ("little", "DCBA"),
        ("LSW-LE", "DCBA"),
        ("hgfedcba", "DCBA"),
        (" cdab ", "CDAB"),
    ],
)
def test_byte_order_aliases_are_canonicalised(alias: str, canonical: ByteOrder) -> None:
    """Telegraf's and the manuals' spellings all map to the four canonical orders."""
    assert canonical_byte_order(alias) == canonical


def test_an_unknown_byte_order_names_the_choices() -> None:
    """A typo such as ABDC is refused with the four valid orders in the message."""
    with pytest.raises(ValueError, match=r"must be one of 'ABCD', 'BADC', 'CDAB', 'DCBA'\. Got"):
        canonical_byte_order("ABDC")


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("REAL", "float32"),
        ("LREAL", "float64"),
        ("DINT", "int32"),
        ("udint", "uint32"),
        ("WORD", "uint16"),
        ("int", "int16"),
        ("float32", "float32"),
    ],
)
def test_iec_type_names_are_canonicalised(alias: str, canonical: DataType) -> None:
    """PLC manuals' IEC 61131-3 names map to our types."""
    assert canonical_data_type(alias) == canonical


def test_an_unknown_type_raises() -> None:
    """float16 is no Modbus type we know."""
    with pytest.raises(ValueError, match="Got 'float16' instead"):
        canonical_data_type("float16")


def test_raw_views_show_a_pair_under_all_four_orders() -> None:
    """The technician's raw view: 0x42F6 0xE979 is 123.456 only when read as ABCD."""
    views = {view.byte_order: view for view in raw_views([0x42F6, 0xE979])}
    assert list(views) == list(BYTE_ORDERS)
    assert views["ABCD"].hex == "42F6E979"
    assert views["ABCD"].float32 == pytest.approx(123.456, rel=1e-7)
    assert views["ABCD"].uint32 == 0x42F6E979
    assert views["CDAB"].hex == "E97942F6"
    assert views["CDAB"].float32 == struct.unpack(">f", bytes.fromhex("E97942F6"))[0]
    assert views["CDAB"].int32 == struct.unpack(">i", bytes.fromhex("E97942F6"))[0]
    assert views["BADC"].hex == "F64279E9"
    assert views["DCBA"].hex == "79E9F642"


def test_raw_view_table_lists_every_order() -> None:
    """The formatted raw view has a header and one row per byte order, values aligned."""
    text = format_raw_views([0x42F6, 0xE979])
    lines = text.splitlines()
    assert lines[0] == "registers 0x42F6 0xE979"
    assert lines[1].split() == ["order", "bytes", "float32", "int32", "uint32"]
    assert [line.split()[0] for line in lines[2:]] == list(BYTE_ORDERS)
    assert lines[2].split() == ["ABCD", "42F6E979", "123.456", "1123477881", "1123477881"]


def test_raw_view_shows_non_finite_floats() -> None:
    """0x7FC0 0x0000 is a NaN as ABCD; the table says so instead of crashing."""
    assert "nan" in format_raw_views([0x7FC0, 0x0000]).splitlines()[2]


def test_raw_views_need_exactly_two_words() -> None:
    """The raw view is for register pairs."""
    with pytest.raises(ValueError, match="expected 2 words"):
        raw_views([1, 2, 3])
