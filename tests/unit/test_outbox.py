"""The durable outbox: one suite for `MemoryOutbox` and `SqliteOutbox` (STYLE.md 7), then the file.

Every reading a test enqueues carries a unique integer in its values (`n`), so a test can say
exactly which readings were published, rejected, dropped or are still held.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from structlog.testing import capture_logs

from edge_agent._exceptions import BufferCorrupt
from edge_agent._outbox import (
    SCHEMA_VERSION,
    MemoryOutbox,
    Outbox,
    OutboxMessage,
    SqliteOutbox,
    Transaction,
    _sqlite,
)
from prognos_contract import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_JSON_GZIP,
    MAX_READINGS_PER_BATCH,
    ContractError,
    Reading,
    TelemetryBatch,
    decode_telemetry,
    encode_telemetry,
)

GW = "gw-test-1"
TOPIC = f"prognos/v1/site-a/{GW}/telemetry"
T0 = 1_763_805_599_000
BIG = 10**9

Box = MemoryOutbox | SqliteOutbox


def readings(count: int, *, first: int = 0) -> list[Reading]:
    """`count` readings numbered `first`, `first + 1`, ... in their `n` value."""
    return [
        Reading(asset="pump-07", ts=T0 + n, values={"n": n, "temp_c": 20.5})
        for n in range(first, first + count)
    ]


def numbers(message: OutboxMessage) -> list[int]:
    """The `n` of each reading in a message, decoded from its payload."""
    decoded = decode_telemetry(message.payload, content_type=message.content_type)
    assert decoded.rejected == ()
    return [int(r.values["n"]) for r in decoded.batch.readings]


def payload_bytes(seq: int, items: list[Reading]) -> int:
    return len(encode_telemetry(TelemetryBatch(gateway=GW, seq=seq, readings=tuple(items))))


@dataclass
class Maker:
    """Opens outboxes of one kind for a test, reopens them, and closes them all at the end."""

    kind: str
    folder: Path
    opened: list[Box] = field(default_factory=list)
    params: dict[int, dict[str, Any]] = field(default_factory=dict)
    count: int = 0

    @property
    def durable(self) -> bool:
        """Whether the outbox survives a reopen (a file), or lives in memory."""
        return self.kind == "sqlite"

    def new(self, **overrides: Any) -> Box:
        """A new, empty outbox of this kind; `overrides` are constructor parameters."""
        params: dict[str, Any] = {"gateway": GW, "max_bytes": BIG, "max_messages": 10_000}
        params.update(overrides)
        self.count += 1
        if self.kind == "sqlite":
            params.setdefault("path", self.folder / f"outbox-{self.count}.db")
            params.setdefault("sync", "normal")
            outbox: Box = SqliteOutbox(**params)
        else:
            outbox = MemoryOutbox(**params)
        self.opened.append(outbox)
        self.params[id(outbox)] = params
        return outbox

    def reopen(self, outbox: Box) -> SqliteOutbox:
        """Close a durable outbox and open its file again; a memory outbox cannot be reopened."""
        assert self.durable
        params = self.params[id(outbox)]
        outbox.close()
        again = SqliteOutbox(**params)
        self.opened.append(again)
        self.params[id(again)] = params
        return again

    def file(self, **overrides: Any) -> SqliteOutbox:
        """A new, empty `SqliteOutbox` (for the tests of the file)."""
        outbox = self.new(**overrides)
        assert isinstance(outbox, SqliteOutbox)
        return outbox

    def close_all(self) -> None:
        """Close every outbox this maker opened (closing twice is harmless)."""
        for outbox in self.opened:
            outbox.close()


@pytest.fixture(params=["memory", "sqlite"])
def maker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Maker]:
    """Both implementations, through one fixture: every test below runs against each."""
    made = Maker(kind=request.param, folder=tmp_path)
    try:
        yield made
    finally:
        made.close_all()


@pytest.fixture
def sqlite_maker(tmp_path: Path) -> Iterator[Maker]:
    made = Maker(kind="sqlite", folder=tmp_path)
    try:
        yield made
    finally:
        made.close_all()


def drain(outbox: Outbox, *, max_batch: int = 100) -> list[OutboxMessage]:
    """Begin and accept until the outbox is empty; return what was handed out."""
    sent: list[OutboxMessage] = []
    while True:
        tx = outbox.begin(max_batch)
        if not tx.batch:
            outbox.end(tx)
            return sent
        sent.extend(tx.batch)
        tx.accept = list(range(len(tx.batch)))
        outbox.end(tx)


# ------------------------------------------------------------------ enqueue, begin, end


def test_seq_rises_by_one_per_batch_from_first_seq(maker: Maker) -> None:
    """Each committed batch gets the next seq, starting at `first_seq`; the id is the seq."""
    outbox = maker.new(first_seq=41)
    seqs = [outbox.enqueue(readings(2, first=i * 2), topic=TOPIC, now_ms=T0).seq for i in range(5)]
    assert seqs == [41, 42, 43, 44, 45]
    tx = outbox.begin(10)
    assert [m.seq for m in tx.batch] == seqs
    assert [m.id for m in tx.batch] == seqs
    outbox.end(tx)


def test_a_message_is_the_encoded_batch_ready_to_publish(maker: Maker) -> None:
    """The payload decodes to this gateway's batch with its seq and readings, as committed."""
    outbox = maker.new()
    sent = readings(3)
    outbox.enqueue(sent, topic=TOPIC, now_ms=T0 + 5)
    tx = outbox.begin(1)
    (message,) = tx.batch
    batch = TelemetryBatch(gateway=GW, seq=0, readings=tuple(sent))
    assert message.payload == encode_telemetry(batch)
    assert (message.topic, message.content_type) == (TOPIC, CONTENT_TYPE_JSON)
    assert (message.readings, message.created_ms) == (3, T0 + 5)
    decoded = decode_telemetry(message.payload, content_type=message.content_type)
    assert (decoded.batch.gateway, decoded.batch.seq) == (GW, 0)
    assert list(decoded.batch.readings) == sent
    outbox.end(tx)


def test_compress_gzips_the_payload_and_says_so(maker: Maker) -> None:
    """With compress=True the payload is gzip and the content type is application/json+gzip."""
    outbox = maker.new(compress=True)
    outbox.enqueue(readings(20), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(1)
    (message,) = tx.batch
    assert message.content_type == CONTENT_TYPE_JSON_GZIP
    assert message.payload.startswith(b"\x1f\x8b")
    assert numbers(message) == list(range(20))
    outbox.end(tx)


def test_begin_hands_out_the_oldest_first_up_to_max_batch(maker: Maker) -> None:
    """Messages come in commit order, at most max_batch at a time."""
    outbox = maker.new()
    for i in range(5):
        outbox.enqueue(readings(1, first=i), topic=TOPIC, now_ms=T0)
    first = outbox.begin(2)
    second = outbox.begin(2)
    third = outbox.begin(2)
    assert [[m.seq for m in tx.batch] for tx in (first, second, third)] == [[0, 1], [2, 3], [4]]
    for tx in (first, second, third):
        outbox.end(tx)


def test_an_empty_outbox_hands_out_an_empty_transaction(maker: Maker) -> None:
    """Begin on an empty outbox returns an empty batch, which ends like any other."""
    outbox = maker.new()
    tx = outbox.begin(10)
    assert list(tx.batch) == []
    outbox.end(tx)
    assert len(outbox) == 0


def test_accepted_and_rejected_messages_are_deleted_and_counted(maker: Maker) -> None:
    """Accepted counts as published, rejected as rejected; both leave; the rest stays."""
    outbox = maker.new()
    for i in range(4):
        outbox.enqueue(readings(i + 1, first=10 * i), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(4)
    tx.accept = [0, 2]
    tx.reject = [3]
    outbox.end(tx)
    stats = outbox.stats(T0)
    assert (stats.published_messages, stats.published_readings) == (2, 1 + 3)
    assert (stats.rejected_messages, stats.rejected_readings) == (1, 4)
    assert (stats.depth_messages, stats.depth_readings) == (1, 2)
    assert [m.seq for m in drain(outbox)] == [1]


def test_a_rejected_message_is_never_sent_again(maker: Maker) -> None:
    """A broker NACK is final: the message does not come back."""
    outbox = maker.new()
    outbox.enqueue(readings(1), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(1)
    tx.reject = [0]
    outbox.end(tx)
    assert list(outbox.begin(1).batch) == []


def test_kept_messages_come_back_first_in_the_same_order(maker: Maker) -> None:
    """A message in neither list is handed out again, before newer ones, in its place."""
    outbox = maker.new()
    for i in range(6):
        outbox.enqueue(readings(1, first=i), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(4)
    tx.accept = [1]
    outbox.end(tx)
    again = outbox.begin(10)
    assert [m.seq for m in again.batch] == [0, 2, 3, 4, 5]
    assert [m.payload for m in again.batch][:1] == [tx.batch[0].payload]
    outbox.end(again)


def test_an_open_transaction_holds_its_messages(maker: Maker) -> None:
    """While a transaction is open, no other begin hands out its messages."""
    outbox = maker.new()
    for i in range(4):
        outbox.enqueue(readings(1, first=i), topic=TOPIC, now_ms=T0)
    first = outbox.begin(2)
    second = outbox.begin(10)
    assert [m.seq for m in second.batch] == [2, 3]
    assert list(outbox.begin(10).batch) == []
    outbox.end(first)  # kept: now free again, and oldest
    assert [m.seq for m in outbox.begin(10).batch] == [0, 1]


def test_ending_a_transaction_twice_or_elsewhere_is_refused(maker: Maker) -> None:
    """A transaction ends once, on the outbox that began it."""
    outbox = maker.new()
    other = maker.new()
    outbox.enqueue(readings(1), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(1)
    with pytest.raises(ValueError, match="not open in this outbox"):
        other.end(tx)
    tx.accept = [0]
    outbox.end(tx)
    with pytest.raises(ValueError, match="not open in this outbox"):
        outbox.end(tx)
    with pytest.raises(ValueError, match="not open in this outbox"):
        outbox.end(Transaction(batch=tx.batch, accept=[0]))
    assert outbox.stats(T0).published_messages == 1


@pytest.mark.parametrize(
    ("accept", "reject", "message"),
    [
        ([2], [], "not an index of the batch of 2"),
        ([-1], [], "not an index"),
        ([True], [], "not an index"),
        ([0], [0], r"both in accept and in reject"),
        ([], ["0"], "not an index"),
    ],
)
def test_bad_indices_change_nothing_and_leave_the_transaction_open(
    maker: Maker, accept: list[Any], reject: list[Any], message: str
) -> None:
    """An index outside the batch, or in both lists, is refused before anything is deleted."""
    outbox = maker.new()
    outbox.enqueue(readings(1), topic=TOPIC, now_ms=T0)
    outbox.enqueue(readings(1, first=1), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(2)
    tx.accept, tx.reject = accept, reject
    with pytest.raises(ValueError, match=message):
        outbox.end(tx)
    assert len(outbox) == 2
    tx.accept, tx.reject = [0, 1], []
    outbox.end(tx)
    assert len(outbox) == 0


def test_an_index_listed_twice_counts_once(maker: Maker) -> None:
    """Duplicate indices in one list delete and count their message once."""
    outbox = maker.new()
    outbox.enqueue(readings(3), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(1)
    tx.accept = [0, 0]
    outbox.end(tx)
    assert outbox.stats(T0).published_readings == 3


@pytest.mark.parametrize(
    ("items", "topic", "now_ms", "error"),
    [
        ([], TOPIC, T0, ValueError),
        (readings(1), "", T0, ValueError),
        (readings(1), "prognos/v1/+/gw/telemetry", T0, ValueError),
        (readings(1), TOPIC, -1, ValueError),
        (readings(1), TOPIC, 1.5, ValueError),
        (["not a reading"], TOPIC, T0, ContractError),
    ],
)
def test_a_refused_enqueue_commits_nothing_and_uses_no_seq(
    maker: Maker, items: list[Any], topic: str, now_ms: Any, error: type[Exception]
) -> None:
    """Empty or invalid input raises, and the next batch still gets the next seq."""
    outbox = maker.new()
    with pytest.raises(error):
        outbox.enqueue(items, topic=topic, now_ms=now_ms)
    assert len(outbox) == 0
    assert outbox.enqueue(readings(1), topic=TOPIC, now_ms=T0).seq == 0


def test_a_batch_over_the_contract_limit_uses_no_seq(maker: Maker) -> None:
    """More readings than MAX_READINGS_PER_BATCH raise ContractError: split, nothing lost."""
    outbox = maker.new()
    one = readings(1)[0]
    with pytest.raises(ContractError):
        outbox.enqueue([one] * (MAX_READINGS_PER_BATCH + 1), topic=TOPIC, now_ms=T0)
    assert outbox.stats(T0).next_seq == 0


# ------------------------------------------------------------------ the size cap


def test_the_message_cap_drops_the_oldest_and_counts_exactly(maker: Maker) -> None:
    """Over max_messages, the oldest go first; enqueue returns and logs the exact counts."""
    outbox = maker.new(max_messages=3)
    for i in range(3):
        assert outbox.enqueue(readings(i + 1, first=10 * i), topic=TOPIC, now_ms=T0).seq == i
    with capture_logs() as logs:
        result = outbox.enqueue(readings(5, first=30), topic=TOPIC, now_ms=T0)
    assert (result.seq, result.dropped_messages, result.dropped_readings) == (3, 1, 1)
    warnings = [e for e in logs if e["event"] == "outbox_dropped"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert (warnings[0]["dropped_messages"], warnings[0]["dropped_readings"]) == (1, 1)
    assert (warnings[0]["first_dropped_seq"], warnings[0]["last_dropped_seq"]) == (0, 0)
    stats = outbox.stats(T0)
    assert (stats.dropped_messages, stats.dropped_readings) == (1, 1)
    assert [m.seq for m in drain(outbox)] == [1, 2, 3]


def test_an_enqueue_that_drops_nothing_logs_nothing(maker: Maker) -> None:
    """Only an enqueue that dropped logs `outbox_dropped`."""
    outbox = maker.new(max_messages=3)
    with capture_logs() as logs:
        result = outbox.enqueue(readings(1), topic=TOPIC, now_ms=T0)
    assert (result.dropped_messages, result.dropped_readings) == (0, 0)
    assert [e for e in logs if e["event"] == "outbox_dropped"] == []


def test_the_byte_cap_drops_as_many_of_the_oldest_as_needed(maker: Maker) -> None:
    """Over max_bytes, the oldest messages go until the payload bytes fit, one log line."""
    small = [readings(1, first=i) for i in range(4)]
    sizes = [payload_bytes(seq, items) for seq, items in enumerate(small)]
    big = readings(3, first=100)
    cap = sum(sizes) + 10
    outbox = maker.new(max_bytes=cap)
    for items in small:
        assert outbox.enqueue(items, topic=TOPIC, now_ms=T0).dropped_messages == 0
    # The big batch needs room: drop from the oldest until the rest fits.
    need = sum(sizes) + payload_bytes(4, big) - cap
    expected = next(k for k in range(1, 5) if sum(sizes[:k]) >= need)
    with capture_logs() as logs:
        result = outbox.enqueue(big, topic=TOPIC, now_ms=T0)
    assert (result.dropped_messages, result.dropped_readings) == (expected, expected)
    assert len([e for e in logs if e["event"] == "outbox_dropped"]) == 1
    assert outbox.stats(T0).depth_bytes <= cap
    assert [m.seq for m in drain(outbox)] == [*range(expected, 4), 4]


def test_the_cap_never_drops_a_message_in_an_open_transaction(maker: Maker) -> None:
    """In-flight messages are skipped; the oldest free ones go instead."""
    outbox = maker.new(max_messages=3)
    for i in range(3):
        outbox.enqueue(readings(1, first=i), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(2)  # holds seq 0 and 1
    result = outbox.enqueue(readings(1, first=3), topic=TOPIC, now_ms=T0)
    assert (result.dropped_messages, result.dropped_readings) == (1, 1)  # seq 2
    tx.accept = [0, 1]
    outbox.end(tx)
    assert [m.seq for m in drain(outbox)] == [3]


def test_the_outbox_stays_over_the_cap_while_only_held_messages_could_go(maker: Maker) -> None:
    """If only in-flight messages and the newest remain, nothing is dropped until they end."""
    outbox = maker.new(max_messages=2)
    for i in range(2):
        outbox.enqueue(readings(1, first=i), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(2)
    result = outbox.enqueue(readings(1, first=2), topic=TOPIC, now_ms=T0)
    assert (result.dropped_messages, len(outbox)) == (0, 3)
    tx.accept = [1]
    outbox.end(tx)  # seq 0 kept: free again
    result = outbox.enqueue(readings(1, first=3), topic=TOPIC, now_ms=T0)
    assert (result.dropped_messages, result.dropped_readings) == (1, 1)
    assert [m.seq for m in drain(outbox)] == [2, 3]


def test_the_newest_message_is_kept_even_when_it_alone_is_over_the_byte_cap(maker: Maker) -> None:
    """A batch larger than max_bytes pushes out everything older, but is itself kept."""
    outbox = maker.new(max_bytes=200)
    outbox.enqueue(readings(1), topic=TOPIC, now_ms=T0)
    result = outbox.enqueue(readings(10, first=1), topic=TOPIC, now_ms=T0)
    assert (result.dropped_messages, result.dropped_readings) == (1, 1)
    assert [numbers(m) for m in drain(outbox)] == [list(range(1, 11))]


# ------------------------------------------------------------------ stats and lifecycle


def test_stats_report_depth_age_and_totals_that_add_up(maker: Maker) -> None:
    """Depth counts what is held (in flight too); every enqueued reading is accounted for."""
    outbox = maker.new(max_messages=4)
    assert outbox.stats(T0).oldest_age_ms == 0
    for i in range(6):
        outbox.enqueue(readings(2, first=2 * i), topic=TOPIC, now_ms=T0 + 1000 * i)
    tx = outbox.begin(3)
    tx.accept, tx.reject = [0], [1]
    outbox.end(tx)
    outbox.begin(1)
    stats = outbox.stats(T0 + 10_000)
    assert stats.depth_messages == len(outbox) == 2
    assert (stats.depth_readings, stats.in_flight_messages, stats.next_seq) == (4, 1, 6)
    assert stats.depth_bytes == sum(payload_bytes(s, readings(2, first=2 * s)) for s in (4, 5))
    assert stats.oldest_age_ms == 10_000 - 4000
    assert (stats.enqueued_messages, stats.enqueued_readings) == (6, 12)
    assert (stats.dropped_messages, stats.published_messages, stats.rejected_messages) == (2, 1, 1)
    assert stats.enqueued_readings == (
        stats.published_readings
        + stats.rejected_readings
        + stats.dropped_readings
        + stats.depth_readings
    )
    assert outbox.stats(T0).oldest_age_ms == 0  # the clock stepped back: never negative


def test_a_closed_outbox_refuses_every_call(maker: Maker) -> None:
    """After close, calls raise ValueError; closing again is harmless."""
    outbox = maker.new()
    outbox.close()
    outbox.close()
    for call in (
        lambda: outbox.enqueue(readings(1), topic=TOPIC, now_ms=T0),
        lambda: outbox.begin(1),
        lambda: outbox.stats(T0),
        lambda: len(outbox),
    ):
        with pytest.raises(ValueError, match="closed"):
            call()


@pytest.mark.parametrize(
    "overrides",
    [
        {"gateway": "GW upper"},
        {"max_messages": 0},
        {"max_bytes": -1},
        {"max_bytes": True},
        {"first_seq": -1},
        {"first_seq": 2**63},
    ],
)
def test_bad_parameters_are_refused(maker: Maker, overrides: dict[str, Any]) -> None:
    """A constructor parameter out of range raises ValueError naming it."""
    with pytest.raises(ValueError, match=next(iter(overrides))):
        maker.new(**overrides)


def test_max_batch_must_be_positive(maker: Maker) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        maker.new().begin(0)


def test_concurrent_enqueue_and_publish_lose_and_duplicate_nothing(maker: Maker) -> None:
    """One thread enqueues while another begins and ends: every reading ends up exactly once."""
    outbox = maker.new(max_messages=50)
    done = threading.Event()
    outcomes: dict[int, str] = {}
    errors: list[BaseException] = []
    rng = random.Random(7)

    def publish() -> None:
        try:
            while not (done.is_set() and len(outbox) == 0):
                tx = outbox.begin(rng.randint(1, 8))
                for index, message in enumerate(tx.batch):
                    fate = rng.choice(["accept", "accept", "reject", "keep"])
                    if fate != "keep":
                        getattr(tx, fate).append(index)
                        for n in numbers(message):
                            assert n not in outcomes
                            outcomes[n] = fate
                outbox.end(tx)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    publisher = threading.Thread(target=publish, name="test.outbox.publisher")
    publisher.start()
    dropped = 0
    try:
        for i in range(300):
            dropped += outbox.enqueue(
                readings(2, first=2 * i), topic=TOPIC, now_ms=T0
            ).dropped_readings
    finally:
        done.set()
        publisher.join(timeout=30)
    assert errors == []
    stats = outbox.stats(T0)
    assert len(outcomes) + dropped == 600 == stats.enqueued_readings
    assert stats.dropped_readings == dropped
    assert list(outcomes.values()).count("accept") == stats.published_readings


# ------------------------------------------------------------------ nothing lost or duplicated

CAP_MESSAGES = 6
CAP_BYTES = 1500


class OutboxMachine(RuleBasedStateMachine):
    """Random interleavings against an exact model of the rules (drops included)."""

    maker: ClassVar[Maker]

    def __init__(self) -> None:
        super().__init__()
        self.outbox = self.maker.new(max_messages=CAP_MESSAGES, max_bytes=CAP_BYTES)
        self.held: list[int] = []  # seqs, in commit order
        self.sizes: dict[int, tuple[int, int]] = {}  # seq -> (readings, payload bytes)
        self.contents: dict[int, list[int]] = {}  # seq -> reading numbers
        self.open: list[Transaction] = []
        self.pinned: set[int] = set()
        self.next_seq = 0
        self.next_n = 0
        self.fate: dict[int, str] = {}  # reading number -> accepted / rejected / dropped

    def _depth(self, seqs: list[int]) -> tuple[int, int]:
        return len(seqs), sum(self.sizes[s][1] for s in seqs)

    def _over(self, seqs: list[int]) -> bool:
        count, nbytes = self._depth(seqs)
        return count > CAP_MESSAGES or nbytes > CAP_BYTES

    def _settle(self, seq: int, fate: str) -> None:
        for n in self.contents[seq]:
            assert n not in self.fate, f"reading {n} is {self.fate[n]} and now {fate}"
            self.fate[n] = fate

    @rule(count=st.integers(1, 4))
    def enqueue(self, count: int) -> None:
        """Commit a batch; the cap must drop exactly what the model says."""
        items = readings(count, first=self.next_n)
        seq = self.next_seq
        self.sizes[seq] = (count, payload_bytes(seq, items))
        self.contents[seq] = list(range(self.next_n, self.next_n + count))
        self.next_n += count
        self.next_seq += 1
        result = self.outbox.enqueue(items, topic=TOPIC, now_ms=T0 + seq)
        assert result.seq == seq
        held = [*self.held, seq]
        dropped: list[int] = []
        for old in held[:-1]:
            if not self._over([s for s in held if s not in dropped]):
                break
            if old not in self.pinned:
                dropped.append(old)
        assert (result.dropped_messages, result.dropped_readings) == (
            len(dropped),
            sum(self.sizes[s][0] for s in dropped),
        )
        for old in dropped:
            self._settle(old, "dropped")
        self.held = [s for s in held if s not in dropped]

    @rule(max_batch=st.integers(1, 5))
    def begin(self, max_batch: int) -> None:
        """Hand out the oldest free messages, exactly those the model expects."""
        tx = self.outbox.begin(max_batch)
        expected = [s for s in self.held if s not in self.pinned][:max_batch]
        assert [m.seq for m in tx.batch] == expected
        for message in tx.batch:
            assert numbers(message) == self.contents[message.seq]
        self.pinned.update(expected)
        self.open.append(tx)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def end(self, data: st.DataObject) -> None:
        """End an open transaction with a random fate for each message."""
        tx = data.draw(st.sampled_from(self.open))
        fates = data.draw(
            st.lists(
                st.sampled_from(["accepted", "rejected", "kept"]),
                min_size=len(tx.batch),
                max_size=len(tx.batch),
            )
        )
        tx.accept = [i for i, f in enumerate(fates) if f == "accepted"]
        tx.reject = [i for i, f in enumerate(fates) if f == "rejected"]
        self.outbox.end(tx)
        # By identity: two transactions with equal fields are still two transactions.
        self.open = [t for t in self.open if t is not tx]
        for message, fate in zip(tx.batch, fates, strict=True):
            self.pinned.discard(message.seq)
            if fate != "kept":
                self._settle(message.seq, fate)
                self.held.remove(message.seq)

    @rule()
    def reopen(self) -> None:
        """Restart: open transactions are abandoned and their messages come back."""
        if self.maker.durable:
            self.outbox = self.maker.reopen(self.outbox)
        else:
            for tx in self.open:
                self.outbox.end(tx)
        self.open.clear()
        self.pinned.clear()

    @invariant()
    def stats_match_the_model(self) -> None:
        """Depth, in-flight count, seq and totals agree with the model at every step."""
        stats = self.outbox.stats(T0)
        assert (stats.depth_messages, stats.depth_bytes) == self._depth(self.held)
        assert stats.depth_readings == sum(self.sizes[s][0] for s in self.held)
        assert stats.in_flight_messages == len(self.pinned)
        assert stats.next_seq == self.next_seq
        counted = {
            "accepted": stats.published_readings,
            "rejected": stats.rejected_readings,
            "dropped": stats.dropped_readings,
        }
        for fate, total in counted.items():
            assert list(self.fate.values()).count(fate) == total
        assert stats.enqueued_readings == self.next_n == len(self.fate) + stats.depth_readings

    def teardown(self) -> None:
        """Finally accept everything left: every reading is then exactly one fate."""
        try:
            for tx in self.open:
                self.outbox.end(tx)
            for message in drain(self.outbox):
                self._settle(message.seq, "accepted")
            assert sorted(self.fate) == list(range(self.next_n))
        finally:
            self.outbox.close()


def test_nothing_is_lost_or_duplicated_across_random_interleavings(maker: Maker) -> None:
    """Every enqueued reading ends exactly one of accepted, rejected or dropped (Rule 6)."""

    class Machine(OutboxMachine):
        pass

    Machine.maker = maker
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# ------------------------------------------------------------------ SqliteOutbox: the file


def test_seq_totals_and_messages_survive_a_reopen(sqlite_maker: Maker) -> None:
    """After close and reopen the next seq follows on, and totals and messages are intact."""
    outbox = sqlite_maker.new(max_messages=3)
    for i in range(5):
        outbox.enqueue(readings(1, first=i), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(1)
    tx.accept = [0]
    outbox.end(tx)
    before = outbox.stats(T0)
    outbox = sqlite_maker.reopen(outbox)
    assert outbox.stats(T0) == before
    assert outbox.enqueue(readings(1, first=5), topic=TOPIC, now_ms=T0).seq == 5
    assert [m.seq for m in drain(outbox)] == [3, 4, 5]


def test_first_seq_applies_only_when_the_file_is_created(tmp_path: Path) -> None:
    """An existing file keeps its own counter whatever first_seq says."""
    path = tmp_path / "seq.db"
    with SqliteOutbox(path=path, gateway=GW, max_bytes=BIG, max_messages=10, first_seq=100) as ob:
        assert ob.enqueue(readings(1), topic=TOPIC, now_ms=T0).seq == 100
    with SqliteOutbox(path=path, gateway=GW, max_bytes=BIG, max_messages=10, first_seq=7) as ob:
        assert ob.enqueue(readings(1), topic=TOPIC, now_ms=T0).seq == 101


def test_open_transactions_are_abandoned_by_close_and_handed_out_again(sqlite_maker: Maker) -> None:
    """A crash mid-publish loses nothing: unacknowledged messages come back in order."""
    outbox = sqlite_maker.file()
    for i in range(3):
        outbox.enqueue(readings(1, first=i), topic=TOPIC, now_ms=T0)
    tx = outbox.begin(3)
    outbox = sqlite_maker.reopen(outbox)
    with pytest.raises(ValueError, match="not open in this outbox"):
        outbox.end(tx)
    assert [m.payload for m in outbox.begin(3).batch] == [m.payload for m in tx.batch]


def test_the_file_is_wal_mode_and_versioned(sqlite_maker: Maker) -> None:
    outbox = sqlite_maker.file()
    outbox.enqueue(readings(1), topic=TOPIC, now_ms=T0)
    path = outbox.path
    outbox.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT gateway, next_seq FROM meta").fetchall() == [(GW, 1)]
    finally:
        conn.close()


@pytest.mark.parametrize("sync", ["normal", "full"])
def test_a_message_is_durable_before_it_is_handed_out(tmp_path: Path, sync: str) -> None:
    """With sync=normal, begin checkpoints first: the database file alone holds the batch."""
    path = tmp_path / "outbox.db"
    with SqliteOutbox(path=path, gateway=GW, max_bytes=BIG, max_messages=10, sync=sync) as outbox:  # type: ignore[arg-type]
        for i in range(3):
            outbox.enqueue(readings(1, first=i), topic=TOPIC, now_ms=T0)
        before = _rows_without_wal(path, tmp_path / "before.db")
        outbox.begin(10)
        after = _rows_without_wal(path, tmp_path / "after.db")
    assert before == 0  # still only in the WAL file (fsynced at each commit with sync=full)
    assert after == (3 if sync == "normal" else 0)


def _rows_without_wal(path: Path, copy: Path) -> int:
    """How many messages the database file holds, ignoring its WAL (a power loss at worst)."""
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'messages'")
        if tables.fetchone()[0] == 0:
            return 0
        return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    finally:
        conn.close()


def test_a_second_outbox_on_the_same_file_is_refused(
    sqlite_maker: Maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two agents on one file would interleave seq: the second fails at once."""
    monkeypatch.setattr(_sqlite, "_LOCK_TIMEOUT_S", 0.05)
    outbox = sqlite_maker.file()
    with pytest.raises(BufferCorrupt, match="locked by another process") as caught:
        SqliteOutbox(path=outbox.path, gateway=GW, max_bytes=BIG, max_messages=10)
    assert caught.value.path == outbox.path
    outbox.enqueue(readings(1), topic=TOPIC, now_ms=T0)  # the first is unaffected


def test_a_missing_directory_is_reported_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "outbox.db"
    with pytest.raises(BufferCorrupt, match="cannot be opened") as caught:
        SqliteOutbox(path=path, gateway=GW, max_bytes=BIG, max_messages=10)
    assert caught.value.path == str(path)
    assert not path.parent.exists()


# ------------------------------------------------------------------ corrupt files


def _filled_file(folder: Path, *, messages: int = 80) -> Path:
    path = folder / "outbox.db"
    with SqliteOutbox(
        path=path, gateway=GW, max_bytes=BIG, max_messages=10_000, sync="normal"
    ) as outbox:
        for i in range(messages):
            outbox.enqueue(readings(3, first=3 * i), topic=TOPIC, now_ms=T0)
    return path


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(64 * 1024))


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flipped_page(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    last = len(data) - page_size  # a leaf page of the messages table
    data[last : last + page_size] = bytes(b ^ 0xFF for b in data[last : last + page_size])
    path.write_bytes(bytes(data))


def _foreign_database(path: Path) -> None:
    path.unlink()
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        conn.commit()
    finally:
        conn.close()


def _newer_schema(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    finally:
        conn.close()


def _counters_off(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE meta SET enqueued_messages = enqueued_messages + 1")
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_garbage, "file is not a database"),
        (_truncated, "malformed|quick_check"),
        (_flipped_page, "malformed|quick_check"),
        (_foreign_database, "not an outbox"),
        (_newer_schema, "schema version 2"),
        (_counters_off, "disagree"),
    ],
)
def test_a_damaged_file_is_reported_by_name_and_left_byte_identical(
    tmp_path: Path, damage: Any, reason: str
) -> None:
    """Opening raises BufferCorrupt with the path and the reason, and changes no byte."""
    path = _filled_file(tmp_path)
    damage(path)
    before = path.read_bytes()
    files = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(BufferCorrupt, match=reason) as caught:
        SqliteOutbox(path=path, gateway=GW, max_bytes=BIG, max_messages=10_000)
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_a_file_of_another_gateway_is_refused(tmp_path: Path) -> None:
    """A file written for another gateway (seq is per gateway) is an error, left as is."""
    path = _filled_file(tmp_path, messages=2)
    before = path.read_bytes()
    with pytest.raises(BufferCorrupt, match="belongs to gateway 'gw-test-1'") as caught:
        SqliteOutbox(path=path, gateway="gw-other", max_bytes=BIG, max_messages=10)
    assert caught.value.path == str(path)
    assert path.read_bytes() == before


def test_a_flipped_payload_byte_is_caught_when_handed_out(tmp_path: Path) -> None:
    """SQLite has no page checksums; the CRC-32 of each payload catches what quick_check cannot."""
    path = tmp_path / "outbox.db"
    with SqliteOutbox(path=path, gateway=GW, max_bytes=BIG, max_messages=10) as outbox:
        marked = Reading(asset="pump-07", ts=T0, values={"note": "MARKER-7f3a"})
        outbox.enqueue([marked], topic=TOPIC, now_ms=T0)
    data = path.read_bytes()
    assert data.count(b"MARKER-7f3a") == 1
    path.write_bytes(data.replace(b"MARKER-7f3a", b"MARKER-7f3b"))
    before = path.read_bytes()
    with SqliteOutbox(path=path, gateway=GW, max_bytes=BIG, max_messages=10) as outbox:
        with pytest.raises(BufferCorrupt, match="seq 0 fails its CRC-32") as caught:
            outbox.begin(10)
        assert caught.value.path == str(path)
    assert path.read_bytes() == before


def test_a_refused_file_after_a_crash_still_holds_every_message(tmp_path: Path) -> None:
    """A crashed file (database plus WAL) of another gateway is refused; nothing is lost.

    SQLite applies the WAL on open (its crash recovery), so the bytes may change: the content
    does not, as opening with the right gateway shows.
    """
    live = tmp_path / "live.db"
    crashed = tmp_path / "crashed.db"
    with SqliteOutbox(path=live, gateway=GW, max_bytes=BIG, max_messages=100) as outbox:
        for i in range(5):
            outbox.enqueue(readings(1, first=i), topic=TOPIC, now_ms=T0)
        # Copied while open: what a SIGKILL or a power cut leaves behind.
        shutil.copyfile(live, crashed)
        shutil.copyfile(f"{live}-wal", f"{crashed}-wal")
    with pytest.raises(BufferCorrupt, match="belongs to gateway"):
        SqliteOutbox(path=crashed, gateway="gw-other", max_bytes=BIG, max_messages=100)
    with SqliteOutbox(path=crashed, gateway=GW, max_bytes=BIG, max_messages=100) as outbox:
        assert [m.seq for m in drain(outbox)] == [0, 1, 2, 3, 4]
