"""The outbox's flow, shared by both implementations: lock, enqueue, begin, end, stats, close.

A subclass brings a `Store` (where the rows live); every decision is made here and in
`_ledger`, so memory and SQLite behave the same and one test suite covers both.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol, Self

import structlog

from edge_agent._outbox._ledger import (
    Cap,
    Depth,
    Encoded,
    Entry,
    OpenTransactions,
    Totals,
    check_gateway,
    check_positive,
    choose_drops,
    drop_fields,
    encode_batch,
    make_stats,
)
from edge_agent._outbox._types import EnqueueResult, OutboxMessage, OutboxStats, Transaction
from prognos_contract import Reading

_log = structlog.get_logger("edge_agent.outbox")


class Store(Protocol):
    """Where an outbox keeps its rows. Called with the outbox's lock held, never concurrently.

    Every change happens inside ``write()``: all of it is stored, or none of it.
    """

    def write(self) -> AbstractContextManager[None]:
        """Return a context in which changes are atomic and durable on a clean exit."""
        ...

    def insert(self, encoded: Encoded) -> int:
        """Store a message and return its row id, greater than every id before it."""
        ...

    def entries(self) -> Iterator[Entry]:
        """Yield the stored messages in commit order; the caller may stop early."""
        ...

    def delete(self, ids: Sequence[int]) -> None:
        """Delete messages by row id."""
        ...

    def save_totals(self, totals: Totals) -> None:
        """Store the counters."""
        ...

    def oldest(self, limit: int, *, skip: set[int]) -> list[OutboxMessage]:
        """Return up to ``limit`` messages in commit order, leaving out the ids in ``skip``."""
        ...

    def oldest_created_ms(self) -> int | None:
        """Return ``created_ms`` of the first message in commit order, None if there is none."""
        ...

    def before_handout(self) -> None:
        """Make every committed message durable before any is published (Rule 1)."""
        ...

    def close(self) -> None:
        """Release the storage."""
        ...


class BaseOutbox:
    """The `Outbox` flow over a `Store`; see the package docstring for the rules."""

    __slots__ = ("_cap", "_compress", "_depth", "_gateway", "_lock", "_open", "_store", "_totals")

    def __init__(
        self,
        *,
        gateway: str,
        max_bytes: int,
        max_messages: int,
        compress: bool,
    ) -> None:
        self._gateway = check_gateway(gateway)
        self._cap = Cap(max_messages=max_messages, max_bytes=max_bytes)
        self._compress = bool(compress)
        # One lock for everything: the poll loop enqueues while paho's network thread ends
        # transactions; an uncontended lock costs far less than one SQLite statement.
        self._lock = threading.Lock()
        self._open = OpenTransactions()
        self._store: Store | None = None
        self._depth = Depth()
        self._totals = Totals(next_seq=0)

    def _attach(self, store: Store, *, depth: Depth, totals: Totals) -> None:
        """Start serving from ``store``, which holds ``depth`` and ``totals`` (constructors)."""
        self._store = store
        self._depth = depth
        self._totals = totals

    def _live(self) -> Store:
        if self._store is None:
            raise ValueError(f"the outbox of gateway {self._gateway!r} is closed")
        return self._store

    def enqueue(self, readings: Sequence[Reading], *, topic: str, now_ms: int) -> EnqueueResult:
        """Commit one batch with the next ``seq``, then apply the size cap, atomically.

        The batch, the new ``seq`` counter, the drops the cap makes and the totals are one
        transaction: after a crash either all of it happened or none of it.

        Args:
            readings: One to ``MAX_READINGS_PER_BATCH`` readings.
            topic: The telemetry topic to publish the batch to.
            now_ms: The caller's clock, epoch milliseconds (``created_ms`` of the message).

        Returns:
            The batch's ``seq`` and what the size cap dropped to make room for it. A drop also
            logs one ``outbox_dropped`` warning.

        Raises:
            ValueError: ``readings`` is empty, the topic or ``now_ms`` is invalid, or the outbox
                is closed.
            ContractError: The batch breaks the contract (``too_large``: split it); nothing was
                committed and no ``seq`` was used.
            BufferCorrupt: The outbox file turned out to be corrupt.
        """
        with self._lock:
            store = self._live()
            encoded = encode_batch(
                readings,
                gateway=self._gateway,
                seq=self._totals.next_seq,
                topic=topic,
                now_ms=now_ms,
                compress=self._compress,
            )
            with store.write():
                entry = encoded.entry(store.insert(encoded))
                depth = self._depth.plus((entry,))
                dropped = choose_drops(
                    store.entries(),
                    depth=depth,
                    cap=self._cap,
                    pinned=self._open.pinned,
                    newest_id=entry.id,
                )
                if dropped:
                    store.delete([e.id for e in dropped])
                totals = self._totals.after_enqueue(entry, dropped)
                store.save_totals(totals)
            self._depth = depth.minus(dropped)
            self._totals = totals
        if dropped:
            _log.warning(
                "outbox_dropped",
                **drop_fields(
                    dropped, depth=depth.minus(dropped), cap=self._cap, gateway=self._gateway
                ),
            )
        return EnqueueResult(entry.seq, len(dropped), sum(e.readings for e in dropped))

    def begin(self, max_batch: int) -> Transaction:
        """Hand out up to ``max_batch`` of the oldest messages no open transaction holds.

        Messages come in commit order. Any number of transactions may be open at once; for
        strictly ordered delivery keep one open at a time (a message kept by an earlier
        transaction is handed out again after those a later one already holds).

        Args:
            max_batch: The most messages to hand out, at least 1.

        Returns:
            An open transaction; its batch is empty when there is nothing to send.

        Raises:
            ValueError: ``max_batch`` is not a positive integer, or the outbox is closed.
            BufferCorrupt: A stored message fails its checksum.
        """
        check_positive(max_batch, what="max_batch")
        with self._lock:
            store = self._live()
            store.before_handout()
            return self._open.add(store.oldest(max_batch, skip=self._open.pinned))

    def end(self, tx: Transaction) -> None:
        """Delete the accepted and rejected messages of ``tx``; keep the others.

        Kept messages are handed out again by the next `begin`, before newer ones, in the same
        order. After a failed write (an `OSError`-like ``sqlite3`` error) nothing was deleted and
        the transaction is closed all the same: its messages will be sent again.

        Args:
            tx: A transaction from `begin` of this outbox, not ended yet.

        Raises:
            ValueError: ``tx`` is not open here, an index is not one of the batch's, an index is
                in both lists (nothing changed, ``tx`` stays open), or the outbox is closed.
            BufferCorrupt: The outbox file turned out to be corrupt.
        """
        with self._lock:
            store = self._live()
            settlement = self._open.settle(tx)
            try:
                ids = settlement.ids
                if ids:
                    totals = self._totals.after_end(settlement)
                    with store.write():
                        store.delete(ids)
                        store.save_totals(totals)
                    self._depth = self._depth.minus(settlement.entries())
                    self._totals = totals
            finally:
                self._open.remove(tx)

    def stats(self, now_ms: int) -> OutboxStats:
        """Return depth, in-flight count, the age of the oldest message and the totals.

        Args:
            now_ms: The caller's clock, epoch milliseconds.

        Raises:
            ValueError: The outbox is closed.
        """
        with self._lock:
            store = self._live()
            return make_stats(
                depth=self._depth,
                totals=self._totals,
                in_flight_messages=len(self._open.pinned),
                oldest_created_ms=store.oldest_created_ms() if self._depth.messages else None,
                now_ms=now_ms,
            )

    def close(self) -> None:
        """Release the outbox; calling it again does nothing.

        Open transactions are abandoned: their messages stay (a durable outbox hands them out
        again after reopening). Do not call it while another call is running.
        """
        with self._lock:
            store, self._store = self._store, None
            self._open.clear()
            if store is not None:
                store.close()

    def __len__(self) -> int:
        with self._lock:
            self._live()
            return self._depth.messages

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
