"""Pinduoduo POP simulator: one form-encoded router endpoint that dispatches on `type`.

It follows reference §6: MD5 signing over the sorted parameters, `<api>_response` and
`error_response` envelopes sent with HTTP 200, unix-second windows (24 h for the list by
confirm time, 30 min for the increment by update time), China-time strings, amounts as
yuan doubles, and receiver data that is ciphertext plus masks while an order waits for
shipment. The real gateway has no sandbox, so this is where the connector meets PDD's rules.
Stock sync lists goods with their SKUs (pdd.goods.list.get) and sets one SKU's stock per
pdd.goods.quantity.update, fully (update_type 1) or incrementally (2).
How an order is dressed for the wire lives in `sandbox.pinduoduo_render`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sandbox.model import SandboxState, SimOrder
# Rendering lives in its own module; its names stay importable from here as before.
from sandbox.pinduoduo_render import (  # noqa: F401
    CHINA_TIME, DETAIL_ADDRESS, FULL_ADDRESS, NAME, PHONE, SHIP_PROMISE, STATUS_CODES, TIME_FORMAT,
    china_time, confirm_time, decrypt, encrypt, listed_goods, mask_address, mask_name,
    mask_phone, order_sn, receiver_fields, render_goods, render_item, render_order, shipping_time,
    update_time,
)

PLATFORM = "pdd"
ROUTER_PATH = "/pdd/api/router"
CLOCK_SKEW_LIMIT_SECONDS = 600
CONFIRM_WINDOW_LIMIT_SECONDS = 24 * 3600
UPDATE_WINDOW_LIMIT_SECONDS = 30 * 60
MAX_PAGE_SIZE = 100
# Unverified: PDD documents no token lifetime (it depends on the app type and subscription).
TOKEN_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class PddError:
    code: int
    msg: str


TOKEN_EXPIRED = PddError(10019, "access_token已过期")  # [H]
THROTTLED = PddError(52101, "当前接口被限流")  # [H]
# --- UNVERIFIED error codes: the reference gives none for these; chosen for the simulator.
BAD_PARAMETER = PddError(10000, "参数错误")
UNKNOWN_API = PddError(10001, "type参数错误")
UNKNOWN_CLIENT = PddError(10016, "client_id不存在")
BAD_SIGN = PddError(10017, "签名错误")
STALE_TIMESTAMP = PddError(10018, "timestamp已过期")
ORDER_NOT_FOUND = PddError(30001, "订单不存在")
NOT_SHIPPABLE = PddError(30002, "订单状态不允许发货")
UNKNOWN_LOGISTICS = PddError(30003, "快递公司不存在")
BAD_REFRESH_TOKEN = PddError(10020, "refresh_token已过期或无效")
# PDD states no refresh-token lifetime either; a month stands in for it.
REFRESH_TOKEN_LIFETIME = timedelta(days=30)
DECRYPT_ITEM_FAILED = 40001  # per-item error_code inside open_decrypt_batch_response
GOODS_NOT_FOUND = PddError(30101, "商品不存在")
SKU_NOT_FOUND = PddError(30102, "sku不存在")
# --- end of unverified codes

# [L] ids often quoted for PDD (reference §6.4), unverified; J&T's id is made up.
LOGISTICS_COMPANIES = tuple(
    {"id": company_id, "logistics_company": name, "code": code, "available": 1}
    for company_id, name, code in (
        (44, "顺丰速运", "SF"), (115, "中通快递", "ZTO"), (85, "圆通速递", "YTO"), (1, "申通快递", "STO"),
        (121, "韵达快递", "YUNDA"), (118, "邮政EMS", "EMS"), (120, "京东快递", "JD"),
        (384, "极兔速递", "JTSD"),  # made-up id
    )
)
COMPANIES_BY_ID = {company["id"]: company for company in LOGISTICS_COMPANIES}
# Per shop, the logistics ids PDD no longer takes from it (a company the platform dropped,
# or one the shop's account is not enabled for): a test control, see `retire_logistics`.
RETIRED_LOGISTICS: dict[str, set[int]] = {}


def retire_logistics(shop: str, carrier_code: str) -> None:
    """Make PDD refuse this shop's shipments with the company (our code, e.g. "SF") as
    unknown, the way the platform answers a company it does not take."""
    ids = {c["id"] for c in LOGISTICS_COMPANIES if c["code"] == carrier_code}
    RETIRED_LOGISTICS.setdefault(shop, set()).update(ids)

ALL = 5  # order_status / refund_status filter value meaning "any"
MAX_GOODS_PAGE_SIZE = 100  # [H] pdd.goods.list.get: default 100, at most 100
FULL_UPDATE, INCREMENTAL_UPDATE = 1, 2  # [H] pdd.goods.quantity.update update_type


class Refusal(Exception):
    def __init__(self, error: PddError, sub_msg: str = "") -> None:
        super().__init__(error.msg)
        self.error = error
        self.sub_msg = sub_msg


def sign(params: dict[str, str], client_secret: str) -> str:
    """Written apart from the connector's signer so each checks the other."""
    joined = "".join(key + params[key] for key in sorted(params) if key != "sign")
    digest = hashlib.md5((client_secret + joined + client_secret).encode("utf-8"))
    return digest.hexdigest().upper()


# ---- request handling ------------------------------------------------------------


def _int_param(params: dict, name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value in (None, ""):
        if default is None:
            raise Refusal(BAD_PARAMETER, f"缺少参数{name}")
        return default
    try:
        return int(value)
    except ValueError:
        raise Refusal(BAD_PARAMETER, f"{name}不合法") from None


def _window(params: dict, start_key: str, end_key: str, limit: int) -> tuple[int, int]:
    start, end = _int_param(params, start_key), _int_param(params, end_key)
    if end < start or end - start > limit:
        raise Refusal(BAD_PARAMETER, f"{start_key}与{end_key}的间隔不能超过{limit // 60}分钟")
    return start, end


def _seconds(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


# ---- the shop's orders, sorted once ------------------------------------------------

Clock = Callable[[SimOrder], "datetime | None"]
_UPDATED_AT = attrgetter("updated_at")


def _timeline(orders: list[SimOrder], clock: Clock) -> tuple[list[int], list[SimOrder]]:
    """Orders that have a `clock` time, by (second, order_id), repeated ones side by side."""
    keyed = sorted(
        (_seconds(moment), order.order_id, position)
        for position, order in enumerate(orders)
        if (moment := clock(order)) is not None
    )
    return [key[0] for key in keyed], [orders[key[2]] for key in keyed]


@dataclass
class _ShopBook:
    members: list[SimOrder]
    update_times: list[datetime]
    timelines: dict[Clock, tuple[list[int], list[SimOrder]]] = field(default_factory=dict)
    by_sn: dict[str, SimOrder] | None = None


class OrderIndex:
    """Each shop's orders sorted by every list API's clock, and found by order_sn.

    Filtering and sorting all of a shop's orders on every request made a fetch of many
    small windows cost windows × orders; with sorted timelines a request is a bisect plus
    the orders it returns. Orders are plain objects that the generator and tests change in
    place, so each lookup first compares the shop's list and every order's update time
    with those the index was built from (one attribute read per order, the one cost still
    proportional to the shop) and rebuilds on a difference. As on PDD, a status change
    comes with a new update time; our own writes also call `changed`. Callers hold
    `state.lock`.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._books: dict[str, _ShopBook] = {}

    def _book(self, shop: str) -> _ShopBook:
        orders = self.state.shop_orders(shop)
        book = self._books.get(shop)
        if book is None or book.members != orders:
            book = self._books[shop] = _ShopBook(list(orders), list(map(_UPDATED_AT, orders)))
            return book
        update_times = list(map(_UPDATED_AT, orders))
        if update_times != book.update_times:
            book.update_times, book.timelines = update_times, {}  # order_sn does not change
        return book

    def changed(self, shop: str) -> None:
        """Forget the shop's timelines after a write moved one of its orders."""
        book = self._books.get(shop)
        if book is not None:
            book.timelines = {}

    def in_window(self, shop: str, clock: Clock, start: int, end: int) -> list[SimOrder]:
        """Orders whose `clock` second lies in [start, end], in a stable paging order."""
        book = self._book(shop)
        if clock not in book.timelines:
            book.timelines[clock] = _timeline(book.members, clock)
        seconds, ordered = book.timelines[clock]
        return ordered[bisect_left(seconds, start) : bisect_right(seconds, end)]

    def find(self, shop: str, wanted_sn: str) -> SimOrder | None:
        book = self._book(shop)
        found = book.by_sn.get(wanted_sn) if book.by_sn is not None else None
        if found is None or order_sn(found) != wanted_sn:  # unknown, or its id was edited
            book.by_sn = {}
            for order in book.members:
                book.by_sn.setdefault(order_sn(order), order)  # the first one, as a scan would
            found = book.by_sn.get(wanted_sn)
        return found


# ---- request handling ------------------------------------------------------------


def _page(matches: list[SimOrder], params: dict) -> tuple[list[dict], int, bool]:
    page, size = _int_param(params, "page", 1), _int_param(params, "page_size", MAX_PAGE_SIZE)
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise Refusal(BAD_PARAMETER, f"page从1开始, page_size不能超过{MAX_PAGE_SIZE}")
    chosen = matches[(page - 1) * size : page * size]
    return [render_order(o) for o in chosen], len(matches), page * size < len(matches)


def _status_filter(params: dict):
    wanted_order = _int_param(params, "order_status")
    wanted_refund = _int_param(params, "refund_status")

    def keep(order: SimOrder) -> bool:
        order_status, _, refund_status = STATUS_CODES[order.status]
        return wanted_order in (ALL, order_status) and wanted_refund in (ALL, refund_status)

    return keep


def _listing(clock: Clock, limit: int, window_keys: tuple[str, str], envelope: tuple[str, str]):
    """Build a list API that pages the shop's orders whose `clock` falls in the window."""

    def handle(index: OrderIndex, shop: str, params: dict) -> dict:
        start, end = _window(params, *window_keys, limit)
        keep = _status_filter(params)
        with index.state.lock:
            matches = [o for o in index.in_window(shop, clock, start, end) if keep(o)]
            rendered, total, has_next = _page(matches, params)
        response_key, list_key = envelope
        return {response_key: {list_key: rendered, "total_count": total, "has_next": has_next}}

    return handle


# PDD lists only orders that became a deal: the list by confirm time never shows unpaid
# or called-off orders, the increment by update time shows every order except unpaid ones.
list_by_confirm_time = _listing(
    confirm_time, CONFIRM_WINDOW_LIMIT_SECONDS, ("start_confirm_at", "end_confirm_at"),
    ("order_list_get_response", "order_list"),
)
list_by_update_time = _listing(
    update_time, UPDATE_WINDOW_LIMIT_SECONDS,
    ("start_updated_at", "end_updated_at"), ("order_sn_increment_get_response", "order_sn_list"),
)


def _find_order(index: OrderIndex, shop: str, params: dict) -> SimOrder:
    wanted = params.get("order_sn", "")
    order = index.find(shop, wanted)
    if order is None:
        raise Refusal(ORDER_NOT_FOUND, wanted)
    return order


def order_information(index: OrderIndex, shop: str, params: dict) -> dict:
    with index.state.lock:
        order_info = render_order(_find_order(index, shop, params))
    return {"order_info_get_response": {"order_info": order_info}}


def logistics_companies(index: OrderIndex, shop: str | None, params: dict) -> dict:
    return {"logistics_companies_get_response": {"logistics_companies": list(LOGISTICS_COMPANIES)}}


def online_send(index: OrderIndex, shop: str, params: dict) -> dict:
    logistics_id = _int_param(params, "logistics_id")
    tracking_number = params.get("tracking_number", "").strip()
    redelivery_type = _int_param(params, "redelivery_type", 1)
    if not tracking_number or redelivery_type not in (1, 2):
        raise Refusal(BAD_PARAMETER, "tracking_number或redelivery_type不合法")
    company = COMPANIES_BY_ID.get(logistics_id)
    if company is None or not company["available"]:
        raise Refusal(UNKNOWN_LOGISTICS, str(logistics_id))
    if logistics_id in RETIRED_LOGISTICS.get(shop, ()):
        raise Refusal(UNKNOWN_LOGISTICS, str(logistics_id))
    with index.state.lock:
        order = _find_order(index, shop, params)
        # 1 = first shipment of a 待发货 order; 2 = correct an order already shipped.
        if order.status != ("paid" if redelivery_type == 1 else "shipped"):
            raise Refusal(NOT_SHIPPABLE, "订单已发货" if order.status == "shipped" else order.status)
        now = datetime.now(timezone.utc)
        order.tracking.append({
            "platform": PLATFORM, "logistics_id": logistics_id, "carrier_code": company["code"],
            "tracking_number": tracking_number, "shipped_at": now,
        })
        order.status, order.updated_at = "shipped", now
        index.changed(shop)
    return {"logistics_online_send_response": {"is_success": True}}


def decrypt_batch(index: OrderIndex, shop: str, params: dict) -> dict:
    try:
        wanted = json.loads(params.get("data_list", ""))
    except ValueError:
        raise Refusal(BAD_PARAMETER, "data_list不合法") from None
    if not isinstance(wanted, list) or not 1 <= len(wanted) <= 100:
        raise Refusal(BAD_PARAMETER, "data_list须为1到100项")
    results = []
    for item in wanted:
        item = item if isinstance(item, dict) else {}
        opened = decrypt(str(item.get("encrypted_data", "")))
        results.append({
            "data_tag": item.get("data_tag", ""), "encrypted_data": item.get("encrypted_data", ""),
            "decrypted_data": opened[1] if opened else "", "data_type": opened[0] if opened else 0,
            "error_code": 0 if opened else DECRYPT_ITEM_FAILED,
        })
    return {"open_decrypt_batch_response": {"data_decrypt_list": results}}


def _shop_stock(state: SandboxState, shop: str) -> dict[str, int]:
    with state.lock:
        return dict(state.stock_levels.get(shop, {}))


def goods_list(index: OrderIndex, shop: str, params: dict) -> dict:
    page = _int_param(params, "page", 1)
    size = _int_param(params, "page_size", MAX_GOODS_PAGE_SIZE)
    if page < 1 or not 1 <= size <= MAX_GOODS_PAGE_SIZE:
        raise Refusal(BAD_PARAMETER, f"page从1开始, page_size不能超过{MAX_GOODS_PAGE_SIZE}")
    goods = list(listed_goods(shop, index.state.listed_skus(shop)).values())
    # is_onsale wins over outer_id, which wins over goods_name (doc); all sandbox goods are on sale.
    if params.get("is_onsale", "") != "":
        goods = goods if _int_param(params, "is_onsale") == 1 else []
    elif params.get("outer_id"):
        goods = [g for g in goods if params["outer_id"] in g.product.skus]
    elif params.get("goods_name"):
        goods = [g for g in goods if params["goods_name"] in g.product.name]
    stock = _shop_stock(index.state, shop)
    chosen = [render_goods(g, stock) for g in goods[(page - 1) * size : page * size]]
    return {"goods_list_get_response": {"goods_list": chosen, "total_count": len(goods)}}


def goods_quantity_update(index: OrderIndex, shop: str, params: dict) -> dict:
    goods_id, quantity = _int_param(params, "goods_id"), _int_param(params, "quantity")
    mode = _int_param(params, "update_type", FULL_UPDATE)
    if mode not in (FULL_UPDATE, INCREMENTAL_UPDATE):
        raise Refusal(BAD_PARAMETER, "update_type只能为1(全量)或2(增量)")
    goods = listed_goods(shop, index.state.listed_skus(shop)).get(goods_id)
    if goods is None:
        raise Refusal(GOODS_NOT_FOUND, str(goods_id))
    skus = goods.sku_ids
    if params.get("sku_id"):  # sku_id first, outer_id only when sku_id is absent (doc)
        code = skus.get(_int_param(params, "sku_id"))
    elif params.get("outer_id"):
        code = params["outer_id"] if params["outer_id"] in skus.values() else None
    else:
        raise Refusal(BAD_PARAMETER, "sku_id和outer_id必填一个")
    if code is None:
        raise Refusal(SKU_NOT_FOUND, params.get("sku_id") or params.get("outer_id", ""))
    if mode == FULL_UPDATE and quantity < 0:
        raise Refusal(BAD_PARAMETER, "全量更新库存时quantity必须为大于等于0的整数")
    current = _shop_stock(index.state, shop).get(code, 0)
    final = quantity if mode == FULL_UPDATE else current + quantity
    if final < 0:  # an increment may not take the stock below 0 (doc)
        raise Refusal(BAD_PARAMETER, "增量更新后库存不能小于0")
    index.state.set_stock(shop, code, final)
    return {"goods_quantity_update_response": {"is_success": True}}


def refresh_token(index: OrderIndex, shop: str | None, params: dict) -> dict:
    """pdd.pop.auth.token.refresh: a new token pair for the mall the refresh token names."""
    now = datetime.now(timezone.utc)
    known = index.state.redeem(params.get("refresh_token", ""), now)
    if known is None:
        raise Refusal(BAD_REFRESH_TOKEN)
    granted = index.state.grant(known.shop, now, TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME)
    return {"pop_auth_token_refresh_response": {
        "access_token": granted["access_token"],
        "expires_in": int(TOKEN_LIFETIME.total_seconds()),
        "expires_at": _seconds(granted["access_expires_at"]),
        "refresh_token": granted["refresh_token"],
        "refresh_token_expires_in": int(REFRESH_TOKEN_LIFETIME.total_seconds()),
        "refresh_token_expires_at": _seconds(granted["refresh_expires_at"]),
        "owner_id": known.shop, "owner_name": known.shop, "scope": [],
    }}


HANDLERS = {
    "pdd.order.list.get": list_by_confirm_time,
    "pdd.order.number.list.increment.get": list_by_update_time,
    "pdd.order.information.get": order_information,
    "pdd.logistics.companies.get": logistics_companies,
    "pdd.logistics.online.send": online_send,
    "pdd.open.decrypt.batch": decrypt_batch,
    "pdd.pop.auth.token.refresh": refresh_token,
    "pdd.goods.list.get": goods_list,
    "pdd.goods.quantity.update": goods_quantity_update,
}
# Public data, and the refresh that stands in for a lapsed token: no access_token needed.
NEEDS_NO_MALL = {"pdd.logistics.companies.get", "pdd.pop.auth.token.refresh"}


def authenticate(state: SandboxState, params: dict, expired_by_fault: bool) -> str | None:
    """Check client, signature, clock and token in the gateway's order; return the shop."""
    secret = state.app_secrets.get(params.get("client_id", ""))
    if secret is None:
        raise Refusal(UNKNOWN_CLIENT)
    if not hmac.compare_digest(params.get("sign", ""), sign(params, secret)):
        raise Refusal(BAD_SIGN)
    now = datetime.now(timezone.utc)
    if abs(now.timestamp() - _int_param(params, "timestamp")) > CLOCK_SKEW_LIMIT_SECONDS:
        raise Refusal(STALE_TIMESTAMP)
    if params.get("type") not in HANDLERS:
        raise Refusal(UNKNOWN_API, params.get("type", ""))
    token = params.get("access_token")
    if not token and params["type"] in NEEDS_NO_MALL:
        return None
    known = state.tokens.get(token or "")
    if expired_by_fault or known is None or known.expires_at <= now:
        raise Refusal(TOKEN_EXPIRED)
    return known.shop


def error_body(refusal: Refusal) -> dict:
    return {"error_response": {
        "error_code": refusal.error.code, "error_msg": refusal.error.msg,
        "sub_code": str(refusal.error.code), "sub_msg": refusal.sub_msg,
        "request_id": uuid.uuid4().hex,
    }}


def spoil(body: dict) -> dict | None:
    """Break one order of a list or detail payload; None when there is no order to break."""
    inner = next(iter(body.values()))
    orders = inner.get("order_list") or inner.get("order_sn_list")
    target = orders[len(orders) // 2] if orders else inner.get("order_info")
    if not isinstance(target, dict):
        return None
    target.pop("order_sn", None)
    target["item_list"] = json.dumps(target["item_list"], ensure_ascii=False)
    return body


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()
    index = OrderIndex(state)

    @router.post(ROUTER_PATH)
    async def pdd_router(request: Request) -> Response:
        params = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        fault = state.faults.take(PLATFORM)
        kind = fault.kind if fault else None
        if kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        if kind == "server_error":
            return PlainTextResponse("502 Bad Gateway", status_code=502)
        try:
            if kind == "rate_limit":
                raise Refusal(THROTTLED)
            shop = authenticate(state, params, expired_by_fault=kind == "expired_token")
            body = HANDLERS[params["type"]](index, shop, params)
        except Refusal as refusal:
            return JSONResponse(error_body(refusal))
        if kind == "malformed":
            spoiled = spoil(body)
            if spoiled is None:  # nothing order-shaped: send a cut-off body instead
                return Response(json.dumps(body)[:20], media_type="application/json")
            body = spoiled
        return JSONResponse(body)

    return router


def base_path(shop: str) -> str:
    return "/pdd"  # one gateway for every mall; the access token names the mall


def register_shop(state: SandboxState, shop: str, now: datetime) -> dict:
    """Authorize a mall for a fresh app; the access token lives TOKEN_LIFETIME from `now`."""
    client_id, client_secret = secrets.token_hex(16), secrets.token_hex(20)
    granted = state.grant(shop, now, TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME)
    with state.lock:
        state.app_secrets[client_id] = client_secret
    return {"client_id": client_id, "client_secret": client_secret,
            "access_token": granted["access_token"], "refresh_token": granted["refresh_token"]}
import sandbox.pinduoduo_after_sales  # noqa: F401,E402  (after-sales: adds its APIs to HANDLERS)
