"""Standard Webhooks signatures (https://www.standardwebhooks.com/): sign and verify, pure.

A secret is ``whsec_`` + base64 of the key bytes. The signature of a message is
``v1,`` + base64(HMAC-SHA256(key, ``{webhook-id}.{webhook-timestamp}.{body}``)); the
``webhook-signature`` header holds one or more of them separated by spaces (key rotation).
``webhook-timestamp`` is integer seconds since the epoch; a message outside ``tolerance`` of now
is refused as stale, whatever its signature. Replays inside the tolerance are refused by the
caller's seen-id store (`cloud.workorders.InboundHandler`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence

from cloud.workorders._exceptions import InboundRejectedError

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh random secret in the ``whsec_`` convention (24 bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The key bytes of a ``whsec_...`` secret (a secret without the prefix is used as is).

    Raises:
        ValueError: The part after ``whsec_`` is not base64.
    """
    if not secret.startswith(PREFIX):
        return secret.encode()
    try:
        return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except binascii.Error:
        raise ValueError("webhook secret after 'whsec_' must be base64") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, now: dt.datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, sent at `now`."""
    ts = int(now.timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets_: Sequence[str],
    now: dt.datetime,
    tolerance: dt.timedelta = dt.timedelta(minutes=5),
) -> tuple[str, dt.datetime]:
    """Check a message's signature and age.

    Args:
        headers: Request headers; names compared case-insensitively.
        body: The raw body, exactly as received.
        secrets_: The accepted secrets (several during a rotation).
        now: The current time.
        tolerance: How far the timestamp may be from `now`, either way.

    Returns:
        The message id and its timestamp.

    Raises:
        InboundRejectedError: ``missing_header``, ``stale`` or ``bad_signature`` (401).
    """
    lower = {k.casefold(): v for k, v in headers.items()}
    try:
        msg_id = lower["webhook-id"]
        ts_text = lower["webhook-timestamp"]
        offered = lower["webhook-signature"].split()
    except KeyError as exc:
        raise InboundRejectedError(
            f"webhook header {exc.args[0]!r} is missing", reason="missing_header", status=400
        ) from None
    try:
        ts = int(ts_text)
    except ValueError:
        raise InboundRejectedError(
            f"webhook-timestamp must be integer seconds. Got {ts_text!r} instead",
            reason="bad_signature",
            status=401,
        ) from None
    sent = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    if abs(now - sent) > tolerance:
        raise InboundRejectedError(
            f"webhook {msg_id!r} is stale: sent {sent.isoformat()}, now {now.isoformat()}, "
            f"tolerance {tolerance}",
            reason="stale",
            status=401,
        )
    wanted = [sign(s, msg_id, ts, body).encode() for s in secrets_]
    for candidate in offered:
        if any(hmac.compare_digest(candidate.encode(), w) for w in wanted):
            return msg_id, sent
    raise InboundRejectedError(
        f"webhook {msg_id!r} has no valid v1 signature", reason="bad_signature", status=401
    )
