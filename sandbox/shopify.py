"""Shopify Admin REST simulator: orders, fulfillment orders and fulfillments.

The sandbox is one host, so a shop is addressed by a path prefix:
`{sandbox}/shopify/{shop}/admin/api/{version}/...` stands for
`https://{shop}.myshopify.com/admin/api/{version}/...`. Below the prefix it follows the
REST Admin API as described in reference/marketplace-apis.md §1: the access-token header
and its 401 body, cursor pagination through the `Link` header, the call-limit header,
money as decimal strings, times as ISO-8601 with the shop's offset, int64 ids.

Choices the reference leaves open, each made in one place below:
- the district of a Chinese address travels in `address2` (`_address`);
- an order counts as closed once delivered or cancelled (`_is_closed`);
- the call-limit bucket is reported on every response but only an armed `rate_limit`
  fault answers 429, so test runs never depend on how fast the machine is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from sandbox.model import Fault, SandboxState, SimOrder, SimToken

API_VERSION = "2025-01"
PLATFORM = "shopify"
PREFIX = "/shopify/{shop}/admin/api/{version}"
TOKEN_HEADER = "X-Shopify-Access-Token"
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
TOKEN_PREFIX = "shpat_"  # offline Admin API tokens; keeps other platforms' tokens out
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 250
CALL_LIMIT_BUCKET = 40  # [M] Standard plan bucket, shown as "n/40"
CALL_LIMIT_LEAK_PER_SECOND = 2.0  # [H] Standard plan: 2 requests per second
OFFLINE_TOKEN_LIFETIME = timedelta(days=365)  # stands in for a non-expiring offline token
SHOP_TIMEZONE = timezone(timedelta(hours=8))  # sandbox shops sell in China
SHOP_LOCATION_ID = 655441491
# Fulfillment and fulfillment-order ids are order id * 100 (+ n), so a fulfillment
# order id leads back to its order without another table.
ID_FACTOR = 100
FULFILLABLE_SIM_STATUSES = ("unpaid", "paid")

INVALID_TOKEN_BODY = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}
THROTTLED_BODY = {
    "errors": "Exceeded 2 calls per second for api client. "
    "Reduce request rates to resume uninterrupted service."
}
NOT_FOUND_BODY = {"errors": "Not Found"}
INVALID_PAGE_INFO_BODY = {"errors": {"page_info": "Invalid value."}}  # [M] seen in the wild
# [L] unverified: Shopify's exact wording for these refusals and for its 5xx body.
LIMIT_OUT_OF_RANGE_BODY = {"errors": {"limit": "Invalid value. Must be between 1 and 250."}}
MISSING_FULFILLMENT_BODY = {"errors": {"fulfillment": "Required parameter missing or invalid"}}
CLOSED_FULFILLMENT_ORDER_ERROR = "Fulfillment order {id} has an unfulfillable status= closed."
SERVER_ERROR_STATUS = 503
SERVER_ERROR_BODY = {"errors": "Service Unavailable"}

ORDER_STATUS_FILTERS = ("open", "closed", "cancelled", "any")
TIME_FILTERS = ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max")
PARAMS_ALLOWED_WITH_CURSOR = {"page_info", "limit", "fields"}


def shop_base_url(sandbox_url: str, shop: str) -> str:
    """The connector's base_url for a sandbox shop (`https://{shop}.myshopify.com` for real)."""
    return f"{sandbox_url.rstrip('/')}/shopify/{shop}"


def register_shop(state: SandboxState, shop: str, now: datetime) -> dict:
    """Install the app on a shop: issue the offline access token the connector will send."""
    token = TOKEN_PREFIX + secrets.token_hex(16)
    with state.lock:
        state.tokens[token] = SimToken(shop=shop, expires_at=now + OFFLINE_TOKEN_LIFETIME)
    return {"access_token": token}


# ---------------------------------------------------------------- rendering


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _to_second(value: datetime) -> datetime:
    # Shopify shows whole seconds, so filters compare what a client can see.
    return _aware(value).replace(microsecond=0)


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return _aware(value).astimezone(SHOP_TIMEZONE).isoformat(timespec="seconds")


def _money(amount: Decimal) -> str:
    return str(Decimal(amount).quantize(Decimal("0.01")))


def _money_set(amount: Decimal, currency: str) -> dict:
    money = {"amount": _money(amount), "currency_code": currency}
    return {"shop_money": money, "presentment_money": dict(money)}


def _priced(name: str, amount: Decimal, currency: str) -> dict:
    """A money field and its `_set` twin, as Shopify sends both."""
    return {name: _money(amount), f"{name}_set": _money_set(amount, currency)}


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


def _is_fulfilled(order: SimOrder) -> bool:
    return order.status in ("shipped", "delivered")


def _is_closed(order: SimOrder) -> bool:
    return order.status in ("delivered", "cancelled")


def _order_number(order: SimOrder) -> int:
    return 1000 + order.order_id % 1_000_000


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


def _customer(order: SimOrder) -> dict | None:
    if not order.buyer_id:
        return None  # guest checkout
    customer_id = _stable_id("customer:" + order.buyer_id)
    return {"id": customer_id, "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
            "email": None, "phone": None, "state": "disabled", "currency": order.currency,
            "created_at": _time(order.created_at), "updated_at": _time(order.created_at)}


def _line_items(order: SimOrder) -> list[dict]:
    fulfilled, cancelled = _is_fulfilled(order), order.status == "cancelled"
    items = []
    for index, line in enumerate(order.lines, start=1):
        line_id = line.line_id or order.order_id * ID_FACTOR + index
        variant_key = line.sku or line.title
        items.append({
            "id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
            "variant_id": _stable_id("variant:" + variant_key),
            "product_id": _stable_id("product:" + line.title),
            "sku": line.sku, "title": line.title, "name": line.title, "variant_title": None,
            "vendor": None, "quantity": line.quantity,
            "current_quantity": 0 if cancelled else line.quantity,
            "fulfillable_quantity": 0 if fulfilled or cancelled else line.quantity,
            "fulfillment_status": "fulfilled" if fulfilled else None,
            "fulfillment_service": "manual", **_priced("price", line.unit_price, order.currency),
            "grams": 100 + _stable_id("grams:" + variant_key) % 1900,
            "requires_shipping": True, "taxable": False, "gift_card": False,
            **_priced("total_discount", Decimal("0"), order.currency),
            "properties": [], "tax_lines": [], "discount_allocations": [],
        })
    return items


def _render_fulfillment(order: SimOrder, number: int, entry: dict) -> dict:
    fulfillment_id = order.order_id * ID_FACTOR + number
    at = entry.get("shipped_at") or order.updated_at
    tracking_number, url = entry.get("tracking_number"), entry.get("url")
    return {
        "id": fulfillment_id, "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
        "order_id": order.order_id, "name": f"#{_order_number(order)}.{number}",
        "created_at": _time(at), "updated_at": _time(at), "location_id": SHOP_LOCATION_ID,
        "origin_address": {}, "receipt": {}, "service": "manual", "status": "success",
        "shipment_status": "delivered" if order.status == "delivered" else None,
        "tracking_company": entry.get("company") or entry.get("carrier"),
        "tracking_number": tracking_number,
        "tracking_numbers": [tracking_number] if tracking_number else [],
        "tracking_url": url, "tracking_urls": [url] if url else [],
        "line_items": _line_items(order),
    }


def _fulfillments(order: SimOrder) -> list[dict]:
    # A shipped order without recorded tracking was fulfilled by hand in the admin.
    entries = order.tracking or ([{}] if _is_fulfilled(order) else [])
    return [_render_fulfillment(order, n, entry) for n, entry in enumerate(entries, start=1)]


def render_order(order: SimOrder) -> dict[str, Any]:
    """The order as `GET orders.json` shows it; names and types follow the official sample."""
    currency, total, fee, zero = order.currency, order.total, order.shipping_fee, Decimal("0")
    cancelled, number = order.status == "cancelled", _order_number(order)
    address, line_items = _address(order), _line_items(order)
    return {
        "id": order.order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order.order_id}",
        "name": f"#{number}", "order_number": number, "number": number - 1000,
        "email": None, "contact_email": None, "phone": None,
        "created_at": _time(order.created_at), "updated_at": _time(order.updated_at),
        "processed_at": _time(order.created_at),
        "cancelled_at": _time(order.updated_at) if cancelled else None,
        "cancel_reason": "customer" if cancelled else None,
        "closed_at": _time(order.updated_at) if _is_closed(order) else None,
        "confirmed": True, "test": False, "source_name": "web", "tags": "",
        "note": order.note or None, "currency": currency, "presentment_currency": currency,
        "financial_status": financial_status(order),
        "fulfillment_status": "fulfilled" if _is_fulfilled(order) else None,
        "taxes_included": True, "tax_lines": [],
        **_priced("total_tax", zero, currency), **_priced("total_discounts", zero, currency),
        **_priced("subtotal_price", total - fee, currency),
        **_priced("total_line_items_price", total - fee, currency),
        **_priced("total_price", total, currency),
        **_priced("current_total_price", total, currency),
        "total_outstanding": _money(total if order.status == "unpaid" else zero),
        "total_shipping_price_set": _money_set(fee, currency),
        "total_weight": sum(item["grams"] * item["quantity"] for item in line_items),
        "customer": _customer(order), "shipping_address": address, "billing_address": dict(address),
        "line_items": line_items,
        "shipping_lines": [{
            "id": _stable_id(f"shipping:{order.order_id}"), "title": "Standard", "code": "Standard",
            "source": "shopify", "carrier_identifier": None, "tax_lines": [],
            **_priced("price", fee, currency), **_priced("discounted_price", fee, currency),
        }],
        "fulfillments": _fulfillments(order), "refunds": [],
    }


def render_fulfillment_order(order: SimOrder) -> dict[str, Any]:
    is_open = order.status in FULFILLABLE_SIM_STATUSES
    fulfillment_order_id = order.order_id * ID_FACTOR
    destination_keys = ("first_name", "last_name", "address1", "address2", "city", "province",
                        "zip", "country", "phone", "company")
    address = _address(order)
    return {
        "id": fulfillment_order_id,
        "admin_graphql_api_id": f"gid://shopify/FulfillmentOrder/{fulfillment_order_id}",
        "order_id": order.order_id, "assigned_location_id": SHOP_LOCATION_ID,
        "request_status": "unsubmitted", "status": "open" if is_open else "closed",
        "supported_actions": ["create_fulfillment"] if is_open else [],
        "destination": {key: address[key] for key in destination_keys},
        "created_at": _time(order.created_at), "updated_at": _time(order.updated_at),
        "fulfillment_holds": [], "merchant_requests": [],
        "line_items": [{
            "id": _stable_id(f"fulfillment-order-line:{fulfillment_order_id}:{item['id']}"),
            "fulfillment_order_id": fulfillment_order_id, "line_item_id": item["id"],
            "variant_id": item["variant_id"], "quantity": item["quantity"],
            "fulfillable_quantity": item["quantity"] if is_open else 0,
        } for item in _line_items(order)],
    }


def _break(order_json: dict) -> dict:
    """The `malformed` fault: one order arrives without its id and with garbled line items."""
    broken = {key: value for key, value in order_json.items() if key != "id"}
    broken["line_items"] = "[line items unavailable]"
    return broken


# ---------------------------------------------------------------- order-list queries


def _parse_time_param(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=SHOP_TIMEZONE)


def _parse_filters(filters: dict[str, str]) -> tuple[str, dict[str, datetime]]:
    """Validate the list filters; raise ValueError naming the offending parameter."""
    status = filters.get("status", "open")
    if status not in ORDER_STATUS_FILTERS:
        raise ValueError("status")
    bounds = {}
    for name in TIME_FILTERS:
        if name in filters:
            try:
                bounds[name] = _parse_time_param(filters[name])
            except ValueError:
                raise ValueError(name) from None
    return status, bounds


def _matches(order: SimOrder, status: str, bounds: dict[str, datetime]) -> bool:
    if status == "open" and _is_closed(order) or status == "closed" and not _is_closed(order):
        return False
    if status == "cancelled" and order.status != "cancelled":
        return False
    for name, bound in bounds.items():
        field, edge = name.rsplit("_", 1)
        value = _to_second(getattr(order, field))
        if edge == "min" and value < bound or edge == "max" and value > bound:
            return False
    return True


def _encode_cursor(filters: dict[str, str], offset: int) -> str:
    raw = json.dumps({"filters": filters, "offset": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[dict[str, str], int]:
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return dict(data["filters"]), int(data["offset"])


def _matching_orders(state: SandboxState, shop: str, status: str, bounds: dict) -> list[SimOrder]:
    with state.lock:
        orders = list(state.shop_orders(shop))
    # A stable sort keeps a repeated order twice, as an update during paging would.
    selected = [order for order in orders if _matches(order, status, bounds)]
    return sorted(selected, key=lambda order: (_to_second(order.updated_at), order.order_id))


def _find_order(state: SandboxState, shop: str, order_id: int) -> SimOrder | None:
    """Callers hold `state.lock`."""
    return next((order for order in state.orders.get(shop, []) if order.order_id == order_id), None)


# ---------------------------------------------------------------- the HTTP side


class _FrontDoor:
    """What every request meets before its endpoint: armed faults, the token, the bucket."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _calls_used(self, shop: str) -> int:
        with self._lock:
            now = time.monotonic()
            level, last = self._buckets.get(shop, (0.0, now))
            leaked = max(0.0, level - (now - last) * CALL_LIMIT_LEAK_PER_SECOND)
            level = min(CALL_LIMIT_BUCKET, leaked + 1)
            self._buckets[shop] = (level, now)
        return math.ceil(level)

    def reply(self, shop: str, status: int, body: Any, headers: dict | None = None,
              garble: bool = False) -> Response:
        used = CALL_LIMIT_BUCKET if status == 429 else self._calls_used(shop)
        headers = {**(headers or {}), CALL_LIMIT_HEADER: f"{used}/{CALL_LIMIT_BUCKET}"}
        if garble:  # the `malformed` fault on a single-resource answer: cut-off JSON
            text = json.dumps(body)
            return Response(text[: len(text) // 2], status, headers, "application/json")
        return JSONResponse(body, status, headers)

    def admit(self, request: Request, shop: str) -> tuple[Response | None, Fault | None]:
        """A refusal to send back, or None and the fault (if any) the endpoint must apply."""
        fault = self.state.faults.take(PLATFORM)
        kind = fault.kind if fault else None
        if kind == "latency":
            time.sleep(fault.delay_seconds)
        if kind == "server_error":
            return self.reply(shop, SERVER_ERROR_STATUS, SERVER_ERROR_BODY), None
        if kind == "rate_limit":
            retry_after = {"Retry-After": str(fault.retry_after)}
            return self.reply(shop, 429, THROTTLED_BODY, retry_after), None
        token = request.headers.get(TOKEN_HEADER, "")
        if kind == "expired_token":
            self._expire(token)
        if not self._token_valid(token, shop):
            return self.reply(shop, 401, INVALID_TOKEN_BODY), None
        return None, fault

    def _expire(self, token: str) -> None:
        with self.state.lock:
            if token in self.state.tokens:
                expired = datetime.now(timezone.utc) - timedelta(seconds=1)
                self.state.tokens[token].expires_at = expired

    def _token_valid(self, token: str, shop: str) -> bool:
        with self.state.lock:
            known = self.state.tokens.get(token)
        return (token.startswith(TOKEN_PREFIX) and known is not None and known.shop == shop
                and _aware(known.expires_at) > datetime.now(timezone.utc))


def _page_link(request: Request, shop: str, version: str, cursor: str, limit: int,
               fields: str | None, rel: str) -> str:
    query = {"page_info": cursor, "limit": limit, **({"fields": fields} if fields else {})}
    url = f"{str(request.base_url).rstrip('/')}/shopify/{shop}/admin/api/{version}/orders.json"
    return f'<{url}?{urlencode(query)}>; rel="{rel}"'


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(tags=["shopify"])
    door = _FrontDoor(state)

    def is_malformed(fault: Fault | None) -> bool:
        return fault is not None and fault.kind == "malformed"

    @router.get(PREFIX + "/orders.json")
    def list_orders(shop: str, version: str, request: Request) -> Response:
        refusal, fault = door.admit(request, shop)
        if refusal:
            return refusal
        params = request.query_params
        try:
            limit = int(params.get("limit", DEFAULT_PAGE_SIZE))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_PAGE_SIZE:
            return door.reply(shop, 400, LIMIT_OUT_OF_RANGE_BODY)
        offset, filters = 0, {k: params[k] for k in ("status", *TIME_FILTERS) if k in params}
        if "page_info" in params:
            if set(params) - PARAMS_ALLOWED_WITH_CURSOR:
                return door.reply(shop, 400, INVALID_PAGE_INFO_BODY)
            try:
                filters, offset = _decode_cursor(params["page_info"])
            except (ValueError, KeyError, TypeError):
                return door.reply(shop, 400, INVALID_PAGE_INFO_BODY)
        try:
            status, bounds = _parse_filters(filters)
        except ValueError as error:
            return door.reply(shop, 400, {"errors": {str(error): "Invalid value."}})
        matching = _matching_orders(state, shop, status, bounds)
        page = [render_order(order) for order in matching[offset : offset + limit]]
        fields = params.get("fields")
        if fields:
            wanted = {name.strip() for name in fields.split(",")}
            page = [{k: v for k, v in order.items() if k in wanted} for order in page]
        if is_malformed(fault) and page:
            page[0] = _break(page[0])
        links = []
        if offset + limit < len(matching):
            cursor = _encode_cursor(filters, offset + limit)
            links.append(_page_link(request, shop, version, cursor, limit, fields, "next"))
        if offset > 0:
            cursor = _encode_cursor(filters, max(0, offset - limit))
            links.append(_page_link(request, shop, version, cursor, limit, fields, "previous"))
        headers = {"Link": ", ".join(links)} if links else None  # one page: no Link at all
        return door.reply(shop, 200, {"orders": page}, headers)

    @router.get(PREFIX + "/orders/count.json")
    def count_orders(shop: str, version: str, request: Request) -> Response:
        refusal, fault = door.admit(request, shop)
        if refusal:
            return refusal
        try:
            status, bounds = _parse_filters(dict(request.query_params))
        except ValueError as error:
            return door.reply(shop, 400, {"errors": {str(error): "Invalid value."}})
        count = len(_matching_orders(state, shop, status, bounds))
        return door.reply(shop, 200, {"count": count}, garble=is_malformed(fault))

    def order_resource(shop: str, order_id: str, request: Request, render) -> Response:
        refusal, fault = door.admit(request, shop)
        if refusal:
            return refusal
        with state.lock:
            order = _find_order(state, shop, int(order_id)) if order_id.isdigit() else None
            body = render(order) if order else None
        if body is None:
            return door.reply(shop, 404, NOT_FOUND_BODY)
        return door.reply(shop, 200, body, garble=is_malformed(fault))

    @router.get(PREFIX + "/orders/{order_id}/fulfillment_orders.json")
    def list_fulfillment_orders(shop: str, version: str, order_id: str, request: Request):
        # One fulfillment order per order: the sandbox shop ships from one location.
        return order_resource(
            shop, order_id, request,
            lambda order: {"fulfillment_orders": [render_fulfillment_order(order)]},
        )

    @router.get(PREFIX + "/orders/{order_id}/fulfillments.json")
    def list_fulfillments(shop: str, version: str, order_id: str, request: Request):
        return order_resource(shop, order_id, request,
                              lambda order: {"fulfillments": _fulfillments(order)})

    def fulfil(shop: str, request: Request, raw_body: bytes) -> Response:
        refusal, fault = door.admit(request, shop)
        if refusal:
            return refusal
        try:
            spec = json.loads(raw_body)["fulfillment"]
            groups = spec["line_items_by_fulfillment_order"]
            ids = [int(group["fulfillment_order_id"]) for group in groups]
            tracking = spec.get("tracking_info") or {}
            if not ids or not isinstance(tracking, dict):
                raise ValueError("nothing to fulfil")
        except (ValueError, KeyError, TypeError):
            return door.reply(shop, 400, MISSING_FULFILLMENT_BODY)
        with state.lock:
            orders = [
                _find_order(state, shop, fo_id // ID_FACTOR) if fo_id % ID_FACTOR == 0 else None
                for fo_id in ids
            ]
            if None in orders or len({order.order_id for order in orders}) != 1:
                return door.reply(shop, 404, NOT_FOUND_BODY)
            order = orders[0]
            if order.status not in FULFILLABLE_SIM_STATUSES:
                message = CLOSED_FULFILLMENT_ORDER_ERROR.format(id=order.order_id * ID_FACTOR)
                return door.reply(shop, 422, {"errors": [message]})
            now = datetime.now(timezone.utc)
            numbers = tracking.get("numbers") or []
            entry = {
                "company": tracking.get("company"),
                "tracking_number": tracking.get("number") or (numbers[0] if numbers else None),
                "url": tracking.get("url"), "shipped_at": now, "platform": PLATFORM,
                "fulfillment_id": order.order_id * ID_FACTOR + len(order.tracking) + 1,
                "notify_customer": bool(spec.get("notify_customer", False)),
            }
            order.tracking.append(entry)
            order.status, order.updated_at = "shipped", now
            fulfillment = _render_fulfillment(order, len(order.tracking), entry)
        return door.reply(shop, 201, {"fulfillment": fulfillment}, garble=is_malformed(fault))

    @router.post(PREFIX + "/fulfillments.json", status_code=201)
    async def create_fulfillment(shop: str, version: str, request: Request) -> Response:
        # Read the body here, then work in a thread: a latency fault sleeps.
        raw_body = await request.body()
        return await run_in_threadpool(fulfil, shop, request, raw_body)

    return router
