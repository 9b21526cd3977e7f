"""Shipping task: e-waybills from the carrier for a batch of allocated orders.

A parcel the carrier refuses (a bad address, say) is parked for a person with the
carrier's reason; the rest of the batch ships. Receivers a platform masks but opens for
labels (Taobao, Amazon) are opened just before the carrier call and never stored. Outages and rate limits fail the task so
its retry policy tries the batch again; the carrier answers an order it has already
seen with the number it issued then, so a retried batch never gets two waybills.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone

from prefect import get_run_logger, task

from connectors.base import Parcel, Waybill
from oms.db.review import ReviewEntry, park
from oms.db.shipping import ShipmentDraft, orders_ready_to_ship, record_shipments
from oms.domain.errors import ConnectorError, Rejected
from oms.domain.order import Receiver
from tasks.pacing import platform_slot
from tasks.policy import RETRYING
from tasks.resources import CONNECTORS, carrier_client, connector_for, engine, http_client
from tasks.tokens import call_with_token_retry


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
        revealed = _label_receivers(ready, http)
        labelled, refused = [], []
        for order in ready:
            receiver = revealed.get(order["id"]) or _stored_receiver(order)
            if _printable(receiver):
                labelled.append((order, receiver))
            else:
                refused.append(_unprintable(order))
        results = carrier_client(http).create_waybills([_parcel(o, r) for o, r in labelled]) if labelled else []
    drafts = []
    for (order, _), result in zip(labelled, results):
        if isinstance(result, Waybill):
            drafts.append(ShipmentDraft(order["id"], order["warehouse_id"], result.carrier, result.tracking_number))
        else:
            refused.append(_refusal(order, result))
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        shipped = record_shipments(conn, drafts, now)
        park(conn, refused, now)
    return ShippingSummary(len(ready), shipped, len(refused), max(o["id"] for o in ready))


def _stored_receiver(order: dict) -> Receiver:
    return Receiver(
        name=order["receiver_name"], phone=order["receiver_phone"],
        province=order["receiver_province"], city=order["receiver_city"],
        district=order["receiver_district"], address=order["receiver_address"],
        postal_code=order["receiver_postal_code"], country_code=order["receiver_country"],
        masked=order["receiver_masked"], encrypted=dict(order["receiver_encrypted"] or {}),
    )


def _label_receivers(ready: list[dict], http) -> dict[int, Receiver]:
    """Plaintext receivers of masked orders whose platform opens them for labels.

    Asked shop by shop, just before the carrier call, and kept only in memory. A shop whose
    platform cannot be reached now is skipped: its parcels go to the carrier masked and
    are refused with the carrier's reason, which an operator sees in the review queue.
    """
    by_shop: dict[str, dict[str, dict]] = defaultdict(dict)
    for order in ready:
        if order["receiver_masked"] and hasattr(CONNECTORS.get(order["platform"]), "label_receivers"):
            by_shop[order["shop_code"]][order["platform_order_id"]] = order
    revealed: dict[int, Receiver] = {}
    for shop_code, orders in by_shop.items():
        masked = {ref: _stored_receiver(order) for ref, order in orders.items()}

        def open_labels(access, masked=masked):
            with platform_slot(access.platform):
                return connector_for(access, http).label_receivers(masked)

        try:
            opened = call_with_token_retry(shop_code, open_labels)
        except ConnectorError as error:
            get_run_logger().warning("shop %s: receivers not opened for labels: %s", shop_code, error)
            continue
        revealed.update({orders[ref]["id"]: receiver for ref, receiver in opened.items() if ref in orders})
    return revealed


def _printable(receiver: Receiver) -> bool:
    """Whether a carrier can be given this receiver: plaintext, or ciphertexts it opens."""
    if not receiver.masked:
        return True
    return any(receiver.encrypted.get(field) for field in ("name", "phone", "address"))


def _unprintable(order: dict) -> ReviewEntry:
    reason = (f"{order['platform']} masks this receiver and did not open it for a label; "
              "print this parcel with the platform's own e-waybill service")
    return ReviewEntry("ship", order["platform"], order["shop_code"], order["platform_order_id"],
                       [reason], {"order_id": order["id"]})


def _parcel(order: dict, receiver: Receiver) -> Parcel:
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
