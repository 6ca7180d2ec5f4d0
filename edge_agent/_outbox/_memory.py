"""`MemoryOutbox`: the outbox rules without a file, for tests and for gateways without storage."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

from edge_agent._outbox._base import BaseOutbox
from edge_agent._outbox._ledger import Depth, Encoded, Entry, Totals, check_seq
from edge_agent._outbox._types import OutboxMessage


class _MemoryStore:
    """Messages in a dict keyed by seq, in commit order. Nothing here can fail half-way."""

    def __init__(self) -> None:
        self._messages: dict[int, OutboxMessage] = {}

    def write(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def insert(self, encoded: Encoded) -> int:
        # The seq is the message id, as in SqliteOutbox.
        self._messages[encoded.seq] = encoded.message(encoded.seq)
        return encoded.seq

    def entries(self) -> Iterator[Entry]:
        # A snapshot of the keys: the caller deletes only after it has stopped iterating, but a
        # generator over a live dict would break if that ever changed.
        for message in list(self._messages.values()):
            yield Entry(message.id, message.seq, message.readings, len(message.payload))

    def delete(self, ids: Sequence[int]) -> None:
        for message_id in ids:
            del self._messages[message_id]

    def save_totals(self, totals: Totals) -> None:
        pass

    def oldest(self, limit: int, *, skip: set[int]) -> list[OutboxMessage]:
        found: list[OutboxMessage] = []
        for message in self._messages.values():
            if len(found) == limit:
                break
            if message.id not in skip:
                found.append(message)
        return found

    def oldest_created_ms(self) -> int | None:
        return next((m.created_ms for m in self._messages.values()), None)

    def before_handout(self) -> None:
        pass

    def close(self) -> None:
        self._messages.clear()


class MemoryOutbox(BaseOutbox):
    """An outbox in memory: every rule of `SqliteOutbox`, none of its durability.

    What it holds, its ``seq`` counter and its totals are lost when the process ends, so the
    next process starts again at ``first_seq``. Use it in tests, or where losing the backlog on a
    restart is acceptable and said so.

    Args:
        gateway: The gateway id written into every batch (contract v1 ``ID_PATTERN``).
        max_bytes: Size cap on the payload bytes held.
        max_messages: Size cap on the messages held.
        compress: Gzip the payloads (content type ``application/json+gzip``).
        first_seq: The ``seq`` of the first batch.

    Raises:
        ValueError: A parameter is out of range.
    """

    __slots__ = ()

    def __init__(
        self,
        *,
        gateway: str,
        max_bytes: int,
        max_messages: int,
        compress: bool = False,
        first_seq: int = 0,
    ) -> None:
        super().__init__(
            gateway=gateway, max_bytes=max_bytes, max_messages=max_messages, compress=compress
        )
        totals = Totals(next_seq=check_seq(first_seq, what="first_seq"))
        self._attach(_MemoryStore(), depth=Depth(), totals=totals)

    def __repr__(self) -> str:
        return f"MemoryOutbox(gateway={self._gateway!r}, depth_messages={self._depth.messages})"
