"""Stock flows: sync to the platforms, the daily audit, deliveries, and pickups.

- `sync-stock`: every shop's platform told its sellable quantities (changed ones, or
  all with `full`); each shop is its own task, so one platform down holds back none.
- `audit-stock`: the reserved totals recomputed from the reservation rows, drift
  repaired, every repair reported (artifact, `stock_audits`, and an alert).
- `receive-stock`: delivered units added to on-hand stock, then the backorders waiting
  for those SKUs allocated at once and the platforms told.
- `confirm-pickups`: the carrier asked which parcels it collected; their stock leaves.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from sqlalchemy import select

from oms.config import get_settings
from oms.db.schema import shops, skus, warehouses
from oms.db.stock import Repair, audit_stock, receive_stock, release_lapsed_holds, stocked_sku_ids
from tasks.alerts import STOCK_DRIFT_REPAIRED, announce_stock
from tasks.allocate import allocate_stock
from tasks.tagging import tag_waiting_orders
from tasks.pickups import PickupSummary, confirm_pickups
from tasks.policy import BATCH_TASK
from tasks.resources import engine
from tasks.stock_alerts import watch_reorder_points
from tasks.stock_sync import StockSyncSummary, sync_shop_stock, syncs_stock

AUDIT_CHUNK = 500  # SKUs per audit transaction: locks are held briefly, chunk by chunk


@flow(name="sync-stock")
def sync_stock(only_skus: list[str] | None = None, full: bool = False) -> dict[str, StockSyncSummary]:
    """Tell every active shop's platform what it may sell; fail at the end naming the
    shops that could not be told."""
    with engine().connect() as conn:
        active = conn.execute(select(shops.c.code, shops.c.platform).where(shops.c.active.is_(True))
                              .order_by(shops.c.code)).all()
    futures = {code: sync_shop_stock.submit(code, only_skus=only_skus, full=full)
               for code, platform in active if syncs_stock(platform)}
    results: dict[str, StockSyncSummary] = {}
    failed: dict[str, str] = {}
    for code, future in futures.items():
        future.wait()
        if future.state.is_completed():
            results[code] = future.result()
        else:
            failed[code] = future.state.message or "failed"
    if results:
        create_table_artifact(
            key="sync-stock",
            table=[{k: v for k, v in asdict(summary).items() if k != "refused_skus"} for summary in results.values()],
            description="Sellable quantities pushed to each platform in this run",
        )
    if failed:
        raise RuntimeError(f"stock sync failed for {sorted(failed)}: {failed}")
    return results


@task(name="audit-stock-chunk", **BATCH_TASK)
def audit_chunk(sku_ids: list[int]) -> list[Repair]:
    with engine().begin() as conn:
        return audit_stock(conn, datetime.now(timezone.utc), sku_ids)


@flow(name="audit-stock")
def audit_stock_totals() -> list[Repair]:
    """Recompute every reserved total from its rows and repair what drifted."""
    with engine().connect() as conn:
        sku_ids = stocked_sku_ids(conn)
    repairs: list[Repair] = []
    for start in range(0, len(sku_ids), AUDIT_CHUNK):
        repairs.extend(audit_chunk(sku_ids[start:start + AUDIT_CHUNK]))
    _report_repairs(repairs, len(sku_ids))
    watch_reorder_points(None)
    if repairs:
        # The repaired totals change what the platforms may sell.
        sync_stock(only_skus=sorted({repair.sku for repair in repairs}))
    return repairs


def _report_repairs(repairs: list[Repair], audited: int) -> None:
    logger = get_run_logger()
    if not repairs:
        create_markdown_artifact(key="audit-stock", markdown=f"Audited {audited} SKUs: every reserved total "
                                 "equals the sum of its reservations.", description="Stock audit")
        logger.info("stock audit: %d SKUs, no drift", audited)
        return
    rows = [{"warehouse": r.warehouse, "sku": r.sku, "recorded reserved": r.recorded_reserved,
             "reservations add up to": r.actual_reserved, "drift": r.drift, "on hand": r.on_hand}
            for r in repairs]
    create_table_artifact(key="audit-stock", table=rows,
                          description=f"Stock audit: {len(repairs)} reserved totals repaired of {audited} SKUs")
    for row in rows:
        logger.warning("stock audit repaired %(warehouse)s %(sku)s: recorded %(recorded reserved)s, "
                       "reservations add up to %(reservations add up to)s", row)
    announce_stock(STOCK_DRIFT_REPAIRED, subject="audit",
                   headline=f"Stock audit repaired {len(repairs)} reserved total(s)",
                   message=("The daily stock audit found reserved totals that did not match their reservation "
                            "rows and set them back: " + "; ".join(
                                f"{r.warehouse} {r.sku} {r.recorded_reserved} -> {r.actual_reserved}"
                                for r in repairs[:10]) + (" ..." if len(repairs) > 10 else "")
                            + ". Something writes stock outside the ledger: find it."),
                   repairs=len(repairs))


@task(name="receive-deliveries", **BATCH_TASK)
def receive_deliveries(deliveries: list[dict]) -> list[str]:
    """Add delivered units; returns the SKU codes that got stock."""
    with engine().begin() as conn:
        houses = dict(conn.execute(select(warehouses.c.code, warehouses.c.id)).all())
        codes = dict(conn.execute(select(skus.c.code, skus.c.id)
                                  .where(skus.c.code.in_({d["sku"] for d in deliveries}))).all())
        unknown = sorted({d["warehouse"] for d in deliveries} - set(houses)) + \
            sorted({d["sku"] for d in deliveries} - set(codes))
        if unknown:
            raise ValueError(f"unknown warehouse or SKU in the delivery: {unknown}")
        receive_stock(conn, [(houses[d["warehouse"]], codes[d["sku"]], int(d["units"])) for d in deliveries],
                      datetime.now(timezone.utc))
    return sorted({d["sku"] for d in deliveries})


@flow(name="receive-stock")
def receive_stock_delivery(deliveries: list[dict]) -> dict:
    """`deliveries`: [{"warehouse": "WH-SH", "sku": "SKU-0001", "units": 40}, ...]."""
    if not deliveries:
        return {"skus": [], "backorders_allocated": 0}
    started = datetime.now(timezone.utc)
    arrived = receive_deliveries(deliveries)
    allocated = 0
    size = get_settings().fulfil_batch_size
    # Backorders are tagged when fulfil first sees them; this catches any that came in
    # another way, so no order skips its risk checks on the way to a warehouse.
    tag_waiting_orders(size)
    cursor = 0
    while True:
        batch = allocate_stock(size, after_id=cursor, only_skus=arrived, decided_before=started)
        allocated += batch.allocated
        if batch.considered < size:
            break
        cursor = batch.last_id
    watch_reorder_points(arrived)
    sync_stock(only_skus=arrived)
    return {"skus": arrived, "backorders_allocated": allocated}


@task(name="release-unpaid-holds", **BATCH_TASK)
def release_unpaid_holds() -> int:
    with engine().begin() as conn:
        return len(release_lapsed_holds(conn, datetime.now(timezone.utc)))


@flow(name="confirm-pickups")
def confirm_collected_parcels() -> PickupSummary:
    total = PickupSummary()
    size = get_settings().fulfil_batch_size
    cursor = 0
    while True:
        batch = confirm_pickups(size, after_id=cursor)
        total.asked += batch.asked
        total.collected += batch.collected
        total.left_after_cancel += batch.left_after_cancel
        total.waybills_cancelled += batch.waybills_cancelled
        if batch.asked < size:
            break
        cursor = batch.last_id
    return total
