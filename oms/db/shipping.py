"""Shipments from waybill to pickup, and what a late cancellation does to them.

A shipment is one order's parcel from one warehouse, created once per (order,
warehouse), which is what makes a retried shipping task harmless. Orders of one buyer
and address may share a parcel: their shipments carry the same tracking number. The
write-back of their numbers is `oms.db.tracking`; warehouse scans are `oms.db.scans`.

Stock follows the parcel: reserved (held) while the label is printed; locked once a
platform has the tracking number; consumed when the carrier reports it collected the
parcel. A late cancellation is decided by the handover (`cancel_after_waybill`): a parcel
still in the warehouse is stopped and its stock released, one handed over is intercepted
and keeps its stock locked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, func, select, update

from oms.db.dialect import chunks, upsert_insert
from oms.db.history import record_history
from oms.db.review import ReviewEntry, park
from oms.db.schema import (interceptions, order_lines, orders, reservations, shipments, skus, warehouses)
from oms.db.stock import HOLDING, consume_parcels, release_parcels, release_reservations
from oms.domain.drift import Parcel, ParcelFate, parcel_fate
from oms.domain.order import OrderStatus, apply_transition


@dataclass
class ShipmentDraft:
    order_id: int
    warehouse_id: int
    carrier: str
    tracking_number: str
    parcel_ref: str | None = None
    writes_back: bool = True
    carrier_reason: str | None = None  # why the rate cards chose this carrier
    waybill_source: str | None = None  # "cainiao" when Cainiao sold the number


@dataclass
class LateCancellation:
    """What a platform's cancellation of orders that may have waybills came to."""

    # Cancelled here: every parcel was still in the warehouse (or there was none), so the
    # waybills are voided (cancelled with the carrier later) and the stock released.
    voided: list[int]
    # A parcel is handed over, collected, or may have left unscanned: an interception is
    # open for it and its stock stays locked; the order keeps its status.
    intercepted: list[int]
    # Still in the warehouse, but in one box with a live order's goods (a merged parcel):
    # voiding the waybill would stop the other order too, so a person takes the items out.
    unpack: list[int] = field(default_factory=list)
    # Shipments whose interception this call opened (a repeated call opens none).
    raised: list[int] = field(default_factory=list)


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
    """Store the waybills; an order whose every parcel has one is packing. Its stock stays
    reserved until the carrier collects the parcel, which ships it (`record_pickups`)."""
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
         "writes_back": d.writes_back, "carrier_reason": d.carrier_reason,
         "waybill_source": d.waybill_source, "created_at": now}
        for d in drafts
    ]
    stored = sorted({row.order_id for row in conn.execute(statement, rows)})
    complete = _orders_with_every_parcel_labelled(conn, stored)
    for part in chunks(complete):
        conn.execute(update(orders).where(orders.c.id.in_(part), orders.c.status == OrderStatus.ALLOCATED.value)
                     .values(status=OrderStatus.PACKING.value, modified_at=now))
    carriers = {d.order_id: d.carrier for d in drafts}
    record_history(conn, [
        (order_id, apply_transition(OrderStatus.ALLOCATED, OrderStatus.PACKING, at=now,
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


def cancel_after_waybill(conn: Connection, order_ids: list[int], now: datetime, actor: str,
                         reason: str) -> LateCancellation:
    """A platform cancelled these orders, some of which have waybills: stop what is still
    in the warehouse, raise an interception for what may be on its way.

    The handover decides, not the tracking push (`oms.domain.drift.parcel_fate`). A
    parcel still in the warehouse is stopped even if a platform has its number: the
    shipment is voided (`waybills_to_cancel` cancels its waybill with the carrier), its
    stock released, locked or not. An order whose every parcel is stopped (or that had
    none) is cancelled. A parcel handed over or collected, or pushed without a single
    warehouse scan (it may have left unscanned), gets an open `interceptions` row and a
    review entry; its stock stays locked until the carrier reports the pickup (then it is
    consumed and the parcel is a return) and the order keeps its status. Ingest and the
    drift check both come here, and a repeated call changes nothing.
    """
    outcome = LateCancellation([], [])
    rows = _shipment_states(conn, order_ids)
    shared = _shared_with_live_orders(conn, [row for own in rows.values() for row in own], set(order_ids))
    stoppable, on_its_way, unpack = [], [], []
    for order_id in order_ids:
        live = [row for row in rows.get(order_id, []) if row.voided_at is None]
        leaving = [row for row in live if parcel_fate(_parcel_facts(row)) == ParcelFate.INTERCEPT]
        boxed = [row for row in live if row not in leaving and row.tracking_number in shared]
        if leaving:
            outcome.intercepted.append(order_id)
        elif boxed:
            outcome.unpack.append(order_id)
        else:
            outcome.voided.append(order_id)
        on_its_way += leaving
        unpack += boxed
        stoppable += [row for row in live if row not in leaving and row not in boxed]
    _stop_parcels(conn, stoppable, now)
    _park_unpacking(conn, unpack, now, reason)
    # Units of the cancelled orders that never got a waybill (a split order's other half).
    release_reservations(conn, outcome.voided, now)
    _cancel_orders(conn, outcome.voided, now, actor, reason)
    outcome.raised = _raise_interceptions(conn, on_its_way, now, reason)
    _park_interceptions(conn, on_its_way, now, reason)
    return outcome


def _shipment_states(conn: Connection, order_ids: list[int]) -> dict[int, list]:
    found: dict[int, list] = {}
    for part in chunks(order_ids):
        query = select(shipments.c.id, shipments.c.order_id, shipments.c.warehouse_id, shipments.c.carrier,
                       shipments.c.tracking_number, shipments.c.tracking_pushed_at, shipments.c.picked_up_at,
                       shipments.c.warehouse_step, shipments.c.handed_over_at, shipments.c.voided_at
                       ).where(shipments.c.order_id.in_(part)).order_by(shipments.c.id)
        if conn.dialect.name == "postgresql":
            # A push or a scan being recorded right now waits for this decision, or it for them.
            query = query.with_for_update()
        for row in conn.execute(query):
            found.setdefault(row.order_id, []).append(row)
    return found


def _shared_with_live_orders(conn: Connection, rows: list, cancelled: set[int]) -> set[str]:
    """Tracking numbers of these parcels that a live shipment of another order also has."""
    numbers = sorted({row.tracking_number for row in rows if row.voided_at is None})
    shared: set[str] = set()
    for part in chunks(numbers):
        shared.update(conn.execute(select(shipments.c.tracking_number).where(
            shipments.c.tracking_number.in_(part), shipments.c.voided_at.is_(None),
            shipments.c.order_id.not_in(sorted(cancelled)))).scalars())
    return shared


def _park_unpacking(conn: Connection, parcels: list, now: datetime, reason: str) -> None:
    # Marked as cancelled after all, so a scan of the shared box stops it at the bench,
    # and a pickup of it all the same is reported as a return.
    for part in chunks([row.id for row in parcels]):
        conn.execute(update(shipments).where(shipments.c.id.in_(part), shipments.c.cancel_requested_at.is_(None))
                     .values(cancel_requested_at=now))
    _park(conn, parcels, now, lambda row: (
        f"{reason} while parcel {row.tracking_number} waits in the warehouse together with another "
        "order's goods: take this order's items out and back to the shelf, then resolve this entry"))


def _parcel_facts(row) -> Parcel:
    return Parcel(tracking_pushed=row.tracking_pushed_at is not None,
                  scanned=row.warehouse_step is not None or row.handed_over_at is not None,
                  handed_over=row.handed_over_at is not None or row.warehouse_step == "handed_over",
                  picked_up=row.picked_up_at is not None, pushed_at=row.tracking_pushed_at,
                  voided=row.voided_at is not None)


def _stop_parcels(conn: Connection, parcels: list, now: datetime) -> None:
    """Void the shipments and give their units back, including units a push had locked:
    the parcel is on the shelf, so nothing can leave with them any more."""
    for part in chunks([row.id for row in parcels]):
        conn.execute(update(shipments).where(shipments.c.id.in_(part), shipments.c.voided_at.is_(None))
                     .values(status="voided", voided_at=now))
    pairs = sorted({(row.order_id, row.warehouse_id) for row in parcels})
    for order_id, warehouse_id in pairs:
        conn.execute(update(reservations).where(
            reservations.c.order_id == order_id, reservations.c.warehouse_id == warehouse_id,
            reservations.c.state == "locked").values(state="held", locked_at=None))
    release_parcels(conn, pairs, now, reason="cancelled")


def _cancel_orders(conn: Connection, order_ids: list[int], now: datetime, actor: str, reason: str) -> None:
    current: dict[int, str] = {}
    for part in chunks(order_ids):
        current.update(conn.execute(select(orders.c.id, orders.c.status).where(
            orders.c.id.in_(part), orders.c.status != OrderStatus.CANCELLED.value)).all())
    for part in chunks(sorted(current)):
        conn.execute(update(orders).where(orders.c.id.in_(part), orders.c.status != OrderStatus.CANCELLED.value)
                     .values(status=OrderStatus.CANCELLED.value, modified_at=now))
    record_history(conn, [(order_id, apply_transition(OrderStatus(status), OrderStatus.CANCELLED, at=now,
                                                      actor=actor, reason=f"{reason}; parcel stopped in the warehouse"))
                          for order_id, status in sorted(current.items())])


def _raise_interceptions(conn: Connection, parcels: list, now: datetime, reason: str) -> list[int]:
    """Open one interception per parcel on its way; its stock stays (or becomes) locked so
    no release can hand it to another order. Returns the shipments newly raised."""
    if not parcels:
        return []
    for part in chunks([row.id for row in parcels]):
        conn.execute(update(shipments).where(shipments.c.id.in_(part), shipments.c.cancel_requested_at.is_(None))
                     .values(cancel_requested_at=now))
    for order_id, warehouse_id in sorted({(row.order_id, row.warehouse_id) for row in parcels}):
        conn.execute(update(reservations).where(
            reservations.c.order_id == order_id, reservations.c.warehouse_id == warehouse_id,
            reservations.c.state == "held").values(state="locked", locked_at=now))
    statement = (upsert_insert(conn, interceptions)
                 .on_conflict_do_nothing(index_elements=["shipment_id"])
                 .returning(interceptions.c.shipment_id))
    rows = [{"shipment_id": row.id, "order_id": row.order_id, "carrier": row.carrier,
             "tracking_number": row.tracking_number, "reason": f"{reason} {_where_it_is(row)}",
             "state": "open", "created_at": now, "updated_at": now} for row in parcels]
    return sorted(conn.execute(statement, rows).scalars())


def _where_it_is(row) -> str:
    if row.picked_up_at is not None:
        return "after the carrier collected the parcel"
    if row.handed_over_at is not None or row.warehouse_step == "handed_over":
        return "after the parcel was handed over to the carrier"
    return "after its tracking number was pushed, with no warehouse scan: the parcel may have left"


def _park_interceptions(conn: Connection, parcels: list, now: datetime, reason: str) -> None:
    _park(conn, parcels, now, lambda row: (
        f"{reason} {_where_it_is(row)}: ask {row.carrier} to intercept parcel {row.tracking_number}; its "
        "stock stays locked, and if it is delivered all the same handle it as a return"))


def _park(conn: Connection, parcels: list, now: datetime, reason_of) -> None:
    if not parcels:
        return
    refs: dict[int, Any] = {}
    for part in chunks(sorted({row.order_id for row in parcels})):
        refs.update((row.id, row) for row in conn.execute(
            select(orders.c.id, orders.c.platform, orders.c.shop_code, orders.c.platform_order_id)
            .where(orders.c.id.in_(part))))
    park(conn, [ReviewEntry("cancel", refs[row.order_id].platform, refs[row.order_id].shop_code,
                            refs[row.order_id].platform_order_id, [reason_of(row)],
                            {"order_id": row.order_id, "shipment_id": row.id, "tracking_number": row.tracking_number})
                for row in parcels], now)


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
    _ship_collected_orders(conn, sorted({row.order_id for row in picked}), now)
    return [dict(row._mapping) for row in picked if row.cancel_requested_at is not None]


def _ship_collected_orders(conn: Connection, order_ids: list[int], now: datetime) -> None:
    """Packing orders whose every live parcel the carrier has collected are shipped."""
    in_warehouse = exists().where(and_(shipments.c.order_id == orders.c.id, shipments.c.status == "label_created"))
    shipped: list[int] = []
    for part in chunks(order_ids):
        shipped.extend(conn.execute(
            update(orders).where(orders.c.id.in_(part), orders.c.status == OrderStatus.PACKING.value, ~in_warehouse)
            .values(status=OrderStatus.SHIPPED.value, modified_at=now).returning(orders.c.id)).scalars())
    record_history(conn, [
        (order_id, apply_transition(OrderStatus.PACKING, OrderStatus.SHIPPED, at=now, actor="carrier",
                                    reason="the carrier's tracking shows the parcel collected"))
        for order_id in sorted(shipped)
    ])


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

