"""Shopee Open Platform v2 simulator: signed REST calls under `/shopee/api/v2/...`.

It follows reference §3: every call carries partner_id, timestamp and an HMAC-SHA256 sign
in the query (plus access_token and shop_id for shop APIs); answers use the envelope
`{error, message, request_id, response}`; get_order_list pages order_sn by cursor over at
most 15 days; get_order_detail takes at most 50 order_sn; ship_order takes exactly one of
pickup / dropoff / non_integrated; access tokens live 4 hours and refresh tokens 30 days,
each refresh token once. How an order is dressed, and Shopee's error strings, live in
`sandbox.shopee_render`.

The product APIs serve the shop's catalogue: get_item_list pages item ids by offset (at
most 100), get_item_base_info reads up to 50 items (the SKU of an item without models),
get_model_list the models of one item, and update_stock sets the absolute seller stock
of up to 50 models of one item, naming refused models in `failure_list`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sandbox.markets import SINGAPORE
from sandbox.model import SandboxState, SimOrder
from sandbox.shopee_render import (  # noqa: F401  error bodies and rendering, re-exported
    ALREADY_SHIPPED, BAD_REFRESH, BAD_TIMESTAMP, BAD_WINDOW, EXPIRED_TOKEN, ITEM_NOT_FOUND,
    ITEM_STATUSES, LISTED_SINCE, LONG_TRACKING, NEED_PICKUP_SLOT, NEED_TRACKING,
    NEGATIVE_STOCK_REASON, NO_ACCESS_TOKEN, NO_PACKAGE_NUMBER_WANTED, NOT_READY_TO_SHIP,
    ONE_METHOD_ONLY, ORDER_NOT_FOUND, REFRESH_EXPIRED, STALE_TIMESTAMP, STOCK_UPDATE_FAILED,
    THROTTLED, TRACKING_TAKEN, UNKNOWN_TOKEN, UNSUPPORTED_METHOD, WRONG_MODEL_REASON,
    WRONG_PARTNER_OR_SHOP, WRONG_SIGN, CHANNELS, ORDER_STATUS, Channel, ShopeeError,
    bad_parameter, channel_of, item_has_models, model_id_of, order_sn, package_number,
    render_item_base, render_model_list, render_order, seconds, shipping_parameter_answer,
    shop_items, tracking_answer, tracking_number, visible_fields,
)

PLATFORM = "shopee"
MARKET = SINGAPORE
API_PREFIX = "/api/v2"
ROUTE_PREFIX = "/shopee"
ACCESS_TOKEN_LIFETIME = timedelta(hours=4)  # [H] reference §3.3
REFRESH_TOKEN_LIFETIME = timedelta(days=30)  # [H] single use
TIMESTAMP_LIFETIME_SECONDS = 300  # [H] "expires in 5 minutes"
MAX_WINDOW_SECONDS = 15 * 86400  # [H] get_order_list
MAX_PAGE_SIZE = 100  # [H]
MAX_DETAIL_ORDERS = 50  # [H]
MAX_TRACKING_LENGTH = 64  # [H] ship_order_long_tracking_number
MAX_BASE_INFO_ITEMS = 50  # [H] get_item_base_info item_id_list [0,50]
MAX_STOCK_MODELS = 50  # [H] update_stock stock_list "between 1 to 50"


# --- UNVERIFIED (reference [L]: Appendix C, "HTTP status codes used for Shopee errors")
# Gateway refusals are sent as 403, parameter errors as 400, throttling as 429 (without a
# Retry-After header, none is documented), server trouble as 500; business errors of a
# module ("order.", "logistics.") and refresh refusals come with HTTP 200.
HTTP_STATUS = {"error_sign": 403, "error_auth": 403, "invalid_acceess_token": 403,
               "error_param": 400, "error_rate_limit": 429, "error_server": 500}
# The list window includes both time_from and time_to (undocumented), and the list is
# ordered by the chosen time, then by order; next_cursor is the offset (sample "20").
# order_sn unknown to get_order_detail are left out and named in `warning`.
# An unknown access token is error_auth, a known one past its time invalid_acceess_token
# (the reference names both, not which is which); an unknown partner_id, or a shop_id
# that is not the token's shop, is error_auth "Invalid partner_id or shopid.".
# A second ship_order for a shipped order answers logistics.package_already_shipped;
# a path that is no API answers 404 error_not_found.
# get_item_base_info leaves unknown item ids out and names them in `warning`.
# update_stock names an unknown model_id or a negative stock in failure_list and sets the
# item's other models; when no model was set the call fails with
# error_busi_update_stock_failed and the same failure_list.
# --- end


class Refusal(Exception):
    def __init__(self, error: ShopeeError, response: dict | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.response = response or {}  # what the error answer still carries


def sign(partner_key: str, partner_id: str, path: str, timestamp: str,
         access_token: str = "", shop_id: str = "") -> str:
    """Written apart from the connector's signer so each checks the other."""
    base = f"{partner_id}{path}{timestamp}{access_token}{shop_id}".encode("utf-8")
    return hmac.new(partner_key.encode("utf-8"), base, hashlib.sha256).hexdigest()


def shop_id_of(shop: str) -> int:
    """A shop's numeric shop_id, stable for its name, so no table is needed."""
    digest = hashlib.sha1(shop.encode("utf-8")).digest()
    return 100_000_000 + int.from_bytes(digest[:4], "big") % 900_000_000


# ---- parameters ------------------------------------------------------------------------


def _int(params: dict, name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value in (None, ""):
        if default is None:
            raise Refusal(bad_parameter(f"{name} is required"))
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Refusal(bad_parameter(f"{name} is invalid")) from None


def _order_sn_param(params: dict) -> str:
    wanted = params.get("order_sn")
    if not isinstance(wanted, str) or not wanted:
        raise Refusal(bad_parameter("order_sn is required"))
    return wanted


# ---- the shop's orders -----------------------------------------------------------------


class ShopBook:
    """Finds a shop's orders by order_sn; rebuilt when the shop's list grows or shrinks."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._by_sn: dict[str, tuple[int, dict[str, SimOrder]]] = {}

    def find(self, shop: str, wanted: str) -> SimOrder | None:
        orders = self.state.shop_orders(shop)
        size, table = self._by_sn.get(shop, (-1, {}))
        if size != len(orders) or (wanted in table and order_sn(table[wanted]) != wanted):
            table = {}
            for order in orders:
                table.setdefault(order_sn(order), order)
            self._by_sn[shop] = (len(orders), table)
        return table.get(wanted)


CLOCKS = {"update_time": "updated_at", "create_time": "created_at"}
STATUS_FILTER = set(ORDER_STATUS.values()) | {"PROCESSED", "IN_CANCEL", "INVOICE_PENDING"}


def order_list(book: ShopBook, shop: str, params: dict, body: dict) -> dict:
    clock = CLOCKS.get(params.get("time_range_field", ""))
    if clock is None:
        raise Refusal(bad_parameter("time_range_field should be create_time or update_time"))
    time_from, time_to = _int(params, "time_from"), _int(params, "time_to")
    if time_from > time_to or time_to - time_from > MAX_WINDOW_SECONDS:
        raise Refusal(BAD_WINDOW)
    size = _int(params, "page_size")
    offset = _int(params, "cursor", 0)
    if not 1 <= size <= MAX_PAGE_SIZE or offset < 0:
        raise Refusal(bad_parameter(f"page_size should be 1-{MAX_PAGE_SIZE}, cursor an offset"))
    wanted_status = params.get("order_status") or None
    if wanted_status is not None and wanted_status not in STATUS_FILTER:
        raise Refusal(bad_parameter("order_status is invalid"))
    with_status = "order_status" in params.get("response_optional_fields", "").split(",")
    with book.state.lock:
        keyed = sorted(
            (moment, order.order_id, position, order)
            for position, order in enumerate(book.state.shop_orders(shop))
            if time_from <= (moment := seconds(getattr(order, clock))) <= time_to
            and wanted_status in (None, ORDER_STATUS[order.status])
        )
        chosen = [key[3] for key in keyed[offset : offset + size]]
        entries = [{"order_sn": order_sn(o), **({"order_status": ORDER_STATUS[o.status]}
                                                if with_status else {})} for o in chosen]
    more = offset + size < len(keyed)
    return {"response": {"more": more, "next_cursor": str(offset + size) if more else "",
                         "order_list": entries}}


def order_detail(book: ShopBook, shop: str, params: dict, body: dict) -> dict:
    wanted = [sn.strip() for sn in params.get("order_sn_list", "").split(",") if sn.strip()]
    if not 1 <= len(wanted) <= MAX_DETAIL_ORDERS:
        raise Refusal(bad_parameter(f"order_sn_list should have 1-{MAX_DETAIL_ORDERS} order_sn"))
    optional = {f.strip() for f in params.get("response_optional_fields", "").split(",")}
    found, missing = [], []
    with book.state.lock:
        for sn in dict.fromkeys(wanted):
            order = book.find(shop, sn)
            if order is None:
                missing.append(sn)
            else:
                found.append(visible_fields(render_order(order), optional))
    answer: dict = {"response": {"order_list": found}}
    if missing:
        answer["warning"] = [f"order_sn {sn} is not found" for sn in missing]
    return answer


def _shippable(book: ShopBook, shop: str, params: dict) -> SimOrder:
    order = book.find(shop, _order_sn_param(params))
    if order is None:
        raise Refusal(ORDER_NOT_FOUND)
    if order.status in ("shipped", "delivered"):
        raise Refusal(ALREADY_SHIPPED)
    if order.status != "paid":
        raise Refusal(NOT_READY_TO_SHIP)
    return order


def shipping_parameter(book: ShopBook, shop: str, params: dict, body: dict) -> dict:
    with book.state.lock:
        channel = channel_of(_shippable(book, shop, params))
    return {"response": shipping_parameter_answer(channel, MARKET.country)}


def _tracking_for(method: str, details: dict, channel: Channel, order: SimOrder,
                  taken: dict[str, str]) -> str:
    if method == "pickup":
        if not details.get("address_id") or not details.get("pickup_time_id"):
            raise Refusal(NEED_PICKUP_SLOT)
        return f"SPX{order.country_code}{secrets.randbelow(10**12):012d}"  # Shopee issues it
    number = str(details.get("tracking_number") or "").strip()
    if not number:
        raise Refusal(NEED_TRACKING)
    if len(number) > MAX_TRACKING_LENGTH:
        raise Refusal(LONG_TRACKING)
    if taken.get(number, order_sn(order)) != order_sn(order):
        raise Refusal(TRACKING_TAKEN)
    return number


def ship_order(book: ShopBook, shop: str, params: dict, body: dict,
               taken: dict[str, str]) -> dict:
    methods = [m for m in ("pickup", "dropoff", "non_integrated") if m in body]
    if len(methods) != 1:
        raise Refusal(ONE_METHOD_ONLY)
    method, details = methods[0], body[methods[0]]
    if not isinstance(details, dict):
        raise Refusal(bad_parameter(f"{method} should be an object"))
    with book.state.lock:
        order = _shippable(book, shop, body)
        if "package_number" in body:  # the simulator never splits an order
            raise Refusal(NO_PACKAGE_NUMBER_WANTED)
        channel = channel_of(order)
        if channel.mode != method:
            raise Refusal(UNSUPPORTED_METHOD[method])
        number = _tracking_for(method, details, channel, order, taken)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        taken[number] = order_sn(order)
        order.tracking.append({
            "platform": PLATFORM, "method": method, "logistics_channel_id": channel.channel_id,
            "carrier_code": channel.name, "tracking_number": number, "shipped_at": now,
        })
        order.status, order.updated_at = "shipped", now
    return {}


def tracking_number_of(book: ShopBook, shop: str, params: dict, body: dict) -> dict:
    with book.state.lock:
        order = book.find(shop, _order_sn_param(params))
        if order is None:
            raise Refusal(ShopeeError("logistics.invalid_error", "The order is not exist."))
        return {"response": tracking_answer(tracking_number(order))}


# ---- the shop's items -------------------------------------------------------------------


def _listed_items(book: ShopBook, shop: str) -> dict[int, tuple[str, list[str]]]:
    return shop_items(shop, book.state.listed_skus(shop))


def _stock(book: ShopBook, shop: str) -> dict[str, int]:
    with book.state.lock:
        return dict(book.state.stock_levels.get(shop, {}))


def item_list(book: ShopBook, shop: str, params: dict, body: dict) -> dict:
    offset, size = _int(params, "offset"), _int(params, "page_size")
    if not 1 <= size <= MAX_PAGE_SIZE or offset < 0:
        raise Refusal(bad_parameter(f"page_size should be 1-{MAX_PAGE_SIZE}, offset >= 0"))
    statuses = [status for status in params.get("item_status", "").split(",") if status]
    if not statuses or set(statuses) - set(ITEM_STATUSES):
        raise Refusal(bad_parameter("item_status is invalid"))
    since, until = _int(params, "update_time_from", 0), _int(params, "update_time_to", 2**62)
    # Every sandbox item is NORMAL and was last updated when it was listed.
    shown = "NORMAL" in statuses and since <= LISTED_SINCE <= until
    ids = list(_listed_items(book, shop)) if shown else []
    more = offset + size < len(ids)
    entries = [{"item_id": item_id, "item_status": "NORMAL", "update_time": LISTED_SINCE,
                "tag": {"kit": False}} for item_id in ids[offset : offset + size]]
    return {"response": {"item": entries, "total_count": len(ids), "has_next_page": more,
                         "next_offset": offset + size if more else offset + len(entries)}}


def _id_list(text: str, name: str) -> list[int]:
    """Comma-separated ids, with or without the brackets of the doc's samples."""
    try:
        ids = [int(part) for part in text.strip("[] ").replace(" ", ",").split(",") if part]
    except ValueError:
        raise Refusal(bad_parameter(f"{name} is invalid")) from None
    return ids


def item_base_info(book: ShopBook, shop: str, params: dict, body: dict) -> dict:
    wanted = _id_list(params.get("item_id_list", ""), "item_id_list")
    if not 1 <= len(wanted) <= MAX_BASE_INFO_ITEMS:
        raise Refusal(bad_parameter(f"item_id_list should have 1-{MAX_BASE_INFO_ITEMS} ids"))
    items, stock = _listed_items(book, shop), _stock(book, shop)
    found = [render_item_base(shop, item_id, *items[item_id], stock)
             for item_id in dict.fromkeys(wanted) if item_id in items]
    answer: dict = {"response": {"item_list": found}}
    missing = [item_id for item_id in wanted if item_id not in items]
    if missing:
        answer["warning"] = [f"item_id {item_id} is not found" for item_id in missing]
    return answer


def model_list(book: ShopBook, shop: str, params: dict, body: dict) -> dict:
    item_id = _int(params, "item_id")
    listed = _listed_items(book, shop).get(item_id)
    if listed is None:
        raise Refusal(ITEM_NOT_FOUND)
    item, skus = listed
    if not item_has_models(item):
        return {"response": {"tier_variation": [], "model": []}}
    return {"response": render_model_list(shop, skus, _stock(book, shop))}


def _stock_entries(body: dict) -> tuple[int, list[tuple[int, int]]]:
    """item_id and (model_id, stock) pairs of an update_stock body, or an error_param."""
    item_id, entries = body.get("item_id"), body.get("stock_list")
    if not isinstance(item_id, int) or isinstance(item_id, bool):
        raise Refusal(bad_parameter("item_id is required"))
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_STOCK_MODELS:
        raise Refusal(bad_parameter(f"stock_list should have 1-{MAX_STOCK_MODELS} entries"))
    pairs = []
    for entry in entries:
        model_id = entry.get("model_id", 0) if isinstance(entry, dict) else None
        stocks = entry.get("seller_stock") if isinstance(entry, dict) else None
        if not isinstance(model_id, int) or not isinstance(stocks, list) or not stocks or not all(
                isinstance(s, dict) and type(s.get("stock")) is int for s in stocks):
            raise Refusal(bad_parameter("stock_list entries need model_id and seller_stock.stock"))
        pairs.append((model_id, sum(s["stock"] for s in stocks)))
    if len({model_id for model_id, _ in pairs}) != len(pairs):
        raise Refusal(ShopeeError("error_param", "Repeat model_id."))
    return item_id, pairs


def update_stock(book: ShopBook, shop: str, params: dict, body: dict) -> dict:
    item_id, pairs = _stock_entries(body)
    listed = _listed_items(book, shop).get(item_id)
    if listed is None:
        raise Refusal(ITEM_NOT_FOUND)
    item, skus = listed
    sku_of_model = ({model_id_of(shop, sku): sku for sku in skus} if item_has_models(item)
                    else {0: skus[0]})
    failures, successes = [], []
    for model_id, stock in pairs:
        sku = sku_of_model.get(model_id)
        if sku is None:
            failures.append({"model_id": model_id, "failed_reason": WRONG_MODEL_REASON})
        elif stock < 0:
            failures.append({"model_id": model_id, "failed_reason": NEGATIVE_STOCK_REASON})
        else:
            book.state.set_stock(shop, sku, stock)
            successes.append({"model_id": model_id, "location_id": "", "stock": stock})
    answer = {"failure_list": failures, "success_list": successes}
    if not successes:
        raise Refusal(STOCK_UPDATE_FAILED, response=answer)
    return {"response": answer}


def refresh_access_token(state: SandboxState, params: dict, body: dict) -> dict:
    if str(body.get("partner_id", "")) != params.get("partner_id"):
        raise Refusal(bad_parameter("partner_id in body does not match the query"))
    refresh, now = str(body.get("refresh_token") or ""), datetime.now(timezone.utc)
    known = state.refresh_tokens.get(refresh)
    if known is not None and known.expires_at <= now:
        raise Refusal(REFRESH_EXPIRED)
    if known is None or str(shop_id_of(known.shop)) != str(body.get("shop_id", "")):
        raise Refusal(BAD_REFRESH)
    if state.redeem(refresh, now) is None:  # already spent: single use
        raise Refusal(BAD_REFRESH)
    granted = state.grant(known.shop, now, ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME,
                          single_use_refresh=True)
    return {"partner_id": int(params["partner_id"]), "shop_id": shop_id_of(known.shop),
            "access_token": granted["access_token"], "refresh_token": granted["refresh_token"],
            "expire_in": int(ACCESS_TOKEN_LIFETIME.total_seconds())}


# ---- the gateway -----------------------------------------------------------------------

PUBLIC_APIS = {("POST", "/api/v2/auth/access_token/get")}


def authenticate(state: SandboxState, api_path: str, params: dict, public: bool,
                 expired_by_fault: bool) -> str | None:
    """Check partner, clock, sign and token in the gateway's order; return the shop."""
    partner_id = params.get("partner_id", "")
    partner_key = state.app_secrets.get(partner_id) if partner_id.isdigit() else None
    if partner_key is None:
        raise Refusal(WRONG_PARTNER_OR_SHOP)
    try:
        timestamp = int(params.get("timestamp", ""))
    except ValueError:
        raise Refusal(BAD_TIMESTAMP) from None
    if abs(datetime.now(timezone.utc).timestamp() - timestamp) > TIMESTAMP_LIFETIME_SECONDS:
        raise Refusal(STALE_TIMESTAMP)
    token = "" if public else params.get("access_token", "")
    shop_id = "" if public else params.get("shop_id", "")
    expected = sign(partner_key, partner_id, api_path, params["timestamp"], token, shop_id)
    if not hmac.compare_digest(params.get("sign", ""), expected):
        raise Refusal(WRONG_SIGN)
    if public:
        return None
    if not token:
        raise Refusal(NO_ACCESS_TOKEN)
    known = state.tokens.get(token)
    if known is None:
        raise Refusal(UNKNOWN_TOKEN)
    if expired_by_fault or known.expires_at <= datetime.now(timezone.utc):
        raise Refusal(EXPIRED_TOKEN)
    if str(shop_id_of(known.shop)) != shop_id:
        raise Refusal(WRONG_PARTNER_OR_SHOP)
    return known.shop


def error_response(refusal: Refusal) -> JSONResponse:
    error = refusal.error
    body = {"request_id": uuid.uuid4().hex, "error": error.error, "message": error.message,
            "response": refusal.response}
    return JSONResponse(body, status_code=HTTP_STATUS.get(error.error, 200))


def spoil(api_path: str, body: dict) -> dict | None:
    """Break one order of a list or detail answer; None when there is none to break."""
    orders = (body.get("response") or {}).get("order_list")
    if not orders:
        return None
    target = orders[len(orders) // 2]
    target.pop("order_sn", None)
    if api_path.endswith("get_order_detail"):
        target["item_list"] = json.dumps(target.get("item_list"))
        target["update_time"] = "yesterday"
    return body


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()
    book = ShopBook(state)
    taken: dict[str, str] = {}  # tracking number -> order_sn it was accepted for
    shop_apis = {
        ("GET", "/api/v2/order/get_order_list"): order_list,
        ("GET", "/api/v2/order/get_order_detail"): order_detail,
        ("GET", "/api/v2/logistics/get_shipping_parameter"): shipping_parameter,
        ("GET", "/api/v2/logistics/get_tracking_number"): tracking_number_of,
        ("POST", "/api/v2/logistics/ship_order"):
            lambda b, s, p, body: ship_order(b, s, p, body, taken),
        ("GET", "/api/v2/product/get_item_list"): item_list,
        ("GET", "/api/v2/product/get_item_base_info"): item_base_info,
        ("GET", "/api/v2/product/get_model_list"): model_list,
        ("POST", "/api/v2/product/update_stock"): update_stock,
    }

    @router.api_route(ROUTE_PREFIX + API_PREFIX + "/{api:path}", methods=["GET", "POST"])
    async def shopee_api(api: str, request: Request) -> Response:
        # A repeated parameter (item_status=NORMAL&item_status=UNLIST) arrives joined by commas.
        query = request.query_params
        api_path = f"{API_PREFIX}/{api}"
        params = {name: ",".join(query.getlist(name)) for name in query}
        fault = state.faults.take(PLATFORM)
        kind = fault.kind if fault else None
        if kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        if kind == "server_error":
            return PlainTextResponse("502 Bad Gateway", status_code=502)
        key = (request.method, api_path)
        if key not in shop_apis and key not in PUBLIC_APIS:
            return JSONResponse({"request_id": uuid.uuid4().hex, "error": "error_not_found",
                                 "message": "Wrong parameters, detail: api not found."}, 404)
        try:
            if kind == "rate_limit":
                raise Refusal(THROTTLED)
            public = key in PUBLIC_APIS
            shop = authenticate(state, api_path, params, public, kind == "expired_token")
            body = await _json_body(request) if request.method == "POST" else {}
            if public:
                result = refresh_access_token(state, params, body)
            else:
                result = shop_apis[key](book, shop, params, body)
        except Refusal as refusal:
            return error_response(refusal)
        answer = {"request_id": uuid.uuid4().hex, "error": "", "message": "", **result}
        if kind == "malformed":
            spoiled = spoil(api_path, answer)
            if spoiled is None:  # nothing order-shaped: a body cut short instead
                return Response(json.dumps(answer)[:20], media_type="application/json")
            answer = spoiled
        return JSONResponse(answer)

    return router


async def _json_body(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise Refusal(bad_parameter("body is not JSON")) from None
    if not isinstance(body, dict):
        raise Refusal(bad_parameter("body should be a JSON object"))
    return body


def base_path(shop: str) -> str:
    return ROUTE_PREFIX  # one host for every shop; shop_id and the token name the shop


def register_shop(state: SandboxState, shop: str, now: datetime) -> dict:
    """Authorise a fresh partner app for `shop`; tokens live 4 h (access) and 30 d (refresh)."""
    partner_key = secrets.token_hex(32)
    with state.lock:
        partner_id = str(2_000_000 + secrets.randbelow(1_000_000))
        while partner_id in state.app_secrets:
            partner_id = str(2_000_000 + secrets.randbelow(1_000_000))
        state.app_secrets[partner_id] = partner_key
        orders = state.shop_orders(shop)
        region = orders[0].country_code if orders else MARKET.country
    granted = state.grant(shop, now, ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME,
                          single_use_refresh=True)
    return {"partner_id": partner_id, "partner_key": partner_key, "shop_id": str(shop_id_of(shop)),
            "access_token": granted["access_token"], "refresh_token": granted["refresh_token"],
            "region": region}
import sandbox.shopee_after_sales  # noqa: F401,E402  (after-sales: adds the returns APIs in front of the catch-all)
