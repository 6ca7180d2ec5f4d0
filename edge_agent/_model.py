"""The values that flow through the agent: what a poll plan asks of a device, and what it yields.

Theory of operation
-------------------
Loading a device (profile + device config) compiles a `PollPlan` once, with no I/O: the fewest
`ReadRequest`s that cover the device's signals (grouped by poll interval), and a decoder per
signal. Polling executes the plan: the I/O layer (a `sources` module) sends each `ReadRequest` and
hands back one `BlockResult` per request, either the raw words/bits or the reason the request
failed. `PollPlan.decode` turns those results into `Reading`s. A failed request never raises out
of a poll: every signal it covered becomes a bad reading that carries the reason, so one bad
block never hides the good ones.

Rules:
1. A `Reading` is either good (`value` set, `reason` None) or bad (`value` None, `reason` set).
2. `ts_ms` is the time the request that carried the value was answered (epoch ms, UTC).
3. Signal names are the profile's names; the asset is the device config's asset id.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

Value = float | int | bool | str
"""A decoded signal value: what the MQTT contract v1 carries in `values`."""

RegisterKind = Literal["holding", "input", "coil", "discrete"]
"""Modbus data tables: holding/input registers are 16-bit words, coils/discrete inputs are bits."""


class Quality(enum.StrEnum):
    """Whether a reading may be used."""

    GOOD = "good"
    BAD = "bad"


class Reading(NamedTuple):
    """One signal of one asset at one time, good or bad with the reason.

    A named tuple rather than a frozen dataclass: a poll builds one per signal, and a tuple is
    built several times faster (immutable, hashable and compared field by field all the same).
    """

    asset: str
    signal: str
    ts_ms: int
    value: Value | None
    quality: Quality = Quality.GOOD
    reason: str | None = None

    @classmethod
    def bad(cls, asset: str, signal: str, ts_ms: int, reason: str) -> Reading:
        """A reading whose read failed, with the reason (e.g. `timeout`, `exception_code_2`)."""
        return cls(asset, signal, ts_ms, None, Quality.BAD, reason)


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus request: a data table, the unit (slave) id, a start address and a count.

    `count` is in registers for `holding`/`input` and in bits for `coil`/`discrete`.
    """

    kind: RegisterKind
    unit: int
    address: int
    count: int


class BlockResult(NamedTuple):
    """What one `ReadRequest` returned: raw words or bits, or why it failed.

    Exactly one of `words`, `bits` or `error` is set. `error` is a short snake_case reason:
    `timeout`, `no_response`, `exception_code_N` (the device's Modbus exception), `bad_frame`
    (CRC or framing error), `short_response`, `disconnected`. A named tuple, like `Reading`: one
    is built per request.
    """

    ts_ms: int
    words: Sequence[int] | None = None
    bits: Sequence[bool] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PollGroup:
    """Requests polled together at one interval: signals with the same interval share a group."""

    interval_s: float
    requests: tuple[ReadRequest, ...]


class PollPlan(Protocol):
    """A device's compiled poll plan (see the module docstring)."""

    @property
    def groups(self) -> Sequence[PollGroup]:
        """The request groups, fastest first; the I/O layer sends a group's requests in order."""
        ...

    def decode(self, results: Mapping[ReadRequest, BlockResult]) -> list[Reading]:
        """Decode results into one reading per signal, good or bad; never raises.

        Only signals whose requests are all in `results` are decoded, so a poll of one group yields
        that group's signals.
        """
        ...
