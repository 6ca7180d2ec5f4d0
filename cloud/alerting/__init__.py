"""Alerting: the alert lifecycle (one transition table) and the pure alert engine.

Scores (higher is worse) come in per (asset, target); the engine opens one alert per key by
hysteresis, re-decides when late data replaces a score, and honours snooze and cooldown. See
docs/alerts.md.
"""

from cloud.alerting._engine import (
    Alert,
    AlertChange,
    AlertEngine,
    AlertPolicy,
    Episode,
    episodes,
    transition,
)
from cloud.alerting._state import (
    ACTIVE_STATES,
    TRANSITIONS,
    AlertEvent,
    AlertState,
    IllegalAlertTransition,
    apply,
)

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "ACTIVE_STATES",
    "Alert",
    "AlertChange",
    "AlertEngine",
    "AlertEvent",
    "AlertPolicy",
    "AlertState",
    "apply",
    "Episode",
    "episodes",
    "IllegalAlertTransition",
    "transition",
    "TRANSITIONS",
]
