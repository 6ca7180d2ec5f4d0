"""The pure alert engine: hysteresis, one alert per key, late data, snooze, cooldown."""

import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cloud.alerting import AlertChange, AlertEngine, AlertEvent, AlertPolicy, AlertState, episodes

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=10)
POLICY = AlertPolicy(open_level=0.7, clear_level=0.5, open_after=3, clear_after=1)


def feed(engine: AlertEngine, values: list[float], *, start: int = 0) -> list[AlertChange]:
    changes = []
    for i, v in enumerate(values, start=start):
        changes += engine.observe("pump-07", "bearing_wear", T0 + i * STEP, v, now=T0 + i * STEP)
    return changes


def test_opens_after_n_consecutive_scores_above_the_open_level() -> None:
    """Two high scores are not enough; the third consecutive one opens the alert."""
    engine = AlertEngine(policy=POLICY)
    assert feed(engine, [0.8, 0.9, 0.2, 0.8, 0.9]) == []
    (change,) = feed(engine, [0.75], start=5)
    assert change.raised
    assert change.alert.state is AlertState.OPEN
    assert change.alert.opened_at == T0 + 5 * STEP
    assert change.alert.alert_id == "pump-07/bearing_wear/1"


def test_scores_inside_the_band_neither_open_nor_clear() -> None:
    """Between clear_level and open_level nothing changes: hysteresis."""
    engine = AlertEngine(policy=POLICY)
    feed(engine, [0.8, 0.8, 0.8])
    assert feed(engine, [0.6, 0.55, 0.69, 0.5], start=3) == []
    (change,) = feed(engine, [0.49], start=7)
    assert change.event is AlertEvent.RESOLVE
    assert change.alert.reason == "score_cleared"
    assert change.alert.resolved_at == T0 + 7 * STEP


def test_a_score_rising_again_before_close_reopens_the_same_alert() -> None:
    """One alert per key: resolved then high again reopens it rather than raising another."""
    engine = AlertEngine(policy=POLICY)
    feed(engine, [0.8, 0.8, 0.8, 0.1])
    (change,) = feed(engine, [0.9, 0.9, 0.9], start=4)
    assert change.event is AlertEvent.REOPEN
    assert change.alert.alert_id == "pump-07/bearing_wear/1"
    assert [a.alert_id for a in engine.alerts()] == ["pump-07/bearing_wear/1"]


@given(
    st.lists(st.floats(min_value=-0.05, max_value=0.05), min_size=1, max_size=200),
    st.integers(min_value=1, max_value=4),
)
def test_a_score_oscillating_around_the_threshold_opens_at_most_one_alert(
    noise: list[float], open_after: int
) -> None:
    """Must show: a score wobbling around open_level opens one alert, never many, never clears."""
    policy = AlertPolicy(open_level=0.7, clear_level=0.5, open_after=open_after)
    engine = AlertEngine(policy=policy)
    changes = []
    for i, n in enumerate(noise):
        changes += engine.observe("p", "m", T0 + i * STEP, 0.7 + n, now=T0 + i * STEP)
    assert sum(c.raised for c in changes) <= 1
    assert all(c.event is None for c in changes)  # never resolved, so never reopened
    assert len(engine.alerts()) <= 1


def test_an_oscillating_score_opens_exactly_one_alert() -> None:
    """The concrete case: 0.69, 0.71, 0.69, ... with open_after=1 raises once."""
    engine = AlertEngine(policy=AlertPolicy(open_level=0.7, clear_level=0.5, open_after=1))
    changes = feed(engine, [0.69, 0.71] * 50)
    assert [c.raised for c in changes] == [True]


@given(
    st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=40),
    st.randoms(use_true_random=False),
)
def test_the_decision_does_not_depend_on_arrival_order(
    values: list[float], rnd: random.Random
) -> None:
    """Late data: any arrival order of the same scores ends with the same open alert (and time).

    An order may raise an alert on incomplete data that later scores withdraw; it ends resolved
    (by the late scores), never active.
    """
    in_order, shuffled = AlertEngine(policy=POLICY), AlertEngine(policy=POLICY)
    points = [(T0 + i * STEP, v) for i, v in enumerate(values)]
    for ts, v in points:
        in_order.observe("p", "m", ts, v, now=ts)
    rnd.shuffle(points)
    for ts, v in points:
        shuffled.observe("p", "m", ts, v, now=ts)

    def active(engine: AlertEngine) -> list[dt.datetime]:
        return [a.opened_at for a in engine.alerts() if a.active]

    assert active(in_order) == active(shuffled)
    assert len(in_order.alerts()) <= len(shuffled.alerts()) <= 1
    extra = [a for a in shuffled.alerts() if not in_order.alerts()]
    assert all(a.state is AlertState.RESOLVED for a in extra)


def test_a_late_correction_withdraws_an_alert() -> None:
    """A late score replacing one of the three that opened the alert resolves it (late_data)."""
    engine = AlertEngine(policy=POLICY)
    feed(engine, [0.8, 0.8, 0.8])
    (change,) = engine.observe("pump-07", "bearing_wear", T0 + STEP, 0.6, now=T0 + 9 * STEP)
    assert change.event is AlertEvent.RESOLVE
    assert change.alert.reason == "late_data"


def test_late_data_moves_the_opening_time_earlier() -> None:
    """A late high score before the opening run re-decides when the alert opened."""
    engine = AlertEngine(policy=POLICY)
    feed(engine, [0.1, 0.8, 0.8, 0.8, 0.8], start=0)
    assert engine.alerts()[0].opened_at == T0 + 3 * STEP
    assert engine.observe("pump-07", "bearing_wear", T0, 0.9, now=T0 + 9 * STEP) == []
    assert engine.alerts()[0].opened_at == T0 + 2 * STEP


def test_snooze_hides_until_the_time_then_wakes() -> None:
    """Snoozed until 12:00: tick before changes nothing, tick at 12:00 wakes it to open."""
    engine = AlertEngine(policy=POLICY)
    (raised,) = feed(engine, [0.8, 0.8, 0.8])
    until = T0 + dt.timedelta(hours=4)
    engine.act(raised.alert.alert_id, AlertEvent.SNOOZE, now=T0, until=until)
    assert engine.tick(until - dt.timedelta(seconds=1)) == []
    (woke,) = engine.tick(until)
    assert woke.alert.state is AlertState.OPEN
    assert woke.alert.snoozed_until is None


def test_snooze_needs_a_future_time() -> None:
    """A snooze into the past is refused with the times in the message."""
    engine = AlertEngine(policy=POLICY)
    (raised,) = feed(engine, [0.8, 0.8, 0.8])
    with pytest.raises(ValueError, match="snooze needs an until after now"):
        engine.act(raised.alert.alert_id, AlertEvent.SNOOZE, now=T0, until=T0)


def test_cooldown_after_close_ignores_scores_then_a_new_alert_opens() -> None:
    """After close, high scores inside the cooldown raise nothing; after it, a new alert (n=2)."""
    policy = AlertPolicy(
        open_level=0.7, clear_level=0.5, open_after=1, cooldown=dt.timedelta(hours=1)
    )
    engine = AlertEngine(policy=policy)
    (raised,) = engine.observe("p", "m", T0, 0.9, now=T0)
    engine.act(raised.alert.alert_id, AlertEvent.CLOSE, now=T0)
    assert engine.alerts() == []
    assert engine.observe("p", "m", T0 + dt.timedelta(minutes=59), 0.9, now=T0) == []
    (again,) = engine.observe("p", "m", T0 + dt.timedelta(minutes=60), 0.9, now=T0)
    assert again.raised
    assert again.alert.alert_id == "p/m/2"


def test_suppressed_alert_needs_no_work() -> None:
    """A suppressed alert stays the key's alert but asks for no work order."""
    engine = AlertEngine(policy=POLICY)
    (raised,) = feed(engine, [0.8, 0.8, 0.8])
    assert raised.alert.needs_work
    change = engine.act(raised.alert.alert_id, AlertEvent.SUPPRESS, now=T0)
    assert not change.alert.needs_work
    assert feed(engine, [0.9, 0.9], start=3) == []


def test_per_target_policy_overrides_the_default() -> None:
    """A consumable may open on its first score above its own level."""
    engine = AlertEngine(
        policy=POLICY,
        policies={"filter": AlertPolicy(open_level=0.9, clear_level=0.2, open_after=1)},
    )
    assert engine.observe("p", "bearing_wear", T0, 0.95, now=T0) == []
    (c,) = engine.observe("p", "filter", T0, 0.95, now=T0)
    assert c.raised


def test_episodes_is_pure_hysteresis() -> None:
    """Two episodes: opened at the 3rd high score, cleared at the first low one."""
    values = [0.8, 0.8, 0.8, 0.4, 0.8, 0.8, 0.8, 0.6]
    found = episodes([(T0 + i * STEP, v) for i, v in enumerate(values)], POLICY)
    assert [(e.opened_at, e.cleared_at) for e in found] == [
        (T0 + 2 * STEP, T0 + 3 * STEP),
        (T0 + 6 * STEP, None),
    ]


def test_a_policy_with_clear_above_open_is_refused() -> None:
    """The config error names both levels."""
    with pytest.raises(ValidationError, match=r"clear_level must be at most open_level \(0.5\)"):
        AlertPolicy(open_level=0.5, clear_level=0.6)


def test_a_policy_with_an_unknown_key_is_refused() -> None:
    """extra='forbid': a typo fails."""
    with pytest.raises(ValidationError, match="open_levle"):
        AlertPolicy.model_validate({"open_levle": 0.5})
