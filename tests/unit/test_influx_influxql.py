"""InfluxQL quoting, statement splitting and the GET-or-POST decision."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.store import quote_ident, quote_literal
from cloud.store._influxql import is_read_only, split_statements


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("cpu", '"cpu"'),
        ('we"ird', '"we\\"ird"'),
        ("back\\slash", '"back\\\\slash"'),
        ("it's", '"it\'s"'),
        ("two\nlines", '"two\\nlines"'),
        ("", '""'),
        ("ü😀 x,y=z", '"ü😀 x,y=z"'),
    ],
)
def test_quote_ident_table(name: str, quoted: str) -> None:
    """Identifiers are double-quoted with backslash, double quote and newline escaped."""
    assert quote_ident(name) == quoted


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("north", "'north'"),
        ("it's", "'it\\'s'"),
        ('say "x"', "'say \"x\"'"),
        ("C:\\dir\\", "'C:\\\\dir\\\\'"),
        ("a\nb", "'a\\nb'"),
    ],
)
def test_quote_literal_table(value: str, quoted: str) -> None:
    """String literals are single-quoted with backslash, single quote and newline escaped."""
    assert quote_literal(value) == quoted


def _unquote(quoted: str) -> str:
    """InfluxQL's string scanner (influxql/scanner.go ScanString), for the property below."""
    escapes = {"n": "\n", "\\": "\\", '"': '"', "'": "'"}
    out, i, body = [], 0, quoted[1:-1]
    while i < len(body):
        if body[i] == "\\":
            out.append(escapes[body[i + 1]])
            i += 2
        else:
            assert body[i] not in (quoted[0], "\n")
            out.append(body[i])
            i += 1
    return "".join(out)


@given(st.text())
def test_quoting_round_trips_through_influxql_string_rules(text: str) -> None:
    """Any string, quoted either way, reads back unchanged under InfluxQL's escape rules."""
    assert _unquote(quote_ident(text)) == text
    assert _unquote(quote_literal(text)) == text


@pytest.mark.parametrize(
    ("q", "read_only"),
    [
        ("SELECT * FROM cpu", True),
        ("  select mean(v) from cpu group by time(1m)", True),
        ("SHOW DATABASES", True),
        ("SHOW MEASUREMENTS; SHOW TAG KEYS", True),
        ("EXPLAIN SELECT * FROM cpu", True),
        ('SELECT "into" FROM "INTO" WHERE t = \'INTO\'', True),
        ("SELECT * FROM cpu WHERE host =~ /a;DROP/", True),
        ("SELECT * FROM cpu -- ; DROP DATABASE x\n", True),
        ("SELECT * INTO copy FROM cpu", False),
        ("select * into copy from cpu", False),
        ("CREATE DATABASE x", False),
        ("DROP MEASUREMENT cpu", False),
        ("SELECT * FROM cpu; DELETE FROM cpu", False),
        ('SELECT * FROM "a;b"; DROP SERIES FROM cpu', False),
        ("", False),
        ("-- only a comment", False),
    ],
)
def test_only_reads_go_over_get(q: str, *, read_only: bool) -> None:
    """A query goes over GET only if every statement is a SELECT without INTO, a SHOW or EXPLAIN."""
    assert is_read_only(q) is read_only


@pytest.mark.parametrize(
    ("q", "statements"),
    [
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
        ("SELECT * FROM \"a;b\" WHERE t = 'c;d'", ["SELECT * FROM \"a;b\" WHERE t = 'c;d'"]),
        ("SELECT * FROM m WHERE t =~ /x;y/ ; SHOW DATABASES", [
            "SELECT * FROM m WHERE t =~ /x;y/", "SHOW DATABASES",
        ]),
        ("SELECT 'it\\'s;' FROM m", ["SELECT 'it\\'s;' FROM m"]),
        ("  ;  ; ", []),
    ],
)  # fmt: skip
def test_statements_split_on_semicolons_outside_quotes(q: str, statements: list[str]) -> None:
    """Statements split on `;` only outside quoted names, literals and regexes."""
    assert split_statements(q) == statements
