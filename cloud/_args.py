"""Argument types the cloud's commands share: times (ISO 8601, UTC when no zone is given)."""

from __future__ import annotations

import argparse
import datetime as dt


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 date or time as an aware time; without a zone it is UTC.

    Raises:
        ValueError: Not ISO 8601; the message quotes the text and shows the expected form.

    Example:
        >>> parse_time("2026-11-23T10:00").isoformat()
        '2026-11-23T10:00:00+00:00'
    """
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 time like 2026-11-23T10:00Z. Got {text!r} instead"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def time_arg(text: str) -> dt.datetime:
    """`parse_time` as an argparse ``type=`` (its message reaches the user)."""
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
