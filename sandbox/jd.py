"""JD (京东 JOS) simulator: the `/routerjson` gateway and the OAuth refresh endpoint.

It follows reference §7: system parameters plus every business parameter packed into one
`360buy_param_json` string, MD5 signing over the sorted system parameters, China-time
timestamps, `<method_with_underscores>_responce` envelopes (JD's spelling) and
`error_response` with `zh_desc`/`en_desc`, sent with HTTP 200. Orders are listed by
`jingdong.pop.order.search` in windows of limited width, shipped with
`jingdong.pop.order.shipment` with JD's carrier ids, and served with masked consignee
data. Business refusals (a window too wide, an order that cannot ship) come back inside
the result's `apiResult`/operator result, system refusals as `error_response`. Stock sync
reads the shop's SKUs with `jingdong.sku.read.searchSkuList` and sets one SKU's stock per
`jingdong.stock.write.updateSkuStock` (skuId, stockNum: the full number, never a delta).
How an order is dressed for the wire lives in `sandbox.jd_render`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sandbox.jd_render import (
    OrderIndex, created_clock, modified_clock, listed_skus, parse_jd_time, render_order,
    render_sku, seconds, served_state, spoil, stable_number,
)
from sandbox.model import SandboxState, SimOrder

PLATFORM = "jd"
GATEWAY_PATH = "/jd/routerjson"
REFRESH_PATH = "/jd/oauth2/refresh_token"
PARAM_JSON = "360buy_param_json"
MAX_PAGE_SIZE = 100  # reference §7.3
VERSIONS = {"2.0", "1.0"}  # reference §7.1: most APIs 2.0, some 1.0

# --- UNVERIFIED (reference §7 [L], Appendix C, or absent): simulator choices ------------
TOKEN_LIFETIME = timedelta(hours=24)  # [L] one source says 24 h
REFRESH_LIFETIME = timedelta(days=30)  # absent
CLOCK_SKEW_LIMIT = timedelta(minutes=10)  # absent for JD; TOP's documented skew
# One month per request, and modification times only three months back: seen in a
# third-party integration note, not in official material.
WINDOW_LIMIT = timedelta(days=30)
MODIFIED_VISIBILITY = timedelta(days=90)
DEFAULT_PAGE_SIZE = 20
DATE_TYPE_CREATED = "1"  # any other value means modification time (third-party comment)
# searchSkuList: one SDK wrapper says at most 50 a page; the default 20 is from a sample.
MAX_SKU_PAGE_SIZE, DEFAULT_SKU_PAGE_SIZE = 50, 20
SKU_STATUSES = frozenset({1, 2, 4})  # 1 上架, 2 下架, 4 删除 [M] SDK parameter comments
SORT_DESCENDING = "1"  # any other value sorts ascending (third-party comment)


@dataclass(frozen=True)
class JdError:
    code: str
    zh_desc: str
    en_desc: str


# Gateway (system) errors, sent as error_response; Appendix C: JD's codes are not evidenced.
INVALID_APP_KEY = JdError("12", "无效的app_key", "Invalid app_key")
INVALID_SIGN = JdError("14", "签名无效", "Invalid signature")
INVALID_TOKEN = JdError("19", "access_token无效或已过期", "Invalid access_token")
INVALID_TIMESTAMP = JdError("25", "时间戳无效", "Invalid timestamp")
INVALID_METHOD = JdError("36", "无效的方法", "Invalid method")
INVALID_VERSION = JdError("37", "无效的版本", "Invalid version")
INVALID_PARAMETER = JdError("66", "参数错误", "Invalid arguments")
THROTTLED = JdError("72", "调用频率超过限制", "Call frequency exceeds limit")
# Business errors, sent inside apiResult / sopjosshipment_result as numberCode.
BAD_WINDOW = JdError("10100001", "查询时间段不合法", "Invalid date range")
BAD_PAGE = JdError("10100002", "分页参数不合法", "Invalid paging")
ORDER_NOT_FOUND = JdError("10100003", "订单不存在", "Order not found")
NOT_SHIPPABLE = JdError("10100004", "订单状态不允许出库", "Order state does not allow shipment")
UNKNOWN_CARRIER = JdError("10100005", "物流公司不存在", "Unknown logistics company")
BAD_ORDER_STATE = JdError("10100006", "订单状态参数不合法", "Invalid order_state")
# updateSkuStock's refusals: JD's codes for them are not in the material we hold.
SKU_NOT_FOUND = JdError("10100101", "sku不存在或不属于当前商家", "SKU not found for this vender")
NEGATIVE_STOCK = JdError("10100102", "库存数不能为负数", "stockNum must not be negative")
# OAuth errors of open-oauth.jd.com: a top-level `code`/`msg` pair.
OAUTH_BAD_CLIENT = (1001, "app_key或app_secret错误")
OAUTH_BAD_GRANT = (1002, "grant_type错误")
OAUTH_BAD_REFRESH = (1003, "refresh_token无效或已过期, 请重新授权")
OAUTH_THROTTLED = (1004, "请求过于频繁")
# Carrier ids (logiCoprId) from third-party code, reference §7.4 [L]; J&T is not known.
LOGISTICS_COMPANIES = {
    467: ("SF", "顺丰速运"), 463: ("YTO", "圆通快递"), 470: ("STO", "申通快递"),
    1499: ("ZTO", "中通速递"), 1327: ("YUNDA", "韵达快递"), 465: ("EMS", "邮政EMS"),
    2087: ("JD", "京东大件开放承运商"), 1274: ("SELF", "厂家自送"), 3046: ("DEPPON", "德邦物流"),
}
# Shapes from third-party code, not the reference: jingdong.pop.order.get's parameter and
# answer keys, the result fields below, and the token answer's times in epoch ms.
ORDER_GET_ID = "order_id"
RESULT_FIELDS = ("success", "numberCode", "chineseErrCode", "englishErrCode")
# --- end


class Refusal(Exception):
    """A gateway refusal: becomes `error_response`."""

    def __init__(self, error: JdError, detail: str = "") -> None:
        super().__init__(error.en_desc)
        self.error, self.detail = error, detail


class BusinessRefusal(Exception):
    """An API's own refusal: becomes a result with success false."""

    def __init__(self, error: JdError, detail: str = "") -> None:
        super().__init__(error.en_desc)
        self.error, self.detail = error, detail


def sign(params: dict[str, str], secret: str) -> str:
    """Written apart from the connector's signer so each checks the other."""
    joined = "".join(f"{key}{params[key]}" for key in sorted(params) if key != "sign")
    return hashlib.md5(f"{secret}{joined}{secret}".encode("utf-8")).hexdigest().upper()


# ---- APIs ----------------------------------------------------------------------------


def _api_result(error: JdError | None = None, detail: str = "") -> dict:
    if error is None:
        return dict(zip(RESULT_FIELDS, (True, "", "", "")))
    zh_desc = f"{error.zh_desc}: {detail}" if detail else error.zh_desc
    return dict(zip(RESULT_FIELDS, (False, error.code, zh_desc, error.en_desc)))


def _int(business: dict, name: str, default: int) -> int:
    value = business.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BusinessRefusal(BAD_PAGE, f"{name}={value!r}") from None


def _fields(business: dict) -> list[str] | None:
    wanted = business.get("optional_fields")
    return [f.strip() for f in str(wanted).split(",") if f.strip()] if wanted else None


def _dress(order: SimOrder, fields: list[str] | None) -> dict:
    payload = render_order(order, served_state(order))  # type: ignore[arg-type]
    return payload if fields is None else {k: payload[k] for k in fields if k in payload}


def _window(business: dict) -> tuple[int, int]:
    start, end = (parse_jd_time(str(business.get(k, ""))) for k in ("start_date", "end_date"))
    if start is None or end is None:
        raise BusinessRefusal(BAD_WINDOW, "start_date和end_date须为yyyy-MM-dd HH:mm:ss")
    if end < start or end - start > WINDOW_LIMIT:
        raise BusinessRefusal(BAD_WINDOW, f"时间跨度不能超过{WINDOW_LIMIT.days}天")
    return seconds(start), seconds(end)


def order_search(index: OrderIndex, shop: str, business: dict) -> dict:
    now = datetime.now(timezone.utc)
    try:
        start, end = _window(business)
        by_creation = str(business.get("dateType", "0")) == DATE_TYPE_CREATED
        if not by_creation and start < seconds(now - MODIFIED_VISIBILITY):
            raise BusinessRefusal(BAD_WINDOW, f"按修改时间只能查询{MODIFIED_VISIBILITY.days}天内")
        states = {s.strip() for s in str(business.get("order_state", "")).split(",") if s.strip()}
        if not states:
            raise BusinessRefusal(BAD_ORDER_STATE, "缺少order_state")
        page, size = _int(business, "page", 1), _int(business, "page_size", DEFAULT_PAGE_SIZE)
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            raise BusinessRefusal(BAD_PAGE, f"page从1开始, page_size不能超过{MAX_PAGE_SIZE}")
    except BusinessRefusal as refusal:
        return {"searchorderinfo_result": {"apiResult": _api_result(refusal.error, refusal.detail),
                                           "orderInfoList": [], "orderTotal": 0}}
    fields = _fields(business)
    with index.state.lock:
        clock = created_clock if by_creation else modified_clock
        matches = [o for o in index.in_window(shop, clock, start, end) if served_state(o) in states]
        if str(business.get("sortType", "0")) == SORT_DESCENDING:
            matches.reverse()
        chosen = [_dress(o, fields) for o in matches[(page - 1) * size:page * size]]
    return {"searchorderinfo_result": {"apiResult": _api_result(), "orderInfoList": chosen,
                                       "orderTotal": len(matches)}}


def order_get(index: OrderIndex, shop: str, business: dict) -> dict:
    wanted = str(business.get(ORDER_GET_ID, ""))
    with index.state.lock:
        order = index.find(shop, wanted)
        info = _dress(order, _fields(business)) if order is not None else None
    result = _api_result() if info is not None else _api_result(ORDER_NOT_FOUND, wanted)
    return {"orderDetailInfo": {"apiResult": result, "orderInfo": info}}


def order_shipment(index: OrderIndex, shop: str, business: dict) -> dict:
    try:
        _ship(index, shop, business)
    except BusinessRefusal as refusal:
        return {"sopjosshipment_result": _api_result(refusal.error, refusal.detail)}
    return {"sopjosshipment_result": _api_result()}


def _ship(index: OrderIndex, shop: str, business: dict) -> None:
    wanted, tracking = str(business.get("orderId", "")), str(business.get("logiNo", "")).strip()
    try:
        carrier_id = int(str(business.get("logiCoprId", "")))
    except ValueError:
        raise BusinessRefusal(UNKNOWN_CARRIER, str(business.get("logiCoprId"))) from None
    if carrier_id not in LOGISTICS_COMPANIES:
        raise BusinessRefusal(UNKNOWN_CARRIER, str(carrier_id))
    if not tracking:
        raise BusinessRefusal(NOT_SHIPPABLE, "缺少logiNo")
    with index.state.lock:
        order = index.find(shop, wanted)
        if order is None:
            raise BusinessRefusal(ORDER_NOT_FOUND, wanted)
        if order.status != "paid":
            why = "订单已取消" if order.status == "cancelled" else "订单已出库"
            raise BusinessRefusal(NOT_SHIPPABLE, why)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        order.tracking.append({
            "platform": PLATFORM, "logi_copr_id": carrier_id,
            "carrier_code": LOGISTICS_COMPANIES[carrier_id][0], "tracking_number": tracking,
            "shipped_at": now,
        })
        order.status, order.updated_at = "shipped", max(now, order.updated_at)
        index.changed(shop)


def _whole_number(value: object, name: str) -> int:
    """A JSON number (or digits with a sign); JD's SDKs send ids as numbers."""
    if isinstance(value, bool):
        raise Refusal(INVALID_PARAMETER, f"{name}须为整数")
    if isinstance(value, int):
        return value
    text = str(value if value is not None else "").strip()
    if not text.lstrip("-").isdigit():
        raise Refusal(INVALID_PARAMETER, f"{name}须为整数")
    return int(text)


def _number_list(value: object, name: str) -> list[int]:
    """An int[] parameter: a JSON list, or the comma-separated text some clients send."""
    parts = value if isinstance(value, list) else str(value).split(",")
    return [_whole_number(part, name) for part in parts if str(part).strip()]


def _shop_stock(state: SandboxState, shop: str) -> dict[str, int]:
    with state.lock:
        return dict(state.stock_levels.get(shop, {}))


def search_sku_list(index: OrderIndex, shop: str, business: dict) -> dict:
    statuses = set(_number_list(business.get("skuStatuValue") or "1,2", "skuStatuValue"))
    if statuses - SKU_STATUSES:
        raise Refusal(INVALID_PARAMETER, "skuStatuValue只能为1,2,4")
    page = _whole_number(business.get("pageNo", 1), "pageNo")
    size = _whole_number(business.get("page_size", DEFAULT_SKU_PAGE_SIZE), "page_size")
    if page < 1 or not 1 <= size <= MAX_SKU_PAGE_SIZE:
        raise Refusal(INVALID_PARAMETER, f"pageNo从1开始, page_size不能超过{MAX_SKU_PAGE_SIZE}")
    wares = set(_number_list(business.get("wareId") or "", "wareId"))
    named = business.get("field")  # a comma list, or string[] in some SDKs
    fields = _fields({"optional_fields": ",".join(named) if isinstance(named, list) else named})
    skus = list(listed_skus(shop, index.state.listed_skus(shop)).values())
    # Every sandbox SKU is on sale: only a filter without 上架 (1) hides them.
    matches = [s for s in skus if 1 in statuses and (not wares or s.ware_id in wares)]
    stock = _shop_stock(index.state, shop)
    data = [render_sku(s, stock, fields) for s in matches[(page - 1) * size:page * size]]
    return {"page": {"data": data, "pageNo": page, "pageSize": size, "totalItem": len(matches)}}


def update_sku_stock(index: OrderIndex, shop: str, business: dict) -> dict:
    sku_id = _whole_number(business.get("skuId"), "skuId")
    stock_num = _whole_number(business.get("stockNum"), "stockNum")
    if business.get("storeId") not in (None, ""):  # a simulator limit, not the platform's
        raise Refusal(INVALID_PARAMETER, "门店库存 (storeId) is not simulated")
    listed = listed_skus(shop, index.state.listed_skus(shop)).get(sku_id)
    if listed is None:
        raise Refusal(SKU_NOT_FOUND, str(sku_id))
    if stock_num < 0:
        raise Refusal(NEGATIVE_STOCK, str(stock_num))
    index.state.set_stock(shop, listed.code, stock_num)
    return {"success": True}


HANDLERS = {
    "jingdong.pop.order.search": order_search,
    "jingdong.pop.order.get": order_get,
    "jingdong.pop.order.shipment": order_shipment,
    "jingdong.sku.read.searchSkuList": search_sku_list,
    "jingdong.stock.write.updateSkuStock": update_sku_stock,
}


def response_key(method: str) -> str:
    return method.replace(".", "_") + "_responce"  # sic: JD spells it so


# ---- the gateway -----------------------------------------------------------------------


def authenticate(state: SandboxState, params: dict, expired_by_fault: bool) -> str:
    """Check app, signature, version, clock, method and token in turn; return the shop."""
    secret = state.app_secrets.get(params.get("app_key", ""))
    if secret is None:
        raise Refusal(INVALID_APP_KEY)
    if not hmac.compare_digest(params.get("sign", ""), sign(params, secret)):
        raise Refusal(INVALID_SIGN)
    if params.get("v") not in VERSIONS:
        raise Refusal(INVALID_VERSION, params.get("v", ""))
    now = datetime.now(timezone.utc)
    sent = parse_jd_time(params.get("timestamp", ""))
    if sent is None or abs(now - sent) > CLOCK_SKEW_LIMIT:
        raise Refusal(INVALID_TIMESTAMP)
    if params.get("method") not in HANDLERS:
        raise Refusal(INVALID_METHOD, params.get("method", ""))
    known = state.tokens.get(params.get("access_token", ""))
    if expired_by_fault or known is None or known.expires_at <= now:
        raise Refusal(INVALID_TOKEN)
    return known.shop


def business_params(params: dict) -> dict:
    try:
        business = json.loads(params.get(PARAM_JSON) or "{}")
    except ValueError:
        raise Refusal(INVALID_PARAMETER, f"{PARAM_JSON}不是JSON") from None
    if not isinstance(business, dict):
        raise Refusal(INVALID_PARAMETER, f"{PARAM_JSON}须为JSON对象")
    return business


def error_body(refusal: Refusal) -> dict:
    error = refusal.error
    detail = f": {refusal.detail}" if refusal.detail else ""
    return {"error_response": {"code": error.code, "zh_desc": error.zh_desc + detail,
                               "en_desc": error.en_desc, "request_id": uuid.uuid4().hex}}


async def _request_params(request: Request) -> dict:
    """JOS takes the parameters as a POST form or a GET query string; both are read."""
    params = dict(request.query_params)
    params.update(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    return params


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()
    index = OrderIndex(state)

    @router.api_route(GATEWAY_PATH, methods=["GET", "POST"])
    async def jd_gateway(request: Request) -> Response:
        params = await _request_params(request)
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
            result = HANDLERS[params["method"]](index, shop, business_params(params))
        except Refusal as refusal:
            return JSONResponse(error_body(refusal))
        body = {response_key(params["method"]): {"code": "0", **result}}
        if kind == "malformed":
            spoiled = spoil(body)
            if spoiled is None:  # nothing order-shaped: send a cut-off body instead
                return Response(json.dumps(body)[:20], media_type="application/json")
            body = spoiled
        return JSONResponse(body)

    @router.api_route(REFRESH_PATH, methods=["GET", "POST"])
    async def jd_refresh_token(request: Request) -> Response:
        params = await _request_params(request)
        fault = state.faults.take(PLATFORM)
        kind = fault.kind if fault else None
        if kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        if kind == "server_error":
            return PlainTextResponse("502 Bad Gateway", status_code=502)
        if kind == "malformed":
            return Response('{"access_token":"', media_type="application/json")
        answer = OAUTH_THROTTLED if kind == "rate_limit" else _refresh(
            state, params, spoiled=kind == "expired_token")
        if isinstance(answer, tuple):
            return JSONResponse({"code": answer[0], "msg": answer[1]})
        return JSONResponse(answer)

    return router


def _refresh(state: SandboxState, params: dict, spoiled: bool) -> dict | tuple[int, str]:
    secret = state.app_secrets.get(params.get("app_key", ""))
    if secret is None or not hmac.compare_digest(params.get("app_secret", ""), secret):
        return OAUTH_BAD_CLIENT
    if params.get("grant_type") != "refresh_token":
        return OAUTH_BAD_GRANT
    now = datetime.now(timezone.utc).replace(microsecond=0)
    known = None if spoiled else state.redeem(params.get("refresh_token", ""), now)
    if known is None:
        return OAUTH_BAD_REFRESH
    granted = state.grant(known.shop, now, TOKEN_LIFETIME, REFRESH_LIFETIME)
    return token_answer(granted, known.shop, now)


def _vender_id(shop: str) -> str:
    return str(stable_number(f"vender|{shop}"))


def token_answer(granted: dict, shop: str, now: datetime) -> dict:
    """JD's token JSON (reference §7.2 names the fields); times in epoch milliseconds."""
    return {
        "code": 0, "access_token": granted["access_token"],
        "expires_in": int((granted["access_expires_at"] - now).total_seconds()),
        "refresh_token": granted["refresh_token"],
        "refresh_token_expires": int(granted["refresh_expires_at"].timestamp() * 1000),
        "time": int(now.timestamp() * 1000), "uid": _vender_id(shop),
    }


def base_path(shop: str) -> str:
    return "/jd"  # one gateway for every vender; the access token names the shop


def register_shop(
    state: SandboxState, shop: str, now: datetime, *, refreshable: bool = True
) -> dict:
    """Authorise a fresh app for a vender (shop).

    `refreshable=False` stands for the JD app types whose tokens cannot be refreshed:
    they get no refresh token and must be re-authorised when the access token lapses.
    """
    app_key, app_secret = secrets.token_hex(16), secrets.token_hex(16)
    with state.lock:
        state.app_secrets[app_key] = app_secret
    granted = state.grant(shop, now, TOKEN_LIFETIME, REFRESH_LIFETIME if refreshable else None)
    return {
        "app_key": app_key, "app_secret": app_secret,
        "access_token": granted["access_token"],
        "refresh_token": granted.get("refresh_token", ""),
        "vender_id": _vender_id(shop),
    }
import sandbox.jd_after_sales  # noqa: F401,E402  (refund applications: adds them to HANDLERS)
