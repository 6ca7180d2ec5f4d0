"""Read planner: a profile's signals compiled into the fewest Modbus requests and one decoder each.

Theory of operation
-------------------
A Modbus request costs a round trip (on RTU at 9600 baud about 20 to 70 byte times of framing,
silence and device turnaround), while one more register in a request costs two bytes. So the
planner reads neighbouring signals in one request, even across a few unused registers, and only
splits where the protocol or the device forces it.

`compile_plan` runs once, when a device is loaded (STYLE.md 3):

1. Each signal goes into the *poll group* of its interval (``interval_s``, or an override from the
   device configuration): signals polled at different rates are not read by one request
   (except for Rule 2's identical requests).
2. Within a group, the signals of each table (holding, input, coil, discrete) are packed greedily
   into requests: a request starts at the lowest signal not yet read and takes, in address
   order, every signal that ends within ``max_registers`` (``max_bits``) of that start and whose
   unused registers (bits) before it are at most ``max_gap_*``; the others go to the next
   request. A value is never split across two requests.
3. Each signal gets one converter closure, built here with everything decided (codec, sentinels,
   scale and rounding, clamp, enum), so `CompiledPlan.decode` only executes them.

With an unlimited gap this greedy packing is optimal: any plan's first request must hold the
lowest signal and can reach at most ``max`` registers past it, so the greedy first request (every
signal that ends within ``max`` of the lowest one) holds a superset of it, and the argument repeats
on what is left. `theoretical_min_requests` counts that optimum from the profile alone, so tests
and the benchmark can show that the planner reaches it for every shipped profile (whose register
maps keep the unused gaps inside a group within the default ``max_gap_registers``).

Rules:
1. A request never exceeds the limits: at most 125 registers or 2000 bits (the protocol), less if
   the device configuration or the profile's ``request_limits`` say so.
2. Every signal lies wholly inside exactly one request of its group. When a slower group would
   send a request identical to a faster group's (a status word whose bits are polled at two
   rates), it sends none: its signals ride along with the faster request, at the faster interval
   (`SignalSlot.interval_s`), since `decode` cannot tell two equal requests apart.
3. `CompiledPlan.decode` never raises: a failed request makes all its signals bad with the
   request's reason; a short answer makes the signals it does not cover bad with
   ``short_response``; a sentinel raw value is bad with ``sentinel``; a NaN or infinite float is
   bad with ``not_finite``; an integer outside int64 (a uint64 above 2**63 - 1, which contract v1
   and InfluxDB cannot carry) is bad with ``out_of_range``.
4. An enum signal publishes its label (a short string, e.g. ``high_vibration``), or its integer code
   when the profile says ``enum_value: code``; a code missing from the enum publishes
   ``unknown_<code>`` (label) or the code.
5. Values keep one type per signal (`Signal.value_type`, the InfluxDB field type): a scaled
   integer is always a float, rounded to the decimals of its scale and offset (raw 437 with scale
   0.01 is 4.37, not 4.37000000000001); a float32 is published as the shortest decimal that reads
   back as the same float32 (123.456, not 123.45600128173828).
"""

from __future__ import annotations

import difflib
import math
import struct
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from edge_agent._exceptions import ConfigError
from edge_agent._model import BlockResult, PollGroup, Reading, ReadRequest, RegisterKind, Value
from edge_agent._profile import Profile, RequestLimits, Signal
from edge_agent.codecs import FLOAT_TYPES, Decoded, make_decoder, make_encoder
from prognos_contract import MAX_INT, MIN_INT

MAX_REGISTERS: Final = 125
"""Most registers one read may ask for (Modbus function codes 3 and 4)."""
MAX_BITS: Final = 2000
"""Most coils or discrete inputs one read may ask for (function codes 1 and 2)."""
_TABLE_ORDER: Final[dict[RegisterKind, int]] = {"holding": 0, "input": 1, "coil": 2, "discrete": 3}
_BIT_TABLES: Final = frozenset({"coil", "discrete"})
_SIGNED_BITS: Final[dict[str, int]] = {"int16": 16, "int32": 32, "int64": 64}
_F32: Final = struct.Struct(">f")
_F32_SMALLEST_NORMAL: Final = 2.0**-126
_G_FORMATS: Final = tuple(f".{digits}g" for digits in range(1, 10))
"""Format specs of 1 to 9 significant digits, for `shortest_float32`."""
_G_FORMATS_NORMAL: Final = _G_FORMATS[5:]
"""From 6 significant digits: where `shortest_float32` starts for a normal float32."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanLimits:
    """How large and how gappy one request may be, per device.

    Args:
        max_registers: Most registers per request (1..125).
        max_bits: Most coils or discrete inputs per request (1..2000).
        max_gap_registers: Most unused registers a request may read to join two signals. 16 costs
            32 bytes, less than one extra round trip on any bus; use 0 for a device that answers
            an unmapped address with an exception.
        max_gap_bits: Most unused bits a request may read to join two signals.

    Raises:
        ConfigError: a limit is out of range (the message names it).
    """

    max_registers: int = MAX_REGISTERS
    max_bits: int = MAX_BITS
    max_gap_registers: int = 16
    max_gap_bits: int = 256

    def __post_init__(self) -> None:
        for key, low, high in (
            ("max_registers", 1, MAX_REGISTERS),
            ("max_bits", 1, MAX_BITS),
            ("max_gap_registers", 0, None),
            ("max_gap_bits", 0, None),
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{key} must be an integer. Got {value!r} instead.", key=key)
            if value < low or (high is not None and value > high):
                bounds = f"between {low} and {high}" if high is not None else f">= {low}"
                raise ConfigError(f"{key} must be {bounds}. Got {value!r} instead.", key=key)

    def narrowed(self, limits: RequestLimits) -> PlanLimits:
        """These limits, tightened by a profile's ``request_limits`` where it sets a lower one."""

        def lower(mine: int, theirs: int | None) -> int:
            return mine if theirs is None else min(mine, theirs)

        return PlanLimits(
            max_registers=lower(self.max_registers, limits.max_registers),
            max_bits=lower(self.max_bits, limits.max_bits),
            max_gap_registers=lower(self.max_gap_registers, limits.max_gap_registers),
            max_gap_bits=lower(self.max_gap_bits, limits.max_gap_bits),
        )


@dataclass(frozen=True, slots=True)
class SignalSlot:
    """Where one signal sits in a compiled plan.

    Attributes:
        signal: The profile's signal.
        request: The request that reads it.
        offset: Its first register (bit) counted from ``request.address``.
        interval_s: Its effective poll interval, in seconds (faster than the profile's when it
            rides along with a faster group's identical request, Rule 2).
    """

    signal: Signal
    request: ReadRequest
    offset: int
    interval_s: float

    @property
    def end(self) -> int:
        """One past its last register (bit), counted from ``request.address``."""
        return self.offset + self.signal.words


class _BadValue(Exception):  # noqa: N818 - a control-flow signal inside decode, never escapes
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_Convert = Callable[[Sequence[int] | Sequence[bool]], Value]

_Field = tuple[str, int, int, _Convert]
"""One signal as `decode` executes it: name, offset, end (both counted from the request's
address) and converter, all fixed when the plan is compiled."""
_RequestDecoder = tuple[int, bool, tuple[_Field, ...], tuple[str, ...]]
"""One request's signals as `decode` executes them: the request's place in plan order, whether
it reads bits, its fields in plan order, and their names (for a failed request)."""


class CompiledPlan:
    """A device's poll plan (implements `edge_agent._model.PollPlan`); build it with `compile_plan`.

    Attributes:
        profile: The profile it was compiled from.
        asset: The asset id its readings carry.
        unit: The Modbus unit id of every request.
        limits: The effective limits (device limits narrowed by the profile's).
    """

    def __init__(
        self,
        *,
        profile: Profile,
        asset: str,
        unit: int,
        limits: PlanLimits,
        groups: Sequence[PollGroup],
        slots: Sequence[SignalSlot],
        chosen: Sequence[tuple[Signal, float]] = (),
    ) -> None:
        self.profile = profile
        self.asset = asset
        self.unit = unit
        self.limits = limits
        self._groups = tuple(groups)
        self._slots = tuple(slots)
        self._chosen = tuple(chosen) or tuple((s.signal, s.interval_s) for s in self._slots)
        self._decoders = _compile_decoders(self._slots)

    @property
    def groups(self) -> Sequence[PollGroup]:
        """The request groups, fastest first; send a group's requests in order."""
        return self._groups

    @property
    def slots(self) -> Sequence[SignalSlot]:
        """Every planned signal and where it sits, in group and request order."""
        return self._slots

    @property
    def requests(self) -> tuple[ReadRequest, ...]:
        """Every request of every group, in group order."""
        return tuple(request for group in self._groups for request in group.requests)

    def decode(self, results: Mapping[ReadRequest, BlockResult]) -> list[Reading]:
        """Decode results into one reading per signal whose request is in ``results``.

        Never raises (Rule 3). Readings come in plan order; each carries the ``ts_ms`` of the
        result it was decoded from.

        Args:
            results: What the I/O layer got back, keyed by the plan's requests.

        Returns:
            The readings, good or bad with a reason.
        """
        # Only the requests present are visited, one dict lookup each; everything about their
        # signals was fixed at compile time (STYLE.md 3), so this only executes.
        decoders = self._decoders
        found: list[tuple[int, bool, tuple[_Field, ...], tuple[str, ...], BlockResult]] = []
        for request, result in results.items():
            decoder = decoders.get(request)
            if decoder is not None:
                found.append((*decoder, result))
        if len(found) > 1:
            found.sort(key=_plan_order)
        readings: list[Reading] = []
        asset = self.asset
        for _, bits, fields, names, result in found:
            if result.error is not None:
                error, ts_ms = result.error, result.ts_ms
                readings.extend([Reading.bad(asset, name, ts_ms, error) for name in names])
            else:
                _decode_block(
                    readings, asset, fields, result.bits if bits else result.words, result
                )
        return readings

    def describe(self) -> str:
        """The plan as a human-readable table: one row per request, with its signals.

        Example::

            aquaflo_cpv150_2.x (AquaFlo CPV-150, firmware '>=2.0,<3') as asset 'pump-07', unit 1
            8 requests in 5 groups, theoretical minimum 8
            limits: 125 registers or 2000 bits per request, gaps of at most 16 registers or 256 bits
              #  every   table     unit  addresses  count  unused  signals
              1  1 s     input        1  0-9           10       0  flow_m3_h, ...
        """
        profile = self.profile
        minimum = _min_requests(self._chosen, self.limits)
        limits = self.limits
        header = [
            (
                f"{profile.profile_id} ({profile.vendor} {profile.model}, firmware "
                f"{profile.firmware!r}) as asset {self.asset!r}, unit {self.unit}"
            ),
            (
                f"{len(self.requests)} requests in {len(self._groups)} groups, theoretical "
                f"minimum {minimum}"
            ),
            (
                f"limits: {limits.max_registers} registers or {limits.max_bits} bits per "
                f"request, gaps of at most {limits.max_gap_registers} registers or "
                f"{limits.max_gap_bits} bits"
            ),
        ]
        rows = [("#", "every", "table", "unit", "addresses", "count", "unused", "signals")]
        by_request: dict[ReadRequest, list[SignalSlot]] = {}
        for slot in self._slots:
            by_request.setdefault(slot.request, []).append(slot)
        number = 0
        for group in self._groups:
            for request in group.requests:
                number += 1
                members = by_request.get(request, [])
                used = {slot.offset + i for slot in members for i in range(slot.signal.words)}
                last = request.address + request.count - 1
                rows.append(
                    (
                        str(number),
                        f"{group.interval_s:g} s",
                        request.kind,
                        str(request.unit),
                        f"{request.address}-{last}" if last != request.address else str(last),
                        str(request.count),
                        str(request.count - len(used)),
                        ", ".join(slot.signal.name for slot in members),
                    )
                )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        right = {0, 3, 5, 6}
        lines = [
            "  "
            + "  ".join(
                cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                for i, cell in enumerate(row[:-1])
            )
            + "  "
            + row[-1]
            for row in rows
        ]
        return "\n".join(header + [line.rstrip() for line in lines])


def _plan_order(hit: tuple[int, object, object, object, object]) -> int:
    return hit[0]


def _decode_block(
    readings: list[Reading],
    asset: str,
    fields: tuple[_Field, ...],
    data: Sequence[int] | Sequence[bool] | None,
    result: BlockResult,
) -> None:
    """Append the readings of one answered request's fields (`CompiledPlan.decode`, Rule 3)."""
    append = readings.append
    ts_ms = result.ts_ms
    size = -1 if data is None else len(data)
    for name, offset, end, convert in fields:
        if size < end:
            append(Reading.bad(asset, name, ts_ms, "short_response"))
            continue
        try:
            value = convert(data[offset:end])  # type: ignore[index]  # size >= 0: not None
        except _BadValue as bad:
            append(Reading.bad(asset, name, ts_ms, bad.reason))
        # A source that hands over garbage (a word above 0xFFFF, a non-number) must not stop the
        # poll: the signal is bad, the others still decode.
        except (ValueError, TypeError, OverflowError, struct.error):
            append(Reading.bad(asset, name, ts_ms, "decode_error"))
        else:
            append(Reading(asset, name, ts_ms, value))


def _compile_decoders(slots: Sequence[SignalSlot]) -> dict[ReadRequest, _RequestDecoder]:
    """Group the slots by request, in plan order, with a converter and plain offsets each."""
    fields: dict[ReadRequest, list[_Field]] = {}
    for slot in slots:
        field_ = (slot.signal.name, slot.offset, slot.end, _compile_converter(slot.signal))
        fields.setdefault(slot.request, []).append(field_)
    return {
        request: (
            index,
            request.kind in _BIT_TABLES,
            tuple(members),
            tuple(name for name, _, _, _ in members),
        )
        for index, (request, members) in enumerate(fields.items())
    }


@dataclass(slots=True)
class _Block:
    start: int
    end: int  # exclusive
    members: list[tuple[int, Signal]] = field(default_factory=list)


def _pack(items: Sequence[tuple[int, Signal]], *, max_count: int, max_gap: int) -> list[_Block]:
    """Pack (address, signal) items of one table into blocks (module docstring, step 2).

    Each block is anchored at the lowest item left and takes, in address order, every item that
    ends within ``max_count`` of the anchor and starts at most ``max_gap`` after the block's end
    so far; items it skips start the next block. With an unlimited gap these are exactly the
    windows `theoretical_min_requests` counts.
    """
    remaining = sorted(items, key=lambda item: (item[0], item[0] + item[1].words))
    blocks: list[_Block] = []
    while remaining:
        anchor, first = remaining[0]
        block = _Block(anchor, anchor + first.words, [remaining[0]])
        skipped = []
        for start, signal in remaining[1:]:
            end = start + signal.words
            if end <= anchor + max_count and start - block.end <= max_gap:
                block.end = max(block.end, end)
                block.members.append((start, signal))
            else:
                skipped.append((start, signal))
        blocks.append(block)
        remaining = skipped
    return blocks


def _selected(
    profile: Profile,
    signals: Collection[str] | None,
    intervals_s: Mapping[str, float] | None,
) -> list[tuple[Signal, float]]:
    known = {signal.name for signal in profile.signals}

    def check(name: str, key: str) -> None:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{key}: {name!r} is not a signal of profile {profile.profile_id}{hint}.", key=key
            )

    for name in signals or ():
        check(name, "signals")
    overrides = dict(intervals_s or {})
    for name, interval in overrides.items():
        check(name, "intervals_s")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ConfigError(
                f"intervals_s.{name} must be a number > 0. Got {interval!r} instead.",
                key=f"intervals_s.{name}",
            )
    wanted = set(signals) if signals is not None else known
    if not wanted:
        raise ConfigError(f"signals selects no signal of profile {profile.profile_id}.")
    return [
        (signal, float(overrides.get(signal.name, signal.interval_s)))
        for signal in profile.signals
        if signal.name in wanted
    ]


def _table_limits(kind: RegisterKind, limits: PlanLimits) -> tuple[int, int]:
    if kind in _BIT_TABLES:
        return limits.max_bits, limits.max_gap_bits
    return limits.max_registers, limits.max_gap_registers


def compile_plan(
    profile: Profile,
    *,
    asset: str,
    unit: int,
    limits: PlanLimits | None = None,
    signals: Collection[str] | None = None,
    intervals_s: Mapping[str, float] | None = None,
) -> CompiledPlan:
    """Compile a profile into a device's poll plan: the fewest requests, one decoder per signal.

    Args:
        profile: The device's profile.
        asset: The asset id the readings carry.
        unit: The Modbus unit (slave) id, 0..255.
        limits: The device's limits (default: the protocol's, gaps of 16 registers / 256 bits);
            the profile's ``request_limits`` narrow them further.
        signals: Poll only these signals (default: all).
        intervals_s: Poll intervals that override the profile's, by signal name, in seconds.

    Returns:
        The plan.

    Raises:
        ConfigError: an unknown signal name, a bad interval or unit, or a value wider than the
            device's request limit.
    """
    if isinstance(unit, bool) or not isinstance(unit, int) or not 0 <= unit <= 255:  # noqa: PLR2004
        raise ConfigError(
            f"unit must be a Modbus unit id 0..255. Got {unit!r} instead.", key="unit"
        )
    effective = (limits or PlanLimits()).narrowed(profile.request_limits)
    chosen = _selected(profile, signals, intervals_s)
    buckets: dict[tuple[float, RegisterKind], list[tuple[int, Signal]]] = {}
    for signal, interval in chosen:
        max_count, _ = _table_limits(signal.kind, effective)
        if signal.words > max_count:
            raise ConfigError(
                f"{profile.profile_id}: signal {signal.name!r} spans {signal.words} registers, "
                f"more than the {max_count} one request may read on this device.",
                key="max_registers",
            )
        buckets.setdefault((interval, signal.kind), []).append((signal.address, signal))
    groups: list[PollGroup] = []
    slots: list[SignalSlot] = []
    polled_at: dict[ReadRequest, float] = {}  # request -> interval of the group that sends it
    for interval in sorted({interval for interval, _ in buckets}):
        requests: list[ReadRequest] = []
        for kind in sorted({k for i, k in buckets if i == interval}, key=_TABLE_ORDER.__getitem__):
            max_count, max_gap = _table_limits(kind, effective)
            for block in _pack(buckets[interval, kind], max_count=max_count, max_gap=max_gap):
                request = ReadRequest(kind, unit, block.start, block.end - block.start)
                if request not in polled_at:  # else Rule 2: ride along with the faster group
                    polled_at[request] = interval
                    requests.append(request)
                slots.extend(
                    SignalSlot(signal, request, start - block.start, polled_at[request])
                    for start, signal in block.members
                )
        if requests:
            groups.append(PollGroup(interval_s=interval, requests=tuple(requests)))
    order = {request: index for index, request in enumerate(polled_at)}
    slots.sort(key=lambda slot: (order[slot.request], slot.offset))
    return CompiledPlan(
        profile=profile,
        asset=asset,
        unit=unit,
        limits=effective,
        groups=groups,
        slots=slots,
        chosen=chosen,
    )


def theoretical_min_requests(
    profile: Profile,
    limits: PlanLimits | None = None,
    *,
    signals: Collection[str] | None = None,
    intervals_s: Mapping[str, float] | None = None,
) -> int:
    """The fewest requests that can read the signals, with unlimited gaps within the size limits.

    Signals of different poll groups or tables are read at different times or by different
    function codes, so each (interval, table) is packed on its own into the fewest windows of at
    most ``max_registers`` (``max_bits``) that each hold whole signals: anchor a window at the
    lowest signal left, take every signal that ends inside it, repeat. A window identical to one
    of a faster group is read once (Rule 2). This is counted from the profile alone, not from
    `compile_plan`'s output, so a test can compare the two.

    Args:
        profile: The profile.
        limits: The device's limits (narrowed by the profile's, as in `compile_plan`); gaps are
            ignored.
        signals: Only these signals (default: all).
        intervals_s: Interval overrides, as in `compile_plan`.

    Returns:
        The minimum number of requests per full poll cycle (every group polled once).

    Raises:
        ConfigError: as `compile_plan`.
    """
    effective = (limits or PlanLimits()).narrowed(profile.request_limits)
    return _min_requests(_selected(profile, signals, intervals_s), effective)


def _min_requests(chosen: Sequence[tuple[Signal, float]], limits: PlanLimits) -> int:
    buckets: dict[tuple[float, RegisterKind], list[tuple[int, int]]] = {}
    for signal, interval in chosen:
        buckets.setdefault((interval, signal.kind), []).append(
            (signal.address, signal.address + signal.words)
        )
    windows: set[tuple[RegisterKind, int, int]] = set()
    for (_, kind), spans in buckets.items():
        size, _ = _table_limits(kind, limits)
        remaining = spans
        while remaining:
            anchor = min(start for start, _ in remaining)
            inside = [end for _, end in remaining if end <= anchor + size]
            windows.add((kind, anchor, max(inside)))
            remaining = [(start, end) for start, end in remaining if end > anchor + size]
    return len(windows)


# ---------------------------------------------------------------------------------------------
# Converters: compiled once per signal


def _decimals(number: float) -> int:
    exponent = Decimal(repr(number)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def shortest_float32(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (123.456 for 123.45600128...).

    Args:
        value: A float32 value, widened to a Python float.

    Returns:
        The same float32 value, written with the fewest significant digits (non-finite values
        unchanged).
    """
    if not math.isfinite(value):
        return value
    packed = _F32.pack(value)
    # Start at 6: a normal float32 is within 3e-8 (relative) of its shortest decimal, far inside
    # half a step of the 6-digit grid, so %.6g already yields any shorter decimal (zeros
    # stripped). Subnormals have less precision and start at 1.
    pack = _F32.pack
    for spec in _G_FORMATS_NORMAL if abs(value) >= _F32_SMALLEST_NORMAL else _G_FORMATS:
        candidate = float(format(value, spec))
        try:
            if pack(candidate) == packed:
                return candidate
        except OverflowError:  # rounded past the largest float32
            continue
    return value  # unreachable: 9 significant digits always round-trip a float32


def _sentinels(signal: Signal) -> frozenset[int | float]:
    """The raw values meaning "invalid", in the form the decoder returns them."""
    width = _SIGNED_BITS.get(signal.type)
    found: set[int | float] = set()
    for sentinel in signal.nan_value:
        if signal.type == "float32":
            found.add(_F32.unpack(_F32.pack(float(sentinel)))[0])
        elif signal.type in FLOAT_TYPES:
            found.add(float(sentinel))
        elif width is not None and isinstance(sentinel, int) and sentinel >= 1 << (width - 1):
            found.add(sentinel - (1 << width))  # written as the register pattern, e.g. 0x8000
        else:
            found.add(sentinel)
    return frozenset(found)


def _fast_converter(  # noqa: C901 - three closures, one chosen here
    decode: Callable[[Sequence[int]], Decoded],
    sentinels: frozenset[int | float],
    *,
    enum: dict[int, str] | None,
    has_enum: bool,
    scaled: bool,
    scale: float,
    offset: float,
    ndigits: int,
    as_int: bool,
) -> _Convert | None:
    """A closure of its own for the common shapes of unclamped integer signal, else None.

    With nothing left to test per value, it gives the same values and reasons as the general
    converter of `_compile_converter`. `enum` is set only when the signal publishes labels.
    """
    if not has_enum and not scaled and as_int:

        def convert_int(words: Sequence[int] | Sequence[bool]) -> Value:
            raw = decode(words)
            if raw in sentinels:
                raise _BadValue("sentinel")
            value = int(raw)
            if not MIN_INT <= value <= MAX_INT:
                raise _BadValue("out_of_range")
            return value

        return convert_int
    if not has_enum and scaled and not as_int:

        def convert_scaled(words: Sequence[int] | Sequence[bool]) -> Value:
            raw = decode(words)
            if raw in sentinels:
                raise _BadValue("sentinel")
            return float(round(int(raw) * scale + offset, ndigits))

        return convert_scaled
    if enum is not None:

        def convert_label(words: Sequence[int] | Sequence[bool]) -> Value:
            raw = decode(words)
            if raw in sentinels:
                raise _BadValue("sentinel")
            label = enum.get(int(raw))
            return f"unknown_{raw}" if label is None else label

        return convert_label
    return None


def _compile_converter(signal: Signal) -> _Convert:  # noqa: C901 - one closure, decided here
    """One closure from raw words (bits) to the published value (Rules 3 to 5)."""
    if signal.kind in _BIT_TABLES:
        return lambda bits: bool(bits[0])
    decode = make_decoder(
        signal.type,
        byte_order=signal.byte_order,
        length_words=signal.length_words,
        encoding=signal.encoding,
        padding=signal.padding,
        bit=signal.bit,
        bit_range=signal.bit_range,
    )
    if signal.type in {"bool", "string"}:
        return decode
    sentinels = _sentinels(signal)
    is_float = signal.type in FLOAT_TYPES
    is_float32 = signal.type == "float32"
    enum = dict(signal.enum) if signal.enum is not None else None
    enum_label = enum is not None and signal.enum_value != "code"
    scaled = signal.value_type == "float" and not (signal.scale == 1 and signal.offset == 0)
    scale, offset = signal.scale, signal.offset
    ndigits = max(_decimals(scale), _decimals(offset))
    clamp = signal.clamp
    low = clamp.min if clamp is not None and clamp.min is not None else -math.inf
    high = clamp.max if clamp is not None and clamp.max is not None else math.inf
    clamped = low != -math.inf or high != math.inf
    as_int = signal.value_type == "int"
    fast = (
        None
        if is_float or clamped
        else _fast_converter(
            decode,
            sentinels,
            enum=enum if enum_label else None,
            has_enum=enum is not None,
            scaled=scaled,
            scale=scale,
            offset=offset,
            ndigits=ndigits,
            as_int=as_int,
        )
    )
    if fast is not None:
        return fast

    def convert(words: Sequence[int] | Sequence[bool]) -> Value:
        raw = decode(words)
        if raw in sentinels:
            raise _BadValue("sentinel")
        if is_float:
            if not math.isfinite(raw):  # type: ignore[arg-type]  # a float for float types
                raise _BadValue("not_finite")
            value: float | int = shortest_float32(float(raw)) if is_float32 else float(raw)
            if scaled:
                value = value * scale + offset
        elif enum is not None and enum_label:
            return enum.get(int(raw), f"unknown_{raw}")
        elif scaled:
            value = round(int(raw) * scale + offset, ndigits)
        else:
            value = int(raw)
        if clamped:
            value = min(max(value, low), high)
        if not as_int:
            return float(value)
        if not MIN_INT <= value <= MAX_INT:
            raise _BadValue("out_of_range")  # a uint64 above int64: the contract cannot carry it
        return int(value)

    return convert


# ---------------------------------------------------------------------------------------------
# Writes


def encode_write(signal: Signal, value: Value) -> list[int] | list[bool]:
    """Encode an engineering value for writing to a writable signal (``access: read_write``).

    The inverse of decoding: an enum label becomes its code, scale and offset are undone (and
    rounded to the register's integer), and the clamp bounds are enforced rather than saturated.

    Args:
        signal: The signal (a whole holding-register value or a coil).
        value: The value, as `CompiledPlan.decode` would publish it.

    Returns:
        The registers to write (function 16, or 6 for one register), or one bit for a coil
        (function 5).

    Raises:
        ValueError: the signal is not writable, or the value does not fit it.
    """
    if signal.access != "read_write":
        raise ValueError(f"signal {signal.name!r} is read-only (access: {signal.access}).")
    if signal.kind == "coil":
        if not isinstance(value, bool):
            raise ValueError(f"coil {signal.name!r} takes true or false. Got {value!r} instead.")
        return [value]
    raw: Value = value
    if signal.enum is not None and isinstance(value, str):
        codes = {label: code for code, label in signal.enum.items()}
        if value not in codes:
            raise ValueError(
                f"{signal.name!r} takes one of {sorted(codes)}. Got {value!r} instead."
            )
        raw = codes[value]
    elif signal.enum is not None and value not in signal.enum:
        codes_text = sorted(signal.enum)
        raise ValueError(f"{signal.name!r} takes one of {codes_text}. Got {value!r} instead.")
    elif signal.type not in {"string", "bool"}:
        if isinstance(value, bool | str):
            raise ValueError(f"{signal.name!r} takes a number. Got {value!r} instead.")
        clamp = signal.clamp
        if clamp is not None and (
            (clamp.min is not None and value < clamp.min)
            or (clamp.max is not None and value > clamp.max)
        ):
            raise ValueError(
                f"{signal.name!r} must be within [{clamp.min}, {clamp.max}]. Got {value!r} instead."
            )
        number = (value - signal.offset) / signal.scale
        raw = number if signal.type in FLOAT_TYPES else round(number)
    encode = make_encoder(
        signal.type,
        byte_order=signal.byte_order,
        length_words=signal.length_words,
        encoding=signal.encoding,
        padding=signal.padding,
    )
    return encode(raw)
