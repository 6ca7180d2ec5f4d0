"""The durable outbox: telemetry batches committed before they are published, deleted on PUBACK.

Theory of operation
-------------------
The poll loop hands each batch of readings to `Outbox.enqueue`, which gives it the gateway's
next ``seq``, encodes it as a contract v1 ``TelemetryBatch`` and commits the payload together
with the new ``seq`` counter. The publisher then works in transactions, as Telegraf's buffer
does (STYLE.md 7): `Outbox.begin` hands out the oldest messages no other transaction holds, the
publisher sends them and fills ``tx.accept`` (PUBACK) and ``tx.reject`` (broker NACK) with
indices, and `Outbox.end` deletes those two kinds and keeps the rest, which the next `begin`
hands out again first. After a crash or a restart the file still holds every message not
accepted or rejected, oldest first, so a reconnect replays them in order.

`SqliteOutbox` keeps the messages in one SQLite file in WAL mode; `MemoryOutbox` keeps them in a
dict and follows the same rules (one test suite runs against both). All decisions live in the
pure `_ledger` module; `_base` holds the shared flow and the lock.

Rules:

1. A message is committed before `begin` can hand it out, with its ``seq`` in the same
   transaction. With ``sync="full"`` the commit is fsynced before `enqueue` returns; with
   ``sync="normal"`` `begin` fsyncs (checkpoints) before handing anything out, so nothing the
   broker may have seen can be lost, and no ``seq`` can be used for two different batches.
2. ``seq`` rises by one per committed batch, in commit order, and never goes back: an
   ``enqueue`` that fails (bad readings, payload too large, disk full) uses no ``seq``.
   Dropped messages keep their ``seq``: the ingester sees the gap, and the totals explain it.
3. A message leaves the outbox only by `end` (accepted: published; rejected: counted) or by the
   size cap (dropped: counted, logged, returned by `enqueue`). Nothing else deletes, and a
   message in neither list of a transaction is kept, in its place in the order.
4. The size cap (``max_messages`` and ``max_bytes`` of payload) is applied in the same
   transaction as each `enqueue`: the oldest messages are dropped until both limits hold.
5. A message in an open transaction is never dropped and never handed out twice at a time, nor
   is the message just committed dropped. If those alone exceed the cap, the outbox stays over
   it (by at most the open transactions' batches) until they end; the next `enqueue` trims.
6. Every enqueued reading ends up exactly one of: published, rejected, dropped, or still held.
   The totals say so at all times and, in `SqliteOutbox`, across restarts.
7. A file that is not a healthy outbox of this gateway raises `BufferCorrupt` naming the path
   and the reason, and is left byte-identical: never repaired, truncated or deleted. Opening
   runs ``PRAGMA quick_check``; `begin` checks each payload's CRC-32.
8. Every call may come from any thread; one lock serialises them. Time is always a parameter
   (``now_ms``); nothing here reads a clock.
"""

from edge_agent._outbox._memory import MemoryOutbox
from edge_agent._outbox._sqlite import SCHEMA_VERSION, SqliteOutbox
from edge_agent._outbox._types import (
    EnqueueResult,
    Outbox,
    OutboxMessage,
    OutboxStats,
    Sync,
    Transaction,
)

__all__ = [
    "SCHEMA_VERSION",
    "EnqueueResult",
    "MemoryOutbox",
    "Outbox",
    "OutboxMessage",
    "OutboxStats",
    "SqliteOutbox",
    "Sync",
    "Transaction",
]
