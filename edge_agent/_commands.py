"""Commands from the cloud (`{prefix}/{site}/{gateway}/cmd/{name}`): validated, then answered.

A command payload is a JSON object `{"id": "...", "args": {...}}` (`id` optional, echoed back so the
caller can match the answer). The answer goes to the MQTT 5 response topic when the request has one,
else to `.../cmd-result/{name}`, as `{"id": ..., "ok": true|false, "ts": ms, "result"|"error": …}`.

Commands (names are topic levels):
- `reload` — re-read the config file; the outbox is never touched.
- `poll-now` — poll one device (`{"device": "pump-7"}`) or all devices (no args) at once.
- `set-interval` — `{"device": "pump-7", "interval_s": 5}`; the device's every signal polls at that
  interval until the next reload.
- `write` — `{"device": "pump-7", "signal": "speed_setpoint_rpm", "value": 1450}`; refused unless
  the device's config says `writes: enabled` and its profile marks the signal writable
  (checked by the agent, which knows both).

This module is pure: it parses and validates; the agent executes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

CommandName = Literal["reload", "poll-now", "set-interval", "write"]
COMMAND_NAMES: tuple[CommandName, ...] = ("reload", "poll-now", "set-interval", "write")
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 86_400.0
MAX_PAYLOAD_BYTES = 4096
_MAX_ID_LEN = 128


class CommandError(ValueError):
    """A command that cannot be run; the message says why and is sent back to the caller."""


@dataclass(frozen=True, slots=True)
class Command:
    """A validated command."""

    name: CommandName
    id: str | None
    device: str | None = None
    signal: str | None = None
    interval_s: float | None = None
    value: float | int | bool | str | None = None


def _args(payload: bytes) -> tuple[str | None, dict[str, object]]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(f"payload is {len(payload)} bytes; at most {MAX_PAYLOAD_BYTES}")
    if not payload.strip():
        return None, {}
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"payload is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CommandError(f"payload must be a JSON object, got {type(doc).__name__}")
    unknown = set(doc) - {"id", "args"}
    if unknown:
        raise CommandError(f"unknown key(s) {sorted(unknown)!r}; a command has 'id' and 'args'")
    cid = doc.get("id")
    if cid is not None and (not isinstance(cid, str) or len(cid) > _MAX_ID_LEN):
        raise CommandError(f"id must be a string of at most {_MAX_ID_LEN} characters, got {cid!r}")
    args = doc.get("args", {})
    if not isinstance(args, dict):
        raise CommandError(f"args must be a JSON object, got {args!r}")
    return cid, args


def _only(name: str, args: dict[str, object], allowed: set[str], required: set[str]) -> None:
    unknown = set(args) - allowed
    if unknown:
        raise CommandError(
            f"{name}: unknown argument(s) {sorted(unknown)!r}; allowed {sorted(allowed)!r}"
        )
    missing = required - set(args)
    if missing:
        raise CommandError(f"{name}: missing argument(s) {sorted(missing)!r}")


def _device(name: str, args: dict[str, object]) -> str | None:
    device = args.get("device")
    if device is not None and not isinstance(device, str):
        raise CommandError(f"{name}: device must be a string, got {device!r}")
    return device


def parse_command(name: str, payload: bytes) -> Command:
    """Validate a command received on `cmd/{name}`.

    Args:
        name: The topic's last level.
        payload: The message payload.

    Returns:
        The validated command.

    Raises:
        CommandError: The command is unknown or its arguments are wrong (the message says which).
    """
    cid, args = _args(payload)
    if name == "reload":
        _only(name, args, set(), set())
        return Command(name="reload", id=cid)
    if name == "poll-now":
        _only(name, args, {"device"}, set())
        return Command(name="poll-now", id=cid, device=_device(name, args))
    if name == "set-interval":
        _only(name, args, {"device", "interval_s"}, {"device", "interval_s"})
        interval = args["interval_s"]
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not math.isfinite(interval)
            or not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S
        ):
            raise CommandError(
                "set-interval: interval_s must be a number in "
                f"[{MIN_INTERVAL_S}, {MAX_INTERVAL_S}], got {interval!r}"
            )
        return Command(
            name="set-interval", id=cid, device=_device(name, args), interval_s=float(interval)
        )
    if name == "write":
        _only(name, args, {"device", "signal", "value"}, {"device", "signal", "value"})
        signal, value = args["signal"], args["value"]
        if not isinstance(signal, str):
            raise CommandError(f"write: signal must be a string, got {signal!r}")
        if not isinstance(value, int | float | bool | str) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise CommandError(
                f"write: value must be a finite number, a boolean or a string, got {value!r}"
            )
        return Command(name="write", id=cid, device=_device(name, args), signal=signal, value=value)
    raise CommandError(f"unknown command {name!r}; known: {', '.join(COMMAND_NAMES)}")


def answer(command_id: str | None, *, ok: bool, detail: object, now_ms: int) -> bytes:
    """The answer payload: `result` when ok, else `error` (a message)."""
    body: dict[str, object] = {"id": command_id, "ok": ok, "ts": now_ms}
    body["result" if ok else "error"] = detail if ok else str(detail)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
