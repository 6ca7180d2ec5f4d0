"""Standard Webhooks signing and verification (pure), with a controlled clock."""

import datetime as dt
from collections.abc import Callable

import pytest

from cloud.workorders import InboundRejectedError, new_secret, sign, signed_headers, verify

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
SECRET = new_secret()
BODY = b'{"type":"workorder.status"}'
Mutation = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def test_a_signed_message_verifies() -> None:
    """Round trip: our headers pass our verifier, header names in any case."""
    headers = {k.upper(): v for k, v in signed_headers(SECRET, "msg_1", NOW, BODY).items()}
    assert verify(headers, BODY, secrets_=[SECRET], now=NOW) == ("msg_1", NOW)


def test_the_spec_example_signature() -> None:
    """The example of the Standard Webhooks specification."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - the spec's public test vector
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.parametrize("offset_s", [-301, 301])
def test_stale_or_future_messages_are_refused(offset_s: int) -> None:
    """Outside five minutes either way: stale, even with a good signature."""
    headers = signed_headers(SECRET, "msg_1", NOW + dt.timedelta(seconds=offset_s), BODY)
    with pytest.raises(InboundRejectedError) as info:
        verify(headers, BODY, secrets_=[SECRET], now=NOW)
    assert (info.value.reason, info.value.status) == ("stale", 401)


def test_at_the_tolerance_it_still_verifies() -> None:
    """Exactly 300 s old is inside the tolerance."""
    headers = signed_headers(SECRET, "msg_1", NOW - dt.timedelta(seconds=300), BODY)
    assert verify(headers, BODY, secrets_=[SECRET], now=NOW)[0] == "msg_1"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, b: (h, b + b" "), "bad_signature"),
        (lambda h, b: (h | {"webhook-id": "msg_2"}, b), "bad_signature"),
        (
            lambda h, b: (h | {"webhook-signature": "v2," + h["webhook-signature"][3:]}, b),
            "bad_signature",
        ),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "missing_header"),
        (lambda h, b: (h | {"webhook-timestamp": "soon"}, b), "bad_signature"),
    ],
)
def test_tampered_messages_are_refused(mutate: Mutation, reason: str) -> None:
    """Changed body, id or version, a missing header, a bad timestamp: refused."""
    headers, body = mutate(signed_headers(SECRET, "msg_1", NOW, BODY), BODY)
    with pytest.raises(InboundRejectedError) as info:
        verify(headers, body, secrets_=[SECRET], now=NOW)
    assert info.value.reason == reason


def test_key_rotation_accepts_either_secret_and_several_signatures() -> None:
    """During a rotation both secrets verify; a header may carry several signatures."""
    old, new = new_secret(), new_secret()
    headers = signed_headers(old, "msg_1", NOW, BODY)
    headers["webhook-signature"] = (
        f"{sign(new, 'msg_1', int(NOW.timestamp()), BODY)} " + headers["webhook-signature"]
    )
    assert verify(headers, BODY, secrets_=[old], now=NOW)[0] == "msg_1"
    assert verify(headers, BODY, secrets_=[new, old], now=NOW)[0] == "msg_1"
    with pytest.raises(InboundRejectedError):
        verify(headers, BODY, secrets_=[new_secret()], now=NOW)
