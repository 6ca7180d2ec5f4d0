"""One way to word a pydantic validation error for a config file: a line per problem."""

from __future__ import annotations

from pydantic import ValidationError


def format_validation_error(error: ValidationError, source: str) -> str:
    """Word every problem of `error`, one line each.

    Each line reads ``{source}: {key} {message}. Got {value!r} instead.``
    """
    lines = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"{source}: {where} {msg}. Got {e['input']!r} instead.")
    return "\n".join(lines)
