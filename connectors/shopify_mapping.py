"""Shopify REST payloads, read: the landed raw order, the internal Order, and listings.

Pure functions of the payload, no I/O, so the mapping is tested without HTTP. The status
table below is the only place that says what a Shopify order state means to us. Every
problem found in a payload is collected, so a MappingError lists them all at once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from connectors.base import Listing, RawOrder
from oms.domain.errors import MappingError
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

PLATFORM = "shopify"
# Shopify's China address form has no district field; the sandbox (and our sellers'
# checkout convention) puts it in address2. Unverified for real stores.
DISTRICT_FIELD = "address2"
PAID_FINANCIAL_STATUSES = ("paid", "partially_paid", "partially_refunded", "refunded")


class ShopifyState(NamedTuple):
    """Where a Shopify order stands, as far as our status needs to know."""

    financial_status: str | None
    fulfillment_status: str | None  # null means unfulfilled
    cancelled: bool  # cancelled_at is set
    delivered: bool  # every successful fulfillment reports shipment_status "delivered"


S = OrderStatus
# Keys are ShopifyState tuples; a state missing here is a MappingError, never a guess.
STATUS_BY_SHOPIFY_STATE: dict[tuple, OrderStatus] = {
    ("pending", None, False, False): S.PENDING_PAYMENT,
    ("partially_paid", None, False, False): S.PENDING_PAYMENT,
    # Manual-capture shops capture when they fulfil, so an authorized order is ready to ship.
    ("authorized", None, False, False): S.PAID,
    ("paid", None, False, False): S.PAID,
    ("partially_refunded", None, False, False): S.PAID,  # the rest still ships
    # Partly fulfilled means someone ships this order by hand: we must not ship it whole.
    ("paid", "partial", False, False): S.SHIPPED,
    ("paid", "fulfilled", False, False): S.SHIPPED,
    ("partially_refunded", "fulfilled", False, False): S.SHIPPED,
    ("refunded", "fulfilled", False, False): S.SHIPPED,  # refund after shipping is after-sales
    ("pending", "fulfilled", False, False): S.SHIPPED,  # shipped before payment (manual)
    ("paid", "fulfilled", False, True): S.DELIVERED,
    ("partially_refunded", "fulfilled", False, True): S.DELIVERED,
    ("refunded", "fulfilled", False, True): S.DELIVERED,
    ("pending", None, True, False): S.CANCELLED,
    ("authorized", None, True, False): S.CANCELLED,
    ("paid", None, True, False): S.CANCELLED,  # cancelled, refund not issued yet
    ("voided", None, True, False): S.CANCELLED,
    ("refunded", None, True, False): S.CANCELLED,
    ("partially_refunded", None, True, False): S.CANCELLED,
    ("voided", None, False, False): S.CANCELLED,  # authorization voided, nothing to ship
    ("refunded", None, False, False): S.CANCELLED,
}


# ---------------------------------------------------------------- the landed raw order


def _parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time with offset, as aware UTC; None when absent, naive or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo else None


def _order_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def raw_order(payload: Any) -> RawOrder:
    """Land a payload as it came; keys too broken to read become None, never an error."""
    if not isinstance(payload, dict):
        payload = {"unreadable": payload}
    order_id = _order_id(payload.get("id"))
    return RawOrder(
        platform_order_id=None if order_id is None else str(order_id),
        platform_updated_at=_parse_time(payload.get("updated_at")),
        payload=payload,
    )


# ---------------------------------------------------------------- payload -> Order


def shopify_state(payload: dict) -> ShopifyState:
    fulfillments = payload.get("fulfillments")
    successful = [
        f for f in (fulfillments if isinstance(fulfillments, list) else [])
        if isinstance(f, dict) and f.get("status") == "success"
    ]
    return ShopifyState(
        financial_status=payload.get("financial_status"),
        fulfillment_status=payload.get("fulfillment_status"),
        cancelled=bool(payload.get("cancelled_at")),
        delivered=bool(successful)
        and all(f.get("shipment_status") == "delivered" for f in successful),
    )


def _amount(value: Any, name: str, reasons: list[str]) -> Decimal:
    try:
        amount = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        reasons.append(f"{name} is not a non-negative decimal string")
        return Decimal("0")
    return amount


def _required_time(payload: dict, name: str, reasons: list[str]) -> datetime:
    moment = _parse_time(payload.get(name))
    if moment is None:
        reasons.append(f"{name} is missing or not ISO-8601 with an offset")
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment


def _lines(items: Any, reasons: list[str]) -> list[OrderLine]:
    if not isinstance(items, list):
        reasons.append("line_items is missing or not a list")
        return []
    if not items:
        reasons.append("the order has no line items")
    lines = []
    for index, item in enumerate(items):
        where = f"line_items[{index}]"
        if not isinstance(item, dict):
            reasons.append(f"{where} is not an object")
            continue
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            reasons.append(f"{where}.quantity is not a positive integer")
        sku = item.get("sku")
        if sku is not None and not isinstance(sku, str):
            reasons.append(f"{where}.sku is not a string")
        price = _amount(item.get("price"), f"{where}.price", reasons)
        line_id = item.get("id")
        lines.append(OrderLine(
            sku=sku, quantity=quantity, unit_price=price, title=str(item.get("title") or ""),
            platform_line_id="" if line_id is None else str(line_id),
        ))
    return lines


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _receiver(payload: dict, reasons: list[str]) -> Receiver:
    """The shipping address as the buyer typed it: the clean step normalises it."""
    address = payload.get("shipping_address")
    if address is not None and not isinstance(address, dict):
        reasons.append("shipping_address is not an object")
    address = address if isinstance(address, dict) else {}
    phone = address.get("phone")
    return Receiver(
        name=_text(address.get("name")),
        phone=_text(payload.get("phone") if phone is None else phone),
        province=_text(address.get("province")),
        city=_text(address.get("city")),
        district=_text(address.get(DISTRICT_FIELD)),
        address=_text(address.get("address1")),
        postal_code=_text(address.get("zip")),
        country_code=_text(address.get("country_code")) or "CN",
        masked=False,
    )


def map_order(payload: dict, shop_code: str) -> Order:
    """A Shopify order payload as our Order; MappingError lists every problem found."""
    reasons: list[str] = []
    order_id = _order_id(payload.get("id"))
    if order_id is None:
        reasons.append("id is missing or not a positive integer")
    created_at = _required_time(payload, "created_at", reasons)
    updated_at = _required_time(payload, "updated_at", reasons)
    state = shopify_state(payload)
    status = STATUS_BY_SHOPIFY_STATE.get(state)
    if status is None:
        reasons.append(f"no internal status for Shopify state {tuple(state)}")
    currency = payload.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        reasons.append("currency is missing or not a three-letter code")
    total = _amount(payload.get("total_price"), "total_price", reasons)
    shipping_money = (payload.get("total_shipping_price_set") or {})
    shipping_money = shipping_money.get("shop_money") if isinstance(shipping_money, dict) else None
    shipping_fee = _amount(
        shipping_money.get("amount") if isinstance(shipping_money, dict) else None,
        "total_shipping_price_set.shop_money.amount", reasons,
    )
    lines = _lines(payload.get("line_items"), reasons)
    receiver = _receiver(payload, reasons)
    if reasons:
        raise MappingError(reasons)
    customer = payload.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else None
    platform_status = "/".join(filter(None, [
        state.financial_status, state.fulfillment_status or "unfulfilled",
        "cancelled" if state.cancelled else "", "delivered" if state.delivered else "",
    ]))
    return Order(
        platform=PLATFORM,
        shop_code=shop_code,
        platform_order_id=str(order_id),
        platform_status=platform_status,
        status=status,
        created_at=created_at,
        updated_at=updated_at,
        currency=currency,
        total_amount=total,
        receiver=receiver,
        lines=lines,
        shipping_fee=shipping_fee,
        # REST orders carry no payment time; processed_at is when checkout completed.
        paid_at=_parse_time(payload.get("processed_at"))
        if state.financial_status in PAID_FINANCIAL_STATUSES else None,
        buyer_ref=None if customer_id is None else str(customer_id),
        buyer_note=_text(payload.get("note")) or "",
    )


def listings_of_products(products: Any, location_id: str) -> list[Listing]:
    """The variants of a products.json page that carry a seller SKU, as listings.

    A variant without a SKU is no listing of ours (the seller never tied it to one of
    their codes) and is left out; a product or variant that cannot be read at all raises
    MappingError, since leaving it out would hide a listing whose stock we must set.
    """
    if not isinstance(products, list):
        raise MappingError(["products.json answered without a products list"])
    listings, reasons = [], []
    for product in products:
        variants = product.get("variants") if isinstance(product, dict) else None
        if not isinstance(variants, list):
            reasons.append(f"product {_product_ref(product)} has no variants list")
            continue
        for variant in variants:
            sku = variant.get("sku") if isinstance(variant, dict) else None
            if not isinstance(sku, str) or not sku.strip():
                continue
            item_id, variant_id = variant.get("inventory_item_id"), variant.get("id")
            if not isinstance(item_id, int) or not isinstance(variant_id, int):
                reasons.append(f"variant with SKU {sku!r} lacks its id or inventory_item_id")
                continue
            quantity = variant.get("inventory_quantity")
            listings.append(Listing(
                sku=sku.strip(), item_id=str(item_id), variant_id=str(variant_id),
                location_id=location_id,
                quantity=quantity if isinstance(quantity, int) else None,
            ))
    if reasons:
        raise MappingError(reasons)
    return listings


def _product_ref(product: Any) -> str:
    return str(product.get("id")) if isinstance(product, dict) else "(not an object)"
