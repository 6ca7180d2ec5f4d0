"""The line-protocol encoder: escaping, the limits it enforces, properties over hostile input."""

from __future__ import annotations

import contextlib
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.store import FieldValue, LineProtocolError, Point, encode_lines

# ---------------------------------------------------------------- escaping table


@pytest.mark.parametrize(
    ("point", "line"),
    [
        (Point("m", {}, {"f": 1.5}), "m f=1.5"),
        (Point("m", {}, {"f": 1.0}, 7), "m f=1.0 7"),
        (Point("a b,c=d", {}, {"f": 1.0}), "a\\ b\\,c=d f=1.0"),
        (Point("m", {"k ,=": "v ,="}, {"f": 1.0}), "m,k\\ \\,\\==v\\ \\,\\= f=1.0"),
        (Point("m", {}, {"f ,=": 1.0}), "m f\\ \\,\\==1.0"),
        (Point("m", {}, {"s": 'say "hi" \\ bye'}), 'm s="say \\"hi\\" \\\\ bye"'),
        (Point("m", {}, {"s": "a\\"}), 'm s="a\\\\"'),
        (Point("m", {}, {"s": "two\nlines\r"}), 'm s="two\nlines\r"'),
        (Point("m", {}, {"s": ""}), 'm s=""'),
        (Point("C:\\path", {"dir": "C:\\x"}, {"k\\y": 1}), "C:\\path,dir=C:\\x k\\y=1i"),
        (
            Point("m", {}, {"i": 2**63 - 1, "j": -(2**63)}),
            "m i=9223372036854775807i,j=-9223372036854775808i",
        ),
        (Point("m", {}, {"t": True, "f": False}), "m t=true,f=false"),
        (Point("m", {}, {"x": 1e16, "y": 5e-324, "z": -0.0}), "m x=1e+16,y=5e-324,z=-0.0"),
        (Point("m", {}, {"x": 0.1 + 0.2}), "m x=0.30000000000000004"),
        (Point("m", {"b": "2", "a": "1", "c": ""}, {"f": 1}), "m,a=1,b=2 f=1i"),
        (Point("ü€😀", {"ключ": "значение"}, {"字段": "✓"}), 'ü€😀,ключ=значение 字段="✓"'),
        (Point("m#", {"#k": "#v"}, {"#f": 1}), "m#,#k=#v #f=1i"),
        (Point("tab\tin", {"\tk": "\tv\t"}, {"f\t": 1}), "tab\tin,\tk=\tv\t f\t=1i"),
        (Point("m", {}, {"s": "a\x00\x1b"}), 'm s="a\x00\x1b"'),
        (Point("m", {}, {"f": 1}, -5), "m f=1i -5"),
    ],
)
def test_encoding_table(point: Point, line: str) -> None:
    """Each point encodes to the expected line, escaped by InfluxDB 1.x rules."""
    assert encode_lines([point]) == f"{line}\n".encode()


def test_points_are_newline_terminated_and_empty_input_is_empty() -> None:
    """Every point becomes one newline-terminated line; no points give no bytes."""
    points = [Point("m", {}, {"f": 1}, 1), Point("m", {}, {"f": 2}, 2)]
    assert encode_lines(points) == b"m f=1i 1\nm f=2i 2\n"
    assert encode_lines([]) == b""


def test_numpy_like_float_subclass_uses_the_plain_float_repr() -> None:
    """A float subclass with a fancy repr (numpy's float64) is written as a plain float."""

    class Fancy(float):
        def __repr__(self) -> str:
            return f"Fancy({float(self)})"

    assert encode_lines([Point("m", {}, {"f": Fancy(2.5)})]) == b"m f=2.5\n"


# ---------------------------------------------------------------- what cannot be carried


@pytest.mark.parametrize(
    ("point", "key", "shown"),
    [
        (Point("a\nb", {}, {"f": 1}), "measurement", "'a\\nb'"),
        (Point("m", {"a\rb": "v"}, {"f": 1}), "tag key", "'a\\rb'"),
        (Point("m", {"site": "north\nsouth"}, {"f": 1}), "tag 'site' value", "'north\\nsouth'"),
        (Point("m", {}, {"a\nb": 1}), "field key", "'a\\nb'"),
        (Point("", {}, {"f": 1}), "measurement", "''"),
        (Point("m", {"": "v"}, {"f": 1}), "tag key", "''"),
        (Point("m", {}, {"": 1}), "field key", "''"),
        (Point("m", {}, {}), "field", "{}"),
        (Point("m", {}, {"f": math.nan}), "field 'f'", "nan"),
        (Point("m", {}, {"f": math.inf}), "field 'f'", "inf"),
        (Point("m", {}, {"f": -math.inf}), "field 'f'", "-inf"),
        (Point("m", {}, {"f": 2**63}), "field 'f'", "9223372036854775808"),
        (Point("m", {}, {"f": -(2**63) - 1}), "field 'f'", "-9223372036854775809"),
        (Point("m", {"time": "x"}, {"f": 1}), "tag key", "'time'"),
        (Point("m", {}, {"time": 1}), "field key", "'time'"),
        (Point("#m", {}, {"f": 1}), "measurement", "'#m'"),
        (Point("\tm", {}, {"f": 1}), "measurement", "'\\tm'"),
        (Point("m", {}, {"z": 1, "\tf": 1}), "field key", "'\\tf'"),
        (Point("m\\", {}, {"f": 1}), "measurement", "'m\\\\'"),
        (Point("m", {"k": "trailing\\"}, {"f": 1}), "tag 'k' value", "'trailing\\\\'"),
        (Point("m", {"k\\": "v"}, {"f": 1}), "tag key", "'k\\\\'"),
        (Point("m", {}, {"f\\": 1}), "field key", "'f\\\\'"),
        (Point("m", {"k": "a\\,b"}, {"f": 1}), "tag 'k' value", "'a\\\\,b'"),
        (Point("m", {"k": "a\\\\b"}, {"f": 1}), "tag 'k' value", "'a\\\\\\\\b'"),
        (Point("m", {"k": "a\\ b"}, {"f": 1}), "tag 'k' value", "'a\\\\ b'"),
        (Point("m", {"k": "a\\=b"}, {"f": 1}), "tag 'k' value", "'a\\\\=b'"),
        (Point('a\\"b', {}, {"f": 1}), "measurement", "'a\\\\\"b'"),
        (Point("m", {}, {'f\\"': 1}), "field key", "'f\\\\\"'"),
        (Point("m", {"k": "bell\x07"}, {"f": 1}), "tag 'k' value", "'bell\\x07'"),
        (Point("m\x00", {}, {"f": 1}), "measurement", "'m\\x00'"),
        (Point("m", {}, {"del\x7f": 1}), "field key", "'del\\x7f'"),
        (Point("m", {"k": "\ud800"}, {"f": 1}), "tag 'k' value", "'\\ud800'"),
        (Point("m", {}, {"s": "\udfff"}), "field 's'", "'\\udfff'"),
        (Point("m", {}, {"f": None}), "field 'f'", "None"),  # type: ignore[dict-item]
        (Point("m", {}, {"f": b"x"}), "field 'f'", "b'x'"),  # type: ignore[dict-item]
        (Point("m", {"k": 1}, {"f": 1}), "tag 'k' value", "1"),  # type: ignore[dict-item]
        (Point("m", {}, {"f": 1}, 2**63), "ts", "9223372036854775808"),
        (Point("m", {}, {"f": 1}, True), "ts", "True"),  # noqa: FBT003 - the hostile input
        (Point("m", {"k": "x" * 70_000}, {"f": 1}), "series key", "70004 bytes"),
    ],
)
def test_what_line_protocol_cannot_carry_is_a_clear_error(
    point: Point, key: str, shown: str
) -> None:
    """A point the server cannot store faithfully raises LineProtocolError naming it, key, value."""
    with pytest.raises(LineProtocolError) as info:
        encode_lines([Point("ok", {}, {"f": 1}), point])
    message = str(info.value)
    assert message.startswith(f"point 1 (measurement {point.measurement!r})")
    assert key in message
    assert shown in message


def test_a_newline_in_a_tag_is_a_value_error() -> None:
    """LineProtocolError is a ValueError, so generic validation handlers catch it."""
    with pytest.raises(ValueError, match="newline"):
        encode_lines([Point("m", {"k": "a\nb"}, {"f": 1})])


@pytest.mark.parametrize(
    ("ts", "precision", "ok"),
    [
        (9_223_372_036_854_775_806, "ns", True),
        (9_223_372_036_854_775_807, "ns", False),
        (-9_223_372_036_854_775_806, "ns", True),
        (-9_223_372_036_854_775_807, "ns", False),
        (9_223_372_036, "s", True),
        (9_223_372_037, "s", False),
        (-9_223_372_036, "s", True),
        (9_223_372_036_854, "ms", True),
        (9_223_372_036_855, "ms", False),
        (9_223_372_036_854_775, "us", True),
        (9_223_372_036_854_776, "us", False),
    ],
)
def test_timestamps_outside_influx_range_are_rejected(ts: int, precision: str, *, ok: bool) -> None:
    """A timestamp is accepted exactly when, in nanoseconds, it is in influxd's range."""
    point = Point("m", {}, {"f": 1}, ts)
    if ok:
        assert encode_lines([point], precision) == f"m f=1i {ts}\n".encode()  # type: ignore[arg-type]
    else:
        with pytest.raises(LineProtocolError, match="outside the range"):
            encode_lines([point], precision)  # type: ignore[arg-type]


def test_unknown_precision_is_rejected() -> None:
    """Only s, ms, us and ns are precisions."""
    with pytest.raises(ValueError, match="precision"):
        encode_lines([Point("m", {}, {"f": 1})], "h")  # type: ignore[arg-type]


def test_point_is_frozen_and_slotted() -> None:
    """A Point cannot be changed after it is built and carries no __dict__."""
    point = Point("m", {}, {"f": 1})
    with pytest.raises(AttributeError):
        point.measurement = "n"  # type: ignore[misc]
    assert not hasattr(point, "__dict__")


# ---------------------------------------------------------------- properties
# A reference reader written from influxd 1.x's models/points.go: a separator counts unless the
# byte before it is a backslash; names then lose the backslash of `\,`, `\ ` (and `\=` in keys).


def _split(text: str, seps: str) -> list[str]:
    parts, start = [], 0
    for i, ch in enumerate(text):
        if ch in seps and (i == 0 or text[i - 1] != "\\"):
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _unescape(text: str, chars: str) -> str:
    for ch in chars:
        text = text.replace("\\" + ch, ch)
    return text


def _read_value(raw: str) -> FieldValue:
    if raw.startswith('"'):
        return re.sub(r"\\([\\\"])", r"\1", raw[1:-1])
    if raw in ("true", "false"):
        return raw == "true"
    if raw.endswith("i"):
        return int(raw[:-1])
    return float(raw)


def _read_fields(text: str) -> tuple[dict[str, FieldValue], int]:
    """Read a field set; return it and the index of the space before the timestamp (or the end)."""
    fields: dict[str, FieldValue] = {}
    i = 0
    while True:
        eq = next(j for j in range(i + 1, len(text)) if text[j] == "=" and text[j - 1] != "\\")
        j = eq + 1
        if text[j] == '"':
            j += 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
        else:
            while j < len(text) and text[j] not in ", ":
                j += 1
        fields[_unescape(text[i:eq], ", =")] = _read_value(text[eq + 1 : j])
        if j >= len(text) or text[j] == " ":
            return fields, j
        i = j + 1


def _read_line(line: str) -> Point:
    key_part = _split(line, " ")[0]
    measurement, *tag_parts = _split(key_part, ",")
    tags = {}
    for part in tag_parts:
        key, value = _split(part, "=")
        tags[_unescape(key, ", =")] = _unescape(value, ", =")
    rest = line[len(key_part) + 1 :]
    fields, end = _read_fields(rest)
    ts = int(rest[end + 1 :]) if end < len(rest) else None
    return Point(_unescape(measurement, ", "), tags, fields, ts)


_HOSTILE = " ,=\"'\\#\t.:;{}[]éü€😀字\u200b\u00a0\u2028"
_names = st.text(
    alphabet=st.sampled_from(_HOSTILE) | st.characters(codec="utf-8"),
    min_size=1,
    max_size=10,
)
_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(max_size=12),
)
_points = st.builds(
    Point,
    _names,
    st.dictionaries(_names, _names | st.just(""), max_size=3),
    st.dictionaries(_names, _values, min_size=1, max_size=3),
    st.none() | st.integers(-(2**62), 2**62),
)


@settings(max_examples=400)
@given(point=_points)
def test_encoding_either_raises_line_protocol_error_or_reads_back_exactly(point: Point) -> None:
    """A point encodes to a line influxd's 1.x rules read back exactly, or is refused clearly."""
    try:
        body = encode_lines([point])
    except LineProtocolError:
        return
    text = body.decode()
    assert text.endswith("\n")
    back = _read_line(text[:-1])
    assert back.measurement == point.measurement
    assert back.tags == {k: v for k, v in point.tags.items() if v}
    assert list(back.tags) == sorted(back.tags)
    assert back.ts == point.ts
    assert back.fields.keys() == point.fields.keys()
    for key, value in point.fields.items():
        assert type(back.fields[key]) is type(value)
        assert back.fields[key] == value


@settings(max_examples=200)
@given(points=st.lists(_points, max_size=5))
def test_a_batch_is_one_line_per_point_outside_quoted_strings(points: list[Point]) -> None:
    """However hostile the names, a batch is its points' lines, and only strings hold newlines."""
    try:
        body = encode_lines(points).decode()
    except LineProtocolError:
        return
    lines = [encode_lines([point]).decode() for point in points]
    assert body == "".join(lines)
    for point, line in zip(points, lines, strict=True):
        in_strings = sum(v.count("\n") for v in point.fields.values() if isinstance(v, str))
        assert line.count("\n") == 1 + in_strings
        assert line.endswith("\n")


@given(
    measurement=st.text(max_size=5),
    tags=st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
    fields=st.dictionaries(st.text(max_size=3), _values | st.none() | st.binary(), max_size=2),
)
def test_arbitrary_input_never_raises_anything_but_line_protocol_error(
    measurement: str, tags: dict[str, str], fields: dict[str, FieldValue]
) -> None:
    """Any input encodes or raises LineProtocolError; nothing else escapes the encoder."""
    with contextlib.suppress(LineProtocolError):
        encode_lines([Point(measurement, tags, fields)])
