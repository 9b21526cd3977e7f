"""Quality runs: one row per validation of a batch, with a row per rule that failed.

The daily data-quality summary reads failure rates by platform and rule from these
tables, so a run is recorded whether it passed or not, and whether or not its batch-level
checks failed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from oms.db.schema import quality_rule_failures, quality_runs


@dataclass
class QualityRun:
    suite: str
    platform: str | None
    shop_code: str | None
    checked: int
    failed_rows: int
    failed_by_rule: dict[str, int] = field(default_factory=dict)  # rule: the expectation's meta.reason
    expected_rows: int | None = None  # the platform's own count, when it reports one
    batch_failures: list[dict[str, Any]] = field(default_factory=list)
    flow_run_id: str | None = None


def record_quality_run(conn: Connection, run: QualityRun, now: datetime) -> int:
    """Store the run and its failing rules; returns the run's id."""
    run_id = conn.execute(
        insert(quality_runs).returning(quality_runs.c.id),
        {"suite": run.suite, "platform": run.platform, "shop_code": run.shop_code, "checked": run.checked,
         "failed_rows": run.failed_rows, "expected_rows": run.expected_rows,
         "batch_failures": run.batch_failures, "validated_at": now, "flow_run_id": run.flow_run_id},
    ).scalar_one()
    rules = [{"run_id": run_id, "rule": rule[:200], "failed": failed}
             for rule, failed in sorted(run.failed_by_rule.items()) if failed]
    if rules:
        conn.execute(insert(quality_rule_failures), rules)
    return run_id
