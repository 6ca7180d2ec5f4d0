"""Pure serial parsing: the line framer, the line parsers, and the diagnosis of Modbus frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU

from edge_agent._model import Quality, Reading, ReadRequest
from edge_agent.sources import (
    CsvParser,
    KeyValueParser,
    Line,
    LineField,
    LineFramer,
    LineParser,
    RegexParser,
    bad_readings,
    diagnose_received,
)


def _drain(framer: LineFramer, buffer: bytearray) -> list[Line]:
    """Feed the framer as a source does: cut until it needs more data."""
    lines: list[Line] = []
    while True:
        line, used = framer.read(buffer)
        if used == 0:
            return lines
        del buffer[:used]
        if line is not None:
            lines.append(line)


# ---------------------------------------------------------------- LineFramer


@pytest.mark.parametrize(
    ("ending", "frame"),
    [
        ("lf", b"T=21.5 P=1.013\n"),
        ("lf", b"T=21.5 P=1.013\r\n"),
        ("cr", b"12345;x;OK\r"),
        ("lf", b"x\n"),
    ],
)
def test_every_prefix_of_a_line_needs_more_data(ending: str, frame: bytes) -> None:
    """No truncation of a line yields a line; the whole frame yields exactly it."""
    for cut in range(len(frame)):
        assert LineFramer(line_ending=ending).read(frame[:cut]) == (None, 0), cut  # type: ignore[arg-type]
    line, used = LineFramer(line_ending=ending).read(frame)  # type: ignore[arg-type]
    assert used == len(frame)
    assert line == Line(frame.strip().decode())


def test_lines_come_off_one_at_a_time_and_the_rest_waits() -> None:
    """Two lines and a partial third: two lines, the partial stays in the buffer."""
    buffer = bytearray(b"a=1\r\nb=2\nc=")
    assert _drain(LineFramer(), buffer) == [Line("a=1"), Line("b=2")]
    assert buffer == b"c="


def test_cr_mode_drops_the_lf_of_crlf_and_blank_lines_are_skipped() -> None:
    """`cr` devices that send CR LF give clean lines; empty lines give nothing."""
    buffer = bytearray(b"\r\r\n1;2\r\n3;4\r  \r")
    assert _drain(LineFramer(line_ending="cr"), buffer) == [Line("1;2"), Line("3;4")]
    assert buffer == b""


def test_an_overlong_line_is_one_bad_line_even_when_it_arrives_in_pieces() -> None:
    """Past `max_line_bytes` without an end: `line_too_long` once, then its rest is skipped."""
    framer = LineFramer(max_line_bytes=8)
    buffer = bytearray(b"0123456789")
    assert _drain(framer, buffer) == [Line(None, "line_too_long")]
    buffer += b"abcdef"
    assert _drain(framer, buffer) == []
    buffer += b"xyz\nok=1\n"
    assert _drain(framer, buffer) == [Line("ok=1")]
    assert _drain(LineFramer(max_line_bytes=4), bytearray(b"0123456\nok\n")) == [
        Line(None, "line_too_long"),
        Line("ok"),
    ]


def test_bytes_that_do_not_decode_are_a_bad_line() -> None:
    """Non-ASCII bytes on an ASCII device: `decode_error`, and the next line is fine."""
    buffer = bytearray(b"T=\xff\xfe\nT=1\n")
    assert _drain(LineFramer(), buffer) == [Line(None, "decode_error"), Line("T=1")]


@given(data=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200), max_size=10))
def test_chunking_never_changes_the_lines(data: bytes, cuts: list[int]) -> None:
    """However the bytes arrive, the same lines come out (framing is a function of the stream)."""
    whole = _drain(LineFramer(max_line_bytes=8), bytearray(data))
    framer, buffer, pieces = LineFramer(max_line_bytes=8), bytearray(), []
    start = 0
    for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
        buffer += data[start:cut]
        start = cut
        pieces.extend(_drain(framer, buffer))
    assert pieces == whole


def test_a_framer_needs_a_positive_line_limit() -> None:
    """A zero line limit is a config bug."""
    with pytest.raises(ValueError, match="max_line_bytes"):
        LineFramer(max_line_bytes=0)


# ---------------------------------------------------------------- parsers


def _values(readings: list[Reading]) -> dict[str, object]:
    return {r.signal: r.value if r.quality is Quality.GOOD else r.reason for r in readings}


def test_regex_groups_become_scaled_signals() -> None:
    """Named groups map to fields with scale, offset and kind; `search` finds them mid-line."""
    parser = RegexParser(
        pattern=r"T=(?P<t>-?\d+) RPM=(?P<rpm>\d+) ST=(?P<st>\w+)",
        fields={
            "t": LineField(signal="temp_c", scale=0.1, offset=-1.0),
            "rpm": LineField(signal="speed_rpm", kind="int", scale=0.5),
            "st": LineField(signal="state", kind="str"),
        },
    )
    readings = parser.parse(">> T=215 RPM=3001 ST=RUN", asset="fan-1", ts_ms=7)
    assert _values(readings) == {"temp_c": pytest.approx(20.5), "speed_rpm": 1500, "state": "RUN"}
    assert {(r.asset, r.ts_ms) for r in readings} == {("fan-1", 7)}
    assert parser.signals == ("temp_c", "speed_rpm", "state")


def test_regex_without_fields_makes_every_group_a_float_signal() -> None:
    """Omitted `fields`: each named group is a float signal of its own name."""
    parser = RegexParser(pattern=r"(?P<a>\S+),(?P<b>\S+)?")
    assert _values(parser.parse("1.5,x", asset="a", ts_ms=1)) == {"a": 1.5, "b": "not_a_number"}
    assert _values(parser.parse("1.5,", asset="a", ts_ms=1)) == {"a": 1.5, "b": "missing_field"}


def test_a_line_the_regex_does_not_match_is_bad_for_every_signal() -> None:
    """Garbage: one bad reading per signal, reason `no_match`."""
    parser = RegexParser(pattern=r"T=(?P<t>\d+) P=(?P<p>\d+)")
    readings = parser.parse("%%%###", asset="a", ts_ms=3)
    assert readings == [Reading.bad("a", "t", 3, "no_match"), Reading.bad("a", "p", 3, "no_match")]


@pytest.mark.parametrize(
    ("pattern", "fields", "message"),
    [
        ("T=(\\d+", None, "does not compile"),
        ("T=(\\d+)", None, "no named group"),
        ("T=(?P<t>\\d+)", {"x": LineField(signal="x")}, "not named groups"),
    ],
)
def test_regex_parser_rejects_patterns_it_cannot_use(
    pattern: str, fields: dict[str, LineField] | None, message: str
) -> None:
    """Compile errors, no named group, or fields naming absent groups fail at construction."""
    with pytest.raises(ValueError, match=message):
        RegexParser(pattern=pattern, fields=fields)


def test_key_value_pairs_become_signals_and_absent_keys_are_missing() -> None:
    """Pairs in any order; unknown keys ignored; an absent key is `missing_field`."""
    parser = KeyValueParser(
        fields={"T": LineField(signal="temp_c"), "P": LineField(signal="p_bar", scale=0.001)}
    )
    assert _values(parser.parse("X=9 P=1013 T=21.5", asset="a", ts_ms=1)) == {
        "temp_c": 21.5,
        "p_bar": pytest.approx(1.013),
    }
    assert _values(parser.parse("T=21.5", asset="a", ts_ms=1)) == {
        "temp_c": 21.5,
        "p_bar": "missing_field",
    }
    assert _values(parser.parse("hello world", asset="a", ts_ms=1)) == {
        "temp_c": "no_match",
        "p_bar": "no_match",
    }


def test_key_value_separators_are_configurable() -> None:
    """`temp:21.5;hum:40` with `:` and `;`."""
    parser = KeyValueParser(
        fields={"temp": LineField(signal="t"), "hum": LineField(signal="h", kind="int")},
        pair_separator=";",
        separator=":",
    )
    assert _values(parser.parse("temp: 21.5; hum:40", asset="a", ts_ms=1)) == {"t": 21.5, "h": 40}


def test_csv_columns_map_by_position_and_short_lines_are_missing_fields() -> None:
    """Skipped columns, quoted cells, too few columns, a header line."""
    parser = CsvParser(
        columns=[LineField(signal="flow"), None, LineField(signal="tag", kind="str")],
        delimiter=";",
    )
    assert _values(parser.parse('12.5;ignored;"A;B"', asset="a", ts_ms=1)) == {
        "flow": 12.5,
        "tag": "A;B",
    }
    assert _values(parser.parse("12.5", asset="a", ts_ms=1)) == {
        "flow": 12.5,
        "tag": "missing_field",
    }
    assert _values(parser.parse("flow;x;tag", asset="a", ts_ms=1)) == {
        "flow": "not_a_number",
        "tag": "tag",
    }


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1e999"])
def test_numbers_that_are_not_finite_are_bad(text: str) -> None:
    """NaN and infinities never become values (the contract forbids them)."""
    parser = CsvParser(columns=[LineField(signal="x")])
    assert _values(parser.parse(text, asset="a", ts_ms=1)) == {"x": "not_a_number"}


def _parsers() -> list[LineParser]:
    return [
        RegexParser(pattern=r"T=(?P<t>\S+)"),
        KeyValueParser(fields={"T": LineField(signal="t", kind="int")}),
        CsvParser(columns=[LineField(signal="t"), None, LineField(signal="u", kind="str")]),
    ]


@given(text=st.text(max_size=80))
def test_parsers_never_raise_and_give_one_reading_per_signal(text: str) -> None:
    """Any text: one reading per signal, each either good or bad with a reason."""
    for parser in _parsers():
        readings = parser.parse(text, asset="a", ts_ms=1)
        assert [r.signal for r in readings] == list(parser.signals)
        for reading in readings:
            assert (reading.quality is Quality.GOOD) == (reading.reason is None)
            assert (reading.value is None) == (reading.quality is Quality.BAD)


def test_bad_readings_cover_every_signal_with_the_reason() -> None:
    """A silent or vanished device: every signal of its parser, bad, with the reason."""
    parser = _parsers()[2]
    assert bad_readings(parser, "timeout", asset="a", ts_ms=5) == [
        Reading.bad("a", "t", 5, "timeout"),
        Reading.bad("a", "u", 5, "timeout"),
    ]


# ---------------------------------------------------------------- Modbus frame diagnosis

HOLDING = ReadRequest("holding", 7, 0, 2)


def _rtu(body: bytes) -> bytes:
    return body + FramerRTU.compute_CRC(body).to_bytes(2, "big")


RTU_ANSWER = _rtu(bytes([7, 3, 4, 0, 1, 0, 2]))
SOCKET_ANSWER = bytes([0, 5, 0, 0, 0, 7, 7, 3, 4, 0, 1, 0, 2])


@pytest.mark.parametrize(
    ("framing", "rx", "reason"),
    [
        ("rtu", b"", "timeout"),
        ("rtu", RTU_ANSWER[:-1] + bytes([RTU_ANSWER[-1] ^ 0xFF]), "bad_frame"),
        ("rtu", b"\xff" * 9, "bad_frame"),
        ("rtu", _rtu(bytes([8, 3, 4, 0, 1, 0, 2])), "bad_frame"),  # another unit's answer
        ("rtu", _rtu(bytes([7, 4, 4, 0, 1, 0, 2])), "bad_frame"),  # another function's answer
        ("rtu", _rtu(bytes([7, 0x83])) + b"\x00", "bad_frame"),  # exception with a bad CRC
        ("socket", b"", "timeout"),
        ("socket", SOCKET_ANSWER[:2] + b"\x00\x01" + SOCKET_ANSWER[4:], "bad_frame"),
        ("socket", SOCKET_ANSWER[:6] + b"\xff" * 7, "bad_frame"),
        ("socket", SOCKET_ANSWER[:4] + b"\x00\x05" + SOCKET_ANSWER[6:11], "short_response"),
    ],
)
def test_what_arrived_tells_why_no_response_came(framing: str, rx: bytes, reason: str) -> None:
    """Nothing: timeout. Garbage, a bad CRC, another unit or function: bad_frame."""
    assert diagnose_received(rx, request=HOLDING, framing=framing) == reason  # type: ignore[arg-type]


@pytest.mark.parametrize(("framing", "frame"), [("rtu", RTU_ANSWER), ("socket", SOCKET_ANSWER)])
def test_every_truncation_of_an_answer_is_a_short_response(framing: str, frame: bytes) -> None:
    """Any non-empty prefix of the right answer is `short_response` (the rest never came)."""
    for cut in range(1, len(frame)):
        assert diagnose_received(frame[:cut], request=HOLDING, framing=framing) == (  # type: ignore[arg-type]
            "short_response"
        ), cut
