"""Errors: pydantic's ValidationError and YAML errors, turned into STYLE.md 4 lines.

`ProfileError` carries one `ProfileIssue` per broken rule; each prints as
``file: key must ... Got X instead. (line N)``. The YAML loader here refuses duplicate keys and
keeps the node tree, so that every issue can name its line.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError

from edge_agent._exceptions import ConfigError
from edge_agent._profile._fields import _RuleError
from edge_agent._profile._model import Profile


@dataclass(frozen=True, slots=True)
class ProfileIssue:
    """One broken rule of one profile file.

    Attributes:
        key: The key path (``signals[3].byte_order``); empty for the file as a whole.
        rule: What the key must be (``must be one of 'ABCD','BADC','CDAB','DCBA'``).
        value: The offending value, or ``...`` when there is none to show (a missing key).
        line: The 1-based line of the key in the file, if known.
    """

    key: str
    rule: str
    value: object = ...
    line: int | None = None

    def message(self, path: str) -> str:
        """The issue as one line: file, key, rule, value (and the line, if known)."""
        rule = self.rule.rstrip(".")
        text = f"{path}: {self.key} {rule}." if self.key else f"{path}: {rule}."
        if self.value is not ...:
            text += f" Got {_show(self.value)} instead."
        if self.line is not None:
            text += f" (line {self.line})"
        return text


class ProfileError(ConfigError):
    """A firmware profile (or a folder of them) is invalid, or no profile fits a device.

    Caller: as for every `ConfigError`, print the message and stop; fix the file it names.
    The message has one line per issue, each naming the file, the key, the rule and the value.

    Attributes:
        issues: Every broken rule, in file order (empty for errors that span files).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        issues: Sequence[ProfileIssue] = (),
    ) -> None:
        super().__init__(message, path=path, key=key)
        self.issues = tuple(issues)

    @classmethod
    def from_issues(cls, path: str, issues: Sequence[ProfileIssue]) -> ProfileError:
        """Build the error for ``issues`` of the file ``path`` (at least one issue)."""
        message = "\n".join(issue.message(path) for issue in issues)
        return cls(message, path=path, key=issues[0].key or None, issues=issues)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004 - a log-friendly width


def _format_key(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


_TYPE_RULES: Final[dict[str, str]] = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
}
_BOUND_RULES: Final[dict[str, tuple[str, str]]] = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _rule(error: Mapping[str, Any], loc: Sequence[str | int]) -> tuple[str, object]:  # noqa: PLR0911 - one return per error type
    """The rule text and the value to show for one pydantic error (``...``: show none)."""
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input", ...)
    if kind == "missing":
        return "is required", ...
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"is not a known key{hint}", ...
    if kind == "literal_error":
        expected = re.split(r", | or ", str(ctx.get("expected", "")))
        return "must be one of " + ",".join(expected), value
    if kind in _TYPE_RULES:
        return _TYPE_RULES[kind], value
    if kind in _BOUND_RULES:
        name, symbol = _BOUND_RULES[kind]
        return f"must be {symbol} {ctx.get(name)}", value
    if kind in {"too_short", "string_too_short"}:
        least = ctx.get("min_length")
        return ("must not be empty" if least == 1 else f"must have at least {least} items"), value
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items", ...
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters", value
    message = str(error.get("msg", kind)).removeprefix("Value error, ")
    return message[:1].lower() + message[1:], value


def _known_keys(loc: Sequence[str | int]) -> list[str]:
    """The keys allowed at ``loc`` (for "did you mean"), by walking the model's annotations."""
    model: type[BaseModel] | None = Profile
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _issues(exc: ValidationError, text: str | None) -> list[ProfileIssue]:
    root = _compose(text) if text is not None else None
    issues = []
    for error in exc.errors(include_url=False):
        loc: tuple[str | int, ...] = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, _RuleError):
            loc, rule, value = (*loc, *cause.key), cause.rule, cause.value
        else:
            rule, value = _rule(error, loc)
        line = _line_of(root, loc) if root is not None else None
        issues.append(ProfileIssue(_format_key(loc), rule, value, line))
    # In file order, as a reader fixes them; pydantic's order is the model's field order.
    return sorted(issues, key=lambda issue: issue.line or 0)


# ---------------------------------------------------------------------------------------------
# YAML: strict about duplicate keys, with line numbers for errors


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error.

    PyYAML keeps the last of two equal keys silently; in a profile that hides a typo such as two
    ``scale:`` lines, so it is refused (the Home Assistant anti-pattern STYLE.md 3 warns about).
    """


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.line)
        except TypeError:
            continue  # an unhashable key: the constructor below reports it
        if first != key_node.start_mark.line:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first on line {first + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_StrictLoader)
    except yaml.YAMLError:
        return None


def _line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """The line of the deepest node of ``loc`` that exists in the document."""
    node = root
    if node is None:
        return None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if str(k.value) == str(part)), None)
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            break
        node = child
    line: int = node.start_mark.line + 1
    return line


def _parse_yaml(text: str, path: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        issue = ProfileIssue("", f"{where}{problem} (YAML syntax)", ..., None)
        raise ProfileError.from_issues(path, [issue]) from None
    except yaml.YAMLError as exc:
        raise ProfileError.from_issues(path, [ProfileIssue("", f"invalid YAML: {exc}")]) from None
