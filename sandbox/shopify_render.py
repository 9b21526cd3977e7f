"""How the Shopify simulator shows a neutral `SimOrder` on the wire, and links its pages.

Orders, fulfillment orders and fulfillments follow the REST Admin API's official samples
(reference/marketplace-apis.md §1, api-fields/shopify/): money as decimal strings with
their `_set` twins, times as ISO-8601 with the shop's offset, int64 ids.

Choices the reference leaves open, each made in one place below:
- the district of a Chinese address travels in `address2` (`_address`);
- an order counts as closed once delivered or cancelled (`is_closed`);
- a cancelled order with an odd id was paid, then refunded (`_was_paid_before_cancel`);
- each catalogue SKU is a product with one variant, and its ids derive from shop and SKU
  (`variant_id_of` and kin), so an order's line and the listing show the same variant.

Rendering runs for every order of every page, so values that repeat across orders
(money strings, derived ids) are cached and each order's times are formatted once.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlencode

from sandbox.model import SimOrder

SHOP_TIMEZONE = timezone(timedelta(hours=8))  # sandbox shops sell in China
SHOP_LOCATION_ID = 655441491
# When the sandbox shop's products were listed; products carry no history of their own.
LISTED_SINCE = datetime(2024, 1, 1, tzinfo=timezone.utc)
# Fulfillment and fulfillment-order ids are order id * 100 (+ n), so a fulfillment
# order id leads back to its order without another table.
ID_FACTOR = 100
FULFILLABLE_SIM_STATUSES = ("unpaid", "paid")
FIRST_ORDER_NUMBER = 1000  # Shopify's first order is #1001
DESTINATION_KEYS = ("first_name", "last_name", "address1", "address2", "city", "province",
                    "zip", "country", "phone", "company")
_CENT = Decimal("0.01")
_ZERO = Decimal("0")
# Big enough for every price and product of a generated catalogue; per-order values
# (customer, shipping line) just cycle through.
_CACHE_SIZE = 8192


def aware(value: datetime) -> datetime:
    """Naive times in the neutral model mean UTC."""
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return aware(value).astimezone(SHOP_TIMEZONE).isoformat(timespec="seconds")


@lru_cache(maxsize=_CACHE_SIZE)
def _money(amount: Decimal) -> str:
    return str(Decimal(amount).quantize(_CENT))


def _money_set(amount: Decimal, currency: str) -> dict:
    money = {"amount": _money(amount), "currency_code": currency}
    return {"shop_money": money, "presentment_money": dict(money)}


def _priced(name: str, amount: Decimal, currency: str) -> dict:
    """A money field and its `_set` twin, as Shopify sends both."""
    return {name: _money(amount), f"{name}_set": _money_set(amount, currency)}


@lru_cache(maxsize=_CACHE_SIZE)
def _stable_id(text: str) -> int:
    """A positive int64 derived from text, so product and variant ids repeat across runs."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=6).digest(), "big")


def _was_paid_before_cancel(order: SimOrder) -> bool:
    # The neutral model does not record it; odd ids stand for paid-then-refunded orders so
    # that every generated shop shows both renderings of a cancellation.
    return order.order_id % 2 == 1


def financial_status(order: SimOrder) -> str:
    if order.status == "unpaid":
        return "pending"
    if order.status == "cancelled":
        return "refunded" if _was_paid_before_cancel(order) else "voided"
    return "paid"


def is_fulfilled(order: SimOrder) -> bool:
    return order.status in ("shipped", "delivered")


def is_closed(order: SimOrder) -> bool:
    return order.status in ("delivered", "cancelled")


def _order_number(order: SimOrder) -> int:
    return FIRST_ORDER_NUMBER + order.order_id % 1_000_000


def _address(order: SimOrder) -> dict:
    name = order.receiver_name
    # Chinese checkout order: family name first.
    family, given = (name[:1], name[1:] or None) if name else (None, None)
    return {
        "first_name": given, "last_name": family, "name": name, "company": None,
        "address1": order.address, "address2": order.district, "city": order.city,
        "province": order.province, "province_code": None, "zip": order.postal_code,
        "country": "China", "country_code": "CN", "phone": order.phone,
        "latitude": None, "longitude": None,
    }


def _customer(order: SimOrder, created_at: str | None) -> dict | None:
    if not order.buyer_id:
        return None  # guest checkout
    customer_id = _stable_id("customer:" + order.buyer_id)
    return {"id": customer_id, "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
            "email": None, "phone": None, "state": "disabled", "currency": order.currency,
            "created_at": created_at, "updated_at": created_at}


def _line_items(order: SimOrder) -> list[dict]:
    fulfilled, cancelled = is_fulfilled(order), order.status == "cancelled"
    items = []
    for index, line in enumerate(order.lines, start=1):
        line_id = line.line_id or order.order_id * ID_FACTOR + index
        variant_key = line.sku or line.title
        items.append({
            "id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
            "variant_id": variant_id_of(order.shop, variant_key),
            "product_id": product_id_of(order.shop, variant_key),
            "sku": line.sku, "title": line.title, "name": line.title, "variant_title": None,
            "vendor": None, "quantity": line.quantity,
            "current_quantity": 0 if cancelled else line.quantity,
            "fulfillable_quantity": 0 if fulfilled or cancelled else line.quantity,
            "fulfillment_status": "fulfilled" if fulfilled else None,
            "fulfillment_service": "manual", **_priced("price", line.unit_price, order.currency),
            "grams": 100 + _stable_id("grams:" + variant_key) % 1900,
            "requires_shipping": True, "taxable": False, "gift_card": False,
            **_priced("total_discount", _ZERO, order.currency),
            "properties": [], "tax_lines": [], "discount_allocations": [],
        })
    return items


def render_fulfillment(order: SimOrder, number: int, entry: dict) -> dict:
    """The order's `number`-th fulfillment, from the tracking `entry` it was made with."""
    fulfillment_id = order.order_id * ID_FACTOR + number
    at = _time(entry.get("shipped_at") or order.updated_at)
    tracking_number, url = entry.get("tracking_number"), entry.get("url")
    return {
        "id": fulfillment_id, "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
        "order_id": order.order_id, "name": f"#{_order_number(order)}.{number}",
        "created_at": at, "updated_at": at, "location_id": SHOP_LOCATION_ID,
        "origin_address": {}, "receipt": {}, "service": "manual", "status": "success",
        "shipment_status": "delivered" if order.status == "delivered" else None,
        "tracking_company": entry.get("company") or entry.get("carrier"),
        "tracking_number": tracking_number,
        "tracking_numbers": [tracking_number] if tracking_number else [],
        "tracking_url": url, "tracking_urls": [url] if url else [],
        "line_items": _line_items(order),
    }


def render_fulfillments(order: SimOrder) -> list[dict]:
    # A shipped order without recorded tracking was fulfilled by hand in the admin.
    entries = order.tracking or ([{}] if is_fulfilled(order) else [])
    return [render_fulfillment(order, n, entry) for n, entry in enumerate(entries, start=1)]


def render_order(order: SimOrder, fields: str | None = None) -> dict[str, Any]:
    """The order as `GET orders.json` shows it; names and types follow the official sample.

    `fields` is the request's comma-separated list of the only keys to show.
    """
    rendered = _full_order(order)
    if not fields:
        return rendered
    wanted = {name.strip() for name in fields.split(",")}
    return {key: value for key, value in rendered.items() if key in wanted}


def _full_order(order: SimOrder) -> dict[str, Any]:
    currency, total, fee = order.currency, order.total, order.shipping_fee
    cancelled, number = order.status == "cancelled", _order_number(order)
    created_at, updated_at = _time(order.created_at), _time(order.updated_at)
    address, line_items = _address(order), _line_items(order)
    return {
        "id": order.order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order.order_id}",
        "name": f"#{number}", "order_number": number, "number": number - FIRST_ORDER_NUMBER,
        "email": None, "contact_email": None, "phone": None,
        "created_at": created_at, "updated_at": updated_at, "processed_at": created_at,
        "cancelled_at": updated_at if cancelled else None,
        "cancel_reason": "customer" if cancelled else None,
        "closed_at": updated_at if is_closed(order) else None,
        "confirmed": True, "test": False, "source_name": "web", "tags": "",
        "note": order.note or None, "currency": currency, "presentment_currency": currency,
        "financial_status": financial_status(order),
        "fulfillment_status": "fulfilled" if is_fulfilled(order) else None,
        "taxes_included": True, "tax_lines": [],
        **_priced("total_tax", _ZERO, currency), **_priced("total_discounts", _ZERO, currency),
        **_priced("subtotal_price", total - fee, currency),
        **_priced("total_line_items_price", total - fee, currency),
        **_priced("total_price", total, currency),
        **_priced("current_total_price", total, currency),
        "total_outstanding": _money(total if order.status == "unpaid" else _ZERO),
        "total_shipping_price_set": _money_set(fee, currency),
        "total_weight": sum(item["grams"] * item["quantity"] for item in line_items),
        "customer": _customer(order, created_at),
        "shipping_address": address, "billing_address": dict(address),
        "line_items": line_items,
        "shipping_lines": [{
            "id": _stable_id(f"shipping:{order.order_id}"), "title": "Standard", "code": "Standard",
            "source": "shopify", "carrier_identifier": None, "tax_lines": [],
            **_priced("price", fee, currency), **_priced("discounted_price", fee, currency),
        }],
        "fulfillments": render_fulfillments(order), "refunds": [],
    }


def render_fulfillment_order(order: SimOrder) -> dict[str, Any]:
    is_open = order.status in FULFILLABLE_SIM_STATUSES
    fulfillment_order_id = order.order_id * ID_FACTOR
    address = _address(order)
    return {
        "id": fulfillment_order_id,
        "admin_graphql_api_id": f"gid://shopify/FulfillmentOrder/{fulfillment_order_id}",
        "order_id": order.order_id, "assigned_location_id": SHOP_LOCATION_ID,
        "request_status": "unsubmitted", "status": "open" if is_open else "closed",
        "supported_actions": ["create_fulfillment"] if is_open else [],
        "destination": {key: address[key] for key in DESTINATION_KEYS},
        "created_at": _time(order.created_at), "updated_at": _time(order.updated_at),
        "fulfillment_holds": [], "merchant_requests": [],
        "line_items": [{
            "id": _stable_id(f"fulfillment-order-line:{fulfillment_order_id}:{item['id']}"),
            "fulfillment_order_id": fulfillment_order_id, "line_item_id": item["id"],
            "variant_id": item["variant_id"], "quantity": item["quantity"],
            "fulfillable_quantity": item["quantity"] if is_open else 0,
        } for item in _line_items(order)],
    }


# ---------------------------------------------------------------- the shop's products


def product_id_of(shop: str, sku: str) -> int:
    return _stable_id(f"product:{shop}:{sku}")


def variant_id_of(shop: str, sku: str) -> int:
    return _stable_id(f"variant:{shop}:{sku}")


def inventory_item_id_of(shop: str, sku: str) -> int:
    return _stable_id(f"inventory_item:{shop}:{sku}")


def render_product(shop: str, sku: str, title: str, available: int, price: Decimal) -> dict:
    """A products.json product: one variant carrying the seller SKU and its inventory item.

    `inventory_quantity` is the variant's stock summed over locations; the sandbox shop
    has one location, so it is what the last inventory_levels/set.json set there.
    """
    product_id, variant_id = product_id_of(shop, sku), variant_id_of(shop, sku)
    created = _time(LISTED_SINCE)
    return {
        "id": product_id, "admin_graphql_api_id": f"gid://shopify/Product/{product_id}",
        "title": title, "vendor": shop, "product_type": "", "handle": f"product-{product_id}",
        "status": "active", "created_at": created, "updated_at": created,
        "published_at": created, "tags": "",
        "variants": [{
            "id": variant_id, "admin_graphql_api_id": f"gid://shopify/ProductVariant/{variant_id}",
            "product_id": product_id, "title": "Default Title", "position": 1,
            "price": _money(price), "sku": sku, "option1": "Default Title",
            "inventory_item_id": inventory_item_id_of(shop, sku),
            "inventory_management": "shopify", "inventory_policy": "deny",
            "inventory_quantity": available, "old_inventory_quantity": available,
            "fulfillment_service": "manual", "requires_shipping": True, "taxable": False,
            "created_at": created, "updated_at": created,
        }],
    }


def render_location() -> dict:
    """The sandbox shop's one location, the one its fulfillment orders ship from."""
    return {
        "id": SHOP_LOCATION_ID, "admin_graphql_api_id": f"gid://shopify/Location/{SHOP_LOCATION_ID}",
        "name": "Main warehouse", "address1": None, "city": None, "country_code": "CN",
        "active": True, "legacy": False, "localized_country_name": "China",
    }


def render_inventory_level(inventory_item_id: int, available: int, now: datetime) -> dict:
    return {
        "inventory_item_id": inventory_item_id, "location_id": SHOP_LOCATION_ID,
        "available": available, "updated_at": _time(now),
        "admin_graphql_api_id": (f"gid://shopify/InventoryLevel/{SHOP_LOCATION_ID}"
                                 f"?inventory_item_id={inventory_item_id}"),
    }


def broken_copy(order_json: dict) -> dict:
    """The `malformed` fault: one order arrives without its id and with garbled line items."""
    broken = {key: value for key, value in order_json.items() if key != "id"}
    broken["line_items"] = "[line items unavailable]"
    return broken


# ---------------------------------------------------------------- page links


class PageSpot(NamedTuple):
    """Where a page of a listing starts, and what the client asked to see of it."""

    filters: dict[str, str]
    listing_id: str | None
    offset: int
    limit: int
    fields: str | None


def encode_cursor(filters: dict[str, str], offset: int, listing_id: str | None) -> str:
    """The opaque `page_info`: the filters travel in it, as Shopify's do."""
    cursor = {"filters": filters, "offset": offset, "listing": listing_id}
    raw = json.dumps(cursor, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[dict[str, str], int, str | None]:
    """filters, offset and listing id of a `page_info`; ValueError and kin when forged."""
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    listing_id = data.get("listing")
    return dict(data["filters"]), int(data["offset"]), str(listing_id) if listing_id else None


def link_header(list_url: str, here: PageSpot, total: int) -> str | None:
    """The `Link` header of a page: next and previous pages, None when there are neither."""
    links = []
    if here.offset + here.limit < total:
        links.append(_page_link(list_url, here, here.offset + here.limit, "next"))
    if here.offset > 0:
        links.append(_page_link(list_url, here, max(0, here.offset - here.limit), "previous"))
    return ", ".join(links) or None


def _page_link(list_url: str, here: PageSpot, offset: int, rel: str) -> str:
    cursor = encode_cursor(here.filters, offset, here.listing_id)
    query = {"page_info": cursor, "limit": here.limit}
    if here.fields:
        query["fields"] = here.fields
    return f'<{list_url}?{urlencode(query)}>; rel="{rel}"'
