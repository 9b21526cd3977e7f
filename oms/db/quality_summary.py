"""Counts behind the daily data-quality summary, read from `quality_runs` and
`quality_rule_failures` per platform and warehouse-local day.

Days are warehouse days (Settings.warehouse_timezone), while `validated_at` is stored in
UTC. Rather than ask each database for its own date and time-zone functions, the local
midnights are turned into UTC bounds here and a CASE over those bounds numbers the day
of every run, so SQLite and PostgreSQL group the same rows into the same days and the
index on `validated_at` still narrows the scan.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo

from sqlalchemy import Connection, String, case, cast, func, select

from oms.db.schema import quality_rule_failures, quality_runs, shops
from oms.domain.quality_report import PlatformDay, QualityFigures, RuleDay

# How the JSON column spells "no batch-level check failed" once cast to text, on both
# databases (a JSON null is counted as none too).
NO_BATCH_FAILURES = ("[]", "null")


def day_bounds(days: list[date], zone: tzinfo) -> list[datetime]:
    """The UTC instants where each day starts in `zone`, and where the last one ends."""
    local_midnights = [datetime.combine(d, time(), tzinfo=zone) for d in [*days, days[-1] + timedelta(days=1)]]
    return [midnight.astimezone(timezone.utc) for midnight in local_midnights]


def read_quality_figures(conn: Connection, day: date, days_of_trend: int, zone: tzinfo) -> QualityFigures:
    """Per platform and rule, `day` and the `days_of_trend` days before it."""
    days = [day - timedelta(days=back) for back in range(days_of_trend, -1, -1)]
    runs = _runs_by_day(days, zone)
    return QualityFigures(day=day, days_of_trend=days_of_trend,
                          platform_days=tuple(_platform_days(conn, runs, days)),
                          rule_days=tuple(_rule_days(conn, runs, days)),
                          expected_platforms=tuple(_active_platforms(conn)))


def _runs_by_day(days: list[date], zone: tzinfo):
    """The runs of the window, each with the index of its day in `days`."""
    bounds = day_bounds(days, zone)
    validated = quality_runs.c.validated_at
    day_index = case(*[(validated < end, index) for index, end in enumerate(bounds[1:])])
    failed_batch_check = case((cast(quality_runs.c.batch_failures, String).in_(NO_BATCH_FAILURES), 0), else_=1)
    return (select(quality_runs.c.id, quality_runs.c.platform, quality_runs.c.checked, quality_runs.c.failed_rows,
                   day_index.label("day_index"), failed_batch_check.label("failed_batch_check"))
            .where(validated >= bounds[0], validated < bounds[-1])
            .subquery("runs_by_day"))


def _platform_days(conn: Connection, runs, days: list[date]) -> list[PlatformDay]:
    query = (select(runs.c.platform, runs.c.day_index, func.count().label("runs"),
                    func.sum(runs.c.checked).label("checked"), func.sum(runs.c.failed_rows).label("failed"),
                    func.sum(runs.c.failed_batch_check).label("batch_failures"))
             .group_by(runs.c.platform, runs.c.day_index))
    return [PlatformDay(platform=row.platform, day=days[row.day_index], runs=row.runs, checked=int(row.checked),
                        failed=int(row.failed), batch_failures=int(row.batch_failures))
            for row in conn.execute(query)]


def _rule_days(conn: Connection, runs, days: list[date]) -> list[RuleDay]:
    rule = quality_rule_failures.c.rule
    query = (select(runs.c.platform, runs.c.day_index, rule, func.sum(quality_rule_failures.c.failed).label("failed"))
             .join(runs, runs.c.id == quality_rule_failures.c.run_id)
             .group_by(runs.c.platform, runs.c.day_index, rule))
    return [RuleDay(platform=row.platform, day=days[row.day_index], rule=row.rule, failed=int(row.failed))
            for row in conn.execute(query)]


def _active_platforms(conn: Connection) -> list[str]:
    query = select(shops.c.platform).where(shops.c.active.is_(True)).distinct().order_by(shops.c.platform)
    return list(conn.execute(query).scalars())
