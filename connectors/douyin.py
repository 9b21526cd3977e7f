"""Douyin shop (抖店 / Doudian) connector: signed gateway calls, orders in, tracking out.

Every API is `POST {host}/{path}` (reference §8.1): the common parameters and the
HMAC-SHA256 signature travel in the query string, the business parameters as the JSON
body, serialised canonically (keys sorted, compact) because the signature covers exactly
that text. Orders are read with `order/searchList` by update time in windows the platform
accepts; tracking numbers go back with `order/logisticsAdd`; tokens are renewed with
`token/refresh`. Reading a payload into an `Order` is pure and lives in
`connectors.douyin_mapping`.
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
    HttpConnection, PushResult, RawOrder, ShopAccess, TokenGrant, gateway_json,
    platform_carrier_code,
    second_slices,
)
from connectors.douyin_mapping import PLATFORM, STATUS_TABLE, map_order, raw_order  # noqa: F401
from connectors.pacing import RequestRate, shop_bucket
from oms.domain.errors import ConnectorError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import Order

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_PAGE_SIZE = 100  # [H] order/searchList "单页大小，限制100以内"
MAX_DECRYPT_ITEMS = 50  # [H] SDK order/batchDecrypt: at most 50 ciphertexts a call
REFRESH_LIFETIME = timedelta(days=14)  # [H]; token/refresh does not say it, so we do
SUCCESS = 10000  # [H]

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
        self._connect(http, TIMEOUT, pacing=shop_bucket(PLATFORM, access.code, rate))

    # ---- orders in -----------------------------------------------------------------

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Orders updated in [start, end), in windows of at most UPDATE_WINDOW.

        Each window is sorted by update time, oldest first, and read from its last page
        back to the first: an order updated while we page leaves its place and shifts the
        later ones forward, onto pages already read, which repeats an order instead of
        skipping one. Pages are yielded oldest first so a caller can move its watermark.
        """
        for slice_start, slice_end in second_slices(start, end, UPDATE_WINDOW):
            window = {"update_time_start": slice_start, "update_time_end": slice_end}
            yield from self._window_pages(window)

    def _window_pages(self, window: dict) -> Iterator[list[RawOrder]]:
        first, total = self._search_page(window, 0)
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
