"""The hostile-payload generator: the contract rejects every case with the reason it claims."""

from __future__ import annotations

from collections import Counter

import pytest
from support.hostile import (
    GOOD_GATEWAY,
    HOSTILE_GATEWAY,
    MESSAGE_CATEGORIES,
    READING_CATEGORIES,
    HostileCase,
    generate,
    good_batches,
)

from prognos_contract import (
    MAX_PAYLOAD_BYTES,
    REASONS,
    ContractError,
    decode_telemetry,
    parse_topic,
)

NOW_MS = 1_795_000_000_000  # 2026-11-19
PREFIX = "t/prognos/v1"


@pytest.fixture(scope="module")
def cases() -> list[HostileCase]:
    return generate(10_000, now_ms=NOW_MS, seed=7)


def _verdict(case: HostileCase) -> tuple[str, int | None]:
    """What the contract says of a case: (reason, reading index or None for the message)."""
    try:
        parse_topic(case.topic(PREFIX), prefix=PREFIX)
    except ContractError as exc:
        return exc.reason, None
    try:
        decoded = decode_telemetry(case.payload, content_type=case.content_type, now_ms=NOW_MS)
    except ContractError as exc:
        return exc.reason, None
    assert len(decoded.rejected) == 1, decoded.rejected
    assert decoded.batch.readings == case.good
    return decoded.rejected[0].reason, decoded.rejected[0].index


def test_every_case_is_rejected_with_its_expected_reason_and_level(
    cases: list[HostileCase],
) -> None:
    """The contract agrees with the generator on all 10,000 cases (reason, level, index)."""
    wrong = []
    for case in cases:
        reason, index = _verdict(case)
        if (reason, index) != (case.reason, case.index):
            wrong.append((case.number, case.category, case.reason, case.index, reason, index))
    assert wrong == []


def test_the_cases_cover_every_category_and_the_telemetry_reasons(cases: list[HostileCase]) -> None:
    categories = Counter(case.category for case in cases)
    assert set(categories) == {*MESSAGE_CATEGORIES, *READING_CATEGORIES, "topic_bad_site"}
    assert Counter(case.level for case in cases).keys() == {"message", "reading", "topic"}
    reasons = {case.reason for case in cases}
    # Status, event and topic-kind reasons cannot arise from a telemetry message on its topic.
    assert reasons == set(REASONS) - {"bad_topic", "bad_value"}


def test_some_cases_are_larger_than_the_payload_limit(cases: list[HostileCase]) -> None:
    assert any(len(case.payload) > MAX_PAYLOAD_BYTES for case in cases)
    assert sum(len(case.payload) for case in cases) < 64 * MAX_PAYLOAD_BYTES


def test_the_generator_is_deterministic_for_a_seed() -> None:
    first = generate(300, now_ms=NOW_MS, seed=3)
    assert first == generate(300, now_ms=NOW_MS, seed=3)
    assert first != generate(300, now_ms=NOW_MS, seed=4)


def test_reading_level_cases_carry_good_readings_with_distinct_timestamps(
    cases: list[HostileCase],
) -> None:
    stamps = [(r.asset, r.ts) for case in cases for r in case.good]
    assert stamps
    assert len(stamps) == len(set(stamps))


def test_valid_topic_cases_number_their_seq_one_by_one(cases: list[HostileCase]) -> None:
    readings_level = [case for case in cases if case.level == "reading"]
    for case in readings_level[:50]:
        assert case.gateway == HOSTILE_GATEWAY
        assert decode_telemetry(case.payload, now_ms=NOW_MS).batch.seq == case.number + 1


def test_good_batches_decode_whole_and_count_up() -> None:
    batches = good_batches(20, now_ms=NOW_MS, readings_per_batch=7)
    for seq, batch in enumerate(batches, start=1):
        decoded = decode_telemetry(batch.payload, now_ms=NOW_MS)
        assert decoded.rejected == ()
        assert decoded.batch.gateway == GOOD_GATEWAY
        assert decoded.batch.seq == seq
        assert decoded.batch.readings == batch.readings
    stamps = [r.ts for batch in batches for r in batch.readings]
    assert len(set(stamps)) == 140
