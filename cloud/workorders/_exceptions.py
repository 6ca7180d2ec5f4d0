"""Work-order errors, one class per thing the caller does differently (STYLE.md 8).

::

    WorkOrderError
    ├── PolicyError                  startup only; never retried; names file, key and value
    ├── DeliveryError                one attempt failed; the outbox retries
    │   ├── ServiceUnavailableError  not sent (refused, 5xx): retry after the back-off
    │   ├── DeliveryUncertainError   may exist (timeout after sending): look up by key first
    │   └── DeliveryRejectedError    4xx: the request is wrong; dead-letter, never retry
    ├── InboundRejectedError         inbound webhook refused: signature, stale, replay, body
    └── AlertConflictError           an alert kept changing under a compare-and-set: try later
"""

from __future__ import annotations


class WorkOrderError(Exception):
    """The root of this package's errors."""


class PolicyError(WorkOrderError):
    """The service policy is invalid; stop at startup and fix the file.

    Attributes:
        source: The file (or ``<policy>``).
    """

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class DeliveryError(WorkOrderError):
    """One call to the service system failed.

    Attributes:
        key: The work order's key.
        reason: A short code (``connect``, ``timeout``, ``http_500``, ...).
    """

    def __init__(self, message: str, *, key: str, reason: str) -> None:
        super().__init__(message)
        self.key = key
        self.reason = reason


class ServiceUnavailableError(DeliveryError):
    """Nothing was created: retry after the back-off."""


class DeliveryUncertainError(DeliveryError):
    """It may have been created: look it up by key before creating again."""


class DeliveryRejectedError(DeliveryError):
    """The service system refused the request as wrong: dead-letter it, never retry blindly."""


class InboundRejectedError(WorkOrderError):
    """An inbound webhook was refused; answer 4xx and change nothing.

    Attributes:
        reason: ``bad_signature``, ``stale``, ``replayed``, ``missing_header``, ``bad_body``,
            ``unknown_work_order`` or ``illegal_transition``.
        status: The HTTP status to answer.
    """

    def __init__(self, message: str, *, reason: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class AlertConflictError(WorkOrderError):
    """An alert's compare-and-set update lost every retry to other writers; nothing changed.

    Attributes:
        alert_id: The alert.
        attempts: How many times it was tried.
    """

    def __init__(self, message: str, *, alert_id: str, attempts: int) -> None:
        super().__init__(message)
        self.alert_id = alert_id
        self.attempts = attempts
