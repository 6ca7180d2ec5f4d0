"""The audit log: every state-changing call, who made it, why, and what came of it.

One JSON object per line, appended and flushed before the answer leaves (so an answered call is
on record). The work-order history (``wo_events``) also names the user (``api:<name>``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("prognos.api")


class AuditLog:
    """Append-only JSON-lines audit log. Thread-safe.

    Args:
        path: The file (created with its folder when missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(
        self,
        *,
        at: dt.datetime,
        user: str,
        role: str,
        action: str,
        target: str,
        reason: str | None,
        outcome: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry and flush it to disk.

        Args:
            at: When.
            user: The token's name.
            role: The token's role.
            action: What was asked (``alert.acknowledge``, ``workorder.approve``...).
            target: The alert id or work-order key.
            reason: The reason given, if any.
            outcome: ``ok``, or the refusal (``illegal_transition``, ``not_found``...).
            detail: More context (states before and after).
        """
        entry = {
            "at": at.astimezone(dt.UTC).isoformat(),
            "user": user,
            "role": role,
            "action": action,
            "target": target,
            "reason": reason,
            "outcome": outcome,
        } | (detail or {})
        line = json.dumps(entry, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        log.info("api_audit", user=user, action=action, target=target, outcome=outcome)

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, oldest first (empty when the file does not exist)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]
