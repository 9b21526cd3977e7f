"""Lazada Open Platform connector: signed REST calls, orders in, tracking numbers and stock out.

Every call carries app_key, a millisecond timestamp, sign_method=sha256 and (except token
calls) the seller's access_token, signed with HMAC-SHA256 over the api path and the
sorted parameters (reference §4.2). Orders are listed by update time with offset paging;
Lazada serves no offset past 5,000, so a window holding more orders is halved until each
part fits. The list carries no lines, so each page's items come from `/orders/items/get`
and ride in the payload under `order_items`. Tracking goes back with `/order/rts`.
Reading a payload into an `Order` is pure and lives in `connectors.lazada_mapping`.

Stock: listings are the SKUs of `/products/get` (50 products a page); quantities go out
with `/product/stock/sellable/update`, whose XML payload sets the sellable quantity of
up to 50 SKUs of any products at once. A refused SKU comes back as an overall E501 whose
`detail` names it; the others of that call are set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.base import (
    HttpConnection, Listing, PushResult, RawOrder, ShopAccess, StockLevel, StockPushOutcome,
    TokenGrant, platform_carrier_code,
)
from connectors.lazada_mapping import (  # noqa: F401  STATUS_TABLE re-exported for callers
    ITEMS_KEY, PLATFORM, STATUS_TABLE, listings_of_products, map_order, product_total, raw_order,
)
from connectors.pacing import RequestRate, shop_bucket
from oms.domain.errors import (
    ConnectorError, MappingError, RateLimited, Rejected, TokenExpired, Unavailable,
)
from oms.domain.order import Order

AUTH_ROOT = "https://auth.lazada.com/rest"  # [H] token calls for every country
API_HOST = re.compile(r"api\.lazada\.[a-z.]+")  # [H] api.lazada.co.th, api.lazada.sg...
MAX_PAGE_SIZE = 100  # [M]
MAX_OFFSET = 5000  # [M] beyond it Lazada serves nothing: split the window instead
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DELIVERY_TYPE = "dropship"  # [H] the seller ships with its own tracking number
MAX_PRODUCTS_PAGE = 50  # [H] /products/get limit
MAX_PRODUCTS_OFFSET = 10_000  # [H] beyond it /products/get pages no further
MAX_SKUS_PER_STOCK_UPDATE = 50  # [H] /product/stock/sellable/update ("20 is recommended")
PRODUCT_FILTER = "all"  # [H] live, inactive and sold-out products all keep their stock right
STOCK_UPDATE_FAILED = "501"  # [H] overall code; `detail` names the SKUs and causes

# --- UNVERIFIED (reference [L] or silent) ----------------------------------------------
# No per-second limit is in the stored material; only daily quotas (10 M calls a day
# online, 10,000 for test apps [M]). Ten calls a second per shop is a guess.
REQUEST_RATE = RequestRate(per_second=10.0, burst=10)
RATE_LIMIT_WAIT_SECONDS = 1.0  # when the throttling message names no wait
_RETRY_AFTER = re.compile(r"after\s+(\d+(?:\.\d+)?)\s*sec", re.IGNORECASE)
MAX_ORDER_IDS_PER_ITEMS_CALL = 50
# ApiCallLimit: reference "probably" [L]; 901 "E901: The request is too frequent" [H] (the
# product APIs' error tables: "please retry in the next second").
THROTTLING_CODES = ("ApiCallLimit", "901")
# Item statuses (reference §4.4 [M/L]) in which the seller may still hand over a parcel.
SHIPPABLE_ITEM_STATUSES = frozenset({"pending", "topack", "packed", "repacked", "toship"})
# Whether update_after/update_before include their second is not documented: each
# request reaches one second further on both sides and the pages are cut to [start, end).
WINDOW_MARGIN = timedelta(seconds=1)
# Our carrier code -> Lazada shipment_provider name for /order/rts. Names differ per
# country; check them against `shipment_providers()` before shipping real orders.
CARRIER_CODES: dict[str, str] = {
    "LEX": "Lazada Express", "NINJAVAN": "Ninja Van", "JT": "J&T Express",
    "FLASH": "Flash Express", "DHL": "DHL eCommerce",
}
# --- end UNVERIFIED

# Lazada error code -> our error; codes not listed are permanent (bad signature, bad
# parameters, refused shipment...) unless their `type` says the platform failed. HTTP
# 5xx, timeouts, connection failures and bodies that are not JSON become Unavailable.
ERROR_TRANSLATION: dict[str, type[ConnectorError]] = {
    "IllegalAccessToken": TokenExpired,  # [H] invalid or expired access token
    "IllegalRefreshToken": Rejected,  # [H] the seller must authorise the app again
    **{code: RateLimited for code in THROTTLING_CODES},
    # [H] product APIs: E006 "Unexpected internal error" (retry), 513 "Internal call
    # exception", 1000 "Internal Application Error".
    "6": Unavailable, "513": Unavailable, "1000": Unavailable,
}
# Codes not listed: by `type`. ISP is a backend service error, "try again after some time"
# (Lazada doc 108138 [M]); SYSTEM (the platform's own checks) and ISV (business data) stay
# permanent.
ERROR_TYPE_TRANSLATION: dict[str, type[ConnectorError]] = {"ISP": Unavailable}


def _wire_value(value: object) -> str:
    """The text a parameter is sent and signed as; id lists go as "[1,2]" (reference §4.2)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def sign_request(api_path: str, params: Mapping[str, object], app_secret: str) -> str:
    """Uppercase hex HMAC-SHA256(app_secret, api_path + k1v1k2v2... sorted, without sign)."""
    text = api_path + "".join(k + _wire_value(params[k]) for k in sorted(params) if k != "sign")
    return hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


def iso_second(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _whole_second(moment: datetime, round_up: bool) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("windows must be timezone-aware")
    seconds = moment.timestamp()
    whole = math.ceil(seconds) if round_up else math.floor(seconds)
    return datetime.fromtimestamp(whole, timezone.utc)


class LazadaConnector(HttpConnection):
    platform = PLATFORM

    def __init__(
        self, access: ShopAccess, http: httpx.Client | None = None,
        page_size: int = MAX_PAGE_SIZE, rate: RequestRate = REQUEST_RATE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.shop_code = access.code
        self._app_key = access.credentials["app_key"]
        self._app_secret = access.credentials["app_secret"]
        self._access_token = access.credentials.get("access_token", "")
        self._api_root = access.base_url.rstrip("/") + "/rest"
        # The real platform takes token calls on one auth host; the sandbox on its own.
        host = urlsplit(access.base_url).hostname or ""
        self._auth_root = AUTH_ROOT if API_HOST.fullmatch(host) else self._api_root
        self._page_size = page_size
        self._connect(http, TIMEOUT, pacing=shop_bucket(PLATFORM, access.code, rate))

    # ---- orders in -------------------------------------------------------------------

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Orders updated in [start, end), every page with its orders' items attached."""
        first, last = _whole_second(start, round_up=False), _whole_second(end, round_up=True)
        yield from self._window(first, last, (start, end))

    def _window(
        self, first: datetime, last: datetime, bounds: tuple[datetime, datetime]
    ) -> Iterator[list[RawOrder]]:
        """Orders updated in [first, last) (whole seconds) and within `bounds`, halving the
        window while it holds more than 5,000.

        Pages are read from the last back to the first: an order updated while we page
        leaves the window and shifts the later ones one place forward, which then repeats
        an order instead of skipping one. Pages are still yielded oldest first.
        """
        total, head = self._list_page(first, last, 0)
        if total > MAX_OFFSET:
            if last - first <= timedelta(seconds=1):
                raise Rejected(f"more than {MAX_OFFSET} orders updated within one second "
                               f"at {iso_second(first)}; Lazada cannot page them",
                               platform=PLATFORM, code="window_too_full")
            middle = first + (last - first) // 2
            middle = _whole_second(middle, round_up=False)
            yield from self._window(first, middle, bounds)
            yield from self._window(middle, last, bounds)
            return
        offsets = range(0, total, self._page_size)
        pages = [head] if len(offsets) <= 1 else [
            self._list_page(first, last, offset)[1] for offset in reversed(offsets)][::-1]
        low, high = max(first, bounds[0]), min(last, bounds[1])
        for page in pages:
            # Unreadable times stay in: the review queue must see those payloads.
            kept = [raw for raw in page if raw.platform_updated_at is None
                    or low <= raw.platform_updated_at < high]
            if kept:
                yield self._with_items(kept)

    def _list_page(
        self, first: datetime, last: datetime, offset: int
    ) -> tuple[int, list[RawOrder]]:
        query = {"update_after": iso_second(first - WINDOW_MARGIN),
                 "update_before": iso_second(last + WINDOW_MARGIN),
                 "sort_by": "updated_at", "sort_direction": "ASC", "status": "all",
                 "offset": offset, "limit": self._page_size}
        data = self._call("GET", "/orders/get", query)
        orders = data.get("orders") if isinstance(data, dict) else None
        total = data.get("countTotal") if isinstance(data, dict) else None
        if not isinstance(orders, list) or not isinstance(total, int) or isinstance(total, bool):
            raise Unavailable("/orders/get answered without orders or countTotal",
                              platform=PLATFORM, body=data)
        return total, [raw_order(item) for item in orders]

    def _with_items(self, page: list[RawOrder]) -> list[RawOrder]:
        """Attach each order's items (Lazada's list has none) under `order_items`."""
        ids = [int(raw.platform_order_id) for raw in page if raw.platform_order_id]
        found: dict[str, Any] = {}
        for n in range(0, len(ids), MAX_ORDER_IDS_PER_ITEMS_CALL):
            chunk = ids[n: n + MAX_ORDER_IDS_PER_ITEMS_CALL]
            data = self._call("GET", "/orders/items/get", {"order_ids": chunk})
            for entry in data if isinstance(data, list) else []:
                if isinstance(entry, dict):
                    found[str(entry.get("order_id"))] = entry.get("order_items")
        for raw in page:
            if raw.platform_order_id in found:
                raw.payload[ITEMS_KEY] = found[raw.platform_order_id]
        return page

    def fetch_order(self, order_id: str) -> RawOrder:
        raw = raw_order(self._call("GET", "/order/get", {"order_id": order_id}))
        raw.payload[ITEMS_KEY] = self.order_items(order_id)
        return raw

    def order_items(self, order_id: str) -> list[dict]:
        items = self._call("GET", "/order/items/get", {"order_id": order_id})
        if not isinstance(items, list):
            raise Unavailable("/order/items/get answered without a list", platform=PLATFORM)
        return [item for item in items if isinstance(item, dict)]

    def to_order(self, raw: RawOrder) -> Order:
        """The internal order, or MappingError naming everything wrong with the payload."""
        return map_order(raw.payload, self.shop_code)

    # ---- tracking out ----------------------------------------------------------------

    def push_tracking(
        self, platform_order_id: str, carrier: str, tracking_number: str
    ) -> PushResult:
        """Mark the order's items ready to ship with our tracking number (/order/rts).

        A repeat of a push Lazada already holds (every live item carries this tracking
        number with this provider) is a success without a second request; so is a refusal
        that turns out to be such a repeat (an earlier answer lost on the way back).
        """
        provider = platform_carrier_code(CARRIER_CODES, carrier, PLATFORM)
        if not platform_order_id.isdigit():
            raise Rejected(f"{platform_order_id!r} is not a Lazada order id", platform=PLATFORM)
        items = self.order_items(platform_order_id)
        if _carries(items, provider, tracking_number):
            return _already_pushed(platform_order_id, provider, tracking_number)
        to_ship = [i.get("order_item_id") for i in items
                   if i.get("status") in SHIPPABLE_ITEM_STATUSES]
        if not to_ship:
            statuses = sorted({str(i.get("status")) for i in items})
            raise Rejected(f"order {platform_order_id} has no item to ship (statuses {statuses})",
                           platform=PLATFORM, code="nothing_to_ship")
        request = {"delivery_type": DELIVERY_TYPE, "order_item_ids": to_ship,
                   "shipment_provider": provider, "tracking_number": tracking_number}
        try:
            response = self._call("POST", "/order/rts", request)
        except Rejected:
            if not _carries(self.order_items(platform_order_id), provider, tracking_number):
                raise
            return _already_pushed(platform_order_id, provider, tracking_number)
        return PushResult(request={"api": "/order/rts", "order_id": platform_order_id, **request},
                          response=response if isinstance(response, dict) else {"data": response})

    def shipment_providers(self) -> list[str]:
        """The provider names Lazada accepts, to check CARRIER_CODES against."""
        data = self._call("GET", "/order/shipment/providers/get", {})
        providers = data.get("shipment_providers") if isinstance(data, dict) else None
        return [p.get("name") for p in providers or [] if isinstance(p, dict)]

    # ---- stock out -------------------------------------------------------------------

    def list_listings(self) -> Iterator[list[Listing]]:
        """Pages of the seller's SKUs, one page per /products/get page of 50 products."""
        limit, offset = min(self._page_size, MAX_PRODUCTS_PAGE), 0
        while True:
            data = self._call("GET", "/products/get",
                              {"filter": PRODUCT_FILTER, "offset": offset, "limit": limit})
            products = data.get("products", []) if isinstance(data, dict) else None
            try:
                total, page = product_total(data), listings_of_products(products)
            except MappingError as error:
                raise Unavailable(f"/products/get: {error}", platform=PLATFORM,
                                  body=data) from error
            if page:
                yield page
            offset += limit
            if not products or offset >= total:
                return
            if offset > MAX_PRODUCTS_OFFSET:
                raise Rejected(f"the seller has {total} products; /products/get pages only "
                               f"{MAX_PRODUCTS_OFFSET} deep", platform=PLATFORM,
                               code="too_many_products")

    def push_stock(self, levels: list[StockLevel]) -> list[StockPushOutcome]:
        """Set sellable quantities, up to 50 SKUs (of any products) per call."""
        outcomes: list[StockPushOutcome | None] = [None] * len(levels)
        sendable = []
        for position, level in enumerate(levels):
            listing = level.listing
            if listing.item_id.isdigit() and listing.variant_id.isdigit():
                sendable.append((position, level))
            else:
                outcomes[position] = StockPushOutcome(listing.sku, level.quantity, error=Rejected(
                    f"{listing.sku}: item {listing.item_id!r} SKU {listing.variant_id!r} is no "
                    "Lazada listing", platform=PLATFORM, code="not_a_lazada_listing"))
        for first in range(0, len(sendable), MAX_SKUS_PER_STOCK_UPDATE):
            chunk = sendable[first : first + MAX_SKUS_PER_STOCK_UPDATE]
            for position, outcome in self._update_sellable(chunk):
                outcomes[position] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    def _update_sellable(self, chunk: list[tuple[int, StockLevel]]
                         ) -> list[tuple[int, StockPushOutcome]]:
        payload = sellable_quantity_payload([level for _, level in chunk])
        request = {"api": "/product/stock/sellable/update", "payload": payload}
        try:
            data = self._call("POST", "/product/stock/sellable/update", {"payload": payload})
        except Rejected as refusal:
            if str(refusal.code) != STOCK_UPDATE_FAILED:
                raise  # a payload Lazada cannot read is our bug, not one SKU's problem
            causes = _refused_skus(refusal.body)
            return [(position, StockPushOutcome(
                level.listing.sku, level.quantity, request=request, response=refusal.body,
                error=_sku_refusal(level, causes, refusal))) for position, level in chunk]
        response = data if isinstance(data, dict) else {"data": data}
        return [(position, StockPushOutcome(level.listing.sku, level.quantity, request=request,
                                            response=response)) for position, level in chunk]

    # ---- tokens and health -----------------------------------------------------------

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        """New access token from /auth/token/refresh; the connector uses it from now on."""
        now = datetime.now(timezone.utc)
        body = self._call("GET", "/auth/token/refresh", {"refresh_token": refresh_token},
                          token_call=True)
        try:
            grant = TokenGrant(
                access_token=str(body["access_token"]),
                access_expires_at=now + timedelta(seconds=int(body["expires_in"])),
                refresh_token=str(body.get("refresh_token") or refresh_token),
                refresh_expires_at=now + timedelta(seconds=int(body["refresh_expires_in"])),
            )
        except (KeyError, TypeError, ValueError):
            raise Unavailable("/auth/token/refresh answered without tokens",
                              platform=PLATFORM) from None
        self._access_token = grant.access_token
        return grant

    def probe(self) -> None:
        """One authenticated one-order page of the last minute."""
        now = datetime.now(timezone.utc)
        self._call("GET", "/orders/get", {"update_after": iso_second(now - timedelta(minutes=1)),
                                          "offset": 0, "limit": 1})

    # ---- the wire --------------------------------------------------------------------

    def _call(self, method: str, api_path: str, business: Mapping[str, object],
              token_call: bool = False) -> Any:
        system = {"app_key": self._app_key, "timestamp": str(int(time.time() * 1000)),
                  "sign_method": "sha256"}
        if not token_call:
            system["access_token"] = self._access_token
        fields = {key: _wire_value(value) for key, value in business.items()}
        system["sign"] = sign_request(api_path, {**system, **fields}, self._app_secret)
        url = (self._auth_root if token_call else self._api_root) + api_path
        # As the official SDK does: GET carries everything in the query, POST sends the
        # business parameters as form fields.
        query, form = ({**system, **fields}, None) if method == "GET" else (system, fields)
        self._wait_turn()
        try:
            response = self._http.request(method, url, params=query, data=form)
        except httpx.TransportError as error:  # timeouts and connection failures alike
            raise Unavailable(f"{api_path}: {type(error).__name__}", platform=PLATFORM) from error
        body = _unwrap(api_path, response)
        return body if token_call else body.get("data")


def _unwrap(api_path: str, response: httpx.Response) -> dict:
    status = response.status_code
    if status >= 500:
        raise Unavailable(f"{api_path}: HTTP {status}", platform=PLATFORM, code=status)
    try:
        body = response.json()
    except ValueError:
        if status == 429:
            raise RateLimited(f"{api_path}: HTTP 429", retry_after=RATE_LIMIT_WAIT_SECONDS,
                              platform=PLATFORM, code=status) from None
        raise Unavailable(f"{api_path}: answer is not JSON ({len(response.content)} bytes)",
                          platform=PLATFORM, code=status) from None
    if not isinstance(body, dict):
        raise Unavailable(f"{api_path}: answer is not a JSON object", platform=PLATFORM)
    if str(body.get("code")) != "0":
        raise _translate(api_path, body, status)
    if status != 200:
        raise Rejected(f"{api_path}: HTTP {status}", platform=PLATFORM, code=status)
    return body


def _translate(api_path: str, body: dict, status: int) -> ConnectorError:
    code = body.get("code")
    message = f"{api_path}: {body.get('message') or 'no message'}"
    kind = ERROR_TRANSLATION.get(str(code)) or ERROR_TYPE_TRANSLATION.get(str(body.get("type")))
    if kind is None:
        kind = RateLimited if status == 429 else Rejected
    if kind is RateLimited:
        hint = _RETRY_AFTER.search(str(body.get("message") or ""))
        wait = float(hint.group(1)) if hint else RATE_LIMIT_WAIT_SECONDS
        return RateLimited(message, retry_after=wait, platform=PLATFORM, code=code, body=body)
    return kind(message, platform=PLATFORM, code=code, body=body)


def sellable_quantity_payload(levels: list[StockLevel]) -> str:
    """The documented XML of /product/stock/sellable/update (single-warehouse form)."""
    request = ElementTree.Element("Request")
    skus = ElementTree.SubElement(ElementTree.SubElement(request, "Product"), "Skus")
    for level in levels:
        entry = ElementTree.SubElement(skus, "Sku")
        for tag, value in (("ItemId", level.listing.item_id), ("SkuId", level.listing.variant_id),
                           ("SellerSku", level.listing.sku),
                           ("SellableQuantity", str(level.quantity))):
            ElementTree.SubElement(entry, tag).text = value
    return ElementTree.tostring(request, encoding="unicode")


def _refused_skus(body: object) -> dict[str, str]:
    """SKU (SellerSku or SkuId) -> cause, from the `detail` of an E501."""
    detail = body.get("detail") if isinstance(body, dict) else None
    causes = {}
    for entry in detail if isinstance(detail, list) else []:
        if not isinstance(entry, dict):
            continue
        cause = " ".join(str(entry[key]) for key in ("field", "message", "code") if entry.get(key))
        for key in ("seller_sku", "sku_id", "SellerSku", "SkuId"):
            if entry.get(key):
                causes[str(entry[key])] = cause or "refused"
    return causes


def _sku_refusal(level: StockLevel, causes: dict[str, str], refusal: Rejected
                 ) -> ConnectorError | None:
    """This SKU's refusal from an E501, None when the detail names other SKUs only."""
    listing = level.listing
    cause = causes.get(listing.sku) or causes.get(listing.variant_id)
    if cause is not None:
        return Rejected(f"{listing.sku}: {cause}", platform=PLATFORM, code=STOCK_UPDATE_FAILED,
                        body=refusal.body)
    if not causes:
        return refusal  # an E501 that names no SKU: none of them can be taken as set
    return None


def _carries(items: list[dict], provider: str, tracking_number: str) -> bool:
    live = [i for i in items if i.get("status") != "canceled"]
    return bool(live) and all(
        (i.get("tracking_code"), i.get("shipment_provider")) == (tracking_number, provider)
        for i in live)


def _already_pushed(order_id: str, provider: str, tracking_number: str) -> PushResult:
    return PushResult(
        request={"api": "/order/rts", "order_id": order_id, "shipment_provider": provider,
                 "tracking_number": tracking_number},
        response={"already_shipped_with_this_tracking": True})
