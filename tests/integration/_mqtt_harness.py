"""Helpers for the MQTT publisher's tests: a dedicated Mosquitto, a fake outbox, a subscriber.

- `Broker` runs a Mosquitto of its own (for restarts, the ACL, TLS) from the shipped
  `config/mosquitto/prognos.conf`, with only paths, port and listener address changed, so the
  tests exercise the production settings.
- `FakeOutbox` honours the interface of `edge_agent._outbox` (begin / end / len, one open
  transaction at a time) in memory, and checks the publisher keeps to it.
- `Subscriber` is a plain paho client on its own loop thread that collects what it receives.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import paho.mqtt.client as mqtt
from _tls import Identity, Pki
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

import prognos_contract as pc

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONF = ROOT / "config" / "mosquitto" / "prognos.conf"
SHIPPED_ACL = ROOT / "config" / "mosquitto" / "acl"
NOW_MS = 1_763_805_599_000
_TLS_KEYS = frozenset(
    {"cafile", "certfile", "keyfile", "require_certificate", "use_identity_as_username",
     "tls_version", "crlfile"}
)  # fmt: skip


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shipped_settings() -> list[tuple[str, str]]:
    """The (option, value) lines of the shipped broker config, comments left out."""
    out = []
    for raw in SHIPPED_CONF.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.append((key, value.strip()))
    return out


def derive_conf(*, root: Path, port: int, pki: Pki | None, acl: bool) -> str:
    """The shipped config for a test broker in `root` on `port`.

    Args:
        root: Folder for persistence and the log.
        port: Loopback port of the (only) listener.
        pki: TLS files; None makes a plain listener (no TLS options) on which clients name
            themselves with a user name and no password (`allow_anonymous true`, no password file).
        acl: Use the shipped ACL file; False drops `acl_file` (everything allowed).
    """
    lines = [f"# derived by tests from {SHIPPED_CONF}"]
    for key, value in shipped_settings():
        if key == "listener":
            lines.append(f"listener {port} 127.0.0.1")
            continue
        if key in _TLS_KEYS and pki is None:
            continue
        new = value
        if key == "acl_file":
            if not acl:
                continue
            new = str(SHIPPED_ACL)
        elif key == "allow_anonymous" and pki is None:
            new = "true"
        elif pki is not None and key in {"cafile", "certfile", "keyfile"}:
            new = str(
                {"cafile": pki.ca_cert, "certfile": pki.server_cert, "keyfile": pki.server_key}[key]
            )
        lines.append(f"{key} {new}")
    lines += [
        # What Debian's main mosquitto.conf provides in production.
        f"persistence_location {root}/",
        f"log_dest file {root}/mosquitto.log",
        # Run as whoever runs the tests: as root, Mosquitto would drop to `mosquitto`, which
        # cannot read the test's keys or write its folder.
        f"user {pwd.getpwuid(os.getuid()).pw_name}",
    ]
    return "\n".join(lines) + "\n"


def _mosquitto() -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    found = shutil.which("mosquitto", path=path)
    if found is None:
        raise RuntimeError("mosquitto not found: apt-get install mosquitto")
    return found


class Broker:
    """A Mosquitto of a test's own, stoppable and restartable on the same port and data."""

    def __init__(self, root: Path, *, pki: Pki | None = None, acl: bool = False) -> None:
        self.root = root
        self.port = free_port()
        self.host = "127.0.0.1"
        root.mkdir(parents=True, exist_ok=True)
        self.conf = root / "mosquitto.conf"
        self.conf.write_text(derive_conf(root=root, port=self.port, pki=pki, acl=acl))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start Mosquitto and wait until it accepts connections."""
        with (self.root / "stdout.log").open("ab") as out:
            self._proc = subprocess.Popen(
                [_mosquitto(), "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        """Stop Mosquitto cleanly (SIGTERM: it saves its persistence database)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def log(self) -> str:
        """The broker's log and output so far."""
        parts = [
            p.read_text(errors="replace")
            for p in (self.root / "stdout.log", self.root / "mosquitto.log")
            if p.exists()
        ]
        return "\n".join(parts)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- fake outbox


@dataclass(frozen=True, slots=True)
class FakeMessage:
    """`edge_agent._outbox.OutboxMessage`, as agreed."""

    id: int
    seq: int
    topic: str
    payload: bytes
    content_type: str
    readings: int
    created_ms: int


@dataclass(slots=True)
class FakeTransaction:
    """`edge_agent._outbox.Transaction`: indices in neither list are kept."""

    batch: Sequence[FakeMessage]
    accept: list[int] = field(default_factory=list)
    reject: list[int] = field(default_factory=list)


class FakeOutbox:
    """An in-memory outbox with the agreed interface; it fails loudly if a caller breaks it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[FakeMessage] = []
        self._open: FakeTransaction | None = None
        self._next_id = 1
        self.accepted: list[FakeMessage] = []
        self.rejected: list[FakeMessage] = []
        self.max_batches: list[int] = []
        self.errors: list[str] = []

    def add(self, topic: str, payload: bytes, *, seq: int, readings: int = 1) -> FakeMessage:
        """Append a message, as the agent's batcher does."""
        with self._lock:
            msg = FakeMessage(
                self._next_id, seq, topic, payload, pc.CONTENT_TYPE_JSON, readings, NOW_MS
            )
            self._next_id += 1
            self._items.append(msg)
            return msg

    def begin(self, max_batch: int) -> FakeTransaction:
        """Open the one transaction on the oldest `max_batch` messages."""
        with self._lock:
            if self._open is not None:
                self.errors.append("begin() with a transaction open")
            if max_batch < 1:
                self.errors.append(f"begin({max_batch})")
            self.max_batches.append(max_batch)
            self._open = FakeTransaction(batch=tuple(self._items[:max_batch]))
            return self._open

    def end(self, tx: FakeTransaction) -> None:
        """Delete accepted and rejected messages; keep the rest in order."""
        with self._lock:
            if tx is not self._open:
                self.errors.append("end() of a transaction that is not open")
            done = set(tx.accept) | set(tx.reject)
            if set(tx.accept) & set(tx.reject) or len(done) != len(tx.accept) + len(tx.reject):
                self.errors.append(f"bad verdicts: accept={tx.accept} reject={tx.reject}")
            if any(not 0 <= i < len(tx.batch) for i in done):
                self.errors.append(f"index out of range: {sorted(done)}")
            self.accepted += [tx.batch[i] for i in sorted(tx.accept)]
            self.rejected += [tx.batch[i] for i in sorted(tx.reject)]
            gone = {tx.batch[i].id for i in done}
            self._items = [m for m in self._items if m.id not in gone]
            self._open = None

    def stats(self, now_ms: int) -> dict[str, int]:
        """Depth and age of the oldest message."""
        with self._lock:
            oldest = self._items[0].created_ms if self._items else now_ms
            return {"depth": len(self._items), "oldest_age_ms": now_ms - oldest}

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def telemetry(seq: int, *, gateway: str, readings: int = 3) -> bytes:
    """A valid contract v1 telemetry payload with `seq`."""
    batch = pc.TelemetryBatch(
        gateway=gateway,
        seq=seq,
        readings=tuple(
            pc.Reading(
                asset="pump-07", ts=NOW_MS + seq * 10 + i, values={"bearing_temp_c": 70.5 + i}
            )
            for i in range(readings)
        ),
    )
    return pc.encode_telemetry(batch)


def wait_for(predicate: object, timeout_s: float, what: str) -> None:
    """Poll `predicate()` every 20 ms until true; fail naming `what`."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


# ---------------------------------------------------------------- subscriber


class Subscriber:
    """A paho MQTT 5 client on its own loop thread that puts what it receives in `inbox`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        topics: Sequence[str],
        client_id: str | None = None,
        username: str | None = None,
        persistent: bool = False,
        ca_file: Path | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.suback: list[int] = []
        self._topics = topics
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"sub-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username)
        if ca_file is not None:
            context = ssl.create_default_context(cafile=str(ca_file))
            if identity is not None:
                context.load_cert_chain(str(identity.cert), str(identity.key))
            self._client.tls_set_context(context)
        self._client.reconnect_delay_set(min_delay=1, max_delay=1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = lambda _c, _u, msg: self.inbox.put(msg)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 300 if persistent else 0
        self._client.connect(host, port, 30, clean_start=not persistent, properties=props)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise AssertionError("no SUBACK from the broker")

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason_code.is_failure or flags.session_present:
            return  # a resumed session keeps its subscriptions
        client.subscribe([(t, 1) for t in self._topics])

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reason_codes: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        self.suback = [rc.value for rc in reason_codes]
        self._subscribed.set()

    @property
    def client(self) -> mqtt.Client:
        """The paho client (to publish from this identity)."""
        return self._client

    def collect(self, predicate: object, timeout_s: float) -> list[mqtt.MQTTMessage]:
        """Receive until `predicate(messages)` holds; fail after `timeout_s`."""
        assert callable(predicate)
        got: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + timeout_s
        while not predicate(got):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out with {len(got)} messages")
            with contextlib.suppress(queue.Empty):
                got.append(self.inbox.get(timeout=min(left, 0.1)))
        return got

    def quiet(self, duration_s: float) -> list[mqtt.MQTTMessage]:
        """Everything received within `duration_s` (to show that nothing more arrives)."""
        got: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + duration_s
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(queue.Empty):
                got.append(self.inbox.get(timeout=left))
        return got

    def close(self) -> None:
        """Disconnect, stop the loop thread and close the sockets."""
        self._client.disconnect()
        self._client.loop_stop()
        self._client._reset_sockets()  # paho closes its wake-up pair only in __del__


@contextlib.contextmanager
def subscriber(**kwargs: object) -> Iterator[Subscriber]:
    """`Subscriber` as a context manager."""
    sub = Subscriber(**kwargs)  # type: ignore[arg-type]
    try:
        yield sub
    finally:
        sub.close()


def seq_of(msg: mqtt.MQTTMessage) -> int:
    """The `seq` of a received telemetry message."""
    content_type = getattr(msg.properties, "ContentType", None)
    return pc.decode_telemetry(bytes(msg.payload), content_type=content_type).batch.seq


def in_order_without_gaps(seqs: Sequence[int], expected: int) -> list[int]:
    """Check a received `seq` stream: duplicates allowed, never a jump ahead; return first copies.

    A message may arrive twice (at-least-once); what matters is that the stream never skips a
    seq and that, without its duplicates, it is exactly 0 .. expected-1 in order.
    """
    first: list[int] = []
    for s in seqs:
        assert s <= len(first), f"gap: seq {s} arrived before {len(first)} ({seqs})"
        if s == len(first):
            first.append(s)
    assert first == list(range(expected))
    return first
