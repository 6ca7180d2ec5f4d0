"""The planners' web page (`prognos serve`): fleet overview, alert feed, asset page, reports.

    from cloud.api import ApiSettings
    from cloud.web import create_web_app

    app = create_web_app(ApiSettings(db="decisions.db", assets="assets.yaml", tokens="t.json"))

The REST API (`cloud.api`) and the page on one port; login with an API token sets a session
cookie. No build step: server-rendered HTML and small JavaScript modules calling the JSON API,
charts drawn by the vendored uPlot. See docs/web.md.
"""

from cloud.web._app import REPLACE_WITHIN_H, create_web_app

__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "create_web_app",
    "REPLACE_WITHIN_H",
]
