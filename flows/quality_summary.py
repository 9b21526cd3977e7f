"""`data-quality-summary`: once a day, how much of what the quality suites checked failed,
by platform and by rule, against the days before; published as the markdown artifact
`data-quality-summary` and the table artifact `data-quality-by-rule`.

`day` is a warehouse-local date (Settings.warehouse_timezone). Scheduled runs leave it
empty and report yesterday, the last whole day; an operator may re-run any earlier day,
and a re-run only publishes a newer version of the same artifacts.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from oms.config import get_settings
from oms.db.quality_summary import read_quality_figures
from oms.domain.quality_report import QualityFigures, QualitySummary, day_before, render_markdown, rule_table, summarise
from tasks.policy import BATCH_TASK
from tasks.resources import engine

ARTIFACT_KEY = "data-quality-summary"
RULE_TABLE_KEY = "data-quality-by-rule"
# Each trend day is one CASE branch in the query and one column in the artifact.
LONGEST_TREND_DAYS = 62


@task(name="read-quality-figures", **BATCH_TASK)
def read_figures(day: date, days_of_trend: int, zone_name: str) -> QualityFigures:
    with engine().connect() as conn:
        return read_quality_figures(conn, day, days_of_trend, ZoneInfo(zone_name))


@task(name="publish-quality-summary", **BATCH_TASK)
def publish(summary: QualitySummary) -> None:
    headline = f"Data quality on {summary.day.isoformat()}"
    flagged = len(summary.flagged)
    create_markdown_artifact(key=ARTIFACT_KEY, markdown=render_markdown(summary),
                             description=f"{headline}: {flagged} rule(s) rose notably")
    create_table_artifact(key=RULE_TABLE_KEY, table=rule_table(summary),
                          description=f"{headline}: failure rate by platform and rule")


@flow(name="data-quality-summary")
def data_quality_summary(day: date | None = None, days_of_trend: int = 7) -> QualitySummary:
    """Summarise `day` (default: yesterday in the warehouse time zone) against the
    `days_of_trend` days before it."""
    if not 1 <= days_of_trend <= LONGEST_TREND_DAYS:
        raise ValueError(f"days_of_trend must be between 1 and {LONGEST_TREND_DAYS}, got {days_of_trend}")
    zone = ZoneInfo(get_settings().warehouse_timezone)
    day = day or day_before(datetime.now(timezone.utc), zone)
    summary = summarise(read_figures(day, days_of_trend, zone.key), zone.key)
    publish(summary)
    return summary
