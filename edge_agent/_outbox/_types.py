"""The outbox's vocabulary: messages, transactions, results, statistics and the `Outbox` role."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from prognos_contract import Reading

Sync = Literal["full", "normal"]
"""When SQLite fsyncs: ``"full"`` at every commit, ``"normal"`` before a hand-out."""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One committed telemetry batch, ready to publish as it is.

    Attributes:
        id: Outbox row id, strictly increasing in commit order, never reused.
        seq: The batch's contract v1 ``seq``: one more than the batch committed before it, for
            this gateway, across restarts.
        topic: The MQTT topic to publish to.
        payload: The encoded ``TelemetryBatch`` (already contains ``seq``), byte-identical on
            every resend.
        content_type: ``application/json`` or ``application/json+gzip``.
        readings: How many readings the batch holds (for exact drop counts).
        created_ms: The caller's clock when the batch was committed, epoch milliseconds.
    """

    id: int
    seq: int
    topic: str
    payload: bytes
    content_type: str
    readings: int
    created_ms: int


@dataclass(slots=True)
class Transaction:
    """Messages handed out by `Outbox.begin`, and what became of them.

    Fill ``accept`` and ``reject`` with indices into ``batch``, then pass the transaction to
    `Outbox.end`. A message in neither list is kept and handed out again, in the same order.

    Attributes:
        batch: The messages, oldest first.
        accept: Indices the broker acknowledged (PUBACK): deleted and counted as published.
        reject: Indices the broker refused (NACK): deleted and counted as rejected.
    """

    batch: Sequence[OutboxMessage]
    accept: list[int] = field(default_factory=list)
    reject: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """What `Outbox.enqueue` did.

    Attributes:
        seq: The ``seq`` given to the new batch.
        dropped_messages: Older messages the size cap dropped to make room (0 almost always).
        dropped_readings: The readings those messages held.
    """

    seq: int
    dropped_messages: int
    dropped_readings: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxStats:
    """A snapshot of an outbox, for the health topic and the Prometheus page.

    Depth counts every message not yet accepted, rejected or dropped, in flight or not. Totals
    survive restarts in `SqliteOutbox` and always satisfy ``enqueued_readings ==
    published_readings + rejected_readings + dropped_readings + depth_readings`` (the same for
    messages).

    Attributes:
        depth_messages: Messages held.
        depth_readings: Readings in those messages.
        depth_bytes: Payload bytes of those messages (the size cap counts these).
        in_flight_messages: Messages in open transactions.
        oldest_age_ms: ``now_ms`` minus the ``created_ms`` of the oldest message held; 0 when
            empty (and never negative, should the clock step back).
        next_seq: The ``seq`` the next batch will get.
        enqueued_messages: Batches ever committed.
        enqueued_readings: Readings in them.
        published_messages: Batches accepted (PUBACK) and deleted.
        published_readings: Readings in them.
        rejected_messages: Batches the broker refused, deleted.
        rejected_readings: Readings in them.
        dropped_messages: Batches the size cap dropped.
        dropped_readings: Readings in them.
    """

    depth_messages: int
    depth_readings: int
    depth_bytes: int
    in_flight_messages: int
    oldest_age_ms: int
    next_seq: int
    enqueued_messages: int
    enqueued_readings: int
    published_messages: int
    published_readings: int
    rejected_messages: int
    rejected_readings: int
    dropped_messages: int
    dropped_readings: int


class Outbox(Protocol):
    """The durable store-and-forward queue between the poller and the MQTT publisher.

    Concurrency: every method may be called from any thread; calls are serialised by a lock.
    `close` must not race with other calls (stop the publisher first). Every method but `close`
    raises `ValueError` after `close`.
    """

    def enqueue(self, readings: Sequence[Reading], *, topic: str, now_ms: int) -> EnqueueResult:
        """Commit one batch with the next ``seq``, then apply the size cap.

        Args:
            readings: One to ``MAX_READINGS_PER_BATCH`` readings.
            topic: The telemetry topic to publish the batch to.
            now_ms: The caller's clock, epoch milliseconds (``created_ms`` of the message).

        Returns:
            The batch's ``seq`` and what the size cap dropped to make room.

        Raises:
            ValueError: ``readings`` is empty, or the topic or ``now_ms`` is invalid.
            ContractError: The batch breaks the contract (``too_large``: split it); nothing
                was committed and no ``seq`` was used.
        """
        ...

    def begin(self, max_batch: int) -> Transaction:
        """Hand out up to ``max_batch`` of the oldest messages that no open transaction holds.

        Called by the publisher; any number of transactions may be open at once.
        """
        ...

    def end(self, tx: Transaction) -> None:
        """Delete the accepted and rejected messages of an open transaction, keep the others."""
        ...

    def stats(self, now_ms: int) -> OutboxStats:
        """Return depth, the age of the oldest message and the totals."""
        ...

    def close(self) -> None:
        """Release the outbox; open transactions are abandoned (their messages are kept)."""
        ...

    def __len__(self) -> int:
        """Return the number of messages held, in flight or not."""
        ...
