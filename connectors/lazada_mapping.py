"""Reading a Lazada order payload: the status table, local-time strings, market currencies.

The payload the connector lands is one `/orders/get` order with its `/orders/items/get`
items attached under `order_items` (the list API carries no lines and no currency).
Lazada has no quantity: every unit is an order item, so each item becomes a line of one.
Amounts stay in the order's own currency as the items name it (THB, SGD, VND...).
Receivers come masked ("S***", "66******78"); the mask is kept as it is and nothing here
guesses plaintext. Pure functions, no I/O; every problem of a payload is collected into
one `MappingError`. `/products/get` products are read into listings here too.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from connectors.base import Listing, RawOrder
from oms.domain.errors import MappingError
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

PLATFORM = "lazada"
ITEMS_KEY = "order_items"  # where the connector attaches an order's items

S = OrderStatus

# --- UNVERIFIED (reference [M/L] or silent): statuses, and payload details as the
# simulator writes them -----------------------------------------------------------------
# Lazada order item status -> our status (reference §4.4 [M/L]: unpaid, pending, canceled,
# ready_to_ship, delivered, returned, shipped and failed are documented order statuses;
# topack, toship, shipping, lost, packed and repacked seller-center tabs). Packing and
# "to ship" are still the seller's move; ready_to_ship means the seller gave the tracking
# number and handed over (our write-back ends there). Failed delivery, loss and returns happen after
# the parcel left: after-sales business, not a status flip, so they keep the progress.
STATUS_TABLE: dict[str, OrderStatus] = {
    "unpaid": S.PENDING_PAYMENT,
    "pending": S.PAID,
    "topack": S.PAID,
    "packed": S.PAID,
    "repacked": S.PAID,
    "toship": S.PAID,
    "ready_to_ship": S.SHIPPED,
    "shipping": S.SHIPPED,
    "shipped": S.SHIPPED,
    "failed": S.SHIPPED,
    "lost": S.SHIPPED,
    "delivered": S.DELIVERED,
    "returned": S.DELIVERED,
    "canceled": S.CANCELLED,
}
# An order whose items stand in different places is as far as its least advanced item;
# cancelled items drop out unless every item is cancelled.
PROGRESS = (S.PENDING_PAYMENT, S.PAID, S.SHIPPED, S.DELIVERED)

# Times: "2024-03-02 06:30:05 +0700"; ISO-8601 with an offset is read as well.
_LAZADA_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}")
# address_shipping.country is an English country name; ISO codes are read as well.
COUNTRY_CODES = {"singapore": "SG", "malaysia": "MY", "philippines": "PH", "thailand": "TH",
                 "indonesia": "ID", "vietnam": "VN", "viet nam": "VN"}
# Address slots: address3 region (province), address5 district, `city` the city.
# `price` is the items' sum before vouchers; the buyer pays price + shipping_fee - voucher.
# A price string may group thousands with commas ("1,290.00").
_GROUPED = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")
# --- end UNVERIFIED


def parse_lazada_time(text: object) -> datetime | None:
    """A payload time with its offset -> aware UTC; None when absent, naive or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        if _LAZADA_TIME.fullmatch(text):
            moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(timezone.utc)


def order_id_text(value: object) -> str | None:
    """Lazada's int64 order id as text; numeric strings are accepted too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    return None


def raw_order(item: object) -> RawOrder:
    payload = item if isinstance(item, dict) else {"unreadable_item": item}
    return RawOrder(
        platform_order_id=order_id_text(payload.get("order_id")),
        platform_updated_at=parse_lazada_time(payload.get("updated_at")),
        payload=payload,
    )


def map_order(payload: dict, shop_code: str) -> Order:
    """The internal order for one Lazada payload, or MappingError with every reason."""
    reasons: list[str] = []
    order_id = order_id_text(payload.get("order_id"))
    if order_id is None:
        reasons.append(f"order_id {payload.get('order_id')!r} is not a Lazada order id")
    statuses = payload.get("statuses")
    status = order_status(statuses, reasons)
    created_at = _time(payload, "created_at", reasons)
    updated_at = _time(payload, "updated_at", reasons)
    price = _money(payload.get("price"), "price", reasons)
    shipping_fee = _money(payload.get("shipping_fee", 0), "shipping_fee", reasons)
    voucher = _money(payload.get("voucher", 0), "voucher", reasons)
    lines, currency = _lines(payload.get(ITEMS_KEY), reasons)
    receiver = _receiver(payload.get("address_shipping"), reasons)
    if reasons:
        raise MappingError(reasons)
    return Order(
        platform=PLATFORM, shop_code=shop_code,
        platform_order_id=order_id,  # type: ignore[arg-type]
        platform_status=",".join(statuses),  # type: ignore[arg-type]
        status=status, created_at=created_at, updated_at=updated_at,  # type: ignore[arg-type]
        currency=currency, total_amount=price + shipping_fee - voucher, shipping_fee=shipping_fee,
        receiver=receiver, lines=lines,
        buyer_ref=_buyer_ref(payload.get(ITEMS_KEY)), buyer_note=str(payload.get("remarks") or ""),
    )


def order_status(statuses: object, reasons: list[str]) -> OrderStatus:
    if not isinstance(statuses, list) or not statuses:
        reasons.append(f"statuses {statuses!r} is not a non-empty list")
        return S.PAID
    unknown = [s for s in statuses if not isinstance(s, str) or s not in STATUS_TABLE]
    if unknown:
        reasons.append(f"unknown status {unknown!r}")
        return S.PAID
    ours = {STATUS_TABLE[s] for s in statuses} - {S.CANCELLED}
    return min(ours, key=PROGRESS.index) if ours else S.CANCELLED


# ---- payload pieces ---------------------------------------------------------------------


def _time(payload: dict, name: str, reasons: list[str]) -> datetime:
    value = payload.get(name)
    moment = parse_lazada_time(value)
    if moment is None:
        reasons.append(f"{name} {value!r} is not a time with a UTC offset")
    return moment  # type: ignore[return-value]


def _money(value: object, name: str, reasons: list[str]) -> Decimal:
    amount = decimal_amount(value)
    if amount is None or amount < 0:
        reasons.append(f"{name} {value!r} is not an amount")
        return Decimal("0")
    return amount


def decimal_amount(value: object) -> Decimal | None:
    """"1,290.00", "399.00", 39.9 or 0 as a Decimal; None when it is not an amount."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    text = str(value).strip()  # str() first: 39.9 must become Decimal("39.9")
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _lines(items: object, reasons: list[str]) -> tuple[list[OrderLine], str]:
    if not isinstance(items, list) or not items:
        reasons.append(f"{ITEMS_KEY} is missing or empty")
        return [], ""
    lines, currencies = [], set()
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            reasons.append(f"{ITEMS_KEY}[{n}] is not an object")
            continue
        shown = item.get("paid_price", item.get("item_price"))
        price = decimal_amount(shown)
        if price is None or price < 0:
            reasons.append(f"{ITEMS_KEY}[{n}].paid_price {shown!r} is not an amount")
        currency = item.get("currency")
        if not isinstance(currency, str) or len(currency) != 3:
            reasons.append(f"{ITEMS_KEY}[{n}].currency {currency!r} is not a currency code")
        else:
            currencies.add(currency.upper())
        sku = item.get("sku")
        lines.append(OrderLine(
            sku=sku.strip() or None if isinstance(sku, str) else None, quantity=1,
            unit_price=price or Decimal("0"), title=str(item.get("name") or ""),
            platform_line_id=str(item.get("order_item_id") or ""),
        ))
    if len(currencies) > 1:
        reasons.append(f"items disagree on the currency: {sorted(currencies)}")
    return lines, next(iter(currencies), "")


def _buyer_ref(items: object) -> str | None:
    if isinstance(items, list) and items and isinstance(items[0], dict):
        buyer = items[0].get("buyer_id")
        return str(buyer) if buyer else None
    return None


def _text(address: dict, key: str) -> str | None:
    value = address.get(key)
    return value.strip() or None if isinstance(value, str) else None


def _receiver(address: object, reasons: list[str]) -> Receiver:
    """The shipping address as served; masked when Lazada starred a name or phone."""
    if not isinstance(address, dict):
        reasons.append("address_shipping is not an object")
        address = {}
    name = " ".join(filter(None, (_text(address, "first_name"), _text(address, "last_name"))))
    phone = _text(address, "phone")
    street = ", ".join(filter(None, (_text(address, "address1"), _text(address, "address2"))))
    country = _text(address, "country") or ""
    code = COUNTRY_CODES.get(country.lower(), country.upper() if len(country) == 2 else "")
    if address and not code:
        reasons.append(f"address_shipping.country {country!r} is not a known country")
    return Receiver(
        name=name or None, phone=phone, province=_text(address, "address3"),
        city=_text(address, "city"), district=_text(address, "address5"),
        address=street or None, postal_code=_text(address, "post_code"),
        country_code=code, masked="*" in f"{name}{phone or ''}",
    )


# ---- listings ---------------------------------------------------------------------------


def _whole_number(value: object) -> int | None:
    """An id or count that Lazada sends as a number or as a string of digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def product_total(data: object) -> int:
    """`total_products` of a /products/get answer (a string in the doc's sample)."""
    total = _whole_number(data.get("total_products")) if isinstance(data, dict) else None
    if total is None:
        raise MappingError(["/products/get answered without total_products"])
    return total


def listings_of_products(products: object) -> list[Listing]:
    """The SKUs of a /products/get page that carry a SellerSku, as listings."""
    if not isinstance(products, list):
        raise MappingError(["/products/get answered without a products list"])
    listings, reasons = [], []
    for product in products:
        item_id = _whole_number(product.get("item_id")) if isinstance(product, dict) else None
        skus = product.get("skus") if isinstance(product, dict) else None
        if item_id is None or not isinstance(skus, list):
            reasons.append("a product lacks its item_id or skus")
            continue
        for entry in skus:
            seller_sku = entry.get("SellerSku") if isinstance(entry, dict) else None
            if not isinstance(seller_sku, str) or not seller_sku.strip():
                continue  # a SKU the seller never tied to a code of theirs
            sku_id = _whole_number(entry.get("SkuId"))
            if sku_id is None:
                reasons.append(f"SKU {seller_sku!r} of item {item_id} has no SkuId")
                continue
            # Available is what buyers can still buy; quantity is the total stock.
            shown = _whole_number(entry.get("Available"))
            shown = _whole_number(entry.get("quantity")) if shown is None else shown
            listings.append(Listing(sku=seller_sku.strip(), item_id=str(item_id),
                                    variant_id=str(sku_id), quantity=shown))
    if reasons:
        raise MappingError(reasons)
    return listings
