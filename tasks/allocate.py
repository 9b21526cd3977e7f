"""Allocation task: reserve stock for one batch of waiting orders.

A batch whose guarded reservation finds the stock moved is rolled back and planned
again from fresh numbers, a few times, before the task gives up loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from prefect import task

from oms.db.review import ReviewEntry, park
from oms.db.schema import orders
from oms.db.stock import StockMoved, allocate_batch
from sqlalchemy import select
from tasks.policy import BATCH_TASK
from tasks.resources import engine

REPLANS = 5


@dataclass
class AllocationSummary:
    considered: int = 0
    allocated: int = 0
    backordered: int = 0
    unknown_sku: int = 0
    last_id: int = 0
    short_skus: dict[str, int] = field(default_factory=dict)  # SKU -> units missing


@task(name="allocate-stock", **BATCH_TASK)
def allocate_stock(batch_size: int, after_id: int = 0) -> AllocationSummary:
    for _ in range(REPLANS):
        now = datetime.now(timezone.utc)
        try:
            with engine().begin() as conn:
                outcome = allocate_batch(conn, limit=batch_size, now=now, actor="fulfil", after_id=after_id)
                _park_unknown_skus(conn, outcome.unknown_skus, now)
        except StockMoved:
            continue
        short: dict[str, int] = {}
        for lines in outcome.backordered.values():
            for line in lines:
                short[line.sku] = short.get(line.sku, 0) + line.wanted - line.available
        return AllocationSummary(
            considered=outcome.considered,
            allocated=len(outcome.allocated),
            backordered=len(outcome.backordered),
            unknown_sku=len(outcome.unknown_skus),
            last_id=outcome.last_id,
            short_skus=short,
        )
    raise RuntimeError(f"stock kept moving under allocation after {REPLANS} plans; try again")


def _park_unknown_skus(conn, unknown: dict[int, list[str]], now: datetime) -> None:
    if not unknown:
        return
    rows = conn.execute(
        select(orders.c.id, orders.c.platform, orders.c.shop_code, orders.c.platform_order_id)
        .where(orders.c.id.in_(list(unknown)))
    ).all()
    park(conn, [
        ReviewEntry("allocate", row.platform, row.shop_code, row.platform_order_id,
                    [f"SKU {sku} is not in the catalogue" for sku in unknown[row.id]],
                    {"order_id": row.id, "skus": unknown[row.id]})
        for row in rows
    ], now)
