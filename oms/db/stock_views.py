"""What operators read about stock: levels per warehouse, the backorder queue with each
order's reason, one order's routing decision, and the listings stock sync tells."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from oms.db.schema import listings, order_routing, orders, skus, stock, warehouses
from oms.domain.order import OrderStatus


def stock_levels(conn: Connection, sku: str | None = None) -> list[dict[str, Any]]:
    query = (select(warehouses.c.code.label("warehouse"), skus.c.code.label("sku"), stock.c.on_hand,
                    stock.c.reserved, stock.c.safety_stock,
                    (stock.c.on_hand - stock.c.reserved - stock.c.safety_stock).label("available"),
                    skus.c.reorder_point)
             .join(warehouses, warehouses.c.id == stock.c.warehouse_id).join(skus, skus.c.id == stock.c.sku_id)
             .order_by(skus.c.code, warehouses.c.priority))
    if sku:
        query = query.where(skus.c.code == sku)
    return [dict(row._mapping) for row in conn.execute(query)]


def backorder_queue(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Backordered orders, longest waiting first, with why they wait."""
    query = (select(orders.c.shop_code, orders.c.platform_order_id, orders.c.paid_at, order_routing.c.reason,
                    order_routing.c.attempts, order_routing.c.first_decided_at, order_routing.c.decided_at)
             .join(order_routing, order_routing.c.order_id == orders.c.id, isouter=True)
             .where(orders.c.status == OrderStatus.BACKORDERED.value)
             .order_by(order_routing.c.first_decided_at, orders.c.id).limit(limit))
    return [dict(row._mapping) for row in conn.execute(query)]


def routing_of(conn: Connection, shop_code: str, platform_order_id: str) -> dict[str, Any] | None:
    query = (select(orders.c.status, order_routing)
             .join(order_routing, order_routing.c.order_id == orders.c.id)
             .where(orders.c.shop_code == shop_code, orders.c.platform_order_id == platform_order_id))
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def listing_overview(conn: Connection, shop_code: str) -> list[dict[str, Any]]:
    query = (select(listings.c.sku, listings.c.item_id, listings.c.variant_id, listings.c.pushed_quantity,
                    listings.c.pushed_at, listings.c.failures, listings.c.last_error)
             .where(listings.c.shop_code == shop_code).order_by(listings.c.sku))
    return [dict(row._mapping) for row in conn.execute(query)]
