"""Logging: a fixed structlog chain on stderr (stdout carries readings); pymodbus kept quiet."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from edge_agent._agent_logging import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    level = logging.getLogger("pymodbus").level
    handlers = list(logging.getLogger("pymodbus").handlers)
    yield
    structlog.configure(**saved)
    pymodbus = logging.getLogger("pymodbus")
    pymodbus.setLevel(level)
    pymodbus.handlers[:] = handlers


def test_json_lines_go_to_stderr_with_level_and_utc_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--log-format json`: one JSON object per event on stderr, nothing on stdout."""
    configure_logging(log_format="json", level="info")

    structlog.get_logger("edge_agent.test").info("device_recovered", device="pump-7")
    structlog.get_logger("edge_agent.test").debug("device_poll_failed", device="pump-7")

    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()  # debug is below the level
    event = json.loads(line)
    assert (event["event"], event["device"], event["level"]) == (
        "device_recovered",
        "pump-7",
        "info",
    )
    assert event["timestamp"].endswith("Z")


def test_console_format_is_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    """`--log-format console`: aligned key=value text, still on stderr."""
    configure_logging(log_format="console", level="debug")

    structlog.get_logger("edge_agent.test").debug("device_available", device="pump-7")

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "device_available" in captured.err
    assert "device=pump-7" in captured.err


def test_pymodbus_is_quiet_unless_asked() -> None:
    """The ERROR frame dumps pymodbus logs on every timeout are hidden unless `--debug-modbus`."""
    configure_logging()
    assert logging.getLogger("pymodbus.logging").getEffectiveLevel() == logging.CRITICAL

    configure_logging(debug_modbus=True)
    assert logging.getLogger("pymodbus.logging").getEffectiveLevel() == logging.DEBUG
