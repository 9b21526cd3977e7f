"""Taobao / Tmall TOP simulator: the `/router/rest` gateway and the APIs the connector uses.

It follows reference §5: system parameters in the query string and business parameters
in the form body, signed together (MD5, HMAC-MD5 or HMAC-SHA256, uppercase hex); China
time stamps checked for ±10 minutes of skew; `<api>_response` or `error_response` bodies
with HTTP 200; the increment list by modified time in windows of at most one day, newest
first; desensitised receivers opened by `taobao.top.oaid.decrypt`; offline shipment with
a fixed carrier list; token refresh only for 服务市场 (service market) apps; and the shop's
items for stock sync: `taobao.items.onsale.get` and `taobao.item.skus.get` to read them,
`taobao.skus.quantity.update` (up to 20 SKUs of one item) and `taobao.item.quantity.update`
to set their stock, fully (type=1) or incrementally (type=2).
How a trade looks on the wire lives in `sandbox.taobao_render`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import uuid
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sandbox.model import SandboxState, SimOrder
from sandbox.taobao_render import (
    INCREMENT_FIELDS, LOGISTICS_COMPANIES, ONSALE_FIELDS, TRADE_STATUSES, ListedItem,
    decrypted_receiver, listed_items, oaid, parse_china_time, quantity_answer, receiver_plaintext,
    render_item, render_sku, render_trade, response_key, select_fields, sign, spoil, tid,
    token_result, trade_status,
)

PLATFORM = "taobao"
GATEWAY_PATH = "/taobao/router/rest"
CLOCK_SKEW_LIMIT = timedelta(minutes=10)  # [H] ±10 min
MODIFIED_WINDOW_LIMIT = timedelta(days=1)  # [H] increment span ≤ 1 day
MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE = 100, 40  # [H]
MAX_DECRYPT_QUERIES = 20  # [H]
MAX_ITEM_PAGE_SIZE, DEFAULT_ITEM_PAGE_SIZE = 200, 40  # [H] taobao.items.onsale.get
MAX_ITEM_ROWS = 20_000  # [H] page_no * page_size beyond this is refused
MAX_SKU_LOOKUP_ITEMS = 40  # [H] taobao.item.skus.get: at most 40 num_iids
MAX_SKUS_PER_QUANTITY_UPDATE = 20  # [H] taobao.skus.quantity.update
FULL_UPDATE, INCREMENTAL_UPDATE = "1", "2"  # [H] `type` of both quantity updates
DECRYPT_SCENES = frozenset({"1001", "1002", "1003", "1004", "1005", "1006", "1007", "2001", "2002"})
SERVICE_MARKET, SELF_USE = "service_market", "self_use"  # app kinds (reference §5.3 [H])


@dataclass(frozen=True)
class TopError:
    code: int
    msg: str
    sub_code: str = ""


# --- UNVERIFIED (reference [L] or absent): error answers, tokens, window edges ----------
# Codes 7, 25-31, 40 and 41 and their msg are reference §5.6 [M]; every sub_code, the
# other codes (remembered from TOP's public table) and which code answers what are [L].
THROTTLED = TopError(7, "App Call Limited", "accesscontrol.limited-by-api-access-count")
BAD_SIGNATURE = TopError(25, "Invalid Signature")
MISSING_SESSION = TopError(26, "Missing Session")
INVALID_SESSION = TopError(27, "Invalid Session", "invalid-sessionkey")
MISSING_APP_KEY = TopError(28, "Missing App Key")
INVALID_APP_KEY = TopError(29, "Invalid App Key")
INVALID_TIMESTAMP = TopError(31, "Invalid Timestamp")
MISSING_ARGUMENT = TopError(40, "Missing Required Arguments", "isv.missing-parameter")
INVALID_ARGUMENT = TopError(41, "Invalid Arguments", "isv.invalid-parameter")
# A self-use app asking for a refresh: the app lacks the permission (code 11 [M]).
NO_ISV_PERMISSION = TopError(11, "Insufficient ISV Permissions", "isv.permission-api-package-limit")
MISSING_METHOD = TopError(21, "Missing method")
INVALID_METHOD = TopError(22, "Invalid method")
INVALID_FORMAT = TopError(23, "Invalid format")
MISSING_SIGNATURE = TopError(24, "Missing signature")
MISSING_TIMESTAMP = TopError(30, "Missing timestamp")
UNSUPPORTED_VERSION = TopError(34, "Unsupported version")
TRADE_NOT_FOUND = TopError(15, "Remote service error", "isv.trade-not-exist")
NOT_SHIPPABLE = TopError(15, "Remote service error", "isv.logistics-offline-service-error")
UNKNOWN_COMPANY = TopError(15, "Remote service error", "isv.logistics-company-not-exist")
REFRESH_TOKEN_INVALID = TopError(15, "Remote service error", "isv.refresh-token-invalid")
# Item and SKU refusals of the quantity updates: TOP's own sub_codes are not in the
# material we hold; code 15 with isv.* is how TOP refuses a caller's business request.
ITEM_NOT_FOUND = TopError(15, "Remote service error", "isv.item-not-exist")
SKU_NOT_FOUND = TopError(15, "Remote service error", "isv.item-sku-not-exist")
ITEM_HAS_SKUS = TopError(15, "Remote service error", "isv.item-quantity-sku-required")
# taobao.skus.quantity.update is taken to refuse the whole item when one named SKU is not
# the item's (as Doudian documents for its batch); the doc says nothing either way.
# Throttling names its ban in sub_msg; the connector reads the seconds from it.
BAN_MESSAGE = "This ban will last for {seconds} more seconds"
# Session lifetimes depend on the app kind and subscription; no single number exists [M].
TOKEN_LIFETIMES = {
    SERVICE_MARKET: (timedelta(days=1), timedelta(days=30)),  # (access, refresh)
    SELF_USE: (timedelta(days=365), timedelta(days=365)),  # refresh token issued, never honoured
}
SESSION_PREFIX = "6100"
REFRESH_TOKEN_SINGLE_USE = False  # a refresh answers with a new refresh token too
TOKEN_RESULT_AS_TEXT = True  # token_result (type Json) arrives as a JSON string
END_MODIFIED_INCLUDED = True  # whether a trade modified at end_modified is in the window
EMPTY_LIST_LEFT_OUT = True  # an empty page carries no "trades" key at all
# oaid.decrypt: a (tid, oaid) pair never issued is left out of receiver_list, not an error.
# --- end UNVERIFIED
COMPANIES_BY_CODE = {company["code"]: company for company in LOGISTICS_COMPANIES}

# Per-state bookkeeping the shared SandboxState has no field for: the kind of each app.
_APP_KINDS: dict[str, str] = {}


class Refusal(Exception):
    def __init__(self, error: TopError, sub_msg: str = "") -> None:
        super().__init__(error.msg)
        self.error, self.sub_msg = error, sub_msg


# ---- parameters -------------------------------------------------------------------------


def _required(params: dict, name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise Refusal(MISSING_ARGUMENT, f"Missing required arguments:{name}")
    return value


def _int(params: dict, name: str, default: int, low: int, high: int) -> int:
    text = params.get(name) or str(default)
    if not text.isdigit() or not low <= int(text) <= high:
        raise Refusal(INVALID_ARGUMENT, f"{name} must be {low}..{high}")
    return int(text)


def _time(params: dict, name: str) -> datetime:
    moment = parse_china_time(_required(params, name))
    if moment is None:
        raise Refusal(INVALID_ARGUMENT, f"{name} must be yyyy-MM-dd HH:mm:ss")
    return moment


def _fields(params: dict) -> frozenset[str]:
    return frozenset(f.strip() for f in _required(params, "fields").split(",") if f.strip())


# ---- the shop's trades, sorted once ----------------------------------------------------


class TradeIndex:
    """Each shop's trades by modified second, and by tid.

    Sorting a shop on every page made paging cost pages × orders. The index is rebuilt
    only when the shop's list or an order's update time differs from what it was built
    from (orders are plain objects the generator and tests change in place). It also
    remembers each oaid it served, so an oaid that went stale after an address edit can
    still be opened (with matched=false), as on Taobao. Callers hold `state.lock`.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._built: dict[str, tuple[list, list[datetime], list[int], list[SimOrder]]] = {}
        self._by_tid: dict[str, dict[int, SimOrder]] = {}
        self.served_oaids: dict[tuple[str, int], tuple[str, ...]] = {}

    def _timeline(self, shop: str) -> tuple[list[int], list[SimOrder]]:
        orders = self.state.shop_orders(shop)
        stamps = [order.updated_at for order in orders]
        built = self._built.get(shop)
        if built is None or built[0] != orders or built[1] != stamps:
            keyed = sorted((int(o.updated_at.timestamp()), o.order_id, n)
                           for n, o in enumerate(orders))
            built = (list(orders), stamps, [k[0] for k in keyed], [orders[k[2]] for k in keyed])
            self._built[shop] = built
            self._by_tid[shop] = {tid(order): order for order in reversed(orders)}
        return built[2], built[3]

    def newest_first(self, shop: str, start: datetime, end: datetime) -> list[SimOrder]:
        """Trades modified from start to end (see END_MODIFIED_INCLUDED), newest first."""
        seconds, ordered = self._timeline(shop)
        last = bisect_right if END_MODIFIED_INCLUDED else bisect_left
        first = bisect_left(seconds, int(start.timestamp()))
        return ordered[first : last(seconds, int(end.timestamp()))][::-1]

    def find(self, shop: str, wanted: str) -> SimOrder:
        self._timeline(shop)
        order = self._by_tid[shop].get(int(wanted)) if wanted.isdigit() else None
        if order is None:
            raise Refusal(TRADE_NOT_FOUND, f"trade {wanted} does not exist")
        return order

    def serve(
        self, order: SimOrder, fields: frozenset[str], allowed: frozenset[str] | None
    ) -> dict:
        trade = render_trade(order)
        self.served_oaids[(trade["oaid"], trade["tid"])] = receiver_plaintext(order)
        return select_fields(trade, fields, allowed)


# ---- the APIs ---------------------------------------------------------------------------


def increment_get(index: TradeIndex, shop: str, params: dict) -> dict:
    fields = _fields(params)
    start, end = _time(params, "start_modified"), _time(params, "end_modified")
    if end <= start or end - start > MODIFIED_WINDOW_LIMIT:
        raise Refusal(INVALID_ARGUMENT, "end_modified必须大于start_modified且时间跨度不能大于一天")
    page_no = _int(params, "page_no", 1, 1, 10**6)
    size = _int(params, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    wanted_status = params.get("status", "")
    if wanted_status and wanted_status not in TRADE_STATUSES:
        raise Refusal(INVALID_ARGUMENT, f"status {wanted_status} is not a trade status")
    with index.state.lock:
        matches = index.newest_first(shop, start, end)
        if wanted_status:
            matches = [o for o in matches if trade_status(o) == wanted_status]
        chosen = matches[(page_no - 1) * size : page_no * size]
        page = [index.serve(order, fields, INCREMENT_FIELDS) for order in chosen]
    body: dict = {"request_id": uuid.uuid4().hex}
    if params.get("use_has_next") == "true":  # the count is skipped, has_next added [H]
        body["has_next"] = page_no * size < len(matches)
    else:
        body["total_results"] = len(matches)
    if page or not EMPTY_LIST_LEFT_OUT:
        body["trades"] = {"trade": page}
    return body


def fullinfo_get(index: TradeIndex, shop: str, params: dict) -> dict:
    fields, wanted = _fields(params), _required(params, "tid")
    with index.state.lock:
        trade = index.serve(index.find(shop, wanted), fields, None)
    return {"trade": trade, "request_id": uuid.uuid4().hex}


def companies_get(index: TradeIndex, shop: str | None, params: dict) -> dict:
    fields = _fields(params)
    listed = [{k: v for k, v in c.items() if k in fields} for c in LOGISTICS_COMPANIES]
    return {"logistics_companies": {"logistics_company": listed}, "request_id": uuid.uuid4().hex}


def offline_send(index: TradeIndex, shop: str, params: dict) -> dict:
    wanted, out_sid = _required(params, "tid"), _required(params, "out_sid").strip()
    company = COMPANIES_BY_CODE.get(_required(params, "company_code"))
    if company is None:
        raise Refusal(UNKNOWN_COMPANY, f"物流公司{params['company_code']}不存在")
    if not re.fullmatch(company["reg_mail_no"], out_sid):
        raise Refusal(INVALID_ARGUMENT, "运单号不符合规则")
    if params.get("is_split") == "1":  # a simulator limit, not the platform's
        raise Refusal(INVALID_ARGUMENT, "拆单发货 (is_split) is not simulated")
    with index.state.lock:
        order = index.find(shop, wanted)
        if trade_status(order) != "WAIT_SELLER_SEND_GOODS":
            raise Refusal(NOT_SHIPPABLE, f"交易状态{trade_status(order)}不允许发货")
        now = datetime.now(timezone.utc)
        order.tracking.append({
            "platform": PLATFORM, "carrier_code": company["code"], "company_name": company["name"],
            "tracking_number": out_sid, "shipped_at": now,
        })
        order.status, order.updated_at = "shipped", now
    return {"shipping": {"is_success": True}, "request_id": uuid.uuid4().hex}


def oaid_decrypt(index: TradeIndex, shop: str, params: dict) -> dict:
    try:
        queries = json.loads(_required(params, "query_list"))
    except ValueError:
        raise Refusal(INVALID_ARGUMENT, "query_list is not JSON") from None
    if not isinstance(queries, list) or not 1 <= len(queries) <= MAX_DECRYPT_QUERIES:
        raise Refusal(INVALID_ARGUMENT, f"query_list holds 1..{MAX_DECRYPT_QUERIES} queries")
    opened = []
    with index.state.lock:
        for query in queries:
            query = query if isinstance(query, dict) else {}
            if str(query.get("scene", "")) not in DECRYPT_SCENES:
                raise Refusal(INVALID_ARGUMENT, f"scene {query.get('scene')!r} is unknown")
            receiver = _open(index, shop, str(query.get("tid", "")), str(query.get("oaid", "")))
            if receiver is not None:
                opened.append(receiver)
    return {"receiver_list": {"receiver": opened}, "request_id": uuid.uuid4().hex}


def _open(index: TradeIndex, shop: str, wanted: str, asked_oaid: str) -> dict | None:
    try:
        order = index.find(shop, wanted)
    except Refusal:
        return None
    matched = oaid(order) == asked_oaid
    if matched:
        plaintext = receiver_plaintext(order)
    else:  # stale: what the oaid stood for when it was served, if it ever was
        plaintext = index.served_oaids.get((asked_oaid, tid(order)))
    if plaintext is None:
        return None
    now = datetime.now(timezone.utc)
    return decrypted_receiver(order, wanted, asked_oaid, plaintext, matched, now)


# ---- the shop's items and their stock ---------------------------------------------


def _signed(params: dict, name: str) -> int:
    text = _required(params, name).strip()
    if not text.lstrip("-").isdigit():
        raise Refusal(INVALID_ARGUMENT, f"{name} must be an integer")
    return int(text)


def _shop_items(state: SandboxState, shop: str) -> tuple[dict[int, ListedItem], dict[str, int]]:
    items = listed_items(shop, state.listed_skus(shop))
    with state.lock:
        return items, dict(state.stock_levels.get(shop, {}))


def _item(items: dict[int, ListedItem], params: dict) -> ListedItem:
    wanted = _required(params, "num_iid")
    item = items.get(int(wanted)) if wanted.isdigit() else None
    if item is None:
        raise Refusal(ITEM_NOT_FOUND, f"商品{wanted}不存在或不属于当前卖家")
    return item


def _update_mode(params: dict) -> str:
    mode = params.get("type") or FULL_UPDATE
    if mode not in (FULL_UPDATE, INCREMENTAL_UPDATE):
        raise Refusal(INVALID_ARGUMENT, "type must be 1 (全量) or 2 (增量)")
    return mode


def _apply(state: SandboxState, shop: str, changes: dict[str, int], mode: str) -> None:
    """Set (or, incrementally, add to) each SKU's stock; a full update below 0 is refused
    before anything is written, an increment never takes the stock below 0 (doc)."""
    if mode == FULL_UPDATE and any(quantity < 0 for quantity in changes.values()):
        raise Refusal(INVALID_ARGUMENT, "全量更新时库存值不能为负数")
    with state.lock:
        current = dict(state.stock_levels.get(shop, {}))
    for sku, quantity in changes.items():
        final = quantity if mode == FULL_UPDATE else max(current.get(sku, 0) + quantity, 0)
        state.set_stock(shop, sku, final)


def items_onsale_get(index: TradeIndex, shop: str, params: dict) -> dict:
    fields = _fields(params)
    unknown = sorted(fields - ONSALE_FIELDS)
    if unknown:
        raise Refusal(INVALID_ARGUMENT, f"fields not supported: {','.join(unknown)}")
    page_no = _int(params, "page_no", 1, 1, 10**6)
    size = _int(params, "page_size", DEFAULT_ITEM_PAGE_SIZE, 1, MAX_ITEM_PAGE_SIZE)
    if page_no * size > MAX_ITEM_ROWS:
        raise Refusal(INVALID_ARGUMENT, f"page_no*page_size不能超过{MAX_ITEM_ROWS}")
    order_by = params.get("order_by") or "list_time:desc"
    if order_by not in ("list_time:desc", "list_time:asc"):  # the simulator sorts by these
        raise Refusal(INVALID_ARGUMENT, f"order_by {order_by} is not simulated")
    items, stock = _shop_items(index.state, shop)
    ordered = list(items.values())
    if order_by == "list_time:desc":
        ordered.reverse()
    chosen = ordered[(page_no - 1) * size : page_no * size]
    page = [{k: v for k, v in render_item(shop, item, stock).items() if k in fields}
            for item in chosen]
    body: dict = {"total_results": len(ordered), "request_id": uuid.uuid4().hex}
    if page or not EMPTY_LIST_LEFT_OUT:
        body["items"] = {"item": page}
    return body


def item_skus_get(index: TradeIndex, shop: str, params: dict) -> dict:
    fields = _fields(params)
    wanted = [part.strip() for part in _required(params, "num_iids").split(",") if part.strip()]
    if not 1 <= len(wanted) <= MAX_SKU_LOOKUP_ITEMS or not all(w.isdigit() for w in wanted):
        raise Refusal(INVALID_ARGUMENT, f"num_iids holds 1..{MAX_SKU_LOOKUP_ITEMS} item ids")
    items, stock = _shop_items(index.state, shop)
    skus = [{k: v for k, v in render_sku(item, sku_id, sku, stock).items() if k in fields}
            for item in (items.get(int(w)) for w in dict.fromkeys(wanted)) if item is not None
            for sku_id, sku in item.sku_ids.items()]
    body: dict = {"request_id": uuid.uuid4().hex}
    if skus or not EMPTY_LIST_LEFT_OUT:
        body["skus"] = {"sku": skus}
    return body


def _quantity_pairs(text: str, name: str) -> list[tuple[str, int]]:
    """'key:quantity;key:quantity' -> pairs; quantities may be negative (incremental)."""
    pairs = []
    for part in (p for p in text.split(";") if p.strip()):
        key, _, quantity = part.partition(":")
        if not key.strip() or not quantity.strip().lstrip("-").isdigit():
            raise Refusal(INVALID_ARGUMENT, f"{name} must read key:quantity;key:quantity")
        pairs.append((key.strip(), int(quantity)))
    if not 1 <= len(pairs) <= MAX_SKUS_PER_QUANTITY_UPDATE:
        raise Refusal(INVALID_ARGUMENT, f"{name} holds 1..{MAX_SKUS_PER_QUANTITY_UPDATE} SKUs")
    return pairs


def skus_quantity_update(index: TradeIndex, shop: str, params: dict) -> dict:
    items, _ = _shop_items(index.state, shop)
    item, mode = _item(items, params), _update_mode(params)
    by_id = item.sku_ids
    by_code = {sku: sku_id for sku_id, sku in by_id.items()}
    # skuid_quantities wins; outerid_quantities counts only when it is empty (doc).
    if params.get("skuid_quantities"):
        pairs = _quantity_pairs(params["skuid_quantities"], "skuid_quantities")
        found = {key: int(key) if key.isdigit() and int(key) in by_id else None for key, _ in pairs}
    elif params.get("outerid_quantities"):
        pairs = _quantity_pairs(params["outerid_quantities"], "outerid_quantities")
        found = {key: by_code.get(key) for key, _ in pairs}
    else:
        raise Refusal(MISSING_ARGUMENT, "Missing required arguments:skuid_quantities")
    missing = [key for key, sku_id in found.items() if sku_id is None]
    if missing:
        raise Refusal(SKU_NOT_FOUND, f"商品{item.num_iid}下不存在SKU {','.join(missing)}")
    sku_ids = {key: sku_id for key, sku_id in found.items() if sku_id is not None}
    _apply(index.state, shop, {by_id[sku_ids[key]]: quantity for key, quantity in pairs}, mode)
    _, stock = _shop_items(index.state, shop)
    changed = list(dict.fromkeys(sku_ids[key] for key, _ in pairs))
    return {"item": quantity_answer(item, stock, changed, datetime.now(timezone.utc))}


def item_quantity_update(index: TradeIndex, shop: str, params: dict) -> dict:
    items, _ = _shop_items(index.state, shop)
    item, mode, quantity = _item(items, params), _update_mode(params), _signed(params, "quantity")
    by_id = item.sku_ids
    wanted_sku, wanted_code = params.get("sku_id", ""), params.get("outer_id", "")
    if wanted_sku:  # sku_id wins over outer_id when both are given (doc)
        sku_id = int(wanted_sku) if wanted_sku.isdigit() and int(wanted_sku) in by_id else None
    elif wanted_code:
        sku_id = next((i for i, code in by_id.items() if code == wanted_code), None)
    else:
        sku_id = 0  # the item's own stock
    if sku_id is None:
        raise Refusal(SKU_NOT_FOUND, f"商品{item.num_iid}下不存在SKU {wanted_sku or wanted_code}")
    if sku_id == 0 and by_id:
        raise Refusal(ITEM_HAS_SKUS, f"商品{item.num_iid}有SKU, 请指定sku_id")
    code = by_id[sku_id] if sku_id else item.product.skus[0]
    _apply(index.state, shop, {code: quantity}, mode)
    _, stock = _shop_items(index.state, shop)
    changed = [sku_id] if sku_id else []
    return {"item": quantity_answer(item, stock, changed, datetime.now(timezone.utc))}


def token_refresh(index: TradeIndex, shop: str | None, params: dict) -> dict:
    if _APP_KINDS.get(params["app_key"]) != SERVICE_MARKET:
        raise Refusal(NO_ISV_PERMISSION, "只有服务市场订购类应用可以刷新token")
    now = datetime.now(timezone.utc)
    known = index.state.redeem(_required(params, "refresh_token"), now)
    if known is None:
        raise Refusal(REFRESH_TOKEN_INVALID, "refresh_token已过期或不存在")
    token = _token_result(index.state, known.shop, SERVICE_MARKET, now)
    return {"token_result": json.dumps(token) if TOKEN_RESULT_AS_TEXT else token,
            "request_id": uuid.uuid4().hex}


def _token_result(state: SandboxState, shop: str, kind: str, now: datetime) -> dict:
    access_life, refresh_life = TOKEN_LIFETIMES[kind]
    granted = state.grant(shop, now, access_life, refresh_life, prefix=SESSION_PREFIX,
                          single_use_refresh=REFRESH_TOKEN_SINGLE_USE)
    return token_result(granted, shop, access_life, refresh_life)


HANDLERS = {
    "taobao.trades.sold.increment.get": increment_get,
    "taobao.trade.fullinfo.get": fullinfo_get,
    "taobao.logistics.companies.get": companies_get,
    "taobao.logistics.offline.send": offline_send,
    "taobao.top.oaid.decrypt": oaid_decrypt,
    "taobao.top.auth.token.refresh": token_refresh,
    "taobao.items.onsale.get": items_onsale_get,
    "taobao.item.skus.get": item_skus_get,
    "taobao.skus.quantity.update": skus_quantity_update,
    "taobao.item.quantity.update": item_quantity_update,
}
NO_SESSION_NEEDED = {"taobao.logistics.companies.get", "taobao.top.auth.token.refresh"}


# ---- the gateway ------------------------------------------------------------------------


def _request_time(text: str) -> datetime | None:
    if text.isdigit():  # the official Python SDK sends epoch milliseconds [M]
        return datetime.fromtimestamp(int(text) / 1000, timezone.utc)
    return parse_china_time(text)


def authenticate(state: SandboxState, params: dict, expired_by_fault: bool) -> str | None:
    """The gateway's checks in order; returns the session's shop (None if not needed)."""
    if not params.get("app_key"):
        raise Refusal(MISSING_APP_KEY)
    secret = state.app_secrets.get(params["app_key"])
    if secret is None or params["app_key"] not in _APP_KINDS:
        raise Refusal(INVALID_APP_KEY)
    method = params.get("method", "")
    if not method:
        raise Refusal(MISSING_METHOD)
    if method not in HANDLERS:
        raise Refusal(INVALID_METHOD, method)
    if not params.get("timestamp"):
        raise Refusal(MISSING_TIMESTAMP)
    now = datetime.now(timezone.utc)
    sent_at = _request_time(params["timestamp"])
    if sent_at is None or abs(now - sent_at) > CLOCK_SKEW_LIMIT:
        raise Refusal(INVALID_TIMESTAMP, "timestamp: yyyy-MM-dd HH:mm:ss GMT+8, ±10 minutes")
    if not params.get("sign"):
        raise Refusal(MISSING_SIGNATURE)
    try:
        expected = sign(params, secret, params.get("sign_method", "md5"))
    except ValueError as unknown:
        raise Refusal(BAD_SIGNATURE, str(unknown)) from None
    if not hmac.compare_digest(params["sign"].upper(), expected):
        raise Refusal(BAD_SIGNATURE)
    if params.get("v", "2.0") != "2.0":
        raise Refusal(UNSUPPORTED_VERSION)
    if params.get("format", "json") != "json":  # the simulator speaks JSON only
        raise Refusal(INVALID_FORMAT)
    session = params.get("session") or params.get("access_token")
    if method in NO_SESSION_NEEDED and not session:
        return None
    if not session:
        raise Refusal(MISSING_SESSION)
    known = state.tokens.get(session)
    if expired_by_fault or known is None or known.expires_at <= now:
        raise Refusal(INVALID_SESSION, "SessionKey非法或已过期")
    return known.shop


def error_body(refusal: Refusal) -> dict:
    error = refusal.error
    body = {"code": error.code, "msg": error.msg, "request_id": uuid.uuid4().hex}
    if error.sub_code:
        body.update(sub_code=error.sub_code, sub_msg=refusal.sub_msg or error.msg)
    elif refusal.sub_msg:
        body["sub_msg"] = refusal.sub_msg
    return {"error_response": body}


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()
    index = TradeIndex(state)

    @router.api_route(GATEWAY_PATH, methods=["GET", "POST"])
    async def gateway(request: Request) -> Response:
        body = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
        params = {**dict(body), **dict(request.query_params)}
        fault = state.faults.take(PLATFORM)
        kind = fault.kind if fault else None
        if kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        if kind == "server_error":
            return PlainTextResponse("502 Bad Gateway", status_code=502)
        try:
            if kind == "rate_limit":
                raise Refusal(THROTTLED, BAN_MESSAGE.format(seconds=fault.retry_after))
            shop = authenticate(state, params, expired_by_fault=kind == "expired_token")
            method = params["method"]
            answer = HANDLERS[method](index, shop, params)
        except Refusal as refusal:
            return JSONResponse(error_body(refusal))
        wire = {response_key(method): answer}
        if kind == "malformed":
            spoiled = spoil(wire)
            if spoiled is None:  # nothing trade-shaped: cut the body off instead
                return Response(json.dumps(wire)[:25], media_type="application/json")
            wire = spoiled
        return JSONResponse(wire)

    return router


def base_path(shop: str) -> str:
    return "/taobao"  # one gateway for every seller; the session names the seller


def register_shop(
    state: SandboxState, shop: str, now: datetime, app_kind: str = SERVICE_MARKET
) -> dict:
    """Authorise a fresh app of `app_kind` for the shop and return its credentials."""
    if app_kind not in TOKEN_LIFETIMES:
        raise ValueError(f"app_kind must be one of {sorted(TOKEN_LIFETIMES)}")
    app_key, app_secret = str(secrets.randbelow(9 * 10**7) + 10**7), secrets.token_hex(16)
    with state.lock:
        state.app_secrets[app_key] = app_secret
        _APP_KINDS[app_key] = app_kind
    token = _token_result(state, shop, app_kind, now)
    return {
        "app_key": app_key, "app_secret": app_secret, "app_kind": app_kind,
        "access_token": token["access_token"], "refresh_token": token["refresh_token"],
        "taobao_user_id": token["taobao_user_id"], "taobao_user_nick": shop,
    }


# Cainiao's e-waybill methods (cainiao.waybill.ii.*) are TOP methods on this same gateway;
# sandbox.cainiao adds them to HANDLERS when imported, which this import makes sure of.
import sandbox.cainiao  # noqa: F401
import sandbox.taobao_after_sales  # noqa: F401,E402  (refunds: adds its methods to HANDLERS)
