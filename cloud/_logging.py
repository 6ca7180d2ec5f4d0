"""Logging for the cloud's commands: structlog to stderr (stdout is a command's answer)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    # sys.stderr looked up per logger: pytest (and others) swap it.
    return structlog.PrintLogger(sys.stderr)


def configure_logging(log_format: str, level: str) -> None:
    """Structlog to stderr, JSON or console, from `level` (debug, info, warning, error) up."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "json":
        # The console renderer formats exceptions itself (format_exc_info would pre-empt it).
        processors.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_stderr_logger,
        # Not cached: structlog.testing.capture_logs must still work after an in-process run.
        cache_logger_on_first_use=False,
    )
