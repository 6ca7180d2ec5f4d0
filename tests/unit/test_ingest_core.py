"""The ingester's pure core: classification, field types, dedupe window, batching, gaps."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import prognos_contract as pc
from cloud.ingest import (
    Batcher,
    Classifier,
    FieldTypes,
    Outcome,
    SeqWindow,
    is_epoch,
    scan_gaps,
)

PREFIX = "prognos/v1"
TOPIC = f"{PREFIX}/plant1/gw-1/telemetry"
NOW = 1_763_805_600_000


class _Registry:
    def __init__(self, profiles: dict[str, str]) -> None:
        self.profiles = profiles

    def get(self, asset_id: str) -> object | None:
        profile = self.profiles.get(asset_id)
        return None if profile is None else type("A", (), {"profile": profile})()


def _classifier(registry: object | None = None) -> Classifier:
    return Classifier(
        prefix=PREFIX,
        ingester="ing-1",
        types=FieldTypes(),
        seen=SeqWindow(100),
        registry=registry,  # type: ignore[arg-type]
    )


def _payload(seq: int, readings: list[dict[str, object]]) -> bytes:
    return json.dumps(
        {"schema": "prognos.telemetry.v1", "gateway": "gw-1", "seq": seq, "readings": readings}
    ).encode()


def test_good_readings_become_points_with_tags_and_ns_time() -> None:
    """A reading is one `telemetry` point tagged site, gateway, asset and model."""
    c = _classifier(_Registry({"pump-7": "aquaflo_cpv150_2.x"}))
    out = c.classify(
        TOPIC,
        _payload(5, [{"asset": "pump-7", "ts": NOW, "values": {"t": 1.5}, "bad": ["p"]}]),
        content_type=None,
        now_ms=NOW,
    )
    assert not out.rejects
    assert out.bad_signals == 1
    assert out.lines[0] == (
        "telemetry,asset=pump-7,gateway=gw-1,model=aquaflo_cpv150_2.x,site=plant1 "
        f"t=1.5 {NOW * 1_000_000}"
    )
    assert out.lines[1].startswith("ingest_batches,gateway=gw-1,site=plant1 ")
    assert "seq=5i" in out.lines[1]
    assert out.readings == [0, None]


def test_unknown_asset_is_kept_and_flagged() -> None:
    """Without a registry entry the reading is kept with model "unknown" and reported."""
    out = _classifier().classify(
        TOPIC, _payload(1, [{"asset": "x-1", "ts": NOW, "values": {"t": 1}}]), content_type=None,
        now_ms=NOW,
    )  # fmt: skip
    assert ",model=unknown," in out.lines[0]
    assert out.unknown_assets == ["x-1"]


def test_one_bad_reading_does_not_reject_the_good_ones() -> None:
    """A bad reading is rejected with its reason and path; its neighbours are written."""
    out = _classifier().classify(
        TOPIC,
        _payload(
            1,
            [
                {"asset": "a", "ts": NOW, "values": {"t": 1.0}},
                {"asset": "a", "ts": NOW + 10**9, "values": {"t": 2.0}},  # far future
                {"asset": "a", "ts": NOW + 1, "values": {"t": 3.0}},
            ],
        ),
        content_type=None,
        now_ms=NOW,
    )
    assert [r.index for r in out.rejects] == [1]
    assert out.rejects[0].reason == "ts_in_future"
    assert out.readings == [0, 2, None]
    assert not out.whole


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b"\xff\xfe", "bad_encoding"),
        (TOPIC, b'{"schema": "prognos.telemetry.v1", "gateway": NaN}', "non_finite"),
        (TOPIC, b"[]", "wrong_type"),
        (TOPIC, b"x" * (pc.MAX_PAYLOAD_BYTES + 1), "too_large"),
        ("elsewhere/a/b", b"{}", "bad_topic"),
        (f"{PREFIX}/plant1/gw-1/cmd-result/restart", b"{}", "unknown_topic"),
        (f"{PREFIX}/plant1/gw-1/health", b"{}", "missing_field"),
        (f"{PREFIX}/plant1/gw-1/status", b"", "invalid_json"),
    ],
)
def test_malformed_messages_are_rejected_whole(topic: str, payload: bytes, reason: str) -> None:
    """A message that breaks the contract as a whole is one reject and no points."""
    out = _classifier().classify(topic, payload, content_type=None, now_ms=NOW)
    assert out.whole
    assert not out.lines
    assert [r.reason for r in out.rejects] == [reason]


def test_field_type_conflict_is_one_rejected_reading() -> None:
    """The first type of a signal holds; a reading sending another is rejected, naming both."""
    c = _classifier()
    out = c.classify(
        TOPIC,
        _payload(
            1,
            [
                {"asset": "a", "ts": NOW, "values": {"t": 1.5, "mode": "auto"}},
                {"asset": "a", "ts": NOW + 1, "values": {"t": 2}},
                {"asset": "a", "ts": NOW + 2, "values": {"t": 2.5, "mode": 3}},
            ],
        ),
        content_type=None,
        now_ms=NOW,
    )
    assert [r.reason for r in out.rejects] == ["field_type_conflict"]
    assert out.rejects[0].index == 2
    assert "'mode' is stored as string, this reading sends integer" in out.rejects[0].message
    assert " t=2.0 " in out.lines[1]


def test_types_seeded_from_the_server_win() -> None:
    """A type read from SHOW FIELD KEYS rejects a reading before anything is sent."""
    types = FieldTypes()
    types.seed("telemetry", {"t": "string"})
    fields, conflict = types.coerce("telemetry", {"t": 1.5})
    assert fields == {}
    assert conflict == ("t", "string", "float")
    fields, conflict = types.coerce("telemetry", {"u": True})
    assert conflict is None
    assert types.get("telemetry", "u") == "boolean"


def test_integer_too_large_for_an_exact_float_conflicts() -> None:
    """An integer that a float cannot hold exactly is a conflict, not a silent rounding."""
    types = FieldTypes()
    types.seed("telemetry", {"t": "float"})
    _, conflict = types.coerce("telemetry", {"t": 2**60 + 1})
    assert conflict == ("t", "float", "integer")


def test_a_stored_seq_is_a_duplicate() -> None:
    """A (gateway, seq) in the window, or already in the batch, gives no points."""
    c = _classifier()
    payload = _payload(9, [{"asset": "a", "ts": NOW, "values": {"t": 1.0}}])
    assert not c.classify(TOPIC, payload, content_type=None, now_ms=NOW).duplicate
    assert c.classify(TOPIC, payload, content_type=None, now_ms=NOW).duplicate  # same batch
    c.pending.clear()
    assert not c.classify(TOPIC, payload, content_type=None, now_ms=NOW).duplicate
    c.pending.clear()
    c.seen.add([("gw-1", 9)])
    out = c.classify(TOPIC, payload, content_type=None, now_ms=NOW)
    assert out.duplicate
    assert not out.lines


def test_seq_window_forgets_the_oldest() -> None:
    """The dedupe window is bounded and returns what it forgot (to delete it on disk)."""
    w = SeqWindow(2)
    assert w.add([("g", 1), ("g", 2)]) == []
    assert w.add([("g", 3)]) == [("g", 1)]
    assert ("g", 1) not in w
    assert ("g", 3) in w
    assert SeqWindow(0).add([("g", 1)]) == []


def test_status_and_events_become_points() -> None:
    """Status becomes a `gateway_status` point; an event an `edge_events` point."""
    c = _classifier()
    status = pc.encode_status(pc.Status(state="offline", ts=NOW, agent_version="0.1.0"))
    out = c.classify(f"{PREFIX}/plant1/gw-1/status", status, content_type=None, now_ms=NOW)
    assert out.status is not None
    assert "online=false" in out.lines[0]
    event = pc.encode_event(
        pc.Event(gateway="gw-1", ts=NOW, kind="device_unreachable", asset="a", detail={"n": 2})
    )
    out = c.classify(f"{PREFIX}/plant1/gw-1/events", event, content_type=None, now_ms=NOW)
    assert out.lines[0].startswith("edge_events,asset=a,gateway=gw-1,kind=device_unreachable")
    assert " count=1i,detail_n=2i " in out.lines[0]


def test_agent_health_becomes_an_agent_health_point_of_floats() -> None:
    """Every metric a float field (0 now, 2.5 later: one type); no metric: dead-lettered."""
    c = _classifier()
    topic = f"{PREFIX}/plant1/gw-1/health"
    health = pc.encode_health(pc.Health(ts=NOW, metrics={"outbox_depth": 12, "cpu_percent": 0}))
    out = c.classify(topic, health, content_type=None, now_ms=NOW)
    assert (out.kind, out.whole, out.rejects) == ("health", False, [])
    assert out.lines == [
        f"agent_health,gateway=gw-1,site=plant1 outbox_depth=12.0,cpu_percent=0.0 {NOW * 1_000_000}"
    ]
    empty = c.classify(topic, json.dumps({"ts": NOW}).encode(), content_type=None, now_ms=NOW)
    assert empty.whole
    assert [r.reason for r in empty.rejects] == ["missing_field"]
    bad = c.classify(topic, b'{"ts": 1, "x": "a"}', content_type=None, now_ms=NOW)
    assert bad.whole
    assert bad.lines == []


# ---------------------------------------------------------------- batching


def test_batch_is_due_by_size() -> None:
    """A batch is due as soon as it holds max_points."""
    b = Batcher(max_points=10, max_wait_ms=200)
    assert not b.due(0)
    b.add(6, now_ms=0)
    assert not b.due(1)
    b.add(4, now_ms=2)
    assert b.due(2)


def test_batch_is_due_by_time_from_its_first_message() -> None:
    """A batch is due max_wait_ms after its first message, whatever came later."""
    b = Batcher(max_points=10, max_wait_ms=200)
    b.add(1, now_ms=1000)
    b.add(1, now_ms=1150)
    assert b.wait_ms(1150) == 50
    assert not b.due(1199)
    assert b.due(1200)
    b.reset()
    assert b.wait_ms(5000) is None
    assert not b.due(5000)


def test_a_message_without_points_still_makes_a_batch() -> None:
    """A duplicate or dead-lettered message (no points) is flushed too, so it gets its ack."""
    b = Batcher(max_points=10, max_wait_ms=200)
    b.add(0, now_ms=0)
    assert b.due(200)


# ---------------------------------------------------------------- gaps

GRACE = 60_000


def _rows(
    seqs: list[int], stored: int = NOW, ts_min: int | None = None
) -> list[tuple[int, int, int | None]]:
    return [(s, stored, ts_min) for s in seqs]


def test_contiguous_seqs_have_no_gap() -> None:
    """No finding for 1..5 in any order, duplicates included."""
    expected, found = scan_gaps(
        None, _rows([3, 1, 2, 5, 4, 2]), now_ms=NOW + GRACE, grace_ms=GRACE, epoch_jump_min=10**6
    )
    assert expected == 6
    assert found == []


def test_a_gap_is_reported_once_after_the_grace_period() -> None:
    """A missing seq is a gap only when a later one was stored grace_ms ago; then once."""
    rows = _rows([1, 2, 5, 6])
    expected, found = scan_gaps(None, rows, now_ms=NOW + 10, grace_ms=GRACE, epoch_jump_min=10**6)
    assert found == []
    assert expected == 3
    expected, found = scan_gaps(
        expected, rows, now_ms=NOW + GRACE, grace_ms=GRACE, epoch_jump_min=10**6
    )
    assert [(f.kind, f.first, f.last, f.missing) for f in found] == [("gap", 3, 4, 2)]
    assert expected == 7
    again, found = scan_gaps(
        expected, rows, now_ms=NOW + 2 * GRACE, grace_ms=GRACE, epoch_jump_min=10**6
    )
    assert (again, found) == (7, [])


def test_a_late_seq_closes_the_gap_before_it_is_reported() -> None:
    """A seq redelivered late (another ingester, a restart) within the grace is no gap."""
    expected, _ = scan_gaps(
        None, _rows([1, 2, 4]), now_ms=NOW, grace_ms=GRACE, epoch_jump_min=10**6
    )
    expected, found = scan_gaps(
        expected, _rows([3, 4]), now_ms=NOW + GRACE, grace_ms=GRACE, epoch_jump_min=10**6
    )
    assert found == []
    assert expected == 5


def test_a_new_outbox_epoch_is_not_a_gap_of_millions() -> None:
    """A new outbox numbers from its creation time in ms: a jump, reported as an epoch."""
    new_seq = NOW - 5_000
    rows = [*_rows([7, 8]), (new_seq, NOW, NOW), (new_seq + 1, NOW, NOW)]
    expected, found = scan_gaps(None, rows, now_ms=NOW, grace_ms=GRACE, epoch_jump_min=10**6)
    assert [(f.kind, f.first, f.last) for f in found] == [("outbox_epoch", 9, new_seq - 1)]
    assert expected == new_seq + 2


def test_epoch_rule() -> None:
    """A big jump is an epoch; a smaller one too if the seq looks like the readings' time."""
    assert is_epoch(10, 10 + 10**6, None, epoch_jump_min=10**6)
    assert not is_epoch(10, 500, None, epoch_jump_min=10**6)
    assert is_epoch(NOW - 50_000, NOW - 10_000, NOW, epoch_jump_min=10**9)
    assert not is_epoch(NOW - 50_000, NOW - 10_000, NOW + 3 * 86_400_000, epoch_jump_min=10**9)


@given(st.sets(st.integers(min_value=0, max_value=200), min_size=1))
def test_gaps_account_for_every_missing_seq(seqs: set[int]) -> None:
    """Once all is old enough, the gaps found are exactly the seqs missing between min and max."""
    expected, found = scan_gaps(
        None, _rows(sorted(seqs)), now_ms=NOW + GRACE, grace_ms=GRACE, epoch_jump_min=10**6
    )
    missing = {s for f in found for s in range(f.first, f.last + 1)}
    assert missing == set(range(min(seqs), max(seqs) + 1)) - seqs
    assert expected == max(seqs) + 1


def test_the_real_registry_tags_readings_with_the_profile() -> None:
    """With cloud.registry's example file, a registered asset carries its firmware profile."""
    from pathlib import Path  # noqa: PLC0415

    from cloud.registry import load_registry  # noqa: PLC0415

    registry = load_registry(Path(__file__).parents[2] / "config" / "assets.example.yaml")
    asset = next(iter(registry))
    c = _classifier(registry)
    out = c.classify(
        TOPIC,
        _payload(1, [{"asset": asset.asset_id, "ts": NOW, "values": {"t": 1.0}}]),
        content_type=None,
        now_ms=NOW,
    )
    assert f",model={asset.profile}," in out.lines[0]
    assert out.unknown_assets == []


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pump-7", "x-1", "x-2", "fan-3"]),
            st.integers(min_value=-5, max_value=5),
            st.sampled_from([{"t": 1.5, "n": 2}, {"t": 2.5, "n": -3}, {"t": 0.25}]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_column_path_makes_what_the_contract_path_makes(
    rows: list[tuple[str, int, dict[str, object]]],
) -> None:
    """Plain readings (formatted column by column) give the slow path's lines, in order."""
    registry = _Registry({"pump-7": "aquaflo_cpv150_2.x", "fan-3": "fan 1.0"})
    readings = [{"asset": a, "ts": NOW + dt, "values": v} for a, dt, v in rows]
    fast, slow = _classifier(registry), _classifier(registry)
    for seq in (1, 2, 3):  # the loop first; then formats, then known series keys
        payload = _payload(seq, readings)
        got = fast.classify(TOPIC, payload, content_type=None, now_ms=NOW)
        expected = Outcome(kind="telemetry", site="plant1", gateway="gw-1")
        slow._telemetry_slow(expected, payload, None, NOW)  # the contract's decoder
        assert got.lines == expected.lines
        assert got.readings == expected.readings
        assert got.times_ns == expected.times_ns
        assert got.unknown_assets == expected.unknown_assets
        assert (got.rejects, got.bad_signals) == ([], 0)
