"""The work-order lifecycle's one transition table and the deterministic key."""

import pytest

from cloud.workorders import (
    TRANSITIONS,
    IllegalWorkOrderTransition,
    WoEvent,
    WoState,
    apply,
    work_order_key,
)


def test_every_state_has_a_row() -> None:
    """The table covers every state; terminal states allow nothing."""
    assert set(TRANSITIONS) == set(WoState)
    for terminal in (WoState.CLOSED, WoState.CANCELLED, WoState.REJECTED):
        assert TRANSITIONS[terminal] == {}


def test_auto_path_to_closed() -> None:
    """Pending -> created -> assigned -> in_progress -> resolved -> closed."""
    state = WoState.PENDING
    for event in (
        WoEvent.DELIVERED,
        WoEvent.ASSIGNED,
        WoEvent.IN_PROGRESS,
        WoEvent.RESOLVED,
        WoEvent.CLOSED,
    ):
        state = apply(state, event)
    assert state is WoState.CLOSED


def test_suggest_path_needs_approval() -> None:
    """A proposed work order cannot be delivered before a planner approves it."""
    with pytest.raises(IllegalWorkOrderTransition, match="'proposed'"):
        apply(WoState.PROPOSED, WoEvent.DELIVERED)
    assert apply(WoState.PROPOSED, WoEvent.APPROVE) is WoState.PENDING


def test_a_callback_may_overtake_the_delivery_answer() -> None:
    """The service system's 'assigned' is accepted while our record still says pending."""
    assert apply(WoState.PENDING, WoEvent.ASSIGNED) is WoState.ASSIGNED
    assert apply(WoState.FAILED, WoEvent.RESOLVED) is WoState.RESOLVED


def test_dead_letter_and_retry() -> None:
    """Failed goes back to pending only through a retry."""
    assert apply(WoState.PENDING, WoEvent.DEAD_LETTER) is WoState.FAILED
    assert apply(WoState.FAILED, WoEvent.RETRY) is WoState.PENDING


@pytest.mark.parametrize(
    ("state", "event"), [(s, e) for s in WoState for e in WoEvent if e not in TRANSITIONS[s]]
)
def test_illegal_events_name_the_state_and_the_allowed_ones(state: WoState, event: WoEvent) -> None:
    """Every event the table leaves out is refused, naming the state and what it allows."""
    with pytest.raises(IllegalWorkOrderTransition) as info:
        apply(state, event)
    message = str(info.value)
    assert f"state {state.value!r}" in message
    assert all(a.value in message for a in TRANSITIONS[state])


def test_the_key_is_deterministic_and_distinguishes_every_component() -> None:
    """Same inputs, same key; any component changed, another key; fits correlation_id."""
    base = ("pump-07", "bearing_wear", "repair", "alert-1")
    key = work_order_key(*base)
    assert key == work_order_key(*base)
    assert key.startswith("wo-")
    assert len(key) == 35
    for i in range(4):
        changed = list(base)
        changed[i] += "x"
        assert work_order_key(*changed) != key
