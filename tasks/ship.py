"""Shipping task: e-waybills from the carrier for a batch of allocated orders.

A parcel the carrier refuses (a bad address, say) is parked for a person with the
carrier's reason; the rest of the batch ships. Outages and rate limits fail the task so
its retry policy tries the batch again; the carrier answers an order it has already
seen with the number it issued then, so a retried batch never gets two waybills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from prefect import task

from connectors.base import Parcel, Waybill
from oms.db.review import ReviewEntry, park
from oms.db.shipping import ShipmentDraft, orders_ready_to_ship, record_shipments
from oms.domain.errors import Rejected
from oms.domain.order import Receiver
from tasks.policy import RETRYING
from tasks.resources import carrier_client, engine, http_client


@dataclass
class ShippingSummary:
    considered: int = 0
    shipped: int = 0
    refused: int = 0
    last_id: int = 0


@task(name="create-shipments", **RETRYING)
def create_shipments(batch_size: int, after_id: int = 0) -> ShippingSummary:
    with engine().connect() as conn:
        ready = orders_ready_to_ship(conn, batch_size, after_id)
    if not ready:
        return ShippingSummary(last_id=after_id)
    with http_client() as http:
        results = carrier_client(http).create_waybills([_parcel(order) for order in ready])
    drafts, refused = [], []
    for order, result in zip(ready, results):
        if isinstance(result, Waybill):
            drafts.append(ShipmentDraft(order["id"], order["warehouse_id"], result.carrier, result.tracking_number))
        else:
            refused.append(_refusal(order, result))
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        shipped = record_shipments(conn, drafts, now)
        park(conn, refused, now)
    return ShippingSummary(len(ready), shipped, len(refused), max(o["id"] for o in ready))


def _parcel(order: dict) -> Parcel:
    receiver = Receiver(
        name=order["receiver_name"], phone=order["receiver_phone"],
        province=order["receiver_province"], city=order["receiver_city"],
        district=order["receiver_district"], address=order["receiver_address"],
        postal_code=order["receiver_postal_code"], country_code=order["receiver_country"],
        masked=order["receiver_masked"], encrypted=dict(order["receiver_encrypted"] or {}),
    )
    return Parcel(
        order_ref=f"{order['platform']}-{order['shop_code']}-{order['platform_order_id']}",
        receiver=receiver,
        weight_grams=sum(line["grams"] * line["quantity"] for line in order["lines"]),
        items=[(line["title"] or line["sku"], line["quantity"]) for line in order["lines"]],
    )


def _refusal(order: dict, error: Rejected) -> ReviewEntry:
    return ReviewEntry("ship", order["platform"], order["shop_code"], order["platform_order_id"],
                       [f"carrier refused the parcel: {error}"],
                       {"order_id": order["id"], "carrier_code": error.code})
