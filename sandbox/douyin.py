"""Douyin shop (抖店 / Doudian) simulator: one POST route per API path, signed query strings.

It follows reference §8 and the official Go SDK it cites: `POST /{path}` with `app_key`,
`method` (the path with dots), `timestamp`, `v=2`, `sign_method` and `sign` in the query,
the business parameters as the JSON body (`param_json`), HMAC-SHA256 signing over the
canonical (sorted, compact) `param_json`, the envelope `{code, msg, sub_code, sub_msg,
log_id, data}` with `code` 10000 on success, 7-day access and 14-day refresh tokens,
`order/searchList` paging from 0 by at most 100, and receiver data that is masks plus
ciphertexts opened by `order/batchDecrypt`. For stock sync it lists the shop's products
(`product/listV2`) and their SKUs (`sku/list`), and sets stock one SKU at a time
(`sku/syncStock`) or for many SKUs of one product, all or none (`sku/syncStockBatch`).
How an order looks on the wire lives in `sandbox.douyin_render`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import uuid
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sandbox.douyin_render import (
    STATUS_CODES, ListedProduct, decrypt, listed_products, render_order, render_product,
    render_sku, seconds, shop_id_of, shop_order_id,
)
from sandbox.model import SandboxState, SimOrder

PLATFORM = "douyin"
BASE_PATH = "/douyin"
ACCESS_LIFETIME = timedelta(days=7)  # [H] SDK struct comments
REFRESH_LIFETIME = timedelta(days=14)  # [H]
MAX_PAGE_SIZE = 100  # [H] "单页大小，限制100以内"
MAX_DECRYPT_ITEMS = 50  # [H] SDK order_batchDecrypt: "最大支持一次解密50条"
# [H] product/listV2: page and size at most 100 each, page*size at most 10 000
MAX_PRODUCT_PAGE, MAX_PRODUCT_ROWS = 100, 10_000

# --- UNVERIFIED (reference [L] or silent; chosen for the simulator) -----------------------
# No window limit for order/searchList is stored; we refuse update/create windows wider
# than 24 h, inclusive of both ends, so the connector's window splitting is exercised.
SEARCH_WINDOW_LIMIT_SECONDS = 24 * 3600
CLOCK_SKEW_LIMIT_SECONDS = 600  # isv.timestamp-invalid is [M]; the allowed skew is not known
# Sub-codes and messages for refusals the reference names no code for.
PARAMETER_INVALID_SUB = "isv.parameter-invalid"  # with code 40004 (非法的参数（业务校验）)
BUSINESS_ORDER_NOT_FOUND = "isv.business-failed:order-not-found"  # with code 50002
BUSINESS_NOT_SHIPPABLE = "isv.business-failed:order-status-not-allow"
BUSINESS_UNKNOWN_COMPANY = "isv.business-failed:logistics-company-invalid"
THROTTLED_SUB = ""  # 60000 carries no sub_code we know of
DECRYPT_AUTH_MISMATCH = 300008  # per-item err_no when a ciphertext is not the order's
AUTH_SUBJECT_TYPE = "MiniShop"
DEFAULT_PAGE_SIZE = 10  # searchList's size is optional; its default is not stored
# sku/syncStockBatch names no limit for sku_sync_list; the simulator takes 50.
MAX_BATCH_SKUS = 50
BUSINESS_PRODUCT_NOT_FOUND = "isv.business-failed:product-not-exist"
BUSINESS_SKU_NOT_FOUND = "isv.business-failed:sku-not-exist"
DEFAULT_SIGN_METHOD = "md5"  # when a caller sends no sign_method; the SDK always sends one
# A `method` that is not the path with dots is answered as an unknown API (70000).
# order/batchDecrypt: the reference marks its name [L] (Appendix C). Its path and fields
# ({cipher_infos[{auth_id, cipher_text}]} -> {decrypt_infos[{decrypt_text, err_no,
# data_type}]}) follow DOUDIAN-SDK api/order_batchDecrypt; the err_no values do not.
# Whether a refresh token stays usable after it was used is not stored: here it does
# (until its 14 days are over) and every refresh hands out a new pair.
# Doudian company codes (order/logisticsCompanyList) are not in the reference [L].
LOGISTICS_COMPANIES = tuple(
    {"id": company_id, "name": name, "code": code}
    for company_id, name, code in (
        (12, "顺丰速运", "shunfeng"), (15, "中通快递", "zhongtong"), (7, "圆通速递", "yuantong"),
        (4, "申通快递", "shentong"), (3, "韵达快递", "yunda"), (21, "京东物流", "jd"),
        (1, "EMS", "ems"), (1046, "极兔速递", "jtexpress"),
    )
)
# --- end UNVERIFIED ----------------------------------------------------------------------
COMPANIES_BY_CODE = {company["code"]: company for company in LOGISTICS_COMPANIES}


@dataclass(frozen=True)
class DoudianError:
    code: int
    msg: str
    sub_code: str = ""
    sub_msg: str = ""


# Codes, messages and sub-codes [M] (reference §8.5, PHP copy of 平台基础错误码汇总).
MISSING, ILLEGAL = "缺少必选参数（平台校验）", "非法的参数（平台校验）"
TOKEN_FAILED, BUSINESS_FAILED = "平台处理失败", "业务处理失败"
TOKEN_EXPIRED = DoudianError(40003, ILLEGAL, "isv.access-token-expired", "access_token已过期")
TOKEN_UNKNOWN = DoudianError(40003, ILLEGAL, "isv.access-token-no-existed",
                             "access_token不存在，请使用最新的access_token访问")
TOKEN_MISSING = DoudianError(40001, MISSING, "isv.access-token-missing",
                             "认证失败，access_token不能为空")
APP_UNKNOWN = DoudianError(40001, MISSING, "isv.app-id-missing", "认证失败，app_key不存在")
BAD_SIGN = DoudianError(40003, ILLEGAL, "isv.signature-invalid", "签名校验失败")
STALE_TIMESTAMP = DoudianError(40003, ILLEGAL, "isv.timestamp-invalid", "时间戳不合法")
BAD_JSON = DoudianError(40003, ILLEGAL, "isv.parameter-format-invalid", "业务参数json解析失败")
THROTTLED = DoudianError(60000, "触发限流，请稍后重试", THROTTLED_SUB)
API_OFFLINE = DoudianError(70000, "接口服务已下线", "isp.api-service-off", "API不存在或API已下线")
REFRESH_EXPIRED = DoudianError(50001, TOKEN_FAILED, "dop.token-generate-failed:token-expired",
                               "生成token失败，token已过期")
REFRESH_UNKNOWN = DoudianError(50001, TOKEN_FAILED, "dop.token-generate-failed:token-invalid",
                               "生成token失败，token不存在")
BAD_GRANT_TYPE = DoudianError(50001, TOKEN_FAILED, "dop.token-generate-failed:grant-type-invalid",
                              "生成token失败，grant_type参数取值不正确")
BAD_PARAMETER = DoudianError(40004, "非法的参数（业务校验）", PARAMETER_INVALID_SUB)
ORDER_NOT_FOUND = DoudianError(50002, BUSINESS_FAILED, BUSINESS_ORDER_NOT_FOUND, "订单不存在")
NOT_SHIPPABLE = DoudianError(50002, BUSINESS_FAILED, BUSINESS_NOT_SHIPPABLE, "订单状态不允许发货")
UNKNOWN_COMPANY = DoudianError(50002, BUSINESS_FAILED, BUSINESS_UNKNOWN_COMPANY, "物流公司不存在")
PRODUCT_NOT_FOUND = DoudianError(50002, BUSINESS_FAILED, BUSINESS_PRODUCT_NOT_FOUND, "商品不存在")
SKU_NOT_FOUND = DoudianError(50002, BUSINESS_FAILED, BUSINESS_SKU_NOT_FOUND, "sku不存在")


class Refusal(Exception):
    def __init__(self, error: DoudianError, detail: str = "") -> None:
        super().__init__(error.msg)
        self.error = error
        self.detail = detail


def canonical_param_json(params: dict) -> str:
    """Keys sorted at every level, no whitespace, no escaping of non-ASCII or HTML."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign(app_key: str, app_secret: str, method: str, timestamp: str, param_json: str,
         sign_method: str = "hmac-sha256") -> str:
    """Written apart from the connector's signer so each checks the other."""
    pattern = (f"{app_secret}app_key{app_key}method{method}param_json{param_json}"
               f"timestamp{timestamp}v2{app_secret}")
    if sign_method == "md5":
        return hashlib.md5(pattern.encode("utf-8")).hexdigest()
    return hmac.new(app_secret.encode(), pattern.encode("utf-8"), hashlib.sha256).hexdigest()


def _int(params: dict, name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value is None or value == "":
        if default is None:
            raise Refusal(BAD_PARAMETER, f"缺少参数{name}")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Refusal(BAD_PARAMETER, f"{name}不合法")
    try:
        return int(value)
    except ValueError:
        raise Refusal(BAD_PARAMETER, f"{name}不合法") from None


# ---- the shop's orders, sorted by update time once ---------------------------------------


class UpdateTimeline:
    """Each shop's orders by (update second, order id), rebuilt only when they changed.

    Orders are plain objects the generator and tests change in place, so each lookup
    compares the shop's list and its update times with those the timeline was built from
    (one attribute read per order) instead of sorting them on every page. Callers hold
    `state.lock`.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._built: dict[str, tuple[list, list, list[int], list[SimOrder]]] = {}
        self._ids: dict[str, dict[str, SimOrder]] = {}

    def window(self, shop: str, start: int, end: int) -> list[SimOrder]:
        orders = self.state.shop_orders(shop)
        stamps = [order.updated_at for order in orders]
        built = self._built.get(shop)
        if built is None or built[0] != orders or built[1] != stamps:
            keyed = sorted((seconds(o.updated_at), o.order_id, n) for n, o in enumerate(orders))
            built = (list(orders), stamps, [k[0] for k in keyed], [orders[k[2]] for k in keyed])
            self._built[shop] = built
        _, _, keys, ordered = built
        return ordered[bisect_left(keys, start) : bisect_right(keys, end)]

    def find(self, shop: str, order_id: str) -> SimOrder | None:
        ids = self._ids.get(shop, {})
        found = ids.get(order_id)
        if found is None or shop_order_id(found) != order_id:  # new, or its id was edited
            ids = self._ids[shop] = {}
            for order in self.state.shop_orders(shop):
                ids.setdefault(shop_order_id(order), order)
            found = ids.get(order_id)
        return found


# ---- APIs ------------------------------------------------------------------------------


def _window(params: dict, prefix: str) -> tuple[int, int] | None:
    if params.get(f"{prefix}_start") in (None, "") and params.get(f"{prefix}_end") in (None, ""):
        return None
    start, end = _int(params, f"{prefix}_start"), _int(params, f"{prefix}_end")
    if end < start or end - start > SEARCH_WINDOW_LIMIT_SECONDS:
        hours = SEARCH_WINDOW_LIMIT_SECONDS // 3600
        raise Refusal(BAD_PARAMETER, f"{prefix}_start与{prefix}_end的跨度不能超过{hours}小时")
    return start, end


def _matches(timeline: UpdateTimeline, shop: str, params: dict) -> list[SimOrder]:
    updated, created = _window(params, "update_time"), _window(params, "create_time")
    candidates = timeline.window(shop, *(updated or (0, 2**62)))
    if created:
        candidates = [o for o in candidates if created[0] <= seconds(o.created_at) <= created[1]]
    wanted_status = _status_filter(params.get("combine_status"))
    if wanted_status is not None:
        candidates = [o for o in candidates if STATUS_CODES[o.status] in wanted_status]
    tracking_no = params.get("tracking_no")
    if tracking_no:
        candidates = [o for o in candidates
                      if any(e.get("tracking_number") == tracking_no for e in o.tracking)]
    return candidates


def _status_filter(combine: object) -> set[int] | None:
    if not combine:
        return None
    if not isinstance(combine, list) or len(combine) != 1 or not isinstance(combine[0], dict):
        raise Refusal(BAD_PARAMETER, "combine_status只支持一个元素")
    text = str(combine[0].get("order_status") or "")
    try:
        return {int(code) for code in text.split(",") if code.strip()} or None
    except ValueError:
        raise Refusal(BAD_PARAMETER, "combine_status.order_status不合法") from None


def search_list(timeline: UpdateTimeline, shop: str, params: dict) -> dict:
    page, size = _int(params, "page", 0), _int(params, "size", DEFAULT_PAGE_SIZE)
    if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
        raise Refusal(BAD_PARAMETER, f"page从0开始, size须为1到{MAX_PAGE_SIZE}")
    order_by = params.get("order_by") or "create_time"
    if order_by not in ("create_time", "update_time"):
        raise Refusal(BAD_PARAMETER, "order_by不合法")
    with timeline.state.lock:
        found = _matches(timeline, shop, params)
        if order_by == "create_time":  # the timeline is by update time already
            found = sorted(found, key=lambda o: (seconds(o.created_at), o.order_id))
        if params.get("order_asc") is not True:  # the platform's default: newest first
            found = found[::-1]
        chosen = [render_order(o) for o in found[page * size : (page + 1) * size]]
    return {"page": page, "size": size, "total": len(found), "shop_order_list": chosen}


def logistics_company_list(timeline: UpdateTimeline, shop: str, params: dict) -> list[dict]:
    return [dict(company) for company in LOGISTICS_COMPANIES]


def logistics_add(timeline: UpdateTimeline, shop: str, params: dict) -> dict:
    order_id = str(params.get("order_id") or "")
    company_code = str(params.get("company_code") or "")
    tracking_number = str(params.get("logistics_code") or "").strip()
    if not order_id or not company_code or not tracking_number:
        raise Refusal(BAD_PARAMETER, "order_id, company_code, logistics_code必填")
    company = COMPANIES_BY_CODE.get(company_code)
    if company is None:
        raise Refusal(UNKNOWN_COMPANY, company_code)
    with timeline.state.lock:
        order = timeline.find(shop, order_id)
        if order is None:
            raise Refusal(ORDER_NOT_FOUND, order_id)
        if order.status != "paid":
            raise Refusal(NOT_SHIPPABLE, order.status)
        now = datetime.now(timezone.utc)
        order.tracking.append({
            "platform": PLATFORM, "company_code": company_code, "company_name": company["name"],
            "carrier_code": company_code, "tracking_number": tracking_number, "shipped_at": now,
        })
        order.status, order.updated_at = "shipped", now
    return {}


def batch_decrypt(timeline: UpdateTimeline, shop: str, params: dict) -> dict:
    wanted = params.get("cipher_infos")
    if not isinstance(wanted, list) or not 1 <= len(wanted) <= MAX_DECRYPT_ITEMS:
        raise Refusal(BAD_PARAMETER, f"cipher_infos须为1到{MAX_DECRYPT_ITEMS}项")
    results = []
    for item in wanted:
        item = item if isinstance(item, dict) else {}
        auth_id, cipher_text = str(item.get("auth_id", "")), str(item.get("cipher_text", ""))
        opened = decrypt(cipher_text)
        ok = opened is not None and opened[1] == auth_id
        results.append({
            "auth_id": auth_id, "cipher_text": cipher_text,
            "decrypt_text": opened[2] if ok else "", "data_type": opened[0] if ok else 0,
            "err_no": 0 if ok else DECRYPT_AUTH_MISMATCH, "err_msg": "" if ok else "解密失败",
            "is_virtual_tel": False, "expire_time": 0, "phone_no_a": "", "phone_no_b": "",
        })
    return {"decrypt_infos": results, "custom_err": {"err_code": 0, "err_msg": ""}}


def token_refresh(state: SandboxState, params: dict) -> dict:
    if params.get("grant_type") != "refresh_token":
        raise Refusal(BAD_GRANT_TYPE)
    refresh_token = str(params.get("refresh_token") or "")
    now = datetime.now(timezone.utc)
    with state.lock:
        known = state.refresh_tokens.get(refresh_token)
    if known is None:
        raise Refusal(REFRESH_UNKNOWN)
    if state.redeem(refresh_token, now) is None:
        raise Refusal(REFRESH_EXPIRED)
    granted = state.grant(known.shop, now, ACCESS_LIFETIME, REFRESH_LIFETIME)
    shop_id = shop_id_of(known.shop)
    return {
        "access_token": granted["access_token"], "refresh_token": granted["refresh_token"],
        "expires_in": int(ACCESS_LIFETIME.total_seconds()), "scope": "SCOPE",
        "shop_id": shop_id, "shop_name": known.shop, "authority_id": str(shop_id),
        "auth_subject_type": AUTH_SUBJECT_TYPE,
    }


# ---- the shop's products and their stock ---------------------------------------------

# Idempotent ids of increments already applied, per shop: a repeat is answered, not added.
_APPLIED_INCREMENTS: set[tuple[str, str]] = set()


def _products(timeline: UpdateTimeline, shop: str) -> dict[int, ListedProduct]:
    return listed_products(shop, timeline.state.listed_skus(shop))


def _shop_stock(timeline: UpdateTimeline, shop: str) -> dict[str, int]:
    with timeline.state.lock:
        return dict(timeline.state.stock_levels.get(shop, {}))


def product_list(timeline: UpdateTimeline, shop: str, params: dict) -> dict:
    page, size = _int(params, "page", 1), _int(params, "size", DEFAULT_PAGE_SIZE)
    if not 1 <= page <= MAX_PRODUCT_PAGE or not 1 <= size <= MAX_PRODUCT_PAGE:
        raise Refusal(BAD_PARAMETER,
                      f"page从1开始且不超过{MAX_PRODUCT_PAGE}, size须为1到{MAX_PRODUCT_PAGE}")
    if page * size > MAX_PRODUCT_ROWS:
        raise Refusal(BAD_PARAMETER, f"page*size不能超过{MAX_PRODUCT_ROWS}")
    products = list(_products(timeline, shop).values())
    wanted_ids = params.get("product_id")  # string[] of at most 100 (SDK)
    if wanted_ids:
        named = wanted_ids if isinstance(wanted_ids, list) else []
        wanted = {int(i) for i in named if str(i).isdigit()}
        products = [p for p in products if p.product_id in wanted]
    # Every sandbox product is online (0) and approved (3): other filters find nothing.
    if _int(params, "status", 0) != 0 or _int(params, "check_status", 3) != 3:
        products = []
    chosen = [render_product(p) for p in products[(page - 1) * size : page * size]]
    return {"data": chosen, "total": len(products), "page": page, "size": size}


def sku_list(timeline: UpdateTimeline, shop: str, params: dict) -> list[dict]:
    listed = _products(timeline, shop).get(_int(params, "product_id"))
    if listed is None:
        raise Refusal(PRODUCT_NOT_FOUND, str(params.get("product_id")))
    stock = _shop_stock(timeline, shop)
    return [render_sku(listed, sku_id, code, stock) for sku_id, code in listed.sku_ids.items()]


def _stock_change(params: dict) -> tuple[bool, str]:
    """(incremental, idempotent_id): an increment must name its idempotent_id (doc)."""
    incremental = params.get("incremental", False)
    if not isinstance(incremental, bool):
        raise Refusal(BAD_PARAMETER, "incremental须为布尔值")
    idempotent_id = str(params.get("idempotent_id") or "")
    if incremental and not idempotent_id:
        raise Refusal(BAD_PARAMETER, "incremental=true时idempotent_id必填")
    return incremental, idempotent_id


def _set_stocks(timeline: UpdateTimeline, shop: str, changes: dict[str, int],
                incremental: bool, idempotent_id: str) -> None:
    """All the changes or none: a full number below 0, or an increment that would take a
    SKU below 0, refuses the call before anything is written."""
    if incremental and (shop, idempotent_id) in _APPLIED_INCREMENTS:
        return
    current = _shop_stock(timeline, shop)
    final = {code: (current.get(code, 0) + n if incremental else n) for code, n in changes.items()}
    if any(n < 0 for n in final.values()):
        raise Refusal(BAD_PARAMETER, "库存值不能为负数" if not incremental else "更新库存数失败: 库存不足")
    for code, number in final.items():
        timeline.state.set_stock(shop, code, number)
    if incremental:
        _APPLIED_INCREMENTS.add((shop, idempotent_id))


def sync_stock(timeline: UpdateTimeline, shop: str, params: dict) -> dict:
    incremental, idempotent_id = _stock_change(params)
    stock_num = _int(params, "stock_num")
    products = _products(timeline, shop)
    if params.get("product_id") not in (None, "", 0):
        listed = products.get(_int(params, "product_id"))
        if listed is None:
            raise Refusal(PRODUCT_NOT_FOUND, str(params["product_id"]))
        candidates = [listed]
    else:
        candidates = list(products.values())
    sku_id, code = params.get("sku_id"), str(params.get("code") or "")
    if sku_id not in (None, "", 0):  # the SKU id names the SKU; code only without it
        wanted = _int(params, "sku_id")
        found = next((c.sku_ids[wanted] for c in candidates if wanted in c.sku_ids), None)
    elif code:
        found = next((code for c in candidates if code in c.sku_ids.values()), None)
    else:
        raise Refusal(BAD_PARAMETER, "sku_id与code须填一个")
    if found is None:
        raise Refusal(SKU_NOT_FOUND, str(sku_id or code))
    _set_stocks(timeline, shop, {found: stock_num}, incremental, idempotent_id)
    return {}


def sync_stock_batch(timeline: UpdateTimeline, shop: str, params: dict) -> dict:
    incremental, idempotent_id = _stock_change(params)
    listed = _products(timeline, shop).get(_int(params, "product_id"))
    if listed is None:
        raise Refusal(PRODUCT_NOT_FOUND, str(params.get("product_id")))
    entries = params.get("sku_sync_list")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH_SKUS:
        raise Refusal(BAD_PARAMETER, f"sku_sync_list须为1到{MAX_BATCH_SKUS}项")
    changes: dict[str, int] = {}
    for entry in entries:
        entry = entry if isinstance(entry, dict) else {}
        if _int(entry, "sku_type", 0) != 0:  # a simulator limit, not the platform's
            raise Refusal(BAD_PARAMETER, "区域库存与阶梯库存 (sku_type 1/10) are not simulated")
        code = listed.sku_ids.get(_int(entry, "sku_id"))
        if code is None:  # all or nothing (doc): one wrong SKU refuses the whole batch
            raise Refusal(SKU_NOT_FOUND, str(entry.get("sku_id")))
        changes[code] = _int(entry, "stock_num")
    _set_stocks(timeline, shop, changes, incremental, idempotent_id)
    return {}


SHOP_APIS = {
    "order.searchList": search_list,
    "order.logisticsCompanyList": logistics_company_list,
    "order.logisticsAdd": logistics_add,
    "order.batchDecrypt": batch_decrypt,
    "product.listV2": product_list,
    "sku.list": sku_list,
    "sku.syncStock": sync_stock,
    "sku.syncStockBatch": sync_stock_batch,
}
TOKEN_APIS = {"token.refresh"}  # signed, but called without an access_token


# ---- the gateway -------------------------------------------------------------------------


def _business_params(body: bytes) -> dict:
    try:
        params = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        raise Refusal(BAD_JSON) from None
    if not isinstance(params, dict):
        raise Refusal(BAD_JSON)
    return params


def authenticate(state: SandboxState, method: str, query: dict, params: dict,
                 expired_by_fault: bool) -> str | None:
    """Check app, signature, clock and token in the gateway's order; return the shop."""
    app_key = query.get("app_key", "")
    secret = state.app_secrets.get(app_key)
    if secret is None:
        raise Refusal(APP_UNKNOWN)
    if query.get("method") != method:
        raise Refusal(API_OFFLINE, f"method {query.get('method')!r} is not this path")
    sign_method = query.get("sign_method") or DEFAULT_SIGN_METHOD
    expected = sign(app_key, secret, method, query.get("timestamp", ""),
                    canonical_param_json(params), sign_method)
    if not hmac.compare_digest(query.get("sign", ""), expected) or query.get("v") != "2":
        raise Refusal(BAD_SIGN)
    try:
        skew = abs(datetime.now(timezone.utc).timestamp() - int(query.get("timestamp", "")))
    except ValueError:
        raise Refusal(STALE_TIMESTAMP) from None
    if skew > CLOCK_SKEW_LIMIT_SECONDS:
        raise Refusal(STALE_TIMESTAMP)
    if method in TOKEN_APIS:
        return None
    token = query.get("access_token", "")
    if not token:
        raise Refusal(TOKEN_MISSING)
    known = state.tokens.get(token)
    if known is None:
        raise Refusal(TOKEN_UNKNOWN)
    if expired_by_fault or known.expires_at <= datetime.now(timezone.utc):
        raise Refusal(TOKEN_EXPIRED)
    return known.shop


def envelope(data: object = None, error: DoudianError | None = None, detail: str = "") -> dict:
    log_id = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:18].upper()
    if error is None:
        return {"code": 10000, "msg": "success", "sub_code": "", "sub_msg": "",
                "log_id": log_id, "data": data}
    return {"code": error.code, "msg": error.msg, "sub_code": error.sub_code,
            "sub_msg": error.sub_msg or detail, "log_id": log_id, "data": None}


def spoil(body: dict) -> dict | None:
    """Break one order of a list: no order id, sub-orders as a string; None if no order."""
    data = body.get("data")
    orders = data.get("shop_order_list") if isinstance(data, dict) else None
    if not orders:
        return None
    target = orders[len(orders) // 2]
    target.pop("order_id", None)
    target["sku_order_list"] = json.dumps(target["sku_order_list"], ensure_ascii=False)
    return body


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()
    timeline = UpdateTimeline(state)

    @router.post(BASE_PATH + "/{group}/{name}")
    async def doudian_gateway(group: str, name: str, request: Request) -> Response:
        fault = state.faults.take(PLATFORM)
        kind = fault.kind if fault else None
        if kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        if kind == "server_error":
            return PlainTextResponse("502 Bad Gateway", status_code=502)
        method = f"{group}.{name}"
        try:
            if kind == "rate_limit":
                raise Refusal(THROTTLED)
            params = _business_params(await request.body())
            query = dict(request.query_params)
            shop = authenticate(state, method, query, params, kind == "expired_token")
            if method in TOKEN_APIS:
                body = envelope(token_refresh(state, params))
            elif method in SHOP_APIS:
                body = envelope(SHOP_APIS[method](timeline, shop, params))
            else:
                raise Refusal(API_OFFLINE, method)
        except Refusal as refusal:
            return JSONResponse(envelope(error=refusal.error, detail=refusal.detail))
        if kind == "malformed":
            spoiled = spoil(body)
            if spoiled is None:  # nothing order-shaped: send a cut-off body instead
                return Response(json.dumps(body)[:20], media_type="application/json")
            body = spoiled
        return JSONResponse(body)

    return router


def base_path(shop: str) -> str:
    return BASE_PATH  # one gateway for every shop; the access token names the shop


def register_shop(state: SandboxState, shop: str, now: datetime) -> dict:
    """Authorise a fresh self-use app for the shop: 7-day access, 14-day refresh token."""
    app_key = str(7 * 10**18 + secrets.randbelow(10**18))  # 19 digits, as Doudian checks
    app_secret = str(uuid.uuid4())
    granted = state.grant(shop, now, ACCESS_LIFETIME, REFRESH_LIFETIME)
    with state.lock:
        state.app_secrets[app_key] = app_secret
    return {
        "app_key": app_key, "app_secret": app_secret,
        "access_token": granted["access_token"], "refresh_token": granted["refresh_token"],
        "shop_id": str(shop_id_of(shop)),
    }
import sandbox.douyin_after_sales  # noqa: F401,E402  (after-sales: adds its APIs to SHOP_APIS)
