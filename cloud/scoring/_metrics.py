"""The scorer's counters, rendered as Prometheus text (0.0.4): volume goes here, not in logs."""

from __future__ import annotations

import dataclasses
from collections import Counter


@dataclasses.dataclass(slots=True)
class ScorerMetrics:
    """Counters since the process started, plus the last cycle's figures.

    Attributes:
        cycles: Scoring passes completed.
        assets_scored: Assets with at least one score written.
        assets_skipped: Assets not scored, by reason (``no_data``, ``stale``, ...).
        model_skips: Models that could not score an asset's window, by ``model/reason``.
        scores_written: Points written to the ``scores`` measurement.
        scores_explained: Scores computed with their explanation (``explain.mode``).
        queries: Telemetry queries sent.
        alert_changes: Alert changes saved.
        work_orders_created: Prediction work orders stored.
        work_orders_cancelled: Work orders cancelled because late data withdrew their alert.
        work_orders_updated: Work orders sent again because their alert grew more urgent.
        rule_work_orders: Calendar and usage rule work orders stored.
        errors: Assets whose scoring or writing failed, by reason.
        last_cycle_s: Duration of the last pass, seconds.
        last_read_s: Time spent reading telemetry in the last pass, seconds.
    """

    cycles: int = 0
    assets_scored: int = 0
    assets_skipped: Counter[str] = dataclasses.field(default_factory=Counter)
    model_skips: Counter[str] = dataclasses.field(default_factory=Counter)
    scores_written: int = 0
    scores_explained: int = 0
    queries: int = 0
    alert_changes: int = 0
    work_orders_created: int = 0
    work_orders_cancelled: int = 0
    work_orders_updated: int = 0
    rule_work_orders: int = 0
    errors: Counter[str] = dataclasses.field(default_factory=Counter)
    last_cycle_s: float = 0.0
    last_read_s: float = 0.0

    def render(self) -> str:
        """Prometheus text exposition of every counter."""
        p = "prognos_scorer_"
        lines = [
            f"# TYPE {p}cycles_total counter",
            f"{p}cycles_total {self.cycles}",
            f"# TYPE {p}assets_scored_total counter",
            f"{p}assets_scored_total {self.assets_scored}",
            f"# TYPE {p}assets_skipped_total counter",
            *(
                f'{p}assets_skipped_total{{reason="{r}"}} {n}'
                for r, n in sorted(self.assets_skipped.items())
            ),
            f"# TYPE {p}model_skips_total counter",
            *(
                f'{p}model_skips_total{{model="{k.split("/")[0]}",reason="{k.split("/")[1]}"}} {n}'
                for k, n in sorted(self.model_skips.items())
            ),
            f"# TYPE {p}scores_written_total counter",
            f"{p}scores_written_total {self.scores_written}",
            f"# TYPE {p}scores_explained_total counter",
            f"{p}scores_explained_total {self.scores_explained}",
            f"# TYPE {p}telemetry_queries_total counter",
            f"{p}telemetry_queries_total {self.queries}",
            f"# TYPE {p}alert_changes_total counter",
            f"{p}alert_changes_total {self.alert_changes}",
            f"# TYPE {p}work_orders_created_total counter",
            f'{p}work_orders_created_total{{kind="prediction"}} {self.work_orders_created}',
            f'{p}work_orders_created_total{{kind="rule"}} {self.rule_work_orders}',
            f"# TYPE {p}work_orders_cancelled_total counter",
            f"{p}work_orders_cancelled_total {self.work_orders_cancelled}",
            f"# TYPE {p}work_orders_updated_total counter",
            f"{p}work_orders_updated_total {self.work_orders_updated}",
            f"# TYPE {p}errors_total counter",
            *(f'{p}errors_total{{reason="{r}"}} {n}' for r, n in sorted(self.errors.items())),
            f"# TYPE {p}last_cycle_seconds gauge",
            f"{p}last_cycle_seconds {self.last_cycle_s:.6f}",
            f"# TYPE {p}last_read_seconds gauge",
            f"{p}last_read_seconds {self.last_read_s:.6f}",
        ]
        return "\n".join(lines) + "\n"
