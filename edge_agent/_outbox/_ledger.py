"""The outbox's pure core: batch encoding, the size-cap policy, counters and open transactions.

Nothing here does I/O, reads a clock or logs (STYLE.md 6): `MemoryOutbox` and `SqliteOutbox`
keep their messages in different places but make every decision through this module, so the
shared test suite checks one policy. Counters are immutable values: a storage computes the new
ones, commits them with its rows, and only then replaces the old ones, so a failed commit leaves
memory and storage in step.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edge_agent._outbox._types import OutboxMessage, OutboxStats, Transaction
from prognos_contract import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_JSON_GZIP,
    ID_PATTERN,
    MAX_INT,
    Reading,
    TelemetryBatch,
    encode_telemetry,
)

_ID_RE = re.compile(ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Entry:
    """What the size cap needs to know about a stored message."""

    id: int
    seq: int
    readings: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class Depth:
    """What an outbox holds: messages, their readings and their payload bytes."""

    messages: int = 0
    readings: int = 0
    nbytes: int = 0

    def plus(self, entries: Iterable[Entry]) -> Depth:
        """Return the depth with ``entries`` added."""
        messages, readings, nbytes = self.messages, self.readings, self.nbytes
        for entry in entries:
            messages += 1
            readings += entry.readings
            nbytes += entry.nbytes
        return Depth(messages, readings, nbytes)

    def minus(self, entries: Sequence[Entry]) -> Depth:
        """Return the depth with ``entries`` taken away."""
        if not entries:
            return self
        gone = Depth().plus(entries)
        return Depth(
            self.messages - gone.messages, self.readings - gone.readings, self.nbytes - gone.nbytes
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """The counters an outbox persists: the next ``seq`` and what ever went in and out."""

    next_seq: int
    enqueued_messages: int = 0
    enqueued_readings: int = 0
    published_messages: int = 0
    published_readings: int = 0
    rejected_messages: int = 0
    rejected_readings: int = 0
    dropped_messages: int = 0
    dropped_readings: int = 0

    def after_enqueue(self, entry: Entry, dropped: Sequence[Entry]) -> Totals:
        """Return the totals after committing ``entry`` and dropping ``dropped``."""
        # Spelled out rather than dataclasses.replace(): this runs at every commit.
        return Totals(
            next_seq=entry.seq + 1,
            enqueued_messages=self.enqueued_messages + 1,
            enqueued_readings=self.enqueued_readings + entry.readings,
            published_messages=self.published_messages,
            published_readings=self.published_readings,
            rejected_messages=self.rejected_messages,
            rejected_readings=self.rejected_readings,
            dropped_messages=self.dropped_messages + len(dropped),
            dropped_readings=self.dropped_readings + sum(e.readings for e in dropped),
        )

    def after_end(self, settlement: Settlement) -> Totals:
        """Return the totals after deleting the accepted and rejected messages."""
        return dataclasses.replace(
            self,
            published_messages=self.published_messages + len(settlement.accepted),
            published_readings=self.published_readings
            + sum(m.readings for m in settlement.accepted),
            rejected_messages=self.rejected_messages + len(settlement.rejected),
            rejected_readings=self.rejected_readings + sum(m.readings for m in settlement.rejected),
        )

    def as_row(self) -> tuple[int, ...]:
        """Return the counters in declaration order (the columns of the meta table)."""
        # Not dataclasses.astuple: it deep-copies, and this runs on every commit.
        return tuple(getattr(self, name) for name in TOTALS_FIELDS)


TOTALS_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Totals))
"""Names of the `Totals` counters, in `Totals.as_row` order."""


@dataclass(frozen=True, slots=True)
class Cap:
    """The size cap: an outbox holds at most ``max_messages`` and ``max_bytes`` payload bytes."""

    max_messages: int
    max_bytes: int

    def __post_init__(self) -> None:
        check_positive(self.max_messages, what="max_messages")
        check_positive(self.max_bytes, what="max_bytes")

    def exceeded_by(self, depth: Depth) -> bool:
        """Whether ``depth`` is over the cap."""
        return depth.messages > self.max_messages or depth.nbytes > self.max_bytes


def choose_drops(
    candidates: Iterable[Entry],
    *,
    depth: Depth,
    cap: Cap,
    pinned: set[int],
    newest_id: int,
) -> list[Entry]:
    """Return the messages to drop, oldest first, to bring ``depth`` under ``cap``.

    Rules 4 and 5 of the package: the oldest messages go first; a message in an open transaction
    (``pinned``) is never dropped, nor is the message just committed (``newest_id``). If those
    alone exceed the cap, the outbox stays over it until they leave.

    Args:
        candidates: Stored messages in commit order; read only as far as needed.
        depth: The depth including the newest message.
        cap: The size cap.
        pinned: Ids of messages in open transactions.
        newest_id: Id of the message just committed.

    Returns:
        The messages to drop, possibly none.
    """
    drops: list[Entry] = []
    if not cap.exceeded_by(depth):
        return drops
    for entry in candidates:
        if entry.id >= newest_id:
            break
        if entry.id in pinned:
            continue
        drops.append(entry)
        depth = depth.minus((entry,))
        if not cap.exceeded_by(depth):
            break
    return drops


def check_gateway(gateway: object) -> str:
    """Return ``gateway`` if it is a contract v1 gateway id, or raise `ValueError`."""
    if not isinstance(gateway, str) or not _ID_RE.fullmatch(gateway):
        raise ValueError(f"gateway must match {ID_PATTERN}. Got {gateway!r} instead.")
    return gateway


def check_seq(value: object, *, what: str) -> int:
    """Return ``value`` if it is a valid contract ``seq`` (0 to ``MAX_INT``), or raise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise ValueError(f"{what} must be an integer from 0 to {MAX_INT}. Got {value!r} instead.")
    return value


def check_positive(value: object, *, what: str) -> int:
    """Return ``value`` if it is a positive integer, or raise `ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer. Got {value!r} instead.")
    return value


@dataclass(frozen=True, slots=True)
class Encoded:
    """A batch encoded for the outbox, before it has a row id."""

    seq: int
    topic: str
    payload: bytes
    content_type: str
    readings: int
    created_ms: int

    def message(self, message_id: int) -> OutboxMessage:
        """Return the message with its row id."""
        return OutboxMessage(
            message_id,
            self.seq,
            self.topic,
            self.payload,
            self.content_type,
            self.readings,
            self.created_ms,
        )

    def entry(self, message_id: int) -> Entry:
        """Return what the size cap needs to know, with the row id."""
        return Entry(message_id, self.seq, self.readings, len(self.payload))


def encode_batch(
    readings: Sequence[Reading],
    *,
    gateway: str,
    seq: int,
    topic: str,
    now_ms: int,
    compress: bool,
) -> Encoded:
    """Build and encode the telemetry batch ``seq`` (Rule 2 of the package).

    Raises:
        ValueError: ``readings`` is empty, ``topic`` is not a publishable topic, or ``now_ms``
            is not a non-negative integer.
        ContractError: The batch breaks the contract (a reading of the wrong type, more than
            ``MAX_READINGS_PER_BATCH`` readings, or a payload over ``MAX_PAYLOAD_BYTES``).
    """
    if not readings:
        raise ValueError("readings is empty: an outbox batch holds at least one reading")
    if not isinstance(topic, str) or not topic or "+" in topic or "#" in topic:
        raise ValueError(f"topic must be a non-empty MQTT topic without wildcards. Got {topic!r}.")
    if isinstance(now_ms, bool) or not isinstance(now_ms, int) or now_ms < 0:
        raise ValueError(f"now_ms must be a non-negative integer. Got {now_ms!r} instead.")
    batch = TelemetryBatch(gateway=gateway, seq=seq, readings=tuple(readings))
    payload = encode_telemetry(batch, compress=compress)
    content_type = CONTENT_TYPE_JSON_GZIP if compress else CONTENT_TYPE_JSON
    return Encoded(seq, topic, payload, content_type, len(batch.readings), now_ms)


@dataclass(frozen=True, slots=True)
class Settlement:
    """The outcome of a transaction, checked: the messages to delete, by kind."""

    accepted: tuple[OutboxMessage, ...]
    rejected: tuple[OutboxMessage, ...]

    @property
    def ids(self) -> list[int]:
        """Row ids of every message to delete."""
        return [m.id for m in self.accepted + self.rejected]

    def entries(self) -> list[Entry]:
        """The messages to delete, as size-cap entries."""
        return [
            Entry(m.id, m.seq, m.readings, len(m.payload)) for m in self.accepted + self.rejected
        ]


class OpenTransactions:
    """The transactions handed out and not yet ended, and the message ids they pin."""

    def __init__(self) -> None:
        # Keyed by id(): a Transaction is a mutable dataclass, hence unhashable. The object is
        # kept too, so a recycled id() of a dead transaction can never match.
        self._open: dict[int, tuple[Transaction, tuple[OutboxMessage, ...]]] = {}
        self.pinned: set[int] = set()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, messages: Sequence[OutboxMessage]) -> Transaction:
        """Return a new open transaction over ``messages`` and pin them."""
        batch = tuple(messages)
        tx = Transaction(batch=batch)
        self._open[id(tx)] = (tx, batch)
        self.pinned.update(m.id for m in batch)
        return tx

    def settle(self, tx: Transaction) -> Settlement:
        """Check an ending transaction's lists and return what to delete; change nothing.

        Duplicate indices within one list count once.

        Raises:
            ValueError: ``tx`` is not open here (ended already, from another outbox or from
                before a reopen), or an index is not an integer of the batch, or is in both lists.
        """
        found = self._open.get(id(tx))
        if found is None or found[0] is not tx:
            raise ValueError(
                "this transaction is not open in this outbox (ended already, or begun on "
                "another outbox or before it was reopened)"
            )
        batch = found[1]
        accept = _indices(tx.accept, len(batch), what="accept")
        reject = _indices(tx.reject, len(batch), what="reject")
        both = accept & reject
        if both:
            raise ValueError(f"indices {sorted(both)} are both in accept and in reject")
        return Settlement(
            accepted=tuple(batch[i] for i in sorted(accept)),
            rejected=tuple(batch[i] for i in sorted(reject)),
        )

    def remove(self, tx: Transaction) -> None:
        """Forget an open transaction and unpin its messages."""
        found = self._open.pop(id(tx), None)
        if found is not None:
            self.pinned.difference_update(m.id for m in found[1])

    def clear(self) -> None:
        """Forget every open transaction (on close)."""
        self._open.clear()
        self.pinned.clear()


def _indices(values: object, size: int, *, what: str) -> set[int]:
    if not isinstance(values, list):
        raise ValueError(f"tx.{what} must be a list of indices. Got {values!r} instead.")  # noqa: TRY004 - ValueError is the documented contract of end()
    indices: set[int] = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
            raise ValueError(
                f"tx.{what} holds {value!r}, which is not an index of the batch of {size}"
            )
        indices.add(value)
    return indices


def make_stats(
    *,
    depth: Depth,
    totals: Totals,
    in_flight_messages: int,
    oldest_created_ms: int | None,
    now_ms: int,
) -> OutboxStats:
    """Return the statistics snapshot for the given state."""
    age_ms = 0 if oldest_created_ms is None else max(0, now_ms - oldest_created_ms)
    return OutboxStats(
        depth_messages=depth.messages,
        depth_readings=depth.readings,
        depth_bytes=depth.nbytes,
        in_flight_messages=in_flight_messages,
        oldest_age_ms=age_ms,
        next_seq=totals.next_seq,
        enqueued_messages=totals.enqueued_messages,
        enqueued_readings=totals.enqueued_readings,
        published_messages=totals.published_messages,
        published_readings=totals.published_readings,
        rejected_messages=totals.rejected_messages,
        rejected_readings=totals.rejected_readings,
        dropped_messages=totals.dropped_messages,
        dropped_readings=totals.dropped_readings,
    )


def drop_fields(
    dropped: Sequence[Entry], *, depth: Depth, cap: Cap, gateway: str
) -> dict[str, object]:
    """Return the key/values of the ``outbox_dropped`` warning for one enqueue."""
    return {
        "gateway": gateway,
        "dropped_messages": len(dropped),
        "dropped_readings": sum(e.readings for e in dropped),
        "first_dropped_seq": dropped[0].seq,
        "last_dropped_seq": dropped[-1].seq,
        "depth_messages": depth.messages,
        "depth_bytes": depth.nbytes,
        "max_messages": cap.max_messages,
        "max_bytes": cap.max_bytes,
    }
