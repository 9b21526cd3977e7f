"""`process-after-sales`: the requests that came in, each started on its lifecycle, and the
after-sales report.

New requests are claimed in one batch. Those no person has to see (an automatic rule
approves the money, no check is on their path) are settled here, in one task for the
batch; each of the others gets an `approve-refund` run of its own from the deployment,
which pauses for its people in the Prefect UI. Where no such deployment exists (the demo,
a laptop) the request waits, audited, for `oms refund approve <id>`.

The report artifact: refund reasons by share, time spent per node, and the open requests
nearest the platform's own deadline (after it the platform decides for the buyer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from flows.after_sales import walk_lifecycle
from oms.after_sales_rules import load_lifecycle
from oms.db.after_sales import AuditEntry, record_audit
from oms.db.refunds import (
    IN_REVIEW,
    WAITING,
    AfterSalesReport,
    after_sales_report,
    claim_new_requests,
    earlier_requests,
    facts_of,
    load_requests,
    set_progress,
)
from oms.domain.refunds import Lifecycle, plan
from tasks.after_sales import carry_out_answer, shop_line
from tasks.policy import RETRYING
from tasks.resources import engine

APPROVAL_DEPLOYMENT = "approve-refund/approve-refund"
REPORT_KEY = "after-sales-report"


@dataclass
class Processed:
    claimed: int = 0
    settled: dict[str, int] = field(default_factory=dict)  # outcome -> requests
    sent_to_people: list[int] = field(default_factory=list)  # approve-refund runs started
    waiting_without_run: list[int] = field(default_factory=list)


@flow(name="process-after-sales")
def process_after_sales(lifecycle_path: str | None = None, batch_size: int = 500,
                        report_days: int = 30) -> Processed:
    lifecycle = load_lifecycle(lifecycle_path)
    processed = Processed()
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        claimed = claim_new_requests(conn, now, batch_size)
    processed.claimed = len(claimed)
    automatic, personal = _split(claimed, lifecycle, now)
    if automatic:
        processed.settled = settle_automatic(automatic, lifecycle_path)
    for request_id in personal:
        if _start_approval_run(request_id, lifecycle_path):
            processed.sent_to_people.append(request_id)
        else:
            processed.waiting_without_run.append(request_id)
    if processed.waiting_without_run:
        get_run_logger().warning("%d request(s) need a person and no %s deployment exists to start their runs; "
                                 "`oms refund list` shows them", len(processed.waiting_without_run),
                                 APPROVAL_DEPLOYMENT)
    _publish_report(lifecycle, now, report_days)
    return processed


def _split(request_ids: list[int], lifecycle: Lifecycle, now: datetime) -> tuple[list[int], list[int]]:
    automatic, personal = [], []
    with engine().connect() as conn:
        for request in load_requests(conn, request_ids):
            facts = facts_of(request, earlier_requests(conn, request, lifecycle, now))
            (personal if plan(lifecycle, facts).needs_a_person else automatic).append(request["id"])
    return automatic, personal


@task(name="settle-automatic-after-sales", **RETRYING)
def settle_automatic(request_ids: list[int], lifecycle_path: str | None = None) -> dict[str, int]:
    """Walk every request of the batch that needs nobody, shop by shop over one open line
    to the shop; a retried batch skips the ones already answered (their status says so)."""
    lifecycle = load_lifecycle(lifecycle_path)
    outcomes: dict[str, int] = {}
    for (shop_code, platform), ids in _by_shop(request_ids).items():
        with shop_line(shop_code, platform) as line:
            def execute(*answer, line=line):
                return carry_out_answer(*answer, line=line)
            for request_id in ids:
                outcome = walk_lifecycle(request_id, lifecycle, people=False, execute=execute)
                outcomes[outcome.outcome] = outcomes.get(outcome.outcome, 0) + 1
    return outcomes


def _by_shop(request_ids: list[int]) -> dict[tuple[str, str], list[int]]:
    """The requests still in review, by shop."""
    shops: dict[tuple[str, str], list[int]] = {}
    with engine().connect() as conn:
        for request in load_requests(conn, request_ids):
            if request["status"] == IN_REVIEW:
                shops.setdefault((request["shop_code"], request["platform"]), []).append(request["id"])
    return shops


def _start_approval_run(request_id: int, lifecycle_path: str | None) -> bool:
    logger = get_run_logger()
    now = datetime.now(timezone.utc)
    try:
        run = run_deployment(APPROVAL_DEPLOYMENT, parameters={"request_id": request_id,
                                                              "lifecycle_path": lifecycle_path},
                             timeout=0, as_subflow=False)
    except ObjectNotFound:
        with engine().begin() as conn:
            set_progress(conn, request_id, now, status=WAITING, node="approval run")
            record_audit(conn, [AuditEntry(request_id, "pipeline", "needs_person",
                                           f"no {APPROVAL_DEPLOYMENT} deployment to start; run "
                                           f"`oms refund approve {request_id}`")], now)
        logger.info("request #%s needs a person and there is no %s deployment", request_id, APPROVAL_DEPLOYMENT)
        return False
    with engine().begin() as conn:
        set_progress(conn, request_id, now, status=WAITING, node="approval run", flow_run_id=str(run.id))
        record_audit(conn, [AuditEntry(request_id, "pipeline", "needs_person",
                                       f"approve-refund run {run.name} started")], now)
    return True


def _publish_report(lifecycle: Lifecycle, now: datetime, days: int) -> AfterSalesReport:
    with engine().connect() as conn:
        report = after_sales_report(conn, now, lifecycle.near_deadline, now - timedelta(days=days))
    create_markdown_artifact(key=REPORT_KEY, markdown=report_markdown(report, now, lifecycle.near_deadline, days),
                             description="After-sales: reasons, time per node, requests near the platform deadline")
    return report


def report_markdown(report: AfterSalesReport, now: datetime, near: timedelta, days: int) -> str:
    parts = [f"# After-sales, last {days} days ({report.total} requests)", ""]
    if report.by_status:
        parts.append("Status: " + ", ".join(f"{status} {count}" for status, count in sorted(report.by_status.items())))
        parts.append("")
    parts += ["## Refund reasons", "", "| Reason | Requests | Share |", "|---|---:|---:|"]
    parts += [f"| {reason} | {count} | {share:.0%} |" for reason, count, share in report.reasons] or ["| none | 0 | |"]
    parts += ["", "## Time per node", "", "| Node | Decided | Mean hours | Longest hours |", "|---|---:|---:|---:|"]
    parts += [f"| {node} | {count} | {mean:.2f} | {longest:.2f} |" for node, count, mean, longest in report.node_hours]
    hours = near.total_seconds() / 3600
    parts += ["", f"## Open requests due on the platform within {hours:g} h", ""]
    if not report.near_deadline:
        parts.append("_None._")
    else:
        parts += ["| Request | Platform | Amount | Status | Waiting at | Platform deadline | Left |",
                  "|---|---|---:|---|---|---|---:|"]
        for row in report.near_deadline:
            left = (row["respond_by"] - now).total_seconds() / 3600
            parts.append(f"| #{row['id']} {row['platform_request_id']} | {row['platform']} | {row['amount']} "
                         f"{row['currency']} | {row['status']} | {row['node'] or ''} | "
                         f"{row['respond_by']:%Y-%m-%d %H:%M} UTC | "
                         f"{'overdue' if left < 0 else f'{left:.1f} h'} |")
    return "\n".join(parts) + "\n"
