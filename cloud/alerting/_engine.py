"""The alert engine: scores in, alert changes out; pure, with time passed in (STYLE.md 6, 11).

Theory of operation
-------------------
For each (asset, target) the engine keeps the scores of the *undecided period*: everything since
the last alert of that key was closed plus its cooldown. Every new score (or a late one, which
replaces the score of its timestamp) recomputes the period's episodes from scratch with the pure
`episodes`, so the decision depends only on the set of scores, never on the order they arrived.

Hysteresis: an episode opens at the ``open_after``-th consecutive score at or above
``open_level`` and clears at the ``clear_after``-th consecutive score below ``clear_level``;
scores between the two levels change nothing. The key's alert follows the period's last episode:

=================  ================  =============================================
alert now          episodes say      change
=================  ================  =============================================
none               open              raise a new alert (``open``)
none               cleared           raise, then resolve (an episode seen late)
active             cleared or none   resolve (score cleared, or late data withdrew it)
resolved           open              reopen (the same alert: one per key)
=================  ================  =============================================

Closing an alert (a planner, or its work order closing) ends the period: scores before
``closed_at + cooldown`` are never looked at again for that key.

Rules:
1. At most one alert per (asset, target) is not closed.
2. The engine never reads a clock; every method that depends on time takes ``now``.
3. Lifecycle changes go through `cloud.alerting._state.apply`; a refused event raises.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Annotated, Self

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.alerting._state import ACTIVE_STATES, AlertEvent, AlertState, apply

log = structlog.get_logger("prognos.alerting")

Level = Annotated[float, Field(allow_inf_nan=False)]


class AlertPolicy(BaseModel):
    """When a score opens and clears an alert (one per target, or one for all).

    Attributes:
        open_level: A score at or above this counts towards opening.
        clear_level: A score below this counts towards clearing; at most ``open_level``.
        open_after: Consecutive scores at or above ``open_level`` that open an alert.
        clear_after: Consecutive scores below ``clear_level`` that clear it.
        cooldown: After an alert is closed, scores before ``closed_at + cooldown`` are ignored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    open_level: Level = 0.7
    clear_level: Level = 0.5
    open_after: Annotated[int, Field(ge=1, le=1000)] = 3
    clear_after: Annotated[int, Field(ge=1, le=1000)] = 1
    cooldown: dt.timedelta = dt.timedelta(hours=24)

    @model_validator(mode="after")
    def _levels(self) -> Self:
        if self.clear_level > self.open_level:
            raise ValueError(
                f"clear_level must be at most open_level ({self.open_level}). "
                f"Got {self.clear_level} instead."
            )
        if self.cooldown < dt.timedelta(0):
            raise ValueError(f"cooldown must not be negative. Got {self.cooldown} instead.")
        return self


@dataclasses.dataclass(frozen=True, slots=True)
class Episode:
    """One stretch above the hysteresis band: opened, and cleared unless still open."""

    opened_at: dt.datetime
    cleared_at: dt.datetime | None
    peak: float


@dataclasses.dataclass(slots=True)
class _Hysteresis:
    """The hysteresis scan of `episodes`, one score at a time (scores in time order)."""

    closed: list[Episode] = dataclasses.field(default_factory=list)
    above: int = 0
    below: int = 0
    opened: dt.datetime | None = None
    peak: float = float("-inf")
    last: dt.datetime | None = None

    def step(self, ts: dt.datetime, value: float, policy: AlertPolicy) -> None:
        self.last = ts
        if self.opened is None:
            self.above = self.above + 1 if value >= policy.open_level else 0
            if self.above >= policy.open_after:
                self.opened, self.peak, self.below = ts, value, 0
        else:
            self.peak = max(self.peak, value)
            self.below = self.below + 1 if value < policy.clear_level else 0
            if self.below >= policy.clear_after:
                self.closed.append(Episode(self.opened, ts, self.peak))
                self.opened, self.above = None, 0

    def episodes(self) -> list[Episode]:
        if self.opened is None:
            return list(self.closed)
        return [*self.closed, Episode(self.opened, None, self.peak)]


def episodes(scores: Iterable[tuple[dt.datetime, float]], policy: AlertPolicy) -> list[Episode]:
    """The episodes of a score series, by hysteresis (pure).

    Args:
        scores: (timestamp, score) pairs in any order; timestamps are unique.
        policy: Levels and counts.

    Returns:
        The episodes in time order; only the last may still be open.
    """
    scan = _Hysteresis()
    for ts, value in sorted(scores):
        scan.step(ts, value, policy)
    return scan.episodes()


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    """One alert: an (asset, target) whose score crossed the open level.

    Attributes:
        alert_id: ``asset/target/n``, n counting the key's alerts from 1.
        asset: The asset id.
        target: The failure mode or consumable.
        state: Where it is in the lifecycle.
        opened_at: Time of the score that opened it (recomputed when late data moves it).
        updated_at: ``now`` of its last change.
        last_score: The latest score seen for the key, and its time.
        last_score_at: Time of `last_score`.
        peak: The highest score of the current episode.
        snoozed_until: While snoozed, when it wakes.
        resolved_at: When it was resolved (score time, or ``now`` of a manual resolve).
        reason: Why it last changed (``score_cleared``, ``late_data``, ``work_order_resolved``...).
        closed_at: When it was closed.
    """

    alert_id: str
    asset: str
    target: str
    state: AlertState
    opened_at: dt.datetime
    updated_at: dt.datetime
    last_score: float
    last_score_at: dt.datetime
    peak: float
    snoozed_until: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    reason: str = "opened"
    closed_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        """Whether it is the open alert of its key (not resolved, not closed)."""
        return self.state in ACTIVE_STATES

    @property
    def needs_work(self) -> bool:
        """Whether it should lead to a work order: active and not suppressed."""
        return self.active and self.state is not AlertState.SUPPRESSED


@dataclasses.dataclass(frozen=True, slots=True)
class AlertChange:
    """One change the engine made: the event (``None`` when the alert was raised) and the result."""

    event: AlertEvent | None
    alert: Alert

    @property
    def raised(self) -> bool:
        """Whether this change created the alert."""
        return self.event is None


def _number(alert_id: str) -> int:
    return int(alert_id.rsplit("/", 1)[-1])


@dataclasses.dataclass(slots=True)
class _Key:
    scores: dict[dt.datetime, float] = dataclasses.field(default_factory=dict)
    boundary: dt.datetime | None = None
    current: Alert | None = None
    count: int = 0
    scan: _Hysteresis | None = None
    """``in_order`` engines: the scan over `scores` so far (None: rebuild from `scores`)."""


class AlertEngine:
    """Alerts for many (asset, target) keys; pure (no clock, no I/O), single-threaded.

    Args:
        policy: The default policy.
        policies: Per-target overrides (failure mode or consumable name).
        in_order: Scores arrive in time order per key (a replay of stored history, as in the
            dry run): while a key has no alert, the scores up to one below ``open_level`` are
            forgotten, since no later score can form an episode with them. Memory and time stay
            linear over months of scores; a late score would be judged without them, so the
            live scorer leaves this off.
    """

    def __init__(
        self,
        *,
        policy: AlertPolicy | None = None,
        policies: Mapping[str, AlertPolicy] | None = None,
        in_order: bool = False,
    ) -> None:
        self._policy = policy or AlertPolicy()
        self._policies = dict(policies or {})
        self._in_order = in_order
        self._keys: dict[tuple[str, str], _Key] = {}
        self._by_id: dict[str, tuple[str, str]] = {}

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Take in saved alerts: after a restart, and to pick up changes made elsewhere.

        Call it with every alert ever saved (closed ones too). It keeps each key's numbering
        going (a new episode never reuses an old id, so never an old work-order key), installs
        each key's open alert, takes a saved version that is newer than the engine's (a work
        order resolved or closed it meanwhile), and starts the cooldown after a close. Scores
        are not saved: the caller re-reads the undecided period's scores and observes them.
        """
        for alert in alerts:
            key = self._keys.setdefault((alert.asset, alert.target), _Key())
            n = _number(alert.alert_id)
            key.count = max(key.count, n)
            self._by_id[alert.alert_id] = (alert.asset, alert.target)
            current = key.current
            same = current is not None and current.alert_id == alert.alert_id
            if alert.state is AlertState.CLOSED:
                if same or current is None:
                    key.current = None
                if alert.closed_at is not None:
                    boundary = alert.closed_at + self.policy_for(alert.target).cooldown
                    key.boundary = max(key.boundary or boundary, boundary)
                    key.scores = {t: v for t, v in key.scores.items() if t >= key.boundary}
                    key.scan = None
            elif (
                current is None
                or (same and alert.updated_at > current.updated_at)
                or n > _number(current.alert_id)
            ):
                key.current = alert

    def policy_for(self, target: str) -> AlertPolicy:
        """The policy that applies to `target`."""
        return self._policies.get(target, self._policy)

    def alerts(self) -> list[Alert]:
        """Every alert not yet closed, sorted by id."""
        return sorted(
            (k.current for k in self._keys.values() if k.current is not None),
            key=lambda a: a.alert_id,
        )

    def get(self, alert_id: str) -> Alert:
        """The current alert with this id.

        Raises:
            KeyError: No such alert, or it is closed.
        """
        key = self._keys[self._by_id[alert_id]]
        if key.current is None or key.current.alert_id != alert_id:
            raise KeyError(alert_id)
        return key.current

    def observe(
        self, asset: str, target: str, ts: dt.datetime, score: float, *, now: dt.datetime
    ) -> list[AlertChange]:
        """Take one score (new or late: it replaces the score at `ts`) and re-decide.

        Args:
            asset: The asset id.
            target: The failure mode or consumable scored.
            ts: The score's time (the end of its data window), timezone-aware.
            score: Higher is worse (STYLE.md 11).
            now: The current time, for `Alert.updated_at`.

        Returns:
            The changes, in order (empty when nothing changed).
        """
        key = self._keys.setdefault((asset, target), _Key())
        if key.boundary is not None and ts < key.boundary:
            return []  # The period it belongs to is closed: history, not a decision.
        policy = self.policy_for(target)
        if self._in_order:
            found, last_ts = self._scan(key, ts, score, policy)
        else:
            key.scores[ts] = score
            found = episodes(key.scores.items(), policy)
            last_ts = max(key.scores)
        last = key.scores[last_ts]
        changes: list[AlertChange] = []
        alert = key.current
        if alert is None:
            if not found:
                if self._in_order and ts == last_ts and last < policy.open_level:
                    # Hysteresis starts afresh after a score below the open level.
                    key.scores.clear()
                    key.scan = _Hysteresis()
                return []
            key.count += 1
            alert = Alert(
                alert_id=f"{asset}/{target}/{key.count}",
                asset=asset,
                target=target,
                state=AlertState.OPEN,
                opened_at=found[0].opened_at,
                updated_at=now,
                last_score=last,
                last_score_at=last_ts,
                peak=found[-1].peak,
            )
            self._by_id[alert.alert_id] = (asset, target)
            changes.append(AlertChange(None, alert))
            log.info("alert_raised", alert=alert.alert_id, score=score, opened_at=alert.opened_at)
        alert = dataclasses.replace(
            alert,
            last_score=last,
            last_score_at=last_ts,
            opened_at=found[0].opened_at if found else alert.opened_at,
            peak=found[-1].peak if found else alert.peak,
        )
        is_open = bool(found) and found[-1].cleared_at is None
        if alert.active and not is_open:
            cleared = found[-1].cleared_at if found else None
            reason = "score_cleared" if cleared is not None else "late_data"
            alert = _apply(alert, AlertEvent.RESOLVE, now, reason=reason)
            alert = dataclasses.replace(alert, resolved_at=cleared or last_ts)
            changes.append(AlertChange(AlertEvent.RESOLVE, alert))
        elif alert.state is AlertState.RESOLVED and is_open:
            alert = _apply(alert, AlertEvent.REOPEN, now, reason="score_rose")
            alert = dataclasses.replace(alert, resolved_at=None)
            changes.append(AlertChange(AlertEvent.REOPEN, alert))
        key.current = alert
        return changes

    def _scan(
        self, key: _Key, ts: dt.datetime, score: float, policy: AlertPolicy
    ) -> tuple[list[Episode], dt.datetime]:
        """Episodes and the newest time after taking a score, incrementally when it is newest.

        The same answer as `episodes` over all the key's scores: a score newer than every other
        extends the scan by one step; any other (late, or a replacement) rebuilds it.
        """
        scan = key.scan
        if scan is None or (scan.last is not None and ts <= scan.last):
            key.scores[ts] = score
            scan = _Hysteresis()
            for t, v in sorted(key.scores.items()):
                scan.step(t, v, policy)
        else:
            key.scores[ts] = score
            scan.step(ts, score, policy)
        key.scan = scan
        assert scan.last is not None  # noqa: S101 - it has just taken a score
        return scan.episodes(), scan.last

    def tick(self, now: dt.datetime) -> list[AlertChange]:
        """Wake every snoozed alert whose time has come."""
        changes = []
        for key in self._keys.values():
            alert = key.current
            if (
                alert is not None
                and alert.state is AlertState.SNOOZED
                and alert.snoozed_until is not None
                and alert.snoozed_until <= now
            ):
                alert = _apply(alert, AlertEvent.WAKE, now, reason="snooze_ended")
                key.current = dataclasses.replace(alert, snoozed_until=None)
                changes.append(AlertChange(AlertEvent.WAKE, key.current))
        return changes

    def act(
        self,
        alert_id: str,
        event: AlertEvent,
        *,
        now: dt.datetime,
        until: dt.datetime | None = None,
        reason: str | None = None,
    ) -> AlertChange:
        """Apply a planner's or a work order's event to an alert.

        Args:
            alert_id: The alert.
            event: acknowledge, snooze (with `until`), suppress, unsuppress, resolve or close.
            now: The current time.
            until: For snooze: when it wakes (must be after `now`).
            reason: Recorded on the alert (defaults to the event's name).

        Returns:
            The change.

        Raises:
            KeyError: No such open alert.
            IllegalAlertTransition: The alert's state does not allow `event`.
            ValueError: Snooze without a future `until`.
        """
        alert = transition(self.get(alert_id), event, now=now, until=until, reason=reason)
        key = self._keys[(alert.asset, alert.target)]
        if event is AlertEvent.CLOSE:
            key.boundary = now + self.policy_for(alert.target).cooldown
            key.scores = {t: s for t, s in key.scores.items() if t >= key.boundary}
            key.scan = None
            key.current = None
            return AlertChange(event, alert)
        key.current = alert
        return AlertChange(event, alert)


def _apply(alert: Alert, event: AlertEvent, now: dt.datetime, *, reason: str) -> Alert:
    state = apply(alert.state, event)
    log.info(
        "alert_state_changed",
        alert=alert.alert_id,
        alert_event=event.value,
        old=alert.state.value,
        new=state.value,
        reason=reason,
    )
    return dataclasses.replace(alert, state=state, updated_at=now, reason=reason)


def transition(
    alert: Alert,
    event: AlertEvent,
    *,
    now: dt.datetime,
    until: dt.datetime | None = None,
    reason: str | None = None,
) -> Alert:
    """One event applied to one alert (pure): the table's next state and the event's stamps.

    The one place that says what each event does to an alert besides its state: ``snooze`` sets
    ``snoozed_until``; ``wake`` clears it; ``resolve`` sets ``resolved_at`` (`now`) and clears
    the snooze; ``reopen`` clears ``resolved_at``; ``close`` sets ``closed_at`` and clears the
    snooze. `AlertEngine.act` and the store's compare-and-set update
    (`cloud.workorders.Store.apply_alert_event`) both use it.

    Args:
        alert: The alert as it is.
        event: What happened.
        now: The current time (``updated_at``).
        until: For snooze: when it wakes (must be after `now`).
        reason: Recorded on the alert (defaults to the event's name).

    Returns:
        The changed alert.

    Raises:
        IllegalAlertTransition: The alert's state does not allow `event`.
        ValueError: Snooze without a future `until`.
    """
    apply(alert.state, event)  # The table's refusal comes first, whatever the arguments.
    if event is AlertEvent.SNOOZE and (until is None or until <= now):
        raise ValueError(f"snooze needs an until after now ({now}). Got {until} instead.")
    alert = _apply(alert, event, now, reason=reason or event.value)
    if event is AlertEvent.SNOOZE:
        return dataclasses.replace(alert, snoozed_until=until)
    if event is AlertEvent.WAKE:
        return dataclasses.replace(alert, snoozed_until=None)
    if event is AlertEvent.RESOLVE:
        return dataclasses.replace(alert, resolved_at=now, snoozed_until=None)
    if event is AlertEvent.REOPEN:
        return dataclasses.replace(alert, resolved_at=None)
    if event is AlertEvent.CLOSE:
        return dataclasses.replace(alert, closed_at=now, snoozed_until=None)
    return alert
