"""The REST API for planners: alerts, asset health, score history, work orders (FastAPI).

    from cloud.api import ApiSettings, create_app

    app = create_app(ApiSettings(db="decisions.db", assets="assets.yaml", tokens="tokens.json"))

Token auth with roles viewer < planner < admin (`prognos api token add`), every state change
audited. `prognos api serve` runs it with uvicorn. See docs/api.md; the OpenAPI document is
docs/openapi.json.
"""

from cloud.api._app import API_PREFIX, create_app, openapi_document
from cloud.api._auth import (
    Principal,
    Role,
    TokenEntry,
    TokenFile,
    TokenFileError,
    TokenVerifier,
    add_token,
    read_tokens,
    revoke_token,
)
from cloud.api._settings import ApiSettings

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "add_token",
    "API_PREFIX",
    "ApiSettings",
    "create_app",
    "openapi_document",
    "Principal",
    "read_tokens",
    "revoke_token",
    "Role",
    "TokenEntry",
    "TokenFile",
    "TokenFileError",
    "TokenVerifier",
]
