"""Gateway status: the retained payload of ``{prefix}/{site}/{gateway}/status``, also the Last Will.

``{"state": "online" | "offline", "ts": ms, "agent_version": "..."}``, exactly as DESIGN.md has it
(no ``schema`` field); unknown fields are rejected, as in every payload of contract v1.
"""

import dataclasses
import re
from typing import Literal, get_args

from prognos_contract import _codec
from prognos_contract._errors import ContractError, show
from prognos_contract._rules import check_fields, check_ts, check_type

StatusState = Literal["online", "offline"]
"""Whether the agent is connected; the Last Will says ``offline``."""

AGENT_VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$"
"""An agent version such as ``0.1.0``, ``1.2.0rc1`` or ``1.2.3+g1a2b3c``."""

_STATES: tuple[StatusState, ...] = get_args(StatusState)
_AGENT_VERSION_RE = re.compile(AGENT_VERSION_PATTERN.removeprefix("^").removesuffix("$"))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """The state of one edge agent.

    Attributes:
        state: ``online`` or ``offline``.
        ts: When the state was set, epoch milliseconds (for the Last Will: when it was registered).
        agent_version: The agent's version, matching ``AGENT_VERSION_PATTERN``.

    Raises:
        ContractError: If any field breaks the contract.
    """

    state: StatusState
    ts: int
    agent_version: str

    def __post_init__(self) -> None:
        _check_state(self.state)
        check_ts(self.ts, path="/ts")
        check_type(self.agent_version, str, path="/agent_version", what="agent_version")
        if _AGENT_VERSION_RE.fullmatch(self.agent_version) is None:
            raise ContractError(
                "bad_value",
                f"agent_version {show(self.agent_version)} does not match {AGENT_VERSION_PATTERN}",
                "/agent_version",
            )


def encode_status(status: Status) -> bytes:
    """Return the payload of a status message (compact UTF-8 JSON).

    Args:
        status: A status (checked on construction).

    Returns:
        The payload.
    """
    document = {"state": status.state, "ts": status.ts, "agent_version": status.agent_version}
    return _codec.dump(document, compress=False)


def decode_status(payload: bytes, *, content_type: str | None = None) -> Status:
    """Return the status in a payload.

    Args:
        payload: The MQTT payload.
        content_type: The MQTT 5 content type, if the message had one.

    Returns:
        The status.

    Raises:
        ContractError: If the payload breaks the contract.
    """
    document = check_type(
        _codec.load(payload, content_type=content_type), dict, path="", what="a status"
    )
    check_fields(document, required=("state", "ts", "agent_version"), path="")
    return Status(
        state=document["state"], ts=document["ts"], agent_version=document["agent_version"]
    )


def _check_state(state: object) -> None:
    if state not in _STATES:
        raise ContractError(
            "bad_value", f"state {show(state)} is not one of {', '.join(_STATES)}", "/state"
        )
