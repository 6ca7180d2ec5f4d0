"""Per-device runtime state: availability, the last error, counters, and the down/up log lines.

Theory of operation
-------------------
A worker (one per bus, TCP device or serial line) owns one `DeviceState` per device and reports
every completed poll to it: `record_success()` when the device answered, `record_failure(reason)`
when it did not. The state answers with a `Transition`, and the worker hands that to
`log_transition()`, the only place that logs availability.

Rules:
1. A device that goes down logs one ERROR (`device_unavailable`); a recovery logs one INFO
   (`device_recovered`); failures in between log at DEBUG (`device_poll_failed`). STYLE.md 9.
2. Volume goes to counters, never to log lines: polls, failed polls, requests, request errors by
   reason, requests skipped because the device had already failed in that poll, readings.
3. A device that answered with a Modbus exception or a short payload *answered*: it is available,
   its readings are bad. Only a device that did not answer at all is down.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

import structlog

from edge_agent._exceptions import DeviceError

_log = structlog.get_logger("edge_agent.sources")


class Transition(enum.Enum):
    """What one poll did to a device's availability."""

    CAME_UP = "came_up"
    """First successful poll since start."""
    STILL_UP = "still_up"
    WENT_DOWN = "went_down"
    """First failure since start, or first failure after being available."""
    STILL_DOWN = "still_down"
    RECOVERED = "recovered"
    """First success after being down."""


@dataclass(slots=True)
class DeviceCounters:
    """Monotonic counters of one device, for the agent's health metrics.

    Attributes:
        polls: Completed polls (one per poll group attempt, whatever the outcome).
        polls_failed: Polls in which the device did not answer at all.
        requests: Requests sent to the device (Modbus requests, or serial prompts).
        requests_skipped: Requests not sent because an earlier one in the same poll had already
            found the device silent, so that a dead device costs the bus one timeout per poll.
        errors: Failed requests by reason (`timeout`, `exception_code_2`, `no_match`, ...).
        readings_good: Good readings emitted.
        readings_bad: Bad readings emitted.
    """

    polls: int = 0
    polls_failed: int = 0
    requests: int = 0
    requests_skipped: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    readings_good: int = 0
    readings_bad: int = 0


class DeviceState:
    """Availability, last error and counters of one device (pure: no clock, no I/O).

    Args:
        name: The device's name from the config.
        asset: The asset id its readings carry.
    """

    def __init__(self, *, name: str, asset: str) -> None:
        self.name = name
        self.asset = asset
        self.available: bool | None = None
        """None until the first poll completes, then whether the device answered the last one."""
        self.last_error: str | None = None
        """Reason of the last failed poll (kept after a recovery, for diagnosis)."""
        self.consecutive_failures = 0
        self.last_success_ms: int | None = None
        self.last_failure_ms: int | None = None
        self.counters = DeviceCounters()

    def record_success(self, *, now_ms: int) -> Transition:
        """Record a poll the device answered; returns the availability transition."""
        self.counters.polls += 1
        self.last_success_ms = now_ms
        self.consecutive_failures = 0
        before, self.available = self.available, True
        if before is None:
            return Transition.CAME_UP
        return Transition.STILL_UP if before else Transition.RECOVERED

    def record_failure(self, *, reason: str, now_ms: int) -> Transition:
        """Record a poll the device did not answer, with the reason; returns the transition."""
        self.counters.polls += 1
        self.counters.polls_failed += 1
        self.last_failure_ms = now_ms
        self.last_error = reason
        self.consecutive_failures += 1
        before, self.available = self.available, False
        return Transition.STILL_DOWN if before is False else Transition.WENT_DOWN

    def snapshot(self) -> dict[str, object]:
        """The state as plain data, for the health topic and `poll now` answers."""
        c = self.counters
        return {
            "device": self.name,
            "asset": self.asset,
            "available": self.available,
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
            "last_success_ms": self.last_success_ms,
            "polls": c.polls,
            "polls_failed": c.polls_failed,
            "requests": c.requests,
            "requests_skipped": c.requests_skipped,
            "errors": dict(c.errors),
            "readings_good": c.readings_good,
            "readings_bad": c.readings_bad,
        }


def log_transition(state: DeviceState, transition: Transition) -> None:
    """Log a device's availability change: the one place that does (rule 1 of the module)."""
    if transition is Transition.WENT_DOWN:
        _log.error(
            "device_unavailable", device=state.name, asset=state.asset, reason=state.last_error
        )
    elif transition is Transition.RECOVERED:
        _log.info("device_recovered", device=state.name, asset=state.asset)
    elif transition is Transition.STILL_DOWN:
        _log.debug(
            "device_poll_failed",
            device=state.name,
            reason=state.last_error,
            consecutive_failures=state.consecutive_failures,
        )
    elif transition is Transition.CAME_UP:
        _log.debug("device_available", device=state.name, asset=state.asset)


class DeviceStartupError(DeviceError):
    """A device with `startup_error_behavior: error` did not answer its first poll.

    Caller: stop the agent; the operator asked for startup to fail when this device is
    unreachable. `reason` is the poll's failure reason (e.g. `timeout`).
    """

    def __init__(self, *, device: str, reason: str) -> None:
        super().__init__(
            f"device {device!r} did not answer its first poll: {reason}", device=device
        )
        self.reason = reason
