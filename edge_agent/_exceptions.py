"""The edge agent's exceptions: few, named per boundary, each saying what the caller should do.

Tree::

    EdgeAgentError
    ├── ConfigError            startup only; never retried; message names file/device/key
    │   └── ProfileError       (edge_agent._profile) a firmware profile is invalid or unknown
    ├── DeviceError            one device; the poller continues with the others
    │   ├── DeviceTimeout      no answer in time; retry with back-off
    │   └── DeviceException    the device answered with a Modbus exception (fc, code)
    ├── PublishError
    │   ├── NotConnected       batch kept in the buffer; resend after reconnecting
    │   └── Rejected           broker NACK; the message is rejected and counted, never retried
    └── BufferCorrupt          fatal; an operator must look at the file

Adapters translate third-party exceptions (pymodbus, paho, OS errors) into these in exactly one
place each, with ``raise ... from exc``. A Modbus exception *response* during a poll is data (a bad
reading with reason ``exception_code_N``), not an exception; `DeviceException` is for calls where
the caller needs the answer (a write, identification on the command line).
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Base of every error the edge agent raises on purpose."""


class ConfigError(EdgeAgentError):
    """The configuration or a device profile is invalid: startup stops with this one message.

    Caller: print the message and exit non-zero; never retry, never log and continue.

    Attributes:
        path: The file at fault, as the user named it, if any.
        key: The dotted key path at fault (``signals[3].byte_order``), if known.
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.key = key


class DeviceError(EdgeAgentError):
    """One device failed; the others are unaffected.

    Caller: mark the device unavailable, report its signals bad with `reason`, retry it later with
    back-off. Never stop the poller.

    Attributes:
        device: The device's name in the configuration.
        unit: The Modbus unit (slave) id, if the device has one.
        address: The first register of the failed request, if any.
    """

    reason: str = "device_error"
    """The short snake_case reason carried by the bad readings this error produces."""

    def __init__(
        self,
        message: str,
        *,
        device: str,
        unit: int | None = None,
        address: int | None = None,
    ) -> None:
        super().__init__(message)
        self.device = device
        self.unit = unit
        self.address = address


class DeviceTimeout(DeviceError):  # noqa: N818 - the names of STYLE.md 8
    """The device did not answer in time.

    Caller: as for `DeviceError`; increase the back-off on repeated timeouts.

    Attributes:
        timeout_s: How long the caller waited, in seconds, if known.
    """

    reason = "timeout"

    def __init__(
        self,
        message: str,
        *,
        device: str,
        unit: int | None = None,
        address: int | None = None,
        timeout_s: float | None = None,
    ) -> None:
        super().__init__(message, device=device, unit=unit, address=address)
        self.timeout_s = timeout_s


class DeviceException(DeviceError):  # noqa: N818 - the names of STYLE.md 8
    """The device answered with a Modbus exception response (e.g. code 2, illegal data address).

    Caller: do not retry the same request quickly (the answer will not change); an illegal
    address usually means the wrong profile or unit id.

    Attributes:
        fc: The Modbus function code of the request (e.g. 3, read holding registers).
        code: The exception code of the answer (1 illegal function, 2 illegal data address, ...).
        reason: ``exception_code_N``, the reason a `BlockResult` carries for this answer.
    """

    def __init__(
        self,
        message: str,
        *,
        device: str,
        fc: int,
        code: int,
        unit: int | None = None,
        address: int | None = None,
    ) -> None:
        super().__init__(message, device=device, unit=unit, address=address)
        self.fc = fc
        self.code = code
        self.reason = f"exception_code_{code}"


class PublishError(EdgeAgentError):
    """Publishing a batch failed.

    Attributes:
        packet_id: The MQTT packet id of the publish, if one was assigned.
        reason_code: The MQTT 5 reason code, if the broker sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        packet_id: int | None = None,
        reason_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.packet_id = packet_id
        self.reason_code = reason_code


class NotConnected(PublishError):  # noqa: N818 - the names of STYLE.md 8
    """The client is not connected to the broker.

    Caller: keep the batch in the buffer (neither accepted nor rejected) and resend it with the same
    packet id and ``duplicate=True`` after reconnecting.
    """


class Rejected(PublishError):  # noqa: N818 - the names of STYLE.md 8
    """The broker refused this message (a PUBACK reason code >= 0x80).

    Caller: mark the batch rejected in the buffer transaction, count it, log it once; never resend
    it (the broker would refuse it again).
    """


class BufferCorrupt(EdgeAgentError):  # noqa: N818 - the names of STYLE.md 8
    """The on-disk buffer cannot be read; nothing was truncated or dropped.

    Caller: stop the agent with this message. An operator must move the file aside (it holds
    unsent data) before the agent can start again.

    Attributes:
        path: The buffer file.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path
