"""Tasks of the retention flow: purge old personal data from our database and from Prefect.

Prefect 3.8.8 has no endpoint that deletes logs by age: logs belong to flow runs, and
deleting a flow run (`POST /flow_runs/bulk_delete`, at most 50 runs a call) makes the
server delete that run's logs right after, in its background worker. So Prefect logs
older than the cut-off go by deleting the flow runs that *ended* before it, page by
page; runs still going (no end time yet) are never touched. A run's artifacts are not
deleted by the server with it, so they are deleted here too (they are masked, but they
are that run's record and would otherwise linger without it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task
from prefect.client.orchestration import get_client

from oms.db.retention import DATABASE_PURGES, record_retention_run
from tasks.resources import engine

# Rows per transaction: small enough that a purge never holds a lock for long,
# large enough that a year's backlog is a few hundred statements.
PURGE_BATCH_ROWS = 2000
# The most the server deletes in one bulk call (BULK_OPERATION_LIMIT).
FLOW_RUNS_PER_CALL = 50
ARTIFACTS_PER_PAGE = 200
TERMINAL_STATE_TYPES = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


@task(name="purge-database-rows")
def purge_database_rows(kind: str, cutoff: datetime, dry_run: bool = False) -> int:
    """Purge one kind of personal data older than the cut-off; how many rows it changed
    (or, on a dry run, would change)."""
    purge_batch, count = DATABASE_PURGES[kind]
    if dry_run:
        with engine().connect() as conn:
            return count(conn, cutoff)
    purged = 0
    while True:
        with engine().begin() as conn:
            batch = purge_batch(conn, cutoff, PURGE_BATCH_ROWS)
        purged += batch
        if batch < PURGE_BATCH_ROWS:
            return purged


@task(name="purge-prefect-runs")
def purge_prefect_runs(cutoff: datetime, dry_run: bool = False) -> dict[str, int]:
    """Delete the flow runs that ended before the cut-off (the server deletes their logs)
    and their artifacts; returns the counts by kind."""
    ended_before = _ended_before(cutoff)
    with get_client(sync_client=True) as client:
        if dry_run:
            return {"prefect_flow_runs": _post(client, "/flow_runs/count", {"flow_runs": ended_before}),
                    "prefect_artifacts": _post(client, "/artifacts/count", {"flow_runs": ended_before})}
        runs = artifacts = 0
        while True:
            deleted = _post(client, "/flow_runs/bulk_delete",
                            {"flow_runs": ended_before, "limit": FLOW_RUNS_PER_CALL})["deleted"]
            runs += len(deleted)
            artifacts += _delete_artifacts_of(client, deleted)
            if len(deleted) < FLOW_RUNS_PER_CALL:
                return {"prefect_flow_runs": runs, "prefect_artifacts": artifacts}


@task(name="record-retention-run")
def record_retention(ran_at: datetime, cutoff: datetime, deleted: dict[str, int]) -> int:
    with engine().begin() as conn:
        return record_retention_run(conn, ran_at=ran_at, cutoff=cutoff, deleted=deleted)


def _ended_before(cutoff: datetime) -> dict[str, Any]:
    return {"end_time": {"before_": cutoff.isoformat()},
            "state": {"type": {"any_": list(TERMINAL_STATE_TYPES)}}}


def _delete_artifacts_of(client, flow_run_ids: list[str]) -> int:
    if not flow_run_ids:
        return 0
    deleted = 0
    while True:
        # The client's own read_artifacts sends nulls this server refuses: ask directly.
        page = _post(client, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": flow_run_ids}},
                                                   "limit": ARTIFACTS_PER_PAGE, "offset": 0})
        for artifact in page:
            client.request("DELETE", "/artifacts/{id}", path_params={"id": artifact["id"]}).raise_for_status()
        deleted += len(page)
        if len(page) < ARTIFACTS_PER_PAGE:
            return deleted


def _post(client, path: str, body: dict[str, Any]) -> Any:
    response = client.request("POST", path, json=body)
    response.raise_for_status()
    return response.json()
