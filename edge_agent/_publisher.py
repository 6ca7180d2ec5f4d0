"""The edge agent's MQTT publisher: drains the durable outbox to the broker, QoS 1, in order.

Theory of operation
-------------------
One thread, ``prognos-mqtt-publisher``, owns everything that talks to the broker: the paho
client, the one open outbox transaction, the in-flight window and the replay pacer. paho's
callbacks run inside ``client.loop()`` on that same thread, so the hot path takes no lock. Other
threads (the agent's asyncio loop, a health timer) only touch a locked queue (events, health)
and locked counters.

Why a thread and not an asyncio task: paho is a blocking-socket library with its own select
loop, and the outbox is SQLite with fsync. On the agent's event loop either would stall Modbus
polling (a TLS handshake or a connect timeout takes seconds, an fsync on an SD card tens of
milliseconds). A thread keeps poll timing independent of the link, and the link's timing
(keep-alive, pacing, acknowledgements) independent of poll load. paho's own ``loop_start()``
thread is not used: it would add a second thread and locks between callbacks and the pump, and
its built-in reconnect can neither switch protocol version nor pace a replay.

Modules: this one is the policy (what to send, when, what to count and log);
``_mqtt_link`` the mechanism of one connection (a fresh paho client per attempt, MQTT 5 with
``clean_start=False`` and a Session Expiry Interval, the 3.1.1 fallback, TLS);
``_mqtt_flow`` the pure parts (pacing, back-off, packet size); ``_mqtt_stats`` the counters;
``_mqtt_config`` the config section. The outbox, not paho's memory, is the only copy of
unacknowledged telemetry: nothing hides in a client's queue, and a protocol fallback or a
broker that lost the session needs no special case.

While connected, each turn of the loop:

1. If no transaction is open, ``outbox.begin(n)`` with ``n`` the free slots of the window: the
   configured ``max_inflight``, lowered to the broker's Receive Maximum, minus one slot kept for
   status and events, minus what is in flight.
2. Publish the transaction's messages in order (QoS 1, the message's Content Type) while the
   window has room and, during a replay, the pacer allows.
3. ``client.loop()`` waits for acknowledgements: a PUBACK below 0x80 puts the message's index
   in ``tx.accept``; 0x80 or above (0x87 not authorized, 0x97 quota exceeded, ...) in
   ``tx.reject``, counted by reason code and never resent.
4. When every index is accepted or rejected, ``outbox.end(tx)``.

One transaction is open at a time: a window's worth of messages goes out, then the next
``begin`` waits for the last PUBACK of the batch. On loopback that reaches over 80 % of a bare
paho client's QoS 1 rate; a link with a long round trip would gain from keeping several
transactions open (``edge_agent._outbox`` allows it), a change local to ``_fill``.

Rules:

- Never more than the window unacknowledged.
- A message is accepted only after its PUBACK.
- When the connection is lost, the open transaction ends at once with what was acknowledged;
  the rest stays in the outbox, heads the next ``begin`` and is resent in order after the
  reconnect, with a new packet id. The broker may already have had a copy: that duplicate
  carries the same ``seq``, which is how the ingester recognises it. (STYLE.md 7 asks for the
  same packet id and DUP=1; for QoS 1 the broker treats both alike, and a fresh client per
  connection is what lets a 3.1.1 fallback or a lost broker session need no special case.)
- No transaction is open while disconnected, so the outbox may apply its size cap freely.
- Every CONNECT registers the Last Will, a retained ``status`` offline; every CONNACK is
  followed by the birth message, a retained ``status`` online; ``stop()`` publishes ``offline``
  and waits for its PUBACK before a normal DISCONNECT, which makes the broker drop the Will.
- After a (re)connect with more than one window in the outbox, messages go at most at
  ``replay_rate_msgs_s`` and ``replay_rate_bytes_s`` until the outbox has caught up.
- A message larger than the broker's Maximum Packet Size is rejected locally (0x95): sending
  it would make the broker drop the connection, again and again.
- Events (QoS 1, not retained) and health (QoS 0) bypass the outbox: an event waits in a
  bounded memory queue (1,000, oldest dropped and counted; the queue left at ``stop()`` is
  counted as dropped too) and is resent after a reconnect; health is a snapshot, skipped and
  counted while offline. Events, which matter more than health, may move into the outbox later.
- Logs are state changes only: connected, disconnected (with the reason), reconnected, a
  protocol fallback, a replay's start and end, the first rejection per reason code and topic.
  Volume goes to counters (`PublisherStats`).
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import structlog

from edge_agent._mqtt_config import MqttConfig
from edge_agent._mqtt_flow import Pacer, publish_packet_size, reconnect_delay_s
from edge_agent._mqtt_link import (
    ClientFactory,
    Connack,
    ConnectFailure,
    MqttLink,
    OnMessage,
    paho_client,
)
from edge_agent._mqtt_stats import Counters, PublisherStats
from prognos_contract import (
    CONTENT_TYPE_JSON,
    DEFAULT_PREFIX,
    Event,
    Health,
    Status,
    StatusState,
    build_topic,
    encode_event,
    encode_health,
    encode_status,
)

_log = structlog.get_logger("edge_agent.publisher")

_IDLE_WAIT_S = 0.05
"""Longest wait in the network loop: how soon new outbox messages, events and `stop()` are seen."""
_EVENT_QUEUE_MAX = 1000
"""Events and health waiting to be sent; beyond this the oldest is dropped and counted."""
_FAILURE = 0x80
"""Reason codes from here up are failures (MQTT 5, 2.4)."""
_PACKET_TOO_LARGE = 0x95
_TOPIC_NAME_INVALID = 0x90
_DISCONNECT_FLUSH_S = 1.0


# ---------------------------------------------------------------- the outbox, as seen from here


class OutboxMessageLike(Protocol):
    """One outbox entry, a whole MQTT message (``edge_agent._outbox.OutboxMessage``)."""

    @property
    def seq(self) -> int:
        """The batch's ``seq`` (also inside the payload)."""

    @property
    def topic(self) -> str:
        """Where to publish it."""

    @property
    def payload(self) -> bytes:
        """The encoded batch."""

    @property
    def content_type(self) -> str:
        """The MQTT 5 Content Type (``application/json`` or ``application/json+gzip``)."""

    @property
    def readings(self) -> int:
        """How many readings the batch holds (for the ``published_readings`` counter)."""


class TransactionLike(Protocol):
    """A batch taken from the outbox; indices in neither list stay for the next ``begin``."""

    @property
    def batch(self) -> Sequence[OutboxMessageLike]:
        """The messages, oldest first."""

    @property
    def accept(self) -> list[int]:
        """Indices acknowledged by the broker: the outbox deletes them."""

    @property
    def reject(self) -> list[int]:
        """Indices the broker refused: the outbox deletes and counts them."""


_Tx = TypeVar("_Tx", bound=TransactionLike)


class OutboxLike(Protocol[_Tx]):
    """What the publisher needs of the durable outbox (``edge_agent._outbox.Outbox``).

    ``begin``, ``end`` and ``len`` are called from the publisher's thread only, never with two
    transactions open, while the agent's thread adds; the outbox must be thread-safe. While
    idle the publisher asks ``len`` up to 20 times a second: it must be cheap (a kept count,
    not a table scan).
    """

    def begin(self, max_batch: int) -> _Tx:
        """Return up to ``max_batch`` of the oldest messages as an open transaction."""

    def end(self, tx: _Tx) -> None:
        """Delete the accepted and rejected messages of ``tx``; keep the rest, in order."""

    def __len__(self) -> int:
        """Messages in the outbox, those of an open transaction included."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Control:
    """A status, event or health message: not from the outbox."""

    kind: Literal["status", "event", "health", "answer"]
    topic: str
    payload: bytes
    qos: int
    retain: bool = False
    correlation_data: bytes | None = None


# ---------------------------------------------------------------- the publisher


class MqttPublisher(Generic[_Tx]):
    """Publishes the outbox, the status, events and health of one gateway to the broker.

    Call order: ``start()`` once, then ``publish_event``, ``publish_health``, ``stats`` and
    ``wait_connected`` from any thread, then ``stop()``. A stopped publisher does not start again.

    Args:
        config: The ``mqtt`` config section.
        outbox: The durable outbox to drain.
        site: This gateway's site (a topic level).
        gateway: This gateway's id (a topic level; the default client id).
        agent_version: Goes into the status messages.
        prefix: The topic prefix of contract v1.
        client_factory: Makes each connection's paho client (tests inject a wrapper).
        wall_clock_ms: Epoch milliseconds, for the ``ts`` of status messages.
        monotonic_s: Monotonic seconds, for timeouts, back-off and pacing.
        jitter: Returns numbers in [0, 1) that jitter the reconnect back-off.
        subscriptions: Topic filters to subscribe to (QoS 1) after every CONNACK (commands).
        on_message: Receives what arrives on them, on the publisher's thread; it must not block.
    """

    def __init__(
        self,
        *,
        config: MqttConfig,
        outbox: OutboxLike[_Tx],
        site: str,
        gateway: str,
        agent_version: str,
        prefix: str = DEFAULT_PREFIX,
        client_factory: ClientFactory = paho_client,
        wall_clock_ms: Callable[[], int] | None = None,
        monotonic_s: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        subscriptions: tuple[str, ...] = (),
        on_message: OnMessage | None = None,
    ) -> None:
        self._config = config
        self._outbox = outbox
        self._agent_version = agent_version
        self._status_topic = build_topic("status", site=site, gateway=gateway, prefix=prefix)
        self._events_topic = build_topic("events", site=site, gateway=gateway, prefix=prefix)
        self._health_topic = build_topic("health", site=site, gateway=gateway, prefix=prefix)
        self._wall_clock_ms = wall_clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._now_s = monotonic_s
        self._jitter = jitter

        # Shared with other threads, under _lock.
        self._lock = threading.Lock()
        self._counters = Counters()
        self._queue: collections.deque[_Control] = collections.deque()
        self._stopping = threading.Event()
        self._connected_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_timeout_s = 5.0
        self._fatal: BaseException | None = None

        # The publisher's thread only.
        self._link = MqttLink(
            config=config,
            client_id=config.client_id or gateway,
            will_topic=self._status_topic,
            will_payload=lambda: self._status_payload("offline"),
            on_publish=self._on_publish,
            client_factory=client_factory,
            monotonic_s=monotonic_s,
            stopping=self._stopping,
            subscriptions=subscriptions,
            on_message=on_message,
        )
        self._window = config.max_inflight
        self._max_packet_size: int | None = None
        self._inflight: dict[int, int | _Control] = {}
        self._tx: _Tx | None = None
        self._tx_next = 0
        self._tx_resolved = 0
        self._pacer: Pacer | None = None
        self._replay_started_s = 0.0
        self._replay_sent = 0
        self._failures = 0
        self._logged_cause: str | None = None
        self._down_since_s: float | None = None
        self._logged_rejections: set[tuple[int, str]] = set()

    # ------------------------------------------------------------ public API (any thread)

    def start(self) -> None:
        """Read the TLS and password files, then start the publisher's thread.

        Returns at once; the thread connects, and reconnects with back-off, on its own.

        Raises:
            ConfigError: A TLS or password file cannot be read or parsed.
            RuntimeError: ``start()`` was called before.
        """
        if self._thread is not None:
            raise RuntimeError("MqttPublisher.start() was already called")
        self._link.prepare()
        if self._config.tls is not None and self._config.tls.insecure_skip_verify == "yes":
            _log.warning("mqtt_tls_verification_disabled", host=self._config.host)
        self._thread = threading.Thread(
            target=self._run, name="prognos-mqtt-publisher", daemon=True
        )
        self._thread.start()

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Finish what is in flight, publish ``status`` offline, DISCONNECT, end the thread.

        Messages not acknowledged within ``timeout_s`` stay in the outbox. Idempotent.

        Args:
            timeout_s: Longest wait for acknowledgements before disconnecting, seconds.
        """
        self._stop_timeout_s = timeout_s
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # An attempt in progress ends within the connect timeout.
            thread.join(timeout_s + self._config.connect_timeout_s + _DISCONNECT_FLUSH_S + 1.0)

    def publish_event(self, event: Event) -> None:
        """Queue an edge event for the ``events`` topic (QoS 1, not retained).

        Never blocks. While offline, events wait in a bounded queue (the oldest is dropped and
        counted in ``events_dropped`` when it is full) and go out after the next CONNACK.

        Args:
            event: The event (checked against the contract on construction).
        """
        self._enqueue(
            _Control(kind="event", topic=self._events_topic, payload=encode_event(event), qos=1)
        )

    def publish_health(self, health: Health) -> None:
        """Queue agent health for the ``health`` topic (QoS 0).

        Never blocks. While offline it is skipped and counted in ``health_skipped``: a stale
        snapshot is worth nothing, the next one will be current.

        Args:
            health: The metrics snapshot.
        """
        self._enqueue(
            _Control(kind="health", topic=self._health_topic, payload=encode_health(health), qos=0)
        )

    def publish_answer(
        self, topic: str, payload: bytes, *, correlation_data: bytes | None = None
    ) -> None:
        """Queue a command's answer (QoS 1, not retained), like an event.

        Args:
            topic: The request's response topic, or ``.../cmd-result/{name}``.
            payload: The answer (``edge_agent._commands.answer``).
            correlation_data: The request's MQTT 5 Correlation Data, echoed.
        """
        self._enqueue(
            _Control(
                kind="answer",
                topic=topic,
                payload=payload,
                qos=1,
                correlation_data=correlation_data,
            )
        )

    def stats(self) -> PublisherStats:
        """Return a snapshot of the counters.

        Returns:
            The counters, the connection state and the last error.
        """
        thread = self._thread
        with self._lock:
            # len() of a dict is atomic under the GIL, and health needs no more exactness.
            return self._counters.snapshot(
                running=thread is not None and thread.is_alive(), inflight=len(self._inflight)
            )

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait until connected (CONNACK accepted, birth message sent).

        Args:
            timeout_s: Longest wait, seconds.

        Returns:
            Whether the publisher is connected.
        """
        return self._connected_event.wait(timeout_s)

    @property
    def fatal_error(self) -> BaseException | None:
        """The error that ended the thread (the outbox failed), or None.

        The agent's supervisor watches it: after an outbox failure the publisher does not go on,
        because the outbox's state is then unknown.
        """
        return self._fatal

    def __enter__(self) -> MqttPublisher[_Tx]:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _enqueue(self, control: _Control) -> None:
        with self._lock:
            if len(self._queue) >= _EVENT_QUEUE_MAX:
                self._count_dropped(self._queue.popleft())
            self._queue.append(control)

    def _count_dropped(self, control: _Control) -> None:
        # Called with the lock held.
        if control.kind == "event":
            self._counters.events_dropped += 1
        elif control.kind == "health":
            self._counters.health_skipped += 1

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                result = self._link.connect()
                if isinstance(result, Connack):
                    self._connected(result)
                    self._serve()
                    continue
                self._connect_failed(result)
                self._stopping.wait(
                    reconnect_delay_s(
                        self._failures,
                        min_s=self._config.reconnect_backoff_min_s,
                        max_s=self._config.reconnect_backoff_max_s,
                        jitter=self._jitter(),
                    )
                )
        except Exception as exc:  # noqa: BLE001 - whatever ends the thread must be reported
            # The outbox failed (or a bug): stop publishing, say so once, let the agent decide.
            self._fatal = exc
            _log.error("mqtt_publisher_failed", error=repr(exc))
            self._link.close()
        finally:
            self._connected_event.clear()
            self._drop_queue_at_exit()
            with self._lock:
                self._counters.connected = False
                self._counters.replaying = False

    def _drop_queue_at_exit(self) -> None:
        with self._lock:
            events = sum(c.kind == "event" for c in self._queue)
            for control in self._queue:
                self._count_dropped(control)
            self._queue.clear()
        if events:
            _log.warning("mqtt_events_dropped", events=events, reason="publisher stopped")

    def _connect_failed(self, failure: ConnectFailure) -> None:
        """Count a failed attempt; log ERROR once per cause in a run of failures, else DEBUG."""
        self._failures += 1
        with self._lock:
            self._counters.connect_failures += 1
            self._counters.last_error = failure.error
        if failure.cause == "stopping":
            return
        if failure.cause != self._logged_cause:
            self._logged_cause = failure.cause
            _log.error(
                "mqtt_connect_failed",
                host=self._config.host,
                port=self._config.effective_port,
                protocol=self._link.protocol,
                error=failure.error,
            )
        else:
            _log.debug("mqtt_connect_failed", error=failure.error, failures=self._failures)

    def _connected(self, connack: Connack) -> None:
        self._window = max(1, min(self._config.max_inflight, connack.receive_maximum))
        self._max_packet_size = connack.max_packet_size
        self._inflight.clear()
        with self._lock:
            self._counters.connects += 1
            self._counters.connected = True
            self._counters.protocol = connack.protocol
            first = self._counters.connects == 1
        self._failures = 0
        self._logged_cause = None
        fields: dict[str, Any] = {
            "host": self._config.host,
            "port": self._config.effective_port,
            "protocol": connack.protocol,
            "session_present": connack.session_present,
            "window": self._window,
        }
        if first:
            _log.info("mqtt_connected", **fields)
        else:
            down_s = None if self._down_since_s is None else self._now_s() - self._down_since_s
            _log.info("mqtt_reconnected", down_s=down_s, **fields)
        self._down_since_s = None
        birth = self._status_payload("online")
        self._publish_control(
            _Control(kind="status", topic=self._status_topic, payload=birth, qos=1, retain=True)
        )
        self._start_replay_if_backlog()
        self._connected_event.set()

    # ------------------------------------------------------------ connected

    def _serve(self) -> None:
        """Publish until the connection is lost or ``stop()`` is called."""
        while True:
            if self._stopping.is_set():
                self._shutdown()
                return
            self._drain_queue()
            wait_s = self._fill()
            if not self._link.loop(wait_s):
                self._lost()
                return
            self._end_tx_if_resolved()

    def _telemetry_slots(self) -> int:
        # One slot stays free for status and events, unless the window has only one.
        reserve = 1 if self._window > 1 else 0
        return self._window - reserve - len(self._inflight)

    def _fill(self) -> float:
        """Begin a transaction if none is open; publish what the window and the pacer allow.

        Returns:
            How long the network loop may wait before the next turn, seconds.
        """
        self._end_tx_if_resolved()
        if self._tx is None and not self._begin():
            return _IDLE_WAIT_S
        tx = self._tx
        assert tx is not None  # noqa: S101 - _begin() opened it
        batch = tx.batch
        while self._tx_next < len(batch):
            if self._telemetry_slots() <= 0:
                return _IDLE_WAIT_S  # a PUBACK ends the wait sooner
            if self._pacer is not None:
                delay_s = self._pacer.delay_s(self._now_s())
                if delay_s > 0:
                    return min(delay_s, _IDLE_WAIT_S)
            if not self._publish_message(self._tx_next, batch[self._tx_next]):
                return 0.0  # the connection is gone: the loop says so next
            self._tx_next += 1
        return _IDLE_WAIT_S

    def _begin(self) -> bool:
        slots = self._telemetry_slots()
        if slots <= 0:
            return False
        depth = len(self._outbox)
        if self._pacer is not None and depth <= slots:
            self._finish_replay()  # what is left fits in one window: no flood
        if depth == 0:
            return False
        tx = self._outbox.begin(slots)
        if not tx.batch:
            self._outbox.end(tx)
            return False
        self._tx = tx
        self._tx_next = 0
        self._tx_resolved = 0
        return True

    def _publish_message(self, index: int, msg: OutboxMessageLike) -> bool:
        """Publish message ``index`` of the transaction; False if the connection is gone."""
        mqtt5 = self._link.protocol == "5"
        if self._max_packet_size is not None:
            size = publish_packet_size(
                topic=msg.topic,
                payload_len=len(msg.payload),
                content_type=msg.content_type if mqtt5 else None,
                mqtt5=mqtt5,
            )
            if size > self._max_packet_size:
                limit = self._max_packet_size
                self._resolve(index, _PACKET_TOO_LARGE, f"{size} bytes, the broker takes {limit}")
                return True
        try:
            mid = self._link.publish(msg.topic, msg.payload, qos=1, content_type=msg.content_type)
        except ValueError as exc:
            code = _TOPIC_NAME_INVALID if "topic" in str(exc).lower() else _PACKET_TOO_LARGE
            self._resolve(index, code, str(exc))
            return True
        if mid is None:
            return False
        self._inflight[mid] = index
        if self._pacer is not None:
            self._pacer.spend(nbytes=len(msg.payload), now_s=self._now_s())
            self._replay_sent += 1
        return True

    def _resolve(self, index: int, reason_code: int, reason: str) -> None:
        """Record the broker's (or our own) verdict on message ``index`` of the transaction."""
        tx = self._tx
        if tx is None:
            return
        msg = tx.batch[index]
        self._tx_resolved += 1
        if reason_code < _FAILURE:
            tx.accept.append(index)
            with self._lock:
                self._counters.published_messages += 1
                self._counters.published_readings += msg.readings
            return
        tx.reject.append(index)
        with self._lock:
            self._counters.rejected_messages += 1
            by_reason = self._counters.rejected_by_reason
            by_reason[reason_code] = by_reason.get(reason_code, 0) + 1
            self._counters.last_error = f"{msg.topic}: {reason}"
        key = (reason_code, msg.topic)
        if key not in self._logged_rejections:
            # The first refusal per reason and topic is news; the rest are counted.
            self._logged_rejections.add(key)
            _log.warning(
                "publish_rejected",
                topic=msg.topic,
                seq=msg.seq,
                reason_code=f"0x{reason_code:02x}",
                reason=reason,
            )

    def _end_tx_if_resolved(self) -> None:
        tx = self._tx
        if tx is not None and self._tx_resolved >= len(tx.batch):
            self._tx = None
            self._outbox.end(tx)

    def _drain_queue(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                head = self._queue[0]
                if head.qos > 0 and len(self._inflight) >= self._window:
                    return
                self._queue.popleft()
            self._publish_control(head)

    def _publish_control(self, control: _Control) -> None:
        mid = self._link.publish(
            control.topic,
            control.payload,
            qos=control.qos,
            retain=control.retain,
            content_type=CONTENT_TYPE_JSON,
            correlation_data=control.correlation_data,
        )
        if control.kind == "health":
            with self._lock:
                if mid is None:
                    self._counters.health_skipped += 1
                else:
                    self._counters.health_published += 1
        elif mid is not None:
            self._inflight[mid] = control
        elif control.kind in ("event", "answer"):
            self._requeue([control])  # the connection is gone: send after the next CONNACK

    def _requeue(self, events: Sequence[_Control]) -> None:
        with self._lock:
            self._queue.extendleft(reversed(events))
            while len(self._queue) > _EVENT_QUEUE_MAX:
                self._count_dropped(self._queue.pop())

    def _on_publish(self, mid: int, reason_code: int, reason: str) -> None:
        entry = self._inflight.pop(mid, None)
        if entry is None:
            return  # QoS 0 health: paho says it was sent
        if isinstance(entry, int):
            self._resolve(entry, reason_code, reason)
        elif entry.kind == "event":
            with self._lock:
                if reason_code >= _FAILURE:
                    self._counters.events_rejected += 1
                    self._counters.last_error = f"{entry.topic}: {reason}"
                else:
                    self._counters.events_published += 1

    # ------------------------------------------------------------ replay pacing

    def _start_replay_if_backlog(self) -> None:
        cfg = self._config
        if cfg.replay_rate_msgs_s is None and cfg.replay_rate_bytes_s is None:
            return
        backlog = len(self._outbox)
        if backlog <= self._telemetry_slots():
            return
        self._pacer = Pacer(
            rate_msgs_s=cfg.replay_rate_msgs_s,
            rate_bytes_s=cfg.replay_rate_bytes_s,
            now_s=self._now_s(),
        )
        self._replay_started_s = self._now_s()
        self._replay_sent = 0
        with self._lock:
            self._counters.replaying = True
        _log.info(
            "mqtt_replay_started",
            backlog_messages=backlog,
            rate_msgs_s=cfg.replay_rate_msgs_s,
            rate_bytes_s=cfg.replay_rate_bytes_s,
        )

    def _finish_replay(self) -> None:
        self._pacer = None
        with self._lock:
            self._counters.replaying = False
        _log.info(
            "mqtt_replay_finished",
            messages=self._replay_sent,
            duration_s=round(self._now_s() - self._replay_started_s, 3),
        )

    # ------------------------------------------------------------ losing and closing

    def _lost(self) -> None:
        reason = self._link.lost_reason or "connection lost"
        self._abandon_connection()
        with self._lock:
            self._counters.disconnects += 1
            self._counters.last_error = reason
        self._down_since_s = self._now_s()
        _log.warning("mqtt_disconnected", host=self._config.host, reason=reason)

    def _abandon_connection(self) -> None:
        """Forget the connection, as after a loss.

        The transaction ends (unacknowledged messages stay in the outbox), unacknowledged
        events go back to the queue, the link is closed, a replay is re-evaluated at the next
        CONNACK.
        """
        self._connected_event.clear()
        self._end_tx_now()
        events = [
            c
            for c in self._inflight.values()
            if isinstance(c, _Control) and c.kind in ("event", "answer")
        ]
        self._inflight.clear()
        if events:
            self._requeue(events)
        self._pacer = None
        with self._lock:
            self._counters.connected = False
            self._counters.replaying = False
        self._link.close()

    def _end_tx_now(self) -> None:
        tx, self._tx = self._tx, None
        if tx is not None:
            self._outbox.end(tx)

    def _shutdown(self) -> None:
        """Wait for what is in flight, publish ``status`` offline, DISCONNECT normally."""
        deadline_s = self._now_s() + self._stop_timeout_s
        # No new work: the unsent rest of the transaction stays in the outbox.
        while self._inflight and self._now_s() < deadline_s:
            if not self._link.loop(_IDLE_WAIT_S):
                self._lost()
                return
        self._end_tx_now()
        offline = _Control(
            kind="status",
            topic=self._status_topic,
            payload=self._status_payload("offline"),
            qos=1,
            retain=True,
        )
        self._publish_control(offline)
        while any(c is offline for c in self._inflight.values()) and self._now_s() < deadline_s:
            if not self._link.loop(_IDLE_WAIT_S):
                break
        self._link.disconnect(flush_s=_DISCONNECT_FLUSH_S)
        self._abandon_connection()
        with self._lock:
            self._counters.disconnects += 1
        _log.info("mqtt_stopped", host=self._config.host)

    def _status_payload(self, state: StatusState) -> bytes:
        status = Status(state=state, ts=self._wall_clock_ms(), agent_version=self._agent_version)
        return encode_status(status)
