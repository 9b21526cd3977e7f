"""Reading an Amazon Orders v0 payload: the status table, ISO-8601 times, money per currency.

Pure functions from the JSON the SP-API sends (reference §2.2) to `RawOrder` and `Order`;
no I/O. getOrders does not carry items, so the connector attaches the order's
getOrderItems list to the order under `OrderItems` before anything lands; the mapping
reads both from that one payload. Amounts stay in the order's own currency
(`OrderTotal.CurrencyCode`), which is why one shop can hold several. Receiver data is
what the caller was allowed to see: without a Restricted Data Token, ShippingAddress
has only City, StateOrRegion, PostalCode and CountryCode, and the receiver is masked.
Every problem found is collected and raised together as one `MappingError`.
Listings Items 2021-08-01 items are read into listings here too.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from connectors.base import Listing, RawOrder
from oms.domain.errors import MappingError
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

PLATFORM = "amazon"
ITEMS_KEY = "OrderItems"  # where the connector puts the order's getOrderItems list

S = OrderStatus
# Every OrderStatus of the ordersV0 model [H] -> ours. v0 never reports delivery.
STATUS_TABLE: dict[str, OrderStatus] = {
    "PendingAvailability": S.PENDING_PAYMENT,  # pre-order, payment not yet authorised
    "Pending": S.PENDING_PAYMENT,
    "Unshipped": S.PAID,
    # Some items are still to ship, so the order must stay in our shipping flow; the
    # items already out were shipped outside it (by hand in Seller Central).
    "PartiallyShipped": S.PAID,
    "Shipped": S.SHIPPED,
    "InvoiceUnconfirmed": S.SHIPPED,  # all items shipped, invoice not yet confirmed
    "Canceled": S.CANCELLED,
    "Unfulfillable": S.CANCELLED,  # Amazon-fulfilled multi-channel orders that cannot ship
}
# Orders without pricing yet (or any more): OrderTotal may be absent, the total is 0.
UNPRICED_STATUSES = frozenset({"PendingAvailability", "Pending", "Canceled", "Unfulfillable"})

# Used only when a payload names no currency or country (a Pending order has neither
# OrderTotal nor ShippingAddress). US, DE, UK and JP ids are [H] (reference §2.1).
# --- UNVERIFIED (reference [L]): the BR and SG marketplace ids are from memory.
MARKETPLACES: dict[str, tuple[str, str]] = {  # MarketplaceId -> (country, currency)
    "ATVPDKIKX0DER": ("US", "USD"), "A1PA6795UKMFR9": ("DE", "EUR"),
    "A1F83G8C2ARO7P": ("GB", "GBP"), "A1VC38T7YXB528": ("JP", "JPY"),
    "A2Q3Y263D00KWC": ("BR", "BRL"), "A19VAU5U5O7RUS": ("SG", "SGD"),
}
# --- end

_CURRENCY = re.compile(r"[A-Z]{3}")


def parse_time(text: object) -> datetime | None:
    """ISO-8601 -> aware UTC; None when absent or unreadable. A missing offset means UTC."""
    if not isinstance(text, str) or not text:
        return None
    return _parse_iso(text)


@lru_cache(maxsize=4096)
def _parse_iso(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def raw_order(item: object) -> RawOrder:
    payload = item if isinstance(item, dict) else {"unreadable_item": item}
    order_id = payload.get("AmazonOrderId")
    return RawOrder(
        platform_order_id=order_id if isinstance(order_id, str) and order_id else None,
        platform_updated_at=parse_time(payload.get("LastUpdateDate")),
        payload=payload,
    )


def map_order(payload: dict, shop_code: str) -> Order:
    """The internal order for one Amazon order payload, or MappingError with every reason."""
    reasons: list[str] = []
    order_id = payload.get("AmazonOrderId")
    if not isinstance(order_id, str) or not order_id:
        reasons.append("AmazonOrderId is missing")
    platform_status = payload.get("OrderStatus")
    status = STATUS_TABLE.get(platform_status) if isinstance(platform_status, str) else None
    if status is None:
        reasons.append(f"unknown OrderStatus {platform_status!r}")
    created_at = _required_time(payload, "PurchaseDate", reasons)
    updated_at = _required_time(payload, "LastUpdateDate", reasons)
    ship_by = _optional_time(payload, "LatestShipDate", reasons)
    currency = _currency(payload, reasons)
    total = _order_total(payload, currency, reasons)
    lines, shipping_fee = _lines(payload, currency, reasons)
    if reasons:
        raise MappingError(reasons)
    buyer = payload.get("BuyerInfo") if isinstance(payload.get("BuyerInfo"), dict) else {}
    return Order(
        platform=PLATFORM, shop_code=shop_code,
        platform_order_id=order_id,  # type: ignore[arg-type]
        platform_status=platform_status,  # type: ignore[arg-type]
        status=status, created_at=created_at, updated_at=updated_at,  # type: ignore[arg-type]
        currency=currency,  # type: ignore[arg-type]
        total_amount=total, shipping_fee=shipping_fee, receiver=receiver_of(payload),
        lines=lines, ship_by=ship_by, buyer_ref=buyer.get("BuyerEmail") or None,
    )


def receiver_of(payload: dict) -> Receiver:
    """The receiver as far as the caller may see it; masked unless name and street came."""
    address = payload.get("ShippingAddress")
    address = address if isinstance(address, dict) else {}
    fallback = MARKETPLACES.get(payload.get("MarketplaceId"), ("", ""))[0]  # type: ignore[arg-type]
    return receiver_from_address(address, fallback or None)


def receiver_from_address(address: dict, fallback_country: str | None = None) -> Receiver:
    lines = (address.get(key) for key in ("AddressLine1", "AddressLine2", "AddressLine3"))
    street = ", ".join(str(line).strip() for line in lines if line)
    country = address.get("CountryCode") or fallback_country or ""
    return Receiver(
        name=address.get("Name") or None, phone=address.get("Phone") or None,
        province=address.get("StateOrRegion") or None, city=address.get("City") or None,
        district=address.get("District") or address.get("County") or None,
        address=street or None, postal_code=address.get("PostalCode") or None,
        country_code=country,
        # Without a Restricted Data Token Amazon leaves out the name and the street.
        masked=not (address.get("Name") and street),
    )


# ---- payload pieces --------------------------------------------------------------------


def _required_time(payload: dict, name: str, reasons: list[str]) -> datetime:
    moment = _optional_time(payload, name, reasons)
    if moment is None and not payload.get(name):
        reasons.append(f"{name} is missing")
    return moment  # type: ignore[return-value]


def _optional_time(payload: dict, name: str, reasons: list[str]) -> datetime | None:
    value = payload.get(name)
    moment = parse_time(value)
    if moment is None and value not in (None, ""):
        reasons.append(f"{name} {value!r} is not an ISO 8601 time")
    return moment


def _currency(payload: dict, reasons: list[str]) -> str | None:
    """The order's currency: OrderTotal's, else its items', else its marketplace's."""
    candidates = [payload.get("OrderTotal")]
    items = payload.get(ITEMS_KEY)
    if isinstance(items, list):
        candidates += [item.get("ItemPrice") for item in items if isinstance(item, dict)]
    for money in candidates:
        if isinstance(money, dict) and money.get("CurrencyCode") is not None:
            code = money["CurrencyCode"]
            if isinstance(code, str) and _CURRENCY.fullmatch(code):
                return code
            reasons.append(f"CurrencyCode {code!r} is not an ISO 4217 code")
            return None
    known = MARKETPLACES.get(payload.get("MarketplaceId"))  # type: ignore[arg-type]
    if known is None:
        reasons.append("no currency: neither OrderTotal, item prices nor a known MarketplaceId")
        return None
    return known[1]


def _amount(money: object, where: str, currency: str | None, reasons: list[str]) -> Decimal | None:
    """The Amount of a Money object, checked against the order's currency."""
    if not isinstance(money, dict):
        reasons.append(f"{where} is not a Money object")
        return None
    try:
        amount = Decimal(str(money.get("Amount")))
    except InvalidOperation:
        amount = None
    if isinstance(money.get("Amount"), bool) or amount is None or not amount.is_finite():
        reasons.append(f"{where}.Amount {money.get('Amount')!r} is not an amount")
        return None
    if currency is not None and money.get("CurrencyCode") != currency:
        reasons.append(f"{where} is in {money.get('CurrencyCode')!r}, the order in {currency}")
    return amount


def _order_total(payload: dict, currency: str | None, reasons: list[str]) -> Decimal:
    total = payload.get("OrderTotal")
    if total is None:
        if payload.get("OrderStatus") not in UNPRICED_STATUSES:
            reasons.append("OrderTotal is missing")
        return Decimal("0")
    amount = _amount(total, "OrderTotal", currency, reasons)
    if amount is not None and amount < 0:
        reasons.append(f"OrderTotal.Amount {amount} is negative")
    return amount if amount is not None else Decimal("0")


def _lines(
    payload: dict, currency: str | None, reasons: list[str]
) -> tuple[list[OrderLine], Decimal]:
    items = payload.get(ITEMS_KEY)
    if not isinstance(items, list):
        reasons.append(f"{ITEMS_KEY} is missing (the connector attaches getOrderItems)")
        return [], Decimal("0")
    if not items:
        reasons.append(f"{ITEMS_KEY} is empty")
    cancelled = payload.get("OrderStatus") in ("Canceled", "Unfulfillable")
    lines, shipping = [], Decimal("0")
    for index, item in enumerate(items):
        where = f"{ITEMS_KEY}[{index}]"
        if not isinstance(item, dict):
            reasons.append(f"{where} is not an object")
            continue
        item_id, quantity = item.get("OrderItemId"), item.get("QuantityOrdered")
        if not isinstance(item_id, str) or not item_id:
            reasons.append(f"{where}.OrderItemId is missing")
        # A cancelled order may report its items with nothing left ordered.
        least = 0 if cancelled else 1
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < least:
            reasons.append(f"{where}.QuantityOrdered {quantity!r} is not a positive integer")
            quantity = 0
        unit_price = Decimal("0")
        if "ItemPrice" in item:  # absent while the order is Pending
            price = _amount(item["ItemPrice"], f"{where}.ItemPrice", currency, reasons)
            if price is not None and quantity:
                # ItemPrice is the price of the whole quantity, not of one unit.
                unit_price = (price / quantity).quantize(price, rounding=ROUND_HALF_UP)
        if "ShippingPrice" in item:
            fee = _amount(item["ShippingPrice"], f"{where}.ShippingPrice", currency, reasons)
            if fee is not None:
                shipping += fee
        sku = item.get("SellerSKU")
        lines.append(OrderLine(
            sku=sku.strip() or None if isinstance(sku, str) else None, quantity=quantity,
            unit_price=unit_price, title=str(item.get("Title") or ""),
            platform_line_id=item_id if isinstance(item_id, str) else "",
        ))
    return lines, shipping


# ---- listings ---------------------------------------------------------------------------

FULFILLMENT_CHANNEL = "DEFAULT"  # [H] the seller's own (merchant-fulfilled) stock


def listing_of_item(item: object, marketplace_id: str) -> tuple[Listing, str | None]:
    """A searchListingsItems item as a listing, with the productType a patch must name.

    `item_id` is the ASIN of the item's summary for this marketplace ("" when it has none
    yet); the quantity is the DEFAULT channel's, None when Amazon shows none.
    """
    sku = item.get("sku") if isinstance(item, dict) else None
    if not isinstance(sku, str) or not sku:
        raise MappingError(["a listings item has no sku"])
    summaries = item.get("summaries") if isinstance(item.get("summaries"), list) else []
    summary = next((s for s in summaries if isinstance(s, dict)
                    and s.get("marketplaceId") == marketplace_id), {})
    availability = item.get("fulfillmentAvailability")
    quantity = next((a.get("quantity") for a in availability or []
                     if isinstance(a, dict) and a.get("fulfillmentChannelCode") == FULFILLMENT_CHANNEL
                     and isinstance(a.get("quantity"), int)), None)
    product_type = summary.get("productType")
    product_type = product_type if isinstance(product_type, str) and product_type else None
    return (Listing(sku=sku, item_id=str(summary.get("asin") or ""), quantity=quantity,
                    product_type=product_type or ""), product_type)


def submission_issues(answer: dict) -> str:
    """The ERROR issues of a listings submission, as one line for an error message."""
    issues = answer.get("issues") if isinstance(answer.get("issues"), list) else []
    texts = [f"{i.get('code')}: {i.get('message')}" for i in issues
             if isinstance(i, dict) and i.get("severity", "ERROR") == "ERROR"]
    return "; ".join(texts) or "no issue named"
