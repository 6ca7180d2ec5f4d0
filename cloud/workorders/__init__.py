"""Work orders: priority and SLA policy, the lifecycle, a durable outbox, service-system adapters.

The decision and delivery layer between alerts and the service system (DESIGN.md "Work orders to
the service system"; docs/workorders.md):

- pure: `classify` and `deadlines` (DESIGN.md's service levels, tier, business-day calendar),
  `build_from_prediction` / `build_from_rule` with the deterministic `work_order_key`,
  `due_consumables` (calendar and usage rules), `admit` (mode and daily budget), `due_actions`
  (SLA warnings and escalations), the lifecycle table `TRANSITIONS` / `apply`;
- I/O: `Store` (one SQLite file), `DeliveryWorker` (the outbox, exactly once in effect),
  `WebhookServiceSystem` and `ServiceNowServiceSystem` behind `ServiceSystem`, `InboundHandler`
  and `InboundServer` (signed status callbacks), `SlaTracker` (e-mail and webhook), and
  `FakeServiceSystem` (a real local HTTP service system for tests and the simulator).
"""

from cloud.workorders._adapters import (
    RemoteStatus,
    ServiceNowServiceSystem,
    ServiceSystem,
    WebhookServiceSystem,
)
from cloud.workorders._build import build_from_prediction, build_from_rule
from cloud.workorders._deliver import DeliveryReport, DeliveryWorker, backoff_delay
from cloud.workorders._dryrun import (
    AlertReplay,
    DryRunReport,
    DryWorkOrder,
    Failure,
    FailureOutcome,
    Opening,
    ScoreAt,
    WeekCount,
    admit_openings,
    dry_run,
    match_failures,
    summarize,
)
from cloud.workorders._exceptions import (
    AlertConflictError,
    DeliveryError,
    DeliveryRejectedError,
    DeliveryUncertainError,
    InboundRejectedError,
    PolicyError,
    ServiceUnavailableError,
    WorkOrderError,
)
from cloud.workorders._fake_service import FakeServiceSystem
from cloud.workorders._guardrails import Admission, admit, budget_day
from cloud.workorders._inbound import InboundHandler, InboundResult, InboundServer
from cloud.workorders._model import (
    AssetLike,
    Evidence,
    PartLine,
    ProfileLike,
    SimilarCase,
    WorkOrder,
    alert_window,
    work_order_key,
)
from cloud.workorders._notify import EmailNotifier, SlaTracker, WebhookNotifier
from cloud.workorders._policy import (
    BusinessDays,
    NextPlanningCycle,
    Priority,
    ServicePolicy,
    UntilDueBy,
    load_policy,
    parse_policy,
)
from cloud.workorders._poll import StatusSource, poll_statuses
from cloud.workorders._priority import (
    Deadlines,
    add_business_days,
    classify,
    deadlines,
    due_by_date,
    next_planning_cycle,
    order_by_date,
    resolution_mode,
)
from cloud.workorders._rules import RuleDue, due_consumables
from cloud.workorders._signing import new_secret, sign, signed_headers, verify
from cloud.workorders._sla import SlaAction, SlaView, due_actions
from cloud.workorders._state import (
    TRANSITIONS,
    IllegalWorkOrderTransition,
    WoEvent,
    WoState,
    apply,
)
from cloud.workorders._store import (
    Feedback,
    OutboxItem,
    Store,
    WorkOrderRecord,
    alert_from_record,
)
from cloud.workorders._submit import submit

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "add_business_days",
    "Admission",
    "admit",
    "admit_openings",
    "alert_from_record",
    "alert_window",
    "AlertConflictError",
    "AlertReplay",
    "apply",
    "AssetLike",
    "backoff_delay",
    "budget_day",
    "build_from_prediction",
    "build_from_rule",
    "BusinessDays",
    "classify",
    "Deadlines",
    "deadlines",
    "DeliveryError",
    "DeliveryRejectedError",
    "DeliveryReport",
    "DeliveryUncertainError",
    "DeliveryWorker",
    "dry_run",
    "DryRunReport",
    "DryWorkOrder",
    "due_actions",
    "due_by_date",
    "due_consumables",
    "EmailNotifier",
    "Evidence",
    "Failure",
    "FailureOutcome",
    "FakeServiceSystem",
    "Feedback",
    "IllegalWorkOrderTransition",
    "InboundHandler",
    "InboundRejectedError",
    "InboundResult",
    "InboundServer",
    "load_policy",
    "match_failures",
    "new_secret",
    "next_planning_cycle",
    "NextPlanningCycle",
    "Opening",
    "order_by_date",
    "OutboxItem",
    "parse_policy",
    "PartLine",
    "PolicyError",
    "poll_statuses",
    "Priority",
    "ProfileLike",
    "RemoteStatus",
    "resolution_mode",
    "RuleDue",
    "ScoreAt",
    "ServiceNowServiceSystem",
    "ServicePolicy",
    "ServiceSystem",
    "ServiceUnavailableError",
    "sign",
    "signed_headers",
    "SimilarCase",
    "SlaAction",
    "SlaTracker",
    "SlaView",
    "StatusSource",
    "Store",
    "submit",
    "summarize",
    "TRANSITIONS",
    "UntilDueBy",
    "verify",
    "WebhookNotifier",
    "WebhookServiceSystem",
    "WeekCount",
    "WoEvent",
    "work_order_key",
    "WorkOrder",
    "WorkOrderError",
    "WorkOrderRecord",
    "WoState",
]
