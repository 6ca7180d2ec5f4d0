"""The JSON Schema of a profile file, generated from the pydantic model.

Regenerate ``firmware_profiles/profile.schema.json`` after changing the model::

    .venv/bin/python -c "from edge_agent._profile import profile_json_schema_text as t;
    open('firmware_profiles/profile.schema.json', 'w').write(t())"
"""

from __future__ import annotations

import json
from typing import Any

from edge_agent._profile._model import Profile


def profile_json_schema() -> dict[str, Any]:
    """The JSON Schema of a profile file, generated from the pydantic model.

    ``firmware_profiles/profile.schema.json`` is this schema; a test keeps the two equal.
    """
    schema = Profile.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:prognos:schema:firmware-profile.v1",
        **schema,
        "title": "Prognos firmware profile",
    }


def profile_json_schema_text() -> str:
    """`profile_json_schema` as the exact text of ``firmware_profiles/profile.schema.json``."""
    return json.dumps(profile_json_schema(), indent=2, ensure_ascii=False) + "\n"
