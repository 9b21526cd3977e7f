"""Stock, reservations and the named locking queries of allocation, in one place.

Reservation rows are the truth; `stock.reserved` is their sum, kept in the same
transaction so that one guarded UPDATE per SKU per batch both checks and takes stock:

    UPDATE stock SET reserved = reserved + :units
     WHERE warehouse_id = :w AND sku_id = :s
       AND on_hand - reserved - safety_stock >= :units

If another writer took the stock since the plan was made, the UPDATE matches no row,
the whole batch rolls back and is planned again from fresh numbers. Nothing is ever
written from a stale read, so two runs can never sell the same unit twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, select, update

from oms.db.dialect import chunks
from oms.db.history import record_history
from oms.db.schema import order_lines, orders, reservations, skus, stock, warehouses
from oms.domain.allocation import Demand, DemandLine, plan_allocation
from oms.domain.errors import ShortLine
from oms.domain.order import OrderStatus, StatusChange, apply_transition

ALLOCATABLE = (OrderStatus.PAID.value, OrderStatus.BACKORDERED.value)


class StockMoved(Exception):
    """A guarded reservation matched no row: the plan was made on numbers now stale."""


@dataclass
class AllocationOutcome:
    allocated: list[int] = field(default_factory=list)
    backordered: dict[int, list[ShortLine]] = field(default_factory=dict)
    unknown_skus: dict[int, list[str]] = field(default_factory=dict)  # order id -> SKUs
    considered: int = 0
    last_id: int = 0  # keyset cursor for the next batch


def allocate_batch(
    conn: Connection, *, limit: int, now: datetime, actor: str, after_id: int = 0
) -> AllocationOutcome:
    """Plan and reserve for up to `limit` waiting orders with ids above `after_id`;
    raise StockMoved to be retried from fresh numbers."""
    candidates = _waiting_orders(conn, limit, after_id)
    if not candidates:
        return AllocationOutcome()
    lines = _lines_of(conn, list(candidates))
    sku_ids = _sku_ids(conn, {line["sku"] for line in lines})
    warehouse_ids = _active_warehouses(conn)
    outcome = AllocationOutcome(considered=len(candidates), last_id=max(candidates))
    demands = _demands(candidates, lines, sku_ids, outcome)
    available = _available(conn, list(sku_ids.values()))
    plan = plan_allocation(
        demands,
        {(w, sku): available.get((warehouse_ids[w], sku_ids[sku]), 0)
         for w in warehouse_ids for sku in sku_ids},
        list(warehouse_ids),
    )
    _reserve(conn, plan.taken, warehouse_ids, sku_ids)
    _insert_reservations(conn, plan, demands, warehouse_ids, sku_ids, now)
    _set_allocated(conn, plan.warehouse_of, warehouse_ids, now)
    outcome.allocated = list(plan.warehouse_of)
    outcome.backordered = plan.short
    history: list[tuple[int, StatusChange]] = []
    for order_id in plan.warehouse_of:
        history.append((order_id, apply_transition(
            OrderStatus(candidates[order_id]), OrderStatus.ALLOCATED, at=now, actor=actor,
            reason=f"reserved in {plan.warehouse_of[order_id]}")))
    newly_waiting = [o for o in [*plan.short, *outcome.unknown_skus]
                     if candidates[o] == OrderStatus.PAID.value]
    _set_status(conn, newly_waiting, OrderStatus.BACKORDERED, now)
    for order_id in newly_waiting:
        history.append((order_id, apply_transition(
            OrderStatus.PAID, OrderStatus.BACKORDERED, at=now, actor=actor,
            reason="no warehouse can fill every line")))
    record_history(conn, history)
    return outcome


def _waiting_orders(conn: Connection, limit: int, after_id: int) -> dict[int, str]:
    # Keyset on id (ids grow with arrival) so a run walks every waiting order once, even
    # the ones that stay backordered.
    query = (
        select(orders.c.id, orders.c.status)
        .where(orders.c.status.in_(ALLOCATABLE), orders.c.id > after_id)
        .order_by(orders.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        # Two allocation runs at once each take different orders instead of waiting.
        query = query.with_for_update(skip_locked=True, of=orders)
    return {row.id: row.status for row in conn.execute(query)}


def _lines_of(conn: Connection, order_ids: list[int]) -> list[dict]:
    found = []
    for part in chunks(order_ids):
        query = select(order_lines.c.id, order_lines.c.order_id, order_lines.c.sku,
                       order_lines.c.quantity).where(order_lines.c.order_id.in_(part))
        found.extend(dict(row._mapping) for row in conn.execute(query))
    return found


def _sku_ids(conn: Connection, codes: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in chunks(sorted(codes)):
        found.update(conn.execute(select(skus.c.code, skus.c.id).where(skus.c.code.in_(part))).all())
    return found


def _active_warehouses(conn: Connection) -> dict[str, int]:
    query = (select(warehouses.c.code, warehouses.c.id)
             .where(warehouses.c.active.is_(True))
             .order_by(warehouses.c.priority, warehouses.c.id))
    return dict(conn.execute(query).all())


def _demands(candidates: dict[int, str], lines: list[dict], sku_ids: dict[str, int],
             outcome: AllocationOutcome) -> list[Demand]:
    by_order: dict[int, list[DemandLine]] = {order_id: [] for order_id in candidates}
    for line in lines:
        if line["sku"] not in sku_ids:
            outcome.unknown_skus.setdefault(line["order_id"], []).append(line["sku"])
        by_order[line["order_id"]].append(DemandLine(line["id"], line["sku"], line["quantity"]))
    return [Demand(order_id, tuple(found)) for order_id, found in by_order.items()
            if order_id not in outcome.unknown_skus and found]


def _available(conn: Connection, sku_ids: list[int]) -> dict[tuple[int, int], int]:
    found: dict[tuple[int, int], int] = {}
    for part in chunks(sku_ids):
        query = select(stock.c.warehouse_id, stock.c.sku_id,
                       (stock.c.on_hand - stock.c.reserved - stock.c.safety_stock).label("free")
                       ).where(stock.c.sku_id.in_(part))
        found.update({(row.warehouse_id, row.sku_id): row.free for row in conn.execute(query)})
    return found


def _reserve(conn: Connection, taken: Counter, warehouse_ids: dict, sku_ids: dict) -> None:
    guarded = (
        update(stock)
        .where(
            stock.c.warehouse_id == bindparam("w"),
            stock.c.sku_id == bindparam("s"),
            stock.c.on_hand - stock.c.reserved - stock.c.safety_stock >= bindparam("units"),
        )
        .values(reserved=stock.c.reserved + bindparam("units"))
    )
    for (warehouse, sku), units in sorted(taken.items()):
        params = {"w": warehouse_ids[warehouse], "s": sku_ids[sku], "units": units}
        if conn.execute(guarded, params).rowcount != 1:
            raise StockMoved(f"{sku} in {warehouse} changed while allocating")


def _insert_reservations(conn, plan, demands, warehouse_ids, sku_ids, now) -> None:
    rows = [
        {"order_id": order_id, "order_line_id": line_id, "warehouse_id": warehouse_ids[w],
         "sku_id": sku_ids[sku], "quantity": units, "state": "active", "created_at": now}
        for order_id, line_id, w, sku, units in plan.reservations(demands)
    ]
    if rows:
        conn.execute(reservations.insert(), rows)


def _set_allocated(conn: Connection, warehouse_of: dict[int, str], warehouse_ids: dict, now: datetime) -> None:
    if not warehouse_of:
        return
    statement = (update(orders).where(orders.c.id == bindparam("order_pk"))
                 .values(status=OrderStatus.ALLOCATED.value, warehouse_id=bindparam("wh"), modified_at=now))
    conn.execute(statement, [{"order_pk": o, "wh": warehouse_ids[w]} for o, w in warehouse_of.items()])


def _set_status(conn: Connection, order_ids: list[int], status: OrderStatus, now: datetime) -> None:
    for part in chunks(order_ids):
        conn.execute(update(orders).where(orders.c.id.in_(part)).values(status=status.value, modified_at=now))


def release_reservations(conn: Connection, order_ids: list[int], now: datetime) -> int:
    """Give the units of these orders' active reservations back to available stock."""
    return _close_reservations(conn, order_ids, now, state="released", consume=False)


def consume_reservations(conn: Connection, order_ids: list[int], now: datetime) -> int:
    """The goods left the warehouse: reserved units leave on-hand stock too."""
    return _close_reservations(conn, order_ids, now, state="consumed", consume=True)


def _close_reservations(conn, order_ids, now, *, state: str, consume: bool) -> int:
    if not order_ids:
        return 0
    totals: Counter = Counter()
    for part in chunks(order_ids):
        query = select(reservations.c.warehouse_id, reservations.c.sku_id, reservations.c.quantity
                       ).where(reservations.c.order_id.in_(part), reservations.c.state == "active")
        for row in conn.execute(query):
            totals[(row.warehouse_id, row.sku_id)] += row.quantity
        conn.execute(update(reservations)
                     .where(reservations.c.order_id.in_(part), reservations.c.state == "active")
                     .values(state=state, closed_at=now))
    if totals:
        values = {"reserved": stock.c.reserved - bindparam("units")}
        if consume:
            values["on_hand"] = stock.c.on_hand - bindparam("units")
        statement = update(stock).where(
            and_(stock.c.warehouse_id == bindparam("w"), stock.c.sku_id == bindparam("s"))
        ).values(values)
        conn.execute(statement, [{"w": w, "s": s, "units": n} for (w, s), n in sorted(totals.items())])
    return sum(totals.values())
