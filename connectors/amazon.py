"""Amazon Selling Partner API connector: LWA tokens, Orders v0 in, shipment confirmations
and stock out.

The connector holds the seller's LWA refresh token and the app's client credentials and
gets (and renews) its one-hour access token itself; calls carry it in
`x-amz-access-token` and are not signed (SigV4 is no longer required, reference §2.1).
getOrders lists orders by LastUpdated window, at most 100 a page, following NextToken;
its upper bound must lie two minutes in the past, so a window ending later is cut there
and the rest comes with the next window (the pipeline's fetch overlap of several minutes
covers it). getOrders carries no items: each order gets its getOrderItems list under
`OrderItems` before it is handed on. Receiver data comes masked unless the connector is
asked for restricted data, which it reads under a Restricted Data Token (RDT).
Reading a payload into an `Order` is pure and lives in `connectors.amazon_mapping`.

Stock goes through the Listings Items API 2021-08-01: searchListingsItems pages the
seller's SKUs (20 a page, with their productType and DEFAULT quantity), and one
patchListingsItem per SKU merges the new quantity into `fulfillment_availability`. The
API takes one SKU per call (batches would need the JSON_LISTINGS_FEED), and a patch it
cannot take is answered INVALID with issues, which is that listing's refusal.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from connectors.amazon_mapping import (  # noqa: F401  re-exported for callers and tests
    FULFILLMENT_CHANNEL, ITEMS_KEY, PLATFORM, STATUS_TABLE, listing_of_item, map_order,
    parse_time, raw_order, receiver_from_address, submission_issues,
)
from connectors.base import (
    HttpConnection, Listing, PushResult, RawOrder, ShopAccess, StockLevel, StockPushOutcome,
    TokenGrant, platform_carrier_code,
)
from connectors.pacing import RequestRate, TokenBucket, shop_bucket
from oms.domain.errors import (
    ConnectorError, MappingError, RateLimited, Rejected, TokenExpired, Unavailable,
)
from oms.domain.order import Order, Receiver

log = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"  # [H]
ORDERS_PATH = "/orders/v0/orders"
RDT_PATH = "/tokens/2021-03-01/restrictedDataToken"
LISTINGS_PATH = "/listings/2021-08-01/items"
MAX_PAGE_SIZE = 100  # [H]
LISTINGS_PAGE_SIZE = 20  # [H] searchListingsItems pageSize maximum
MAX_LISTINGS_PAGEABLE = 1000  # [H] searchListingsItems pages through at most 1,000 SKUs
LISTING_DATA = "summaries,fulfillmentAvailability"
# [L] used when a SKU's productType is unknown (not seen in list_listings): sellers patch
# offer-only attributes such as fulfillment_availability under the generic type.
GENERIC_PRODUCT_TYPE = "PRODUCT"
# A merge touches only the quantity: restock_date and lead_time_to_ship_max_days stay as
# the seller set them, where a replace would drop them [H] (merge-a-listing guide).
QUANTITY_PATCH_OPERATION = "merge"
# Error codes with which a patch is refused for its one SKU (a request Amazon cannot read,
# a SKU it does not know); Unauthorized, throttling and outages concern every call.
SKU_REFUSAL_CODES = frozenset({"BAD_REQUEST", "InvalidInput", "NotFound"})
# [H] LastUpdatedBefore must be two minutes before now; the margin absorbs clock skew.
SETTLE_TIME = timedelta(minutes=2)
CLOCK_MARGIN = timedelta(seconds=15)
# Renew the access token this long before Amazon says it lapses (the SDK keeps ~3200 s).
TOKEN_RENEWAL_MARGIN = timedelta(minutes=5)
USER_AGENT = "oms-pipeline/0.1 (Language=Python)"

# Usage plans per operation, from the models' descriptions [H] (reference §2.4, tokens
# model). Each operation has its own bucket per seller and app, so each gets its own here.
OPERATION_RATES: dict[str, RequestRate] = {
    "getOrders": RequestRate(per_second=0.0167, burst=20),
    "getOrder": RequestRate(per_second=0.5, burst=30),
    "getOrderItems": RequestRate(per_second=0.5, burst=30),
    "getOrderAddress": RequestRate(per_second=0.5, burst=30),
    "confirmShipment": RequestRate(per_second=2, burst=10),
    "createRestrictedDataToken": RequestRate(per_second=1, burst=10),
    "getOrder2026": RequestRate(per_second=0.5, burst=30),
    # Listings Items 2021-08-01 [H] (listingsItems_2021-08-01 model)
    "searchListingsItems": RequestRate(per_second=5, burst=5),
    "getListingsItem": RequestRate(per_second=5, burst=10),
    "patchListingsItem": RequestRate(per_second=5, burst=5),
}
REQUEST_RATE = OPERATION_RATES["getOrders"]

# Amazon error code (and, for one code, a fragment of its details) -> our error. Rows are
# tried in order; an unknown code falls back on its HTTP status: 429 RateLimited, 5xx
# Unavailable, anything else Rejected. Timeouts, connection errors and bodies that are
# not JSON are Unavailable.
ERROR_TRANSLATION: dict[tuple[str, str | None], type[ConnectorError]] = {
    # [H] details "The access token you provided has expired."
    ("Unauthorized", "has expired"): TokenExpired,
    ("Unauthorized", None): Rejected,  # [H] revoked, malformed or invalid token
    ("QuotaExceeded", None): RateLimited,  # [H] HTTP 429
    ("InvalidInput", None): Rejected,  # [H] getOrders
    ("Invalid Input", None): Rejected,  # [H] confirmShipment spells it with a space
    ("InvalidRequest", None): Rejected,  # [H] createRestrictedDataToken
    ("BAD_REQUEST", None): Rejected,  # [H] Listings Items "Invalid input"
}
# --- UNVERIFIED (reference [M]/[L]): codes seen in SDKs and threads, not in the models.
ERROR_TRANSLATION |= {
    ("MissingAuthenticationToken", None): Rejected,
    ("NotFound", None): Rejected,
    ("InternalFailure", None): Unavailable,
    ("ServiceUnavailable", None): Unavailable,
}
# --- end
# LWA answers {error, error_description}; values [M]. A refused grant or client means the
# seller must authorise the app again or its secret was rotated: nothing to retry.
LWA_ERROR_TRANSLATION: dict[str, type[ConnectorError]] = {
    "invalid_grant": Rejected, "invalid_client": Rejected, "unauthorized_client": Rejected,
    "unsupported_grant_type": Rejected, "invalid_request": Rejected,
    "server_error": Unavailable, "temporarily_unavailable": Unavailable,
}

# Our carrier code -> Amazon CarrierCode. "FedEx" is the models' own example [H].
CARRIER_CODES: dict[str, str] = {"FEDEX": "FedEx"}
# --- UNVERIFIED (reference [L]): the spellings of Amazon's other CarrierCode values.
# Carriers Amazon has no code for are left out on purpose: "Other" with a free
# carrierName is accepted but hurts the seller's valid tracking rate.
CARRIER_CODES |= {"USPS": "USPS", "UPS": "UPS", "DHL": "DHL", "SF": "SF Express",
                  "EMS": "China Post"}
# Orders API 2026-01-01 packages name their carrier in `carrier`; that it holds the
# CarrierCode sent with confirmShipment (not a display name) is assumed.
PACKAGE_CARRIER_FIELD = "carrier"
# --- end


def iso_seconds(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def lwa_token_url(base_url: str) -> str:
    """LWA lives on api.amazon.com, beside the regional SP-API hosts; a host that is not
    Amazon's (the sandbox) serves it under the base URL."""
    host = urlsplit(base_url).hostname or ""
    if host.endswith(".amazon.com"):
        return LWA_TOKEN_URL
    return base_url.rstrip("/") + "/auth/o2/token"


def package_reference(tracking_number: str) -> str:
    """A positive numeric packageReferenceId that a resend of the same parcel repeats."""
    digest = hashlib.sha256(tracking_number.encode("utf-8")).digest()
    return str(1 + int.from_bytes(digest[:6], "big") % 999_999_999)


class AmazonConnector(HttpConnection):
    platform = PLATFORM
    # How far behind now a fetch can reach: the ingest plans its windows to end there, so
    # its watermark never claims minutes Amazon would not serve yet.
    fetch_lag = SETTLE_TIME + CLOCK_MARGIN

    def __init__(
        self, access: ShopAccess, http: httpx.Client | None = None, page_size: int = MAX_PAGE_SIZE,
        request_rate: RequestRate | None = None, *, rates: Mapping[str, RequestRate] | None = None,
        restricted_data: bool = False,
    ) -> None:
        """`request_rate` paces every operation alike instead of Amazon's usage plans (for
        tests and the demo); `rates` replaces the plans of single operations."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        credentials = access.credentials
        missing = [k for k in ("client_id", "client_secret", "refresh_token", "marketplace_id")
                   if not credentials.get(k)]
        if missing:
            raise Rejected(f"shop {access.code} lacks {', '.join(missing)}", platform=PLATFORM)
        self.shop_code = access.code
        self._client_id = credentials["client_id"]
        self._client_secret = credentials["client_secret"]
        self._refresh_token = credentials["refresh_token"]
        self._marketplace_id = credentials["marketplace_id"]
        self._seller_id = credentials.get("selling_partner_id") or None
        # productType per SKU, as searchListingsItems showed it: every patch must name one.
        self._product_types: dict[str, str] = {}
        self._access_token: str | None = credentials.get("access_token") or None
        expires = parse_time(credentials.get("access_expires_at"))
        # A token handed over without its expiry is used until Amazon refuses it.
        self._access_expires_at = expires or datetime.max.replace(tzinfo=timezone.utc)
        self._api_root = access.base_url.rstrip("/")
        self._lwa_url = lwa_token_url(access.base_url)
        self._page_size = page_size
        self._restricted_data = restricted_data
        everything = dict.fromkeys(OPERATION_RATES, request_rate) if request_rate else {}
        rates = {**OPERATION_RATES, **everything, **(rates or {})}
        self._buckets: dict[str, TokenBucket] = {
            operation: shop_bucket(PLATFORM, f"{access.code}#{operation}", rate)
            for operation, rate in rates.items() if operation != "getOrders"
        }
        # What Amazon grants per operation: the documented plans until a response's
        # x-amzn-RateLimit-Limit names the seller's own; waits after a 429 follow it.
        self._granted = {operation: rate.per_second for operation, rate in OPERATION_RATES.items()}
        self._connect(http, TIMEOUT, pacing=shop_bucket(PLATFORM, access.code, rates["getOrders"]))

    # ---- orders in -----------------------------------------------------------------

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Orders updated in [start, end), each with its items, page by page.

        The end is cut to two minutes before now, as Amazon requires; what is cut off is
        served by the next window. Both bounds are inclusive on Amazon's side, so orders
        at exactly the (cut) end are left to the next window too.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("windows must be timezone-aware")
        until = min(end, datetime.now(timezone.utc) - SETTLE_TIME - CLOCK_MARGIN)
        if until <= start:
            return
        token = self._restricted_token(ORDERS_PATH) if self._restricted_data else None
        query: dict[str, Any] = {
            "MarketplaceIds": self._marketplace_id, "LastUpdatedAfter": iso_seconds(start),
            "LastUpdatedBefore": iso_seconds(until), "MaxResultsPerPage": self._page_size,
        }
        while True:
            payload = self._payload("getOrders", "GET", ORDERS_PATH, params=query, token=token)
            orders = payload.get("Orders")
            if not isinstance(orders, list):
                raise Unavailable("getOrders answered without Orders", platform=PLATFORM,
                                  body=payload)
            page = [self._with_items(raw) for raw in map(raw_order, orders)
                    if _inside(raw, start, until)]
            if page:
                yield page
            next_token = payload.get("NextToken")
            if not next_token:
                return
            # With NextToken the filters ride in the token; MarketplaceIds stays required.
            query = {"MarketplaceIds": self._marketplace_id, "NextToken": next_token}

    def fetch_order(self, order_id: str) -> RawOrder:
        path = f"{ORDERS_PATH}/{order_id}"
        token = self._restricted_token(path) if self._restricted_data else None
        payload = self._payload("getOrder", "GET", path, token=token)
        return self._with_items(raw_order(payload))

    def order_items(self, order_id: str) -> list[dict]:
        items: list[dict] = []
        params: dict[str, str] = {}
        while True:
            payload = self._payload("getOrderItems", "GET", f"{ORDERS_PATH}/{order_id}/orderItems",
                                    params=params)
            page = payload.get("OrderItems")
            if not isinstance(page, list):
                raise Unavailable("getOrderItems answered without OrderItems", platform=PLATFORM)
            items += page
            if not payload.get("NextToken"):
                return items
            params = {"NextToken": payload["NextToken"]}

    def _with_items(self, raw: RawOrder) -> RawOrder:
        if raw.platform_order_id is not None:
            raw.payload[ITEMS_KEY] = self.order_items(raw.platform_order_id)
        return raw

    def restricted_receiver(self, order_id: str) -> Receiver:
        """The order's full shipping address, read under an RDT (Amazon's way to unmask)."""
        path = f"{ORDERS_PATH}/{order_id}/address"
        token = self._restricted_token(path, data_elements=[])  # the operation names its data
        payload = self._payload("getOrderAddress", "GET", path, token=token)
        address = payload.get("ShippingAddress")
        return receiver_from_address(address if isinstance(address, dict) else {})

    def label_receivers(self, masked: Mapping[str, Receiver]) -> dict[str, Receiver]:
        """Full addresses to print on labels, read under a restricted-data token, never stored."""
        return {order_id: self.restricted_receiver(order_id) for order_id in masked}

    def to_order(self, raw: RawOrder) -> Order:
        """The internal order, or MappingError naming everything wrong with the payload."""
        return map_order(raw.payload, self.shop_code)

    def probe(self) -> None:
        since = datetime.now(timezone.utc) - timedelta(minutes=10)
        self._payload("getOrders", "GET", ORDERS_PATH, params={
            "MarketplaceIds": self._marketplace_id, "LastUpdatedAfter": iso_seconds(since),
            "MaxResultsPerPage": 1})

    # ---- tracking out --------------------------------------------------------------

    def push_tracking(
        self, platform_order_id: str, carrier: str, tracking_number: str
    ) -> PushResult:
        """Confirm the shipment of every unit not yet shipped, in one package.

        A repeat of a confirmation Amazon already holds succeeds again: when nothing is
        left to ship, or Amazon refuses the confirmation, the order's packages are read
        back (Orders API 2026-01-01) and a package with this carrier and tracking number
        means the earlier push landed. A different tracking number stays a refusal.
        """
        carrier_code = platform_carrier_code(CARRIER_CODES, carrier, PLATFORM)
        unshipped = [
            {"orderItemId": item_id, "quantity": left}
            for item_id, left in map(_left_to_ship, self.order_items(platform_order_id)) if left > 0
        ]
        request = {
            "marketplaceId": self._marketplace_id,
            "packageDetail": {
                "packageReferenceId": package_reference(tracking_number),
                "carrierCode": carrier_code, "trackingNumber": tracking_number,
                "shipDate": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "orderItems": unshipped,
            },
        }
        if not unshipped:
            if self._holds_package(platform_order_id, carrier_code, tracking_number):
                return PushResult(request=request, response={"already_confirmed": True})
            raise Rejected(f"order {platform_order_id} has nothing left to ship", platform=PLATFORM)
        path = f"{ORDERS_PATH}/{platform_order_id}/shipmentConfirmation"
        try:
            self._call("confirmShipment", "POST", path, json=request)
        except Rejected as refusal:
            if not self._holds_package(platform_order_id, carrier_code, tracking_number):
                raise
            held = {"already_confirmed": True, "refusal": refusal.body}
            return PushResult(request=request, response=held)
        return PushResult(request=request, response={"status": 204})

    def _holds_package(self, order_id: str, carrier_code: str, tracking_number: str) -> bool:
        try:
            body = self._call("getOrder2026", "GET", f"/orders/2026-01-01/orders/{order_id}",
                              params={"includedData": "PACKAGES"})
        except Rejected:
            return False
        packages = (body.get("order") or {}).get("packages") if isinstance(body, dict) else None
        return any(isinstance(p, dict) and (p.get(PACKAGE_CARRIER_FIELD), p.get("trackingNumber"))
                   == (carrier_code, tracking_number) for p in packages or ())

    # ---- stock out -------------------------------------------------------------------

    def list_listings(self) -> Iterator[list[Listing]]:
        """Pages of the seller's SKUs in the shop's marketplace, 20 a page."""
        path = f"{LISTINGS_PATH}/{quote(self._listing_seller(), safe='')}"
        params: dict[str, Any] = {"marketplaceIds": self._marketplace_id,
                                  "includedData": LISTING_DATA, "pageSize": LISTINGS_PAGE_SIZE}
        while True:
            body = self._call("searchListingsItems", "GET", path, params=params)
            items, total = body.get("items"), body.get("numberOfResults")
            if not isinstance(items, list) or not isinstance(total, int):
                raise Unavailable("searchListingsItems answered without items or numberOfResults",
                                  platform=PLATFORM, body=body)
            try:
                read = [listing_of_item(item, self._marketplace_id) for item in items]
            except MappingError as error:
                raise Unavailable(f"searchListingsItems: {error}", platform=PLATFORM,
                                  body=body) from error
            for listing, product_type in read:
                if product_type:
                    self._product_types[listing.sku] = product_type
            if read:
                yield [listing for listing, _ in read]
            pagination = body.get("pagination")
            next_token = pagination.get("nextToken") if isinstance(pagination, dict) else None
            if not next_token:
                if total > MAX_LISTINGS_PAGEABLE:
                    # Amazon pages no further; the rest needs the listings report.
                    log.warning("shop %s lists %d SKUs; searchListingsItems served the first %d",
                                self.shop_code, total, MAX_LISTINGS_PAGEABLE)
                return
            params = {**params, "pageToken": next_token}

    def push_stock(self, levels: list[StockLevel]) -> list[StockPushOutcome]:
        """One patchListingsItem per SKU, each paced by that operation's usage plan."""
        seller = quote(self._listing_seller(), safe="")
        return [self._patch_quantity(seller, level) for level in levels]

    def _patch_quantity(self, seller: str, level: StockLevel) -> StockPushOutcome:
        sku = level.listing.sku
        request = {
            # The stored listing carries it; a connector that listed the SKU itself knows it too.
            "productType": level.listing.product_type or self._product_types.get(sku, GENERIC_PRODUCT_TYPE),
            "patches": [{
                "op": QUANTITY_PATCH_OPERATION, "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": FULFILLMENT_CHANNEL,
                           "quantity": level.quantity}],
            }],
        }
        # SKUs may hold characters a path cannot (Amazon's URL-encoding note): encode all.
        path = f"{LISTINGS_PATH}/{seller}/{quote(sku, safe='')}"
        try:
            answer = self._call("patchListingsItem", "PATCH", path,
                                params={"marketplaceIds": self._marketplace_id}, json=request)
        except Rejected as refusal:
            if refusal.code not in SKU_REFUSAL_CODES:
                raise
            body = refusal.body if isinstance(refusal.body, dict) else None
            return StockPushOutcome(sku, level.quantity, error=refusal, request=request,
                                    response=body)
        status = answer.get("status")
        error: ConnectorError | None = None
        if status == "INVALID":
            issues = answer.get("issues") if isinstance(answer.get("issues"), list) else []
            first = issues[0] if issues and isinstance(issues[0], dict) else {}
            error = Rejected(f"patchListingsItem {sku}: {submission_issues(answer)}",
                             platform=PLATFORM, code=first.get("code") or "INVALID", body=answer)
        elif status != "ACCEPTED":
            error = Unavailable(f"patchListingsItem {sku}: unexpected status {status!r}",
                                platform=PLATFORM, body=answer)
        return StockPushOutcome(sku, level.quantity, error=error, request=request,
                                response=answer)

    def _listing_seller(self) -> str:
        if not self._seller_id:
            raise Rejected(f"shop {self.shop_code} lacks selling_partner_id, which the Listings "
                           "Items API needs", platform=PLATFORM, code="missing_seller_id")
        return self._seller_id

    # ---- tokens --------------------------------------------------------------------

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        """Trade the LWA refresh token for a new access token (LWA keeps the refresh token)."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": self._client_id, "client_secret": self._client_secret}
        now = datetime.now(timezone.utc)
        try:
            response = self._http.post(self._lwa_url, data=form, headers={"User-Agent": USER_AGENT})
        except httpx.TransportError as error:
            raise Unavailable(f"LWA token: {type(error).__name__}", platform=PLATFORM) from error
        body = _json(response, "LWA token")
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            code = body.get("error")
            fallback = Unavailable if response.status_code >= 500 else Rejected
            kind = LWA_ERROR_TRANSLATION.get(code, fallback)
            message = f"LWA token: {code} {body.get('error_description') or ''}".strip()
            raise kind(message, platform=PLATFORM, code=code or response.status_code, body=body)
        lifetime = int(body.get("expires_in") or 3600)
        return TokenGrant(access_token=body["access_token"],
                          access_expires_at=now + timedelta(seconds=lifetime),
                          refresh_token=body.get("refresh_token") or refresh_token)

    def _token(self) -> str:
        renew_at = self._access_expires_at - TOKEN_RENEWAL_MARGIN
        if self._access_token is None or datetime.now(timezone.utc) >= renew_at:
            grant = self.refresh_access(self._refresh_token)
            self._access_token = grant.access_token
            self._access_expires_at = grant.access_expires_at
            self._refresh_token = grant.refresh_token or self._refresh_token
        return self._access_token

    def _restricted_token(self, path: str, data_elements: list[str] | None = None) -> str:
        elements = ["buyerInfo", "shippingAddress"] if data_elements is None else data_elements
        resource: dict[str, Any] = {"method": "GET", "path": path}
        if elements:
            resource["dataElements"] = elements
        body = self._call("createRestrictedDataToken", "POST", RDT_PATH,
                          json={"restrictedResources": [resource]})
        token = body.get("restrictedDataToken")
        if not isinstance(token, str) or not token:
            raise Unavailable("createRestrictedDataToken answered without a token",
                              platform=PLATFORM)
        return token

    # ---- the wire ------------------------------------------------------------------

    def _wait_turn(self, operation: str = "getOrders") -> None:
        """Each SP-API operation has its own usage plan, hence its own bucket."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            super()._wait_turn()
        else:
            bucket.take()

    def _payload(self, operation: str, method: str, path: str, **options: Any) -> dict:
        body = self._call(operation, method, path, **options)
        payload = body.get("payload")
        if not isinstance(payload, dict):
            raise Unavailable(f"{operation} answered without payload", platform=PLATFORM, body=body)
        return payload

    def _call(
        self, operation: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        json: object = None, token: str | None = None,
    ) -> dict:
        lwa_token = token is None
        headers = {"x-amz-access-token": token or self._token(), "User-Agent": USER_AGENT,
                   "x-amz-date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}
        self._wait_turn(operation)
        try:
            response = self._http.request(method, self._api_root + path, params=params, json=json,
                                          headers=headers)
        except httpx.TransportError as error:  # timeouts and connection failures alike
            raise Unavailable(f"{operation}: {type(error).__name__}", platform=PLATFORM) from error
        limit = response.headers.get("x-amzn-RateLimit-Limit")
        if limit:
            self._remember_rate(operation, limit)
        if response.status_code >= 500:
            status = response.status_code
            raise Unavailable(f"{operation}: HTTP {status}", platform=PLATFORM, code=status)
        if response.status_code == 204:
            return {}
        body = _json(response, operation)
        if response.status_code >= 400 or "errors" in body:
            error = self._translate(operation, response.status_code, body)
            if isinstance(error, TokenExpired) and lwa_token:
                self._access_token = None  # the next call renews it
            raise error
        return body

    def _remember_rate(self, operation: str, header: str) -> None:
        try:
            rate = float(header)
        except ValueError:
            return
        if rate > 0:
            self._granted[operation] = rate

    def _translate(self, operation: str, status: int, body: dict) -> ConnectorError:
        errors = body.get("errors")
        listed = isinstance(errors, list) and errors and isinstance(errors[0], dict)
        first = errors[0] if listed else {}  # type: ignore[index]
        code, details = str(first.get("code") or status), str(first.get("details") or "")
        message = f"{operation}: {first.get('message') or f'HTTP {status}'} {details}".strip()
        fallback = RateLimited if status == 429 else Rejected
        kind = next((k for (c, fragment), k in ERROR_TRANSLATION.items()
                     if c == code and (fragment is None or fragment in details)), fallback)
        if kind is RateLimited:
            # 429s no longer carry the rate header: wait for one token of the usage plan
            # Amazon last named for this operation (or the documented one).
            wait = 1 / self._granted.get(operation, REQUEST_RATE.per_second)
            return RateLimited(message, retry_after=wait, platform=PLATFORM, code=code, body=body)
        return kind(message, platform=PLATFORM, code=code, body=body)


def _left_to_ship(item: object) -> tuple[str, int]:
    """(OrderItemId, units not yet shipped) of a getOrderItems item; (.., 0) if unreadable."""
    if not isinstance(item, dict) or not isinstance(item.get("OrderItemId"), str):
        return "", 0
    ordered, shipped = item.get("QuantityOrdered"), item.get("QuantityShipped", 0)
    if not (isinstance(ordered, int) and isinstance(shipped, int)):
        return item["OrderItemId"], 0
    return item["OrderItemId"], ordered - shipped


def _inside(raw: RawOrder, start: datetime, until: datetime) -> bool:
    # Unreadable times are kept: the payload goes to review rather than vanishing.
    updated = raw.platform_updated_at
    return updated is None or start <= updated < until


def _json(response: httpx.Response, what: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        raise Unavailable(f"{what}: answer is not JSON (HTTP {response.status_code})",
                          platform=PLATFORM) from None
    if not isinstance(body, dict):
        raise Unavailable(f"{what}: answer is not a JSON object", platform=PLATFORM)
    return body
