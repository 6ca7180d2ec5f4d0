"""The published JSON Schemas (draft 2020-12) of the contract's payloads."""

import functools
import importlib.resources
import json
from typing import Any

SCHEMA_NAMES = ("event.v1", "health.v1", "status.v1", "telemetry.v1")
"""The names ``schema()`` accepts; the files are ``prognos_contract/{name}.schema.json``."""


def schema(name: str) -> dict[str, Any]:
    """Return one of the contract's JSON Schemas, freshly parsed (the caller may change it).

    Args:
        name: One of ``SCHEMA_NAMES``, e.g. ``"telemetry.v1"``.

    Returns:
        The schema document.

    Raises:
        ValueError: If ``name`` is not one of ``SCHEMA_NAMES``.
    """
    if name not in SCHEMA_NAMES:
        raise ValueError(f"no schema named {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    document: dict[str, Any] = json.loads(_text(name))
    return document


@functools.cache
def _text(name: str) -> str:
    resource = importlib.resources.files("prognos_contract") / f"{name}.schema.json"
    return resource.read_text(encoding="utf-8")
