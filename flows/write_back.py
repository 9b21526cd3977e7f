"""`write-back-tracking`: push every tracking number that is due, shop by shop.

Scheduled every 5 minutes, the retry interval: a push that failed retryably is due again
in the first run after its `next_push_at` (oms.db.tracking), so the schedule is the
retry loop and no run waits for a platform to come back.

Each shop is its own task, run side by side: a shop whose platform is down holds back
no other shop.

The run's final state: the failed-run automation pages on-call for every Failed run, and
during an outage every run for an hour would fail and page again every 5 minutes while
the retries are already scheduled. So a run that only met connector errors completes:
what it could not push is scheduled (retrying), parked with an alert of its own
(WRITE_BACK_FAILED, once per shop and run), or stopped behind a rate limit or a token
whose own alert went out. Only a bug (a task that failed on anything but a connector
error) fails the run. The `write-back-tracking` artifact shows, per shop, what was pushed
in this run and what is due, retrying and parked.
"""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow
from prefect.artifacts import create_table_artifact

from oms.config import get_settings
from oms.db.tracking import backlog, shops_with_due_pushes
from tasks.resources import engine
from tasks.write_back import WriteBackSummary, push_tracking_for_shop


@flow(name="write-back-tracking")
def write_back_tracking(now: datetime | None = None) -> dict[str, WriteBackSummary]:
    """`now` fixes the clock for the whole run (tests advance it); default: the real one."""
    started = now or datetime.now(timezone.utc)
    with engine().connect() as conn:
        due_shops = shops_with_due_pushes(conn, started)
    size = get_settings().fulfil_batch_size
    futures = {shop: push_tracking_for_shop.submit(shop, size, now) for shop in due_shops}
    results: dict[str, WriteBackSummary] = {}
    broken: dict[str, str] = {}
    for shop, future in futures.items():
        future.wait()
        if future.state.is_completed():
            results[shop] = future.result()
        else:
            broken[shop] = future.state.message or "failed"
    _publish(results, started)
    if broken:
        raise RuntimeError(f"tracking write-back broke (a bug, not the platform) for {sorted(broken)}: {broken}")
    return results


def _publish(results: dict[str, WriteBackSummary], now: datetime) -> None:
    with engine().connect() as conn:
        waiting = backlog(conn, now)
    shops = sorted(set(results) | set(waiting))
    if not shops:
        return
    rows = []
    for shop in shops:
        summary, left = results.get(shop, WriteBackSummary(shop=shop)), waiting.get(shop)
        rows.append({"shop": shop, "pushed": summary.written_back, "refused": summary.rejected,
                     "gave up": summary.gave_up, "due": left.due if left else 0,
                     "retrying": left.retrying if left else 0, "parked": left.parked if left else 0,
                     "stopped": summary.stopped or ""})
    create_table_artifact(
        key="write-back-tracking", table=rows,
        description="Tracking write-back per shop: pushed in this run, and still due, retrying or parked",
    )
