"""How the Lazada simulator dresses a neutral order: /orders/get and /orders/items/get shapes.

Field names follow reference §4.4 (the Go SDK's response structs). Lazada has no quantity
on an order line: every unit is an order item of its own, so a line of three cups is three
order items. The order's `price` is a decimal string; item prices and fees are numbers;
the currency rides on the items only. Where the reference is silent (time format of the
payload, how receivers are masked, which address slot holds what), the choice sits in the
UNVERIFIED block below. Token answers and the broken payloads of the `malformed` fault
are dressed here too, and so are the shop's products of /products/get: one product per
seller SKU, its item_id and SkuId derived from shop and SKU so an order item's shop_sku
names the same listing.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

from sandbox.model import SimLine, SimOrder

# --- UNVERIFIED (reference [M/L] or silent): wire details chosen for the simulator -----
# neutral status -> the order item status Lazada shows (reference §4.4 [M/L])
STATUS_VALUES = {
    "unpaid": "unpaid", "paid": "pending", "shipped": "shipped", "delivered": "delivered",
    "cancelled": "canceled",
}
READY_TO_SHIP = "ready_to_ship"  # what /order/rts leaves; the sandbox never moves it on
# Payload times: "2024-03-02 06:30:05 +0700" in the seller country's time (from memory
# of Lazada samples; the reference gives no payload time format).
PAYLOAD_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
COUNTRY_UTC_OFFSETS = {"SG": 8, "MY": 8, "PH": 8, "TH": 7, "ID": 7, "VN": 7}
# address_shipping.country carries the country's English name, not its ISO code.
COUNTRY_NAMES = {"SG": "Singapore", "MY": "Malaysia", "PH": "Philippines", "TH": "Thailand",
                 "ID": "Indonesia", "VN": "Vietnam"}
# Which address slot holds what: address1 street, address3 region, address4 city,
# address5 district; address2 stays empty.
# Receivers are masked: names keep their first letter, phones their first two and last
# two digits. Street, city and postcode stay readable (a dropshipper writes the label).
MASK = "*"
# The order's price string groups thousands with commas ("1,290.00").
PRICE_FORMAT = "{:,.2f}"
# Lazada order ids are 15-digit numbers; items count up from order_id * 1000.
ORDER_ID_BASE = 400_000_000_000_000
ITEM_IDS_PER_ORDER = 1000
# --- end UNVERIFIED
RTS_SOURCE = "order/rts"  # marks a tracking record written by our /order/rts handler
# When the sandbox's products were listed, in ms as /products/get's created_time shows it.
LISTED_SINCE_MS = 1_704_067_200_000


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:6], "big")


def product_item_id(shop: str, sku: str) -> int:
    return 100_000_000 + _stable_int(f"item|{shop}|{sku}") % 9_900_000_000


def product_sku_id(shop: str, sku: str) -> int:
    return 100_000_000 + _stable_int(f"sku|{shop}|{sku}") % 9_900_000_000


def shop_sku(shop: str, sku: str, country: str) -> str:
    """Lazada's own code of a listing, "<item>_<country>-<sku id>" as order items show it."""
    return f"{product_item_id(shop, sku)}_{country}-{product_sku_id(shop, sku)}"


def render_product(shop: str, sku: str, title: str, quantity: int, country: str) -> dict:
    """One product of /products/get: ids as strings and times in ms, as the doc sample has."""
    item_id = product_item_id(shop, sku)
    return {
        "item_id": str(item_id), "primary_category": "10000211",
        "created_time": str(LISTED_SINCE_MS), "updated_time": str(LISTED_SINCE_MS),
        "status": "Active", "subStatus": "", "trialProduct": "false", "images": "[]",
        "attributes": {"name": title, "brand": "No Brand"},
        "skus": [{
            "SkuId": product_sku_id(shop, sku), "SellerSku": sku,
            "ShopSku": shop_sku(shop, sku, country), "Status": "active",
            "quantity": quantity, "Available": quantity,
            "Url": f"https://www.lazada.sg/products/i{item_id}.html",
        }],
        "suspendedSkus": [],
    }


def local_zone(country: str) -> timezone:
    return timezone(timedelta(hours=COUNTRY_UTC_OFFSETS.get(country, 8)))


@lru_cache(maxsize=8_192)
def lazada_time(moment: datetime, country: str) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(local_zone(country)).strftime(PAYLOAD_TIME_FORMAT)


def lazada_order_id(order: SimOrder) -> int:
    """Stable 15-digit id; an affine map keeps distinct SimOrders distinct."""
    return ORDER_ID_BASE + (order.order_id * 7_919_311) % (10**14)


def status_value(order: SimOrder) -> str:
    """Lazada's status for the order; an order we marked ready to ship stays so."""
    last = order.tracking[-1] if order.tracking else {}
    if order.status == "shipped" and last.get("source") == RTS_SOURCE:
        return READY_TO_SHIP
    return STATUS_VALUES[order.status]


def mask_name(name: str) -> str:
    return name[:1] + MASK * 3 if name else ""


def mask_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) <= 4:
        return MASK * len(digits)
    return digits[:2] + MASK * (len(digits) - 4) + digits[-2:]


def _split_name(full: str) -> tuple[str, str]:
    first, _, last = full.strip().partition(" ")
    return first, last


def _money_number(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("0.01")))


def _address(order: SimOrder) -> dict:
    first, last = _split_name(order.receiver_name or "")
    return {
        "first_name": mask_name(first), "last_name": mask_name(last),
        "phone": mask_phone(order.phone or ""), "phone2": "",
        "address1": order.address or "", "address2": "", "address3": order.province or "",
        "address4": order.city or "", "address5": order.district or "",
        "city": order.city or "", "post_code": order.postal_code or "",
        "country": COUNTRY_NAMES.get(order.country_code, order.country_code),
    }


def render_order(order: SimOrder) -> dict:
    """One entry of /orders/get data.orders (and /order/get data)."""
    country = order.country_code
    units = sum(max(line.quantity, 0) for line in order.lines)
    goods = sum((line.unit_price * max(line.quantity, 0) for line in order.lines), Decimal("0"))
    first, last = _split_name(order.receiver_name or "")
    address = _address(order)
    return {
        "order_id": lazada_order_id(order), "order_number": lazada_order_id(order),
        "statuses": [status_value(order)],
        "created_at": lazada_time(order.created_at, country),
        "updated_at": lazada_time(order.updated_at, country),
        "price": PRICE_FORMAT.format(goods), "shipping_fee": _money_number(order.shipping_fee),
        "shipping_fee_original": _money_number(order.shipping_fee),
        "shipping_fee_discount_seller": 0.0, "shipping_fee_discount_platform": 0.0,
        "voucher": 0.0, "voucher_platform": 0.0, "voucher_seller": 0.0, "voucher_code": "",
        "items_count": units, "payment_method": "COD" if order.order_id % 3 == 0 else "MIXEDCARD",
        "customer_first_name": mask_name(first), "customer_last_name": mask_name(last),
        "address_shipping": address, "address_billing": dict(address),
        "gift_option": False, "gift_message": "", "remarks": order.note,
        "promised_shipping_times": "", "warehouse_code": "dropshipping",
        "delivery_info": "", "extra_attributes": "", "branch_number": "", "tax_code": "",
        "national_registration_number": "", "address_updated_at": "",
    }


def _buyer_number(order: SimOrder) -> int:
    digits = "".join(ch for ch in order.buyer_id if ch.isdigit())
    return int(digits) if digits else 0


def _item(order: SimOrder, line: SimLine, item_id: int, status: str, tracking: dict) -> dict:
    price = _money_number(line.unit_price)
    return {
        "order_item_id": item_id, "order_id": lazada_order_id(order),
        "sku": line.sku or "",
        "shop_sku": shop_sku(order.shop, line.sku, order.country_code) if line.sku
        else f"{line.line_id}_{order.country_code}-{line.line_id}",
        "name": line.title, "variation": "", "item_price": price, "paid_price": price,
        "currency": order.currency, "status": status,
        "tracking_code": tracking.get("tracking_number", ""), "tracking_code_pre": "",
        "shipment_provider": tracking.get("shipment_provider", ""),
        "package_id": f"FP{item_id}" if tracking else "", "shipping_type": "Dropshipping",
        "invoice_number": "", "purchase_order_id": "", "purchase_order_number": "",
        "product_main_image": "", "cancel_return_initiator": "", "reason": "",
        "sla_time_stamp": "", "buyer_id": _buyer_number(order), "voucher_amount": 0.0,
        "shipping_amount": 0.0, "tax_amount": 0.0, "is_digital": 0,
        "created_at": lazada_time(order.created_at, order.country_code),
        "updated_at": lazada_time(order.updated_at, order.country_code),
    }


def item_ids(order: SimOrder) -> list[int]:
    """One order item per unit, numbered in line order."""
    first = lazada_order_id(order) * ITEM_IDS_PER_ORDER
    units = sum(max(line.quantity, 0) for line in order.lines)
    return [first + n for n in range(1, units + 1)]


def render_items(order: SimOrder) -> list[dict]:
    """The order's items as /order/items/get lists them."""
    status = status_value(order)
    tracking = order.tracking[-1] if order.tracking else {}
    ids = iter(item_ids(order))
    return [_item(order, line, next(ids), status, tracking)
            for line in order.lines for _ in range(max(line.quantity, 0))]


def token_body(access_token: str, expires_in: int, refresh_token: str, refresh_expires_in: int,
               shop: str, seller_id: str, country: str) -> dict:
    """A token answer: flat, not inside `data` (reference §4.3)."""
    country = country.lower()
    return {
        "access_token": access_token, "refresh_token": refresh_token,
        "expires_in": expires_in, "refresh_expires_in": refresh_expires_in,
        "account": f"{shop}@example.com", "account_id": seller_id,
        "account_platform": "seller_center", "country": country,
        "country_user_info": [{"country": country, "seller_id": seller_id, "user_id": seller_id,
                               "short_code": f"{country.upper()}{seller_id[-6:]}"}],
        "code": "0", "request_id": uuid.uuid4().hex[:13],
    }


def spoil(body: dict) -> dict | None:
    """Break one order of an order or items payload; None when there is none to break."""
    data = body.get("data")
    orders = data.get("orders") if isinstance(data, dict) else data  # list: /orders/items/get
    if not isinstance(orders, list) or not orders or not isinstance(orders[0], dict):
        return None
    target = orders[len(orders) // 2]
    if "order_items" in target:  # an /orders/items/get entry loses its items
        target["order_items"] = "unavailable"
    else:
        target.pop("order_id", None)
        target["price"] = "N/A"
    return body
