"""`ingest-after-sales`: every active shop's new and changed after-sales requests, each shop
its own task so one platform's outage holds back no other; the flow fails at the end
naming the shops that could not be read."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from prefect import flow
from prefect.artifacts import create_table_artifact
from sqlalchemy import select

from oms.db.schema import shops
from tasks.after_sales_ingest import AfterSalesIntake, handles_after_sales, ingest_shop_after_sales
from tasks.resources import engine


@flow(name="ingest-after-sales")
def ingest_after_sales(now: datetime | None = None) -> dict[str, AfterSalesIntake]:
    with engine().connect() as conn:
        active = conn.execute(select(shops.c.code, shops.c.platform).where(shops.c.active.is_(True))
                              .order_by(shops.c.code)).all()
    futures = {code: ingest_shop_after_sales.submit(code, now) for code, platform in active
               if handles_after_sales(platform)}
    results: dict[str, AfterSalesIntake] = {}
    failed: dict[str, str] = {}
    for code, future in futures.items():
        future.wait()
        if future.state.is_completed():
            results[code] = future.result()
        else:
            failed[code] = future.state.message or "failed"
    if results:
        create_table_artifact(
            key="after-sales-intake",
            table=[{k: v for k, v in asdict(r).items() if k != "new_ids"} for r in results.values()],
            description="After-sales requests fetched, new, updated, not yet linked to an order, parked")
    if failed:
        raise RuntimeError(f"after-sales intake failed for {sorted(failed)}: {failed}")
    return results
