"""Reading Shopee v2 payloads: order details (the status table, unix seconds, floats in the
order's currency) and the items and models a shop lists.

Pure functions from the JSON of `get_order_detail` (reference §3.5) to `RawOrder` and
`Order`; no I/O. Every problem found in a payload is collected and raised together as one
`MappingError`. Amounts stay in the currency the order names (SGD, THB, VND...): Shopee
sells in many markets and nothing here converts. The recipient address comes masked for
most markets ("P******n", "******64", all "****" in Taiwan) and stays masked: Shopee
documents no decrypt call, so `Receiver.encrypted` stays empty.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from connectors.base import Listing, RawOrder
from oms.domain.errors import MappingError
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

PLATFORM = "shopee"
S = OrderStatus

# Shopee order_status -> our status. [H] values are get_order_list's enum (reference §3.4);
# RETRY_SHIP is [H] from get_shipment_list; TO_CONFIRM_RECEIVE and TO_RETURN are [L].
STATUS_TABLE: dict[str, OrderStatus] = {
    "UNPAID": S.PENDING_PAYMENT,
    "READY_TO_SHIP": S.PAID,
    # Shipment arranged and a Shopee tracking number issued, parcel not yet picked up: a
    # second shipment must not be made, so the pipeline treats it as shipped.
    "PROCESSED": S.SHIPPED,
    "RETRY_SHIP": S.PAID,  # the pickup failed; the seller must arrange shipment again
    "SHIPPED": S.SHIPPED,
    "TO_CONFIRM_RECEIVE": S.DELIVERED,  # [L] delivered, waiting for the buyer to confirm
    # A cancellation asked for but not decided: the order may still have to ship, and our
    # CANCELLED is final, so it stays PAID until Shopee says CANCELLED.
    "IN_CANCEL": S.PAID,
    "CANCELLED": S.CANCELLED,
    "TO_RETURN": S.DELIVERED,  # [L] a return after receipt is after-sales business
    "COMPLETED": S.DELIVERED,
    "INVOICE_PENDING": S.PAID,  # BR: paid, waiting for the seller's invoice before shipping
    "PENDING": S.PAID,  # only with request_order_status_pending=true: paid, held by Shopee
}


def parse_unix_seconds(value: object) -> datetime | None:
    """A positive unix-second timestamp as an aware UTC datetime; None when unreadable."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def raw_order(item: object) -> RawOrder:
    payload = item if isinstance(item, dict) else {"unreadable_item": item}
    order_sn = payload.get("order_sn")
    return RawOrder(
        platform_order_id=order_sn if isinstance(order_sn, str) and order_sn else None,
        platform_updated_at=parse_unix_seconds(payload.get("update_time")),
        payload=payload,
    )


def map_order(payload: dict, shop_code: str) -> Order:
    """The internal order for one Shopee order detail, or MappingError with every reason."""
    reasons: list[str] = []
    order_sn = payload.get("order_sn")
    if not isinstance(order_sn, str) or not order_sn:
        reasons.append("order_sn is missing")
    platform_status = payload.get("order_status")
    status = STATUS_TABLE.get(platform_status) if isinstance(platform_status, str) else None
    if status is None:
        reasons.append(f"unknown order_status {platform_status!r}")
    created_at = _required_time(payload, "create_time", reasons)
    updated_at = _required_time(payload, "update_time", reasons)
    currency = payload.get("currency")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        reasons.append(f"currency {currency!r} is not an ISO 4217 code")
    lines = _lines(payload.get("item_list"), reasons)
    shipping_fee = _money(payload, "estimated_shipping_fee", reasons, default=Decimal("0"))
    total = _total(payload, platform_status, lines, shipping_fee, reasons)
    receiver = _receiver(payload, reasons)
    if reasons:
        raise MappingError(reasons)
    buyer = payload.get("buyer_user_id")
    return Order(
        platform=PLATFORM, shop_code=shop_code,
        platform_order_id=order_sn,  # type: ignore[arg-type]
        platform_status=platform_status,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        created_at=created_at, updated_at=updated_at,  # type: ignore[arg-type]
        currency=currency.upper(),  # type: ignore[union-attr]
        total_amount=total, shipping_fee=shipping_fee, receiver=receiver, lines=lines,
        paid_at=parse_unix_seconds(payload.get("pay_time")),
        ship_by=parse_unix_seconds(payload.get("ship_by_date")),
        buyer_ref=str(buyer) if buyer not in (None, "", 0) else None,
        buyer_note=str(payload.get("message_to_seller") or ""),
    )


# ---- payload pieces --------------------------------------------------------------------


def _required_time(payload: dict, name: str, reasons: list[str]) -> datetime:
    moment = parse_unix_seconds(payload.get(name))
    if moment is None:
        reasons.append(f"{name} {payload.get(name)!r} is not a unix timestamp")
    return moment  # type: ignore[return-value]


def _decimal(value: object) -> Decimal | None:
    # str() first: a float such as 39.9 must become Decimal("39.9"), not its binary cousin.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _money(payload: dict, name: str, reasons: list[str], default: Decimal | None = None,
           where: str = "") -> Decimal:
    value = payload.get(name)
    if value is None and default is not None:
        return default
    amount = _decimal(value)
    if amount is None or amount < 0:
        reasons.append(f"{where}{name} {value!r} is not an amount")
    return amount or Decimal("0")


def _total(payload: dict, platform_status: object, lines: list[OrderLine],
           shipping_fee: Decimal, reasons: list[str]) -> Decimal:
    # Shopee fills total_amount only after payment; an unpaid order is worth its lines.
    if payload.get("total_amount") is None and platform_status == "UNPAID":
        return sum((line.unit_price * line.quantity for line in lines), Decimal("0")) + shipping_fee
    return _money(payload, "total_amount", reasons)


def _lines(items: object, reasons: list[str]) -> list[OrderLine]:
    if not isinstance(items, list):
        reasons.append("item_list is not a list")
        return []
    if not items:
        reasons.append("item_list is empty")
    lines = []
    for index, item in enumerate(items):
        where = f"item_list[{index}]."
        if not isinstance(item, dict):
            reasons.append(f"item_list[{index}] is not an object")
            continue
        count = item.get("model_quantity_purchased")
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            reasons.append(f"{where}model_quantity_purchased {count!r} is not a positive integer")
        price_field = ("model_discounted_price" if item.get("model_discounted_price") is not None
                       else "model_original_price")
        price = _money(item, price_field, reasons, where=where)
        model_name = str(item.get("model_name") or "").strip()
        title = str(item.get("item_name") or "")
        lines.append(OrderLine(
            sku=_seller_sku(item), quantity=count if isinstance(count, int) else 0,
            unit_price=price, title=f"{title} ({model_name})" if model_name else title,
            platform_line_id=f"{item.get('item_id', '')}:{item.get('model_id', 0)}",
        ))
    return lines


def _seller_sku(item: dict) -> str | None:
    """The seller's SKU: the model's (variation's) when it has one, else the item's."""
    for name in ("model_sku", "item_sku"):
        value = item.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _receiver(payload: dict, reasons: list[str]) -> Receiver:
    address = payload.get("recipient_address")
    if not isinstance(address, dict):
        reasons.append("recipient_address is missing")
        address = {}

    def text(name: str) -> str | None:
        value = address.get(name)
        return value.strip() or None if isinstance(value, str) else None

    country = text("region") or payload.get("region")
    if not (isinstance(country, str) and len(country) == 2):
        reasons.append(f"region {country!r} is not a two-letter country code")
        country = ""
    shown = [text(name) for name in ("name", "phone", "full_address")]
    return Receiver(
        name=shown[0], phone=shown[1], province=text("state"), city=text("city"),
        district=text("district") or text("town"), address=shown[2],
        postal_code=text("zipcode"), country_code=country.upper(),
        # Shopee masks per market and seller type; where it sent plaintext we say so.
        masked=any("*" in value for value in shown if value),
        encrypted={},
    )


# ---- listings ---------------------------------------------------------------------------


def available_stock(entry: dict) -> int | None:
    """What an item or model shows as sellable now (stock_info_v2.summary_info)."""
    info = entry.get("stock_info_v2")
    summary = info.get("summary_info") if isinstance(info, dict) else None
    stock = summary.get("total_available_stock") if isinstance(summary, dict) else None
    return stock if isinstance(stock, int) and not isinstance(stock, bool) else None


def listing_of_item(base: dict) -> Listing | None:
    """The listing of an item without models (its SKU sits on the item, model_id 0); None
    for an item with models, or one the seller gave no SKU."""
    sku, item_id = base.get("item_sku"), base.get("item_id")
    if base.get("has_model") or not isinstance(item_id, int):
        return None
    if not isinstance(sku, str) or not sku.strip():
        return None
    return Listing(sku=sku.strip(), item_id=str(item_id), variant_id="0",
                   quantity=available_stock(base))


def listings_of_models(item_id: int, answer: dict) -> list[Listing]:
    """The SKU-carrying models of one get_model_list answer; MappingError when unreadable."""
    models = answer.get("model")
    if not isinstance(models, list):
        raise MappingError([f"get_model_list of item {item_id} has no model list"])
    listings = []
    for model in models:
        if not isinstance(model, dict):
            raise MappingError([f"get_model_list of item {item_id} has a model that is no object"])
        sku, model_id = model.get("model_sku"), model.get("model_id")
        if not isinstance(sku, str) or not sku.strip():
            continue  # a model the seller never tied to a SKU of theirs
        if not isinstance(model_id, int):
            raise MappingError([f"model {sku!r} of item {item_id} has no model_id"])
        listings.append(Listing(sku=sku.strip(), item_id=str(item_id), variant_id=str(model_id),
                                quantity=available_stock(model)))
    return listings
