"""The alert lifecycle's one transition table."""

import pytest

from cloud.alerting import TRANSITIONS, AlertEvent, AlertState, IllegalAlertTransition, apply


def test_every_state_has_a_row_and_targets_are_states() -> None:
    """The table covers every state, and every transition leads to a known state."""
    assert set(TRANSITIONS) == set(AlertState)
    for row in TRANSITIONS.values():
        assert all(isinstance(t, AlertState) for t in row.values())


def test_the_lifecycle_open_acknowledged_resolved_closed() -> None:
    """The main path of the issue: open -> acknowledged -> resolved -> closed."""
    state = AlertState.OPEN
    for event in (AlertEvent.ACKNOWLEDGE, AlertEvent.RESOLVE, AlertEvent.CLOSE):
        state = apply(state, event)
    assert state is AlertState.CLOSED


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s in AlertState for e in AlertEvent if e not in TRANSITIONS[s]],
)
def test_an_illegal_event_names_the_state_and_the_allowed_events(
    state: AlertState, event: AlertEvent
) -> None:
    """Every event the table leaves out is refused with a message naming what is allowed."""
    with pytest.raises(IllegalAlertTransition) as info:
        apply(state, event)
    assert f"state {state.value!r}" in str(info.value)
    for allowed in TRANSITIONS[state]:
        assert allowed.value in str(info.value)
    assert info.value.allowed == tuple(sorted(TRANSITIONS[state]))


def test_closed_is_terminal() -> None:
    """Nothing leaves closed: a new episode is a new alert."""
    with pytest.raises(IllegalAlertTransition, match="terminal"):
        apply(AlertState.CLOSED, AlertEvent.REOPEN)
