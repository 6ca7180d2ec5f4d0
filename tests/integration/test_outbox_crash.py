"""The outbox file survives SIGKILL at random moments: no committed batch lost, seq continuous.

A child process enqueues one batch after another into a `SqliteOutbox`, printing ``C <seq>``
(flushed) after each commit returns and, now and then, accepting the oldest message: it prints
``B <seq>`` before that transaction ends and ``A <seq>`` after its commit returns. The test
kills it with SIGKILL at a random moment, reopens the file, checks it, and starts the next child
on the same file, several times over.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_agent._outbox import SqliteOutbox

ROOT = Path(__file__).resolve().parents[2]
GW = "gw-crash"
ROUNDS = 4

CHILD = """
import logging, sys
import structlog
from edge_agent._outbox import SqliteOutbox
from prognos_contract import Reading

structlog.configure(
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
)
path, sync = sys.argv[1], sys.argv[2]
outbox = SqliteOutbox(path=path, gateway="gw-crash", max_bytes=10**9, max_messages=10**7, sync=sync)
print("ready", flush=True)
n = 0
while True:
    readings = [Reading(asset="pump-1", ts=1763805599000 + n, values={"n": n})]
    result = outbox.enqueue(readings, topic="prognos/v1/site/gw-crash/telemetry", now_ms=0)
    print("C", result.seq, flush=True)
    if n % 4 == 3:
        tx = outbox.begin(3)
        tx.accept = [0]
        print("B", tx.batch[0].seq, flush=True)
        outbox.end(tx)
        print("A", tx.batch[0].seq, flush=True)
    n += 1
"""


def _run_and_kill(path: Path, sync: str, rng: random.Random) -> list[str]:
    """Start a child, let it commit for a random while, SIGKILL it; return its complete lines."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), sync],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.endswith("\n"):  # cut by the kill: not reported
                break
            lines.append(line.strip())
            ready.set()

    reader = threading.Thread(target=read, name="test.outbox_crash.reader")
    reader.start()
    try:
        assert ready.wait(timeout=30), "the child never started"
        time.sleep(rng.uniform(0.02, 0.3))
    finally:
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
        reader.join(timeout=30)
    assert proc.returncode == -signal.SIGKILL, stderr
    assert lines[0] == "ready", stderr
    return lines[1:]


@pytest.mark.parametrize("sync", ["full", "normal"])
def test_sigkill_never_loses_a_committed_batch_nor_breaks_seq(tmp_path: Path, sync: str) -> None:
    """After each SIGKILL and reopen: every reported commit is there, seq has no gap or reuse."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    path = tmp_path / "outbox.db"
    reported: set[int] = set()  # commits the children said were done
    accepting: set[int] = set()  # seqs a child was accepting (B), done or not
    acked: set[int] = set()  # accepts a child said were done (A)
    next_seq = 0
    for round_no in range(ROUNDS):
        where = f"seed {seed}, round {round_no}"
        lines = _run_and_kill(path, sync, rng)
        committed = [int(line[2:]) for line in lines if line.startswith("C ")]
        assert committed, where
        # The child continued exactly where the last one stopped: no seq skipped, none reused.
        assert committed == list(range(next_seq, next_seq + len(committed))), where
        reported.update(committed)
        accepting.update(int(line[2:]) for line in lines if line.startswith("B "))
        acked.update(int(line[2:]) for line in lines if line.startswith("A "))

        with SqliteOutbox(path=path, gateway=GW, max_bytes=10**9, max_messages=10**7) as outbox:
            stats = outbox.stats(0)
            tx = outbox.begin(10**6)
            present = [m.seq for m in tx.batch]
            outbox.end(tx)  # keep everything
        # A commit just before the kill may not have been reported: there may be more, not fewer.
        assert stats.next_seq >= committed[-1] + 1, where
        assert present == sorted(present), where
        assert set(present) <= set(range(stats.next_seq)), where
        assert stats.enqueued_messages == stats.next_seq, where
        # Every reported commit is still held, unless a child was accepting it.
        assert reported - set(present) <= accepting, where
        # Every seq ever given out is held or was accepted; nothing else can make one leave.
        gone = set(range(stats.next_seq)) - set(present)
        assert acked <= gone <= accepting, where
        assert stats.published_messages == len(gone), where
        assert stats.depth_messages == len(present), where
        next_seq = stats.next_seq
