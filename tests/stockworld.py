"""A small stock world for ledger, audit and concurrency tests: warehouses, SKUs, stock
and paid orders stored through the pipeline's own functions, and the checks that every
unit is accounted for."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from oms.db.allocation import AllocationPolicy
from oms.db.orders import store_orders
from oms.db.schema import order_lines, orders, reservations, skus, stock, warehouses
from oms.db.shops import save_skus, save_warehouse, set_on_hand
from oms.domain.order import OrderLine, OrderStatus
from oms.domain.routing import RoutingRules, WarehouseSite
from tests.factories import make_order

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
HOUSES = {"WH-SH": "上海市", "WH-GZ": "广东省"}


def build_world(conn: Connection, on_hand: dict[tuple[str, str], int], safety_stock: int = 0) -> dict[str, int]:
    """Warehouses and SKUs with stock: on_hand[(warehouse, sku)] = units; returns SKU ids."""
    sku_codes = sorted({sku for _, sku in on_hand})
    ids = save_skus(conn, [{"code": sku, "title": sku, "weight_grams": 300} for sku in sku_codes])
    for priority, (code, province) in enumerate(sorted(HOUSES.items()), start=1):
        house = save_warehouse(conn, code=code, name=code, province=province, priority=priority * 10)
        levels = {ids[sku]: units for (w, sku), units in on_hand.items() if w == code}
        if levels:
            set_on_hand(conn, house, levels, safety_stock=safety_stock)
    return ids


def place_orders(conn: Connection, wanted: list[dict[str, int]], *, first_number: int = 1,
                 status: OrderStatus = OrderStatus.PAID, province: str = "上海市") -> None:
    """One paid order per dict of SKU -> quantity."""
    batch = []
    for offset, lines in enumerate(wanted):
        order = make_order(first_number + offset, status=status)
        order.receiver.province = province
        order.lines = [OrderLine(sku=sku, quantity=units, unit_price=order.lines[0].unit_price, title=sku)
                       for sku, units in lines.items()]
        batch.append(order)
    store_orders(conn, batch, now=NOW)


def default_policy(**rules) -> AllocationPolicy:
    sites = [WarehouseSite(code=code, province=province, priority=priority * 10, daily_capacity=None)
             for priority, (code, province) in enumerate(sorted(HOUSES.items()), start=1)]
    return AllocationPolicy(rules=RoutingRules.from_mapping(rules) if rules else RoutingRules.default(),
                            sites=sites, timezone=ZoneInfo("Asia/Shanghai"))


def ledger_problems(conn: Connection) -> list[str]:
    """Every way the stock ledger disagrees with itself; empty when it is sound."""
    problems = []
    holding = {(w, s): total for w, s, total in conn.execute(
        select(reservations.c.warehouse_id, reservations.c.sku_id, func.sum(reservations.c.quantity))
        .where(reservations.c.state.in_(("held", "locked")))
        .group_by(reservations.c.warehouse_id, reservations.c.sku_id))}
    for row in conn.execute(select(stock)):
        key = f"{row.warehouse_id}/{row.sku_id}"
        counted = int(holding.get((row.warehouse_id, row.sku_id), 0))
        if row.reserved != counted:
            problems.append(f"{key}: reserved {row.reserved} but the rows hold {counted}")
        if row.reserved > row.on_hand:
            problems.append(f"{key}: reserved {row.reserved} exceeds on hand {row.on_hand}")
    # Every line of an allocated or shipped order is reserved in full, no more, no less.
    reserved_per_line = Counter(dict(conn.execute(
        select(reservations.c.order_line_id, func.sum(reservations.c.quantity))
        .where(reservations.c.state.in_(("held", "locked", "consumed")))
        .group_by(reservations.c.order_line_id)).all()))
    placed = (select(order_lines.c.id, order_lines.c.quantity, orders.c.status)
              .join(orders, orders.c.id == order_lines.c.order_id))
    for line_id, quantity, status in conn.execute(placed):
        taken = int(reserved_per_line.get(line_id, 0))
        if status in (OrderStatus.ALLOCATED.value, OrderStatus.SHIPPED.value) and taken != quantity:
            problems.append(f"line {line_id} ({status}) wants {quantity}, reserved {taken}")
        if status in (OrderStatus.PAID.value, OrderStatus.BACKORDERED.value, OrderStatus.CANCELLED.value) and taken:
            problems.append(f"line {line_id} ({status}) still holds {taken}")
    return problems


def units(conn: Connection) -> dict[str, int]:
    """On hand and reserved per 'WAREHOUSE/SKU'."""
    query = (select(warehouses.c.code, skus.c.code.label("sku"), stock.c.on_hand, stock.c.reserved)
             .join(warehouses, warehouses.c.id == stock.c.warehouse_id).join(skus, skus.c.id == stock.c.sku_id))
    return {f"{row.code}/{row.sku}": (row.on_hand, row.reserved) for row in conn.execute(query)}


def statuses(conn: Connection) -> Counter:
    return Counter(conn.execute(select(orders.c.status)).scalars())
