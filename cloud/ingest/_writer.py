"""Writing a batch until InfluxDB accepts it: retry what may pass later, isolate what never will.

Rules:

1. One `/write` per flush, precision ns (see `_core`, rule 5). Connection errors, timeouts,
   5xx/429, auth errors and a missing database are *transient* here: the write is retried with
   capped exponential back-off and jitter, forever, until it passes or the ingester gives up
   at shutdown (`Abandoned`); nothing is acknowledged meanwhile. The first failure logs
   `influx_down` once, the first success after it `influx_up` once; `influx_up` is a gauge.
2. A partial write (or any other 400) is *permanent* for some lines: the batch is bisected, each
   half written again (harmless: InfluxDB overwrites the same series and time), until every line
   the server refuses is known; those come back as dropped with the server's reason. A field
   type conflict is reported as `field_type_conflict` naming the field, the stored and the sent
   type.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Sequence

import structlog

from cloud.ingest._metrics import Metrics
from cloud.store import (
    DatabaseNotFound,
    InfluxAuthError,
    InfluxClient,
    InfluxError,
    InfluxRequestError,
)

_log = structlog.get_logger("cloud.ingest")

_CONFLICT = re.compile(
    r'field type conflict: input field "(?P<field>[^"]*)" on measurement "(?P<m>[^"]*)" is type '
    r"(?P<sent>\w+), already exists as type (?P<stored>\w+)"
)


def _body(lines: Sequence[str]) -> bytes:
    """A `/write` body: one line per point, each ended by a newline."""
    lines = list(lines)
    lines.append("")
    return "\n".join(lines).encode()


class Abandoned(Exception):  # noqa: N818 - names what happened, like StopIteration
    """The ingester is stopping and gave up a write; nothing of the batch is acknowledged."""


def describe_refusal(reason: str) -> tuple[str, str]:
    """(reject reason, message) for the server's reason of refusing one line."""
    match = _CONFLICT.search(reason)
    if match:
        sent = "float" if match["sent"] == "float" else match["sent"]
        return (
            "field_type_conflict",
            f"signal {match['field']!r} is stored as {match['stored']}, this reading sends {sent}",
        )
    return "write_rejected", f"InfluxDB refused the point: {reason}"


class BatchWriter:
    """Writes batches through one `InfluxClient`; any number of threads may call `write`.

    Args:
        influx: The client.
        database: The database (created on `DatabaseNotFound` when `create_database`).
        metrics: Where `influx_up`, retries and write latency go.
        backoff_min_s: First wait after a failure.
        backoff_max_s: Longest wait.
        give_up: Set when retrying should stop (shutdown); the write raises `Abandoned`.
        create_database: Create the database when the server says it is missing.
        on_refused: Called after a partial write (the ingester refreshes its type cache).
    """

    def __init__(
        self,
        *,
        influx: InfluxClient,
        database: str,
        metrics: Metrics,
        backoff_min_s: float,
        backoff_max_s: float,
        give_up: threading.Event,
        create_database: bool = True,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self._influx = influx
        self._database = database
        self._metrics = metrics
        self._min_s = backoff_min_s
        self._max_s = max(backoff_min_s, backoff_max_s)
        self._give_up = give_up
        self._create = create_database
        self._on_refused = on_refused
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self.up = True
        self._down_since: float | None = None
        self._state_lock = threading.Lock()  # `up` and `_down_since`
        metrics.set("influx_up", 1)

    def write(self, lines: Sequence[str]) -> dict[int, tuple[str, str]]:
        """Write lines until InfluxDB accepted every one it ever will.

        Args:
            lines: The batch in line protocol (precision ns), one point per line, no newlines.

        Returns:
            Index of each line not stored, to (reason, message).

        Raises:
            Abandoned: `give_up` was set while InfluxDB did not accept the batch.
        """
        dropped: dict[int, tuple[str, str]] = {}
        if lines:
            started = time.monotonic()
            # The whole batch first, without an (index, line) pair per point: bisect on refusal.
            refusal = self._send(_body(lines))
            if refusal is not None:
                self._refused(list(enumerate(lines)), refusal, dropped)
            self._metrics.observe("write_duration_seconds", time.monotonic() - started)
        return dropped

    def _write_or_bisect(
        self, lines: Sequence[tuple[int, str]], dropped: dict[int, tuple[str, str]]
    ) -> None:
        refusal = self._send(_body([line for _, line in lines]))
        if refusal is not None:
            self._refused(lines, refusal, dropped)

    def _refused(
        self, lines: Sequence[tuple[int, str]], refusal: str, dropped: dict[int, tuple[str, str]]
    ) -> None:
        self._metrics.inc("write_refusals_total")
        if len(lines) == 1:
            dropped[lines[0][0]] = describe_refusal(refusal)
            return
        if self._on_refused is not None:
            self._on_refused()
        half = len(lines) // 2
        self._write_or_bisect(lines[:half], dropped)
        self._write_or_bisect(lines[half:], dropped)

    def _send(self, body: bytes) -> str | None:
        """Send one body, retrying transient failures; the server's reason if it refused lines."""
        failures = 0
        while True:
            try:
                self._influx.write(body, precision="ns", database=self._database)
            except DatabaseNotFound as exc:
                error: InfluxError = exc
                if self._create:
                    try:
                        self._influx.create_database(self._database)
                    except InfluxError as create_exc:
                        error = create_exc
            except InfluxAuthError as exc:
                error = exc
            except InfluxRequestError as exc:
                self._mark_up()
                return getattr(exc, "reason", None) or str(exc)
            except InfluxError as exc:
                error = exc
            else:
                self._mark_up()
                return None
            failures += 1
            self._mark_down(error)
            self._metrics.inc("write_retries_total")
            delay = min(self._max_s, self._min_s * 2 ** min(failures - 1, 30))
            if self._give_up.wait(delay * self._rng.uniform(0.5, 1.0)):
                raise Abandoned from error

    def _mark_down(self, error: InfluxError) -> None:
        with self._state_lock:  # writes run on several threads: one transition, logged once
            if self.up:
                self.up = False
                self._down_since = time.monotonic()
                self._metrics.set("influx_up", 0)
                _log.error("influx_down", error=str(error), kind=type(error).__name__)

    def _mark_up(self) -> None:
        with self._state_lock:
            if not self.up:
                self.up = True
                down_s = time.monotonic() - (self._down_since or time.monotonic())
                self._metrics.set("influx_up", 1)
                _log.info("influx_up", down_s=round(down_s, 1))
