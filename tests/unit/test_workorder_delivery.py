"""Adapters on httpx.MockTransport; the delivery worker's exactly-once logic, clock controlled."""

# ruff: noqa: ARG001, ARG002, D102, S106 - protocol stubs ignore arguments; test credentials

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from cloud.workorders import (
    Admission,
    DeliveryRejectedError,
    DeliveryUncertainError,
    DeliveryWorker,
    ServiceNowServiceSystem,
    ServicePolicy,
    ServiceUnavailableError,
    Store,
    WebhookServiceSystem,
    WoEvent,
    WorkOrder,
    WoState,
    backoff_delay,
    build_from_rule,
    new_secret,
    parse_policy,
)

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
SECRET = new_secret()


class Clock:
    """A controlled clock: tests move it, nothing else does."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


class Asset:
    """A minimal asset record."""

    asset_id = "pump-07"
    site = "plant1"
    customer = "ACME"
    tier = "Regular"
    profile = "aquaflo_cpv150_2.x"
    asset_class = "pump"
    team = "north"
    criticality = "high"
    warranty_end = None


def make_wo(window: str = "w1") -> WorkOrder:
    return build_from_rule(
        asset=Asset(),
        profile=None,
        consumable="mechanical_seal",
        window=window,
        due_by=T0 + dt.timedelta(days=10),
        reason="test",
        created_at=T0,
        policy=ServicePolicy(),
    )


def standard_webhooks_ok(request: httpx.Request) -> bool:
    """An independent check of the signature (the spec, not our code)."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    msg = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode()
    mac = hmac.new(key, msg + request.content, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    return expected in request.headers["webhook-signature"].split()


# ------------------------------------------------------------------ adapters


def test_webhook_create_is_signed_with_idempotency_key_and_event_type() -> None:
    """POST workorder.created: Standard Webhooks headers, Idempotency-Key = the key, id back."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "EXT-1"})

    wo = make_wo()
    adapter = WebhookServiceSystem(
        url="http://svc/hook",
        secret=SECRET,
        transport=httpx.MockTransport(handler),
        clock=lambda: T0,
    )
    assert adapter.create(wo, wo.key) == "EXT-1"
    (req,) = seen
    assert standard_webhooks_ok(req)
    assert req.headers["idempotency-key"] == wo.key
    assert req.headers["webhook-timestamp"] == str(int(T0.timestamp()))
    body = json.loads(req.content)
    assert body["type"] == "workorder.created"
    assert body["data"]["key"] == wo.key


def test_webhook_conflict_is_resolved_by_lookup() -> None:
    """A 409 (the receiver has the key) becomes the existing id via GET by-key."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            assert request.url.path == f"/hook/by-key/{wo.key}"
            return httpx.Response(200, json={"id": "EXT-9"})
        return httpx.Response(409)

    wo = make_wo()
    adapter = WebhookServiceSystem(
        url="http://svc/hook", secret=SECRET, transport=httpx.MockTransport(handler)
    )
    assert adapter.create(wo, wo.key) == "EXT-9"


@pytest.mark.parametrize(
    ("answer", "error", "reason"),
    [
        (httpx.ConnectError("refused"), ServiceUnavailableError, "connect"),
        (httpx.ReadTimeout("slow"), DeliveryUncertainError, "timeout"),
        (httpx.RemoteProtocolError("dropped"), DeliveryUncertainError, "transport"),
        (httpx.Response(500), DeliveryUncertainError, "http_500"),
        (httpx.Response(429), ServiceUnavailableError, "http_429"),
        (httpx.Response(400, text="bad field"), DeliveryRejectedError, "http_400"),
    ],
)
def test_errors_map_to_what_the_caller_must_do(
    answer: Exception | httpx.Response, error: type[Exception], reason: str
) -> None:
    """Not sent -> retry; may exist -> look up first; refused as wrong -> dead-letter."""

    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    wo = make_wo()
    for adapter in (
        WebhookServiceSystem(
            url="http://svc/h", secret=SECRET, transport=httpx.MockTransport(handler)
        ),
        ServiceNowServiceSystem(
            instance_url="http://sn", user="u", password="p", transport=httpx.MockTransport(handler)
        ),
    ):
        with pytest.raises(error) as info:
            adapter.create(wo, wo.key)
        assert info.value.reason == reason  # type: ignore[attr-defined]
        assert info.value.key == wo.key  # type: ignore[attr-defined]


def test_servicenow_create_and_lookup_by_correlation_id() -> None:
    """POST /api/now/table/wm_order with correlation_id; GET with sysparm_query; bearer auth."""
    records: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok"
        assert request.url.path == "/api/now/table/wm_order"
        if request.method == "POST":
            records.append(json.loads(request.content) | {"sys_id": "abc"})
            return httpx.Response(201, json={"result": records[-1]})
        query = request.url.params["sysparm_query"]
        hits = [r for r in records if f"correlation_id={r['correlation_id']}" == query]
        return httpx.Response(200, json={"result": hits})

    wo = make_wo()
    sn = ServiceNowServiceSystem(
        instance_url="http://sn/", token="tok", transport=httpx.MockTransport(handler)
    )
    assert sn.find_by_key(wo.key) is None
    assert sn.create(wo, wo.key) == "abc"
    assert records[0]["correlation_id"] == wo.key
    assert records[0]["priority"] == "4"
    assert sn.find_by_key(wo.key) == "abc"


def test_servicenow_needs_credentials() -> None:
    """Neither user and password nor token: refused at construction."""
    with pytest.raises(ValueError, match="user and password, or token"):
        ServiceNowServiceSystem(instance_url="http://sn", user="u")


# ------------------------------------------------------------------ worker


class Flaky:
    """A scripted service system: a list of outcomes per call, records what exists."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.created: dict[str, str] = {}
        self.calls: list[str] = []

    def _next(self, key: str) -> str:
        return self.script.pop(0) if self.script else "ok"

    def create(self, work_order: WorkOrder, key: str) -> str:
        self.calls.append("create")
        outcome = self._next(key)
        if outcome == "refused":
            raise ServiceUnavailableError("refused", key=key, reason="connect")
        if outcome == "reject":
            raise DeliveryRejectedError("bad", key=key, reason="http_400")
        self.created.setdefault(key, f"X{len(self.created)}")
        if outcome == "timeout_after_create":
            raise DeliveryUncertainError("late", key=key, reason="timeout")
        return self.created[key]

    def find_by_key(self, key: str) -> str | None:
        self.calls.append("find")
        return self.created.get(key)

    def update(self, external_id: str, work_order: WorkOrder, key: str) -> None:
        self.calls.append("update")

    def cancel(self, external_id: str, key: str, reason: str) -> None:
        self.calls.append("cancel")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "decisions.db")
    yield s
    s.close()


POLICY = parse_policy({"delivery": {"max_attempts": 3, "backoff_min": "10s", "backoff_max": "1m"}})


def test_a_timeout_after_create_is_looked_up_not_created_again(store: Store) -> None:
    """Timeout after the service created it: the next attempt finds it by key; one record."""
    clock = Clock()
    wo = make_wo()
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    service = Flaky(["timeout_after_create"])
    worker = DeliveryWorker(
        store=store, service=service, policy=POLICY.delivery, clock=clock, jitter=lambda: 0.0
    )
    assert worker.run_once().retried == 1
    assert worker.run_once().found == 0, "not due before the back-off"
    clock.now += dt.timedelta(seconds=5)
    assert worker.run_once().found == 1
    assert service.calls == ["create", "find"]
    rec = store.get(wo.key)
    assert (rec.state, rec.external_id) == (WoState.CREATED, "X0")
    assert [d["outcome"] for d in store.deliveries(wo.key)] == [
        "started",
        "timeout",
        "started",
        "found",
    ]


def test_a_worker_killed_mid_call_looks_up_on_restart(store: Store) -> None:
    """begin_attempt committed, then the process died: the row is due again and uncertain."""
    clock = Clock()
    wo = make_wo()
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    (item,) = store.due(T0)
    store.begin_attempt(item, now=T0, retry_at=T0 + dt.timedelta(seconds=10))  # ... killed here
    service = Flaky([])
    service.created[wo.key] = "X-early"  # the service system had created it
    clock.now += dt.timedelta(seconds=10)
    DeliveryWorker(store=store, service=service, policy=POLICY.delivery, clock=clock).run_once()
    assert service.calls == ["find"]
    assert store.get(wo.key).external_id == "X-early"


def test_refused_connections_do_not_make_a_row_uncertain(store: Store) -> None:
    """Connection refused means not sent: the retry creates without a lookup."""
    clock = Clock()
    wo = make_wo()
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    service = Flaky(["refused"])
    worker = DeliveryWorker(
        store=store, service=service, policy=POLICY.delivery, clock=clock, jitter=lambda: 0.0
    )
    worker.run_once()
    clock.now += dt.timedelta(minutes=1)
    assert worker.run_once().created == 1
    assert service.calls == ["create", "create"]


def test_dead_letter_after_max_attempts_is_visible_and_retryable(store: Store) -> None:
    """Three refusals with max_attempts=3: dead, work order failed, logged once; retry requeues."""
    clock = Clock()
    wo = make_wo()
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    service = Flaky(["refused"] * 3)
    worker = DeliveryWorker(
        store=store, service=service, policy=POLICY.delivery, clock=clock, jitter=lambda: 0.0
    )
    with capture_logs() as logs:
        for _ in range(3):
            worker.run_once()
            clock.now += dt.timedelta(minutes=5)
    assert store.get(wo.key).state is WoState.FAILED
    assert store.counts()["outbox_dead"] == 1
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["work_order_dead_lettered"]
    assert sum(e["event"] == "service_system_unavailable" for e in logs) == 1
    store.transition(wo.key, WoEvent.RETRY, now=clock.now, source="test")
    assert worker.run_once().created == 1
    assert store.get(wo.key).state is WoState.CREATED


def test_a_rejected_request_is_dead_lettered_at_once(store: Store) -> None:
    """HTTP 400: the request is wrong; retrying would not help."""
    wo = make_wo()
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    worker = DeliveryWorker(
        store=store, service=Flaky(["reject"]), policy=POLICY.delivery, clock=Clock()
    )
    assert worker.run_once().dead == 1
    assert store.get(wo.key).state is WoState.FAILED


def test_the_same_key_is_stored_once(store: Store) -> None:
    """A second scoring run that builds the same work order changes nothing."""
    wo = make_wo()
    assert store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    assert not store.add(wo, Admission(WoState.PENDING, "auto"), now=T0 + dt.timedelta(hours=1))
    assert len(store.outbox()) == 1


def test_a_proposed_work_order_waits_for_approval(store: Store) -> None:
    """Suggest mode: nothing is queued until a planner approves; then it counts on the budget."""
    wo = make_wo()
    store.add(wo, Admission(WoState.PROPOSED, "suggest_mode"), now=T0)
    assert store.due(T0 + dt.timedelta(days=1)) == []
    assert store.sent_today("north", T0.date()) == 0
    store.transition(wo.key, WoEvent.APPROVE, now=T0, source="planner")
    assert [i.key for i in store.due(T0)] == [wo.key]
    assert store.sent_today("north", T0.date()) == 1


def test_cancelling_a_delivered_work_order_queues_a_cancel_call(store: Store) -> None:
    """A planner's cancel after delivery reaches the service system."""
    clock = Clock()
    wo = make_wo()
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    service = Flaky([])
    worker = DeliveryWorker(store=store, service=service, policy=POLICY.delivery, clock=clock)
    worker.run_once()
    store.transition(wo.key, WoEvent.CANCEL, now=T0, source="planner")
    assert worker.run_once().updated == 1
    assert service.calls == ["create", "cancel"]


@pytest.mark.parametrize(
    ("attempts", "jitter", "seconds"),
    [(1, 0.0, 5), (1, 1.0, 10), (2, 1.0, 20), (10, 1.0, 60), (10, 0.0, 30)],
)
def test_backoff_doubles_with_equal_jitter_up_to_the_cap(
    attempts: int, jitter: float, seconds: float
) -> None:
    """10 s, 20 s, 40 s ... capped at 1 min, each 50-100 %."""
    assert backoff_delay(attempts, policy=POLICY.delivery, jitter=jitter) == dt.timedelta(
        seconds=seconds
    )


def test_cancelling_before_sending_drops_the_create(store: Store) -> None:
    """Withdrawn before any attempt: nothing reaches the service system."""
    wo = make_wo()
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    store.transition(wo.key, WoEvent.CANCEL, now=T0, source="scorer")
    service = Flaky([])
    DeliveryWorker(store=store, service=service, policy=POLICY.delivery, clock=Clock()).run_once()
    assert service.calls == []
    assert [i.status for i in store.outbox()] == ["cancelled"]


def test_cancelling_after_an_uncertain_attempt_finds_and_cancels_it(store: Store) -> None:
    """The create timed out (it exists there), then it was cancelled: look up, then cancel."""
    clock = Clock()
    wo = make_wo()
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    service = Flaky(["timeout_after_create"])
    worker = DeliveryWorker(store=store, service=service, policy=POLICY.delivery, clock=clock)
    worker.run_once()
    store.transition(wo.key, WoEvent.CANCEL, now=T0, source="planner")
    clock.now += dt.timedelta(minutes=5)
    worker.run_once()
    assert service.calls == ["create", "find", "cancel"]
    assert [d["outcome"] for d in store.deliveries(wo.key)][-1] == "cancelled"


def test_new_content_is_sent_as_an_update_once_delivered(store: Store) -> None:
    """Before delivery the create carries it; after, an update call goes out."""
    clock = Clock()
    wo = make_wo()
    store.add(wo, Admission(WoState.PENDING, "auto"), now=T0)
    newer = wo.model_copy(update={"title": "pump-07: replace the seal now"})
    assert store.update(newer, now=T0, source="scorer") is WoState.PENDING
    service = Flaky([])
    worker = DeliveryWorker(store=store, service=service, policy=POLICY.delivery, clock=clock)
    worker.run_once()
    assert store.get(wo.key).work_order.title == "pump-07: replace the seal now"
    assert store.update(wo, now=T0, source="scorer") is WoState.CREATED
    assert worker.run_once().updated == 1
    assert service.calls == ["create", "update"]
    store.apply_status(wo.key, WoEvent.CLOSED, now=T0, external_id=None, feedback=None)
    assert store.update(newer, now=T0, source="scorer") is WoState.CLOSED
    assert store.get(wo.key).work_order.title == wo.title, "a closed work order keeps its content"
