"""Shopify connector: pulls orders from the REST Admin API, writes tracking and stock back.

The same code talks to `https://{shop}.myshopify.com` and to the sandbox's
`{sandbox}/shopify/{shop}`: only `ShopAccess.base_url` differs. Orders are listed with
`status=any` over an `updated_at` window and followed page by page through the `Link`
header; tracking goes back as a fulfillment of the order's open fulfillment order.
Stock goes out one variant at a time: `inventory_levels/set.json` sets the absolute
`available` quantity of one inventory item at one location (REST has no batch form), so
each call is paced by the shop's bucket. Listings are the SKU-carrying variants of
`products.json`, paged through the `Link` header like orders.
Every failure on the wire leaves as one of the errors in `oms.domain.errors`; what a
payload means is read in `connectors.shopify_mapping`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.base import (
    HttpConnection, Listing, PushResult, RawOrder, ShopAccess, StockLevel, StockPushOutcome,
    TokenGrant, platform_carrier_code,
)
from connectors.pacing import RequestRate, shop_bucket
# The mapping's public names are re-exported: callers (and tests) know them from here.
from connectors.shopify_mapping import (
    PLATFORM,
    listings_of_products,
    map_order,
    raw_order,
)
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import Order

log = logging.getLogger(__name__)

API_VERSION = "2025-01"
MAX_PAGE_SIZE = 250
REQUEST_TIMEOUT_SECONDS = 30.0
# [H] Standard plan: the bucket leaks 2 calls a second; [M] it holds 40.
REQUEST_RATE = RequestRate(per_second=2, burst=40)
DEFAULT_RETRY_AFTER_SECONDS = 1.0  # [H] the official client waits 1 s without Retry-After
FULFILLABLE_STATUSES = ("open", "in_progress")
# What products.json is asked for: the variants carry SKU, ids and quantity.
LISTING_FIELDS = "id,variants"
# HTTP statuses with which set.json refuses the one level it was sent (a bad body, an
# unknown item or location, a negative quantity); any other refusal concerns every call.
REFUSALS_OF_ONE_LEVEL = (400, 404, 422)

# Our carrier code -> Shopify tracking company. Names on Shopify's list get a tracking
# URL built by Shopify; any other name is still accepted, just without a link.
# "China Post" is on Shopify's supported list (FulfillmentTrackingInfo docs, any country).
# The other spellings are unverified against that list.
TRACKING_COMPANY_BY_CARRIER: dict[str, str] = {
    "SF": "SF Express",
    "ZTO": "ZTO Express",
    "YTO": "YTO Express",
    "STO": "STO Express",
    "YUNDA": "Yunda Express",
    "JD": "JD Logistics",
    "EMS": "China Post",
    "JT": "J&T Express",
}

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class ShopifyConnector(HttpConnection):
    """One Shopify shop, reached with its Admin API access token."""

    platform = PLATFORM

    def __init__(
        self, access: ShopAccess, http: httpx.Client | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> None:
        token = access.credentials.get("access_token")
        if not token:
            raise Rejected(f"shop {access.code} has no access_token", platform=PLATFORM)
        self.access = access
        self.page_size = page_size
        # The location stock is set at: named in the shop's credentials when it has several.
        self._stock_location_id: str | None = access.credentials.get("location_id") or None
        self._api_root = f"{access.base_url.rstrip('/')}/admin/api/{API_VERSION}"
        self._headers = {"X-Shopify-Access-Token": token, "Accept": "application/json"}
        self._connect(http, REQUEST_TIMEOUT_SECONDS, pacing=shop_bucket(PLATFORM, access.code, REQUEST_RATE))

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Yield non-empty pages of orders updated in [start, end)."""
        params: dict[str, Any] = {
            "status": "any",
            "updated_at_min": _whole_second(start, round_up=False),
            "updated_at_max": _whole_second(end, round_up=True),
            "limit": self.page_size,
        }
        pages = 0
        while True:
            response, body = self._call("GET", "/orders.json", params=params)
            payloads = body.get("orders") if isinstance(body, dict) else None
            if not isinstance(payloads, list):
                raise Unavailable("orders.json answered without an orders list", platform=PLATFORM)
            # Shopify's updated_at_max is inclusive; our windows are half-open, so an order
            # updated exactly at `end` belongs to the next window.
            page = [raw for raw in map(raw_order, payloads) if not _at_or_after(raw, end)]
            pages += 1
            if page:
                yield page
            cursor = _next_page_info(response.headers.get("link", ""))
            if cursor is None:
                log.debug("shop %s: %d order pages for the window", self.access.code, pages)
                return
            # A page_info request may carry only limit (and fields); filters ride in it.
            params = {"page_info": cursor, "limit": self.page_size}

    def to_order(self, raw: RawOrder) -> Order:
        return map_order(raw.payload, shop_code=self.access.code)

    def push_tracking(
        self, platform_order_id: str, carrier: str, tracking_number: str
    ) -> PushResult:
        company = platform_carrier_code(TRACKING_COMPANY_BY_CARRIER, carrier, PLATFORM)
        if not platform_order_id.isdigit():
            raise Rejected(f"{platform_order_id!r} is not a Shopify order id", platform=PLATFORM)
        order_path = f"/orders/{platform_order_id}"
        _, body = self._call("GET", f"{order_path}/fulfillment_orders.json")
        open_ids = [
            fulfillment_order["id"]
            for fulfillment_order in _list_in(body, "fulfillment_orders")
            if fulfillment_order.get("status") in FULFILLABLE_STATUSES
            and fulfillment_order.get("id") is not None
        ]
        if open_ids:
            # No url: Shopify builds it for the companies it knows.
            request = {"fulfillment": {
                "line_items_by_fulfillment_order": [{"fulfillment_order_id": i} for i in open_ids],
                "tracking_info": {"number": tracking_number, "company": company},
                "notify_customer": False,
            }}
            _, response = self._call("POST", "/fulfillments.json", json=request)
            return PushResult(request=request, response=response)
        return self._confirm_already_pushed(order_path, tracking_number)

    def _confirm_already_pushed(self, order_path: str, tracking_number: str) -> PushResult:
        """Nothing left to fulfil: a re-push of the same tracking number is a success."""
        _, body = self._call("GET", f"{order_path}/fulfillments.json")
        for fulfillment in _list_in(body, "fulfillments"):
            numbers = [fulfillment.get("tracking_number")]
            numbers += fulfillment.get("tracking_numbers") or []
            if tracking_number in numbers:
                summary = {key: fulfillment.get(key) for key in
                           ("id", "status", "tracking_company", "tracking_number")}
                return PushResult(
                    request={"already_fulfilled_with": tracking_number},
                    response={"fulfillment": summary},
                )
        raise Rejected(
            "the order has no open fulfillment order and no fulfillment with this tracking number",
            platform=PLATFORM,
            code="no_open_fulfillment_order",
        )

    # ---- stock out ---------------------------------------------------------------

    def list_listings(self) -> Iterator[list[Listing]]:
        """Pages of the shop's SKU-carrying variants, tied to the location stock is set at."""
        location_id = self._stock_location()
        params: dict[str, Any] = {"limit": self.page_size, "fields": LISTING_FIELDS}
        while True:
            response, body = self._call("GET", "/products.json", params=params)
            products = body.get("products") if isinstance(body, dict) else None
            try:
                page = listings_of_products(products, location_id)
            except MappingError as error:
                # Shopify's own answer was unreadable: a retry is the only cure we have.
                raise Unavailable(f"products.json: {error}", platform=PLATFORM) from error
            if page:
                yield page
            cursor = _next_page_info(response.headers.get("link", ""))
            if cursor is None:
                return
            params = {"page_info": cursor, "limit": self.page_size, "fields": LISTING_FIELDS}

    def push_stock(self, levels: list[StockLevel]) -> list[StockPushOutcome]:
        """Set each level with its own set.json call (REST Shopify has no batch)."""
        return [self._set_level(level) for level in levels]

    def _set_level(self, level: StockLevel) -> StockPushOutcome:
        listing = level.listing
        location_id = listing.location_id or self._stock_location()
        if not (listing.item_id.isdigit() and location_id.isdigit()):
            refusal = Rejected(f"{listing.sku}: {listing.item_id!r} at {location_id!r} is no "
                               "Shopify inventory item and location", platform=PLATFORM,
                               code="not_a_shopify_listing")
            return StockPushOutcome(listing.sku, level.quantity, error=refusal)
        request = {"location_id": int(location_id), "inventory_item_id": int(listing.item_id),
                   "available": level.quantity}
        try:
            _, response = self._call("POST", "/inventory_levels/set.json", json=request)
        except Rejected as refusal:
            if refusal.code not in REFUSALS_OF_ONE_LEVEL:
                raise
            body = refusal.body if isinstance(refusal.body, dict) else None
            return StockPushOutcome(listing.sku, level.quantity, error=refusal, request=request,
                                    response=body)
        return StockPushOutcome(listing.sku, level.quantity, request=request, response=response)

    def _stock_location(self) -> str:
        """The shop's location for stock: the configured one, else its only active one."""
        if self._stock_location_id is None:
            _, body = self._call("GET", "/locations.json")
            active = [str(location["id"]) for location in _list_in(body, "locations")
                      if location.get("active") and location.get("id") is not None]
            if len(active) != 1:
                # Which location's stock the pipeline owns is the seller's decision.
                raise Rejected(
                    f"shop {self.access.code} has {len(active)} active locations; name the one "
                    "stock is synced to as location_id in its credentials",
                    platform=PLATFORM, code="choose_location")
            self._stock_location_id = active[0]
        return self._stock_location_id

    def probe(self) -> None:
        """One cheap authenticated call; raises like any other call."""
        self._call("GET", "/orders/count.json", params={"status": "any"})

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        """Offline Admin API tokens do not expire; a refused one means the app was removed."""
        raise Rejected(f"shop {self.access.code}: Shopify offline tokens cannot be refreshed; "
                       "the merchant must install the app again", platform=PLATFORM,
                       code="reauthorise")

    def _call(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, Any]:
        where = f"{method} {path.split('?')[0]}"
        try:
            url = self._api_root + path
            self._wait_turn()
            response = self._http.request(method, url, headers=self._headers, **kwargs)
        except httpx.TimeoutException as error:
            raise Unavailable(f"{where} timed out", platform=PLATFORM) from error
        except httpx.RequestError as error:
            message = f"{where} failed: {type(error).__name__}"
            raise Unavailable(message, platform=PLATFORM) from error
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
            if response.is_success:
                # The text may hold personal data: say only how much came.
                raise Unavailable(
                    f"{where} answered non-JSON ({len(response.content)} bytes)",
                    platform=PLATFORM, code=status,
                ) from None
        if response.is_success:
            return response, body
        message, details = f"{where}: {_errors_text(body)}", {"code": status, "body": body}
        if status == 401:
            raise TokenExpired(message, platform=PLATFORM, **details)
        if status == 429:
            retry_after = _retry_after(response)
            raise RateLimited(message, retry_after=retry_after, platform=PLATFORM, **details)
        if status >= 500:
            raise Unavailable(message, platform=PLATFORM, **details)
        raise Rejected(message, platform=PLATFORM, **details)

    # ---- after-sales (connectors.shopify_after_sales) ---------------------------------

    def fetch_after_sales(self, start: datetime, end: datetime):
        """Return requests of orders updated in [start, end), each once (`HandlesAfterSales`)."""
        from connectors import shopify_after_sales
        return shopify_after_sales.fetch_after_sales(self, start, end)

    def to_after_sales(self, raw):
        from connectors import shopify_after_sales
        return shopify_after_sales.to_after_sales(raw, self.access.code)

    def answer_after_sales(self, request, decision):
        from connectors import shopify_after_sales
        return shopify_after_sales.answer_after_sales(self, request, decision)


# ---------------------------------------------------------------- the wire, read


def _whole_second(moment: datetime, *, round_up: bool) -> str:
    if moment.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    moment = moment.astimezone(timezone.utc)
    truncated = moment.replace(microsecond=0)
    if round_up and truncated != moment:
        truncated += timedelta(seconds=1)
    return truncated.isoformat()


def _at_or_after(raw: RawOrder, end: datetime) -> bool:
    return raw.platform_updated_at is not None and raw.platform_updated_at >= end


def _next_page_info(link_header: str) -> str | None:
    match = _NEXT_LINK.search(link_header)
    if not match:
        return None
    values = parse_qs(urlsplit(match.group(1)).query).get("page_info")
    return values[0] if values else None


def _list_in(body: Any, key: str) -> list[dict]:
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise Unavailable(f"the answer has no {key} list", platform=PLATFORM)
    return [item for item in items if isinstance(item, dict)]


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("retry-after", DEFAULT_RETRY_AFTER_SECONDS))
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECONDS


def _errors_text(body: Any) -> str:
    """Shopify's `errors` is a string, a list of strings or a field -> message(s) object."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, str):
        return errors
    if isinstance(errors, list):
        return "; ".join(map(str, errors))
    if isinstance(errors, dict):
        return "; ".join(f"{field}: {message}" for field, message in errors.items())
    return "no error message"
