"""Shopify Admin REST simulator: orders, fulfillment orders, fulfillments and inventory.

The sandbox is one host, so a shop is addressed by a path prefix:
`{sandbox}/shopify/{shop}/admin/api/{version}/...` stands for
`https://{shop}.myshopify.com/admin/api/{version}/...`. Below the prefix it follows the
REST Admin API as described in reference/marketplace-apis.md §1: the access-token header
and its 401 body, cursor pagination through the `Link` header, the call-limit header.
How an order looks on the wire lives in `sandbox.shopify_render`.

Stock sync rides on three more REST resources: `products.json` (each variant with its
seller SKU and `inventory_item_id`, cursor-paged like orders), `locations.json` and
`inventory_levels/set.json`, which sets the absolute `available` quantity of one
inventory item at one location.

Choices the reference leaves open, each made in one place below:
- the call-limit bucket is reported on every response but only an armed `rate_limit`
  fault answers 429, so test runs never depend on how fast the machine is;
- a listing is fixed when its first page is served (`_Listings`): later pages slice it,
  so paging costs what a page costs. Orders that change meanwhile keep their place and
  show their new content; a repeated order is still served twice;
- products are sorted by id and paged by offset inside the cursor: the catalogue only
  grows at its end, so nothing shifts while a client pages;
- set.json refuses a negative `available` (the GraphQL twin inventorySetQuantities has
  INVALID_QUANTITY_NEGATIVE) and an inventory item or location the shop does not have,
  each with 422 and an `errors` body whose wording is the sandbox's own.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from sandbox.generator import DEFAULT_SKUS
from sandbox.model import Fault, SandboxState, SimOrder, SimToken
# render_order, render_fulfillment_order and financial_status are re-exported: callers
# (and tests) know them from this module.
from sandbox.shopify_render import (
    FULFILLABLE_SIM_STATUSES,
    ID_FACTOR,
    SHOP_TIMEZONE,
    SHOP_LOCATION_ID,
    PageSpot,
    aware,
    broken_copy,
    decode_cursor,
    inventory_item_id_of,
    is_closed,
    link_header,
    render_fulfillment,
    render_fulfillment_order,
    render_fulfillments,
    render_inventory_level,
    render_location,
    render_order,
    render_product,
)

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
# Listings kept for their cursors; an older cursor still works, its listing is recomputed.
LISTING_CAPACITY = 64

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
# [L] wording of the inventory_levels/set.json refusals (the 422 status is [M]).
NEGATIVE_AVAILABLE_BODY = {"errors": {"available": ["must be greater than or equal to 0"]}}
UNKNOWN_INVENTORY_ITEM_BODY = {"errors": ["Inventory item does not exist"]}
UNKNOWN_LOCATION_BODY = {"errors": ["Location does not exist"]}
MISSING_INVENTORY_LEVEL_BODY = {
    "errors": {"inventory_item_id": "Required parameter missing or invalid"}}
SERVER_ERROR_STATUS = 503
SERVER_ERROR_BODY = {"errors": "Service Unavailable"}

TIME_FILTERS = ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max")
PARAMS_ALLOWED_WITH_CURSOR = {"page_info", "limit", "fields"}
STATUS_FILTERS: dict[str, Callable[[SimOrder], bool]] = {
    "open": lambda order: not is_closed(order),
    "closed": is_closed,
    "cancelled": lambda order: order.status == "cancelled",
    "any": lambda order: True,
}
_CATALOGUE = {item.sku: item for item in DEFAULT_SKUS}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_SECOND = timedelta(seconds=1)


def base_path(shop: str) -> str:
    return f"/shopify/{shop}"


def shop_base_url(sandbox_url: str, shop: str) -> str:
    """The connector's base_url for a sandbox shop (`https://{shop}.myshopify.com` for real)."""
    return f"{sandbox_url.rstrip('/')}/shopify/{shop}"


def register_shop(state: SandboxState, shop: str, now: datetime) -> dict:
    """Install the app on a shop: issue the offline access token the connector will send."""
    token = TOKEN_PREFIX + secrets.token_hex(16)
    with state.lock:
        state.tokens[token] = SimToken(shop=shop, expires_at=now + OFFLINE_TOKEN_LIFETIME)
    return {"access_token": token}


# ---------------------------------------------------------------- order-list queries


def _parse_time_param(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=SHOP_TIMEZONE)


class _BadRequest(Exception):
    """A 400 answer with this body."""

    def __init__(self, body: dict) -> None:
        super().__init__(body)
        self.body = body


def _parse_filters(filters: dict[str, str]) -> tuple[str, dict[str, datetime]]:
    """Validate the list filters; a bad one is a _BadRequest naming the parameter."""
    status = filters.get("status", "open")
    if status not in STATUS_FILTERS:
        raise _BadRequest({"errors": {"status": "Invalid value."}})
    bounds = {}
    for name in TIME_FILTERS:
        if name in filters:
            try:
                bounds[name] = _parse_time_param(filters[name])
            except ValueError:
                raise _BadRequest({"errors": {name: "Invalid value."}}) from None
    return status, bounds


def _epoch_second(value: datetime) -> int:
    # Shopify shows whole seconds, so filters and order compare what a client can see;
    # an int is far cheaper to get and compare than a truncated datetime.
    return (aware(value) - _EPOCH) // _ONE_SECOND


def _second_ranges(bounds: dict[str, datetime]) -> list[tuple[str, float, float]]:
    """Per time field, the inclusive range of whole seconds the bounds let through."""
    ranges: dict[str, list[float]] = {}
    for name, bound in bounds.items():
        field, edge = name.rsplit("_", 1)
        low_high = ranges.setdefault(field, [-math.inf, math.inf])
        if edge == "min":  # a shown second at or after the bound: round the bound up
            low_high[0] = -((_EPOCH - bound) // _ONE_SECOND)
        else:
            low_high[1] = (bound - _EPOCH) // _ONE_SECOND
    return [(field, low, high) for field, (low, high) in ranges.items()]


def _select(state: SandboxState, shop: str, status: str, bounds: dict) -> list[SimOrder]:
    with state.lock:
        orders = list(state.shop_orders(shop))
    status_matches, ranges = STATUS_FILTERS[status], _second_ranges(bounds)
    return [
        order for order in orders
        if status_matches(order) and all(
            low <= _epoch_second(getattr(order, field)) <= high for field, low, high in ranges)
    ]


def _matching_orders(state: SandboxState, shop: str, status: str, bounds: dict) -> list[SimOrder]:
    # A stable sort keeps a repeated order twice, as an update during paging would.
    return sorted(_select(state, shop, status, bounds),
                  key=lambda order: (_epoch_second(order.updated_at), order.order_id))


def _find_order(state: SandboxState, shop: str, order_id: int) -> SimOrder | None:
    """Callers hold `state.lock`."""
    return next((order for order in state.orders.get(shop, []) if order.order_id == order_id), None)


class _Listings:
    """Sorted listings kept under an opaque id, newest last, at most `capacity` of them."""

    def __init__(self, capacity: int = LISTING_CAPACITY) -> None:
        self._capacity = capacity
        self._kept: OrderedDict[str, tuple[str, list[SimOrder]]] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, shop: str, orders: list[SimOrder]) -> str:
        listing_id = secrets.token_urlsafe(9)
        with self._lock:
            self._kept[listing_id] = (shop, orders)
            while len(self._kept) > self._capacity:
                self._kept.popitem(last=False)
        return listing_id

    def find(self, shop: str, listing_id: str | None) -> list[SimOrder] | None:
        with self._lock:
            kept = self._kept.get(listing_id) if listing_id else None
            if kept is None or kept[0] != shop:  # another shop's cursor shows nothing of it
                return None
            self._kept.move_to_end(listing_id)
            return kept[1]


def _read_list_request(params: Any) -> tuple[int, dict[str, str], int, str | None]:
    """limit, filters, offset and listing id of an orders.json request, or _BadRequest."""
    try:
        limit = int(params.get("limit", DEFAULT_PAGE_SIZE))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise _BadRequest(LIMIT_OUT_OF_RANGE_BODY)
    if "page_info" not in params:
        return limit, {k: params[k] for k in ("status", *TIME_FILTERS) if k in params}, 0, None
    if set(params) - PARAMS_ALLOWED_WITH_CURSOR:
        raise _BadRequest(INVALID_PAGE_INFO_BODY)
    try:
        filters, offset, listing_id = decode_cursor(params["page_info"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _BadRequest(INVALID_PAGE_INFO_BODY) from None
    if offset < 0 or not all(isinstance(value, str) for value in filters.values()):
        raise _BadRequest(INVALID_PAGE_INFO_BODY)
    return limit, filters, offset, listing_id


# ---------------------------------------------------------------- the shop's products


def _products(state: SandboxState, shop: str) -> list[dict]:
    """Every product of the shop, one per listed SKU, sorted by id as Shopify pages them."""
    skus = state.listed_skus(shop)
    with state.lock:
        levels = dict(state.stock_levels.get(shop, {}))
    products = []
    for sku in skus:
        # The generator keeps the prices of SKUs outside its catalogue to itself.
        item = _CATALOGUE.get(sku)
        title, price = (item.title, item.price) if item else (sku, Decimal("0"))
        products.append(render_product(shop, sku, title, levels.get(sku, 0), price))
    return sorted(products, key=lambda product: product["id"])


def _sku_of_inventory_item(state: SandboxState, shop: str, inventory_item_id: int) -> str | None:
    return next((sku for sku in state.listed_skus(shop)
                 if inventory_item_id_of(shop, sku) == inventory_item_id), None)


def _read_inventory_level(raw_body: bytes) -> tuple[int, int, int]:
    """location_id, inventory_item_id and available of a set.json body, or _BadRequest."""
    try:
        body = json.loads(raw_body)
        values = [body[name] for name in ("location_id", "inventory_item_id", "available")]
    except (ValueError, KeyError, TypeError):
        raise _BadRequest(MISSING_INVENTORY_LEVEL_BODY) from None
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        raise _BadRequest(MISSING_INVENTORY_LEVEL_BODY)
    location_id, inventory_item_id, available = values
    return location_id, inventory_item_id, available


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
                and aware(known.expires_at) > datetime.now(timezone.utc))


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(tags=["shopify"])
    door = _FrontDoor(state)
    listings = _Listings()

    def is_malformed(fault: Fault | None) -> bool:
        return fault is not None and fault.kind == "malformed"

    @router.get(PREFIX + "/orders.json")
    def list_orders(shop: str, version: str, request: Request) -> Response:
        refusal, fault = door.admit(request, shop)
        if refusal:
            return refusal
        params = request.query_params
        try:
            limit, filters, offset, listing_id = _read_list_request(params)
            status, bounds = _parse_filters(filters)
        except _BadRequest as bad:
            return door.reply(shop, 400, bad.body)
        matching = listings.find(shop, listing_id)
        if matching is None:  # a first page, or a cursor whose listing was dropped
            matching = _matching_orders(state, shop, status, bounds)
            has_other_pages = offset > 0 or offset + limit < len(matching)
            listing_id = listings.keep(shop, matching) if has_other_pages else None
        fields = params.get("fields")
        page = [render_order(order, fields) for order in matching[offset : offset + limit]]
        if is_malformed(fault) and page:
            page[0] = broken_copy(page[0])
        here = PageSpot(filters, listing_id, offset, limit, fields)
        url = f"{str(request.base_url).rstrip('/')}/shopify/{shop}/admin/api/{version}/orders.json"
        link = link_header(url, here, len(matching))
        headers = {"Link": link} if link else None  # one page: no Link at all
        return door.reply(shop, 200, {"orders": page}, headers)

    @router.get(PREFIX + "/orders/count.json")
    def count_orders(shop: str, version: str, request: Request) -> Response:
        refusal, fault = door.admit(request, shop)
        if refusal:
            return refusal
        try:
            status, bounds = _parse_filters(dict(request.query_params))
        except _BadRequest as bad:
            return door.reply(shop, 400, bad.body)
        count = len(_select(state, shop, status, bounds))
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
                              lambda order: {"fulfillments": render_fulfillments(order)})

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
            fulfillment = render_fulfillment(order, len(order.tracking), entry)
        return door.reply(shop, 201, {"fulfillment": fulfillment}, garble=is_malformed(fault))

    @router.post(PREFIX + "/fulfillments.json", status_code=201)
    async def create_fulfillment(shop: str, version: str, request: Request) -> Response:
        # Read the body here, then work in a thread: a latency fault sleeps.
        raw_body = await request.body()
        return await run_in_threadpool(fulfil, shop, request, raw_body)

    @router.get(PREFIX + "/products.json")
    def list_products(shop: str, version: str, request: Request) -> Response:
        refusal, fault = door.admit(request, shop)
        if refusal:
            return refusal
        params = request.query_params
        try:
            limit, _, offset, _ = _read_list_request(params)
        except _BadRequest as bad:
            return door.reply(shop, 400, bad.body)
        products = _products(state, shop)
        fields = params.get("fields")
        wanted = {name.strip() for name in fields.split(",")} if fields else None
        page = [{key: value for key, value in product.items() if wanted is None or key in wanted}
                for product in products[offset : offset + limit]]
        if is_malformed(fault) and page:
            page[0]["variants"] = "[variants unavailable]"
        here = PageSpot({}, None, offset, limit, fields)
        url = f"{str(request.base_url).rstrip('/')}/shopify/{shop}/admin/api/{version}/products.json"
        link = link_header(url, here, len(products))
        return door.reply(shop, 200, {"products": page}, {"Link": link} if link else None)

    @router.get(PREFIX + "/locations.json")
    def list_locations(shop: str, version: str, request: Request) -> Response:
        refusal, fault = door.admit(request, shop)
        if refusal:
            return refusal
        return door.reply(shop, 200, {"locations": [render_location()]},
                          garble=is_malformed(fault))

    def set_inventory_level(shop: str, request: Request, raw_body: bytes) -> Response:
        refusal, fault = door.admit(request, shop)
        if refusal:
            return refusal
        try:
            location_id, inventory_item_id, available = _read_inventory_level(raw_body)
        except _BadRequest as bad:
            return door.reply(shop, 400, bad.body)
        if location_id != SHOP_LOCATION_ID:
            return door.reply(shop, 422, UNKNOWN_LOCATION_BODY)
        sku = _sku_of_inventory_item(state, shop, inventory_item_id)
        if sku is None:
            return door.reply(shop, 422, UNKNOWN_INVENTORY_ITEM_BODY)
        if available < 0:
            return door.reply(shop, 422, NEGATIVE_AVAILABLE_BODY)
        state.set_stock(shop, sku, available)
        level = render_inventory_level(inventory_item_id, available, datetime.now(timezone.utc))
        return door.reply(shop, 200, {"inventory_level": level}, garble=is_malformed(fault))

    @router.post(PREFIX + "/inventory_levels/set.json")
    async def set_inventory(shop: str, version: str, request: Request) -> Response:
        raw_body = await request.body()
        return await run_in_threadpool(set_inventory_level, shop, request, raw_body)

    return router
import sandbox.shopify_after_sales  # noqa: F401,E402  (after-sales: adds the graphql.json route to build_router)
