r"""InfluxQL quoting, and the little lexing the client needs to pick GET or POST.

InfluxQL reads a double-quoted identifier and a single-quoted string the same way: a backslash
escapes `\`, `"`, `'` and `n` (a newline); any other escape is an error, and a raw newline ends
the string with an error. `quote_ident` and `quote_literal` escape exactly those, so any Python
string survives (proven against a real influxd by tests/integration/test_influx_roundtrip.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ESCAPES = {"\\": "\\\\", "\n": "\\n"}
_READ_VERBS = frozenset({"SELECT", "SHOW", "EXPLAIN"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _escape(text: str, quote: str) -> str:
    table = str.maketrans({**_ESCAPES, quote: "\\" + quote})
    return f"{quote}{text.translate(table)}{quote}"


def quote_ident(name: str) -> str:
    r"""Quote a name (measurement, tag key, field key, database) as an InfluxQL identifier.

    Args:
        name: Any string.

    Returns:
        The name in double quotes, with `\`, `"` and newlines escaped.

    Example:
        >>> quote_ident('we"ird name')
        '"we\\"ird name"'
    """
    return _escape(name, '"')


def quote_literal(value: str) -> str:
    r"""Quote a value (a tag value, a string field value) as an InfluxQL string literal.

    Prefer bind parameters (`query(..., params={...})`) where the server supports them.

    Args:
        value: Any string.

    Returns:
        The value in single quotes, with `\`, `'` and newlines escaped.

    Example:
        >>> quote_literal("it's")
        "'it\\'s'"
    """
    return _escape(value, "'")


def tag_in(tag: str, values: Iterable[str]) -> str:
    r"""A condition true for the series whose tag `tag` is one of `values`, in one regex.

    One ``=~`` per query is what InfluxDB 1.x answers fastest for hundreds of values (faster than
    an ``OR`` list: docs/scoring.md has the figures). Values are matched literally.

    Args:
        tag: The tag key.
        values: The tag values (at least one).

    Returns:
        ``"tag" =~ /^(a|b)$/``, each value escaped for the regex and for the ``/.../`` literal.

    Example:
        >>> tag_in("asset", ["pump-1", "a/b"])
        '"asset" =~ /^(pump\\-1|a\\/b)$/'
    """
    alternatives = "|".join(re.escape(v).replace("/", "\\/") for v in values)
    if not alternatives:
        raise ValueError(f"tag_in({tag!r}): no values")
    return f"{quote_ident(tag)} =~ /^({alternatives})$/"


def _skip_quoted(q: str, i: int) -> int:
    """Return the index after the quoted string, identifier or `/regex/` starting at `q[i]`."""
    quote = q[i]
    i += 1
    while i < len(q):
        if q[i] == "\\":
            i += 2
            continue
        if q[i] == quote:
            return i + 1
        i += 1
    return i


def _scan(q: str) -> list[tuple[str, list[str]]]:
    """Split a query into statements: their text, and their upper-cased bare words and symbols.

    Quoted identifiers, string literals, regex literals and comments are skipped: a `;` or a
    keyword inside them does not count.
    """
    statements: list[tuple[str, list[str]]] = []
    tokens: list[str] = []
    start = i = 0
    while i < len(q):
        ch = q[i]
        if ch in "\"'" or (ch == "/" and tokens[-1:] in (["=~"], ["!~"])):
            tokens.append("<quoted>")
            i = _skip_quoted(q, i)
        elif q.startswith("--", i):
            end = q.find("\n", i)
            i = len(q) if end < 0 else end + 1
        elif q.startswith("/*", i):
            end = q.find("*/", i + 2)
            i = len(q) if end < 0 else end + 2
        elif q.startswith(("=~", "!~"), i):
            tokens.append(q[i : i + 2])
            i += 2
        elif ch == ";":
            statements.append((q[start:i].strip(), tokens))
            tokens = []
            start = i = i + 1
        elif match := _WORD.match(q, i):
            tokens.append(match.group().upper())
            i = match.end()
        else:
            if not ch.isspace():
                tokens.append(ch)
            i += 1
    statements.append((q[start:].strip(), tokens))
    return [(text, toks) for text, toks in statements if toks]


def split_statements(q: str) -> list[str]:
    """Split a query on the `;` between statements, ignoring those inside quotes and regexes.

    Args:
        q: One or more InfluxQL statements.

    Returns:
        The statements, stripped; empty ones and bare comments are left out.
    """
    return [text for text, _ in _scan(q)]


def is_read_only(q: str) -> bool:
    """Tell whether every statement only reads, so the query may go over GET.

    InfluxDB 1.x refuses statements that change data over GET, so anything not known to be a
    read (SELECT without INTO, SHOW, EXPLAIN) is treated as a write and sent over POST.

    Args:
        q: One or more InfluxQL statements.

    Returns:
        True if the query can be sent with GET.
    """
    statements = _scan(q)
    return bool(statements) and all(
        toks[0] in _READ_VERBS and "INTO" not in toks for _, toks in statements
    )
