"""`purge-personal-data`: delete buyers' personal data once it is older than the retention age.

Raw order payloads, the payloads of settled review entries and after-sales requests,
write-back bodies, and Prefect's flow runs with their logs and artifacts go once older
than `older_than_days` (default: the `retention_days` setting, 180). What is kept and
why is in `oms.db.retention`. Each run records what it deleted in `retention_runs` and
shows it as the `purge-personal-data` artifact; a dry run only counts, and records
nothing. A second run over the same cut-off finds nothing left to delete.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prefect import flow

from oms.config import get_settings
from oms.db.retention import DATABASE_PURGES
from tasks.privacy import publish_table
from tasks.retention import purge_database_rows, purge_prefect_runs, record_retention

ARTIFACT_KEY = "purge-personal-data"


@flow(name="purge-personal-data")
def purge_personal_data(older_than_days: int | None = None, dry_run: bool = False) -> dict[str, int]:
    """Returns the rows deleted (or, on a dry run, that would be) by kind."""
    days = get_settings().retention_days if older_than_days is None else older_than_days
    if days < 1:
        raise ValueError(f"older_than_days must be 1 or more, not {days}: 0 would delete today's data")
    ran_at = datetime.now(timezone.utc)
    cutoff = ran_at - timedelta(days=days)
    counts = {kind: purge_database_rows(kind, cutoff, dry_run) for kind in DATABASE_PURGES}
    counts.update(purge_prefect_runs(cutoff, dry_run))
    if not dry_run:
        record_retention(ran_at, cutoff, counts)
    _publish(counts, cutoff, dry_run)
    return counts


def _publish(counts: dict[str, int], cutoff: datetime, dry_run: bool) -> None:
    verb = "would delete" if dry_run else "deleted"
    publish_table(ARTIFACT_KEY, [{"kind": kind, verb: n} for kind, n in counts.items()],
                  description=f"Personal data older than {cutoff.isoformat(timespec='seconds')}"
                              f"{' (dry run: nothing deleted)' if dry_run else ''}")
