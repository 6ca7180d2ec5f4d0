"""Sans-I/O core of the ingester: what one MQTT message becomes, and when a batch is written.

No sockets, no clocks, no files: the shell (`cloud.ingest._ingester`) passes `now_ms`, hands
payloads in and gets points, rejects and decisions out.

Rules:

1. A telemetry payload that breaks contract v1 as a whole is rejected as a whole (one reject, no
   points). A bad reading rejects that reading only; the others are written (contract rule 2).
2. A reading becomes one point of `telemetry` (tags site, gateway, asset, model; one field per
   signal in `values`); signals in `bad` are counted, never written. A reading whose value type
   differs from the type the signal already has is rejected (`field_type_conflict`) before
   anything is sent, naming the signal, the stored and the sent type. An integer sent for a
   float signal is written as a float (JSON does not tell `3` from `3.0`), if it is exact.
3. Every accepted telemetry message adds one `ingest_batches` point (tags site, gateway; fields
   `seq`, `readings`, `rejected`, `ts_min`, `ingester`) so any number of processes leave one
   shared record of the seqs they stored (gap detection reads it).
4. A (gateway, seq) already stored by this process, or already in the batch, is a duplicate:
   no points, acknowledged.
5. Points carry nanosecond timestamps: a reading's `ts` (ms) times 10**6; an `ingest_batches`
   point is stamped with the receive time in ms plus `seq` modulo 10**6 in the sub-ms digits, so
   two batches of one gateway received in the same millisecond never overwrite each other.
6. A batch is written when it holds `max_points` points, or `max_wait_ms` after its first point.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from itertools import repeat
from operator import itemgetter, mul
from typing import Literal, Protocol

import prognos_contract as pc
from cloud.ingest._fastpath import FastReading, escape_tag, fast_telemetry
from cloud.store import FieldValue, LineProtocolError, Point, encode_lines

TELEMETRY = "telemetry"
"""Measurement of readings (DESIGN.md)."""
BATCHES = "ingest_batches"
"""Measurement of the shared record of stored (gateway, seq)."""
STATUS = "gateway_status"
"""Measurement of gateway online/offline changes."""
EVENTS = "edge_events"
"""Measurement of edge events."""
AGENT_HEALTH = "agent_health"
"""Measurement of the edge agents' own metrics (DESIGN.md), one point per health message."""
UNKNOWN_MODEL = "unknown"
"""The `model` tag of a reading whose asset is not in the registry."""
NS_PER_MS = 1_000_000
"""Points carry nanosecond timestamps (writes use precision ns)."""

FieldType = Literal["float", "integer", "boolean", "string"]
"""A field type as InfluxDB's `SHOW FIELD KEYS` names it."""

_FLOAT_EXACT = 2**53
_ASSET_CACHE = 100_000  # per (site, gateway): asset -> its series key in line protocol
_SERIES_CACHE = 10_000  # (site, gateway) pairs with such a cache
_FIELDS, _BAD = itemgetter(3), itemgetter(4)  # of a `FastReading`


class AssetLookup(Protocol):
    """What the core needs of `cloud.registry.AssetRegistry`: the asset's profile, if known."""

    def get(self, asset_id: str) -> object | None:
        """Return the asset (with `.profile`), or None if unknown."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class Reject:
    """Something dead-lettered, and why.

    Attributes:
        reason: A `prognos_contract.REASONS` code, or `field_type_conflict`, `write_rejected`,
            `bad_topic`, `unknown_topic`.
        path: JSON pointer into the payload; "" for the whole message.
        message: What was wrong, quoting the value.
        index: The reading's index in `readings`, or None for the whole message.
    """

    reason: str
    path: str
    message: str
    index: int | None = None


@dataclasses.dataclass(slots=True)
class Outcome:
    """What one MQTT message became.

    Attributes:
        kind: The topic's kind, or "invalid" when the topic did not parse.
        site: The site from the topic, if it parsed.
        gateway: The gateway from the topic (for telemetry: from the payload).
        seq: The batch's seq (telemetry only).
        lines: The points to write, in line protocol (precision ns), without newlines.
        readings: For each line, the index of its reading in the payload (None: not a reading).
        times_ns: For each reading's line (those with a reading index), its timestamp.
        rejects: Dead-lettered parts, with reasons.
        whole: The whole message was rejected (nothing of it is written).
        duplicate: (gateway, seq) was already stored by this process.
        status: The decoded status (status messages only).
        bad_signals: Signals listed in `bad` across the accepted readings (not written).
        unknown_assets: Assets of accepted readings not in the registry.
    """

    kind: str
    site: str | None = None
    gateway: str | None = None
    seq: int | None = None
    lines: list[str] = dataclasses.field(default_factory=list)
    readings: list[int | None] = dataclasses.field(default_factory=list)
    times_ns: list[int] = dataclasses.field(default_factory=list)
    rejects: list[Reject] = dataclasses.field(default_factory=list)
    whole: bool = False
    duplicate: bool = False
    status: pc.Status | None = None
    bad_signals: int = 0
    unknown_assets: list[str] = dataclasses.field(default_factory=list)

    def add(self, line: str, reading: int | None, ts_ns: int) -> None:
        """Add one point to write."""
        self.lines.append(line)
        self.readings.append(reading)
        if reading is not None:
            self.times_ns.append(ts_ns)

    @property
    def reading_points(self) -> int:
        """Points of readings (bookkeeping points left out)."""
        return sum(1 for r in self.readings if r is not None)


def field_type(value: FieldValue) -> FieldType:
    """The InfluxDB type a Python value is written as."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


class FieldTypes:
    """One type per field and measurement: seeded from `SHOW FIELD KEYS`, learnt from writes.

    Not thread-safe; the ingester's writer thread owns it.
    """

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, str]] = {}

    def table(self, measurement: str) -> dict[str, str]:
        """The live field -> type mapping of one measurement (the fast path updates it)."""
        return self._tables.setdefault(measurement, {})

    def clear(self) -> None:
        """Forget every type."""
        for table in self._tables.values():
            table.clear()

    def seed(self, measurement: str, types: Mapping[str, str]) -> None:
        """Set the stored types of a measurement's fields (the server's word wins)."""
        table = self.table(measurement)
        for name, kind in types.items():
            if kind in ("float", "integer", "boolean", "string"):
                table[name] = kind

    def get(self, measurement: str, name: str) -> FieldType | None:
        """The known type of a field, or None."""
        return self.table(measurement).get(name)  # type: ignore[return-value]

    def coerce(
        self, measurement: str, fields: Mapping[str, FieldValue]
    ) -> tuple[dict[str, FieldValue], tuple[str, FieldType, FieldType] | None]:
        """Fit fields to the known types, learning the types of new fields.

        Args:
            measurement: The measurement.
            fields: Field names to values.

        Returns:
            The fields to write (integers for float fields made floats), and None; or, on the
            first conflict, {} and (field, stored type, sent type); nothing is learnt then.
        """
        out: dict[str, FieldValue] = {}
        new: list[tuple[str, FieldType]] = []
        table = self.table(measurement)
        for name, value in fields.items():
            sent = field_type(value)
            stored = table.get(name)
            if stored is None:
                new.append((name, sent))
                out[name] = value
            elif stored == sent:
                out[name] = value
            elif stored == "float" and sent == "integer" and abs(int(value)) <= _FLOAT_EXACT:
                out[name] = float(value)
            else:
                return {}, (name, stored, sent)  # type: ignore[return-value]
        table.update(new)
        return out, None


class SeqWindow:
    """The most recent (gateway, seq) pairs stored, for dropping duplicates; bounded, LRU."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, keys: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        """Remember pairs; returns those forgotten to stay within the capacity."""
        if self.capacity <= 0:
            return []
        for key in keys:
            self._seen[key] = None
            self._seen.move_to_end(key)
        evicted: list[tuple[str, int]] = []
        while len(self._seen) > self.capacity:
            evicted.append(self._seen.popitem(last=False)[0])
        return evicted


@dataclasses.dataclass(slots=True)
class Batcher:
    """The batching policy: write at `max_points` points or `max_wait_ms` after the first one.

    Attributes:
        max_points: Points that make a batch due at once.
        max_wait_ms: How long the first point of a batch may wait.
        points: Points in the current batch.
        messages: Messages in the current batch.
        first_ms: When the batch's first message arrived, or None when empty.
    """

    max_points: int
    max_wait_ms: int
    points: int = 0
    messages: int = 0
    first_ms: int | None = None

    def add(self, points: int, now_ms: int) -> None:
        """Count one message with its points into the batch."""
        if self.first_ms is None:
            self.first_ms = now_ms
        self.points += points
        self.messages += 1

    def due(self, now_ms: int) -> bool:
        """The batch should be written now."""
        if self.messages == 0:
            return False
        return self.points >= self.max_points or self.wait_ms(now_ms) == 0

    def wait_ms(self, now_ms: int) -> int | None:
        """How long until the batch is due by time; None when empty."""
        if self.first_ms is None:
            return None
        return max(0, self.first_ms + self.max_wait_ms - now_ms)

    def reset(self) -> None:
        """Start a new batch (after a write)."""
        self.points = self.messages = 0
        self.first_ms = None


@dataclasses.dataclass(slots=True)
class Classifier:
    """Turns MQTT messages into points and rejects (the core's one entry point).

    Attributes:
        prefix: The topic prefix.
        ingester: This process's id (the `ingester` field of `ingest_batches`).
        types: The field-type cache.
        seen: The dedupe window.
        registry: The asset registry, or None (every asset unknown).
        max_future_skew_ms: Readings stamped further ahead of `now_ms` are rejected.
        pending: (gateway, seq) classified into the batch not yet written; the shell clears it
            after each write (a seq twice in one batch is a duplicate too).
    """

    prefix: str
    ingester: str
    types: FieldTypes
    seen: SeqWindow
    registry: AssetLookup | None = None
    max_future_skew_ms: int = pc.DEFAULT_MAX_FUTURE_SKEW_MS
    pending: set[tuple[str, int]] = dataclasses.field(default_factory=set)
    _model_tags: dict[str, str] = dataclasses.field(default_factory=dict)
    _series: dict[tuple[str | None, str], dict[str, tuple[str, bool]]] = dataclasses.field(
        default_factory=dict
    )

    def classify(
        self, topic: str, payload: bytes, *, content_type: str | None, now_ms: int
    ) -> Outcome:
        """Decode one message.

        Args:
            topic: The topic it arrived on.
            payload: Its payload.
            content_type: Its MQTT 5 content type, if any.
            now_ms: The receiver's clock, epoch ms.

        Returns:
            What to write and what to dead-letter; never raises for any payload.
        """
        try:
            parsed = pc.parse_topic(topic, prefix=self.prefix)
        except pc.ContractError as exc:
            return _whole(Outcome(kind="invalid"), exc)
        out = Outcome(kind=parsed.kind, site=parsed.site, gateway=parsed.gateway)
        try:
            if parsed.kind == "telemetry":
                self._telemetry(out, payload, content_type, now_ms)
            elif parsed.kind == "status":
                self._status(out, payload, content_type)
            elif parsed.kind == "events":
                self._event(out, payload, content_type)
            elif parsed.kind == "health":
                self._health(out, payload, content_type)
            else:
                out.whole = True
                out.rejects.append(
                    Reject("unknown_topic", "", f"the ingester takes no {parsed.kind!r} messages")
                )
        except pc.ContractError as exc:
            return _whole(out, exc)
        except LineProtocolError as exc:
            return _whole(out, pc.ContractError("bad_value", f"not writable to InfluxDB: {exc}"))
        return out

    def _telemetry(  # noqa: C901 - the per-reading loop stays: the reference of `_plain`
        self, out: Outcome, payload: bytes, content_type: str | None, now_ms: int
    ) -> None:
        fast = fast_telemetry(
            payload,
            content_type=content_type,
            now_ms=now_ms,
            max_future_skew_ms=self.max_future_skew_ms,
            types=self.types.table(TELEMETRY),
        )
        if fast is None:
            self._telemetry_slow(out, payload, content_type, now_ms)
            return
        gateway, seq, readings = fast
        if self._duplicate(out, gateway, seq):
            return
        series = self._series.get((out.site, gateway)) or self._new_series(out.site, gateway)
        if self._plain(out, gateway, readings, series):
            self._bookkeeping(out, gateway, seq, min(map(itemgetter(2), readings)), now_ms)
            return
        ts_min: int | None = None
        add_line, add_reading, add_time = out.lines.append, out.readings.append, out.times_ns.append
        registry = self.registry
        for index, asset, ts, fields, bad in readings:
            if bad:
                out.bad_signals += bad
            if ts_min is None or ts < ts_min:
                ts_min = ts
            if not fields:
                continue  # only bad signals: counted, nothing to write
            ts_ns = ts * NS_PER_MS
            cached = series.get(asset)
            if cached is None or (cached[1] and registry is not None):
                cached = self._series_key(out, gateway, asset)  # an unknown one: look again
                if len(series) < _ASSET_CACHE:
                    series[asset] = cached
            elif cached[1]:
                out.unknown_assets.append(asset)
            add_line(f"{cached[0]} {fields} {ts_ns}")
            add_reading(index)
            add_time(ts_ns)
        self._bookkeeping(out, gateway, seq, ts_min, now_ms)

    def _plain(
        self,
        out: Outcome,
        gateway: str,
        readings: list[FastReading],
        series: dict[str, tuple[str, bool]],
    ) -> bool:
        """Add the lines of readings that all have fields and no bad signals, column by column.

        The same lines, order and unknown-asset records as the loop in `_telemetry`, without
        Python code per reading (the fast path's rule 6 does the same for the field sets).
        False (nothing added) when some reading has no fields or bad signals: the loop then.
        """
        if not readings or not all(map(_FIELDS, readings)) or any(map(_BAD, readings)):
            return False
        indices, assets, stamps, fields, _ = zip(*readings, strict=True)
        keys: dict[str, str] = {}
        unknown: set[str] = set()
        scratch = Outcome(kind=out.kind, site=out.site)  # `_series_key` records unknowns here
        for asset in set(assets):
            cached = series.get(asset)
            if cached is None or (cached[1] and self.registry is not None):
                cached = self._series_key(scratch, gateway, asset)  # an unknown one: look again
                if len(series) < _ASSET_CACHE:
                    series[asset] = cached
            keys[asset] = cached[0]
            if cached[1]:
                unknown.add(asset)
        if unknown:
            out.unknown_assets.extend(filter(unknown.__contains__, assets))
        # ts * 10**6 as text: ts > 0 (TS_MIN_MS), so six zeros appended.
        line = "{} {} {}000000".format
        out.lines.extend(map(line, map(keys.__getitem__, assets), fields, stamps))
        out.readings.extend(indices)
        out.times_ns.extend(map(mul, stamps, repeat(NS_PER_MS)))
        return True

    def _new_series(self, site: str | None, gateway: str) -> dict[str, tuple[str, bool]]:
        """The (bounded) cache of series keys of one gateway's assets."""
        series: dict[str, tuple[str, bool]] = {}
        if len(self._series) < _SERIES_CACHE:
            self._series[site, gateway] = series
        return series

    def _series_key(self, out: Outcome, gateway: str, asset: str) -> tuple[str, bool]:
        """(`telemetry` and the tag set of the asset's readings in line protocol, is it unknown).

        Names that pass the contract's patterns need no escaping; the model tag is escaped.
        """
        model = self._model(asset, out)
        site = f",site={out.site}" if out.site else ""
        key = f"{TELEMETRY},asset={asset},gateway={gateway},model={model}{site}"
        return key, model == UNKNOWN_MODEL

    def _duplicate(self, out: Outcome, gateway: str, seq: int) -> bool:
        out.gateway, out.seq = gateway, seq
        key = (gateway, seq)
        if key in self.seen or key in self.pending:
            out.duplicate = True
            return True
        self.pending.add(key)
        return False

    def _telemetry_slow(
        self, out: Outcome, payload: bytes, content_type: str | None, now_ms: int
    ) -> None:
        decoded = pc.decode_telemetry(
            payload,
            content_type=content_type,
            now_ms=now_ms,
            max_future_skew_ms=self.max_future_skew_ms,
        )
        batch = decoded.batch
        if self._duplicate(out, batch.gateway, batch.seq):
            return
        out.rejects.extend(Reject(r.reason, r.path, r.message, r.index) for r in decoded.rejected)
        rejected = {r.index for r in decoded.rejected}
        indices = [i for i in range(len(batch.readings) + len(rejected)) if i not in rejected]
        for index, reading in zip(indices, batch.readings, strict=True):
            out.bad_signals += len(reading.bad)
            if not reading.values:
                continue  # only bad signals: counted, nothing to write
            fields, conflict = self.types.coerce(TELEMETRY, reading.values)
            if conflict is not None:
                name, stored, sent = conflict
                out.rejects.append(
                    Reject(
                        "field_type_conflict",
                        f"/readings/{index}/values/{name}",
                        f"signal {name!r} is stored as {stored}, this reading sends {sent}",
                        index,
                    )
                )
                continue
            # The fast path's series key (its model tag is escaped already: not through `Point`).
            key, _ = self._series_key(out, batch.gateway, reading.asset)
            ts_ns = reading.ts * NS_PER_MS
            line = _line(Point(TELEMETRY, {}, fields, ts_ns))  # "telemetry <fields> <ts>"
            out.add(key + line[len(TELEMETRY) :], index, ts_ns)
        ts_min = min((r.ts for r in batch.readings), default=None)
        self._bookkeeping(out, batch.gateway, batch.seq, ts_min, now_ms)

    def _bookkeeping(
        self, out: Outcome, gateway: str, seq: int, ts_min: int | None, now_ms: int
    ) -> None:
        book: dict[str, FieldValue] = {
            "seq": seq,
            "readings": out.reading_points,
            "rejected": len(out.rejects),
            "ingester": self.ingester,
        }
        if ts_min is not None:
            book["ts_min"] = ts_min
        # Unique per (gateway, seq) unless two seqs equal modulo 10**6 arrive in the same ms.
        ts_ns = now_ms * NS_PER_MS + seq % NS_PER_MS
        tags = {"site": out.site or "", "gateway": gateway}
        out.add(_line(Point(BATCHES, tags, book, ts_ns)), None, ts_ns)

    def _model(self, asset: str, out: Outcome) -> str:
        found = self.registry.get(asset) if self.registry is not None else None
        profile = getattr(found, "profile", None)
        if found is None or not isinstance(profile, str) or not profile:
            out.unknown_assets.append(asset)
            return UNKNOWN_MODEL
        tag = self._model_tags.get(profile)
        if tag is None:
            try:
                _line(Point(TELEMETRY, {"model": profile}, {"x": 1}))
            except LineProtocolError:
                tag = UNKNOWN_MODEL  # a profile id line protocol cannot carry
            else:
                tag = escape_tag(profile)
            self._model_tags[profile] = tag
        return tag

    def _status(self, out: Outcome, payload: bytes, content_type: str | None) -> None:
        status = pc.decode_status(payload, content_type=content_type)
        out.status = status
        ts_ns = status.ts * NS_PER_MS
        fields: dict[str, FieldValue] = {
            "state": status.state,
            "online": status.state == "online",
            "agent_version": status.agent_version,
        }
        tags = {"site": out.site or "", "gateway": out.gateway or ""}
        out.add(_line(Point(STATUS, tags, fields, ts_ns)), None, ts_ns)

    def _event(self, out: Outcome, payload: bytes, content_type: str | None) -> None:
        event = pc.decode_event(payload, content_type=content_type)
        tags = {"site": out.site or "", "gateway": event.gateway, "kind": event.kind}
        if event.asset is not None:
            tags["asset"] = event.asset
        fields: dict[str, FieldValue] = {"count": 1}
        fields.update({f"detail_{k}": v for k, v in event.detail.items()})
        fields, conflict = self.types.coerce(EVENTS, fields)
        if conflict is not None:
            name, stored, sent = conflict
            raise pc.ContractError(
                "wrong_type",
                f"event detail {name!r} is stored as {stored}, this event sends {sent}",
                "/detail",
            )
        ts_ns = event.ts * NS_PER_MS
        out.add(_line(Point(EVENTS, tags, fields, ts_ns)), None, ts_ns)

    def _health(self, out: Outcome, payload: bytes, content_type: str | None) -> None:
        health = pc.decode_health(payload, content_type=content_type)
        # Floats, always: a metric that reads 0 in one message and 2.5 in the next must not
        # become an integer field that every later message conflicts with.
        fields: dict[str, FieldValue] = {k: float(v) for k, v in health.metrics.items()}
        if not fields:
            raise pc.ContractError("missing_field", "a health message with no metric", "")
        tags = {"site": out.site or "", "gateway": out.gateway or ""}
        ts_ns = health.ts * NS_PER_MS
        out.add(_line(Point(AGENT_HEALTH, tags, fields, ts_ns)), None, ts_ns)


def _line(point: Point) -> str:
    return encode_lines((point,), "ns").decode()[:-1]


def _whole(out: Outcome, exc: pc.ContractError) -> Outcome:
    out.whole = True
    out.lines.clear()
    out.readings.clear()
    out.times_ns.clear()
    out.rejects = [Reject(exc.reason, exc.path, exc.message)]
    return out


# ---------------------------------------------------------------- gaps


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """A discontinuity in one gateway's seq.

    Attributes:
        kind: `gap` (seqs missing) or `outbox_epoch` (a new outbox started a new numbering).
        first: The first missing seq (for an epoch: the last seq before it plus one).
        last: The last missing seq (for an epoch: the new outbox's first seq minus one).
        stored_ms: When the seq after it was stored (the finding's time in InfluxDB).
    """

    kind: Literal["gap", "outbox_epoch"]
    first: int
    last: int
    stored_ms: int

    @property
    def missing(self) -> int:
        """How many seqs are missing (meaningless for an epoch)."""
        return self.last - self.first + 1


_EPOCH_NEAR_MS = 86_400_000
_EPOCH_MIN_JUMP = 1000


def is_epoch(expected: int, seq: int, ts_min: int | None, *, epoch_jump_min: int) -> bool:
    """Whether a forward jump from `expected` to `seq` is a new outbox, not lost batches.

    A new outbox numbers from its creation time in ms: a jump of at least `epoch_jump_min`, or a
    jump of more than 1000 to a seq that lies within a day before the batch's first reading.
    """
    jump = seq - expected
    if jump >= epoch_jump_min:
        return True
    return jump > _EPOCH_MIN_JUMP and ts_min is not None and 0 <= ts_min - seq <= _EPOCH_NEAR_MS


def scan_gaps(
    expected: int | None,
    rows: Iterable[tuple[int, int, int | None]],
    *,
    now_ms: int,
    grace_ms: int,
    epoch_jump_min: int,
) -> tuple[int | None, list[Finding]]:
    """Find gaps in one gateway's stored seqs.

    Args:
        expected: The next seq not yet accounted for, or None before the first scan (then the
            smallest stored seq starts the record: nothing before it is a gap).
        rows: Stored (seq, stored_ms, ts_min) of seqs at or above `expected`, any order,
            duplicates allowed.
        now_ms: The scanner's clock.
        grace_ms: A missing seq is reported only once a later seq was stored this long ago
            (until then it may still arrive, e.g. through another ingester's redelivery).
        epoch_jump_min: See `is_epoch`.

    Returns:
        The new `expected`, and the findings in seq order. Each finding is reported once:
        `expected` moves past it.
    """
    by_seq: dict[int, tuple[int, int | None]] = {}
    for seq, stored_ms, ts_min in rows:
        if expected is not None and seq < expected:
            continue
        prev = by_seq.get(seq)
        by_seq[seq] = (stored_ms, ts_min) if prev is None else (min(prev[0], stored_ms), ts_min)
    findings: list[Finding] = []
    for seq in sorted(by_seq):
        stored_ms, ts_min = by_seq[seq]
        if expected is None or seq == expected:
            expected = seq + 1
            continue
        if is_epoch(expected, seq, ts_min, epoch_jump_min=epoch_jump_min):
            findings.append(Finding("outbox_epoch", expected, seq - 1, stored_ms))
        elif stored_ms <= now_ms - grace_ms:
            findings.append(Finding("gap", expected, seq - 1, stored_ms))
        else:
            break  # too recent: the missing ones may still come
        expected = seq + 1
    return expected, findings
