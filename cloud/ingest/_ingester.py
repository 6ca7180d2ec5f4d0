"""The ingester's I/O shell: paho in, InfluxDB out, acknowledgement only after InfluxDB accepted.

Theory of operation
-------------------
Three threads. paho's network thread (``loop_start``) receives messages on the shared telemetry
and events subscriptions and the plain status subscription and puts them on a queue; it never
blocks on InfluxDB. The classifier thread takes them off, classifies them (`_core.Classifier`) and
batches them (`_core.Batcher`); a due batch goes to the flusher thread (at most one waiting, so
classifying the next batch overlaps writing this one). The flusher starts its write (one
`/write`, `_writer.BatchWriter`, retried until accepted) on a small pool, so up to
`_WRITES_IN_FLIGHT` batches are at InfluxDB at once and it never idles while this process
commits and acknowledges; as each write ends, in the order the batches were made, the flusher
commits one SQLite transaction (dead letters and stored seqs), then sends a PUBACK per message.
The flusher and its pool own every InfluxDB call after start (writes, the gap scan, type
refreshes).

Rules:

1. A message is acknowledged only after every point of it was accepted by InfluxDB or refused
   for good and dead-lettered durably. A crash before the PUBACK means redelivery: writing the
   same points again is harmless (same series and time).
2. Back-pressure is MQTT 5 flow control: the CONNECT says Receive Maximum (default 5000); while
   InfluxDB does not accept, nothing is acknowledged, so the broker stops sending at that many
   messages in flight and queues the rest in the persistent session. The in-process queue is
   therefore bounded by Receive Maximum.
3. A PUBACK goes only to the connection a message came on: after a reconnect the broker resends
   the unacknowledged ones (same session) and those are acknowledged instead. Acknowledging an
   old packet id on a new connection could acknowledge another message.
4. The persistent session: a fixed client id, ``clean_start=False``, a Session Expiry Interval.
5. Status is a plain subscription (retained messages are not sent to shared subscriptions);
   every process sees every status and writes the same `gateway_status` points (idempotent).
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

import prognos_contract as pc
from cloud.ingest._config import IngestConfig
from cloud.ingest._core import (
    BATCHES,
    NS_PER_MS,
    TELEMETRY,
    AssetLookup,
    Batcher,
    Classifier,
    FieldTypes,
    Outcome,
    Reject,
    SeqWindow,
    scan_gaps,
)
from cloud.ingest._metrics import (
    LAG_BUCKETS_S,
    LATENCY_BUCKETS_S,
    Metrics,
    MetricsHttpServer,
)
from cloud.ingest._state import DeadLetter, StateStore, encode_deadletter
from cloud.ingest._writer import Abandoned, BatchWriter
from cloud.store import InfluxAuth, InfluxClient, InfluxError, Point, quote_ident

_log = structlog.get_logger("cloud.ingest")

MAX_ASSET_LABELS = 100
"""Distinct `asset` labels of `unknown_asset_readings_total`; more are counted as `_other`."""
_IDLE_WAIT_S = 0.25
_WRITES_IN_FLIGHT = 2  # batches being written at once; acknowledged in order
_LAST_SCAN_KEY = "__last_scan__"  # not a gateway id (ID_PATTERN has no "_" first)
_FIRST_SCAN_LOOKBACK_MS = 3_600_000
_SCAN_OVERLAP_MS = 60_000


@dataclasses.dataclass(slots=True)
class _Received:
    mid: int
    qos: int
    generation: int
    topic: str
    payload: bytes
    content_type: str | None
    received_ms: int


@dataclasses.dataclass(slots=True)
class _Pending:
    msg: _Received
    outcome: Outcome


@dataclasses.dataclass(slots=True)
class _Write:
    pending: list[_Pending]
    first_ms: int | None
    lines: list[str]
    starts: list[int]
    done: Future[dict[int, tuple[str, str]]]  # the dropped lines, as `BatchWriter.write`


def influx_client(config: IngestConfig) -> InfluxClient:
    """The InfluxDB client the configuration describes."""
    section = config.influx
    auth: InfluxAuth | None = None
    if section.token is not None:
        auth = InfluxAuth.token(section.token.get_secret_value())
    elif section.username:
        password = section.password.get_secret_value() if section.password else ""
        auth = InfluxAuth.basic(section.username, password)
    return InfluxClient(
        url=section.url,
        database=section.database,
        auth=auth,
        timeout_s=section.timeout_s,
        gzip=section.gzip == "yes",
        retention_policy=section.retention_policy,
    )


class Ingester:
    """One ingester process's work: subscribe, validate, write, acknowledge.

    Call `start()` once, then `stop()` once (from any thread); `wait()` blocks until stopped.

    Args:
        config: The configuration.
        registry: The asset registry (anything with `get(asset_id)`), or None: every asset
            is unknown but kept (`model` tag "unknown").
        clock_ms: Wall-clock epoch milliseconds (tests may pin it).
        influx: An InfluxDB client to use instead of building one from `config.influx`.
    """

    def __init__(
        self,
        config: IngestConfig,
        *,
        registry: AssetLookup | None = None,
        clock_ms: Callable[[], int] | None = None,
        influx: InfluxClient | None = None,
    ) -> None:
        self.config = config
        self.metrics = Metrics()
        self._declare_metrics()
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._influx = influx or influx_client(config)
        self._state = StateStore(config.state_dir / "ingest.db")
        self._types = FieldTypes()
        self._seen = SeqWindow(config.dedupe.window)
        self._seen.add(self._state.recent_seen(config.dedupe.window))
        self._classifier = Classifier(
            prefix=config.mqtt.topic_prefix,
            ingester=config.mqtt.client_id,
            types=self._types,
            seen=self._seen,
            registry=registry,
            max_future_skew_ms=config.max_future_skew_ms,
        )
        self._batcher = Batcher(config.batch.max_points, config.batch.max_wait_ms)
        self._queue: queue.Queue[_Received] = queue.Queue(
            maxsize=config.mqtt.receive_maximum * 2 + 1000
        )
        self._pending: list[_Pending] = []
        self._writing = 0  # messages handed to the flusher, not yet acknowledged
        self._writing_lock = threading.Lock()
        self._stopping = threading.Event()
        self._give_up = threading.Event()
        self._stopped = threading.Event()
        self._ack_lock = threading.Lock()
        self._generation = 0
        self._connected = threading.Event()
        self._writer = BatchWriter(
            influx=self._influx,
            database=config.influx.database,
            metrics=self.metrics,
            backoff_min_s=config.retry.backoff_min_s,
            backoff_max_s=config.retry.backoff_max_s,
            give_up=self._give_up,
            create_database=config.influx.create_database == "yes",
            on_refused=self._refresh_types,
        )
        self._gateway_state: dict[str, tuple[str, int]] = {}
        self._unknown_assets: set[str] = set()
        self._gap_positions = self._state.gap_positions()
        self._next_scan_s = time.monotonic() + config.gaps.scan_interval_s
        self._client = self._mqtt_client()
        self._thread = threading.Thread(target=self._run, name="ingest.classify", daemon=True)
        self._batches: queue.Queue[tuple[list[_Pending], int | None] | None] = queue.Queue(1)
        self._flusher = threading.Thread(target=self._run_flusher, name="ingest.flush", daemon=True)
        self._failed = threading.Event()
        self._metrics_server: MetricsHttpServer | None = None
        self.error: BaseException | None = None
        """What stopped the writer thread, if it died of an unexpected exception."""

    # ------------------------------------------------------------ lifecycle

    @property
    def metrics_port(self) -> int | None:
        """The bound port of `/metrics`, once started (None without metrics)."""
        return self._metrics_server.port if self._metrics_server else None

    def start(self, *, connect_timeout_s: float = 30.0) -> None:
        """Prepare InfluxDB (best effort), serve metrics, connect and subscribe, start writing.

        Raises:
            TimeoutError: The broker did not accept the connection in time.
        """
        self._prepare_influx()
        address = self.config.metrics_address
        if address is not None:
            self._metrics_server = MetricsHttpServer(
                self.metrics.render, host=address[0], port=address[1]
            )
            self._metrics_server.start()
        mqtt_cfg = self.config.mqtt
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = mqtt_cfg.session_expiry_s
        props.ReceiveMaximum = mqtt_cfg.receive_maximum
        self._client.connect_async(
            mqtt_cfg.host,
            mqtt_cfg.port,
            mqtt_cfg.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()
        self._flusher.start()
        self._thread.start()
        if not self._connected.wait(connect_timeout_s):
            self.stop(timeout_s=1)
            raise TimeoutError(
                f"the broker {mqtt_cfg.host}:{mqtt_cfg.port} accepted no connection in "
                f"{connect_timeout_s} s"
            )
        _log.info(
            "ingest_started",
            client_id=mqtt_cfg.client_id,
            share_group=mqtt_cfg.share_group,
            prefix=mqtt_cfg.topic_prefix,
            database=self.config.influx.database,
            metrics_port=self.metrics_port,
        )

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Flush and acknowledge what was received, then disconnect; idempotent.

        If InfluxDB does not accept within `timeout_s`, the rest stays unacknowledged (the
        broker redelivers it to this client id's session).
        """
        self._stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in (self._thread, self._flusher):
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive() or self._flusher.is_alive():
            self._give_up.set()
            self._thread.join()
            self._flusher.join()
        self._client.disconnect()
        self._client.loop_stop()
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None
        if not self._stopped.is_set():
            self._state.close()
            self._influx.close()
            self._stopped.set()
            unacked = len(self._pending) + self._queue.qsize() + self._writing
            _log.info("ingest_stopped", unacknowledged=unacked)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the writer thread ends (after `stop()` or a fatal error)."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # ------------------------------------------------------------ MQTT (paho's thread)

    def _mqtt_client(self) -> mqtt.Client:
        cfg = self.config.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if cfg.username is not None:
            client.username_pw_set(
                cfg.username, cfg.password.get_secret_value() if cfg.password else None
            )
        if cfg.tls is not None:
            from edge_agent._mqtt_link import tls_context  # noqa: PLC0415 - TLS only when used

            client.tls_set_context(tls_context(cfg.tls))
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            _log.error("mqtt_refused", reason=str(reason_code))
            return
        cfg = self.config.mqtt
        group, prefix = cfg.share_group, cfg.topic_prefix
        # Every time, even with a resumed session: a broker that lost it must not leave us deaf.
        client.subscribe(
            [
                (pc.shared_subscription(group, "telemetry", prefix=prefix), 1),
                (pc.shared_subscription(group, "events", prefix=prefix), 1),
                (pc.shared_subscription(group, "health", prefix=prefix), 0),
                (pc.topic_filter("status", prefix=prefix), 1),
            ]
        )
        self.metrics.set("mqtt_connected", 1)
        _log.info("mqtt_connected", session_present=flags.session_present)
        self._connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self._ack_lock:
            self._generation += 1
        self.metrics.set("mqtt_connected", 0)
        if not self._stopping.is_set():
            _log.warning("mqtt_disconnected", reason=str(reason_code))

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        content_type = getattr(props, "ContentType", None)
        self._queue.put(
            _Received(
                mid=msg.mid,
                qos=msg.qos,
                generation=self._generation,
                topic=msg.topic,
                payload=bytes(msg.payload),
                content_type=str(content_type) if content_type is not None else None,
                received_ms=self._clock_ms(),
            )
        )
        self.metrics.inc("messages_received_total")

    # ------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self.error = exc
            _log.exception("ingest_classifier_failed")
            raise
        finally:
            self._put_batch(None)

    def _run_flusher(self) -> None:
        writes: deque[_Write] = deque()  # in flight, oldest first
        pool = ThreadPoolExecutor(_WRITES_IN_FLIGHT, thread_name_prefix="ingest.write")
        ended = False
        try:
            while writes or not ended:
                if writes and (ended or len(writes) >= _WRITES_IN_FLIGHT or writes[0].done.done()):
                    self._finish(writes.popleft())  # in order: acknowledged in batch order
                    continue
                try:
                    batch = self._batches.get(timeout=_IDLE_WAIT_S)
                except queue.Empty:
                    due = self.config.gaps.scan == "yes" and time.monotonic() >= self._next_scan_s
                    if due and not writes:
                        self._scan_gaps()
                    continue
                if batch is None:
                    ended = True
                elif batch[0]:  # an empty batch is a write's completion waking this thread
                    writes.append(self._start_write(pool, *batch))
        except Abandoned:
            _log.warning("ingest_abandoned_batch", messages=self._writing)
        except BaseException as exc:
            self.error = exc
            _log.exception("ingest_flusher_failed")
            raise
        finally:
            self._failed.set()
            if writes:
                self._give_up.set()  # what is still being written ends unacknowledged
            pool.shutdown(wait=False, cancel_futures=True)

    def _count_writing(self, delta: int) -> None:
        with self._writing_lock:
            self._writing += delta

    def _put_batch(self, batch: tuple[list[_Pending], int | None] | None) -> bool:
        """Hand a batch (None: the end) to the flusher; False if it is gone or giving up."""
        while not self._give_up.is_set():
            if self._failed.is_set():
                return False
            try:
                self._batches.put(batch, timeout=_IDLE_WAIT_S)
            except queue.Full:
                continue
            return True
        return False

    def _loop(self) -> None:
        while True:
            now = self._clock_ms()
            wait_ms = self._batcher.wait_ms(now)
            timeout = _IDLE_WAIT_S if wait_ms is None else min(wait_ms / 1000, _IDLE_WAIT_S)
            try:
                first = self._queue.get(timeout=max(timeout, 0.0)) if timeout > 0 else None
            except queue.Empty:
                first = None
            if first is not None:
                self._take(first)
                while self._batcher.points < self._batcher.max_points:
                    try:
                        self._take(self._queue.get_nowait())
                    except queue.Empty:
                        break
            now = self._clock_ms()
            stopping = self._stopping.is_set()
            if self._batcher.due(now) or (stopping and self._pending):
                pending, self._pending = self._pending, []
                self._count_writing(len(pending))
                first_ms = self._batcher.first_ms
                self._batcher.reset()
                if not self._put_batch((pending, first_ms)):
                    return  # the flusher gave up or failed: nothing more is acknowledged
            if stopping and not self._pending and self._queue.empty():
                return
            if self._failed.is_set():
                return

    def _take(self, msg: _Received) -> None:
        outcome = self._classifier.classify(
            msg.topic, msg.payload, content_type=msg.content_type, now_ms=msg.received_ms
        )
        self._pending.append(_Pending(msg, outcome))
        self._batcher.add(len(outcome.lines), msg.received_ms)
        if outcome.status is not None and outcome.gateway is not None:
            self._apply_status(outcome.gateway, outcome.status)

    def _start_write(
        self, pool: ThreadPoolExecutor, pending: list[_Pending], first_ms: int | None
    ) -> _Write:
        """Send a batch's points to InfluxDB on a pool thread (the next batch's may overlap)."""
        lines: list[str] = []
        starts: list[int] = []  # where each message's lines begin in `lines`
        for item in pending:
            starts.append(len(lines))
            lines.extend(item.outcome.lines)
        done = pool.submit(self._writer.write, lines)
        done.add_done_callback(self._wake_flusher)
        return _Write(pending, first_ms, lines, starts, done)

    def _wake_flusher(self, _done: Future[dict[int, tuple[str, str]]]) -> None:
        with contextlib.suppress(queue.Full):  # full: the flusher wakes anyway
            self._batches.put_nowait(([], None))

    def _finish(self, write: _Write) -> None:
        """Once InfluxDB accepted a batch: dead letters and seqs to SQLite, then the PUBACKs."""
        pending, lines, starts = write.pending, write.lines, write.starts
        dropped = write.done.result()  # Abandoned: nothing of it is acknowledged
        stored_ms = self._clock_ms()
        for index, (reason, message) in dropped.items():
            n = bisect.bisect_right(starts, index) - 1
            outcome = pending[n].outcome
            reading = outcome.readings[index - starts[n]]
            if reading is None:
                self.metrics.inc("bookkeeping_dropped_total", labels={"reason": reason})
                _log.warning(
                    "bookkeeping_point_dropped",
                    measurement=lines[index].partition(",")[0],
                    reason=reason,
                    message=message,
                )
                continue
            path = f"/readings/{reading}"
            outcome.rejects.append(Reject(reason, path, message, reading))
        stored = self._commit(pending, stored_ms)
        # Into the dedupe window (in _commit) before out of the in-flight set: never in neither.
        self._classifier.pending.difference_update(stored)
        self._ack(pending)
        self._count_writing(-len(pending))
        self._account(pending, len(lines), dropped, stored_ms, write.first_ms)

    def _commit(self, pending: list[_Pending], stored_ms: int) -> list[tuple[str, int]]:
        limit = self.config.deadletter.max_payload_bytes
        letters = [
            DeadLetter(
                ts_ms=stored_ms,
                topic=item.msg.topic,
                gateway=item.outcome.gateway,
                seq=item.outcome.seq,
                whole=item.outcome.whole,
                rejects=tuple(item.outcome.rejects),
                payload=item.msg.payload[:limit],
                payload_bytes=len(item.msg.payload),
            )
            for item in pending
            if item.outcome.rejects
        ]
        seen: list[tuple[str, int]] = []
        for item in pending:
            out = item.outcome
            stored = out.kind == "telemetry" and not out.whole and not out.duplicate
            if stored and out.gateway is not None and out.seq is not None:
                seen.append((out.gateway, out.seq))
        forget = self._seen.add(seen)
        self._state.commit_flush(letters=letters, seen=seen, forget=forget)
        topic = self.config.deadletter_topic
        for letter in letters:
            for reject in letter.rejects:
                self.metrics.inc("rejects_total", labels={"reason": reject.reason})
            if topic is not None:
                with contextlib.suppress(ValueError, RuntimeError):
                    self._client.publish(topic, encode_deadletter(letter), qos=1)
        return seen

    def _ack(self, pending: list[_Pending]) -> None:
        skipped = 0
        with self._ack_lock:
            generation = self._generation
            for item in pending:
                if item.msg.generation != generation:
                    skipped += 1
                    continue
                self._client.ack(item.msg.mid, item.msg.qos)
        if skipped:
            self.metrics.inc("acks_skipped_reconnect_total", skipped)

    def _account(
        self,
        pending: list[_Pending],
        total: int,
        dropped: Mapping[int, object],
        stored_ms: int,
        first_ms: int | None,
    ) -> None:
        m = self.metrics
        times: list[int] = []
        if not dropped:
            for item in pending:
                times.extend(item.outcome.times_ns)
        else:
            i = 0
            for item in pending:
                out = item.outcome
                readings = (n for n, r in enumerate(out.readings) if r is not None)
                times.extend(
                    t for n, t in zip(readings, out.times_ns, strict=True) if i + n not in dropped
                )
                i += len(out.lines)
        lags = stored_ms / 1000 - np.asarray(times, dtype=np.float64) / 1e9
        m.inc("points_written_total", len(lags))
        m.inc("points_written_all_total", total - len(dropped))
        m.observe_many("lag_seconds", lags)
        m.inc("flushes_total")
        if first_ms is not None:
            m.observe("batch_latency_seconds", max(0.0, (stored_ms - first_ms) / 1000))
        self._count_messages(pending)

    def _count_messages(self, pending: list[_Pending]) -> None:
        m = self.metrics
        unknown: Counter[str] = Counter()
        for item in pending:
            out = item.outcome
            unknown.update(out.unknown_assets)
            if out.duplicate:
                outcome = "duplicate"
                m.inc("duplicates_total")
            elif out.whole:
                outcome = "deadlettered"
            elif out.rejects:
                outcome = "partial"
            else:
                outcome = "ok"
            m.inc("messages_total", labels={"kind": out.kind, "outcome": outcome})
            m.inc("bad_signals_total", out.bad_signals)
        for asset, readings in unknown.items():
            self._unknown(asset, readings)

    def _unknown(self, asset: str, readings: int) -> None:
        if asset not in self._unknown_assets:
            if len(self._unknown_assets) < MAX_ASSET_LABELS:
                self._unknown_assets.add(asset)
                _log.warning("unknown_asset", asset=asset, note="readings kept, model=unknown")
            else:
                asset = "_other"
        self.metrics.inc("unknown_asset_readings_total", readings, labels={"asset": asset})

    def _apply_status(self, gateway: str, status: pc.Status) -> None:
        previous = self._gateway_state.get(gateway)
        if previous is not None and status.ts < previous[1]:
            return  # an older status (a retained one replayed after a newer one)
        self._gateway_state[gateway] = (status.state, status.ts)
        online = status.state == "online"
        self.metrics.set("gateway_online", 1 if online else 0, labels={"gateway": gateway})
        self.metrics.set(
            "gateways_online", sum(1 for s, _ in self._gateway_state.values() if s == "online")
        )
        if previous is None or previous[0] != status.state:
            _log.info(
                "gateway_online" if online else "gateway_offline",
                gateway=gateway,
                ts=status.ts,
                agent_version=status.agent_version,
            )

    # ------------------------------------------------------------ InfluxDB side jobs

    def _prepare_influx(self) -> None:
        if self.config.influx.create_database == "yes":
            try:
                self._influx.create_database(self.config.influx.database)
            except InfluxError as exc:
                _log.warning("influx_not_ready", error=str(exc), note="writes will retry")
        self._refresh_types()

    def _refresh_types(self) -> None:
        try:
            result = self._influx.query(f"SHOW FIELD KEYS FROM {quote_ident(TELEMETRY)}")
        except InfluxError:
            return
        self._types.seed(
            TELEMETRY, {str(r["fieldKey"]): str(r["fieldType"]) for r in result.rows()}
        )

    def _scan_gaps(self) -> None:
        cfg = self.config.gaps
        self._next_scan_s = time.monotonic() + cfg.scan_interval_s
        now = self._clock_ms()
        # Everything stored since the last scan, and back far enough to see again what was
        # too recent to judge then (stored within the grace period before it).
        last = self._gap_positions.get(_LAST_SCAN_KEY, now - _FIRST_SCAN_LOOKBACK_MS)
        since = last - int(cfg.grace_s * 1000) - _SCAN_OVERLAP_MS
        try:
            result = self._influx.query(
                f"SELECT {quote_ident('seq')}, {quote_ident('ts_min')} FROM "  # noqa: S608 - quoted
                f"{quote_ident(BATCHES)} WHERE time > {since}ms GROUP BY "
                f"{quote_ident('gateway')}, {quote_ident('site')}"
            )
        except InfluxError as exc:
            _log.debug("gap_scan_skipped", error=str(exc))
            return
        self._gap_positions[_LAST_SCAN_KEY] = now
        self._state.set_gap_position(_LAST_SCAN_KEY, now)
        rows: dict[tuple[str, str], list[tuple[int, int, int | None]]] = {}
        for row in result.rows():
            key = (str(row.get("gateway")), str(row.get("site")))
            ts_min = row.get("ts_min")
            if key[0] == _LAST_SCAN_KEY:
                continue
            rows.setdefault(key, []).append(
                (
                    int(str(row["seq"])),
                    int(str(row["time"])),
                    int(str(ts_min)) if ts_min is not None else None,
                )
            )
        findings_points: list[Point] = []
        for (gateway, site), seqs in rows.items():
            expected, findings = scan_gaps(
                self._gap_positions.get(gateway),
                seqs,
                now_ms=now,
                grace_ms=int(cfg.grace_s * 1000),
                epoch_jump_min=cfg.epoch_jump_min,
            )
            if expected is not None and expected != self._gap_positions.get(gateway):
                self._gap_positions[gateway] = expected
                self._state.set_gap_position(gateway, expected)
            for f in findings:
                if f.kind == "gap":
                    self.metrics.inc("seq_gaps_total", labels={"gateway": gateway})
                    self.metrics.inc("seq_missing_total", f.missing, labels={"gateway": gateway})
                    _log.warning(
                        "seq_gap", gateway=gateway, first=f.first, last=f.last, missing=f.missing
                    )
                else:
                    self.metrics.inc("outbox_epochs_total", labels={"gateway": gateway})
                    _log.info("outbox_epoch", gateway=gateway, previous=f.first - 1, new=f.last + 1)
                findings_points.append(
                    Point(
                        "ingest_gaps",
                        {"site": site, "gateway": gateway, "kind": f.kind},
                        {"first": f.first, "last": f.last, "missing": f.missing},
                        f.stored_ms * NS_PER_MS,
                    )
                )
        if findings_points:
            with contextlib.suppress(InfluxError):
                self._influx.write(findings_points, precision="ns")

    def _declare_metrics(self) -> None:
        m = self.metrics
        m.histogram("batch_latency_seconds", LATENCY_BUCKETS_S)
        m.histogram("write_duration_seconds", LATENCY_BUCKETS_S)
        m.histogram("lag_seconds", LAG_BUCKETS_S)
        helps: dict[str, Any] = {
            "messages_received_total": "MQTT messages received",
            "messages_total": "MQTT messages handled, by kind and outcome",
            "points_written_total": "telemetry points InfluxDB accepted",
            "rejects_total": "dead-lettered readings or messages, by reason",
            "duplicates_total": "telemetry messages dropped as duplicates of a stored seq",
            "batch_latency_seconds": "first message of a batch received -> batch stored",
            "lag_seconds": "reading time -> stored",
            "influx_up": "1 while InfluxDB accepts writes",
            "gateways_online": "gateways whose last status is online",
        }
        for name, text in helps.items():
            m.describe(name, text)
        m.set("mqtt_connected", 0)
        m.set("gateways_online", 0)
        m.add_collector(self._collect)

    def _collect(self, m: Metrics) -> None:
        queued = self._queue.qsize()
        m.set("queue_depth", queued)
        m.set("inflight_unacked", queued + len(self._pending) + self._writing)
