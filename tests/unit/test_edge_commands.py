"""Commands from the cloud are validated before the agent runs them, and always answered."""

from __future__ import annotations

import json

import pytest

from edge_agent._commands import Command, CommandError, answer, parse_command


@pytest.mark.parametrize(
    ("name", "payload", "expected"),
    [
        ("reload", b"", Command(name="reload", id=None)),
        ("reload", b'{"id": "r1"}', Command(name="reload", id="r1")),
        ("poll-now", b"{}", Command(name="poll-now", id=None)),
        (
            "poll-now",
            b'{"args": {"device": "pump-7"}}',
            Command(name="poll-now", id=None, device="pump-7"),
        ),
        (
            "set-interval",
            b'{"id": "x", "args": {"device": "pump-7", "interval_s": 5}}',
            Command(name="set-interval", id="x", device="pump-7", interval_s=5.0),
        ),
        (
            "write",
            b'{"args": {"device": "pump-7", "signal": "speed_setpoint_rpm", "value": 1450}}',
            Command(
                name="write", id=None, device="pump-7", signal="speed_setpoint_rpm", value=1450
            ),
        ),
    ],
)
def test_valid_commands_parse(name: str, payload: bytes, expected: Command) -> None:
    """Each documented command with valid arguments parses to what the agent runs."""
    assert parse_command(name, payload) == expected


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("reboot", b"", "unknown command 'reboot'"),
        ("reload", b"[1]", "must be a JSON object"),
        ("reload", b"{", "not JSON"),
        ("reload", b'{"args": {"x": 1}}', "unknown argument(s) ['x']"),
        ("reload", b'{"cmd": 1}', "unknown key(s) ['cmd']"),
        (
            "set-interval",
            b'{"args": {"device": "p", "interval_s": 0}}',
            "interval_s must be a number",
        ),
        (
            "set-interval",
            b'{"args": {"device": "p", "interval_s": true}}',
            "interval_s must be a number",
        ),
        ("set-interval", b'{"args": {"device": "p"}}', "missing argument(s) ['interval_s']"),
        ("write", b'{"args": {"device": "p", "signal": 3, "value": 1}}', "signal must be a string"),
        ("write", b'{"args": {"device": "p", "signal": "s", "value": [1]}}', "value must be"),
        ("poll-now", b'{"args": {"device": 7}}', "device must be a string"),
        ("reload", b"x" * 5000, "at most 4096"),
    ],
)
def test_invalid_commands_are_refused_with_the_reason(
    name: str, payload: bytes, message: str
) -> None:
    """A bad command is refused with a message that names what is wrong."""
    with pytest.raises(CommandError) as info:
        parse_command(name, payload)
    assert message in str(info.value)


def test_answers_echo_the_id_and_carry_result_or_error() -> None:
    """An answer says ok with a result, or not ok with the error message."""
    good = json.loads(answer("r1", ok=True, detail={"reloaded": True}, now_ms=5))
    bad = json.loads(answer(None, ok=False, detail=CommandError("nope"), now_ms=6))
    assert good == {"id": "r1", "ok": True, "ts": 5, "result": {"reloaded": True}}
    assert bad == {"id": None, "ok": False, "ts": 6, "error": "nope"}
