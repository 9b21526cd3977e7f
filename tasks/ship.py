"""Shipping task: e-waybills from the carrier for a batch of allocated parcels.

A parcel is one order's goods from one warehouse; orders of the same buyer to the same
address, from the same shop and warehouse, placed within the merge window, go out as one
parcel with one waybill (unless `config/routing.yaml` switches merging off). A parcel the
carrier refuses (a bad address, say) is parked for a person with the carrier's reason;
the rest of the batch ships. Receivers a platform masks but opens for labels (Taobao,
Amazon) are opened just before the carrier call and never stored. Outages and rate
limits fail the task so its retry policy tries the batch again; the carrier answers an
order reference it has already seen with the number it issued then, so a retried batch
never gets two waybills.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from prefect import get_run_logger, task

from connectors.base import Parcel, Waybill
from oms.db.review import ReviewEntry, park
from oms.db.shipping import ShipmentDraft, parcels_ready_to_ship, record_shipments
from oms.domain.errors import ConnectorError, Rejected
from oms.domain.order import Receiver
from oms.routing_rules import load_routing_rules
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
    merged: int = 0  # orders that went out in a parcel shared with another order


@task(name="create-shipments", **RETRYING)
def create_shipments(batch_size: int, after_id: int = 0) -> ShippingSummary:
    with engine().connect() as conn:
        ready = parcels_ready_to_ship(conn, batch_size, after_id)
    if not ready:
        return ShippingSummary(last_id=after_id)
    rules, _ = load_routing_rules()
    with http_client() as http:
        revealed = _label_receivers(ready, http)
        labelled, refused = [], []
        for group in merged_parcels(ready, rules.merge_window_hours if rules.merge_enabled else None):
            receiver = revealed.get(group[0]["id"]) or _stored_receiver(group[0])
            if _printable(receiver):
                labelled.append((group, receiver))
            else:
                refused.extend(_unprintable(order) for order in group)
        results = carrier_client(http).create_waybills([_parcel(g, r) for g, r in labelled]) if labelled else []
    drafts = []
    for (group, _), result in zip(labelled, results):
        if isinstance(result, Waybill):
            drafts.extend(ShipmentDraft(order["id"], order["warehouse_id"], result.carrier, result.tracking_number,
                                        parcel_ref=_parcel_ref(group), writes_back=order["writes_back"])
                          for order in group)
        else:
            refused.extend(_refusal(order, result) for order in group)
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        shipped = record_shipments(conn, drafts, now)
        park(conn, refused, now)
    merged = sum(len(group) for group, _ in labelled if len(group) > 1)
    return ShippingSummary(len(ready), shipped, len(refused), max(o["id"] for o in ready), merged)


def merged_parcels(ready: list[dict], window_hours: int | None) -> list[list[dict]]:
    """The ready parcels grouped into physical parcels: one group per waybill.

    Parcels merge when they share the merge key (buyer and normalised address), the shop
    and the warehouse, and were ordered within `window_hours` of the group's first order;
    `None` keeps every parcel alone.
    """
    groups: list[list[dict]] = []
    open_groups: dict[tuple, list[dict]] = {}
    for parcel in sorted(ready, key=lambda p: (p["created_at"], p["id"], p["warehouse_id"])):
        key = (parcel["merge_key"], parcel["shop_code"], parcel["warehouse_id"])
        group = open_groups.get(key) if window_hours is not None and parcel["merge_key"] else None
        if group is not None and parcel["created_at"] - group[0]["created_at"] <= timedelta(hours=window_hours):
            group.append(parcel)
            continue
        group = [parcel]
        groups.append(group)
        open_groups[key] = group
    return groups


def _parcel_ref(group: list[dict]) -> str:
    """The reference the carrier knows the parcel by; stable across retries of the batch."""
    first = min(group, key=lambda p: p["id"])
    ref = f"{first['platform']}-{first['shop_code']}-{first['platform_order_id']}"
    if not first["writes_back"]:
        ref += f"-{first['warehouse']}"  # a split order's other parcels need refs of their own
    return ref + (f"+{len(group) - 1}" if len(group) > 1 else "")


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


def _parcel(group: list[dict], receiver: Receiver) -> Parcel:
    lines = [line for order in group for line in order["lines"]]
    return Parcel(
        order_ref=_parcel_ref(group),
        receiver=receiver,
        weight_grams=sum(line["grams"] * line["quantity"] for line in lines),
        items=[(line["title"] or line["sku"], line["quantity"]) for line in lines],
    )


def _refusal(order: dict, error: Rejected) -> ReviewEntry:
    return ReviewEntry("ship", order["platform"], order["shop_code"], order["platform_order_id"],
                       [f"carrier refused the parcel: {error}"],
                       {"order_id": order["id"], "carrier_code": error.code})
