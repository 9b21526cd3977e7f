"""Landing raw payloads and storing orders on their global key, in batches.

`store_orders` is the dedupe step: an order is identified by platform + shop + platform
order id. New orders are inserted; known ones are updated only when the platform's update
time moved forward, so a re-run over the same window, or the same order on two pages,
changes nothing. Every status change is written to `order_status_history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.history import record_history
from oms.db.schema import order_lines, orders, raw_orders
from oms.db.shipping import cancel_after_waybill
from oms.db.stock import consume_reservations, release_reservations
from oms.domain.identity import merge_key
from oms.domain.order import Order, OrderStatus, StatusChange, apply_transition, platform_status_change

# Lines may still change while nothing has been reserved or shipped for them.
LINES_EDITABLE = {OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.BACKORDERED}


@dataclass
class StoreResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0  # already stored with this platform update time (re-runs, overlaps)
    merged_in_batch: int = 0  # the same order more than once in one batch (two pages)
    cancelled_after_allocation: int = 0
    cancelled_after_waybill: int = 0  # voided, or left locked for a person to stop


@dataclass
class LandedPayload:
    platform_order_id: str
    platform_updated_at: datetime
    payload: dict[str, Any]


def land_raw_orders(
    conn: Connection, platform: str, shop_code: str, payloads: list[LandedPayload], now: datetime
) -> int:
    """Keep every payload as received, once per platform update time; return new rows."""
    if not payloads:
        return 0
    rows = [
        {
            "platform": platform,
            "shop_code": shop_code,
            "platform_order_id": p.platform_order_id,
            "platform_updated_at": p.platform_updated_at,
            "payload": p.payload,
            "received_at": now,
        }
        for p in payloads
    ]
    statement = (
        upsert_insert(conn, raw_orders)
        .on_conflict_do_nothing(
            index_elements=["platform", "shop_code", "platform_order_id", "platform_updated_at"]
        )
        .returning(raw_orders.c.id)
    )
    return len(conn.execute(statement, rows).all())


def store_orders(
    conn: Connection, batch: list[Order], *, now: datetime, actor: str = "ingest"
) -> StoreResult:
    result = StoreResult()
    latest = _latest_per_key(batch)
    result.merged_in_batch = len(batch) - len(latest)
    existing = _existing(conn, list(latest))
    fresh = [order for key, order in latest.items() if key not in existing]
    newer = [
        (existing[key], order)
        for key, order in latest.items()
        if key in existing and order.updated_at > existing[key]["platform_updated_at"]
    ]
    result.unchanged = len(latest) - len(fresh) - len(newer)
    result.inserted = _insert_new(conn, fresh, now, actor)
    result.updated, result.cancelled_after_allocation, late = _apply_updates(conn, newer, now, actor)
    result.cancelled_after_waybill = len(late)
    if late:
        _cancel_after_waybill(conn, late, now, actor)
    return result


def _cancel_after_waybill(conn: Connection, late: list[tuple[int, Order]], now: datetime, actor: str) -> None:
    """Orders a platform cancelled after their waybill was printed: the shipping records
    stop the parcels still in the warehouse and raise interceptions (with a review entry)
    for those handed over; the same code serves the drift check."""
    # dict(): an order can come twice (late, and frozen by the release of its other half).
    cancel_after_waybill(conn, list(dict(late)), now, actor, reason="cancelled on the platform")


def _latest_per_key(batch: list[Order]) -> dict[tuple[str, str, str], Order]:
    latest: dict[tuple[str, str, str], Order] = {}
    for order in batch:
        kept = latest.get(order.global_key)
        if kept is None or order.updated_at > kept.updated_at:
            latest[order.global_key] = order
    return latest


def _existing(conn: Connection, keys: list[tuple[str, str, str]]) -> dict[tuple, dict]:
    found: dict[tuple, dict] = {}
    by_shop: dict[tuple[str, str], list[str]] = {}
    for platform, shop, order_id in keys:
        by_shop.setdefault((platform, shop), []).append(order_id)
    for (platform, shop), ids in by_shop.items():
        for part in chunks(ids):
            query = select(
                orders.c.id, orders.c.platform_order_id, orders.c.status, orders.c.platform_updated_at
            ).where(
                orders.c.platform == platform,
                orders.c.shop_code == shop,
                orders.c.platform_order_id.in_(part),
            )
            for row in conn.execute(query):
                found[(platform, shop, row.platform_order_id)] = dict(row._mapping)
    return found


def _insert_new(conn: Connection, fresh: list[Order], now: datetime, actor: str) -> int:
    if not fresh:
        return 0
    statement = (
        upsert_insert(conn, orders)
        .on_conflict_do_nothing(index_elements=["platform", "shop_code", "platform_order_id"])
        .returning(orders.c.id, orders.c.platform_order_id, orders.c.shop_code)
    )
    inserted = conn.execute(statement, [_order_row(o, now) | {"first_seen_at": now} for o in fresh])
    ids = {(row.shop_code, row.platform_order_id): row.id for row in inserted}
    stored = [o for o in fresh if (o.shop_code, o.platform_order_id) in ids]
    _insert_lines(conn, [(ids[(o.shop_code, o.platform_order_id)], o) for o in stored])
    changes = [
        (
            ids[(o.shop_code, o.platform_order_id)],
            apply_transition(
                None, o.status, at=now, actor=actor, reason=f"first seen as {o.platform_status}"
            ),
        )
        for o in stored
    ]
    record_history(conn, changes)
    return len(stored)


def _apply_updates(
    conn: Connection, newer: list[tuple[dict, Order]], now: datetime, actor: str
) -> tuple[int, int, list[tuple[int, Order]]]:
    if not newer:
        return 0, 0, []
    changes: list[tuple[int, StatusChange]] = []
    rows, relined, released, shipped_elsewhere, late = [], [], [], [], []
    for stored, order in newer:
        current = OrderStatus(stored["status"])
        # An allocated order may already have a waybill for one of its parcels (a split
        # order labelled part by part): the shipping records decide for those too.
        if (current in (OrderStatus.ALLOCATED, OrderStatus.PACKING, OrderStatus.SHIPPED)
                and order.status == OrderStatus.CANCELLED):
            late.append((stored["id"], order))
        target = platform_status_change(current, order.status)
        status = current
        if target is not None:
            change = apply_transition(
                current, target, at=now, actor=actor, reason=f"platform reports {order.platform_status}"
            )
            changes.append((stored["id"], change))
            status = target
            if current == OrderStatus.ALLOCATED and target == OrderStatus.CANCELLED:
                released.append(stored["id"])
            elif current == OrderStatus.ALLOCATED and target == OrderStatus.SHIPPED:
                # Shipped by hand from the platform's back-office: the reserved goods
                # left the warehouse all the same.
                shipped_elsewhere.append(stored["id"])
        rows.append(_order_row(order, now) | {"order_pk": stored["id"], "status": status.value})
        if status in LINES_EDITABLE:
            relined.append((stored["id"], order))
    # executemany: each row's keys name the columns to set
    conn.execute(update(orders).where(orders.c.id == bindparam("order_pk")), rows)
    _replace_lines(conn, relined, now)
    frozen = release_reservations(conn, released, now).locked_orders
    consume_reservations(conn, shipped_elsewhere, now)
    record_history(conn, changes)
    # An order cancelled while one of its parcels' numbers already reached the platform
    # (a split order, say) keeps that parcel's stock locked: a person must stop it.
    late.extend((stored["id"], order) for stored, order in newer if stored["id"] in frozen)
    return len(rows), len(released), late


def _order_row(order: Order, now: datetime) -> dict[str, Any]:
    receiver = order.receiver
    return {
        "platform": order.platform,
        "shop_code": order.shop_code,
        "platform_order_id": order.platform_order_id,
        "platform_status": order.platform_status,
        "status": order.status.value,
        "created_at": order.created_at,
        "platform_updated_at": order.updated_at,
        "paid_at": order.paid_at,
        "ship_by": order.ship_by,
        "currency": order.currency,
        "total_amount": order.total_amount,
        "shipping_fee": order.shipping_fee,
        "receiver_name": receiver.name,
        "receiver_phone": receiver.phone,
        "receiver_province": receiver.province,
        "receiver_city": receiver.city,
        "receiver_district": receiver.district,
        "receiver_address": receiver.address,
        "receiver_postal_code": receiver.postal_code,
        "receiver_country": receiver.country_code,
        "receiver_masked": receiver.masked,
        "receiver_encrypted": receiver.encrypted or None,
        "buyer_ref": order.buyer_ref,
        "buyer_note": order.buyer_note,
        "merge_key": merge_key(
            shop_code=order.shop_code, buyer_ref=order.buyer_ref, receiver_name=receiver.name,
            receiver_phone=receiver.phone, province=receiver.province, city=receiver.city,
            district=receiver.district, address=receiver.address, masked=receiver.masked),
        "modified_at": now,
    }


def _insert_lines(conn: Connection, owned: list[tuple[int, Order]]) -> None:
    rows = [
        {
            "order_id": order_id,
            "line_no": number,
            "platform_line_id": line.platform_line_id,
            "sku": line.sku,
            "title": line.title,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
        }
        for order_id, order in owned
        for number, line in enumerate(order.lines, start=1)
    ]
    if rows:
        conn.execute(order_lines.insert(), rows)


def _replace_lines(conn: Connection, owned: list[tuple[int, Order]], now: datetime) -> None:
    """Store the lines of orders whose lines changed. An order holding stock for its old
    lines (an unpaid hold) gives it back first: deleting the lines would otherwise drop
    its reservation rows behind the totals' back."""
    changed = _lines_changed(conn, owned)
    if not changed:
        return
    release_reservations(conn, [order_id for order_id, _ in changed], now, reason="lines changed")
    for part in chunks([order_id for order_id, _ in changed]):
        conn.execute(delete(order_lines).where(order_lines.c.order_id.in_(part)))
    _insert_lines(conn, changed)


def _lines_changed(conn: Connection, owned: list[tuple[int, Order]]) -> list[tuple[int, Order]]:
    stored: dict[int, list[tuple]] = {}
    for part in chunks([order_id for order_id, _ in owned]):
        query = (select(order_lines.c.order_id, order_lines.c.sku, order_lines.c.quantity, order_lines.c.unit_price,
                        order_lines.c.platform_line_id, order_lines.c.title)
                 .where(order_lines.c.order_id.in_(part)).order_by(order_lines.c.order_id, order_lines.c.line_no))
        for row in conn.execute(query):
            stored.setdefault(row.order_id, []).append(
                _line_identity(row.sku, row.quantity, row.unit_price, row.platform_line_id, row.title))
    return [(order_id, order) for order_id, order in owned
            if stored.get(order_id) != [_line_identity(line.sku, line.quantity, line.unit_price,
                                                       line.platform_line_id, line.title) for line in order.lines]]


def _line_identity(sku, quantity, unit_price, platform_line_id, title) -> tuple:
    # Empty strings and NULLs are the same absence once stored.
    return (sku, quantity, Decimal(unit_price), platform_line_id or None, title or None)
