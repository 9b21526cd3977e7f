"""The quality gate every batch passes: run a suite, record it, show it, judge the batch.

`gate_batch` runs one suite from `expectations/` over one batch and returns which rows
failed and why; the calling task parks those rows and sends the rest on. Every run is a
`quality_runs` row (the daily summary counts from them) and a Prefect table artifact
(rules and figures only, never a row's values, which carry buyers' personal data).

Two checks judge the batch as a whole: more failing rows than
`settings.quality_max_failure_share` allows (a platform changed its format, a mapper
broke), and fewer rows than the platform itself counted for the window (paging lost
some). Either one records itself, alerts on-call with QUALITY_FAILED and fails the task
with `QualityGateFailed`. Before raising, the caller's `before_failing` parks the failing
rows, so operators see the reasons; raw payloads are landed before any of this, and the
watermark does not move past a failed task, so the next run reads the window again and
parks nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from expectations.runner import SuiteOutcome, validate_records
from oms.config import get_settings
from oms.db.quality import QualityRun, record_quality_run
from tasks.alerts import QUALITY_FAILED, announce
from tasks.resources import engine

ROW_COUNT = "row_count"
FAILURE_SHARE = "failure_share"


class QualityGateFailed(Exception):
    """A batch failed a batch-level check; its rows are parked or landed, nothing is lost.

    Not retryable: running the same batch again gives the same answer until a person
    fixes the platform's data, the mapper or the suite.
    """

    def __init__(self, message: str, failures: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.failures = failures


@dataclass(frozen=True)
class BatchScope:
    """Whose batch this is, for the run's row, the artifact key and the alert."""

    suite: str
    platform: str | None = None
    shop_code: str | None = None


def gate_batch(scope: BatchScope, records: list[dict[str, Any]], *, expected_rows: int | None = None,
               received_rows: int | None = None,
               before_failing: Callable[[SuiteOutcome], None] | None = None) -> SuiteOutcome:
    """Validate `records` with the scope's suite; raise QualityGateFailed on a bad batch.

    `expected_rows` is the platform's own count and `received_rows` what arrived (by
    default, the records); the count check runs only when the platform reported one.
    """
    outcome = validate_records(scope.suite, records)
    received = len(records) if received_rows is None else received_rows
    failures = batch_failures(outcome, get_settings().quality_max_failure_share, expected_rows, received)
    _record(scope, outcome, expected_rows, failures)
    _publish(scope, outcome, expected_rows, failures)
    if outcome.failed_rows:
        get_run_logger().warning("suite %s: %d of %d rows failed: %s", scope.suite, outcome.failed_rows,
                                 outcome.checked, outcome.failed_expectations)
    if failures:
        if before_failing is not None:
            before_failing(outcome)
        _alert(scope, outcome, failures)
        raise QualityGateFailed(_headline(scope, failures), failures)
    return outcome


def batch_failures(outcome: SuiteOutcome, max_share: float, expected_rows: int | None,
                   received_rows: int) -> list[dict[str, Any]]:
    """The batch-level checks that failed, each with the figures that failed it."""
    failures = []
    share = outcome.failed_rows / outcome.checked if outcome.checked else 0.0
    if outcome.checked >= get_settings().quality_min_rows_for_share and share > max_share:
        failures.append({"check": FAILURE_SHARE, "failed_rows": outcome.failed_rows, "checked": outcome.checked,
                         "share": round(share, 4), "max_share": max_share})
    # More than the platform counted is harmless (a repeat served on two pages merges);
    # fewer means orders the platform has were never read.
    if expected_rows is not None and received_rows < expected_rows:
        failures.append({"check": ROW_COUNT, "expected_rows": expected_rows, "received_rows": received_rows,
                         "missing": expected_rows - received_rows})
    return failures


def _record(scope: BatchScope, outcome: SuiteOutcome, expected_rows: int | None,
            failures: list[dict[str, Any]]) -> None:
    run = QualityRun(scope.suite, scope.platform, scope.shop_code, outcome.checked, outcome.failed_rows,
                     dict(outcome.failed_expectations), expected_rows, failures, _flow_run_id())
    with engine().begin() as conn:
        record_quality_run(conn, run, datetime.now(timezone.utc))


def _flow_run_id() -> str | None:
    run_id = flow_run.id  # None outside a flow run (a script, a unit test)
    return str(run_id) if run_id else None


def artifact_key(scope: BatchScope) -> str:
    parts = ["quality", scope.suite] + ([scope.shop_code] if scope.shop_code else [])
    # Artifact keys allow lowercase letters, digits and dashes only.
    return "-".join(parts).lower().replace("_", "-")


def artifact_rows(outcome: SuiteOutcome, expected_rows: int | None,
                  failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per failing rule, then one per failed batch check; figures only."""
    checked = outcome.checked or 1
    rows = [{"rule": rule, "failed rows": failed, "checked": outcome.checked, "share": round(failed / checked, 4)}
            for rule, failed in sorted(outcome.failed_expectations.items(), key=lambda item: -item[1])]
    for failure in failures:
        rows.append({"rule": f"batch check: {_describe(failure)}",
                     "failed rows": failure.get("failed_rows", failure.get("missing", 0)),
                     "checked": outcome.checked, "share": failure.get("share", "")})
    if not rows:
        rows.append({"rule": "every expectation passed", "failed rows": 0, "checked": outcome.checked,
                     "share": 0.0})
    if expected_rows is not None:
        for row in rows:
            row["platform count"] = expected_rows
    return rows


def _publish(scope: BatchScope, outcome: SuiteOutcome, expected_rows: int | None,
             failures: list[dict[str, Any]]) -> None:
    whose = f" of shop {scope.shop_code}" if scope.shop_code else ""
    create_table_artifact(
        key=artifact_key(scope), table=artifact_rows(outcome, expected_rows, failures),
        description=(f"Suite {scope.suite}{whose}: {outcome.failed_rows} of {outcome.checked} rows failed"
                     + (f"; batch failed: {', '.join(f['check'] for f in failures)}" if failures else "")),
    )


def _describe(failure: dict[str, Any]) -> str:
    if failure["check"] == FAILURE_SHARE:
        return (f"{failure['failed_rows']} of {failure['checked']} rows failed ({failure['share']:.0%}), "
                f"more than the {failure['max_share']:.0%} allowed")
    return (f"the platform counted {failure['expected_rows']} orders for the window, "
            f"{failure['received_rows']} arrived")


def _headline(scope: BatchScope, failures: list[dict[str, Any]]) -> str:
    whose = f"shop {scope.shop_code}" if scope.shop_code else "a batch"
    return f"quality gate {scope.suite} stopped {whose}: " + "; ".join(_describe(f) for f in failures)


def _alert(scope: BatchScope, outcome: SuiteOutcome, failures: list[dict[str, Any]]) -> None:
    shop = scope.shop_code or "-"
    top = ", ".join(f"{rule} ({n})" for rule, n in sorted(outcome.failed_expectations.items(),
                                                          key=lambda item: -item[1])[:3])
    announce(
        QUALITY_FAILED, shop_code=shop, platform=scope.platform or "-",
        headline=f"Shop {shop}: a batch failed the {scope.suite} quality check and was stopped",
        message=(f"{'; '.join(_describe(f) for f in failures).capitalize()}."
                 + (f" Most common reasons: {top}." if top else "")
                 + " The failing rows are in the review queue with their reasons and the raw payloads are kept;"
                 " nothing moves on until the cause is fixed (a platform format change, a mapper or a suite),"
                 " then run the flow again."),
        suite=scope.suite, checks=",".join(f["check"] for f in failures), checked=outcome.checked,
        failed_rows=outcome.failed_rows,
    )
