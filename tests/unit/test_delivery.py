"""The delivery sink's pure parts: grouping per asset and time, and the batching policy."""

from __future__ import annotations

import asyncio

from support import run_async

from edge_agent._delivery import Batcher, DeliverySink, to_contract
from edge_agent._model import Reading
from edge_agent._outbox import EnqueueResult, MemoryOutbox
from prognos_contract import Reading as ContractReading
from prognos_contract import decode_telemetry

TS = 1_763_805_599_000
TOPIC = "prognos/v1/s1/gw1/telemetry"


def _r(asset: str, ts: int, n: int = 1) -> list[ContractReading]:
    return [ContractReading(asset=asset, ts=ts + i, values={"x": i}) for i in range(n)]


def test_one_contract_reading_per_asset_and_ts_with_bad_signals_listed() -> None:
    """Good values go to `values`, failed signals to `bad`, one reading per asset and ts."""
    grouped = to_contract(
        [
            Reading("pump", "temp_c", TS, 71.5),
            Reading.bad("pump", "pressure_bar", TS, "timeout"),
            Reading("pump", "temp_c", TS + 1000, 72.0),
            Reading("fan", "rpm", TS, 900),
        ]
    )
    assert [(r.asset, r.ts, dict(r.values), r.bad) for r in grouped.readings] == [
        ("pump", TS, {"temp_c": 71.5}, ("pressure_bar",)),
        ("pump", TS + 1000, {"temp_c": 72.0}, ()),
        ("fan", TS, {"rpm": 900}, ()),
    ]
    assert grouped.invalid == []


def test_a_signal_good_and_bad_at_once_keeps_the_good_value() -> None:
    """A value never appears in both `values` and `bad` (the contract forbids it)."""
    grouped = to_contract([Reading.bad("pump", "t", TS, "timeout"), Reading("pump", "t", TS, 1.0)])
    assert dict(grouped.readings[0].values) == {"t": 1.0}
    assert grouped.readings[0].bad == ()


def test_a_reading_the_contract_refuses_is_counted_not_raised() -> None:
    """A reserved signal name makes that reading invalid; the others go on."""
    grouped = to_contract([Reading("pump", "time", TS, 1.0), Reading("fan", "rpm", TS, 2)])
    assert [r.asset for r in grouped.readings] == ["fan"]
    assert grouped.invalid == [("pump", "reserved_name")]


def test_a_batch_is_ready_when_full() -> None:
    """`max_readings` readings make a batch at once; the rest waits."""
    batcher = Batcher(max_readings=3, linger_s=10)
    ready = batcher.add(_r("a", TS, 7), now_s=0.0)
    assert [len(b) for b in ready] == [3, 3]
    assert len(batcher) == 1
    assert batcher.deadline_s == 0.0 + 10


def test_a_batch_is_ready_after_lingering() -> None:
    """An open batch goes out `linger_s` after its first reading, not before."""
    batcher = Batcher(max_readings=100, linger_s=1.0)
    assert batcher.add(_r("a", TS, 2), now_s=5.0) == []
    assert batcher.add(_r("a", TS + 10, 1), now_s=5.5) == []
    assert batcher.due(now_s=5.99) == []
    (batch,) = batcher.due(now_s=6.0)
    assert len(batch) == 3
    assert batcher.deadline_s is None
    assert batcher.drain() == []


def test_zero_linger_sends_every_poll_at_once() -> None:
    """With `linger_s: 0` each add's readings are one batch."""
    batcher = Batcher(max_readings=100, linger_s=0)
    assert [len(b) for b in batcher.add(_r("a", TS, 4), now_s=1.0)] == [4]


def test_the_sink_commits_in_order_and_reports_every_drop_exactly() -> None:
    """Batches reach the outbox in order with contiguous seq; drops are reported as they happen."""
    outbox = MemoryOutbox(gateway="gw1", max_bytes=10_000_000, max_messages=3)
    drops: list[EnqueueResult] = []
    clock = [0.0]

    async def scenario() -> None:
        sink = DeliverySink(
            outbox=outbox,
            topic=TOPIC,
            max_readings=2,
            linger_s=0.05,
            on_dropped=drops.append,
            wall_clock_ms=lambda: TS,
            monotonic_s=lambda: clock[0],
        )
        sink.start()
        for i in range(9):
            sink([Reading("pump", "t", TS + i, float(i))])
        clock[0] = 1.0
        await sink.aclose()
        assert sink.failure is None
        assert sink.enqueued_batches == 5

    run_async(scenario())
    stats = outbox.stats(TS)
    assert stats.enqueued_messages == 5
    assert stats.dropped_messages == sum(d.dropped_messages for d in drops) == 2
    assert stats.dropped_readings == sum(d.dropped_readings for d in drops) == 4
    tx = outbox.begin(10)
    seqs = [m.seq for m in tx.batch]
    assert seqs == [2, 3, 4]
    last = decode_telemetry(tx.batch[-1].payload).batch
    assert [r.ts for r in last.readings] == [TS + 8]


def test_the_sink_ends_with_the_outbox_error() -> None:
    """A closed outbox ends the writer with its error (the runtime then stops the agent)."""
    outbox = MemoryOutbox(gateway="gw1", max_bytes=10_000_000, max_messages=10)
    outbox.close()

    async def scenario() -> BaseException | None:
        sink = DeliverySink(
            outbox=outbox,
            topic=TOPIC,
            max_readings=1,
            linger_s=0,
            on_dropped=lambda _r: None,
            wall_clock_ms=lambda: TS,
            monotonic_s=lambda: 0.0,
        )
        sink.start()
        sink([Reading("pump", "t", TS, 1.0)])
        await asyncio.wait_for(sink.done.wait(), 5)
        return sink.failure

    assert isinstance(run_async(scenario()), ValueError)
