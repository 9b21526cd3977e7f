"""Shipments and tracking write-back attempts.

A shipment is created once per order (unique order id), which is what makes a retried
shipping task harmless. Every write-back attempt is a `tracking_pushes` row, so an
operator can see exactly what was sent to the platform and what it answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, distinct, exists, func, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.history import record_history
from oms.db.schema import order_lines, orders, shipments, skus, tracking_pushes
from oms.db.stock import consume_reservations
from oms.domain.order import OrderStatus, apply_transition


@dataclass
class ShipmentDraft:
    order_id: int
    warehouse_id: int
    carrier: str
    tracking_number: str


def orders_ready_to_ship(conn: Connection, limit: int, after_id: int = 0) -> list[dict[str, Any]]:
    """Allocated orders with no shipment yet, each with its lines and parcel weight."""
    has_shipment = exists().where(shipments.c.order_id == orders.c.id)
    query = (
        select(orders)
        .where(orders.c.status == OrderStatus.ALLOCATED.value, ~has_shipment, orders.c.id > after_id)
        .order_by(orders.c.id)
        .limit(limit)
    )
    found = {row.id: dict(row._mapping) | {"lines": []} for row in conn.execute(query)}
    for part in chunks(list(found)):
        line_query = (
            select(order_lines.c.order_id, order_lines.c.sku, order_lines.c.title,
                   order_lines.c.quantity, func.coalesce(skus.c.weight_grams, 500).label("grams"))
            .select_from(order_lines.outerjoin(skus, skus.c.code == order_lines.c.sku))
            .where(order_lines.c.order_id.in_(part))
        )
        for line in conn.execute(line_query):
            found[line.order_id]["lines"].append(dict(line._mapping))
    return list(found.values())


def record_shipments(conn: Connection, drafts: list[ShipmentDraft], now: datetime) -> int:
    """Store the waybills, take the goods out of stock and mark the orders shipped."""
    if not drafts:
        return 0
    statement = (
        upsert_insert(conn, shipments)
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(shipments.c.order_id)
    )
    rows = [
        {"order_id": d.order_id, "warehouse_id": d.warehouse_id, "carrier": d.carrier,
         "tracking_number": d.tracking_number, "status": "label_created", "created_at": now}
        for d in drafts
    ]
    shipped = [row.order_id for row in conn.execute(statement, rows)]
    consume_reservations(conn, shipped, now)
    for part in chunks(shipped):
        conn.execute(update(orders).where(orders.c.id.in_(part))
                     .values(status=OrderStatus.SHIPPED.value, modified_at=now))
    by_order = {d.order_id: d for d in drafts}
    record_history(conn, [
        (order_id, apply_transition(OrderStatus.ALLOCATED, OrderStatus.SHIPPED, at=now,
                                    actor="fulfil", reason=f"waybill {by_order[order_id].carrier} issued"))
        for order_id in shipped
    ])
    return len(shipped)


def shipments_to_push(conn: Connection, limit: int, shop_code: str | None = None) -> list[dict[str, Any]]:
    """Shipments whose tracking the platform has not accepted, and that no platform refused
    for good (those wait in the review queue for a person)."""
    settled = exists().where(
        and_(tracking_pushes.c.shipment_id == shipments.c.id,
             tracking_pushes.c.outcome.in_(("success", "rejected")))
    )
    query = (
        select(shipments.c.id.label("shipment_id"), shipments.c.carrier, shipments.c.tracking_number,
               orders.c.id.label("order_id"), orders.c.platform, orders.c.shop_code,
               orders.c.platform_order_id)
        .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id))
        .where(~settled, *([orders.c.shop_code == shop_code] if shop_code else []))
        .order_by(shipments.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def shops_with_pending_pushes(conn: Connection) -> list[str]:
    query = (
        select(distinct(orders.c.shop_code))
        .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id))
        .where(shipments.c.tracking_pushed_at.is_(None))
        .order_by(orders.c.shop_code)
    )
    return list(conn.execute(query).scalars())


def record_push(conn: Connection, shipment: dict[str, Any], *, outcome: str, now: datetime,
                request: Any = None, response: Any = None, error: str | None = None) -> None:
    attempts = conn.execute(
        select(func.count()).where(tracking_pushes.c.shipment_id == shipment["shipment_id"])
    ).scalar_one()
    conn.execute(tracking_pushes.insert().values(
        shipment_id=shipment["shipment_id"], platform=shipment["platform"],
        shop_code=shipment["shop_code"], attempt=attempts + 1, outcome=outcome,
        request=request, response=response, error=error, at=now,
    ))
    if outcome == "success":
        conn.execute(update(shipments).where(shipments.c.id == shipment["shipment_id"])
                     .values(tracking_pushed_at=now))
