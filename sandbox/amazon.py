"""Amazon Selling Partner API simulator: LWA tokens, RDTs, Orders v0 and confirmShipment.

It follows reference §2 and the official `ordersV0` model: an LWA token endpoint that
trades a refresh token and the app's client credentials for a one-hour access token, sent
in `x-amz-access-token` (no SigV4: a signature sent anyway is ignored); `{payload}` bodies
and `{errors:[{code,message,details}]}` with real HTTP statuses; getOrders by
LastUpdated/Created window whose upper bound must lie two minutes in the past, at most 100
orders a page and an opaque NextToken that carries the filters; items served apart;
restricted data only under a Restricted Data Token. The seller's packages are read back
through the Orders API 2026-01-01 getOrder, the one documented place that shows them.

Only an armed `rate_limit` fault answers 429, so test runs never depend on the machine's
speed; every other answer names its usage plan in `x-amzn-RateLimit-Limit`. The NextToken
is a keyset cursor (the last order served), so an order updated while a caller pages
drops out without shifting, and so hiding, another one. How an order is dressed for the
wire lives in `sandbox.amazon_render`, sign-in and tokens in `sandbox.amazon_tokens`.

Listings Items 2021-08-01 serves the seller's SKUs: searchListingsItems pages them (at
most 20 a page, 1,000 in all, opaque pageToken), getListingsItem reads one, and
patchListingsItem takes a JSON Patch of `/attributes/fulfillment_availability` that sets
the DEFAULT channel's quantity; a patch Amazon cannot take is answered 200 INVALID with
issues, not an HTTP error. Accepted quantities apply at once (Amazon processes them
within minutes).
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response

from sandbox.amazon_render import (
    ADDRESS_STATUSES, BEFORE_TOO_RECENT, CONFIRM_INVALID, DENIED, FULFILLMENT_CHANNEL,
    GENERIC_PRODUCT_TYPE, INVALID_INPUT, INVALID_QUANTITY_ISSUE, LISTINGS_INVALID,
    MARKETPLACE_BY_COUNTRY, NOT_FOUND, NOT_SHIPPABLE, PRODUCT_TYPE_ISSUE, UNKNOWN_SKU_ISSUE,
    AmazonError, amazon_order_id, decode_cursor, encode_cursor, iso, issue, marketplace_id,
    order_item_id, order_status, product_type_of, render_address, render_items,
    render_listings_item, render_order, render_order_2026, serve, shipped_quantities, submission,
)
from sandbox.amazon_tokens import (  # noqa: F401  tokens' names stay importable from here
    LWA_BAD_CLIENT, Caller, authenticate, authorise_app, create_rdt, lwa_token,
)
from sandbox.markets import UNITED_STATES
from sandbox.model import SandboxState, SimOrder

PLATFORM = "amazon"
MARKET = UNITED_STATES
SETTLE_TIME = timedelta(minutes=2)  # [H] *Before must be at least 2 minutes before now
MAX_PAGE_SIZE = 100  # [H]
MAX_MARKETPLACES = 50  # [H]
ORDER_STATUSES = frozenset({"PendingAvailability", "Pending", "Unshipped", "PartiallyShipped",
                            "Shipped", "InvoiceUnconfirmed", "Canceled", "Unfulfillable"})
INCLUDED_DATA_2026 = frozenset({"BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION",
                                "CANCELLATION", "FULFILLMENT", "PACKAGES", "TAX", "PAYMENT",
                                "FULFILLMENT_ORDERS"})


# --- UNVERIFIED (reference [L] or absent): chosen for the simulator.
ITEMS_PAGE_SIZE = 30  # getOrderItems page size: not documented
# A sellerId that is not the token's seller is refused like a foreign resource.
FOREIGN_SELLER = AmazonError(403, "Unauthorized", DENIED,
                             "The sellerId does not belong to the access token.")
# Amazon's CarrierCode list is long and changes; these are the values the simulator knows.
CARRIER_CODES = frozenset({
    "USPS", "UPS", "FedEx", "DHL", "DHL eCommerce", "OnTrac", "Amazon Shipping", "Royal Mail",
    "Parcelforce", "Deutsche Post", "DPD", "Hermes", "GLS", "Japan Post", "Yamato Transport",
    "Sagawa Express", "China Post", "SF Express", "Yun Express", "4PX", "Yanwen", "Other",
})
# --- end

# ---- parsing -------------------------------------------------------------------------


def parse_instant(text: str, name: str, refusal: AmazonError = INVALID_INPUT) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise refusal.saying(f"{name} is not an ISO 8601 date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _list_param(request: Request, name: str) -> list[str]:
    """Array query parameters come comma-separated (swagger's csv) or repeated."""
    values = request.query_params.getlist(name)
    return [part for value in values for part in value.split(",") if part]


# ---- the shop's orders, sorted once ------------------------------------------------------

Key = tuple[int, int, int]  # (whole second, order_id, position in the shop's list)


def _second(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


@dataclass
class _Book:
    members: list[SimOrder]
    stamps: list[tuple[datetime, datetime]]
    timelines: dict[str, tuple[list[Key], list[SimOrder]]] = field(default_factory=dict)
    by_id: dict[str, SimOrder] = field(default_factory=dict)


class OrderIndex:
    """Each shop's orders sorted by update and by creation time, and found by order id.

    Rebuilt when the shop's list or an order's times differ from what it was built from
    (one pass of attribute reads per request); callers hold `state.lock`.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._books: dict[str, _Book] = {}

    def _book(self, shop: str) -> _Book:
        orders = self.state.shop_orders(shop)
        stamps = [(o.updated_at, o.created_at) for o in orders]
        book = self._books.get(shop)
        same_members = book is not None and len(book.members) == len(orders) and all(
            a is b for a, b in zip(book.members, orders))
        if not same_members:
            book = self._books[shop] = _Book(list(orders), stamps)
            for order in orders:
                book.by_id.setdefault(amazon_order_id(order), order)
        elif stamps != book.stamps:
            book.stamps, book.timelines = stamps, {}
        return book  # type: ignore[return-value]

    def timeline(self, shop: str, clock: str) -> tuple[list[Key], list[SimOrder]]:
        book = self._book(shop)
        if clock not in book.timelines:
            keyed = sorted((_second(getattr(o, clock)), o.order_id, n)
                           for n, o in enumerate(book.members))
            book.timelines[clock] = (keyed, [book.members[k[2]] for k in keyed])
        return book.timelines[clock]

    def find(self, shop: str, wanted: str) -> SimOrder:
        order = self._book(shop).by_id.get(wanted)
        if order is None:
            raise NOT_FOUND.saying(f"Order {wanted} was not found.")
        return order


# ---- getOrders ---------------------------------------------------------------------------


def _orders_query(request: Request, shop: str, now: datetime, marketplaces: list[str]) -> dict:
    """The listing's filters: from the NextToken when one is given, else from the query."""
    token = request.query_params.get("NextToken")
    if token:
        return decode_cursor(token, shop, "orders")
    params = request.query_params
    created, updated = params.get("CreatedAfter"), params.get("LastUpdatedAfter")
    if bool(created) == bool(updated):
        raise INVALID_INPUT.saying("Exactly one of CreatedAfter and LastUpdatedAfter is required.")
    family = "Created" if created else "LastUpdated"
    if created and (params.get("LastUpdatedBefore") or params.get("LastUpdatedAfter")):
        raise INVALID_INPUT.saying("LastUpdated* cannot be set with CreatedAfter.")
    if updated and params.get("CreatedBefore"):
        raise INVALID_INPUT.saying("CreatedBefore cannot be set with LastUpdatedAfter.")
    after = parse_instant(created or updated, f"{family}After")
    latest = now - SETTLE_TIME
    before_text = params.get(f"{family}Before")
    before = parse_instant(before_text, f"{family}Before") if before_text else latest
    if before > latest:
        raise INVALID_INPUT.saying(BEFORE_TOO_RECENT.format(name=f"{family}Before"))
    if before < after:
        raise INVALID_INPUT.saying(f"{family}Before must not be earlier than {family}After.")
    statuses = _list_param(request, "OrderStatuses")
    unknown = set(statuses) - ORDER_STATUSES
    if unknown:
        raise INVALID_INPUT.saying(f"Unknown OrderStatuses: {sorted(unknown)}.")
    try:
        size = int(params.get("MaxResultsPerPage", MAX_PAGE_SIZE))
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise INVALID_INPUT.saying(f"MaxResultsPerPage must be 1 - {MAX_PAGE_SIZE}.")
    return {"shop": shop, "kind": "orders", "family": family, "after": after.timestamp(),
            "before": before.timestamp(), "statuses": statuses, "size": size,
            "marketplaces": marketplaces, "last": None}


def list_orders(index: OrderIndex, request: Request, shop: str, restricted: frozenset[str]) -> dict:
    now = datetime.now(timezone.utc)
    marketplaces = _list_param(request, "MarketplaceIds")
    if not 1 <= len(marketplaces) <= MAX_MARKETPLACES:
        raise INVALID_INPUT.saying(f"MarketplaceIds needs 1 to {MAX_MARKETPLACES} values.")
    query = _orders_query(request, shop, now, marketplaces)
    marketplaces = query["marketplaces"]  # with a NextToken, the first request's
    clock = "created_at" if query["family"] == "Created" else "updated_at"
    wanted = set(query["statuses"])
    with index.state.lock:
        keys, ordered = index.timeline(shop, clock)
        last = query["last"]
        position = bisect_right(keys, tuple(last)) if last else bisect_left(keys, (query["after"],))
        stop = bisect_right(keys, (query["before"], float("inf"), float("inf")))
        page, has_more = [], False
        for key, order in zip(keys[position:stop], ordered[position:stop]):
            if marketplace_id(order) not in marketplaces:
                continue
            if wanted and order_status(order) not in wanted:
                continue
            if len(page) == query["size"]:
                has_more = True
                break
            page.append((key, order))
        rendered = [render_order(order, restricted, now) for _, order in page]
    payload: dict = {"Orders": rendered}
    if has_more:
        payload["NextToken"] = encode_cursor({**query, "last": list(page[-1][0])})
    payload[f"{query['family']}Before"] = iso(datetime.fromtimestamp(query["before"], timezone.utc))
    return {"payload": payload}


# ---- single orders, items, address ------------------------------------------------------


def order_items(index: OrderIndex, request: Request, shop: str, order_id: str) -> dict:
    token = request.query_params.get("NextToken")
    cursor = decode_cursor(token, shop, "items") if token else {"order": order_id, "offset": 0}
    if cursor.get("order") != order_id or not isinstance(cursor.get("offset"), int):
        raise INVALID_INPUT.saying("Invalid NextToken.")
    offset = cursor["offset"]
    with index.state.lock:
        items = render_items(index.find(shop, order_id))
    payload = {"AmazonOrderId": order_id, "OrderItems": items[offset : offset + ITEMS_PAGE_SIZE]}
    if offset + ITEMS_PAGE_SIZE < len(items):
        following = {"shop": shop, "kind": "items", "order": order_id,
                     "offset": offset + ITEMS_PAGE_SIZE}
        payload["NextToken"] = encode_cursor(following)
    return {"payload": payload}


def single_order(index: OrderIndex, who: Caller, order_id: str) -> dict:
    with index.state.lock:
        order = index.find(who.shop, order_id)
        return {"payload": render_order(order, who.restricted, datetime.now(timezone.utc))}


def order_address(index: OrderIndex, shop: str, order_id: str, with_pii: bool) -> dict:
    now = datetime.now(timezone.utc)
    with index.state.lock:
        order = index.find(shop, order_id)
        payload = {"AmazonOrderId": order_id}
        if order_status(order) in ADDRESS_STATUSES:
            payload["ShippingAddress"] = render_address(order, with_pii, now)
    return {"payload": payload}


def order_2026(index: OrderIndex, request: Request, shop: str, order_id: str) -> dict:
    included = set(_list_param(request, "includedData"))
    if included - INCLUDED_DATA_2026:
        raise INVALID_INPUT.saying(f"Unknown includedData: {sorted(included - INCLUDED_DATA_2026)}")
    with index.state.lock:
        return {"order": render_order_2026(index.find(shop, order_id), "PACKAGES" in included)}


# ---- confirmShipment ---------------------------------------------------------------------


def _package(body: object) -> dict:
    refuse = CONFIRM_INVALID.saying
    if not isinstance(body, dict) or not isinstance(body.get("packageDetail"), dict):
        raise refuse("marketplaceId and packageDetail are required.")
    package = body["packageDetail"]
    for name in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate"):
        if not isinstance(package.get(name), str) or not package[name].strip():
            raise refuse(f"packageDetail.{name} is required.")
    if not package["packageReferenceId"].isdigit() or int(package["packageReferenceId"]) < 1:
        raise refuse("packageReferenceId must be a positive numeric string.")
    if package["carrierCode"] not in CARRIER_CODES:
        raise refuse(f"Unknown carrierCode {package['carrierCode']!r}.")
    if package["carrierCode"] == "Other" and not package.get("carrierName"):
        raise refuse("carrierName is required when carrierCode is Other.")
    parse_instant(package["shipDate"], "shipDate", CONFIRM_INVALID)  # as for '02/21/2022' [H]
    items = package.get("orderItems")
    if not isinstance(items, list) or not items:
        raise refuse("packageDetail.orderItems is required.")
    return package


def confirm_shipment(index: OrderIndex, shop: str, order_id: str, body: object) -> None:
    package = _package(body)
    refuse = CONFIRM_INVALID.saying
    with index.state.lock:
        order = index.find(shop, order_id)
        if body.get("marketplaceId") != marketplace_id(order):  # type: ignore[union-attr]
            raise refuse("marketplaceId does not match the order.")
        status = order_status(order)
        if status not in ("Unshipped", "PartiallyShipped"):
            raise refuse(NOT_SHIPPABLE.format(status=status))
        shipped = shipped_quantities(order)
        ids = [order_item_id(order, n) for n in range(len(order.lines))]
        remaining = {item_id: line.quantity - shipped.get(item_id, 0)
                     for item_id, line in zip(ids, order.lines)}
        confirmed = []
        for item in package["orderItems"]:
            item_id = item.get("orderItemId") if isinstance(item, dict) else None
            quantity = item.get("quantity") if isinstance(item, dict) else None
            if item_id not in remaining or type(quantity) is not int:
                raise refuse(f"Unknown orderItemId or quantity: {item!r}.")
            if not 1 <= quantity <= remaining[item_id]:
                raise refuse(f"quantity {quantity} exceeds what is left of {item_id}.")
            remaining[item_id] -= quantity
            confirmed.append({"orderItemId": item_id, "quantity": quantity})
        now = datetime.now(timezone.utc)
        order.tracking.append({
            "platform": PLATFORM, "carrier_code": package["carrierCode"],
            "carrier_name": package.get("carrierName"),
            "tracking_number": package["trackingNumber"],
            "package_reference_id": package["packageReferenceId"],
            "ship_date": package["shipDate"], "shipped_at": now, "order_items": confirmed,
        })
        if not any(remaining.values()):
            order.status = "shipped"
        order.updated_at = now


# ---- Listings Items 2021-08-01 ----------------------------------------------------------

LISTINGS_PAGE_SIZE, MAX_LISTINGS_PAGE_SIZE = 10, 20  # [H] pageSize default and maximum
MAX_LISTINGS_PAGEABLE = 1000  # [H] "The maximum number of items (SKUs) ... is 1000"
INCLUDED_DATA = frozenset({"summaries", "attributes", "issues", "offers",
                           "fulfillmentAvailability", "procurement", "relationships",
                           "productTypes"})
PATCH_OPERATIONS = ("add", "replace", "merge", "delete")  # [H]
FULFILLMENT_PATH = "/attributes/fulfillment_availability"


def seller_id_of(shop: str) -> str:
    """The shop's selling partner id ("A" and 13 characters), stable for its name."""
    return "A" + hashlib.sha1(f"seller|{shop}".encode()).hexdigest()[:13].upper()


def shop_marketplace(state: SandboxState, shop: str) -> str:
    with state.lock:
        orders = state.shop_orders(shop)
        return marketplace_id(orders[0]) if orders else MARKETPLACE_BY_COUNTRY[MARKET.country]


def _listings_caller(state: SandboxState, request: Request, shop: str) -> str:
    """The marketplace asked for, once the path's sellerId and marketplaceIds check out."""
    if request.path_params["sellerId"] != seller_id_of(shop):
        raise FOREIGN_SELLER
    marketplaces = _list_param(request, "marketplaceIds")
    if not marketplaces:
        raise LISTINGS_INVALID.saying("marketplaceIds is required.")
    listed_in = shop_marketplace(state, shop)
    return listed_in if listed_in in marketplaces else ""


def _included(request: Request, default: str) -> set[str]:
    included = set(_list_param(request, "includedData")) or {default}
    if included - INCLUDED_DATA:
        raise LISTINGS_INVALID.saying(f"Unknown includedData: {sorted(included - INCLUDED_DATA)}.")
    return included


def _quantity(state: SandboxState, shop: str, sku: str) -> int:
    with state.lock:
        return state.stock_levels.get(shop, {}).get(sku, 0)


def search_listings(state: SandboxState, request: Request, shop: str) -> dict:
    marketplace = _listings_caller(state, request, shop)
    included = _included(request, "summaries")
    try:
        size = int(request.query_params.get("pageSize", LISTINGS_PAGE_SIZE))
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_LISTINGS_PAGE_SIZE:
        raise LISTINGS_INVALID.saying(f"pageSize must be 1 - {MAX_LISTINGS_PAGE_SIZE}.")
    token = request.query_params.get("pageToken")
    offset = decode_cursor(token, shop, "listings").get("offset") if token else 0
    if not isinstance(offset, int) or offset < 0:
        raise LISTINGS_INVALID.saying("Invalid pageToken.")
    # Listed in one marketplace only: another marketplace finds nothing of this seller's.
    skus = sorted(state.listed_skus(shop)) if marketplace else []
    pageable = skus[:MAX_LISTINGS_PAGEABLE]
    page = pageable[offset : offset + size]
    answer: dict = {"numberOfResults": len(skus), "items": [
        render_listings_item(sku, marketplace, _quantity(state, shop, sku), included)
        for sku in page]}
    pagination = {}
    if offset + size < len(pageable):
        pagination["nextToken"] = encode_cursor(
            {"shop": shop, "kind": "listings", "offset": offset + size})
    if offset > 0:
        pagination["previousToken"] = encode_cursor(
            {"shop": shop, "kind": "listings", "offset": max(0, offset - size)})
    if pagination:
        answer["pagination"] = pagination
    return answer


def get_listing(state: SandboxState, request: Request, shop: str) -> dict:
    marketplace = _listings_caller(state, request, shop)
    sku = request.path_params["sku"]
    if not marketplace or sku not in state.listed_skus(shop):
        raise NOT_FOUND.saying(f"The SKU {sku} was not found.")
    return render_listings_item(sku, marketplace, _quantity(state, shop, sku),
                                _included(request, "summaries"))


def _patched_quantity(patches: list) -> tuple[int | None, dict | None]:
    """The DEFAULT quantity the patches set (None if they set none), or the issue found."""
    quantity = None
    for patch in patches:
        if not isinstance(patch, dict) or patch.get("op") not in PATCH_OPERATIONS \
                or not isinstance(patch.get("path"), str):
            raise LISTINGS_INVALID.saying("Each patch needs op (add, replace, merge, delete) "
                                          "and path.")
        if patch["path"] != FULFILLMENT_PATH or patch["op"] == "delete":
            continue  # other attributes are taken and left as they are
        values = patch.get("value")
        if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
            raise LISTINGS_INVALID.saying("value must be an array of objects.")
        for value in values:
            if value.get("fulfillment_channel_code") != FULFILLMENT_CHANNEL:
                continue  # another channel (Amazon's own, AFN) is not the seller's to set
            count = value.get("quantity")
            if type(count) is not int or count < 0:
                return None, issue(*INVALID_QUANTITY_ISSUE, ("fulfillment_availability",),
                                   ("INVALID_ATTRIBUTE",))
            quantity = count
    return quantity, None


def patch_listing(state: SandboxState, request: Request, shop: str, body: object) -> dict:
    marketplace = _listings_caller(state, request, shop)
    sku = request.path_params["sku"]
    if not isinstance(body, dict) or not isinstance(body.get("productType"), str) \
            or not isinstance(body.get("patches"), list) or not body["patches"]:
        raise LISTINGS_INVALID.saying("productType and patches are required.")
    if not marketplace or sku not in state.listed_skus(shop):
        return submission(sku, "INVALID", [issue(*UNKNOWN_SKU_ISSUE)])
    if body["productType"] not in (product_type_of(sku), GENERIC_PRODUCT_TYPE):
        return submission(sku, "INVALID", [issue(*PRODUCT_TYPE_ISSUE)])
    quantity, found = _patched_quantity(body["patches"])
    if found:
        return submission(sku, "INVALID", [found])
    if request.query_params.get("mode") == "VALIDATION_PREVIEW":
        return submission(sku, "VALID", [])
    if quantity is not None:
        state.set_stock(shop, sku, quantity)
    return submission(sku, "ACCEPTED", [])


# ---- the router --------------------------------------------------------------------------

ORDER = "/orders/v0/orders/{orderId}"
LISTINGS = "/listings/2021-08-01/items/{sellerId}"
# (method, path under /amazon, operation, what it does with (index, request, caller, body))
ROUTES: tuple[tuple[str, str, str, Callable[..., dict | None]], ...] = (
    ("GET", "/orders/v0/orders", "getOrders",
     lambda index, request, who, _: list_orders(index, request, who.shop, who.restricted)),
    ("GET", ORDER, "getOrder", lambda index, request, who, _: single_order(
        index, who, request.path_params["orderId"])),
    ("GET", ORDER + "/orderItems", "getOrderItems", lambda index, request, who, _: order_items(
        index, request, who.shop, request.path_params["orderId"])),
    ("GET", ORDER + "/address", "getOrderAddress", lambda index, request, who, _: order_address(
        index, who.shop, request.path_params["orderId"], "shippingAddress" in who.restricted)),
    ("POST", ORDER + "/shipmentConfirmation", "confirmShipment",
     lambda index, request, who, body: confirm_shipment(
         index, who.shop, request.path_params["orderId"], body)),
    ("GET", "/orders/2026-01-01/orders/{orderId}", "getOrder2026",
     lambda index, request, who, _: order_2026(
         index, request, who.shop, request.path_params["orderId"])),
    ("GET", LISTINGS, "searchListingsItems",
     lambda index, request, who, _: search_listings(index.state, request, who.shop)),
    ("GET", LISTINGS + "/{sku}", "getListingsItem",
     lambda index, request, who, _: get_listing(index.state, request, who.shop)),
    ("PATCH", LISTINGS + "/{sku}", "patchListingsItem",
     lambda index, request, who, body: patch_listing(index.state, request, who.shop, body)),
)


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()
    index = OrderIndex(state)
    scopes: dict[str, list[dict]] = {}  # RDT -> the restricted resources it was granted for

    def endpoint(path: str, operation: str, handle: Callable[..., dict | None]):
        async def answer(request: Request) -> Response:
            body = await _json_body(request) if request.method in ("POST", "PATCH") else None

            def work(expired_by_fault: bool) -> dict | None:
                where = request.url.path.removeprefix("/amazon")
                who = authenticate(state, scopes, request, path, where, expired_by_fault)
                return handle(index, request, who, body)

            return await serve(state.faults.take(PLATFORM), operation, work)
        return answer

    for method, path, operation, handle in ROUTES:
        router.add_api_route("/amazon" + path, endpoint(path, operation, handle), methods=[method])
    # an RDT covers only restricted order paths, so it cannot ask for another RDT
    rdt = endpoint("/tokens/2021-03-01/restrictedDataToken", "createRestrictedDataToken",
                   lambda _, __, who, body: create_rdt(state, scopes, who.shop, body))
    router.add_api_route("/amazon/tokens/2021-03-01/restrictedDataToken", rdt, methods=["POST"])

    @router.post("/amazon/auth/o2/token")
    async def token(request: Request) -> Response:  # LWA: a service of its own, no faults
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        return lwa_token(state, form)

    return router


async def _json_body(request: Request) -> object:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None


def base_path(shop: str) -> str:
    return "/amazon"  # one host per region; the access token names the seller


def register_shop(state: SandboxState, shop: str, now: datetime) -> dict:
    """Authorise a fresh app for the seller: LWA client credentials and tokens (3600 s)."""
    credentials = authorise_app(state, shop, now)
    with state.lock:
        orders = state.shop_orders(shop)
        country = orders[0].country_code if orders else MARKET.country
    return {
        **credentials,
        "marketplace_id": MARKETPLACE_BY_COUNTRY.get(country, MARKETPLACE_BY_COUNTRY["US"]),
        "selling_partner_id": seller_id_of(shop),
    }
