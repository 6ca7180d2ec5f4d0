"""Telemetry batches: the payload of ``{prefix}/{site}/{gateway}/telemetry``.

Theory of operation
-------------------
The edge agent builds ``Reading`` and ``TelemetryBatch`` objects, which check themselves on
construction, so ``encode_telemetry`` can only fail when the batch is too large (split it). The
ingester calls ``decode_telemetry`` on every message and gets a ``DecodedBatch``: the batch with its
valid readings, plus one ``RejectedReading`` per reading it had to drop, each with a reason code.

Rules:

1. Batch-level problems raise ``ContractError``, and the whole message is dead-lettered: too large,
   bad gzip, not UTF-8, not strict JSON (including ``NaN``/``Infinity`` literals and duplicate keys,
   wherever they are), not an object, wrong ``schema``, missing or unknown top-level fields, bad
   ``gateway`` or ``seq``, ``readings`` not an array or longer than ``MAX_READINGS_PER_BATCH``.
2. A bad reading never rejects its batch: it is left out of ``batch.readings`` and reported in
   ``rejected``. A bad value or ``bad`` entry rejects its whole reading (never a partial reading),
   as do unknown fields in a reading. ``seq`` stays valid, so the ingester can still acknowledge the
   message, drop duplicates and see gaps.
3. The decoder is at least as strict as ``telemetry.v1.schema.json``: whatever it accepts validates
   against the schema. It is stricter where JSON Schema cannot say it: a name may not be both in
   ``values`` and ``bad``; integers (``ts``, ``seq``, values) must be written without fraction or
   exponent and fit int64; strings must be valid UTF-8 (no lone surrogates); and, when the caller
   passes ``now_ms``, a ``ts`` may be at most ``max_future_skew_ms`` ahead.
4. Unknown fields are rejected at every level (``additionalProperties: false``): an addition to the
   payload is a new schema id, ``prognos.telemetry.v2``, never a silent extension of v1.
"""

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

from prognos_contract import _codec
from prognos_contract._errors import ContractError, Reason, under
from prognos_contract._rules import (
    DEFAULT_MAX_FUTURE_SKEW_MS,
    MAX_READINGS_PER_BATCH,
    MAX_VALUES_PER_READING,
    Value,
    check_count,
    check_fields,
    check_flat_values,
    check_id,
    check_int,
    check_name,
    check_signal_name,
    check_ts,
    check_type,
)

TELEMETRY_SCHEMA_ID = "prognos.telemetry.v1"
"""The ``schema`` field of a telemetry batch of contract v1."""

_BATCH_FIELDS = ("gateway", "seq", "readings")
_READING_FIELDS = ("asset", "ts", "values")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """The signals of one asset, read at one time.

    Construction checks every field and copies ``values`` into a read-only mapping.

    Attributes:
        asset: The asset, matching ``NAME_PATTERN``.
        ts: When the values were read, epoch milliseconds UTC, in ``[TS_MIN_MS, TS_MAX_MS)``.
        values: Signal name to a finite number, a boolean or a string of at most
            ``MAX_STRING_LEN`` characters; names match ``NAME_PATTERN`` and are not reserved.
        bad: Signals whose read failed, each at most once and never also in ``values``.

    Raises:
        ContractError: If any field breaks the contract; ``path`` is relative to the reading.
    """

    asset: str
    ts: int
    values: Mapping[str, Value]
    bad: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.asset, path="/asset", what="asset")
        check_ts(self.ts, path="/ts")
        values = check_flat_values(
            self.values, path="/values", what="values", noun="signal", limit=MAX_VALUES_PER_READING
        )
        object.__setattr__(self, "values", types.MappingProxyType(values))
        object.__setattr__(self, "bad", _check_bad(self.bad, values))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TelemetryBatch:
    """One telemetry message: readings from one gateway, numbered by ``seq``.

    Attributes:
        gateway: The sending gateway, matching ``ID_PATTERN``.
        seq: Rises by one per batch per gateway and survives restarts; in ``[0, MAX_INT]``.
        readings: At most ``MAX_READINGS_PER_BATCH`` readings (a list is copied into a tuple).

    Raises:
        ContractError: If any field breaks the contract.
    """

    gateway: str
    seq: int
    readings: tuple[Reading, ...] = ()

    def __post_init__(self) -> None:
        check_id(self.gateway, path="/gateway", what="gateway")
        check_int(self.seq, path="/seq", what="seq", low=0)
        readings: object = self.readings
        if isinstance(readings, list):
            readings = tuple(readings)
        readings = check_type(readings, tuple, path="/readings", what="readings")
        check_count(readings, MAX_READINGS_PER_BATCH, path="/readings", what="readings")
        for index, reading in enumerate(readings):
            check_type(reading, Reading, path=f"/readings/{index}", what="a reading")
        object.__setattr__(self, "readings", readings)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RejectedReading:
    """A reading the decoder left out of its batch, and why.

    Attributes:
        index: Its position in the payload's ``readings`` array.
        reason: One of ``REASONS``.
        path: JSON pointer to the problem, e.g. ``/readings/3/values/bearing_temp_c``.
        message: What was wrong, quoting the offending value.
    """

    index: int
    reason: Reason
    path: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DecodedBatch:
    """What ``decode_telemetry`` accepted and what it rejected.

    Attributes:
        batch: The batch, holding only the valid readings, in payload order.
        rejected: One entry per rejected reading, in payload order; empty when all were valid.
    """

    batch: TelemetryBatch
    rejected: tuple[RejectedReading, ...] = ()


def encode_telemetry(batch: TelemetryBatch, *, compress: bool = False) -> bytes:
    """Return the payload of a telemetry batch.

    Args:
        batch: A batch (already checked on construction).
        compress: Gzip the JSON; publish it with content type ``CONTENT_TYPE_JSON_GZIP``.

    Returns:
        Compact UTF-8 JSON (``bad`` left out when empty), gzipped if asked, byte-for-byte the same
        for the same batch.

    Raises:
        ContractError: ``too_large`` if the JSON exceeds ``MAX_PAYLOAD_BYTES``: split the batch.
    """
    readings: list[dict[str, Any]] = []
    for reading in batch.readings:
        item: dict[str, Any] = {
            "asset": reading.asset,
            "ts": reading.ts,
            "values": dict(reading.values),
        }
        if reading.bad:
            item["bad"] = list(reading.bad)
        readings.append(item)
    document = {
        "schema": TELEMETRY_SCHEMA_ID,
        "gateway": batch.gateway,
        "seq": batch.seq,
        "readings": readings,
    }
    return _codec.dump(document, compress=compress)


def decode_telemetry(
    payload: bytes,
    *,
    content_type: str | None = None,
    now_ms: int | None = None,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> DecodedBatch:
    """Return the batch in a telemetry payload, keeping its valid readings.

    Args:
        payload: The MQTT payload.
        content_type: The MQTT 5 content type, if the message had one.
        now_ms: The receiver's clock, epoch milliseconds; if given, readings stamped more than
            ``max_future_skew_ms`` after it are rejected (``ts_in_future``).
        max_future_skew_ms: How far ahead of ``now_ms`` a reading may be.

    Returns:
        The batch with the valid readings, and the rejected readings with their reasons.

    Raises:
        ContractError: If the payload as a whole breaks the contract (see the module's rules).
    """
    document = _codec.load(payload, content_type=content_type)
    document = check_type(document, dict, path="", what="a telemetry batch")
    check_fields(document, required=_BATCH_FIELDS, path="", schema_id=TELEMETRY_SCHEMA_ID)
    gateway = check_id(document["gateway"], path="/gateway", what="gateway")
    seq = check_int(document["seq"], path="/seq", what="seq", low=0)
    raw_readings = check_type(document["readings"], list, path="/readings", what="readings")
    check_count(raw_readings, MAX_READINGS_PER_BATCH, path="/readings", what="readings")
    readings: list[Reading] = []
    rejected: list[RejectedReading] = []
    for index, raw in enumerate(raw_readings):
        path = f"/readings/{index}"
        try:
            reading = _reading_from_json(raw)
            check_ts(reading.ts, path="/ts", now_ms=now_ms, max_future_skew_ms=max_future_skew_ms)
        except ContractError as exc:
            error = under(exc, path)
            rejected.append(
                RejectedReading(
                    index=index, reason=error.reason, path=error.path, message=error.message
                )
            )
        else:
            readings.append(reading)
    batch = TelemetryBatch(gateway=gateway, seq=seq, readings=tuple(readings))
    return DecodedBatch(batch=batch, rejected=tuple(rejected))


def _reading_from_json(raw: object) -> Reading:
    item = check_type(raw, dict, path="", what="a reading")
    check_fields(item, required=_READING_FIELDS, optional=("bad",), path="")
    bad = item.get("bad", [])
    bad = check_type(bad, list, path="/bad", what="bad")
    return Reading(asset=item["asset"], ts=item["ts"], values=item["values"], bad=tuple(bad))


def _check_bad(bad: object, values: Mapping[str, Value]) -> tuple[str, ...]:
    if isinstance(bad, list):
        bad = tuple(bad)
    names = check_type(bad, tuple, path="/bad", what="bad")
    check_count(names, MAX_VALUES_PER_READING, path="/bad", what="bad")
    seen: set[str] = set()
    for index, name in enumerate(names):
        path = f"/bad/{index}"
        check_signal_name(name, path=path, what="signal in bad")
        if name in values:
            raise ContractError(
                "value_and_bad", f"signal {name!r} is both in 'values' and in 'bad'", path
            )
        if name in seen:
            raise ContractError("duplicate_name", f"signal {name!r} is twice in 'bad'", path)
        seen.add(name)
    return names
