"""MQTT topics of contract v1: build, parse, filters."""

import operator
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prognos_contract import (
    DEFAULT_PREFIX,
    TOPIC_KINDS,
    ContractError,
    Topic,
    TopicKind,
    build_topic,
    parse_topic,
    shared_subscription,
    topic_filter,
)

ids = st.builds(
    operator.add,
    st.sampled_from(string.ascii_lowercase + string.digits),
    st.text(string.ascii_lowercase + string.digits + "_-", max_size=63),
)
prefixes = st.lists(
    st.text(string.ascii_letters + string.digits + "_.-", min_size=1, max_size=12),
    min_size=1,
    max_size=4,
).map("/".join)
NAMED = {"cmd", "cmd-result"}


@st.composite
def topics(draw: st.DrawFn) -> Topic:
    kind: TopicKind = draw(st.sampled_from(TOPIC_KINDS))
    name = draw(ids) if kind in NAMED else None
    return Topic(site=draw(ids), gateway=draw(ids), kind=kind, name=name)


@settings(max_examples=300)
@given(topic=topics(), prefix=prefixes)
def test_every_topic_parses_back_to_what_built_it(topic: Topic, prefix: str) -> None:
    """build_topic then parse_topic returns the same site, gateway, kind and name."""
    built = build_topic(
        topic.kind, site=topic.site, gateway=topic.gateway, name=topic.name, prefix=prefix
    )
    assert built.startswith(prefix + "/")
    assert parse_topic(built, prefix=prefix) == topic


@st.composite
def edited_topics(draw: st.DrawFn) -> str:
    """A valid topic with one character replaced, inserted or deleted (or left alone)."""
    topic = draw(topics())
    text = list(build_topic(topic.kind, site=topic.site, gateway=topic.gateway, name=topic.name))
    position = draw(st.integers(0, len(text) - 1))
    edit = draw(st.sampled_from(["replace", "insert", "delete", "none"]))
    char = draw(st.sampled_from("/+#$Aa0-_. \x00é"))
    if edit == "replace":
        text[position] = char
    elif edit == "insert":
        text.insert(position, char)
    elif edit == "delete":
        del text[position]
    return "".join(text)


def outcome(text: str) -> Topic | ContractError:
    """Return the parsed topic or the rejection; any other exception escapes."""
    try:
        return parse_topic(text)
    except ContractError as exc:
        return exc


@settings(max_examples=300)
@given(text=st.one_of(edited_topics(), st.text(max_size=60)))
def test_any_text_either_parses_to_a_topic_that_rebuilds_or_is_rejected(text: str) -> None:
    """Arbitrary text is a ContractError or a topic that rebuilds to exactly that text."""
    parsed = outcome(text)
    if isinstance(parsed, ContractError):
        assert parsed.reason in {"bad_topic", "bad_name"}
    else:
        rebuilt = build_topic(
            parsed.kind, site=parsed.site, gateway=parsed.gateway, name=parsed.name
        )
        assert rebuilt == text


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("telemetry", None, "prognos/v1/plant1/gw-01/telemetry"),
        ("status", None, "prognos/v1/plant1/gw-01/status"),
        ("events", None, "prognos/v1/plant1/gw-01/events"),
        ("health", None, "prognos/v1/plant1/gw-01/health"),
        ("cmd", "reload-config", "prognos/v1/plant1/gw-01/cmd/reload-config"),
        ("cmd-result", "poll_now", "prognos/v1/plant1/gw-01/cmd-result/poll_now"),
    ],
)
def test_topics_are_those_of_the_contract_table(
    kind: TopicKind, name: str | None, expected: str
) -> None:
    """Each kind builds the topic DESIGN.md lists under the default prefix."""
    assert build_topic(kind, site="plant1", gateway="gw-01", name=name) == expected
    assert parse_topic(expected) == Topic(site="plant1", gateway="gw-01", kind=kind, name=name)


@pytest.mark.parametrize(
    "bad", ["", "Plant1", "plant 1", "plant/1", "+", "#", "-plant", "_plant", "pläntä", "p" * 65]
)
@pytest.mark.parametrize("field", ["site", "gateway", "name"])
def test_an_invalid_name_is_rejected_naming_the_value(bad: str, field: str) -> None:
    """An invalid site, gateway or command name is rejected, and the message quotes it."""
    parts = {"site": "plant1", "gateway": "gw-01", "name": "reload"} | {field: bad}
    with pytest.raises(ContractError) as info:
        build_topic("cmd", **parts)
    assert info.value.reason == "bad_name"
    assert info.value.path == f"/{field}"
    assert repr(bad)[:40] in info.value.message


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "bad_topic"),
        ("prognos/v2/plant1/gw-01/telemetry", "bad_topic"),
        ("prognos/v1", "bad_topic"),
        ("prognos/v1/", "bad_topic"),
        ("prognos/v1/plant1/gw-01", "bad_topic"),
        ("prognos/v1/plant1/gw-01/telemetry/extra", "bad_topic"),
        ("prognos/v1/plant1/gw-01/cmd", "bad_topic"),
        ("prognos/v1/plant1/gw-01/cmd/a/b", "bad_topic"),
        ("prognos/v1/plant1/gw-01/alarms", "bad_topic"),
        ("prognos/v1/plant1/gw-01/Telemetry", "bad_topic"),
        ("prognos/v1/plant1/+/telemetry", "bad_name"),
        ("prognos/v1//gw-01/telemetry", "bad_name"),
        ("prognos/v1/plant1/gw-01/cmd/", "bad_name"),
        ("prognos/v1/plant1/GW/status", "bad_name"),
        ("/prognos/v1/plant1/gw-01/status", "bad_topic"),
    ],
)
def test_a_topic_outside_the_contract_is_rejected(topic: str, reason: str) -> None:
    """A topic with another prefix, level count, kind or name is rejected with a reason."""
    with pytest.raises(ContractError) as info:
        parse_topic(topic)
    assert info.value.reason == reason
    assert info.value.message


def test_commands_need_a_name_and_other_kinds_refuse_one() -> None:
    """Cmd and cmd-result need a command name; the other kinds take none."""
    with pytest.raises(ContractError, match="needs a command name"):
        build_topic("cmd", site="s", gateway="g")
    with pytest.raises(ContractError, match="takes no name"):
        build_topic("telemetry", site="s", gateway="g", name="x")
    with pytest.raises(ContractError) as info:
        build_topic("alarms", site="s", gateway="g")  # type: ignore[arg-type]
    assert info.value.reason == "bad_topic"


@pytest.mark.parametrize("prefix", ["", "/", "a/", "/a", "a//b", "$SYS", "a/+", "a/#", "a b", "é"])
def test_an_invalid_prefix_is_rejected(prefix: str) -> None:
    """A prefix with empty levels, wildcards, $ or odd characters is rejected everywhere."""
    for call in (
        lambda: build_topic("status", site="s", gateway="g", prefix=prefix),
        lambda: parse_topic("x/s/g/status", prefix=prefix),
        lambda: topic_filter("status", prefix=prefix),
    ):
        with pytest.raises(ContractError) as info:
            call()
        assert info.value.reason == "bad_topic"


def test_the_ingester_shares_one_subscription_per_group() -> None:
    """The shared-subscription filter covers every site and gateway of one kind."""
    assert shared_subscription("ingest") == f"$share/ingest/{DEFAULT_PREFIX}/+/+/telemetry"
    assert shared_subscription("ing-2", "events", prefix="acme/prognos/v1") == (
        "$share/ing-2/acme/prognos/v1/+/+/events"
    )
    with pytest.raises(ContractError) as info:
        shared_subscription("in/gest")
    assert info.value.reason == "bad_name"
    assert "'in/gest'" in info.value.message


def test_filters_use_a_wildcard_for_each_part_left_out() -> None:
    """topic_filter puts + for a missing site or gateway, and for every command name."""
    assert topic_filter("health") == "prognos/v1/+/+/health"
    assert topic_filter("status", site="plant1") == "prognos/v1/plant1/+/status"
    assert topic_filter("cmd", site="plant1", gateway="gw-01") == "prognos/v1/plant1/gw-01/cmd/+"
