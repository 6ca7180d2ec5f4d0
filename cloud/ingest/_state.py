"""The ingester's local state: dead letters, the dedupe window and the gap scanner's position.

One SQLite file, `{state_dir}/ingest.db`, WAL mode, `synchronous=FULL`: a flush's dead letters and
stored seqs are committed (and fsynced) in one transaction *before* its messages are acknowledged,
so a dead-lettered message is never acknowledged without its record.

Tables::

    deadletters  id, ts_ms, topic, gateway, seq, whole (0/1), payload (cut to a bound),
                 payload_bytes (the full size)
    rejects      deadletter_id, idx (reading index or NULL), reason, path, message
    seen         gateway, seq, n (insertion order: the oldest are forgotten first)
    gap_state    gateway, expected (the next seq the gap scanner has not accounted for)
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from cloud.ingest._core import Reject

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deadletters (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    gateway TEXT,
    seq INTEGER,
    whole INTEGER NOT NULL,
    payload BLOB NOT NULL,
    payload_bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejects (
    deadletter_id INTEGER NOT NULL REFERENCES deadletters(id),
    idx INTEGER,
    reason TEXT NOT NULL,
    path TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_reason ON rejects(reason);
CREATE TABLE IF NOT EXISTS seen (
    gateway TEXT NOT NULL,
    seq INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (gateway, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_n ON seen(n);
CREATE TABLE IF NOT EXISTS gap_state (
    gateway TEXT PRIMARY KEY,
    expected INTEGER NOT NULL
);
"""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """One dead-lettered MQTT message: all of it, or some of its readings.

    Attributes:
        ts_ms: When it was dead-lettered.
        topic: The topic it arrived on (quoted as received, even if invalid).
        gateway: The gateway, if known.
        seq: The telemetry seq, if known.
        whole: The whole message was rejected.
        rejects: Why, one entry per rejected reading (or one for the whole message).
        payload: The payload, cut to the configured bound.
        payload_bytes: The payload's full size.
    """

    ts_ms: int
    topic: str
    gateway: str | None
    seq: int | None
    whole: bool
    rejects: tuple[Reject, ...]
    payload: bytes
    payload_bytes: int


def encode_deadletter(letter: DeadLetter) -> bytes:
    """The JSON published on the dead-letter topic (and printed by `prognos ingest deadletters`).

    `payload` is the kept bytes as text when they are UTF-8, else `payload_base64`; `truncated`
    says whether bytes were cut.
    """
    document: dict[str, object] = {
        "schema": "prognos.deadletter.v1",
        "ts": letter.ts_ms,
        "topic": letter.topic,
        "gateway": letter.gateway,
        "seq": letter.seq,
        "whole": letter.whole,
        "rejects": [
            {"index": r.index, "reason": r.reason, "path": r.path, "message": r.message}
            for r in letter.rejects
        ],
        "payload_bytes": letter.payload_bytes,
        "truncated": len(letter.payload) < letter.payload_bytes,
    }
    try:
        document["payload"] = letter.payload.decode()
    except UnicodeDecodeError:
        document["payload_base64"] = base64.b64encode(letter.payload).decode("ascii")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class StateStore:
    """The SQLite state file. One thread (the writer) uses it; `open` creates it if missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        row = self._conn.execute("SELECT coalesce(max(n), 0) FROM seen").fetchone()
        self._n = int(row[0])

    def close(self) -> None:
        """Close the file."""
        self._conn.close()

    def recent_seen(self, limit: int) -> list[tuple[str, int]]:
        """The `limit` most recently stored (gateway, seq), oldest first."""
        rows = self._conn.execute(
            "SELECT gateway, seq FROM seen ORDER BY n DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(str(g), int(s)) for g, s in reversed(rows)]

    def commit_flush(
        self,
        *,
        letters: Sequence[DeadLetter],
        seen: Iterable[tuple[str, int]],
        forget: Iterable[tuple[str, int]],
    ) -> None:
        """Record one flush's dead letters and stored seqs in one durable transaction."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for letter in letters:
                cur = conn.execute(
                    "INSERT INTO deadletters (ts_ms, topic, gateway, seq, whole, payload,"
                    " payload_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        letter.ts_ms,
                        letter.topic,
                        letter.gateway,
                        letter.seq,
                        int(letter.whole),
                        letter.payload,
                        letter.payload_bytes,
                    ),
                )
                conn.executemany(
                    "INSERT INTO rejects (deadletter_id, idx, reason, path, message)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(cur.lastrowid, r.index, r.reason, r.path, r.message) for r in letter.rejects],
                )
            rows = []
            for gateway, seq in seen:
                self._n += 1
                rows.append((gateway, seq, self._n))
            conn.executemany("INSERT OR REPLACE INTO seen (gateway, seq, n) VALUES (?, ?, ?)", rows)
            conn.executemany("DELETE FROM seen WHERE gateway = ? AND seq = ?", list(forget))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def gap_positions(self) -> dict[str, int]:
        """The gap scanner's next expected seq per gateway."""
        rows = self._conn.execute("SELECT gateway, expected FROM gap_state").fetchall()
        return {str(g): int(e) for g, e in rows}

    def set_gap_position(self, gateway: str, expected: int) -> None:
        """Remember where the gap scanner stands for one gateway."""
        self._conn.execute(
            "INSERT OR REPLACE INTO gap_state (gateway, expected) VALUES (?, ?)",
            (gateway, expected),
        )

    def deadletter_counts(self) -> dict[str, int]:
        """Rejects per reason, over the whole file."""
        rows = self._conn.execute(
            "SELECT reason, count(*) FROM rejects GROUP BY reason ORDER BY reason"
        ).fetchall()
        return {str(r): int(n) for r, n in rows}

    def deadletters(self, *, limit: int, reason: str | None = None) -> list[DeadLetter]:
        """The most recent dead letters (newest first), optionally only those with a reason."""
        if reason is None:
            ids = self._conn.execute(
                "SELECT id FROM deadletters ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        else:
            ids = self._conn.execute(
                "SELECT DISTINCT deadletter_id FROM rejects WHERE reason = ?"
                " ORDER BY deadletter_id DESC LIMIT ?",
                (reason, limit),
            ).fetchall()
        out: list[DeadLetter] = []
        for (ident,) in ids:
            row = self._conn.execute(
                "SELECT ts_ms, topic, gateway, seq, whole, payload, payload_bytes"
                " FROM deadletters WHERE id = ?",
                (ident,),
            ).fetchone()
            rejects = self._conn.execute(
                "SELECT reason, path, message, idx FROM rejects WHERE deadletter_id = ?", (ident,)
            ).fetchall()
            out.append(
                DeadLetter(
                    ts_ms=row[0],
                    topic=row[1],
                    gateway=row[2],
                    seq=row[3],
                    whole=bool(row[4]),
                    rejects=tuple(Reject(r[0], r[1], r[2], r[3]) for r in rejects),
                    payload=bytes(row[5]),
                    payload_bytes=row[6],
                )
            )
        return out
