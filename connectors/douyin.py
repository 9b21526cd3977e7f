"""Douyin shop (抖店 / Doudian) connector: signed gateway calls, orders in, tracking out.

Every API is `POST {host}/{path}` (reference §8.1): the common parameters and the
HMAC-SHA256 signature travel in the query string, the business parameters as the JSON
body, serialised canonically (keys sorted, compact) because the signature covers exactly
that text. Orders are read with `order/searchList` by update time in windows the platform
accepts; tracking numbers go back with `order/logisticsAdd`; tokens are renewed with
`token/refresh`. Listings come from `product/listV2` (online products, a page at a time)
and `sku/list` (one product's SKUs and their seller codes); stock goes out per product with
`sku/syncStockBatch` (all the product's SKUs or none) or `sku/syncStock` for one SKU,
always as full numbers (incremental=false, which needs no idempotent_id). Reading a payload
into an `Order` is pure and lives in `connectors.douyin_mapping`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from connectors.base import (
    HttpConnection, Listing, PushResult, RawOrder, ShopAccess, StockLevel, StockPushOutcome,
    TokenGrant, gateway_json, platform_carrier_code, second_slices,
)
from connectors.douyin_mapping import (  # noqa: F401  re-exported for callers and tests
    PLATFORM, STATUS_TABLE, map_order, product_listings, product_page, raw_order,
)
from connectors.pacing import RequestRate, shop_bucket
from oms.domain.errors import (
    ConnectorError, MappingError, RateLimited, Rejected, TokenExpired, Unavailable,
)
from oms.domain.order import Order

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_PAGE_SIZE = 100  # [H] order/searchList "单页大小，限制100以内"
MAX_DECRYPT_ITEMS = 50  # [H] SDK order/batchDecrypt: at most 50 ciphertexts a call
REFRESH_LIFETIME = timedelta(days=14)  # [H]; token/refresh does not say it, so we do
SUCCESS = 10000  # [H]
PRODUCT_LIST, SKU_LIST = "product.listV2", "sku.list"
SYNC_STOCK, SYNC_STOCK_BATCH = "sku.syncStock", "sku.syncStockBatch"
# [H] product/listV2: page and size at most 100 each, page*size at most 10 000
MAX_PRODUCT_PAGE, MAX_PRODUCT_ROWS = 100, 10_000
ONLINE = 0  # [H] listV2 status 0 = 在线
ORDINARY_STOCK = 0  # [H] sku_type 0 = 普通库存
# Envelope codes that refuse the call itself (permission, IP whitelist, missing or bad
# token, signature, timestamp, API offline): every listing would meet them, so they are
# raised. Any other refusal of a stock sync (40004 bad value, 50002 business) is about
# its listing and is returned with it.
CALL_REFUSALS = frozenset({30001, 30002, 40001, 40003, 70000})

# --- UNVERIFIED (reference [L] or silent) --------------------------------------------------
# Widest order/searchList update-time window: the reference names none. 24 h is what the
# simulator enforces; both ends are taken as inclusive whole seconds.
UPDATE_WINDOW = timedelta(hours=24)
# Doudian's per-app / per-shop call limits are not in the stored material.
REQUEST_RATE = RequestRate(per_second=10, burst=20)
# Code 60000 (触发限流) names no wait; its limits are counted per second.
RATE_LIMIT_WAIT_SECONDS = 1.0
# Our carrier code -> Doudian company_code. The values are the often-quoted ones (reference
# has none); compare with `logistics_companies()` (/order/logisticsCompanyList) before
# shipping real orders.
CARRIER_CODES: dict[str, str] = {
    "SF": "shunfeng", "ZTO": "zhongtong", "YTO": "yuantong", "STO": "shentong",
    "YUNDA": "yunda", "JD": "jd", "EMS": "ems", "JT": "jtexpress",
}
# The decrypt API's name is [L] in the reference; `order.batchDecrypt` and its fields follow
# DOUDIAN-SDK api/order_batchDecrypt. That searchList answers a `tracking_no` lookup
# without a time window (used to recognise a repeated push) is assumed.
DECRYPT_METHOD = "order.batchDecrypt"
# sku/syncStockBatch names no limit for sku_sync_list; 50 is the simulator's.
MAX_BATCH_SKUS = 50
# A refusal naming the product (the simulator's sub_code): the batch's other SKUs were
# not the cause, so they are not retried one by one.
PRODUCT_REFUSALS = frozenset({"isv.business-failed:product-not-exist"})
# --- end UNVERIFIED ----------------------------------------------------------------------

# Doudian sub_code or code -> our error [M] (reference §8.5). Sub-codes are looked up
# first because one code mixes kinds (40003 is a bad signature or an expired token).
# Everything not listed is permanent and becomes Rejected. HTTP 5xx, timeouts,
# connection failures and bodies that are not JSON become Unavailable in `_unwrap`.
ERROR_TRANSLATION: dict[int | str, type[ConnectorError]] = {
    "isv.access-token-expired": TokenExpired,  # refresh, then retry [H]
    "isv.access-token-no-existed": TokenExpired,  # an older token after a refresh [H]
    60000: RateLimited,  # 触发限流，请稍后重试
    20000: Unavailable,  # 服务不可用
    20001: Unavailable,  # 内部服务超时
}
# Refusals no retry or refresh can cure: the merchant must authorise the app again.
REAUTHORISE = ("dop.token-generate-failed", "dop.authorization-no-existed",
               "dop.authorization-closed")


def canonical_param_json(params: Mapping[str, Any]) -> str:
    """The body and the signed text: keys sorted, no whitespace, non-ASCII kept as is."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sign_request(app_key: str, app_secret: str, method: str, timestamp: str,
                 param_json: str) -> str:
    """Lowercase hex HMAC-SHA256, keyed with the secret, of the secret-wrapped pattern."""
    pattern = "".join((app_secret, "app_key", app_key, "method", method, "param_json",
                       param_json, "timestamp", timestamp, "v2", app_secret))
    return hmac.new(app_secret.encode(), pattern.encode("utf-8"), hashlib.sha256).hexdigest()


class DouyinConnector(HttpConnection):
    platform = PLATFORM

    def __init__(
        self, access: ShopAccess, http: httpx.Client | None = None, page_size: int = MAX_PAGE_SIZE,
        rate: RequestRate = REQUEST_RATE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.shop_code = access.code
        self._app_key = access.credentials["app_key"]
        self._app_secret = access.credentials["app_secret"]
        self._access_token = access.credentials.get("access_token", "")
        self._base_url = access.base_url.rstrip("/")
        self._page_size = page_size
        # The platform's own count of the orders in the windows the last fetch listed.
        self.reported_count: int | None = None
        self._connect(http, TIMEOUT, pacing=shop_bucket(PLATFORM, access.code, rate))

    # ---- orders in -----------------------------------------------------------------

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Orders updated in [start, end), in windows of at most UPDATE_WINDOW.

        Each window is sorted by update time, oldest first, and read from its last page
        back to the first: an order updated while we page leaves its place and shifts the
        later ones forward, onto pages already read, which repeats an order instead of
        skipping one. Pages are yielded oldest first so a caller can move its watermark.
        Afterwards `reported_count` holds the sum of Douyin's total over the windows.
        """
        self.reported_count = 0
        for slice_start, slice_end in second_slices(start, end, UPDATE_WINDOW):
            window = {"update_time_start": slice_start, "update_time_end": slice_end}
            yield from self._window_pages(window)

    def _window_pages(self, window: dict) -> Iterator[list[RawOrder]]:
        first, total = self._search_page(window, 0)
        self.reported_count = (self.reported_count or 0) + total
        last_page = max(math.ceil(total / self._page_size) - 1, 0)
        if last_page == 0:
            if first:
                yield first
            return
        pages = [self._search_page(window, page)[0] for page in range(last_page, -1, -1)]
        yield from (page for page in reversed(pages) if page)

    def _search_page(self, filters: dict, page: int, size: int | None = None
                     ) -> tuple[list[RawOrder], int]:
        query = {**filters, "order_by": "update_time", "order_asc": True, "page": page,
                 "size": size or self._page_size}
        data = self._call("order.searchList", query)
        items = data.get("shop_order_list") if isinstance(data, dict) else None
        total = data.get("total") if isinstance(data, dict) else None
        if not isinstance(items, list) or isinstance(total, bool) or not isinstance(total, int):
            raise Unavailable("order.searchList answered without shop_order_list or total",
                              platform=PLATFORM, body=data)
        return [raw_order(item) for item in items], total

    def to_order(self, raw: RawOrder) -> Order:
        """The internal order, or MappingError naming everything wrong with the payload."""
        return map_order(raw.payload, self.shop_code)

    def probe(self) -> None:
        """A one-order page of the last minute: checks host, signature and token."""
        now = math.floor(time.time())
        self._search_page({"update_time_start": now - 60, "update_time_end": now}, 0, size=1)

    # ---- tracking out --------------------------------------------------------------

    def push_tracking(
        self, platform_order_id: str, carrier: str, tracking_number: str
    ) -> PushResult:
        """Report the shipment; a repeat of a push Doudian already holds succeeds again.

        Doudian refuses `order/logisticsAdd` for an order that is no longer waiting to ship,
        so after a refusal we look the tracking number up (searchList's `tracking_no`): if
        this order already carries it with this company, the earlier push landed (perhaps
        its answer was lost) and this one counts as done. Anything else stays a refusal.
        """
        company_code = platform_carrier_code(CARRIER_CODES, carrier, PLATFORM)
        request = {"order_id": platform_order_id, "company_code": company_code,
                   "logistics_code": tracking_number}
        sent = {"method": "order.logisticsAdd", **request}
        try:
            response = self._call("order.logisticsAdd", request)
        except Rejected as refusal:
            if not self._already_carries(platform_order_id, company_code, tracking_number):
                raise
            return PushResult(request=sent, response={"already_shipped_with_this_tracking": True,
                                                      "refusal": refusal.body})
        return PushResult(request=sent, response=response if isinstance(response, dict) else {})

    def _already_carries(self, order_id: str, company_code: str, tracking_number: str) -> bool:
        found, _ = self._search_page({"tracking_no": tracking_number}, 0)
        wanted = (tracking_number, company_code)
        for raw in found:
            parcels = raw.payload.get("logistics_info")
            if raw.platform_order_id == order_id and isinstance(parcels, list) and any(
                isinstance(p, dict) and (p.get("tracking_no"), p.get("company")) == wanted
                for p in parcels
            ):
                return True
        return False

    def logistics_companies(self) -> list[dict[str, Any]]:
        """The platform's own company list ({id, name, code}), to check CARRIER_CODES against."""
        data = self._call("order.logisticsCompanyList", {})
        return data if isinstance(data, list) else []

    # ---- receiver data -------------------------------------------------------------

    def decrypt_receiver(self, platform_order_id: str, encrypted: Mapping[str, str]
                         ) -> dict[str, str]:
        """Plaintext of `Receiver.encrypted` ({"name": cipher, ...}) by the same field names.

        For printing a waybill only: the answer must never be logged or stored.
        """
        fields = list(encrypted.items())
        opened: dict[str, str] = {}
        for first in range(0, len(fields), MAX_DECRYPT_ITEMS):
            chunk = fields[first : first + MAX_DECRYPT_ITEMS]
            infos = [{"auth_id": platform_order_id, "cipher_text": text} for _, text in chunk]
            data = self._call(DECRYPT_METHOD, {"cipher_infos": infos})
            answers = data.get("decrypt_infos") if isinstance(data, dict) else None
            by_cipher = {a.get("cipher_text"): a for a in answers or [] if isinstance(a, dict)}
            for name, text in chunk:
                answer = by_cipher.get(text) or {}
                if answer.get("err_no") != 0:
                    raise Rejected(f"{DECRYPT_METHOD} could not open the {name} of the order",
                                   platform=PLATFORM, code=answer.get("err_no"))
                opened[name] = str(answer.get("decrypt_text", ""))
        return opened

    # ---- stock out -----------------------------------------------------------------

    def list_listings(self) -> Iterator[list[Listing]]:
        """Pages of the shop's online products as listings of their SKUs: one listV2 page,
        then one sku/list per product on it."""
        size, page = min(self._page_size, MAX_PRODUCT_PAGE), 1
        while True:
            data = self._call(PRODUCT_LIST, {"status": ONLINE, "page": page, "size": size})
            product_ids, total = _read(PRODUCT_LIST, product_page, data)
            listings: list[Listing] = []
            for product_id in product_ids:
                skus = self._call(SKU_LIST, {"product_id": product_id})
                listings += _read(SKU_LIST, product_listings, product_id, skus)
            if listings:
                yield listings
            if not product_ids or page * size >= total:
                return
            if (page + 1) * size > MAX_PRODUCT_ROWS:
                # listV2 pages no further than 10 000 products; the rest would be missed.
                raise Rejected(f"the shop lists {total} products; product/listV2 pages only "
                               f"{MAX_PRODUCT_ROWS}", platform=PLATFORM,
                               code="listing_window_exceeded")
            page += 1

    def push_stock(self, levels: list[StockLevel]) -> list[StockPushOutcome]:
        """Set full stock per product: one syncStockBatch for up to 50 of its SKUs, or a
        syncStock when only one of them changes."""
        outcomes: list[StockPushOutcome | None] = [None] * len(levels)
        by_product: dict[int, list[tuple[int, StockLevel]]] = {}
        for position, level in enumerate(levels):
            refusal = _unsendable(level)
            if refusal is not None:
                outcomes[position] = StockPushOutcome(level.listing.sku, level.quantity, refusal)
            else:
                by_product.setdefault(int(level.listing.item_id), []).append((position, level))
        for product_id, members in by_product.items():
            for first in range(0, len(members), MAX_BATCH_SKUS):
                chunk = members[first:first + MAX_BATCH_SKUS]
                if len(chunk) == 1:
                    position, level = chunk[0]
                    outcomes[position] = self._sync_one(product_id, level)
                    continue
                for position, outcome in self._sync_batch(product_id, chunk):
                    outcomes[position] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    def _sync_batch(self, product_id: int, members: list[tuple[int, StockLevel]]
                    ) -> list[tuple[int, StockPushOutcome]]:
        request = {"product_id": product_id, "incremental": False, "sku_sync_list": [
            {"sku_id": int(level.listing.variant_id), "sku_type": ORDINARY_STOCK,
             "stock_num": level.quantity} for _, level in members]}
        sent = {"method": SYNC_STOCK_BATCH, **request}
        try:
            answer = self._call(SYNC_STOCK_BATCH, request)
        except Rejected as refusal:
            if _concerns_call(refusal):
                raise
            if refusal.code not in PRODUCT_REFUSALS:
                # All or nothing: one SKU at a time finds the one Doudian refused.
                return [(position, self._sync_one(product_id, level))
                        for position, level in members]
            answer, error = refusal.body, refusal
        else:
            error = None
        return [(position, StockPushOutcome(level.listing.sku, level.quantity, error, sent,
                                            answer if isinstance(answer, dict) else {}))
                for position, level in members]

    def _sync_one(self, product_id: int, level: StockLevel) -> StockPushOutcome:
        request = {"product_id": product_id, "sku_id": int(level.listing.variant_id),
                   "stock_num": level.quantity, "incremental": False}
        sent = {"method": SYNC_STOCK, **request}
        try:
            answer = self._call(SYNC_STOCK, request)
        except Rejected as refusal:
            if _concerns_call(refusal):
                raise
            return StockPushOutcome(level.listing.sku, level.quantity, refusal, sent, refusal.body)
        return StockPushOutcome(level.listing.sku, level.quantity, None, sent,
                                answer if isinstance(answer, dict) else {})

    # ---- tokens --------------------------------------------------------------------

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        """New access and refresh tokens; store the refresh token before using the access."""
        now = datetime.now(timezone.utc)
        data = self._call("token.refresh", {"grant_type": "refresh_token",
                                            "refresh_token": refresh_token}, with_token=False)
        data = data if isinstance(data, dict) else {}
        access, expires_in, renewed = (data.get("access_token"), data.get("expires_in"),
                                       data.get("refresh_token"))
        if not (isinstance(access, str) and access and isinstance(expires_in, int)):
            raise Unavailable("token.refresh answered without access_token or expires_in",
                              platform=PLATFORM)
        # The SDK documents expires_in both as seconds to live (7 days) and as a unix time.
        expires_at = (datetime.fromtimestamp(expires_in, timezone.utc) if expires_in > 10**9
                      else now + timedelta(seconds=expires_in))
        self._access_token = access
        return TokenGrant(
            access_token=access, access_expires_at=expires_at,
            refresh_token=renewed if isinstance(renewed, str) and renewed else refresh_token,
            refresh_expires_at=now + REFRESH_LIFETIME,
        )

    # ---- the wire ------------------------------------------------------------------

    def _call(self, method: str, params: Mapping[str, Any], with_token: bool = True) -> Any:
        param_json = canonical_param_json(params)
        timestamp = str(int(time.time()))
        query = {"app_key": self._app_key, "method": method, "timestamp": timestamp, "v": "2",
                 "sign_method": "hmac-sha256",
                 "sign": sign_request(self._app_key, self._app_secret, method, timestamp,
                                      param_json)}
        if with_token:
            query["access_token"] = self._access_token
        url = f"{self._base_url}/{method.replace('.', '/')}"
        headers = {"Content-Type": "application/json", "x-open-no-old-err-code": "1"}
        self._wait_turn()
        try:
            response = self._http.post(url, params=query, content=param_json.encode("utf-8"),
                                       headers=headers)
        except httpx.TransportError as error:  # timeouts and connection failures alike
            raise Unavailable(f"{method}: {type(error).__name__}", platform=PLATFORM) from None
        return _unwrap(method, response)

    # ---- after-sales (connectors.douyin_after_sales) ----------------------------------

    # The shop's return address (address/list) that agreeing a return or an exchange
    # hands the buyer; set by whoever runs the shop's after-sales.
    return_address_id: int | None = None

    def fetch_after_sales(self, start: datetime, end: datetime):
        """Requests updated in [start, end), each once (`HandlesAfterSales`)."""
        from connectors import douyin_after_sales
        return douyin_after_sales.fetch_after_sales(self, start, end)

    def to_after_sales(self, raw):
        from connectors import douyin_after_sales
        return douyin_after_sales.to_after_sales(raw, self.shop_code)

    def answer_after_sales(self, request, decision):
        from connectors import douyin_after_sales
        return douyin_after_sales.answer_after_sales(self, request, decision)


def _unwrap(method: str, response: httpx.Response) -> Any:
    status = response.status_code
    body = gateway_json(response, method, PLATFORM, RATE_LIMIT_WAIT_SECONDS)
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, bool) or not isinstance(code, int):
        if status != 200:
            raise Rejected(f"{method}: HTTP {status}", platform=PLATFORM, code=status)
        raise Unavailable(f"{method}: answer has no envelope code", platform=PLATFORM)
    if code != SUCCESS:
        raise _translate(method, body)
    return body.get("data")


def _translate(method: str, body: dict) -> ConnectorError:
    code, sub_code = body.get("code"), str(body.get("sub_code") or "")
    message = f"{method}: {body.get('msg', '')} {body.get('sub_msg') or ''}".strip()
    kind = ERROR_TRANSLATION.get(sub_code) or ERROR_TRANSLATION.get(code, Rejected)
    if sub_code.startswith(REAUTHORISE):
        message += "; the shop must authorise the app again"
    shown = sub_code or code
    if kind is RateLimited:
        return RateLimited(message, retry_after=RATE_LIMIT_WAIT_SECONDS, platform=PLATFORM,
                           code=shown, body=body)
    return kind(message, platform=PLATFORM, code=shown, body=body)


def _read(what: str, reader, *payload: object):
    """What `reader` makes of an answer; an answer it cannot read is Doudian's fault."""
    try:
        return reader(*payload)
    except MappingError as error:
        raise Unavailable(f"{what}: {error}", platform=PLATFORM, body=payload[-1]) from error


def _unsendable(level: StockLevel) -> Rejected | None:
    """Why Doudian must not be asked at all: its ids are numbers, stock is 0 or more."""
    listing = level.listing
    if level.quantity < 0:
        return Rejected(f"{listing.sku}: stock_num {level.quantity} is below zero; Doudian "
                        "sets stock of 0 or more", platform=PLATFORM, code="negative_quantity")
    if not (listing.item_id.isdigit() and listing.variant_id.isdigit()):
        return Rejected(f"{listing.sku}: product {listing.item_id!r} sku {listing.variant_id!r} "
                        "is no Doudian listing", platform=PLATFORM, code="not_a_douyin_listing")
    return None


def _concerns_call(refusal: Rejected) -> bool:
    body = refusal.body if isinstance(refusal.body, dict) else {}
    return body.get("code") in CALL_REFUSALS
