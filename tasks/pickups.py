"""Pickup task: ask each carrier which labelled parcels it has collected, and settle stock.

Each shipment is asked of the carrier that issued its waybill: the carrier's own API
(the seller's account), or Cainiao with the Taobao shop's access when Cainiao sold the
number. A carrier that cannot be reached now fails the batch for a retry; one the seller
has no account for any more is logged, and its parcels are asked again next run.

A collected parcel's units leave on-hand stock (its reservation is consumed, whether it
was held or locked by a tracking push). A parcel whose order a platform cancelled after
the push but that left all the same is parked for a person: it is a return now. Parcels
voided before any push get their waybill cancelled with the carrier, so no courier
comes for them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

from prefect import get_run_logger, task
from sqlalchemy import select

from oms.db.dialect import chunks
from oms.db.review import ReviewEntry, park
from oms.db.schema import orders, shipments
from oms.db.shipping import awaiting_pickup, record_carrier_cancel, record_pickups, waybills_to_cancel
from oms.domain.errors import Rejected
from oms.domain.shipping import CAINIAO
from tasks.pacing import platform_slot
from tasks.policy import RETRYING
from tasks.resources import carrier_client, engine, http_client
from tasks.tokens import call_with_token_retry

Route = tuple[str, str | None]  # (our carrier code, the Taobao shop when Cainiao issued it)


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
        routes = _routes(conn, [s["id"] for s in waiting + voided])
    summary = PickupSummary(asked=len(waiting), last_id=max((s["id"] for s in waiting), default=after_id))
    times: dict = {}
    cancelled, too_late = [], []
    with http_client() as http:
        for route, numbers in _by_route(waiting, routes, lambda s: s["tracking_number"]).items():
            found = _with_client(http, route, lambda client, numbers=numbers: client.pickups(sorted(set(numbers))))
            times.update(found or {})
        for route, group in _by_route(voided, routes, lambda s: s).items():
            outcome = _with_client(http, route, lambda client, group=group: _cancel_waybills(client, group))
            if outcome is not None:
                cancelled.extend(outcome[0])
                too_late.extend(outcome[1])
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


def _routes(conn, shipment_ids: list[int]) -> dict[int, Route]:
    """Which client issued each shipment's waybill: the carrier's own, or Cainiao's
    through the order's Taobao shop."""
    found: dict[int, Route] = {}
    for part in chunks(shipment_ids):
        query = (select(shipments.c.id, shipments.c.carrier, shipments.c.waybill_source, orders.c.shop_code)
                 .select_from(shipments.join(orders, orders.c.id == shipments.c.order_id))
                 .where(shipments.c.id.in_(part)))
        for row in conn.execute(query):
            found[row.id] = (row.carrier, row.shop_code if row.waybill_source == CAINIAO else None)
    return found


def _by_route(rows: list[dict], routes: dict[int, Route], pick) -> dict[Route, list]:
    grouped: dict[Route, list] = defaultdict(list)
    for row in rows:
        grouped[routes.get(row["id"], (row["carrier"], None))].append(pick(row))
    return dict(sorted(grouped.items(), key=lambda item: (item[0][0], item[0][1] or "")))


def _with_client(http, route: Route, use):
    """Run `use` with the route's client; None when the seller has no account for it."""
    carrier, cainiao_shop = route
    if cainiao_shop is not None:
        def through_cainiao(access):
            with platform_slot(access.platform):
                return use(carrier_client(http, carrier, shop=access, via=CAINIAO))

        return call_with_token_retry(cainiao_shop, through_cainiao)
    try:
        client = carrier_client(http, carrier)
    except LookupError as missing:
        get_run_logger().warning("parcels of %s not asked: %s", carrier, missing)
        return None
    with client:
        return use(client)


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
