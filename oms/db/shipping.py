"""Shipments, tracking write-back attempts, and the pre-ship lock until pickup.

A shipment is one order's parcel from one warehouse, created once per (order,
warehouse), which is what makes a retried shipping task harmless. Orders of one buyer
and address may share a parcel: their shipments carry the same tracking number. Every
write-back attempt is a `tracking_pushes` row, so an operator can see exactly what was
sent to the platform and what it answered.

Stock follows the parcel: reserved (held) while the label is printed; locked once a
platform has the tracking number, so a late cancellation cannot hand the units to
another order while the parcel may still leave; consumed when the carrier reports it
collected the parcel.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, distinct, exists, func, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.history import record_history
from oms.db.schema import order_lines, orders, reservations, shipments, skus, tracking_pushes, warehouses
from oms.db.stock import HOLDING, consume_parcels, lock_reservations, release_parcels
from oms.domain.order import OrderStatus, apply_transition


@dataclass
class ShipmentDraft:
    order_id: int
    warehouse_id: int
    carrier: str
    tracking_number: str
    parcel_ref: str | None = None
    writes_back: bool = True


@dataclass
class LateCancellation:
    """What a platform's cancellation of an order with a waybill came to."""

    voided: list[int]  # no platform had the number: stock released, waybill to cancel
    locked: list[int]  # a platform had it: stock stays locked until the carrier says
    collected: list[int]  # the carrier already has the parcel: a return, not a cancel


def parcels_ready_to_ship(conn: Connection, limit: int, after_id: int = 0) -> list[dict[str, Any]]:
    """Allocated orders' warehouse parcels with no shipment yet, each with its lines.

    One dict per (order, warehouse): the order's columns, `warehouse_id`, `warehouse`
    (its code), `writes_back` (the order's main parcel, whose number the platform gets)
    and `lines` with the reserved quantity and weight of each.
    """
    shipped_here = exists().where(and_(shipments.c.order_id == reservations.c.order_id,
                                       shipments.c.warehouse_id == reservations.c.warehouse_id))
    waiting = (select(reservations.c.order_id, reservations.c.warehouse_id)
               .join(orders, orders.c.id == reservations.c.order_id)
               .where(orders.c.status == OrderStatus.ALLOCATED.value, reservations.c.state == "held",
                      ~shipped_here, reservations.c.order_id > after_id)
               .group_by(reservations.c.order_id, reservations.c.warehouse_id)
               .order_by(reservations.c.order_id, reservations.c.warehouse_id)
               .limit(limit))
    pairs = [tuple(row) for row in conn.execute(waiting)]
    if not pairs:
        return []
    order_ids = sorted({order_id for order_id, _ in pairs})
    columns: dict[int, dict] = {}
    for part in chunks(order_ids):
        query = (select(orders, warehouses.c.code.label("home_warehouse"))
                 .select_from(orders.outerjoin(warehouses, warehouses.c.id == orders.c.warehouse_id))
                 .where(orders.c.id.in_(part)))
        columns.update({row.id: dict(row._mapping) for row in conn.execute(query)})
    codes = dict(conn.execute(select(warehouses.c.id, warehouses.c.code)).all())
    parcels = {pair: columns[pair[0]] | {"warehouse_id": pair[1], "warehouse": codes[pair[1]],
                                         "writes_back": pair[1] == columns[pair[0]]["warehouse_id"],
                                         "lines": []}
               for pair in pairs}
    for part in chunks(order_ids):
        line_query = (
            select(reservations.c.order_id, reservations.c.warehouse_id, order_lines.c.sku, order_lines.c.title,
                   reservations.c.quantity, func.coalesce(skus.c.weight_grams, 500).label("grams"))
            .select_from(reservations.join(order_lines, order_lines.c.id == reservations.c.order_line_id)
                         .outerjoin(skus, skus.c.id == reservations.c.sku_id))
            .where(reservations.c.order_id.in_(part), reservations.c.state == "held")
            .order_by(order_lines.c.line_no)
        )
        for line in conn.execute(line_query):
            parcel = parcels.get((line.order_id, line.warehouse_id))
            if parcel is not None:
                parcel["lines"].append({"sku": line.sku, "title": line.title, "quantity": line.quantity,
                                        "grams": line.grams})
    return list(parcels.values())


def record_shipments(conn: Connection, drafts: list[ShipmentDraft], now: datetime) -> int:
    """Store the waybills; an order whose every parcel has one is shipped. Its stock stays
    reserved until the carrier collects the parcel (see `record_pickups`)."""
    if not drafts:
        return 0
    statement = (
        upsert_insert(conn, shipments)
        .on_conflict_do_nothing(index_elements=["order_id", "warehouse_id"])
        .returning(shipments.c.order_id)
    )
    rows = [
        {"order_id": d.order_id, "warehouse_id": d.warehouse_id, "carrier": d.carrier,
         "tracking_number": d.tracking_number, "status": "label_created", "parcel_ref": d.parcel_ref,
         "writes_back": d.writes_back, "created_at": now}
        for d in drafts
    ]
    stored = sorted({row.order_id for row in conn.execute(statement, rows)})
    complete = _orders_with_every_parcel_labelled(conn, stored)
    for part in chunks(complete):
        conn.execute(update(orders).where(orders.c.id.in_(part), orders.c.status == OrderStatus.ALLOCATED.value)
                     .values(status=OrderStatus.SHIPPED.value, modified_at=now))
    carriers = {d.order_id: d.carrier for d in drafts}
    record_history(conn, [
        (order_id, apply_transition(OrderStatus.ALLOCATED, OrderStatus.SHIPPED, at=now,
                                    actor="fulfil", reason=f"waybill {carriers[order_id]} issued"))
        for order_id in complete
    ])
    return len(complete)


def _orders_with_every_parcel_labelled(conn: Connection, order_ids: list[int]) -> list[int]:
    unlabelled = exists().where(and_(
        reservations.c.order_id == orders.c.id, reservations.c.state.in_(HOLDING),
        ~exists().where(and_(shipments.c.order_id == reservations.c.order_id,
                             shipments.c.warehouse_id == reservations.c.warehouse_id))))
    done: list[int] = []
    for part in chunks(order_ids):
        done.extend(conn.execute(select(orders.c.id).where(orders.c.id.in_(part), ~unlabelled)).scalars())
    return done


# ------------------------------------------------------------------ write-back


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
        .where(~settled, shipments.c.writes_back.is_(True), shipments.c.voided_at.is_(None),
               *([orders.c.shop_code == shop_code] if shop_code else []))
        .order_by(shipments.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def shops_with_pending_pushes(conn: Connection) -> list[str]:
    query = (
        select(distinct(orders.c.shop_code))
        .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id))
        .where(shipments.c.tracking_pushed_at.is_(None), shipments.c.writes_back.is_(True),
               shipments.c.voided_at.is_(None))
        .order_by(orders.c.shop_code)
    )
    return list(conn.execute(query).scalars())


def record_push(conn: Connection, shipment: dict[str, Any], *, outcome: str, now: datetime,
                request: Any = None, response: Any = None, error: str | None = None) -> None:
    """Keep the attempt; an accepted number locks the order's stock (the pre-ship lock)."""
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
        lock_reservations(conn, [shipment["order_id"]], now)


# ------------------------------------------------------------------ after the label


def cancel_after_waybill(conn: Connection, order_ids: list[int], now: datetime, actor: str,
                         reason: str) -> LateCancellation:
    """A platform cancelled orders that already have waybills.

    Before any platform had the number, nothing has left and nobody was told it shipped:
    the stock is released, the shipments voided (their waybills are cancelled with the
    carrier later) and the order cancelled. After a push the stock stays locked and the
    order shipped until the carrier says whether it collected the parcel.
    """
    outcome = LateCancellation([], [], [])
    rows = _shipment_states(conn, order_ids)
    for order_id in order_ids:
        own = rows.get(order_id, [])
        if any(row.picked_up_at is not None for row in own):
            outcome.collected.append(order_id)
        elif any(row.tracking_pushed_at is not None for row in own) or _has_locked(conn, order_id):
            outcome.locked.append(order_id)
        else:
            outcome.voided.append(order_id)
    for part in chunks(outcome.locked):
        conn.execute(update(shipments).where(shipments.c.order_id.in_(part), shipments.c.cancel_requested_at.is_(None))
                     .values(cancel_requested_at=now))
    for part in chunks(outcome.voided):
        conn.execute(update(shipments).where(shipments.c.order_id.in_(part))
                     .values(status="voided", voided_at=now))
    release_parcels(conn, [(row.order_id, row.warehouse_id) for o in outcome.voided for row in rows[o]],
                    now, reason="cancelled")
    for part in chunks(outcome.voided):
        conn.execute(update(orders).where(orders.c.id.in_(part))
                     .values(status=OrderStatus.CANCELLED.value, modified_at=now))
    record_history(conn, [(o, apply_transition(OrderStatus.SHIPPED, OrderStatus.CANCELLED, at=now, actor=actor,
                                               reason=f"{reason} before any platform had the tracking number; waybill voided"))
                          for o in outcome.voided])
    return outcome


def _shipment_states(conn: Connection, order_ids: list[int]) -> dict[int, list]:
    found: dict[int, list] = {}
    for part in chunks(order_ids):
        query = select(shipments.c.order_id, shipments.c.warehouse_id, shipments.c.tracking_pushed_at,
                       shipments.c.picked_up_at).where(shipments.c.order_id.in_(part))
        if conn.dialect.name == "postgresql":
            # A push being recorded right now waits for this decision, or this one for it.
            query = query.with_for_update()
        for row in conn.execute(query):
            found.setdefault(row.order_id, []).append(row)
    return found


def _has_locked(conn: Connection, order_id: int) -> bool:
    query = select(reservations.c.id).where(reservations.c.order_id == order_id,
                                            reservations.c.state == "locked").limit(1)
    return conn.execute(query).first() is not None


def awaiting_pickup(conn: Connection, limit: int, after_id: int = 0) -> list[dict[str, Any]]:
    """Labelled parcels the carrier has not reported collecting, one row per shipment."""
    query = (select(shipments.c.id, shipments.c.carrier, shipments.c.tracking_number)
             .where(shipments.c.status == "label_created", shipments.c.id > after_id)
             .order_by(shipments.c.id).limit(limit))
    return [dict(row._mapping) for row in conn.execute(query)]


def record_pickups(conn: Connection, collected: dict[str, datetime], now: datetime) -> list[dict[str, Any]]:
    """The carrier collected these tracking numbers: the parcels' stock is consumed.

    Returns the shipments picked up whose order a platform cancelled after the push
    (their goods left all the same: a person turns them into a return).
    """
    if not collected:
        return []
    picked: list = []
    for part in chunks(sorted(collected)):
        query = (select(shipments.c.id, shipments.c.order_id, shipments.c.warehouse_id, shipments.c.tracking_number,
                        shipments.c.cancel_requested_at)
                 .where(shipments.c.tracking_number.in_(part), shipments.c.status == "label_created"))
        picked.extend(conn.execute(query))
    for row in picked:
        conn.execute(update(shipments).where(shipments.c.id == row.id)
                     .values(status="picked_up", picked_up_at=collected[row.tracking_number]))
    consume_parcels(conn, [(row.order_id, row.warehouse_id) for row in picked], now)
    return [dict(row._mapping) for row in picked if row.cancel_requested_at is not None]


def waybills_to_cancel(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Voided parcels whose waybill the carrier has not cancelled yet."""
    query = (select(shipments.c.id, shipments.c.carrier, shipments.c.tracking_number, shipments.c.parcel_ref,
                    shipments.c.order_id)
             .where(shipments.c.status == "voided", shipments.c.carrier_cancelled_at.is_(None))
             .order_by(shipments.c.id).limit(limit))
    return [dict(row._mapping) for row in conn.execute(query)]


def record_carrier_cancel(conn: Connection, shipment_ids: list[int], now: datetime) -> None:
    for part in chunks(shipment_ids):
        conn.execute(update(shipments).where(shipments.c.id.in_(part)).values(carrier_cancelled_at=now))

