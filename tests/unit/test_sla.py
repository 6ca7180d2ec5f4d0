"""SLA tracking (pure): warnings and escalations before the response deadline, controlled time."""

import datetime as dt

from cloud.workorders import Priority, SlaView, WoState, due_actions, parse_policy

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
POLICY = parse_policy(
    {
        "escalation": [
            {"at": 0.5, "action": "warn", "to": ["planners@example.com"]},
            {"at": 0.8, "action": "escalate", "to": ["lead@example.com"]},
        ]
    }
)


def view(state: WoState = WoState.CREATED) -> SlaView:
    return SlaView(
        key="wo-1",
        state=state,
        priority=Priority.P1,
        created_at=T0,
        respond_by=T0 + dt.timedelta(minutes=30),
        title="pump-07: bearing wear",
    )


def test_nothing_before_half_the_window() -> None:
    """At 14:59 of a 30-minute window nothing is due."""
    now = T0 + dt.timedelta(minutes=14, seconds=59)
    assert due_actions([view()], policy=POLICY, now=now, done=set()) == []


def test_warn_at_half_then_escalate_at_80_percent_before_the_deadline() -> None:
    """Warning at 15 min, escalation at 24 min: both before the 30-minute response deadline."""
    (warn,) = due_actions([view()], policy=POLICY, now=T0 + dt.timedelta(minutes=15), done=set())
    assert (warn.action, warn.to, warn.late) == ("warn", ("planners@example.com",), False)
    done = {("wo-1", 0)}
    assert due_actions([view()], policy=POLICY, now=T0 + dt.timedelta(minutes=23), done=done) == []
    (esc,) = due_actions([view()], policy=POLICY, now=T0 + dt.timedelta(minutes=24), done=done)
    assert esc.action == "escalate"
    assert esc.fire_at < esc.respond_by
    assert not esc.late


def test_acknowledged_work_orders_are_not_escalated() -> None:
    """Once the service system assigned it, the response deadline is met."""
    for state in (WoState.ASSIGNED, WoState.IN_PROGRESS, WoState.CLOSED, WoState.CANCELLED):
        assert (
            due_actions([view(state)], policy=POLICY, now=T0 + dt.timedelta(hours=1), done=set())
            == []
        )


def test_proposed_and_failed_work_orders_escalate_too() -> None:
    """Waiting for a planner or dead-lettered: still nobody responded."""
    for state in (WoState.PROPOSED, WoState.FAILED, WoState.PENDING):
        actions = due_actions(
            [view(state)], policy=POLICY, now=T0 + dt.timedelta(minutes=25), done=set()
        )
        assert [a.action for a in actions] == ["warn", "escalate"]


def test_a_tracker_that_was_down_fires_late_rather_than_never() -> None:
    """Past the deadline, unsent steps still go out, flagged late, in firing order."""
    actions = due_actions([view()], policy=POLICY, now=T0 + dt.timedelta(hours=2), done=set())
    assert [(a.step, a.late) for a in actions] == [(0, True), (1, True)]
