"""One MQTT connection at a time, for the edge publisher: connect, loop, publish, notice a loss.

Mechanism, not policy: `edge_agent._publisher` decides what to send, when to retry, what to
count and what to log. Everything here runs on the publisher's thread; paho's callbacks run
inside `MqttLink.loop()`, on that thread too.

Rules:

- Every attempt uses a fresh paho client (paho 2.x, callback API v2), so no message from an
  earlier connection hides in a client's queue, and the protocol version can change between
  attempts. MQTT 5 connects with ``clean_start=False`` and a Session Expiry Interval; 3.1.1 with
  ``clean_session=False``: the broker keeps the session (subscriptions, queued commands).
- Every CONNECT carries the Last Will: the retained ``status`` offline, stamped at that attempt.
- ``protocol: auto`` tries MQTT 5; a CONNACK "unsupported protocol version" (0x84; paho maps a
  3.1.1 broker's return code 1 to it) switches this and every later attempt to 3.1.1, logged
  once. A connection that merely fails never changes the version.
- paho's own in-flight limit is off: the publisher's window is the only limit.
- TLS completes its handshake inside ``wrap_socket`` (`_HandshakeClosingContext`), so a failed
  handshake closes its socket at once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent._exceptions import ConfigError
from edge_agent._mqtt_config import MqttConfig, TlsConfig

_log = structlog.get_logger("edge_agent.publisher")

MqttVersion = Literal["5", "3.1.1"]
"""The MQTT version of one connection."""

ClientFactory = Callable[[str, MqttVersion], mqtt.Client]
"""Makes an unconnected paho client for a client id and a protocol version (tests wrap it)."""

OnPublish = Callable[[int, int, str], None]
"""Called with (packet id, reason code, reason text) when a QoS 1 publish is acknowledged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    """A message received on a subscription (commands), as the link hands it on.

    Attributes:
        topic: The topic it was published to.
        payload: The payload.
        response_topic: The MQTT 5 Response Topic, if the sender set one.
        correlation_data: The MQTT 5 Correlation Data, if the sender set it.
    """

    topic: str
    payload: bytes
    response_topic: str | None = None
    correlation_data: bytes | None = None


OnMessage = Callable[[Incoming], None]
"""Called on the publisher's thread for every message received on a subscription."""

_UNSUPPORTED_PROTOCOL = 0x84
_FAILURE = 0x80
"""Reason codes from here up are failures (MQTT 5, 2.4)."""
_MAX_RECEIVE = 65535
"""The Receive Maximum when the broker states none (MQTT 5, 3.2.2.3.3)."""
_CONNACK_POLL_S = 0.05


def paho_client(client_id: str, protocol: MqttVersion) -> mqtt.Client:
    """The default `ClientFactory`: a paho 2.x client with the v2 callback API.

    Args:
        client_id: The MQTT client id.
        protocol: ``5``, or ``3.1.1`` (with ``clean_session=False``, a persistent session).

    Returns:
        The client, not connected.
    """
    # reconnect_on_failure=False: the publisher reconnects itself, and paho must not silently
    # downgrade a refused 3.1.1 connection to MQTT 3.1.
    if protocol == "5":
        return mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=False,
        reconnect_on_failure=False,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Connack:
    """An accepted connection.

    Attributes:
        protocol: The MQTT version in use.
        session_present: The broker resumed the session.
        receive_maximum: Most unacknowledged QoS 1 messages the broker accepts.
        max_packet_size: Largest packet the broker accepts, bytes, if it said.
    """

    protocol: MqttVersion
    session_present: bool
    receive_maximum: int
    max_packet_size: int | None


@dataclass(frozen=True, slots=True)
class ConnectFailure:
    """A failed connection attempt.

    Attributes:
        error: What happened, for people (``last_error``, logs).
        cause: A short, stable key for the kind of failure (an exception type, a CONNACK reason
            code, ``no_connack``): the text of one cause varies between attempts, the key not.
    """

    error: str
    cause: str


def reason_text(reason_code: ReasonCode) -> str:
    """``Not authorized (0x87)``: a paho reason code for logs and ``last_error``."""
    return f"{reason_code.getName()} (0x{reason_code.value:02x})"


class MqttLink:
    """The publisher's one connection to the broker, replaced by a new client on each attempt.

    Call order: ``prepare()`` once; then ``connect()``; while it is up, ``publish()`` and
    ``loop()``; it ends by ``loop()`` returning False (lost), ``disconnect()`` or ``close()``;
    then ``connect()`` again. One thread only.

    Args:
        config: The ``mqtt`` config section.
        client_id: The MQTT client id.
        will_topic: The ``status`` topic of the Last Will.
        will_payload: Makes the Will's payload (``status`` offline, stamped now).
        on_publish: Receives the broker's verdict on each QoS 1 message.
        client_factory: Makes each attempt's paho client.
        monotonic_s: Monotonic seconds, for the CONNACK timeout.
        stopping: Set when an attempt in progress should give up.
        subscriptions: Topic filters subscribed (QoS 1) after every accepted CONNACK.
        on_message: Receives what arrives on them.
    """

    def __init__(
        self,
        *,
        config: MqttConfig,
        client_id: str,
        will_topic: str,
        will_payload: Callable[[], bytes],
        on_publish: OnPublish,
        client_factory: ClientFactory,
        monotonic_s: Callable[[], float],
        stopping: threading.Event,
        subscriptions: tuple[str, ...] = (),
        on_message: OnMessage | None = None,
    ) -> None:
        self._config = config
        self._subscriptions = subscriptions
        self._on_message_cb = on_message
        self._client_id = client_id
        self._will_topic = will_topic
        self._will_payload = will_payload
        self._on_publish_cb = on_publish
        self._client_factory = client_factory
        self._now_s = monotonic_s
        self._stopping = stopping
        self.protocol: MqttVersion = "3.1.1" if config.protocol == "3.1.1" else "5"
        self.lost_reason: str | None = None
        """Why the last connection ended or the last attempt failed."""
        self._password: str | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._client: mqtt.Client | None = None
        self._connack: Connack | ConnectFailure | None = None
        # paho reports socket and TLS errors (e.g. the broker's "certificate required" alert)
        # only through its log. A logger at ERROR keeps the last one; an on_log callback would
        # make paho format every debug line of every packet.
        self._paho_errors = _LastRecord()
        # Not getLogger(): this logger is the link's own, outside the global registry.
        self._paho_logger = logging.Logger("edge_agent.publisher.paho", logging.ERROR)  # noqa: LOG001
        self._paho_logger.addHandler(self._paho_errors)
        self._paho_logger.propagate = False
        self._props: dict[tuple[int, str], Properties] = {}

    def prepare(self) -> None:
        """Read the TLS files and the password file.

        Raises:
            ConfigError: A file cannot be read or parsed; the message names it.
        """
        if self._config.tls is not None:
            self._tls_context = tls_context(self._config.tls)
        self._password = read_password(self._config)

    def connect(self) -> Connack | ConnectFailure:
        """Make one connection attempt (two with an ``auto`` fallback to 3.1.1).

        Returns:
            The accepted CONNACK, or why the attempt failed (its client is then closed).
        """
        self._connack = None
        self.lost_reason = None
        self._paho_errors.message = None
        client = self._new_client()
        try:
            if self.protocol == "5":
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = self._config.session_expiry_s
                client.connect(
                    self._config.host,
                    self._config.effective_port,
                    self._config.keepalive_s,
                    clean_start=False,
                    properties=props,
                )
            else:
                client.connect(
                    self._config.host, self._config.effective_port, self._config.keepalive_s
                )
        except (OSError, ValueError) as exc:
            # OSError: refused, unreachable, timeouts, TLS (ssl.SSLError); ValueError: a host
            # name paho rejects, a certificate for another host (ssl.CertificateError).
            return self._failed(f"{type(exc).__name__}: {exc}", cause=type(exc).__name__)
        result = self._await_connack(client)
        if isinstance(result, ConnectFailure):
            if (
                result.cause == f"connack_0x{_UNSUPPORTED_PROTOCOL:02x}"
                and self._config.protocol == "auto"
                and self.protocol == "5"
            ):
                self.close()
                self.protocol = "3.1.1"
                _log.warning(
                    "mqtt_protocol_fallback",
                    host=self._config.host,
                    refused="5",
                    protocol="3.1.1",
                    note="no PUBACK reason codes: a broker's refusal becomes invisible",
                )
                return self.connect()
            return self._failed(result.error, cause=result.cause)
        if self._subscriptions:
            # Every time, even with a resumed session: a broker that lost it (restarted
            # without persistence) would otherwise leave commands unheard.
            client.subscribe([(topic, 1) for topic in self._subscriptions])
        return result

    def _new_client(self) -> mqtt.Client:
        client = self._client_factory(self._client_id, self.protocol)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.enable_logger(self._paho_logger)
        client.connect_timeout = self._config.connect_timeout_s
        # The publisher's window limits what is in flight; paho must not queue behind it.
        client.max_inflight_messages_set(0)
        if self._config.username is not None:
            client.username_pw_set(self._config.username, self._password)
        if self._tls_context is not None:
            client.tls_set_context(self._tls_context)
            if self._config.tls is not None and self._config.tls.insecure_skip_verify == "yes":
                client.tls_insecure_set(value=True)
        client.will_set(
            self._will_topic,
            self._will_payload(),
            qos=1,
            retain=True,
            properties=(
                self._properties(PacketTypes.WILLMESSAGE, "application/json")
                if self.protocol == "5"
                else None
            ),
        )
        self._client = client
        return client

    def _await_connack(self, client: mqtt.Client) -> Connack | ConnectFailure:
        deadline_s = self._now_s() + self._config.connect_timeout_s
        while True:
            rc = client.loop(timeout=_CONNACK_POLL_S)
            result = self._received()
            if result is not None:
                return result
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or client.socket() is None:
                reason = self.lost_reason or self._paho_errors.message or "connection closed"
                return ConnectFailure(f"{reason} before CONNACK", "no_connack")
            if self._now_s() > deadline_s:
                return ConnectFailure(
                    f"no CONNACK within {self._config.connect_timeout_s} s", "no_connack"
                )
            if self._stopping.is_set():
                return ConnectFailure("stopping", "stopping")

    def _received(self) -> Connack | ConnectFailure | None:
        # A method, not the attribute: the type checker cannot see on_connect set it in loop().
        return self._connack

    def _failed(self, error: str, *, cause: str) -> ConnectFailure:
        self.close()
        self.lost_reason = error
        return ConnectFailure(error, cause)

    def loop(self, timeout_s: float) -> bool:
        """Run paho's network loop once: send, receive, call back, keep alive.

        Args:
            timeout_s: Longest wait for the network, seconds.

        Returns:
            False if the connection is lost (``lost_reason`` says why; the client is closed).
        """
        client = self._client
        if client is None:
            return False
        rc = client.loop(timeout=timeout_s)
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and client.is_connected():
            return True
        self.lost_reason = self.lost_reason or f"network loop returned {rc.name}"
        self.close()
        return False

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        content_type: str,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> int | None:
        """Send one message.

        Args:
            topic: The topic.
            payload: The payload.
            qos: 0 or 1.
            content_type: The MQTT 5 Content Type (not sent under 3.1.1).
            retain: Whether the broker keeps it as the topic's retained message.
            correlation_data: MQTT 5 Correlation Data (a command's answer echoes the request's).

        Returns:
            The packet id (reported again to ``on_publish`` for QoS 1), or None if the
            connection is gone (nothing was sent).

        Raises:
            ValueError: paho refuses the message (a wildcard in the topic, a payload over
                256 MB).
        """
        client = self._client
        if client is None:
            return None
        props = (
            self._properties(PacketTypes.PUBLISH, content_type) if self.protocol == "5" else None
        )
        if props is not None and correlation_data is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ContentType = content_type
            props.CorrelationData = correlation_data
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        return info.mid if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS else None

    def disconnect(self, *, flush_s: float) -> None:
        """Send DISCONNECT (reason 0: the broker discards the Will), flush it, close."""
        client = self._client
        if client is None:
            return
        client.disconnect()
        deadline_s = self._now_s() + flush_s
        while client.socket() is not None and self._now_s() < deadline_s:
            client.loop(timeout=_CONNACK_POLL_S)
        self.close()

    def close(self) -> None:
        """Close the connection without DISCONNECT (the broker then publishes the Will)."""
        client, self._client = self._client, None
        if client is not None:
            # paho has no public close for a client driven by loop(); its __del__ does this.
            with contextlib.suppress(OSError):
                client._reset_sockets()  # noqa: SLF001

    def _properties(self, packet_type: int, content_type: str) -> Properties:
        # paho packs properties when it sends and never changes them: one object per kind.
        key = (packet_type, content_type)
        props = self._props.get(key)
        if props is None:
            props = Properties(packet_type)  # type: ignore[no-untyped-call]
            props.ContentType = content_type
            self._props[key] = props
        return props

    # ------------------------------------------------------------ paho callbacks

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if client is not self._client:
            return
        if reason_code.value >= _FAILURE:
            self._connack = ConnectFailure(
                f"CONNACK {reason_text(reason_code)}", f"connack_0x{reason_code.value:02x}"
            )
            return
        max_packet_size = getattr(properties, "MaximumPacketSize", None)
        self._connack = Connack(
            protocol=self.protocol,
            session_present=flags.session_present,
            receive_maximum=int(getattr(properties, "ReceiveMaximum", _MAX_RECEIVE)),
            max_packet_size=None if max_packet_size is None else int(max_packet_size),
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if client is not self._client:
            return
        if flags.is_disconnect_packet_from_server:
            self.lost_reason = f"broker sent DISCONNECT {reason_text(reason_code)}"
        else:
            # paho's reason for a local error is a generic "Unspecified error": its log says more.
            self.lost_reason = self._paho_errors.message or reason_text(reason_code)

    def _on_publish(
        self,
        client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if client is self._client:
            self._on_publish_cb(mid, reason_code.value, reason_text(reason_code))

    def _on_message(
        self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage
    ) -> None:
        if client is not self._client or self._on_message_cb is None:
            return
        props = getattr(message, "properties", None)
        response = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        self._on_message_cb(
            Incoming(
                topic=message.topic,
                payload=bytes(message.payload),
                response_topic=str(response) if response else None,
                correlation_data=bytes(correlation) if correlation is not None else None,
            )
        )


class _LastRecord(logging.Handler):
    """Keeps the message of the last record: paho's last error."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()


# ---------------------------------------------------------------- files, read at start


class _HandshakeClosingContext(ssl.SSLContext):
    """An SSLContext that completes the TLS handshake in ``wrap_socket`` and closes on failure.

    paho 2.2 wraps the socket, then calls ``do_handshake()``; when that raises (an untrusted
    broker, a refused client certificate), its ``SSLSocket`` is left to the garbage collector,
    which closes it with a ``ResourceWarning``. Done here, the socket is closed at once; paho's
    own ``do_handshake()`` afterwards finds the handshake complete and returns.
    """

    def wrap_socket(  # noqa: PLR0917 - overrides SSLContext.wrap_socket, positionals and all
        self,
        sock: socket.socket,
        server_side: bool = False,  # noqa: FBT001, FBT002 - the signature of SSLContext's
        do_handshake_on_connect: bool = True,  # noqa: ARG002, FBT001, FBT002 - always done here
        suppress_ragged_eofs: bool = True,  # noqa: FBT001, FBT002
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        ssl_sock = super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=False,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )
        try:
            ssl_sock.do_handshake()
        except BaseException:
            ssl_sock.close()
            raise
        return ssl_sock


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """Build the TLS context once, at start.

    Args:
        tls: The ``mqtt.tls`` config section.

    Returns:
        A client context: TLS 1.2 or later, the broker's certificate and host name verified
        (unless ``insecure_skip_verify: yes``), the gateway's certificate loaded.

    Raises:
        ConfigError: A file cannot be loaded; the message names it.
    """
    # PROTOCOL_TLS_CLIENT: certificate and host name verification on, as create_default_context.
    context = _HandshakeClosingContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    key, path = "ca_file", tls.ca_file
    try:
        if tls.ca_file is None:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            context.load_verify_locations(cafile=str(tls.ca_file))
        if tls.cert_file is not None and tls.key_file is not None:
            key, path = "cert_file", tls.cert_file
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    except (OSError, ValueError) as exc:
        what = "the system trust store" if path is None else repr(str(path))
        if key == "cert_file":
            what += f" with key_file {str(tls.key_file)!r}"
        raise ConfigError(
            f"mqtt.tls.{key}: cannot load {what}: {exc}",
            path=None if path is None else str(path),
            key=f"mqtt.tls.{key}",
        ) from exc
    if tls.insecure_skip_verify == "yes":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def read_password(config: MqttConfig) -> str | None:
    """The MQTT password: from the config, or the first line of ``password_file``.

    Args:
        config: The ``mqtt`` config section.

    Returns:
        The password, or None without one.

    Raises:
        ConfigError: The password file cannot be read or its first line is empty.
    """
    if config.password is not None:
        return config.password.get_secret_value()
    if config.password_file is None:
        return None
    path = str(config.password_file)
    try:
        lines = config.password_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"mqtt.password_file: cannot read {path!r}: {exc}", path=path, key="mqtt.password_file"
        ) from exc
    if not lines or not lines[0]:
        raise ConfigError(
            f"mqtt.password_file: {path!r} has no password on its first line",
            path=path,
            key="mqtt.password_file",
        )
    return lines[0]
