"""`SqliteOutbox`: the outbox in one SQLite file in WAL mode, checked on open, never repaired.

File format (``PRAGMA user_version`` = `SCHEMA_VERSION`)::

    meta      one row (id = 1): gateway, next_seq and the totals of `OutboxStats`
    messages  seq INTEGER PRIMARY KEY (the rowid: commit order, never reused; it is also the
              message id), topic, content_type, readings, created_ms, payload_bytes,
              crc32 (of payload), payload

``begin`` and the size cap walk ``messages`` in rowid order with ``LIMIT``: the primary key is
the index, nothing loads the whole table. The connection runs in ``locking_mode=EXCLUSIVE``: it
holds the file for its lifetime, so a second agent on the same file fails at once instead of
interleaving ``seq``; and SQLite keeps the WAL index in memory (no ``-shm`` file).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from typing import Final

import structlog

from edge_agent._exceptions import BufferCorrupt
from edge_agent._outbox._base import BaseOutbox
from edge_agent._outbox._ledger import TOTALS_FIELDS, Depth, Encoded, Entry, Totals, check_seq
from edge_agent._outbox._types import OutboxMessage, Sync

_log = structlog.get_logger("edge_agent.outbox")

SCHEMA_VERSION: Final = 1
"""``PRAGMA user_version`` of the files this code writes and reads."""

# Long enough to ride out a previous agent process that is still exiting, short enough that a
# second agent on the same file fails at startup instead of hanging.
_LOCK_TIMEOUT_S: Final = 2.0
# After a checkpoint SQLite truncates the WAL file to this size, so a burst does not leave a
# large -wal file behind on a small gateway's storage.
_WAL_SIZE_LIMIT_BYTES: Final = 4 * 1024 * 1024
# First page size when walking the table for the size cap; it doubles up to the second.
_WALK_ROWS: Final = (64, 4096)
_CORRUPT_CODES: Final = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_LOCKED_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

_TOTALS_COLUMNS: Final = ",\n    ".join(f"{name} INTEGER NOT NULL" for name in TOTALS_FIELDS)
_SCHEMA: Final = f"""
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    gateway TEXT NOT NULL,
    {_TOTALS_COLUMNS}
);
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    content_type TEXT NOT NULL,
    readings INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    payload_bytes INTEGER NOT NULL,
    crc32 INTEGER NOT NULL,
    payload BLOB NOT NULL
);
"""
_INSERT_META: Final = (
    f"INSERT INTO meta (id, gateway, {', '.join(TOTALS_FIELDS)}) "  # noqa: S608 - fixed names
    f"VALUES (1, ?{', ?' * len(TOTALS_FIELDS)})"
)
_SELECT_META: Final = f"SELECT gateway, {', '.join(TOTALS_FIELDS)} FROM meta WHERE id = 1"  # noqa: S608
_UPDATE_META: Final = (
    f"UPDATE meta SET {', '.join(f'{name} = ?' for name in TOTALS_FIELDS)} WHERE id = 1"  # noqa: S608
)
_INSERT_MESSAGE: Final = (
    "INSERT INTO messages (seq, topic, content_type, readings, created_ms, payload_bytes, crc32,"
    " payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_MESSAGES: Final = (
    "SELECT seq, topic, content_type, readings, created_ms, crc32, payload"
    " FROM messages ORDER BY seq LIMIT ?"
)
_SELECT_ENTRIES: Final = (
    "SELECT seq, seq, readings, payload_bytes FROM messages WHERE seq > ? ORDER BY seq LIMIT ?"
)


def _corrupt(where: str, reason: str) -> BufferCorrupt:
    return BufferCorrupt(
        f"outbox file {where!r} is corrupt: {reason}. Nothing in it was changed. Stop the agent "
        f"and move the file aside together with {where + '-wal'!r} if present (it holds unsent "
        "data); the agent then starts with an empty outbox.",
        path=where,
    )


def _error_code(exc: sqlite3.Error) -> int:
    # Extended codes (SQLITE_IOERR_SHORT_READ, ...) carry the primary code in the low byte.
    return int(getattr(exc, "sqlite_errorcode", -1)) & 0xFF


def _open_error(where: str, exc: sqlite3.Error) -> BufferCorrupt:
    """Translate an error while opening into the one exception the agent stops on."""
    code = _error_code(exc)
    if code in _LOCKED_CODES:
        return BufferCorrupt(
            f"outbox file {where!r} is locked by another process: is a second agent running "
            "with the same outbox? Nothing in it was changed.",
            path=where,
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return BufferCorrupt(
            f"outbox file {where!r} cannot be opened ({exc}): does its directory exist and "
            "may the agent's user write there?",
            path=where,
        )
    return _corrupt(where, str(exc))


class _SqliteStore:
    """The rows of an open outbox file; every method runs under the outbox's lock."""

    def __init__(self, conn: sqlite3.Connection, *, where: str, sync: Sync) -> None:
        self._conn = conn
        self.where = where
        self._sync = sync
        self._unsynced = False

    @contextlib.contextmanager
    def _translating(self) -> Iterator[None]:
        """Turn SQLite's "corrupt" and "not a database" into `BufferCorrupt`; pass others."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if _error_code(exc) in _CORRUPT_CODES:
                raise _corrupt(self.where, str(exc)) from exc
            raise

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._translating():
            # IMMEDIATE: take the write lock at BEGIN, so no statement inside can hit SQLITE_BUSY.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself after some errors (disk full, I/O error).
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def insert(self, encoded: Encoded) -> int:
        # The seq is the row id: no AUTOINCREMENT bookkeeping page to write at every commit,
        # and SQLite itself refuses a seq stored twice.
        payload = encoded.payload
        self._conn.execute(
            _INSERT_MESSAGE,
            (
                encoded.seq,
                encoded.topic,
                encoded.content_type,
                encoded.readings,
                encoded.created_ms,
                len(payload),
                zlib.crc32(payload),
                payload,
            ),
        )
        self._unsynced = True
        return encoded.seq

    def entries(self) -> Iterator[Entry]:
        # Walk in pages with fetchall(): no cursor stays open while the caller deletes rows.
        last_id, size = -1, _WALK_ROWS[0]
        while True:
            with self._translating():
                rows = self._conn.execute(_SELECT_ENTRIES, (last_id, size)).fetchall()
            for row in rows:
                yield Entry(*row)
            if len(rows) < size:
                return
            last_id, size = rows[-1][0], min(size * 2, _WALK_ROWS[1])

    def delete(self, ids: Sequence[int]) -> None:
        self._conn.executemany("DELETE FROM messages WHERE seq = ?", ((i,) for i in ids))

    def save_totals(self, totals: Totals) -> None:
        self._conn.execute(_UPDATE_META, totals.as_row())

    def oldest(self, limit: int, *, skip: set[int]) -> list[OutboxMessage]:
        with self._translating():
            rows = self._conn.execute(_SELECT_MESSAGES, (limit + len(skip),)).fetchall()
        found: list[OutboxMessage] = []
        for seq, topic, content_type, readings, created_ms, crc32, payload in rows:
            if seq in skip:
                continue
            if zlib.crc32(payload) != crc32:
                raise _corrupt(self.where, f"the message of seq {seq} fails its CRC-32")
            found.append(
                OutboxMessage(seq, seq, topic, bytes(payload), content_type, readings, created_ms)
            )
            if len(found) == limit:
                break
        return found

    def oldest_created_ms(self) -> int | None:
        with self._translating():
            row = self._conn.execute(
                "SELECT created_ms FROM messages ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else int(row[0])

    def before_handout(self) -> None:
        # With synchronous=NORMAL a commit is not fsynced; a power loss could then take back a
        # batch the broker already has, and its seq would be reused for different readings. A
        # checkpoint fsyncs the WAL (then the database file), so nothing handed out can be lost.
        if self._sync == "normal" and self._unsynced:
            with self._translating():
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self._unsynced = False

    def close(self) -> None:
        self._conn.close()


def _quick_check(conn: sqlite3.Connection, where: str) -> None:
    rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    if rows != [("ok",)]:
        raise _corrupt(where, "quick_check found: " + "; ".join(str(r[0]) for r in rows))


def _create(conn: sqlite3.Connection, where: str, gateway: str, first_seq: int) -> None:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master").fetchall()]
    if tables:
        raise _corrupt(where, f"it is an SQLite file but not an outbox (it holds {tables!r})")
    _set_wal(conn, where)
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(_INSERT_META, (gateway, *Totals(next_seq=first_seq).as_row()))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _set_wal(conn: sqlite3.Connection, where: str) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":  # pragma: no cover - only on file systems without WAL support
        raise BufferCorrupt(
            f"outbox file {where!r} cannot use WAL mode (SQLite answered {mode!r})", path=where
        )


def _load(conn: sqlite3.Connection, where: str, gateway: str) -> tuple[Depth, Totals]:
    row = conn.execute(_SELECT_META).fetchone()
    if row is None:
        raise _corrupt(where, "its meta row is missing")
    stored_gateway, *counters = row
    if stored_gateway != gateway:
        raise BufferCorrupt(
            f"outbox file {where!r} belongs to gateway {stored_gateway!r}, but this agent is "
            f"gateway {gateway!r}; seq is counted per gateway. Fix the gateway in the config, or "
            "move the file aside with its -wal file (it holds unsent data).",
            path=where,
        )
    totals = Totals(**dict(zip(TOTALS_FIELDS, counters, strict=True)))
    messages, readings, nbytes = conn.execute(
        "SELECT count(*), coalesce(sum(readings), 0), coalesce(sum(payload_bytes), 0) FROM messages"
    ).fetchone()
    depth = Depth(messages, readings, nbytes)
    last = conn.execute("SELECT seq FROM messages ORDER BY seq DESC LIMIT 1").fetchone()
    if last is not None and last[0] >= totals.next_seq:
        raise _corrupt(where, f"next_seq {totals.next_seq} is not above the last seq {last[0]}")
    settled = totals.published_messages + totals.rejected_messages + totals.dropped_messages
    if totals.enqueued_messages != settled + depth.messages:
        raise _corrupt(
            where,
            f"its totals ({totals.enqueued_messages} enqueued, {settled} published, rejected or "
            f"dropped) disagree with the {depth.messages} messages it holds",
        )
    return depth, totals


def _prepare(
    conn: sqlite3.Connection, where: str, *, gateway: str, first_seq: int, sync: Sync
) -> tuple[Depth, Totals]:
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    # Reads only, before anything could write: a damaged file stays byte-identical.
    _quick_check(conn, where)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        _create(conn, where, gateway, first_seq)
    elif version == SCHEMA_VERSION:
        _set_wal(conn, where)
    else:
        raise _corrupt(
            where, f"schema version {version}; this agent reads version {SCHEMA_VERSION}"
        )
    conn.execute(f"PRAGMA synchronous = {sync.upper()}")
    conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT_BYTES}")
    # Debian builds SQLite with secure_delete on: every published batch would be written again as
    # zeros when deleted, which measured at five times the cost of reading it (bench/mqtt_publish).
    # Telemetry is not a secret on the gateway's own disk; FAST zeroes only what costs no I/O.
    conn.execute("PRAGMA secure_delete = FAST")
    depth, totals = _load(conn, where, gateway)
    # An empty write transaction takes the exclusive lock now rather than at the first batch.
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("COMMIT")
    return depth, totals


def open_store(
    *, where: str, gateway: str, first_seq: int, sync: Sync
) -> tuple[_SqliteStore, Depth, Totals]:
    """Open (or create) an outbox file, check it, and return its store, depth and totals.

    Raises:
        BufferCorrupt: The file is not an outbox, is corrupt, belongs to another gateway, was
            written by a newer agent, is locked by another process, or cannot be opened. The
            file is left as it was.
    """
    try:
        conn = sqlite3.connect(
            where, timeout=_LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise _open_error(where, exc) from exc
    try:
        depth, totals = _prepare(conn, where, gateway=gateway, first_seq=first_seq, sync=sync)
    except BufferCorrupt:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise _open_error(where, exc) from exc
    except BaseException:
        conn.close()
        raise
    return _SqliteStore(conn, where=where, sync=sync), depth, totals


class SqliteOutbox(BaseOutbox):
    """A durable outbox: one SQLite file in WAL mode, checked when opened, never repaired.

    A batch is on disk before `enqueue` returns (``sync="full"``) or before `begin` hands it
    out (``sync="normal"``); see docs/outbox.md, "fsync policy", for what each survives and
    costs. The ``seq`` counter and the totals live in the file, so they survive restarts.

    Args:
        path: The outbox file; created if missing (its directory must exist).
        gateway: The gateway id written into every batch; a file written for another gateway
            is refused.
        max_bytes: Size cap on the payload bytes held (the file is larger: SQLite pages and the
            WAL add to it).
        max_messages: Size cap on the messages held.
        sync: ``"full"`` (fsync at every commit: survives power loss) or ``"normal"`` (fsync
            before a batch is handed out: survives a process crash, and a power loss loses at
            most batches never handed out).
        compress: Gzip the payloads (content type ``application/json+gzip``).
        first_seq: The ``seq`` of the first batch, used only when the file is created.

    Raises:
        ValueError: A parameter is out of range.
        BufferCorrupt: The file cannot be used (see `open_store`); it was not changed.
    """

    __slots__ = ("_path", "_sync")

    def __init__(
        self,
        *,
        path: str | os.PathLike[str],
        gateway: str,
        max_bytes: int,
        max_messages: int,
        sync: Sync = "full",
        compress: bool = False,
        first_seq: int = 0,
    ) -> None:
        super().__init__(
            gateway=gateway, max_bytes=max_bytes, max_messages=max_messages, compress=compress
        )
        if sync not in ("full", "normal"):
            raise ValueError(f"sync must be 'full' or 'normal'. Got {sync!r} instead.")
        self._path = os.fspath(path)
        self._sync: Sync = sync
        store, depth, totals = open_store(
            where=self._path,
            gateway=self._gateway,
            first_seq=check_seq(first_seq, what="first_seq"),
            sync=sync,
        )
        self._attach(store, depth=depth, totals=totals)
        _log.info(
            "outbox_opened",
            path=self._path,
            gateway=self._gateway,
            sync=sync,
            depth_messages=depth.messages,
            next_seq=totals.next_seq,
        )

    @property
    def path(self) -> str:
        """The outbox file."""
        return self._path

    def __repr__(self) -> str:
        return f"SqliteOutbox(path={self._path!r}, gateway={self._gateway!r}, sync={self._sync!r})"
