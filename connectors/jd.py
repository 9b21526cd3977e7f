"""JD (京东 JOS) connector: signed `/routerjson` calls, orders in, waybill numbers out.

Every call is one form POST to `/routerjson` that names the API in `method`, carries all
business parameters as one JSON string in `360buy_param_json` and is signed with MD5
over the sorted system parameters (reference §7.1). Orders are read with
`jingdong.pop.order.search` by modification time in windows JD accepts; tracking goes
back with `jingdong.pop.order.shipment` and JD's own carrier ids. Tokens come from JD's
OAuth host (`open-oauth.jd.com`), whose refresh endpoint only some app types may use.
Listings come from `jingdong.sku.read.searchSkuList` (SKUs on sale with their wareId and
the seller's outerId); stock goes out with `jingdong.stock.write.updateSkuStock`, which
takes one SKU's full number per call: JOS offers no batch for it that we could source.
Reading a payload into an `Order` is pure and lives in `connectors.jd_mapping`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone

import httpx

from connectors.base import (
    HttpConnection, Listing, PushResult, RawOrder, ShopAccess, StockLevel, StockPushOutcome,
    TokenGrant, gateway_json, platform_carrier_code,
)
from connectors.base import second_slices as inclusive_seconds
from connectors.jd_mapping import (  # noqa: F401  re-exported for callers and tests
    CHINA_TIME, PLATFORM, STATUS_TABLE, TIME_FORMAT, map_order, parse_china_time, raw_order,
    sku_page,
)
from connectors.pacing import RequestRate, shop_bucket
from oms.domain.errors import (
    ConnectorError, MappingError, RateLimited, Rejected, TokenExpired, Unavailable,
)
from oms.domain.order import Order

GATEWAY_PATH = "/routerjson"
REFRESH_PATH = "/oauth2/refresh_token"
# In production the gateway and the OAuth host differ (reference §7.1, §7.2); under the
# sandbox (or any other base URL) both live below the one base URL.
PRODUCTION_GATEWAY = "https://api.jd.com"
PRODUCTION_OAUTH = "https://open-oauth.jd.com"
PARAM_JSON = "360buy_param_json"
API_VERSION = "2.0"
MAX_PAGE_SIZE = 100
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
ORDER_SEARCH = "jingdong.pop.order.search"
ORDER_GET = "jingdong.pop.order.get"
ORDER_SHIPMENT = "jingdong.pop.order.shipment"
SKU_SEARCH = "jingdong.sku.read.searchSkuList"
STOCK_UPDATE = "jingdong.stock.write.updateSkuStock"
SKU_FIELDS = "wareId,skuId,outerId,stockNum,status"
# Every field the mapping reads, asked for by name as `optional_fields`.
ORDER_FIELDS = ",".join((
    "orderId", "venderId", "orderType", "payType", "orderState", "orderStateRemark",
    "orderTotalPrice", "orderSellerPrice", "orderPayment", "freightPrice", "sellerDiscount",
    "orderRemark", "venderRemark", "orderStartTime", "orderEndTime", "modified",
    "paymentConfirmTime", "consigneeInfo", "itemInfoList", "couponDetailList", "pin",
    "open_id_buyer", "waybill", "logisticsId", "parentOrderId",
))
ALL_STATES = ",".join(STATUS_TABLE)

# --- UNVERIFIED (reference §7 [L], Appendix C, or absent): correct these first -----------
# Window width and date/sort codes: one month per request, dateType 1 = creation time and
# anything else modification time, sortType 1 = descending: from third-party code only.
ORDER_WINDOW = timedelta(days=30)
DATE_TYPE_MODIFIED, DATE_TYPE_CREATED, SORT_ASCENDING = 0, 1, 0
# JD publishes no rate limit in the material we hold; a cautious per-shop pace.
REQUEST_RATE = RequestRate(per_second=10, burst=20)
RATE_LIMIT_WAIT_SECONDS = 5.0  # JD's throttling error names no wait
# JD codes -> our errors. Gateway codes come in error_response.code; the OAuth host's in
# a top-level `code`. Every code not listed is permanent and becomes Rejected. HTTP 5xx,
# timeouts, connection failures and bodies that are not JSON become Unavailable.
ERROR_TRANSLATION: dict[str, type[ConnectorError]] = {
    "19": TokenExpired,  # access_token invalid or expired
    "72": RateLimited,  # call frequency exceeds limit
    "1": Unavailable,  # service temporarily unavailable
    "1004": RateLimited,  # OAuth host: too many requests
}
# Our carrier code -> JD logiCoprId, from third-party code (reference §7.4 [L]). J&T has
# no id we could source, so it stays unmapped and is refused before any request.
CARRIER_CODES: dict[str, int] = {
    "SF": 467, "YTO": 463, "STO": 470, "ZTO": 1499, "YUNDA": 1327, "EMS": 465, "JD": 2087,
}
# jingdong.pop.order.get is [M] without parameters or answer; its parameter and keys, and
# the fields of apiResult / sopjosshipment_result, follow third-party code.
ORDER_GET_ID = "order_id"
ORDER_DETAIL, ORDER_INFO = "orderDetailInfo", "orderInfo"
RESULT_CODE, RESULT_REASONS = "numberCode", ("chineseErrCode", "englishErrCode")
# The refresh call's grant type, and the token answer's refresh_token_expires unit (ms).
REFRESH_GRANT = "refresh_token"
EXPIRY_UNITS_PER_SECOND = 1000
# searchSkuList: at most 50 a page (one SDK wrapper's comment); 1 = 上架 (on sale).
MAX_SKU_PAGE = 50
ON_SALE = 1
# Gateway refusals (app key, signature, timestamp, method, version, parameter JSON): they
# would meet every listing, so they are raised; any other refusal of a stock update is
# about its SKU and is returned with it. updateSkuStock's answer {"success": true} is
# from one PHP wrapper's comment.
CALL_REFUSALS = frozenset({"12", "14", "25", "36", "37", "66"})
# --- end


def wire_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def sign_params(params: Mapping[str, object], secret: str) -> str:
    """Uppercase hex MD5 of secret + key1value1key2value2... (sorted, without sign) + secret."""
    joined = "".join(key + wire_text(params[key]) for key in sorted(params) if key != "sign")
    return hashlib.md5((secret + joined + secret).encode("utf-8")).hexdigest().upper()


def china_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times sent to JD must be timezone-aware")
    return moment.astimezone(CHINA_TIME).strftime(TIME_FORMAT)


def second_slices(
    start: datetime, end: datetime, span: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    """The shared inclusive whole-second slices, as datetimes: JD reads them as text."""
    for first, last in inclusive_seconds(start, end, span):
        yield _utc(first), _utc(last)


def _utc(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc)


def response_key(method: str) -> str:
    return method.replace(".", "_") + "_responce"  # sic: JD's spelling


def _succeeded(result: dict) -> bool:
    return result.get("success") in (True, "true")  # some gateways send the text "true"


def _refused(method: str, result: dict) -> Rejected:
    reason = next((result[k] for k in RESULT_REASONS if result.get(k)), "refused")
    return Rejected(f"{method}: {reason}", platform=PLATFORM, code=result.get(RESULT_CODE),
                    body=result)


class JdConnector(HttpConnection):
    platform = PLATFORM

    def __init__(
        self, access: ShopAccess, http: httpx.Client | None = None, page_size: int = MAX_PAGE_SIZE,
        request_rate: RequestRate | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.shop_code = access.code
        self._app_key = access.credentials["app_key"]
        self._app_secret = access.credentials["app_secret"]
        self._access_token = access.credentials.get("access_token", "")
        base = access.base_url.rstrip("/")
        self._gateway = base + GATEWAY_PATH
        oauth = access.credentials.get("oauth_base_url") or (
            PRODUCTION_OAUTH if base == PRODUCTION_GATEWAY else base)
        self._refresh_url = oauth.rstrip("/") + REFRESH_PATH
        self._page_size = page_size
        # The platform's own count of the orders in the windows the last fetch listed.
        self.reported_count: int | None = None
        rate = request_rate or REQUEST_RATE
        self._connect(http, TIMEOUT, pacing=shop_bucket(PLATFORM, access.code, rate))

    # ---- orders in -------------------------------------------------------------------

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Orders modified in [start, end), in slices no wider than JD accepts; afterwards
        `reported_count` holds the sum of JD's orderTotal over the slices."""
        self.reported_count = 0
        return self._orders(start, end, DATE_TYPE_MODIFIED)

    def backfill_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Orders created in [start, end); creation times never move."""
        return self._orders(start, end, DATE_TYPE_CREATED)

    def _orders(self, start: datetime, end: datetime, date_type: int) -> Iterator[list[RawOrder]]:
        for first, last in second_slices(start, end, ORDER_WINDOW):
            yield from self._pages_read_backwards(first, last, date_type)

    def _pages_read_backwards(
        self, first: datetime, last: datetime, date_type: int
    ) -> Iterator[list[RawOrder]]:
        """One slice, read from its last page back to the first.

        Pages are sorted by modification time, oldest first; an order modified while we
        page jumps out of the slice and shifts the rest one place forward. Read backwards,
        that shift repeats an order instead of skipping one (the upsert absorbs repeats).
        Pages are still yielded oldest first so a caller can move its watermark.
        """
        items, total = self._search_page(first, last, date_type, 1, self._page_size)
        self.reported_count = (self.reported_count or 0) + total
        if total <= self._page_size:
            if items:
                yield items
            return
        last_page = math.ceil(total / self._page_size)
        pages = [self._search_page(first, last, date_type, page, self._page_size)[0]
                 for page in range(last_page, 0, -1)]
        yield from (page for page in reversed(pages) if page)

    def _search_page(
        self, first: datetime, last: datetime, date_type: int, page: int, size: int
    ) -> tuple[list[RawOrder], int]:
        inner = self._call(ORDER_SEARCH, {
            "start_date": china_time(first), "end_date": china_time(last),
            "order_state": ALL_STATES, "optional_fields": ORDER_FIELDS,
            "page": str(page), "page_size": str(size),
            "dateType": date_type, "sortType": SORT_ASCENDING,
        })
        result = inner.get("searchorderinfo_result")
        if not isinstance(result, dict):
            raise Unavailable(f"{ORDER_SEARCH}: answer lacks searchorderinfo_result",
                              platform=PLATFORM, body=inner)
        api_result = result.get("apiResult")
        if isinstance(api_result, dict) and not _succeeded(api_result):
            raise _refused(ORDER_SEARCH, api_result)
        items, total = result.get("orderInfoList"), result.get("orderTotal")
        if not isinstance(items, list) or isinstance(total, bool) or not isinstance(total, int):
            raise Unavailable(f"{ORDER_SEARCH}: answer lacks orderInfoList or orderTotal",
                              platform=PLATFORM, body=result)
        return [raw_order(item) for item in items], total

    def fetch_order(self, order_id: str) -> RawOrder:
        inner = self._call(ORDER_GET, {ORDER_GET_ID: order_id, "optional_fields": ORDER_FIELDS})
        detail = inner.get(ORDER_DETAIL)
        api_result = detail.get("apiResult") if isinstance(detail, dict) else None
        if not isinstance(api_result, dict):
            raise Unavailable(f"{ORDER_GET}: answer lacks {ORDER_DETAIL}", platform=PLATFORM)
        if not _succeeded(api_result):
            raise _refused(ORDER_GET, api_result)
        return raw_order(detail.get(ORDER_INFO))

    def to_order(self, raw: RawOrder) -> Order:
        """The internal order, or MappingError naming everything wrong with the payload."""
        return map_order(raw.payload, self.shop_code)

    def probe(self) -> None:
        """One one-order page of the last minute: proves signature, token and gateway."""
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self._search_page(now - timedelta(minutes=1), now, DATE_TYPE_MODIFIED, 1, 1)

    # ---- tracking out ----------------------------------------------------------------

    def push_tracking(
        self, platform_order_id: str, carrier: str, tracking_number: str
    ) -> PushResult:
        """Report the shipment; a repeat of a shipment JD already holds succeeds again.

        JD refuses to ship an order that has left 等待出库, so after a refusal we read the
        order: if it already carries this waybill with this carrier, an earlier push
        landed (perhaps its answer was lost). Another waybill stays a refusal.
        """
        carrier_id = platform_carrier_code(CARRIER_CODES, carrier, PLATFORM)
        request = {"orderId": platform_order_id, "logiCoprId": str(carrier_id),
                   "logiNo": tracking_number}
        sent = {"method": ORDER_SHIPMENT, **request}
        inner = self._call(ORDER_SHIPMENT, request)
        result = inner.get("sopjosshipment_result")
        if not isinstance(result, dict):
            raise Unavailable(f"{ORDER_SHIPMENT}: answer lacks sopjosshipment_result",
                              platform=PLATFORM, body=inner)
        if _succeeded(result):
            return PushResult(request=sent, response=result)
        if self._already_carries(platform_order_id, carrier_id, tracking_number):
            return PushResult(request=sent, response={"already_shipped_with_this_tracking": True,
                                                      "refusal": result})
        raise _refused(ORDER_SHIPMENT, result)

    def _already_carries(self, order_id: str, carrier_id: int, tracking_number: str) -> bool:
        try:
            detail = self.fetch_order(order_id).payload
        except Rejected:
            return False
        # Several carriers are separated by '|', several numbers by ',' (reference §7.3).
        waybills = str(detail.get("waybill") or "").replace("|", ",").split(",")
        carriers = str(detail.get("logisticsId") or "").replace("|", ",").split(",")
        return tracking_number in waybills and str(carrier_id) in carriers

    # ---- stock out -------------------------------------------------------------------

    def list_listings(self) -> Iterator[list[Listing]]:
        """Pages of the shop's SKUs on sale, one page per searchSkuList page."""
        size, page = min(self._page_size, MAX_SKU_PAGE), 1
        while True:
            inner = self._call(SKU_SEARCH, {"skuStatuValue": [ON_SALE], "pageNo": page,
                                            "page_size": size, "field": SKU_FIELDS})
            try:
                listings, total = sku_page(inner.get("page"))
            except MappingError as error:
                raise Unavailable(f"{SKU_SEARCH}: {error}", platform=PLATFORM,
                                  body=inner) from error
            if listings:
                yield listings
            if page * size >= total:
                return
            page += 1

    def push_stock(self, levels: list[StockLevel]) -> list[StockPushOutcome]:
        """Set each SKU's full stock, one updateSkuStock per listing, in order."""
        return [self._set_stock(level) for level in levels]

    def _set_stock(self, level: StockLevel) -> StockPushOutcome:
        listing = level.listing
        if level.quantity < 0:
            return StockPushOutcome(listing.sku, level.quantity, Rejected(
                f"{listing.sku}: stockNum {level.quantity} is below zero; JD sets stock of 0 "
                "or more", platform=PLATFORM, code="negative_quantity"))
        if not listing.variant_id.isdigit():
            return StockPushOutcome(listing.sku, level.quantity, Rejected(
                f"{listing.sku}: skuId {listing.variant_id!r} is no JD SKU", platform=PLATFORM,
                code="not_a_jd_listing"))
        request = {"skuId": int(listing.variant_id), "stockNum": level.quantity}
        sent = {"method": STOCK_UPDATE, **request}
        try:
            inner = self._call(STOCK_UPDATE, request)
        except Rejected as refusal:
            if str(refusal.code) in CALL_REFUSALS:
                raise
            return StockPushOutcome(listing.sku, level.quantity, refusal, sent, refusal.body)
        said = inner.get("success")
        error: ConnectorError | None = None
        if said in (False, "false"):
            error = Rejected(f"{listing.sku}: JD did not take the stock", platform=PLATFORM,
                             body=inner)
        elif said not in (True, "true"):
            # Neither set nor refused: only a later push can tell, so it may be retried.
            error = Unavailable(f"{listing.sku}: {STOCK_UPDATE} did not confirm the stock",
                                platform=PLATFORM, body=inner)
        return StockPushOutcome(listing.sku, level.quantity, error, sent, inner)

    # ---- tokens ----------------------------------------------------------------------

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        """New tokens from JD's OAuth refresh endpoint.

        JD app types that cannot refresh get no refresh token at authorisation; for them,
        and for a refresh token JD no longer accepts, the only way on is for the seller to
        authorise the app again, so both are permanent refusals that say so.
        """
        if not refresh_token:
            raise Rejected("this JD app has no refresh token (its app type cannot refresh): "
                           "the shop must be re-authorised", platform=PLATFORM,
                           code="refresh_unavailable")
        query = {"app_key": self._app_key, "app_secret": self._app_secret,
                 "grant_type": REFRESH_GRANT, "refresh_token": refresh_token}
        self._wait_turn()
        try:
            response = self._http.get(self._refresh_url, params=query)
        except httpx.TransportError as error:
            failure = type(error).__name__
            raise Unavailable(f"token refresh: {failure}", platform=PLATFORM) from error
        body = _json_body("token refresh", response)
        code = str(body.get("code", ""))
        if code != "0" or not body.get("access_token"):
            kind = ERROR_TRANSLATION.get(code, Rejected)
            if kind is Rejected:
                raise Rejected(f"JD refused the refresh token ({body.get('msg', '')}): the shop "
                               "must be re-authorised", platform=PLATFORM, code=code, body=body)
            raise _error(kind, f"token refresh: {body.get('msg', '')}", code, body)
        now = datetime.now(timezone.utc)
        grant = TokenGrant(
            access_token=body["access_token"],
            access_expires_at=now + timedelta(seconds=int(body.get("expires_in", 0))),
            refresh_token=body.get("refresh_token") or refresh_token,
            refresh_expires_at=_expiry(body.get("refresh_token_expires")),
        )
        self._access_token = grant.access_token
        return grant

    # ---- the wire --------------------------------------------------------------------

    def _call(self, method: str, business: Mapping[str, object]) -> dict:
        params = {
            "method": method, "app_key": self._app_key, "access_token": self._access_token,
            "timestamp": china_time(datetime.now(timezone.utc)), "v": API_VERSION,
            PARAM_JSON: json.dumps(business, ensure_ascii=False, separators=(",", ":")),
        }
        params["sign"] = sign_params(params, self._app_secret)
        self._wait_turn()
        try:
            response = self._http.post(self._gateway, data=params)
        except httpx.TransportError as error:  # timeouts and connection failures alike
            raise Unavailable(f"{method}: {type(error).__name__}", platform=PLATFORM) from error
        body = _json_body(method, response)
        if isinstance(body.get("error_response"), dict):
            raise _translate(method, body["error_response"])
        inner = body.get(response_key(method))
        if not isinstance(inner, dict):
            raise Unavailable(f"{method}: answer lacks {response_key(method)}", platform=PLATFORM)
        if str(inner.get("code", "0")) != "0":
            raise _translate(method, inner)
        return inner

    # ---- after-sales (connectors.jd_after_sales) --------------------------------------

    def fetch_after_sales(self, start: datetime, end: datetime):
        """Refund applications made in [start, end), each once (`HandlesAfterSales`)."""
        from connectors import jd_after_sales
        return jd_after_sales.fetch_after_sales(self, start, end)

    def to_after_sales(self, raw):
        from connectors import jd_after_sales
        return jd_after_sales.to_after_sales(raw, self.shop_code)

    def answer_after_sales(self, request, decision):
        from connectors import jd_after_sales
        return jd_after_sales.answer_after_sales(self, request, decision)


def _json_body(what: str, response: httpx.Response) -> dict:
    status = response.status_code
    body = gateway_json(response, what, PLATFORM, RATE_LIMIT_WAIT_SECONDS)
    if not isinstance(body, dict):
        raise Unavailable(f"{what}: answer is not a JSON object", platform=PLATFORM)
    if status != 200 and "error_response" not in body:
        raise Rejected(f"{what}: HTTP {status}", platform=PLATFORM, code=status, body=body)
    return body


def _translate(method: str, error: dict) -> ConnectorError:
    code = str(error.get("code", ""))
    message = f"{method}: {error.get('zh_desc') or error.get('en_desc') or error.get('msg', '')}"
    return _error(ERROR_TRANSLATION.get(code, Rejected), message, code, error)


def _error(kind: type[ConnectorError], message: str, code: str, body: dict) -> ConnectorError:
    if kind is RateLimited:
        return RateLimited(message, retry_after=RATE_LIMIT_WAIT_SECONDS, platform=PLATFORM,
                           code=code, body=body)
    return kind(message, platform=PLATFORM, code=code, body=body)


def _expiry(value: object) -> datetime | None:
    try:
        stamp = int(value) / EXPIRY_UNITS_PER_SECOND  # type: ignore[arg-type]
        return datetime.fromtimestamp(stamp, timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None
