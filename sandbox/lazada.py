"""Lazada Open Platform simulator: signed REST calls under `/lazada/rest/<api path>`.

It follows reference §4: HMAC-SHA256 over the api path and the sorted parameters
(uppercase hex), the `{code:"0", data, request_id}` envelope and `{type, code, message}`
errors, ISO-8601 update windows paged by offset/limit (limit ≤ 100, offset ≤ 5000), one
order item per unit, tokens of 30 days refreshed at `/auth/token/refresh` with a
180-day refresh token, and tracking written back with the legacy `/order/rts`. The real
host is `api.lazada.<country>/rest` (tokens on `auth.lazada.com/rest`); here both sit
under the sandbox's `/lazada/rest`. How an order is dressed lives in
`sandbox.lazada_render`.

For stock sync it serves `/products/get` (offset/limit paging, limit ≤ 50, each product
with its `skus`) and `/product/stock/sellable/update`, whose form field `payload` is the
documented XML of up to 50 `<Sku>` (ItemId, SkuId, SellerSku, SellableQuantity) that set
the sellable quantity absolutely.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import uuid
import xml.etree.ElementTree as ElementTree
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sandbox.generator import DEFAULT_SKUS
from sandbox.lazada_render import (  # noqa: F401  STATUS_VALUES re-exported for tests
    ITEM_IDS_PER_ORDER, RTS_SOURCE, STATUS_VALUES, item_ids, lazada_order_id, product_item_id,
    product_sku_id, render_items, render_order, render_product, spoil, status_value, token_body,
)
from sandbox.markets import THAILAND
from sandbox.model import SandboxState, SimOrder

PLATFORM = "lazada"
MARKET = THAILAND
REST_PREFIX = "/lazada/rest"
MAX_LIMIT = 100  # [M] orders/get limit
MAX_OFFSET = 5000  # [M] orders/get offset; past it, move the window instead
# [M] an online app's tokens (a test app's live 7 and 14 days; the sandbox grants online ones)
ACCESS_LIFETIME, REFRESH_LIFETIME = timedelta(days=30), timedelta(days=180)


@dataclass(frozen=True)
class LazadaError:
    code: str
    message: str
    type: str = "ISV"


# [H] codes and the access-token message; their `type` (ISV) is UNVERIFIED.
TOKEN_INVALID = LazadaError("IllegalAccessToken",
                            "The specified access token is invalid or expired")
REFRESH_INVALID = LazadaError("IllegalRefreshToken", "The specified refresh token is invalid")
# Error `type`s (Lazada doc 108138 [M]): SYSTEM the API platform's checks, ISV business
# data, ISP the backend service ("try again after some time").
CLOCK_SKEW_LIMIT = timedelta(seconds=7200)  # [M] Lazada doc 108067 "should not exceed 7200 s"
# --- UNVERIFIED (reference [L] or silent): error codes, types, messages and limits -------
THROTTLED = LazadaError("ApiCallLimit", "The request has exceeded the limit of this api, "
                        "please retry after {seconds} seconds", "SYSTEM")  # code: reference [L]
BAD_SIGNATURE = LazadaError(  # the message is as a developer quotes it; the code is a guess
    "IncompleteSignature", "The request signature does not conform to lazada standards", "SYSTEM")
UNKNOWN_APP = LazadaError("InvalidAppKey", "The specified app key is invalid", "SYSTEM")
STALE_TIMESTAMP = LazadaError("InvalidTimestamp", "The timestamp is out of range", "SYSTEM")
UNKNOWN_API = LazadaError("InvalidApiPath", "The specified api path does not exist", "SYSTEM")
MISSING_PARAMETER = LazadaError("MissingParameter", "A required parameter is missing")
BAD_PARAMETER = LazadaError("InvalidParameter", "A parameter is invalid")
ORDER_NOT_FOUND = LazadaError("ORDER_NOT_FOUND", "Order not found")
NOT_SHIPPABLE = LazadaError("ORDER_ITEM_STATUS_INVALID", "Order item status does not allow this")
UNKNOWN_PROVIDER = LazadaError("INVALID_SHIPMENT_PROVIDER", "Shipment provider is not valid")
THROTTLE_HTTP_STATUS = 200  # error envelopes come with HTTP 200, throttling included
# /products/get and /product/stock/sellable/update: codes and messages [H] (the API pages'
# error tables); that they come with type ISV is UNVERIFIED.
INVALID_LIMIT = LazadaError("19", "E019: Invalid Limit")
INVALID_OFFSET = LazadaError("14", "E014: Invalid Offset")
INVALID_FILTER = LazadaError("36", "E036: Invalid status filter")
BAD_SKU_LIST = LazadaError("70", "E070: You have corrupt data in your sku seller list.")
BAD_PAYLOAD = LazadaError("5", "E005: Invalid Request Format")
EMPTY_PAYLOAD = LazadaError("30", "E030: Empty Request")
TOO_MANY_SKUS = LazadaError("204", "E204: Too many SKU in one request")
UPDATE_FAILED = LazadaError("501", "E501: Update product failed")
MAX_PRODUCT_LIMIT = 50  # [H] /products/get limit
MAX_PRODUCT_OFFSET = 10_000  # [H]
MAX_SKUS_PER_STOCK_UPDATE = 50  # [H]
PRODUCT_FILTERS = ("all", "live", "inactive", "deleted", "pending", "rejected", "sold-out")
# UNVERIFIED: the `detail` entries of a 501 (Lazada says only that they name the SKU and
# the cause): {field, message, seller_sku, sku_id}. The SKUs of the payload that were
# fine are set even though the answer is the 501.
UNKNOWN_SKU_DETAIL = "SKU_NOT_FOUND"
NEGATIVE_QUANTITY_DETAIL = "Quantity cannot be negative"
MAX_ORDER_IDS_PER_ITEMS_CALL = 50  # /orders/items/get order_ids
DEFAULT_SORT = ("created_at", "DESC")
# update_after and update_before both include their second.
DELIVERY_TYPES = ("dropship", "pickup", "send_to_warehouse")
# Provider names /order/rts accepts, as /order/shipment/providers/get lists them.
SHIPMENT_PROVIDERS = ("Lazada Express", "Ninja Van", "J&T Express", "Flash Express",
                      "DHL eCommerce", "Kerry Express", "Thailand Post")
# A refresh keeps the refresh token (same expiry) and issues a new access token; the old
# access token stays valid until its own end.
TOKEN_PREFIX = "50000"  # Lazada tokens start so in samples; keeps other platforms' out
# --- end UNVERIFIED


class Refusal(Exception):
    def __init__(self, error: LazadaError, detail: str | list[dict] = "", **fill: object) -> None:
        super().__init__(error.code)
        self.error, self.detail, self.fill = error, detail, fill


def sign(api_path: str, params: dict[str, str], app_secret: str) -> str:
    """Written apart from the connector's signer so each checks the other."""
    text = api_path + "".join(k + params[k] for k in sorted(params) if k != "sign")
    return hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


# ---- parameters -----------------------------------------------------------------------


def _int(params: dict, name: str, default: int) -> int:
    try:
        return int(params.get(name) or default)
    except ValueError:
        raise Refusal(BAD_PARAMETER, name) from None


def _moment(params: dict, name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Refusal(BAD_PARAMETER, f"{name} is not ISO-8601") from None
    if moment.tzinfo is None:
        raise Refusal(BAD_PARAMETER, f"{name} needs a UTC offset")
    return moment


def _id_list(params: dict, name: str) -> list[int]:
    try:
        ids = json.loads(params.get(name) or "")
    except ValueError:
        raise Refusal(MISSING_PARAMETER if not params.get(name) else BAD_PARAMETER, name) from None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise Refusal(BAD_PARAMETER, f"{name} must be a list of ids like [1,2]")
    return ids


def _seconds(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


# ---- the shop's orders, sorted once -------------------------------------------------


@dataclass
class _Book:
    members: list[SimOrder]
    stamps: list[tuple[datetime, datetime]]
    timelines: dict[str, tuple[list[int], list[SimOrder]]] = field(default_factory=dict)
    by_id: dict[int, SimOrder] = field(default_factory=dict)


class OrderIndex:
    """Each shop's orders sorted by created and updated time, and found by Lazada id.

    Rebuilt when the shop's list or any order's times differ from the last look (tests and
    the generator change orders in place), so a page costs a bisect plus its orders.
    Callers hold `state.lock`.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._books: dict[str, _Book] = {}

    def _book(self, shop: str) -> _Book:
        orders = self.state.shop_orders(shop)
        stamps = [(o.created_at, o.updated_at) for o in orders]
        book = self._books.get(shop)
        if book is None or book.members != orders or book.stamps != stamps:
            book = self._books[shop] = _Book(list(orders), stamps)
        return book

    def in_window(self, shop: str, clock: str, start: int, end: int) -> list[SimOrder]:
        """Orders whose `clock` ("created_at"/"updated_at") second lies in [start, end]."""
        book = self._book(shop)
        if clock not in book.timelines:
            keyed = sorted((_seconds(getattr(o, clock)), o.order_id, n)
                           for n, o in enumerate(book.members))
            book.timelines[clock] = ([k[0] for k in keyed], [book.members[k[2]] for k in keyed])
        seconds, ordered = book.timelines[clock]
        return ordered[bisect_left(seconds, start): bisect_right(seconds, end)]

    def find(self, shop: str, order_ids: list[int]) -> list[SimOrder | None]:
        """The orders of these Lazada ids (None for unknown ones), one index check for all."""
        book = self._book(shop)
        if any(book.by_id.get(i) is None or lazada_order_id(book.by_id[i]) != i for i in order_ids):
            book.by_id = {}  # unknown, or an id was edited: look again
            for order in book.members:
                book.by_id.setdefault(lazada_order_id(order), order)
        return [book.by_id.get(i) for i in order_ids]


# ---- APIs -----------------------------------------------------------------------------


WINDOW_KEYS = {"updated_at": ("update_after", "update_before"),
               "created_at": ("created_after", "created_before")}


def list_orders(index: OrderIndex, shop: str, params: dict) -> dict:
    clock = "updated_at" if params.get("update_after") else "created_at"
    after_key, before_key = WINDOW_KEYS[clock]
    after, before = _moment(params, after_key), _moment(params, before_key)
    if after is None:
        raise Refusal(MISSING_PARAMETER, "created_after or update_after")
    offset, limit = _int(params, "offset", 0), _int(params, "limit", MAX_LIMIT)
    if not 0 <= offset <= MAX_OFFSET or not 1 <= limit <= MAX_LIMIT:
        raise Refusal(BAD_PARAMETER, f"offset must be 0..{MAX_OFFSET} and limit 1..{MAX_LIMIT}")
    sort_by = params.get("sort_by") or DEFAULT_SORT[0]
    direction = (params.get("sort_direction") or DEFAULT_SORT[1]).upper()
    if sort_by not in ("created_at", "updated_at") or direction not in ("ASC", "DESC"):
        raise Refusal(BAD_PARAMETER, "sort_by or sort_direction")
    wanted = params.get("status") or "all"
    end = _seconds(before) if before else 2**62
    with index.state.lock:
        matches = index.in_window(shop, clock, _seconds(after), end)
        if wanted != "all":
            matches = [o for o in matches if status_value(o) == wanted]
        if sort_by != clock:
            matches = sorted(matches, key=lambda o: (getattr(o, sort_by), o.order_id))
        if direction == "DESC":
            matches = matches[::-1]
        orders = [render_order(o) for o in matches[offset: offset + limit]]
    return {"count": len(orders), "countTotal": len(matches), "orders": orders}


def _order(index: OrderIndex, shop: str, order_id: int) -> SimOrder:
    [order] = index.find(shop, [order_id])
    if order is None:
        raise Refusal(ORDER_NOT_FOUND, str(order_id))
    return order


def get_order(index: OrderIndex, shop: str, params: dict) -> dict:
    with index.state.lock:
        return render_order(_order(index, shop, _int(params, "order_id", 0)))


def order_items(index: OrderIndex, shop: str, params: dict) -> list[dict]:
    with index.state.lock:
        return render_items(_order(index, shop, _int(params, "order_id", 0)))


def many_order_items(index: OrderIndex, shop: str, params: dict) -> list[dict]:
    ids = _id_list(params, "order_ids")
    if len(ids) > MAX_ORDER_IDS_PER_ITEMS_CALL:
        raise Refusal(BAD_PARAMETER, f"at most {MAX_ORDER_IDS_PER_ITEMS_CALL} order_ids")
    with index.state.lock:
        unique = list(dict.fromkeys(ids))
        return [{"order_id": i, "order_number": i, "order_items": render_items(o)}
                for i, o in zip(unique, index.find(shop, unique)) if o is not None]


def shipment_providers(index: OrderIndex, shop: str, params: dict) -> dict:
    return {"shipment_providers": [
        {"name": name, "cod": 1, "is_default": int(n == 0), "tracking_code_example": "",
         "api_version": 1} for n, name in enumerate(SHIPMENT_PROVIDERS)]}


def ready_to_ship(index: OrderIndex, shop: str, params: dict) -> dict:
    wanted_ids = _id_list(params, "order_item_ids")
    provider = params.get("shipment_provider", "")
    tracking_number = params.get("tracking_number", "").strip()
    if params.get("delivery_type") not in DELIVERY_TYPES or not tracking_number:
        raise Refusal(MISSING_PARAMETER, "delivery_type and tracking_number")
    if provider not in SHIPMENT_PROVIDERS:
        raise Refusal(UNKNOWN_PROVIDER, provider)
    with index.state.lock:
        # An item id carries its order's id, so the order is found without a scan.
        order = _order(index, shop, wanted_ids[0] // ITEM_IDS_PER_ORDER)
        if not set(wanted_ids) <= set(item_ids(order)):
            raise Refusal(BAD_PARAMETER, "order_item_ids do not all belong to one order")
        if order.status != "paid":
            raise Refusal(NOT_SHIPPABLE, status_value(order))
        now = datetime.now(timezone.utc)
        order.tracking.append({
            "platform": PLATFORM, "source": RTS_SOURCE, "shipment_provider": provider,
            "tracking_number": tracking_number, "order_item_ids": wanted_ids, "shipped_at": now,
        })
        order.status, order.updated_at = "shipped", now
    return {"order_items": [{"order_item_id": i, "purchase_order_id": 0,
                             "purchase_order_number": ""} for i in wanted_ids]}


# ---- the shop's products ---------------------------------------------------------------

_TITLES = {item.sku: item.title for item in DEFAULT_SKUS}


def list_products(index: OrderIndex, shop: str, params: dict) -> dict:
    wanted = params.get("filter") or ""
    if wanted not in PRODUCT_FILTERS:
        raise Refusal(INVALID_FILTER)
    try:
        limit, offset = int(params.get("limit") or 10), int(params.get("offset") or 0)
    except ValueError:
        raise Refusal(BAD_PARAMETER, "limit and offset are numbers") from None
    if not 1 <= limit <= MAX_PRODUCT_LIMIT:
        raise Refusal(INVALID_LIMIT)
    if not 0 <= offset <= MAX_PRODUCT_OFFSET:
        raise Refusal(INVALID_OFFSET)
    skus = index.state.listed_skus(shop)
    if params.get("sku_seller_list"):
        try:
            only = json.loads(params["sku_seller_list"])
        except ValueError:
            raise Refusal(BAD_SKU_LIST) from None
        if not isinstance(only, list):
            raise Refusal(BAD_SKU_LIST)
        skus = [sku for sku in skus if sku in only]
    # Every sandbox product is live with stock or sold out: filters that name other
    # states find nothing.
    if wanted not in ("all", "live", "sold-out"):
        skus = []
    with index.state.lock:
        levels = dict(index.state.stock_levels.get(shop, {}))
    if wanted == "sold-out":
        skus = [sku for sku in skus if levels.get(sku, 0) == 0]
    country = _country(index.state, shop)
    products = [render_product(shop, sku, _TITLES.get(sku, sku), levels.get(sku, 0), country)
                for sku in skus[offset : offset + limit]]
    return {"total_products": str(len(skus)), "products": products}


def _stock_payload(params: dict) -> list[dict[str, str]]:
    """The <Sku> entries of a sellable-quantity payload, each as tag -> text."""
    text = params.get("payload", "").strip()
    if not text:
        raise Refusal(EMPTY_PAYLOAD)
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        raise Refusal(BAD_PAYLOAD) from None
    entries = root.findall("./Product/Skus/Sku") if root.tag == "Request" else []
    if not entries:
        raise Refusal(EMPTY_PAYLOAD)
    if len(entries) > MAX_SKUS_PER_STOCK_UPDATE:
        raise Refusal(TOO_MANY_SKUS)
    return [{child.tag: (child.text or "").strip() for child in entry} for entry in entries]


def update_sellable_quantity(index: OrderIndex, shop: str, params: dict) -> dict:
    entries = _stock_payload(params)
    by_ids = {(str(product_item_id(shop, sku)), str(product_sku_id(shop, sku))): sku
              for sku in index.state.listed_skus(shop)}
    try:  # a payload that cannot be read sets nothing
        quantities = [int(entry.get("SellableQuantity", "")) for entry in entries]
    except ValueError:
        raise Refusal(BAD_PAYLOAD) from None
    refused = []
    for entry, quantity in zip(entries, quantities):
        sku = by_ids.get((entry.get("ItemId", ""), entry.get("SkuId", "")))
        named = entry.get("SellerSku")
        cause = None
        if sku is None or (named and named != sku):
            cause = ("SkuId", UNKNOWN_SKU_DETAIL)
        elif quantity < 0:
            cause = ("SellableQuantity", NEGATIVE_QUANTITY_DETAIL)
        if cause:
            refused.append({"field": cause[0], "message": cause[1], "seller_sku": named or "",
                            "sku_id": entry.get("SkuId", "")})
        else:
            index.state.set_stock(shop, sku, quantity)
    if refused:
        raise Refusal(UPDATE_FAILED, refused)
    return {}


API_HANDLERS = {
    "/orders/get": list_orders,
    "/order/get": get_order,
    "/order/items/get": order_items,
    "/orders/items/get": many_order_items,
    "/order/shipment/providers/get": shipment_providers,
    "/order/rts": ready_to_ship,
    "/products/get": list_products,
    "/product/stock/sellable/update": update_sellable_quantity,
}
TOKEN_PATHS = ("/auth/token/refresh",)


def refresh_token(state: SandboxState, params: dict) -> dict:
    """Answered flat, not inside `data` (reference §4.3)."""
    now = datetime.now(timezone.utc)
    refresh = params.get("refresh_token", "")
    record = state.redeem(refresh, now) if refresh.startswith(TOKEN_PREFIX) else None
    if record is None:
        raise Refusal(REFRESH_INVALID)
    granted = state.grant(record.shop, now, ACCESS_LIFETIME, prefix=TOKEN_PREFIX)
    expires_in = int(ACCESS_LIFETIME.total_seconds())
    refresh_expires_in = int((record.expires_at - now).total_seconds())
    return token_body(granted["access_token"], expires_in, refresh, refresh_expires_in,
                      record.shop, _seller_id(record.shop), _country(state, record.shop))


def _seller_id(shop: str) -> str:
    return str(100_000_000 + int(hashlib.sha1(shop.encode()).hexdigest()[:7], 16) % 900_000_000)


def _country(state: SandboxState, shop: str) -> str:
    """The seller's country: where its orders go, else the platform's default market."""
    with state.lock:
        orders = state.shop_orders(shop)
        return orders[0].country_code if orders else MARKET.country


# ---- the gateway ----------------------------------------------------------------------


def authenticate(
    state: SandboxState, api_path: str, params: dict, expired_by_fault: bool
) -> str | None:
    """App key, signature, clock, api path and token, in that order; returns the shop."""
    secret = state.app_secrets.get(params.get("app_key", ""))
    if secret is None:
        raise Refusal(UNKNOWN_APP)
    signed = hmac.compare_digest(params.get("sign", ""), sign(api_path, params, secret))
    if params.get("sign_method") != "sha256" or not signed:
        raise Refusal(BAD_SIGNATURE)
    stamp_ms = _int(params, "timestamp", 0)
    skew_ms = abs(datetime.now(timezone.utc).timestamp() * 1000 - stamp_ms)
    if skew_ms > CLOCK_SKEW_LIMIT.total_seconds() * 1000:
        raise Refusal(STALE_TIMESTAMP)
    if api_path not in API_HANDLERS and api_path not in TOKEN_PATHS:
        raise Refusal(UNKNOWN_API, api_path)
    if api_path in TOKEN_PATHS:
        return None
    token = params.get("access_token", "")
    known = state.tokens.get(token) if token.startswith(TOKEN_PREFIX) else None
    if expired_by_fault or known is None or known.expires_at <= datetime.now(timezone.utc):
        raise Refusal(TOKEN_INVALID)
    return known.shop


def error_body(refusal: Refusal) -> dict:
    error = refusal.error
    message = error.message.format(**refusal.fill) if refusal.fill else error.message
    body = {"type": error.type, "code": error.code, "message": message,
            "request_id": uuid.uuid4().hex[:13]}
    if isinstance(refusal.detail, list):  # per-SKU causes, as the 501 of a stock update has
        body["detail"] = refusal.detail
    elif refusal.detail:
        body["detail"] = [{"message": refusal.detail}]
    return body


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        params.update(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    return params


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()
    index = OrderIndex(state)

    @router.api_route(REST_PREFIX + "/{api_path:path}", methods=["GET", "POST"])
    async def lazada_rest(api_path: str, request: Request) -> Response:
        api_path = "/" + api_path.strip("/")
        params = await _params(request)
        fault = state.faults.take(PLATFORM)
        kind = fault.kind if fault else None
        if kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        if kind == "server_error":
            return PlainTextResponse("502 Bad Gateway", status_code=502)
        try:
            if kind == "rate_limit":
                raise Refusal(THROTTLED, seconds=fault.retry_after)
            shop = authenticate(state, api_path, params, expired_by_fault=kind == "expired_token")
            if api_path in TOKEN_PATHS:
                return JSONResponse(refresh_token(state, params))
            data = API_HANDLERS[api_path](index, shop, params)
        except Refusal as refusal:
            status = THROTTLE_HTTP_STATUS if refusal.error is THROTTLED else 200
            return JSONResponse(error_body(refusal), status_code=status)
        body = {"code": "0", "data": data, "request_id": uuid.uuid4().hex[:13]}
        if kind == "malformed":
            spoiled = spoil(body)
            if spoiled is None:  # nothing order-shaped: send a cut-off body instead
                return Response(json.dumps(body)[:20], media_type="application/json")
            body = spoiled
        return JSONResponse(body)

    return router


def base_path(shop: str) -> str:
    return "/lazada"  # one host per country; the access token names the seller


def register_shop(state: SandboxState, shop: str, now: datetime) -> dict:
    """Authorise a fresh online app for the seller: 30-day access, 180-day refresh token."""
    app_key = str(100_000 + secrets.randbelow(900_000))
    app_secret = secrets.token_urlsafe(24)
    with state.lock:
        state.app_secrets[app_key] = app_secret
    granted = state.grant(shop, now, ACCESS_LIFETIME, REFRESH_LIFETIME, prefix=TOKEN_PREFIX)
    return {
        "app_key": app_key, "app_secret": app_secret,
        "access_token": granted["access_token"], "refresh_token": granted["refresh_token"],
        "seller_id": _seller_id(shop), "country": _country(state, shop).lower(),
    }
