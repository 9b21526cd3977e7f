"""Pinduoduo (拼多多 POP) connector: signed router calls, orders in, tracking numbers out.

Every call is one form-encoded POST to `/api/router` that names the API in `type` and is
signed with MD5 over the sorted parameters (reference §6.1). Regular fetches read orders
by update time in 30-minute slices, backfills by deal (confirm) time in 24-hour slices,
because PDD refuses wider windows. Listings come from pdd.goods.list.get (goods on sale,
their SKUs inline); stock goes out with pdd.goods.quantity.update, one SKU per call in full
mode (update_type 1): PDD has no batch for it. Reading a payload into an `Order` is pure
and lives in `connectors.pinduoduo_mapping`; its names are re-exported here for existing
callers.
"""

from __future__ import annotations

import hashlib
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
from connectors.pacing import RequestRate, shop_bucket
from connectors.pinduoduo_mapping import (  # noqa: F401  re-exported for callers and tests
    CHINA_TIME,
    PLATFORM,
    STATUS_FIELDS,
    STATUS_TABLE,
    TIME_FORMAT,
    goods_page,
    order_from_payload,
    parse_china_time,
    raw_order,
)
from oms.domain.errors import (
    ConnectorError, MappingError, RateLimited, Rejected, TokenExpired, Unavailable,
)
from oms.domain.order import Order

ROUTER_PATH = "/api/router"
UPDATE_TIME_SLICE = timedelta(minutes=30)  # pdd.order.number.list.increment.get limit
CONFIRM_TIME_SLICE = timedelta(hours=24)  # pdd.order.list.get limit
MAX_PAGE_SIZE = 100
ANY = 5  # order_status / refund_status filter value meaning "all"
GOODS_LIST = "pdd.goods.list.get"
QUANTITY_UPDATE = "pdd.goods.quantity.update"
MAX_GOODS_PAGE = 100  # [H] pdd.goods.list.get page_size
ON_SALE = 1  # [H] is_onsale
FULL_UPDATE = 1  # [H] update_type 1 sets the number; 2 would add it
# Refusals about the call itself (unknown API, client, signature, clock): every listing
# would meet them, so they are raised. The codes are the simulator's (reference §6 has
# none); any other refusal of a quantity update is about its SKU and stays with it.
CALL_REFUSALS = frozenset({10001, 10016, 10017, 10018})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# The tightest per-shop limit of the order APIs we call: increment 3000 per 60 s
# (reference §6.5 [M], from the SDK's generated limiters).
REQUEST_RATE = RequestRate(per_second=50, burst=50)
# PDD's throttling errors name no wait; its limiters count over 10 s and 60 s windows.
RATE_LIMIT_WAIT_SECONDS = 10.0

# PDD error_code -> our error; every code not listed (bad signature, bad parameters,
# refused shipment...) is permanent and becomes Rejected. HTTP 5xx, timeouts, connection
# failures and bodies that are not JSON become Unavailable in `_unwrap`/`_call`.
ERROR_TRANSLATION: dict[int, type[ConnectorError]] = {
    10019: TokenExpired,  # access_token已过期
    52101: RateLimited,  # 当前接口被限流
    70031: RateLimited,  # 调用过于频繁
    52102: Unavailable,  # 接口暂时不可用
    52103: Unavailable,  # 服务暂时不可用
}

# Our carrier code -> PDD logistics_id. UNVERIFIED: the values are the often-quoted ones
# (reference §6.4 [L]) and JT's is made up; compare with `logistics_companies()` (the
# platform's pdd.logistics.companies.get) before shipping real orders.
LOGISTICS_IDS: dict[str, int] = {
    "SF": 44, "ZTO": 115, "YTO": 85, "STO": 1, "YUNDA": 121, "EMS": 118, "JD": 120, "JT": 384,
}

# The response envelope of each API does not follow one naming rule, so it is listed.
RESPONSE_KEYS = {
    "pdd.order.list.get": "order_list_get_response",
    "pdd.order.number.list.increment.get": "order_sn_increment_get_response",
    "pdd.order.information.get": "order_info_get_response",
    "pdd.logistics.companies.get": "logistics_companies_get_response",
    "pdd.logistics.online.send": "logistics_online_send_response",
    "pdd.pop.auth.token.refresh": "pop_auth_token_refresh_response",
    GOODS_LIST: "goods_list_get_response",
    QUANTITY_UPDATE: "goods_quantity_update_response",
}


def _wire_value(value: object) -> str:
    """The text a parameter is sent and signed as; lists and objects go as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def sign_params(params: Mapping[str, object], client_secret: str) -> str:
    """Uppercase hex MD5 of secret + key1value1key2value2... (sorted, without sign) + secret."""
    joined = "".join(key + _wire_value(params[key]) for key in sorted(params) if key != "sign")
    return hashlib.md5((client_secret + joined + client_secret).encode("utf-8")).hexdigest().upper()


class PinduoduoConnector(HttpConnection):
    platform = PLATFORM

    def __init__(
        self, access: ShopAccess, http: httpx.Client | None = None, page_size: int = 100
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.shop_code = access.code
        self._client_id = access.credentials["client_id"]
        self._client_secret = access.credentials["client_secret"]
        self._access_token = access.credentials.get("access_token", "")
        self._url = access.base_url.rstrip("/") + ROUTER_PATH
        self._connect(http, DEFAULT_TIMEOUT, pacing=shop_bucket(PLATFORM, access.code, REQUEST_RATE))
        self._page_size = page_size
        # The platform's own count of the orders in the windows the last fetch listed.
        self.reported_count: int | None = None

    # ---- orders in -----------------------------------------------------------------

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Orders updated in [start, end), in 30-minute slices.

        Each slice is read from its last page back to the first, as PDD advises: an order
        updated while we page drops out of the slice and shifts the rest one place
        forward, which then repeats an order instead of skipping one. Pages are still
        yielded oldest first so a caller can move its watermark page by page.

        Afterwards `reported_count` holds the sum of PDD's total_count over the slices.
        """
        self.reported_count = 0
        for slice_start, slice_end in second_slices(start, end, UPDATE_TIME_SLICE):
            window = {"start_updated_at": slice_start, "end_updated_at": slice_end}
            yield from self._pages_read_backwards("pdd.order.number.list.increment.get", window)

    def backfill_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Orders that became a deal (成交) in [start, end), in 24-hour slices.

        Confirm times never change, so plain forward paging until has_next is false is safe.
        """
        for slice_start, slice_end in second_slices(start, end, CONFIRM_TIME_SLICE):
            window = {"start_confirm_at": slice_start, "end_confirm_at": slice_end}
            page = 1
            while True:
                items, has_next, _ = self._list_page("pdd.order.list.get", window, page)
                if items:
                    yield items
                if not has_next:
                    break
                page += 1

    def fetch_order(self, order_sn: str) -> RawOrder:
        detail = self._call("pdd.order.information.get", {"order_sn": order_sn})
        return raw_order(detail.get("order_info"))

    def _pages_read_backwards(self, api: str, window: dict) -> Iterator[list[RawOrder]]:
        first, has_next, total = self._list_page(api, window, 1)
        self.reported_count = (self.reported_count or 0) + total
        if not has_next:
            if first:
                yield first
            return
        last_page = math.ceil(total / self._page_size)
        pages = [self._list_page(api, window, page)[0] for page in range(last_page, 0, -1)]
        yield from (page for page in reversed(pages) if page)

    def _list_page(self, api: str, window: dict, page: int) -> tuple[list[RawOrder], bool, int]:
        query = {**window, "order_status": ANY, "refund_status": ANY, "page": page,
                 "page_size": self._page_size, "use_has_next": True}
        body = self._call(api, query)
        items = body.get("order_list", body.get("order_sn_list"))
        has_next, total = body.get("has_next"), body.get("total_count")
        if not (isinstance(items, list) and isinstance(has_next, bool) and isinstance(total, int)):
            raise Unavailable(f"{api} answered without order list, has_next or total_count",
                              platform=PLATFORM, body=body)
        return [raw_order(item) for item in items], has_next, total

    def to_order(self, raw: RawOrder) -> Order:
        """The internal order, or MappingError naming everything wrong with the payload."""
        return order_from_payload(raw.payload, self.shop_code)

    # ---- tracking out --------------------------------------------------------------

    def push_tracking(
        self, platform_order_id: str, carrier: str, tracking_number: str
    ) -> PushResult:
        """Report the shipment; a repeat of a push PDD already holds succeeds again.

        PDD refuses a first shipment (redelivery_type 1) for an order that is no longer
        待发货 and names no dedicated code for it, so after any refusal we read the order:
        if it already carries this tracking number with this carrier, the earlier push
        landed (perhaps its answer was lost) and this one counts as done. A different
        tracking number stays a refusal: overwriting one is a decision for a person.
        """
        logistics_id = platform_carrier_code(LOGISTICS_IDS, carrier, PLATFORM)
        request = {"order_sn": platform_order_id, "logistics_id": logistics_id,
                   "tracking_number": tracking_number}
        sent = {"type": "pdd.logistics.online.send", **request}
        try:
            response = self._call("pdd.logistics.online.send", request)
        except Rejected as refusal:
            if not self._already_carries(platform_order_id, logistics_id, tracking_number):
                raise
            return PushResult(request=sent, response={"already_shipped_with_this_tracking": True,
                                                      "refusal": refusal.body})
        if response.get("is_success") is not True:
            raise Rejected("PDD did not confirm the shipment", platform=PLATFORM, body=response)
        return PushResult(request=sent, response=response)

    def _already_carries(self, order_sn: str, logistics_id: int, tracking_number: str) -> bool:
        try:
            detail = self.fetch_order(order_sn).payload
        except Rejected:
            return False
        extra = detail.get("extra_delivery_list")
        deliveries = [detail, *(extra if isinstance(extra, list) else [])]
        wanted = (tracking_number, logistics_id)
        return any(
            isinstance(d, dict) and (d.get("tracking_number"), d.get("logistics_id")) == wanted
            for d in deliveries
        )

    def logistics_companies(self) -> list[dict[str, Any]]:
        """The platform's own carrier list, to check LOGISTICS_IDS against."""
        return self._call("pdd.logistics.companies.get", {}).get("logistics_companies", [])

    # ---- stock out -----------------------------------------------------------------

    def list_listings(self) -> Iterator[list[Listing]]:
        """Pages of the goods on sale, as listings of their SKUs; one page per goods page."""
        size, page = min(self._page_size, MAX_GOODS_PAGE), 1
        while True:
            answer = self._call(GOODS_LIST, {"is_onsale": ON_SALE, "page": page,
                                             "page_size": size})
            try:
                listings, goods_count, total = goods_page(answer)
            except MappingError as error:
                raise Unavailable(f"{GOODS_LIST}: {error}", platform=PLATFORM,
                                  body=answer) from error
            if listings:
                yield listings
            if not goods_count or page * size >= total:
                return
            page += 1

    def push_stock(self, levels: list[StockLevel]) -> list[StockPushOutcome]:
        """Set each SKU's full stock, one pdd.goods.quantity.update per listing, in order."""
        return [self._set_stock(level) for level in levels]

    def _set_stock(self, level: StockLevel) -> StockPushOutcome:
        listing = level.listing
        if level.quantity < 0:
            return StockPushOutcome(listing.sku, level.quantity, Rejected(
                f"{listing.sku}: quantity {level.quantity} is below zero; PDD sets stock of 0 "
                "or more", platform=PLATFORM, code="negative_quantity"))
        if not (listing.item_id.isdigit() and listing.variant_id.isdigit()):
            return StockPushOutcome(listing.sku, level.quantity, Rejected(
                f"{listing.sku}: goods {listing.item_id!r} sku {listing.variant_id!r} is no PDD "
                "listing", platform=PLATFORM, code="not_a_pdd_listing"))
        request = {"goods_id": listing.item_id, "sku_id": listing.variant_id,
                   "quantity": level.quantity, "update_type": FULL_UPDATE}
        sent = {"type": QUANTITY_UPDATE, **request}
        try:
            answer = self._call(QUANTITY_UPDATE, request)
        except Rejected as refusal:
            if refusal.code in CALL_REFUSALS:
                raise
            return StockPushOutcome(listing.sku, level.quantity, refusal, sent, refusal.body)
        error = None if answer.get("is_success") is True else Rejected(
            f"{listing.sku}: PDD did not take the stock", platform=PLATFORM, body=answer)
        return StockPushOutcome(listing.sku, level.quantity, error, sent, answer)

    # ---- tokens and health ---------------------------------------------------------

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        """pdd.pop.auth.token.refresh, sent without the (probably lapsed) access token."""
        body = self._call("pdd.pop.auth.token.refresh", {"refresh_token": refresh_token},
                          authenticated=False)
        try:
            grant = TokenGrant(
                access_token=body["access_token"],
                access_expires_at=datetime.fromtimestamp(int(body["expires_at"]), timezone.utc),
                refresh_token=body.get("refresh_token"),
                refresh_expires_at=datetime.fromtimestamp(int(body["refresh_token_expires_at"]), timezone.utc)
                if body.get("refresh_token_expires_at") else None,
            )
        except (KeyError, TypeError, ValueError):
            raise Unavailable("pdd.pop.auth.token.refresh answered without a usable token",
                              platform=PLATFORM) from None
        self._access_token = grant.access_token
        return grant

    def probe(self) -> None:
        """One page of one order from the last minute: cheap, and it needs the token."""
        now = math.floor(time.time())
        self._call("pdd.order.number.list.increment.get", {
            "start_updated_at": now - 60, "end_updated_at": now, "order_status": ANY,
            "refund_status": ANY, "page": 1, "page_size": 1, "use_has_next": True})

    # ---- the wire ------------------------------------------------------------------

    def _call(self, api: str, business: Mapping[str, object], authenticated: bool = True) -> dict:
        params = {"type": api, "client_id": self._client_id, "timestamp": str(int(time.time())),
                  "data_type": "JSON", "version": "V1"}
        if self._access_token and authenticated:
            params["access_token"] = self._access_token
        params.update({key: _wire_value(value) for key, value in business.items()})
        params["sign"] = sign_params(params, self._client_secret)
        try:
            self._wait_turn()
            response = self._http.post(self._url, data=params)
        except httpx.TransportError as error:  # timeouts and connection failures alike
            raise Unavailable(f"{api}: {type(error).__name__}", platform=PLATFORM) from error
        return _unwrap(api, response)

    # ---- after-sales (connectors.pinduoduo_after_sales) -------------------------------

    def fetch_after_sales(self, start: datetime, end: datetime):
        """Requests updated in [start, end), each once (`HandlesAfterSales`)."""
        from connectors import pinduoduo_after_sales
        return pinduoduo_after_sales.fetch_after_sales(self, start, end)

    def to_after_sales(self, raw):
        from connectors import pinduoduo_after_sales
        return pinduoduo_after_sales.to_after_sales(raw, self.shop_code)

    def answer_after_sales(self, request, decision):
        from connectors import pinduoduo_after_sales
        return pinduoduo_after_sales.answer_after_sales(self, request, decision)


def _unwrap(api: str, response: httpx.Response) -> dict:
    body = gateway_json(response, api, PLATFORM, RATE_LIMIT_WAIT_SECONDS)
    if isinstance(body, dict) and isinstance(body.get("error_response"), dict):
        raise _translate(api, body["error_response"])
    if response.status_code != 200:
        status = response.status_code
        raise Rejected(f"{api}: HTTP {status}", platform=PLATFORM, code=status)
    inner = body.get(RESPONSE_KEYS.get(api, "")) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise Unavailable(f"{api}: answer lacks {RESPONSE_KEYS.get(api)}", platform=PLATFORM)
    return inner


def _translate(api: str, error: dict) -> ConnectorError:
    try:
        code: int | str | None = int(error.get("error_code"))
    except (TypeError, ValueError):
        code = error.get("error_code")
    message = f"{api}: {error.get('error_msg', '')} {error.get('sub_msg') or ''}".strip()
    kind = ERROR_TRANSLATION.get(code, Rejected)  # type: ignore[arg-type]
    if kind is RateLimited:
        wait = RATE_LIMIT_WAIT_SECONDS
        return RateLimited(message, retry_after=wait, platform=PLATFORM, code=code, body=error)
    return kind(message, platform=PLATFORM, code=code, body=error)
