"""`write-back-tracking`: push every pending tracking number, shop by shop.

A shop whose platform is down must not hold back the others, so each shop runs as its
own task and the flow fails at the end, naming the shops that still have pushes pending.
"""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow
from prefect.artifacts import create_table_artifact

from oms.config import get_settings
from oms.db.shipping import shops_with_pending_pushes
from tasks.resources import engine
from tasks.write_back import WriteBackSummary, push_tracking_for_shop


@flow(name="write-back-tracking")
def write_back_tracking() -> dict[str, WriteBackSummary]:
    results: dict[str, WriteBackSummary] = {}
    failed: dict[str, str] = {}
    with engine().connect() as conn:
        pending_shops = shops_with_pending_pushes(conn)
    for shop_code in pending_shops:
        state = push_tracking_for_shop(shop_code, get_settings().fulfil_batch_size, return_state=True)
        if state.is_completed():
            results[shop_code] = state.result()
        else:
            failed[shop_code] = state.message or "failed"
    if results:
        create_table_artifact(
            key="write-back-tracking",
            table=[{"shop": shop, **asdict(summary)} for shop, summary in results.items()],
            description="Tracking numbers pushed to the platforms in this run",
        )
    if failed:
        raise RuntimeError(f"tracking write-back still pending for {sorted(failed)}: {failed}")
    return results

