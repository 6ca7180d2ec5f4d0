"""Pure parts of the MQTT publisher: replay pacing, reconnect back-off, packet sizes.

No sockets, no clocks, no randomness inside: time (`now_s`, monotonic seconds) and jitter are
parameters, so the publisher's timing is tested without sleeping (STYLE.md 6).
"""

from __future__ import annotations

import math


class Pacer:
    """Two token buckets, messages and payload bytes, that pace a replay.

    Each bucket fills at its rate up to `burst_s` seconds' worth. A message may go when both
    buckets hold something; it then takes one message and its size in bytes, which may drive the
    byte bucket below zero. That debt is repaid before the next message goes, so a message larger
    than the whole bucket still passes (nothing stalls forever) and the long-run rate holds.

    Args:
        rate_msgs_s: Messages per second, or None for no limit.
        rate_bytes_s: Payload bytes per second, or None for no limit.
        now_s: Monotonic time the buckets start (full) at.
        burst_s: Seconds of rate each bucket holds.
    """

    def __init__(
        self,
        *,
        rate_msgs_s: float | None,
        rate_bytes_s: float | None,
        now_s: float,
        burst_s: float = 1.0,
    ) -> None:
        for name, rate in (("rate_msgs_s", rate_msgs_s), ("rate_bytes_s", rate_bytes_s)):
            if rate is not None and not (rate > 0 and math.isfinite(rate)):
                raise ValueError(f"{name} must be positive and finite or None, got {rate!r}")
        if not burst_s > 0:
            raise ValueError(f"burst_s must be positive, got {burst_s!r}")
        self.rate_msgs_s = rate_msgs_s
        self.rate_bytes_s = rate_bytes_s
        # A bucket holds at least one message, or a rate below 1/s would never let one through.
        self._cap_msgs = max(1.0, rate_msgs_s * burst_s) if rate_msgs_s else math.inf
        self._cap_bytes = max(1.0, rate_bytes_s * burst_s) if rate_bytes_s else math.inf
        self._msgs = self._cap_msgs
        self._bytes = self._cap_bytes
        self._at_s = now_s

    def _refill(self, now_s: float) -> None:
        elapsed_s = max(0.0, now_s - self._at_s)
        self._at_s = max(self._at_s, now_s)
        if self.rate_msgs_s:
            self._msgs = min(self._cap_msgs, self._msgs + elapsed_s * self.rate_msgs_s)
        if self.rate_bytes_s:
            self._bytes = min(self._cap_bytes, self._bytes + elapsed_s * self.rate_bytes_s)

    def delay_s(self, now_s: float) -> float:
        """Seconds from `now_s` until the next message may go (0.0: now)."""
        self._refill(now_s)
        wait_s = 0.0
        if self.rate_msgs_s and self._msgs < 1.0:
            wait_s = (1.0 - self._msgs) / self.rate_msgs_s
        if self.rate_bytes_s and self._bytes <= 0.0:
            # Wait until the debt is repaid and a little credit has built up.
            wait_s = max(wait_s, (1.0 - self._bytes) / self.rate_bytes_s)
        return wait_s

    def spend(self, *, nbytes: int, now_s: float) -> None:
        """Record one message of `nbytes` payload bytes sent at `now_s`."""
        self._refill(now_s)
        if self.rate_msgs_s:
            self._msgs -= 1.0
        if self.rate_bytes_s:
            self._bytes -= nbytes


def reconnect_delay_s(failures: int, *, min_s: float, max_s: float, jitter: float) -> float:
    """Wait before the next connection attempt after `failures` consecutive failed ones.

    The base doubles from `min_s` per failure up to `max_s`; the wait is 50 % to 100 % of it
    ("equal jitter"), so gateways that lost the same broker do not all return at once.

    Args:
        failures: Consecutive failed attempts (0 or less: no wait).
        min_s: Base after the first failure.
        max_s: Largest base.
        jitter: A number in [0, 1), e.g. `random.random()`.

    Returns:
        The wait, seconds.
    """
    if failures <= 0:
        return 0.0
    # Compare exponents instead of computing 2**n, which overflows during a long outage.
    if failures - 1 >= math.log2(max_s / min_s):
        base_s = max_s
    else:
        base_s = min(max_s, min_s * 2.0 ** (failures - 1))
    return base_s * (0.5 + 0.5 * min(max(jitter, 0.0), 1.0))


def _varint_len(value: int) -> int:
    """Bytes of an MQTT variable byte integer holding `value`."""
    length = 1
    while value >= 128:  # noqa: PLR2004 - 7 bits per byte
        value //= 128
        length += 1
    return length


def publish_packet_size(
    *, topic: str, payload_len: int, content_type: str | None, mqtt5: bool
) -> int:
    """Size in bytes of a QoS 1 PUBLISH packet, to compare with the broker's Maximum Packet Size.

    Args:
        topic: The topic name.
        payload_len: Payload bytes.
        content_type: The MQTT 5 Content Type property, if sent.
        mqtt5: Whether the packet is MQTT 5 (it then carries a property block).

    Returns:
        The whole packet: fixed header, topic, packet id, properties and payload.
    """
    remaining = 2 + len(topic.encode()) + 2 + payload_len
    if mqtt5:
        props = 0 if content_type is None else 1 + 2 + len(content_type.encode())
        remaining += _varint_len(props) + props
    return 1 + _varint_len(remaining) + remaining
