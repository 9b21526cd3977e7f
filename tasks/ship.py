"""Shipping task: a carrier chosen from the rate cards, and its e-waybill, for each parcel.

A parcel is one order's goods from one warehouse; orders of the same buyer to the same
address, from the same shop and warehouse, placed within the merge window, go out as one
parcel with one waybill (unless `config/routing.yaml` switches merging off). Each
physical parcel gets its carrier from `config/carriers.yaml` (weight, destination,
service level, price, the carriers its platform accepts, the carriers the seller has
accounts with); the choice's sentence is stored with the shipment, and a parcel no
carrier can take is parked with the sentence that says why. One waybill call per
carrier per batch. Before that call the `shipments` suite checks every planned parcel
(a known carrier, a weight, goods, a receiver or its encrypted reference); a parcel that
fails it is parked with every reason and not sent. A parcel the carrier refuses (a bad
address, say) is parked for a person with the carrier's reason; the rest of the batch ships.

Receivers a platform masks but opens for labels (Taobao, Amazon) are opened just before
the carrier call and never stored. A Taobao receiver Taobao did not open goes through
Cainiao, which opens the oaid itself, with a carrier Cainiao sells. Outages and rate
limits fail the task so its retry policy tries the batch again; carriers answer an order
reference they have already seen with the number they issued then, so a retried batch
never gets two waybills.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from prefect import get_run_logger, task
from sqlalchemy import select

from connectors.base import Parcel, Waybill
from oms.db.review import ReviewEntry, park
from oms.db.schema import warehouses
from oms.db.shipping import ShipmentDraft, parcels_ready_to_ship, record_shipments
from oms.domain.errors import ConnectorError, Rejected
from oms.domain.normalize import normalize_province
from oms.domain.order import Receiver
from oms.domain.shipping import CAINIAO, CarrierChoice, CarrierRules, ParcelFacts, choose_carrier
from oms.routing_rules import load_routing_rules
from tasks.pacing import platform_slot
from tasks.policy import RETRYING
from tasks.quality import BatchScope, gate_batch
from tasks.resources import (
    CONNECTORS,
    carrier_client,
    carrier_rules,
    carriers_with_accounts,
    connector_for,
    engine,
    http_client,
)
from tasks.tokens import call_with_token_retry


@dataclass
class ShippingSummary:
    considered: int = 0
    shipped: int = 0
    refused: int = 0
    last_id: int = 0
    merged: int = 0  # orders that went out in a parcel shared with another order
    by_carrier: dict[str, int] = field(default_factory=dict)  # parcels given to each carrier's API


@dataclass
class PlannedParcel:
    group: list[dict]  # the orders in this physical parcel
    receiver: Receiver
    choice: CarrierChoice


@task(name="create-shipments", **RETRYING)
def create_shipments(batch_size: int, after_id: int = 0) -> ShippingSummary:
    with engine().connect() as conn:
        ready = parcels_ready_to_ship(conn, batch_size, after_id)
        provinces = _warehouse_provinces(conn)
    if not ready:
        return ShippingSummary(last_id=after_id)
    routing, _ = load_routing_rules()
    rules = carrier_rules()
    accounts = carriers_with_accounts()
    planned, refused = [], []
    with http_client() as http:
        revealed = _label_receivers(ready, http)
        for group in merged_parcels(ready, routing.merge_window_hours if routing.merge_enabled else None):
            receiver = revealed.get(group[0]["id"]) or _stored_receiver(group[0])
            cainiao_only = _only_cainiao_opens(group[0], receiver, rules)
            if not cainiao_only and not _printable(receiver):
                refused.extend(_unprintable(order) for order in group)
                continue
            choice = choose_carrier(_facts(group, receiver, provinces, rules, cainiao_only), rules, accounts)
            if choice.ok:
                planned.append(PlannedParcel(group, receiver, choice))
            else:
                refused.extend(_no_carrier(order, choice.reason) for order in group)
        planned = _passing_suite(planned, refused)
        issued = _issue_waybills(planned, http)
    drafts = []
    for plan, result in zip(planned, issued):
        if isinstance(result, Waybill):
            drafts.extend(ShipmentDraft(order["id"], order["warehouse_id"], result.carrier, result.tracking_number,
                                        parcel_ref=_parcel_ref(plan.group), writes_back=order["writes_back"],
                                        carrier_reason=plan.choice.reason, waybill_source=plan.choice.via)
                          for order in plan.group)
        else:
            refused.extend(_refusal(order, result) for order in plan.group)
    now = datetime.now(timezone.utc)
    with engine().begin() as conn:
        shipped = record_shipments(conn, drafts, now)
        park(conn, refused, now)
    merged = sum(len(plan.group) for plan in planned if len(plan.group) > 1)
    by_carrier = dict(sorted(Counter(_route_name(plan.choice) for plan in planned).items()))
    if by_carrier:
        get_run_logger().info("parcels by carrier: %s", by_carrier)
    return ShippingSummary(len(ready), shipped, len(refused), max(o["id"] for o in ready), merged, by_carrier)


def _passing_suite(planned: list[PlannedParcel], refused: list[ReviewEntry]) -> list[PlannedParcel]:
    """The planned parcels the `shipments` suite passes; the others join `refused`.

    A batch failing as a whole parks what it refused so far before the task fails, so
    the reasons are in front of a person while nothing at all is sent."""
    def park_all(outcome) -> None:
        with engine().begin() as conn:
            park(conn, refused + _suite_refusals(planned, outcome), datetime.now(timezone.utc))

    outcome = gate_batch(BatchScope("shipments"), [_waybill_record(plan) for plan in planned],
                         before_failing=park_all)
    refused.extend(_suite_refusals(planned, outcome))
    return [plan for row, plan in enumerate(planned) if row not in outcome.reasons_by_row]


def _waybill_record(plan: PlannedParcel) -> dict:
    lines = [line for order in plan.group for line in order["lines"]]
    return {"order_ref": _parcel_ref(plan.group), "carrier": str(plan.choice.carrier),
            "weight_grams": sum(line["grams"] * line["quantity"] for line in lines),
            "item_count": sum(line["quantity"] for line in lines),
            "receiver_state": _receiver_state(plan.receiver)}


def _receiver_state(receiver: Receiver) -> str:
    """What a label can be printed from: plaintext, ciphertexts the carrier opens, or nothing."""
    if receiver.masked:
        return "encrypted" if any(receiver.encrypted.values()) else "missing"
    return "plain" if receiver.address and (receiver.name or receiver.phone) else "missing"


def _suite_refusals(planned: list[PlannedParcel], outcome) -> list[ReviewEntry]:
    return [ReviewEntry("ship", order["platform"], order["shop_code"], order["platform_order_id"],
                        reasons, {"order_id": order["id"], "warehouse": order["warehouse"]})
            for row, reasons in sorted(outcome.reasons_by_row.items()) for order in planned[row].group]


def _issue_waybills(planned: list[PlannedParcel], http) -> list[Waybill | Rejected]:
    """One create_waybills call per carrier (and, for Cainiao, per Taobao shop); the
    outcomes come back in the order of `planned`."""
    routes: dict[tuple[str | None, str, str | None], list[int]] = defaultdict(list)
    for position, plan in enumerate(planned):
        shop = plan.group[0]["shop_code"] if plan.choice.via == CAINIAO else None
        routes[(plan.choice.via, plan.choice.carrier, shop)].append(position)
    outcomes: list[Waybill | Rejected | None] = [None] * len(planned)
    for (via, carrier, shop), positions in sorted(routes.items(), key=lambda item: tuple(map(str, item[0]))):
        parcels = [_parcel(planned[p].group, planned[p].receiver) for p in positions]
        if via == CAINIAO:
            results = _through_cainiao(shop, carrier, parcels, [planned[p].group for p in positions], http)
        else:
            with carrier_client(http, carrier) as client:
                results = client.create_waybills(parcels)
        for position, result in zip(positions, results):
            outcomes[position] = result
    return outcomes


def _through_cainiao(shop_code: str, carrier: str, parcels: list[Parcel], groups: list[list[dict]],
                     http) -> list[Waybill | Rejected]:
    # The receiver is the group's first order's, so its trade is the one whose oaid opens it.
    trade_ids = {parcel.order_ref: group[0]["platform_order_id"] for parcel, group in zip(parcels, groups)}

    def issue(access):
        with platform_slot(access.platform):
            client = carrier_client(http, carrier, shop=access, via=CAINIAO)
            return client.create_waybills(parcels, trade_ids)

    return call_with_token_retry(shop_code, issue)


def _route_name(choice: CarrierChoice) -> str:
    return f"{choice.carrier} via Cainiao" if choice.via == CAINIAO else str(choice.carrier)


def _warehouse_provinces(conn) -> dict[str, str | None]:
    rows = conn.execute(select(warehouses.c.code, warehouses.c.province))
    return {code: normalize_province(province).name for code, province in rows}


def _facts(group: list[dict], receiver: Receiver, provinces: dict[str, str | None], rules: CarrierRules,
           cainiao_only: bool) -> ParcelFacts:
    first = group[0]
    lines = [line for order in group for line in order["lines"]]
    return ParcelFacts(
        weight_grams=sum(line["grams"] * line["quantity"] for line in lines),
        province=normalize_province(receiver.province).name,
        warehouse=first["warehouse"], warehouse_province=provinces.get(first["warehouse"]),
        platform=first["platform"], country=(receiver.country_code or "CN"),
        service=rules.service_for(first["platform"], first["shop_code"], [line["sku"] for line in lines]),
        cainiao_only=cainiao_only,
    )


def _only_cainiao_opens(order: dict, receiver: Receiver, rules: CarrierRules) -> bool:
    """A receiver the platform masked and did not open, whose oaid Cainiao opens itself."""
    return (receiver.masked and bool(receiver.encrypted.get("oaid"))
            and rules.masked_route(order["platform"]) == CAINIAO)


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


def _no_carrier(order: dict, reason: str) -> ReviewEntry:
    return ReviewEntry("ship", order["platform"], order["shop_code"], order["platform_order_id"],
                       [reason + "; change the rate cards in config/carriers.yaml or ship it by hand"],
                       {"order_id": order["id"], "warehouse": order["warehouse"]})


def _refusal(order: dict, error: Rejected) -> ReviewEntry:
    return ReviewEntry("ship", order["platform"], order["shop_code"], order["platform_order_id"],
                       [f"carrier refused the parcel: {error}"],
                       {"order_id": order["id"], "carrier_code": error.code})
