#!/usr/bin/env python3
"""Benchmark the replay of an outbox backlog (issue 4): 1,000,000 readings after an outage.

A dedicated Mosquitto runs on a free loopback port (as in ``mqtt_publish.py``). Then:

1. **Fill**: 1,000,000 readings (``--readings``), in batches of 100 readings of 20 signals each
   (about 55 kB of JSON per batch, 10,000 batches), are committed to a `SqliteOutbox` with the
   agent's defaults (``sync=full``, no gzip) while no publisher runs: a gateway whose broker is
   unreachable. Timed; the file's size is reported. The outbox is closed, and copied, so both
   replays start from the same backlog.
2. **Replay**, twice: the outbox is reopened (timed: the open runs ``PRAGMA quick_check``), a
   subscriber in a child process subscribes (QoS 1, Receive Maximum 5,000, as the ingester), and
   `MqttPublisher` starts against the broker. Timed from ``start()`` to the PUBACK that settles
   the last batch (the outbox is empty then). Once unpaced, once with the agent's default replay
   pacing (``replay_rate_msgs_s`` 200, ``replay_rate_bytes_s`` 1,000,000).
3. The subscriber counts what arrives: batches, readings, and each batch's ``seq``. Any batch
   missing, a gap or a step back in ``seq`` fails the run (exit 1, always): nothing may be lost.

A default run takes about 10 minutes: about 25 s to fill, 10 s for the unpaced replay, and
about 9 minutes for the paced one, which the default byte rate (1 MB/s) holds to the backlog's
size in MB, in seconds. ``--duration-s`` caps each replay and estimates the rest from its rate;
``--readings`` shrinks the backlog.

    .venv/bin/python scripts/bench/outbox_replay.py                       # about 10 minutes
    .venv/bin/python scripts/bench/outbox_replay.py --duration-s 60       # about 2 minutes
    .venv/bin/python scripts/bench/outbox_replay.py --readings 20000 --json out.json

See scripts/bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as mqtt
from mqtt_publish import (
    HOST,
    NOW_MS,
    POOL_BATCHES,
    TOPIC,
    WatchedOutbox,
    environment,
    environment_line,
    mosquitto,
    new_publisher,
    open_outbox,
    publisher_config,
    quiet_logs,
    reading_pool,
    remove_outbox,
    table,
    work_dir,
    write_json,
)
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge_agent._config import OutboxSection
from edge_agent._mqtt_config import MqttConfig
from edge_agent._publisher import MqttPublisher

DEFAULT_READINGS = 1_000_000
PROGRESS_S = 5.0
"""How often a long phase prints its progress."""
SUBSCRIBER_RECEIVE_MAXIMUM = 5_000
"""The ingester's MQTT 5 Receive Maximum (DESIGN.md, delivery guarantees)."""
SUBSCRIBER_TIMEOUT_S = 60.0
"""Longest wait, after the outbox is empty, for the subscriber to have every batch."""
CONNECT_TIMEOUT_S = 10.0
_SEQ = re.compile(rb'"seq":(\d+)')
_ASSET = b'"asset":'
_GZIP_MAGIC = b"\x1f\x8b"

Say = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# The subscriber: a child process, so that it takes no CPU from the publisher's interpreter


@dataclass(slots=True)
class Received:
    """What the subscriber saw: counts, and the ``seq`` stream checked as it arrived."""

    messages: int = 0
    readings: int = 0
    payload_bytes: int = 0
    first_seq: int | None = None
    next_seq: int = 0
    """One past the highest ``seq`` seen so far (what an in-order stream sends next)."""
    duplicates: int = 0
    gaps: int = 0
    """Seqs skipped: a batch arrived whose ``seq`` is above ``next_seq``."""
    late: int = 0
    """Batches that arrived after a higher ``seq`` and were not duplicates (out of order)."""
    seen: set[int] = field(default_factory=set)

    def add(self, payload: bytes) -> None:
        """Count one telemetry payload and check its ``seq``."""
        self.messages += 1
        self.payload_bytes += len(payload)
        document = gzip.decompress(payload) if payload.startswith(_GZIP_MAGIC) else payload
        # The contract's encoder writes "seq" third, after "schema" and a gateway id of at
        # most 64 characters; every reading has exactly one "asset" key.
        match = _SEQ.search(document, 0, 256)
        if match is None:
            raise ValueError(f"a payload without seq: {document[:120]!r}")
        seq = int(match.group(1))
        self.readings += document.count(_ASSET)
        if self.first_seq is None:
            self.first_seq = seq
            self.next_seq = seq
        if seq in self.seen:
            self.duplicates += 1
            return
        self.seen.add(seq)
        if seq > self.next_seq:
            self.gaps += seq - self.next_seq
        elif seq < self.next_seq:
            self.late += 1
            self.gaps -= 1  # the gap it left is filled now
        self.next_seq = max(self.next_seq, seq + 1)

    def summary(self) -> dict[str, int | None]:
        """The counts, for the parent process."""
        return {
            "messages": self.messages,
            "readings": self.readings,
            "payload_bytes": self.payload_bytes,
            "first_seq": self.first_seq,
            "last_seq": self.next_seq - 1 if self.first_seq is not None else None,
            "distinct": len(self.seen),
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "late": self.late,
        }


def _subscribe(port: int) -> None:
    """Child process: subscribe to the benchmark's telemetry, count, report; stop at stdin EOF.

    Prints ``{"ready": true}`` once subscribed, a summary line every 0.5 s, and the final summary
    after stdin closes.
    """
    received = Received()
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            received.add(bytes(msg.payload))

    def on_subscribe(*_args: object) -> None:
        subscribed.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-replay-sub", protocol=mqtt.MQTTv5
    )
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = SUBSCRIBER_RECEIVE_MAXIMUM
    client.connect(HOST, port, keepalive=60, clean_start=True, properties=props)
    client.loop_start()
    client.subscribe(TOPIC, qos=1)
    if not subscribed.wait(CONNECT_TIMEOUT_S):
        raise SystemExit(f"the subscriber got no SUBACK from {HOST}:{port}")
    print(json.dumps({"ready": True}), flush=True)
    stdin_closed = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()
        stdin_closed.set()

    threading.Thread(target=watch_stdin, daemon=True, name="stdin").start()
    while not stdin_closed.wait(0.5):
        with lock:
            print(json.dumps(received.summary()), flush=True)
    client.disconnect()
    client.loop_stop()
    with lock:
        print(json.dumps({"final": True, **received.summary()}), flush=True)


class Subscriber:
    """The parent's handle on the subscriber process: its latest counts."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc
        self._lock = threading.Lock()
        self.latest: dict[str, Any] = {}
        self.final: dict[str, Any] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True, name="subscriber")
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None  # noqa: S101 - set by stdout=PIPE
        for line in self._proc.stdout:
            data = json.loads(line)
            with self._lock:
                if data.get("final"):
                    self.final = data
                self.latest = data

    def messages(self) -> int:
        """Batches received so far."""
        with self._lock:
            return int(self.latest.get("messages", 0))

    def finish(self) -> dict[str, Any]:
        """Stop the subscriber and return its final counts."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.final is None:
            raise RuntimeError(f"the subscriber exited ({self._proc.returncode}) without a summary")
        return self.final


@contextmanager
def subscriber(port: int) -> Iterator[Subscriber]:
    """Start the subscriber process and wait until it is subscribed."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--subscribe", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None  # noqa: S101 - set by stdout=PIPE
        line = proc.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"the subscriber process exited ({proc.wait()}) before subscribing")
        yield Subscriber(proc)
    finally:
        if proc.poll() is None:
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------------------------------------
# Fill and replay


@dataclass(frozen=True, slots=True)
class Fill:
    """The outbox filled while offline."""

    seconds: float
    messages: int
    readings: int
    payload_bytes: int
    file_bytes: int
    """The outbox file and its WAL after the fill, while still open."""
    closed_file_bytes: int
    """The outbox file after it was closed (the WAL checkpointed into it)."""

    @property
    def readings_per_s(self) -> float:
        """Readings committed per second."""
        return self.readings / self.seconds


@dataclass(frozen=True, slots=True)
class Replay:
    """One replay of the backlog to the broker."""

    paced: bool
    rate_msgs_s: float | None
    rate_bytes_s: float | None
    open_s: float
    """Reopening the outbox file (``PRAGMA quick_check`` of the whole file, and the totals)."""
    seconds: float
    """From the publisher's ``start()`` to the last PUBACK, or to the cap (``complete`` False)."""
    complete: bool
    messages: int
    """Batches published (PUBACKed) in ``seconds``."""
    readings: int
    payload_bytes: int
    backlog_messages: int
    backlog_bytes: int
    received: dict[str, Any]
    file_bytes_after: int

    @property
    def estimated_s(self) -> float:
        """The time the whole backlog takes: measured, or, if capped, estimated.

        The rest of the backlog is estimated at the measured rates, but never faster than the
        pacing allows: a short window is flattered by the pacer's initial burst (a second's
        worth).
        """
        if self.complete or not self.messages:
            return self.seconds
        msgs_s, bytes_s = self.messages_per_s, self.payload_bytes / self.seconds
        if self.rate_msgs_s is not None:
            msgs_s = min(msgs_s, self.rate_msgs_s)
        if self.rate_bytes_s is not None:
            bytes_s = min(bytes_s, self.rate_bytes_s)
        rest_s = max(
            (self.backlog_messages - self.messages) / msgs_s,
            (self.backlog_bytes - self.payload_bytes) / bytes_s,
        )
        return self.seconds + rest_s

    @property
    def readings_per_s(self) -> float:
        """Readings published per second."""
        return self.readings / self.seconds

    @property
    def messages_per_s(self) -> float:
        """Batches published per second."""
        return self.messages / self.seconds

    @property
    def mb_per_s(self) -> float:
        """Payload megabytes (10^6 bytes) published per second."""
        return self.payload_bytes / self.seconds / 1e6

    @property
    def problems(self) -> list[str]:
        """What the subscriber saw go wrong (nothing may be lost, skipped or reordered)."""
        got = self.received
        problems: list[str] = []
        if got["distinct"] < self.messages:
            problems.append(f"{self.messages - got['distinct']} published batches did not arrive")
        if got["readings"] < self.readings:
            problems.append(f"{self.readings - got['readings']} readings did not arrive")
        if got["gaps"]:
            problems.append(f"{got['gaps']} seqs missing between {got['first_seq']} and the last")
        if got["late"]:
            problems.append(f"{got['late']} batches arrived out of seq order")
        if self.messages and got["first_seq"] != 0:
            problems.append(f"the first seq received was {got['first_seq']}, not 0")
        return problems


def file_bytes(path: Path) -> int:
    """The outbox file plus its WAL, bytes."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def fill(path: Path, args: argparse.Namespace, say: Say) -> Fill:
    """Commit ``--readings`` readings to a new outbox, batch by batch, with no publisher."""
    per_batch: int = args.readings_per_batch
    pool = reading_pool(POOL_BATCHES, per_batch, args.signals)
    batches = -(-args.readings // per_batch)
    outbox = open_outbox(path, args.sync, compress=args.compress, secure_delete=args.secure_delete)
    try:
        start = time.perf_counter()
        next_report = start + PROGRESS_S
        left = args.readings
        for i in range(batches):
            readings = pool[i % len(pool)][: min(per_batch, left)]
            left -= len(readings)
            outbox.enqueue(readings, topic=TOPIC, now_ms=NOW_MS)
            if (now := time.perf_counter()) >= next_report:
                next_report = now + PROGRESS_S
                say(
                    f"  fill: {args.readings - left:,} of {args.readings:,} readings "
                    f"({now - start:.0f} s)"
                )
        seconds = time.perf_counter() - start
        stats = outbox.stats(NOW_MS)
        size = file_bytes(path)
    finally:
        outbox.close()
    return Fill(
        seconds,
        stats.depth_messages,
        stats.depth_readings,
        stats.depth_bytes,
        size,
        file_bytes(path),
    )


def replay(path: Path, port: int, args: argparse.Namespace, *, paced: bool, say: Say) -> Replay:
    """Reopen the outbox and publish it all (or until ``--duration-s``), a subscriber counting."""
    config = publisher_config(port, max_inflight=args.max_inflight, paced=paced)
    label = "paced" if paced else "unpaced"
    start = time.perf_counter()
    outbox = open_outbox(path, args.sync, compress=args.compress, secure_delete=args.secure_delete)
    open_s = time.perf_counter() - start
    try:
        backlog = outbox.stats(NOW_MS)
        with subscriber(port) as sub:
            watched = WatchedOutbox(outbox, expected=backlog.depth_messages)
            publisher = new_publisher(config, watched)
            start = time.perf_counter()
            publisher.start()
            try:
                complete = _wait_replayed(watched, publisher, args.duration_s, label, say)
            finally:
                publisher.stop()
            end = watched.done_at if complete and watched.done_at is not None else None
            seconds = (end or time.perf_counter()) - start
            after = outbox.stats(NOW_MS)
            published = after.published_messages - backlog.published_messages
            _wait_received(sub, published)
            received = sub.finish()
    finally:
        outbox.close()
    return Replay(
        paced=paced,
        rate_msgs_s=config.replay_rate_msgs_s,
        rate_bytes_s=config.replay_rate_bytes_s,
        open_s=open_s,
        seconds=seconds,
        complete=complete,
        messages=published,
        readings=after.published_readings - backlog.published_readings,
        payload_bytes=backlog.depth_bytes - after.depth_bytes,
        backlog_messages=backlog.depth_messages,
        backlog_bytes=backlog.depth_bytes,
        received=received,
        file_bytes_after=file_bytes(path),
    )


def _wait_replayed(
    watched: WatchedOutbox, publisher: MqttPublisher[Any], cap_s: float | None, label: str, say: Say
) -> bool:
    """Wait until the outbox is empty (True) or ``cap_s`` passed (False), printing progress."""
    start = time.perf_counter()
    while True:
        wait_s = PROGRESS_S
        if cap_s is not None:
            wait_s = min(wait_s, start + cap_s - time.perf_counter())
        if watched.done.wait(max(wait_s, 0.0)):
            if watched.rejected:
                raise RuntimeError(f"the broker refused {watched.rejected} batches")
            return True
        elapsed = time.perf_counter() - start
        stats = publisher.stats()
        if not stats.running:
            raise RuntimeError(f"the publisher stopped: {stats.last_error}")
        say(
            f"  {label} replay: {watched.accepted:,} of {watched.expected:,} batches "
            f"({elapsed:.0f} s{', connected' if stats.connected else ', NOT connected'})"
        )
        if cap_s is not None and elapsed >= cap_s:
            return False


def _wait_received(sub: Subscriber, published: int) -> None:
    deadline = time.monotonic() + SUBSCRIBER_TIMEOUT_S
    while sub.messages() < published and time.monotonic() < deadline:
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Output


def _pacing(replay: Replay) -> str:
    if not replay.paced:
        return "off"
    parts = []
    if replay.rate_msgs_s is not None:
        parts.append(f"{replay.rate_msgs_s:,.0f} msg/s")
    if replay.rate_bytes_s is not None:
        parts.append(f"{replay.rate_bytes_s / 1e6:g} MB/s")
    return ", ".join(parts) or "off"


def _seq_check(replay: Replay) -> str:
    got = replay.received
    problems = replay.problems
    if problems:
        return "FAIL: " + "; ".join(problems)
    if not got["distinct"]:
        return "nothing received"
    return (
        f"{got['first_seq']}..{got['last_seq']} contiguous, in order, "
        f"{got['duplicates']} duplicates"
    )


def results_table(filled: Fill, replays: Sequence[Replay]) -> str:
    """The fill and each replay, one row each."""
    rows: list[tuple[str, ...]] = [
        (
            "phase",
            "pacing",
            "seconds",
            "readings/s",
            "msgs/s",
            "MB/s",
            "received",
            "seq check (subscriber)",
        ),
        (
            "fill (offline)",
            "-",
            f"{filled.seconds:,.1f}",
            f"{filled.readings_per_s:,.0f}",
            f"{filled.messages / filled.seconds:,.0f}",
            f"{filled.payload_bytes / filled.seconds / 1e6:,.1f}",
            "-",
            "-",
        ),
    ]
    for r in replays:
        seconds = f"{r.seconds:,.1f}" if r.complete else f"~{r.estimated_s:,.1f} (est.)"
        rows.append(
            (
                "replay",
                _pacing(r),
                seconds,
                f"{r.readings_per_s:,.0f}",
                f"{r.messages_per_s:,.0f}",
                f"{r.mb_per_s:,.1f}",
                f"{r.received['distinct']:,}/{r.messages:,}",
                _seq_check(r),
            )
        )
    return table(rows, right={2, 3, 4, 5, 6})


def json_report(
    env: dict[str, object], args: argparse.Namespace, filled: Fill, replays: Sequence[Replay]
) -> dict[str, object]:
    """Every figure, for ``--json``."""
    return {
        "environment": env,
        "settings": {
            "readings": args.readings,
            "readings_per_batch": args.readings_per_batch,
            "signals": args.signals,
            "sync": args.sync,
            "compress": args.compress,
            "max_inflight": args.max_inflight,
            "duration_s": args.duration_s,
        },
        "fill": asdict(filled) | {"readings_per_s": filled.readings_per_s},
        "replays": [
            asdict(r)
            | {
                "estimated_s": r.estimated_s,
                "readings_per_s": r.readings_per_s,
                "messages_per_s": r.messages_per_s,
                "mb_per_s": r.mb_per_s,
                "problems": r.problems,
            }
            for r in replays
        ],
        "no_loss": not any(r.problems for r in replays),
    }


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    defaults = MqttConfig(host=HOST)
    parser = argparse.ArgumentParser(
        prog="outbox_replay.py",
        description=(
            "Benchmark the replay of a backlog: fill the SQLite outbox with --readings readings "
            "while no publisher runs, then publish it all to a Mosquitto of its own, unpaced and "
            "with the agent's default replay pacing, a subscriber checking that every batch "
            "arrives, in seq order."
        ),
        epilog="Exit status: 0 ok; 1 a batch was lost, skipped or reordered (always). There is "
        "no timing target: --strict is accepted (for make bench) and changes nothing. A default "
        "run takes about 10 minutes, 9 of them the paced replay (about the backlog's MB, in "
        "seconds, at the default 1 MB/s); --duration-s caps each replay.",
    )
    parser.add_argument(
        "--readings",
        type=int,
        default=DEFAULT_READINGS,
        help="readings (one asset at one time) in the backlog (default: %(default)s)",
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        help="longest each replay runs; the rest is then estimated at the measured rate, never "
        "faster than the pacing, marked 'est.' (default: until the outbox is empty)",
    )
    parser.add_argument(
        "--readings-per-batch",
        type=int,
        default=100,
        help="readings per batch (MQTT message) (default: %(default)s)",
    )
    parser.add_argument(
        "--signals", type=int, default=20, help="signal values per reading (default: %(default)s)"
    )
    parser.add_argument(
        "--sync",
        choices=("full", "normal"),
        default=OutboxSection().sync,
        help="the outbox's fsync policy (default: the agent's, %(default)s)",
    )
    parser.add_argument(
        "--compress",
        action="store_true",
        help="gzip the batches (the agent's outbox.compress: gzip; default: off, as the agent)",
    )
    parser.add_argument(
        "--max-inflight",
        type=int,
        default=defaults.max_inflight,
        help="the publisher's QoS 1 window (default: the agent's, %(default)s)",
    )
    parser.add_argument(
        "--no-paced",
        action="store_true",
        help="leave out the paced replay (the long part of a default run)",
    )
    parser.add_argument(
        "--secure-delete",
        choices=("default", "on", "fast", "off"),
        default="default",
        help="diagnostic: set SQLite's secure_delete on the outbox (default: as SQLite ships)",
    )
    parser.add_argument("--dir", help="folder for the outbox files (default: a temporary folder)")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write every figure as JSON to PATH ('-': to stdout, and the report to stderr)",
    )
    parser.add_argument("--strict", action="store_true", help="accepted; there is no target")
    parser.add_argument("--subscribe", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.readings < 1 or args.readings_per_batch < 1 or args.signals < 1:
        parser.error("--readings, --readings-per-batch and --signals must be >= 1")
    if args.duration_s is not None and args.duration_s <= 0:
        parser.error("--duration-s must be > 0")
    if args.max_inflight < 2:  # noqa: PLR2004 - the publisher keeps one slot for status
        parser.error("--max-inflight must be >= 2")
    return args


def _expected(args: argparse.Namespace, payload_bytes: int, batches: int) -> str:
    cfg = MqttConfig(host=HOST)
    assert cfg.replay_rate_msgs_s is not None  # noqa: S101 - the agent's default
    assert cfg.replay_rate_bytes_s is not None  # noqa: S101 - the agent's default
    paced_s = max(batches / cfg.replay_rate_msgs_s, payload_bytes / cfg.replay_rate_bytes_s)
    text = f"a paced replay takes about {paced_s:,.0f} s"
    if args.duration_s is not None and args.duration_s < paced_s:
        text += f" (capped at {args.duration_s:g} s by --duration-s, the rest estimated)"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Fill, replay twice, print the report; returns the exit status."""
    args = parse_args(argv)
    if args.subscribe is not None:
        _subscribe(args.subscribe)
        return 0
    out: TextIO = sys.stderr if args.json == "-" else sys.stdout

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    quiet_logs()
    env = environment()
    say(f"Outbox replay benchmark: {environment_line(env)}")
    batches = -(-args.readings // args.readings_per_batch)
    say(
        f"backlog: {args.readings:,} readings in {batches:,} batches of "
        f"{args.readings_per_batch} readings x {args.signals} signals, outbox sync={args.sync}, "
        f"gzip {'on' if args.compress else 'off'}, max inflight {args.max_inflight}"
    )
    with work_dir(args.dir, "prognos-bench-replay-") as folder:
        first = folder / "outbox.db"
        filled = fill(first, args, say)
        say(
            f"filled in {filled.seconds:.1f} s: {filled.payload_bytes / 1e6:,.1f} MB of payload, "
            f"file {filled.file_bytes / 1e6:,.1f} MB open, {filled.closed_file_bytes / 1e6:,.1f} "
            f"MB closed; {_expected(args, filled.payload_bytes, filled.messages)}"
        )
        copy = folder / "outbox-copy.db"
        if not args.no_paced:
            shutil.copyfile(first, copy)
        replays: list[Replay] = []
        with mosquitto(folder / "broker") as port:
            replays.append(replay(first, port, args, paced=False, say=say))
            remove_outbox(first)
            if not args.no_paced:
                replays.append(replay(copy, port, args, paced=True, say=say))
    say("")
    say(_cap_note(filled))
    say(
        f"Results: outbox reopened in {', '.join(f'{r.open_s:.2f} s' for r in replays)} "
        f"(quick_check); file after replay: "
        f"{', '.join(f'{r.file_bytes_after / 1e6:,.1f} MB' for r in replays)}"
    )
    say(results_table(filled, replays))
    lost = [r for r in replays if r.problems]
    say(f"every batch arrived, in seq order: {'no' if lost else 'yes'}")
    if args.json:
        write_json(args.json, json_report(env, args, filled, replays), say)
    if lost:
        say("FAIL: the subscriber missed batches or saw them out of order")
        return 1
    return 0


def _cap_note(filled: Fill) -> str:
    cap = OutboxSection().max_bytes
    if filled.payload_bytes <= cap:
        return (
            f"the backlog's {filled.payload_bytes / 1e6:,.1f} MB of payload fits the agent's "
            f"default outbox.max_bytes ({cap / 2**20:,.0f} MiB)"
        )
    kept = cap / filled.payload_bytes
    return (
        f"NOTE: the backlog's {filled.payload_bytes / 1e6:,.1f} MB of payload is over the "
        f"agent's default outbox.max_bytes ({cap / 2**20:,.0f} MiB): an agent with that cap "
        f"would have kept the newest {kept:.0%} and dropped (and counted) the rest; here the "
        "outbox has no cap"
    )


if __name__ == "__main__":
    sys.exit(main())
