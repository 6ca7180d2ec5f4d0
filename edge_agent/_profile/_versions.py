"""Firmware versions and specifiers: `parse_version` and the tiny `VersionSpec`.

Only numeric components are understood (``"2.10"``, ``"v4.2.1"``); specifiers follow a small,
PEP 440-like grammar. Each specifier is also kept as an interval [low, high] so that two
profiles of one model can be checked for overlapping firmware (`VersionSpec.overlaps`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

Version = tuple[int, ...]
"""A firmware version: numeric components, trailing zeros stripped (``"2.10.0"`` is ``(2, 10)``)."""

_VERSION_RE: Final = re.compile(r"^[vV]?(\d+(?:\.\d+)*)$")
_CLAUSE_RE: Final = re.compile(r"^(==|!=|>=|<=|>|<|~=)?\s*[vV]?(\d+(?:\.\d+)*)(\.\*|\.x)?$")
_Bound = tuple[Version, bool] | None  # (version, inclusive), None = unbounded


def _normal(version: Sequence[int]) -> Version:
    parts = list(version)
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def parse_version(text: str) -> Version:
    """Parse a firmware version such as ``"2.4"``, ``"v4.2.1"`` or ``"5.12"``.

    Components are compared as integers, so ``"2.10"`` is newer than ``"2.9"``, and trailing zeros
    do not matter (``"2.1"`` equals ``"2.1.0"``).

    Raises:
        ValueError: ``text`` is not dot-separated numbers (with an optional leading ``v``).
    """
    match = _VERSION_RE.match(text.strip())
    if match is None:
        raise ValueError(f"a version must be numbers separated by dots. Got {text!r} instead.")
    return _normal([int(part) for part in match.group(1).split(".")])


@dataclass(frozen=True, slots=True)
class _Clause:
    op: str
    version: Version  # as written (not normalised) for prefix clauses
    prefix: bool

    def admits(self, version: Version) -> bool:
        if self.prefix:
            padded = (*version, *(0,) * len(self.version))[: len(self.version)]
            return (padded == self.version) == (self.op == "==")
        mine = _normal(self.version)
        return {
            "==": version == mine,
            "!=": version != mine,
            ">=": version >= mine,
            ">": version > mine,
            "<=": version <= mine,
            "<": version < mine,
        }[self.op]


def _bump(version: Version) -> Version:
    """The first version after every version that starts with ``version`` (``2.1`` -> ``2.2``)."""
    return _normal((*version[:-1], version[-1] + 1))


def _tighter_low(a: _Bound, b: _Bound) -> _Bound:
    if a is None or b is None:
        return a or b
    if a[0] != b[0]:
        return a if a[0] > b[0] else b
    return (a[0], a[1] and b[1])


def _tighter_high(a: _Bound, b: _Bound) -> _Bound:
    if a is None or b is None:
        return a or b
    if a[0] != b[0]:
        return a if a[0] < b[0] else b
    return (a[0], a[1] and b[1])


def _interval_empty(low: _Bound, high: _Bound) -> bool:
    if low is None or high is None:
        return False
    return low[0] > high[0] or (low[0] == high[0] and not (low[1] and high[1]))


class VersionSpec:
    """A firmware version or specifier: ``"2.4"``, ``">=2.1,<3"``, ``"~=5.1"``, ``"2.*"``, ``"*"``.

    Clauses are separated by commas and must all hold. Operators are ``== != >= <= > < ~=``; a
    bare version means ``==``; ``2.*`` (or ``2.x``) matches every version starting with 2;
    ``~=5.1`` means ``>=5.1,<6`` and ``~=2.1.3`` means ``>=2.1.3,<2.2`` (as in PEP 440); ``*``
    matches any version.

    Args:
        text: The specifier.

    Raises:
        ValueError: the text is no specifier, or no version can satisfy it.
    """

    __slots__ = ("_clauses", "_high", "_low", "text")

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        clauses: list[_Clause] = []
        if self.text != "*":
            for part in self.text.split(","):
                clauses.extend(_parse_clause(part.strip(), self.text))
        self._clauses = tuple(clauses)
        low: _Bound = None
        high: _Bound = None
        for clause in self._clauses:
            low, high = _narrow(clause, low, high)
        if _interval_empty(low, high):
            raise ValueError(f"{self.text!r} matches no version.")
        self._low, self._high = low, high

    def __contains__(self, version: object) -> bool:
        """Whether a version (text or `Version`) satisfies every clause (garbage text: no)."""
        if isinstance(version, str):
            try:
                version = parse_version(version)
            except ValueError:
                return False
        if not isinstance(version, tuple):
            return False
        normal = _normal(version)
        return all(clause.admits(normal) for clause in self._clauses)

    def overlaps(self, other: VersionSpec) -> bool:
        """Whether some version could satisfy both specifiers (``!=`` clauses are ignored).

        Ignoring ``!=`` errs on the safe side: two profiles that only a ``!=`` keeps apart are
        reported as overlapping.
        """
        low = _tighter_low(self._low, other._low)
        high = _tighter_high(self._high, other._high)
        return not _interval_empty(low, high)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"VersionSpec({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VersionSpec) and self._clauses == other._clauses

    def __hash__(self) -> int:
        return hash(self._clauses)


def _parse_clause(part: str, whole: str) -> list[_Clause]:
    match = _CLAUSE_RE.match(part)
    if match is None:
        raise ValueError(f"{whole!r} has a clause that is no version or comparison: {part!r}.")
    op, digits, wildcard = match.group(1) or "==", match.group(2), match.group(3)
    version = tuple(int(piece) for piece in digits.split("."))
    if wildcard:
        if op not in {"==", "!="}:
            raise ValueError(f"{whole!r}: a wildcard only goes with '==' or '!=': {part!r}.")
        return [_Clause(op, version, prefix=True)]
    if op == "~=":
        if len(version) < 2:  # noqa: PLR2004 - PEP 440: '~=' needs major.minor at least
            raise ValueError(f"{whole!r}: '~=' needs at least two components: {part!r}.")
        return [_Clause(">=", version, prefix=False), _Clause("==", version[:-1], prefix=True)]
    return [_Clause(op, version, prefix=False)]


def _narrow(clause: _Clause, low: _Bound, high: _Bound) -> tuple[_Bound, _Bound]:
    if clause.prefix:
        if clause.op == "==":
            low = _tighter_low(low, (_normal(clause.version), True))
            high = _tighter_high(high, (_bump(clause.version), False))
        return low, high
    version = _normal(clause.version)
    if clause.op in {"==", ">=", ">"}:
        low = _tighter_low(low, (version, clause.op != ">"))
    if clause.op in {"==", "<=", "<"}:
        high = _tighter_high(high, (version, clause.op != "<"))
    return low, high
