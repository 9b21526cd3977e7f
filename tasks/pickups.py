"""Pickup task: ask the carrier which labelled parcels it has collected, and settle stock.

A collected parcel's units leave on-hand stock (its reservation is consumed, whether it
was held or locked by a tracking push). A parcel whose order a platform cancelled after
the push but that left all the same is parked for a person: it is a return now. Parcels
voided before any push get their waybill cancelled with the carrier, so no courier
comes for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from prefect import task
from sqlalchemy import select

from oms.db.review import ReviewEntry, park
from oms.db.schema import orders
from oms.db.shipping import awaiting_pickup, record_carrier_cancel, record_pickups, waybills_to_cancel
from oms.domain.errors import Rejected
from tasks.policy import RETRYING
from tasks.resources import carrier_client, engine, http_client


@dataclass
class PickupSummary:
    asked: int = 0
    collected: int = 0
    left_after_cancel: int = 0
    waybills_cancelled: int = 0
    last_id: int = 0


@task(name="confirm-pickups", **RETRYING)
def confirm_pickups(batch_size: int, after_id: int = 0) -> PickupSummary:
    with engine().connect() as conn:
        waiting = awaiting_pickup(conn, batch_size, after_id)
        voided = waybills_to_cancel(conn) if after_id == 0 else []
    summary = PickupSummary(asked=len(waiting), last_id=max((s["id"] for s in waiting), default=after_id))
    with http_client() as http:
        carrier = carrier_client(http)
        times = carrier.pickups(sorted({s["tracking_number"] for s in waiting})) if waiting else {}
        cancelled, too_late = _cancel_waybills(carrier, voided)
    collected = {number: at for number, at in times.items() if at is not None}
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        gone_anyway = record_pickups(conn, collected, now)
        record_carrier_cancel(conn, cancelled, now)
        park(conn, _returns(conn, gone_anyway) + _late_voids(conn, too_late), now)
    summary.collected = sum(1 for s in waiting if s["tracking_number"] in collected)
    summary.left_after_cancel = len(gone_anyway)
    summary.waybills_cancelled = len(cancelled)
    return summary


def _cancel_waybills(carrier, voided: list[dict]) -> tuple[list[int], list[dict]]:
    """Cancel voided waybills; those the carrier refuses (already collected) come back."""
    cancelled, too_late = [], []
    for shipment in voided:
        try:
            carrier.cancel_waybill(shipment["parcel_ref"] or "")
        except Rejected:
            too_late.append(shipment)
            continue
        cancelled.append(shipment["id"])
    return cancelled, too_late


def _returns(conn, shipments: list[dict]) -> list[ReviewEntry]:
    refs = _order_refs(conn, [s["order_id"] for s in shipments])
    return [ReviewEntry("pickup", *refs[s["order_id"]],
                        [f"the carrier collected parcel {s['tracking_number']} although the platform cancelled "
                         "the order after its tracking number was pushed: treat it as a return"],
                        {"order_id": s["order_id"], "tracking_number": s["tracking_number"]})
            for s in shipments]


def _late_voids(conn, shipments: list[dict]) -> list[ReviewEntry]:
    refs = _order_refs(conn, [s["order_id"] for s in shipments])
    return [ReviewEntry("pickup", *refs[s["order_id"]],
                        [f"waybill {s['tracking_number']} of a cancelled order could not be cancelled with the "
                         "carrier: stop the parcel at the warehouse"],
                        {"order_id": s["order_id"], "tracking_number": s["tracking_number"]})
            for s in shipments]


def _order_refs(conn, order_ids: list[int]) -> dict[int, tuple[str, str, str]]:
    if not order_ids:
        return {}
    query = select(orders.c.id, orders.c.platform, orders.c.shop_code, orders.c.platform_order_id
                   ).where(orders.c.id.in_(order_ids))
    return {row.id: (row.platform, row.shop_code, row.platform_order_id) for row in conn.execute(query)}
