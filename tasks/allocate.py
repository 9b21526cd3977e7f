"""Allocation task: route and reserve stock for one batch of waiting orders.

A batch whose guarded updates find the stock (or a warehouse's daily capacity) moved is
rolled back and planned again from fresh numbers; the second plan locks its stock rows
before reading them (PostgreSQL), so it cannot be overtaken again and the batch is not
starved by busier allocators. PostgreSQL may also pick this transaction as the victim of
a lock cycle with a writer outside allocation: that is the same "plan again" case.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from prefect import task
from sqlalchemy import Connection, select
from sqlalchemy.exc import OperationalError

from oms.config import get_settings
from oms.db.allocation import AllocationOutcome, AllocationPolicy, allocate_batch
from oms.db.review import ReviewEntry, park
from oms.db.schema import orders, warehouses
from oms.db.stock import StockMoved
from oms.routing_rules import load_routing_rules, sites_from
from tasks.policy import BATCH_TASK
from tasks.resources import engine
from tasks.stock_alerts import watch_reorder_points

REPLANS = 8
EXPLANATIONS_KEPT = 20  # per batch, for the run's artifact


@dataclass
class AllocationSummary:
    considered: int = 0
    allocated: int = 0
    backordered: int = 0
    unknown_sku: int = 0
    split: int = 0
    held_unpaid: int = 0
    replans: int = 0
    last_id: int = 0
    short_skus: dict[str, int] = field(default_factory=dict)  # SKU -> units missing
    touched_skus: list[str] = field(default_factory=list)  # SKUs whose free stock changed
    # (order id, warehouses or "backordered", the explanation) for the run's artifact
    explanations: list[tuple[int, str, list[str]]] = field(default_factory=list)


def allocation_policy(conn: Connection) -> AllocationPolicy:
    """The routing rules of the configuration file over the active warehouses."""
    settings = get_settings()
    rules, house_settings = load_routing_rules()
    rows = [dict(row._mapping) for row in conn.execute(
        select(warehouses.c.code, warehouses.c.province, warehouses.c.priority)
        .where(warehouses.c.active.is_(True)).order_by(warehouses.c.priority, warehouses.c.code))]
    hold = timedelta(minutes=settings.unpaid_hold_minutes) if settings.unpaid_hold_minutes > 0 else None
    return AllocationPolicy(rules=rules, sites=sites_from(rows, house_settings, {}),
                            timezone=ZoneInfo(settings.warehouse_timezone), unpaid_hold=hold)


@task(name="allocate-stock", **BATCH_TASK)
def allocate_stock(batch_size: int, after_id: int = 0, only_skus: list[str] | None = None,
                   decided_before: datetime | None = None) -> AllocationSummary:
    """`decided_before`: the start of this allocation pass, so that backorders another
    allocator of the pass already tried are not routed again on the same stock."""
    replans = 0
    while True:
        now = datetime.now(timezone.utc)
        try:
            with engine().begin() as conn:
                outcome = allocate_batch(conn, limit=batch_size, now=now, actor="fulfil", after_id=after_id,
                                         policy=allocation_policy(conn), decided_before=decided_before,
                                         only_skus=set(only_skus) if only_skus is not None else None,
                                         lock_stock=replans > 0)
                _park_unknown_skus(conn, outcome.unknown_skus, now)
            break
        except (StockMoved, OperationalError) as error:
            if isinstance(error, OperationalError) and not _lock_conflict(error):
                raise
            replans += 1
            if replans >= REPLANS:
                raise RuntimeError(f"stock kept moving under allocation after {REPLANS} plans; try again") from error
            time.sleep(random.uniform(0.005, 0.05) * replans)  # let the other writer finish
    watch_reorder_points(sorted(outcome.touched_skus))
    return _summary(outcome, replans)


def _lock_conflict(error: OperationalError) -> bool:
    """PostgreSQL's deadlock victim or serialization failure: safe to plan again."""
    return getattr(error.orig, "pgcode", None) in ("40P01", "40001")


def _summary(outcome: AllocationOutcome, replans: int) -> AllocationSummary:
    short: dict[str, int] = {}
    for decision in outcome.backordered.values():
        for line in decision.short:
            short[line.sku] = short.get(line.sku, 0) + line.wanted - line.available
    explained = [
        (order_id, ", ".join(p.warehouse for p in decision.parcels) or "backordered", list(decision.explanation))
        for order_id, decision in list(outcome.decisions.items())[:EXPLANATIONS_KEPT]
    ]
    return AllocationSummary(
        considered=outcome.considered,
        allocated=len(outcome.allocated) + len(outcome.confirmed_holds),
        backordered=len(outcome.backordered),
        unknown_sku=len(outcome.unknown_skus),
        split=sum(1 for d in outcome.decisions.values() if d.split),
        held_unpaid=len(outcome.held_unpaid),
        replans=replans,
        last_id=outcome.last_id,
        short_skus=short,
        touched_skus=sorted(outcome.touched_skus),
        explanations=explained,
    )


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
