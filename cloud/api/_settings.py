"""The API server's settings: one typed model, validated at load, no I/O (STYLE.md 3, 4)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ApiSettings(BaseModel):
    """Where the API finds its data and its tokens.

    Attributes:
        db: The work-order/alert SQLite file (`cloud.workorders.Store`).
        assets: The asset registry file (YAML or CSV, `cloud.registry.load_registry`).
        profiles: The firmware profiles folder, to resolve profiles the registry leaves out.
        tokens: The token file (`prognos api token add`).
        audit: The audit log (JSON lines); default: the SQLite file's name + ``.audit.jsonl``.
        influx_url: The InfluxDB v1 HTTP API's base URL.
        influx_db: The database holding ``telemetry`` and ``scores``.
        influx_user: InfluxDB user (Basic auth); None with a token or without auth.
        influx_password: InfluxDB password.
        influx_token: InfluxDB token (2.x, 3.x); instead of user and password.
        influx_timeout_s: Seconds per InfluxDB request.
        scores_lookback: How far back the fleet summary looks for each asset's latest scores.
        max_points: The most points one series of a history or telemetry answer may hold.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    db: Path
    assets: Path
    profiles: Path | None = None
    tokens: Path
    audit: Path | None = None
    influx_url: str = "http://127.0.0.1:8086"
    influx_db: Annotated[str, Field(min_length=1)] = "prognos"
    influx_user: str | None = None
    influx_password: SecretStr | None = None
    influx_token: SecretStr | None = None
    influx_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    scores_lookback: dt.timedelta = dt.timedelta(days=7)
    max_points: Annotated[int, Field(ge=10, le=100_000)] = 5000

    @property
    def audit_path(self) -> Path:
        """The audit log's path."""
        return self.audit or self.db.with_name(self.db.name + ".audit.jsonl")
