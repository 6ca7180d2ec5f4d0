"""MQTT topics of contract v1: build them, parse them, and the ingester's subscription filters.

``{prefix}/{site}/{gateway}/{kind}`` for ``telemetry``, ``status``, ``events`` and ``health``, and
``{prefix}/{site}/{gateway}/{kind}/{name}`` for ``cmd`` and ``cmd-result``. The prefix defaults to
``prognos/v1``. Site, gateway, command name and share group each match ``ID_PATTERN``, so none can
hold a ``/``, a wildcard or upper case, and every topic parses back to exactly what built it.
"""

import re
from typing import Literal, NamedTuple, get_args

from prognos_contract._errors import ContractError, show
from prognos_contract._rules import check_id

DEFAULT_PREFIX = "prognos/v1"
"""The topic prefix of contract v1."""

TopicKind = Literal["telemetry", "status", "events", "health", "cmd", "cmd-result"]
"""The last fixed level of a topic; ``cmd`` and ``cmd-result`` are followed by a command name."""

TOPIC_KINDS: tuple[TopicKind, ...] = get_args(TopicKind)
"""Every ``TopicKind``, in the order of the contract's table."""

_NAMED_KINDS: frozenset[str] = frozenset({"cmd", "cmd-result"})
# Levels after the prefix: site, gateway, kind, and a command name.
_LEVELS_NAMED = 4
# Levels of plain characters: no wildcards, no empty level, no leading "$" (reserved by brokers).
_PREFIX_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}")


class Topic(NamedTuple):
    """A parsed topic: who sent or receives it, and what it carries.

    Attributes:
        site: The site, matching ``ID_PATTERN``.
        gateway: The gateway, matching ``ID_PATTERN``.
        kind: What the topic carries.
        name: The command name for ``cmd`` and ``cmd-result``, else ``None``.
    """

    site: str
    gateway: str
    kind: TopicKind
    name: str | None = None


def build_topic(
    kind: TopicKind,
    *,
    site: str,
    gateway: str,
    name: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """Return the topic of one kind for one gateway.

    Args:
        kind: One of ``TOPIC_KINDS``.
        site: The site, matching ``ID_PATTERN``.
        gateway: The gateway, matching ``ID_PATTERN``.
        name: The command name, required for ``cmd`` and ``cmd-result`` and refused otherwise.
        prefix: The topic prefix, levels of ``[A-Za-z0-9_.-]`` separated by ``/``.

    Returns:
        The topic, e.g. ``prognos/v1/plant1/gw-01/cmd/reload-config``.

    Raises:
        ContractError: ``bad_name`` for an invalid site, gateway or name; ``bad_topic`` for an
            unknown kind, a missing or unexpected name, or an invalid prefix.
    """
    levels = [
        _check_prefix(prefix),
        check_id(site, path="/site", what="site"),
        check_id(gateway, path="/gateway", what="gateway"),
        _check_kind(kind),
    ]
    if kind in _NAMED_KINDS:
        if name is None:
            raise ContractError("bad_topic", f"a {kind!r} topic needs a command name", "/name")
        levels.append(check_id(name, path="/name", what="command name"))
    elif name is not None:
        raise ContractError(
            "bad_topic", f"a {kind!r} topic takes no name, got {show(name)}", "/name"
        )
    return "/".join(levels)


def parse_topic(topic: str, *, prefix: str = DEFAULT_PREFIX) -> Topic:
    """Return the parts of a contract v1 topic.

    Args:
        topic: A topic as received, e.g. ``prognos/v1/plant1/gw-01/telemetry``.
        prefix: The topic prefix it must start with.

    Returns:
        The site, gateway, kind and (for commands) name.

    Raises:
        ContractError: ``bad_topic`` for another prefix, level count or kind; ``bad_name`` for an
            invalid site, gateway or command name.
    """
    head = _check_prefix(prefix) + "/"
    if not isinstance(topic, str) or not topic.startswith(head):
        raise ContractError("bad_topic", f"topic {show(topic)} does not start with {head!r}")
    levels = topic.removeprefix(head).split("/")
    named = len(levels) == _LEVELS_NAMED
    if not named and len(levels) != _LEVELS_NAMED - 1:
        raise ContractError(
            "bad_topic",
            f"topic {show(topic)} has {len(levels)} levels after the prefix, expected "
            "{site}/{gateway}/{kind} or {site}/{gateway}/cmd[-result]/{name}",
        )
    site = check_id(levels[0], path="/site", what="site")
    gateway = check_id(levels[1], path="/gateway", what="gateway")
    kind = _check_kind(levels[2])
    if (kind in _NAMED_KINDS) != named:
        raise ContractError(
            "bad_topic",
            f"topic {show(topic)}: {kind!r} "
            + ("needs a command name" if kind in _NAMED_KINDS else "takes no further level"),
        )
    name = check_id(levels[3], path="/name", what="command name") if named else None
    return Topic(site=site, gateway=gateway, kind=kind, name=name)


def topic_filter(
    kind: TopicKind,
    *,
    site: str | None = None,
    gateway: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """Return a subscription filter for one kind, with ``+`` for each part left out.

    For ``cmd`` and ``cmd-result`` the command name is always ``+``: an edge agent subscribes to
    ``topic_filter("cmd", site=..., gateway=...)`` and receives every command.

    Args:
        kind: One of ``TOPIC_KINDS``.
        site: One site, or ``None`` for all.
        gateway: One gateway, or ``None`` for all.
        prefix: The topic prefix.

    Returns:
        A filter such as ``prognos/v1/+/+/telemetry``.

    Raises:
        ContractError: As ``build_topic``.
    """
    levels = [
        _check_prefix(prefix),
        "+" if site is None else check_id(site, path="/site", what="site"),
        "+" if gateway is None else check_id(gateway, path="/gateway", what="gateway"),
        _check_kind(kind),
    ]
    if kind in _NAMED_KINDS:
        levels.append("+")
    return "/".join(levels)


def shared_subscription(
    group: str, kind: TopicKind = "telemetry", *, prefix: str = DEFAULT_PREFIX
) -> str:
    """Return the MQTT 5 shared-subscription filter the ingesters of one group subscribe to.

    The broker delivers each message to one subscriber of the group, so ingesters scale out.

    Args:
        group: The share name, matching ``ID_PATTERN``.
        kind: What to receive from every site and gateway.
        prefix: The topic prefix.

    Returns:
        ``$share/{group}/{prefix}/+/+/{kind}``, e.g. ``$share/ingest/prognos/v1/+/+/telemetry``.

    Raises:
        ContractError: ``bad_name`` for an invalid group; otherwise as ``topic_filter``.
    """
    check_id(group, path="/group", what="share group")
    return f"$share/{group}/{topic_filter(kind, prefix=prefix)}"


def _check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or _PREFIX_RE.fullmatch(prefix) is None:
        raise ContractError(
            "bad_topic",
            f"topic prefix {show(prefix)} must be 1 to 8 levels of [A-Za-z0-9_.-] joined by '/'",
        )
    return prefix


def _check_kind(kind: object) -> TopicKind:
    for known in TOPIC_KINDS:
        if kind == known:
            return known
    raise ContractError(
        "bad_topic", f"topic kind {show(kind)} is not one of {', '.join(TOPIC_KINDS)}", "/kind"
    )
