"""The agent's logging: one fixed structlog processor chain, JSON or console, always on stderr.

stdout belongs to the agent's output (the JSON-lines sink of `prognos-edge run`, the tables of
`read`), so every log line goes to stderr. The processor chain is fixed (STYLE.md 9); only the
last step, the renderer, is chosen: `json` for log collectors (journald, Loki), `console` for a
technician at a terminal.

pymodbus logs through the standard library and, at ERROR, dumps the last frames on every
timeout: for a dead device that is a log line per poll, which the agent already reports once as
`device_unavailable`. Its logger is therefore turned down to CRITICAL unless `debug_modbus`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog
from structlog.typing import Processor

LogFormat = Literal["json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]

_LEVELS: dict[LogLevel, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _stderr_logger_factory(*_args: Any) -> structlog.PrintLogger:  # noqa: ANN401 - structlog's factory signature
    """A logger on whatever `sys.stderr` is now (called per line: loggers are not cached).

    Binding the stream once would keep writing to a replaced `sys.stderr` (a closed capture
    buffer in tests, a redirected stream in an embedding program).
    """
    return structlog.PrintLogger(file=sys.stderr)


def processor_chain(log_format: LogFormat, *, colors: bool = False) -> list[Processor]:
    """The fixed processor chain, ending in the renderer for `log_format`.

    Args:
        log_format: `json` (one JSON object per line) or `console` (aligned key=value).
        colors: Colour the console renderer (only for a terminal).

    Returns:
        The processors, in order.
    """
    chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if log_format == "json":
        chain += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # The console renderer formats exceptions itself (format_exc_info would pre-empt it).
        chain.append(structlog.dev.ConsoleRenderer(colors=colors))
    return chain


def configure_logging(
    *,
    log_format: LogFormat = "console",
    level: LogLevel = "info",
    debug_modbus: bool = False,
) -> None:
    """Configure structlog for the agent and quieten pymodbus.

    Args:
        log_format: `json` or `console`.
        level: The lowest level logged.
        debug_modbus: Let pymodbus log everything (frames included) to stderr, for field
            debugging; otherwise only its CRITICAL messages pass.
    """
    structlog.configure(
        processors=processor_chain(log_format, colors=log_format == "console" and _tty()),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_stderr_logger_factory,
        # Not cached: structlog.testing.capture_logs must still work after a CLI run in-process.
        cache_logger_on_first_use=False,
    )
    pymodbus = logging.getLogger("pymodbus")
    if debug_modbus:
        if not pymodbus.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
            )
            pymodbus.addHandler(handler)
        pymodbus.setLevel(logging.DEBUG)
    else:
        pymodbus.setLevel(logging.CRITICAL)


def _tty() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())
