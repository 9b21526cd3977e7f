"""What the Amazon simulator puts on the wire: orders, items, error bodies, NextTokens.

Follows reference §2.2 and the official `ordersV0` model: ISO-8601 UTC times, money as
`{CurrencyCode, Amount}` in the order's own currency, 3-7-7 order ids, and an order's
items served apart from the order (getOrderItems), without prices while it is Pending.
Restricted data (ShippingAddress Name/AddressLine*/Phone/AddressType, BuyerInfo) is shown
only to a caller holding a Restricted Data Token for it; others see City, StateOrRegion,
PostalCode and CountryCode. The 2026-01-01 rendering carries only what the connector
reads back: the order's id, times, channel, items and its packages (tracking numbers).
Errors are `{errors:[{code,message,details}]}` with the HTTP status Amazon uses, and a
NextToken is an opaque cursor that carries the listing's filters.

Listings Items 2021-08-01 items (searchListingsItems, getListingsItem) carry the seller
SKU, a summary per marketplace (ASIN, productType, status) and fulfillmentAvailability
with the DEFAULT (merchant-fulfilled) quantity; patchListingsItem answers a submission
{sku, status ACCEPTED|INVALID|VALID, submissionId, issues}.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

from fastapi.responses import JSONResponse, Response

from sandbox.model import Fault, SimLine, SimOrder

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
ZERO = Decimal("0")

# neutral status -> OrderStatus. v0 has no delivered state: a delivered order stays
# Shipped. A paid order with some, not all, items confirmed is PartiallyShipped.
STATUS_NAMES = {
    "unpaid": "Pending", "paid": "Unshipped", "shipped": "Shipped", "delivered": "Shipped",
    "cancelled": "Canceled",
}
# ShippingAddress is only served for these (ordersV0 model, Order.ShippingAddress note).
ADDRESS_STATUSES = frozenset({"Unshipped", "PartiallyShipped", "Shipped", "InvoiceUnconfirmed"})

# Marketplace IDs for US, DE, UK and JP are [H] (reference §2.1).
# --- UNVERIFIED (reference [L] / absent): the other marketplace IDs are from memory, and
# the ship and delivery promises are simulator choices; countries with no Amazon
# marketplace of their own are served as the US one.
MARKETPLACE_BY_COUNTRY = {
    "US": "ATVPDKIKX0DER", "DE": "A1PA6795UKMFR9", "GB": "A1F83G8C2ARO7P",
    "JP": "A1VC38T7YXB528", "BR": "A2Q3Y263D00KWC", "SG": "A19VAU5U5O7RUS",
}
FALLBACK_MARKETPLACE = "ATVPDKIKX0DER"
SALES_CHANNELS = {
    "ATVPDKIKX0DER": "Amazon.com", "A1PA6795UKMFR9": "Amazon.de",
    "A1F83G8C2ARO7P": "Amazon.co.uk", "A1VC38T7YXB528": "Amazon.co.jp",
    "A2Q3Y263D00KWC": "Amazon.com.br", "A19VAU5U5O7RUS": "Amazon.sg",
}
SHIP_WITHIN = timedelta(days=2)
DELIVER_WITHIN = (timedelta(days=3), timedelta(days=7))
# A 2026-01-01 package's `carrier` is taken to hold the CarrierCode of the confirmation.
PACKAGE_CARRIER_FIELD = "carrier"
# BuyerInfo fields shown without an RDT: the model names BuyerName, BuyerTaxInfo and
# PurchaseOrderNumber as restricted; BuyerEmail is withheld too, to be on the safe side.
UNRESTRICTED_BUYER_FIELDS: tuple[str, ...] = ()
# --- end


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else _iso_text(moment)


@lru_cache(maxsize=8_192)
def _iso_text(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).strftime(TIME_FORMAT)


def money(amount: Decimal, currency: str) -> dict:
    return {"CurrencyCode": currency, "Amount": f"{amount:.2f}"}


def marketplace_id(order: SimOrder) -> str:
    return MARKETPLACE_BY_COUNTRY.get(order.country_code, FALLBACK_MARKETPLACE)


def _digits(text: str, count: int) -> str:
    number = int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big")
    return f"{number % 10**count:0{count}d}"


def amazon_order_id(order: SimOrder) -> str:
    """'3-7-7' digits; an affine map of the neutral id keeps it unique and stable."""
    scrambled = (order.order_id * 7_919_461 + 3_141_592_653) % 10**14
    return f"{111 + order.order_id % 4}-{scrambled // 10**7:07d}-{scrambled % 10**7:07d}"


def order_item_id(order: SimOrder, position: int) -> str:
    """14 digits, unique across the state as the generator numbers lines state-wide."""
    line_id = order.lines[position].line_id or order.order_id * 100 + position + 1
    return f"{(line_id * 48_271 + 10**13) % 10**14:014d}"


def asin(line: SimLine) -> str:
    return asin_of(line.sku or line.title)


def asin_of(sku: str) -> str:
    """The catalogue's ASIN for a seller SKU: Amazon's own id, the same for every seller."""
    return "B0" + _digits(f"asin|{sku}", 8)


# ---- shipping state ------------------------------------------------------------------


def shipped_quantities(order: SimOrder) -> dict[str, int]:
    """Per OrderItemId, how many units the order's confirmations cover."""
    if order.status in ("shipped", "delivered") and not _confirmed_items(order):
        # shipped by hand in Seller Central: every unit is out
        return {order_item_id(order, n): line.quantity for n, line in enumerate(order.lines)}
    return _confirmed_items(order)


def _confirmed_items(order: SimOrder) -> dict[str, int]:
    counted: Counter[str] = Counter()
    for entry in order.tracking:
        for item in entry.get("order_items", ()):
            counted[item["orderItemId"]] += item["quantity"]
    return dict(counted)


def order_status(order: SimOrder) -> str:
    if order.status == "paid" and _confirmed_items(order):
        return "PartiallyShipped"
    return STATUS_NAMES[order.status]


def last_delivery(order: SimOrder) -> datetime:
    return order.created_at + DELIVER_WITHIN[1]


# ---- the order -------------------------------------------------------------------------


def render_order(order: SimOrder, restricted: frozenset[str], now: datetime) -> dict:
    """One Order of getOrders/getOrder; `restricted` names the RDT's dataElements."""
    status = order_status(order)
    shipped = shipped_quantities(order)
    shipped_count = sum(shipped.values())
    marketplace = marketplace_id(order)
    rendered = {
        "AmazonOrderId": amazon_order_id(order), "PurchaseDate": iso(order.created_at),
        "LastUpdateDate": iso(order.updated_at), "OrderStatus": status,
        "FulfillmentChannel": "MFN", "SalesChannel": SALES_CHANNELS.get(marketplace, "Amazon.com"),
        "ShipServiceLevel": "Std Dom", "NumberOfItemsShipped": shipped_count,
        "NumberOfItemsUnshipped": 0 if status == "Canceled" else
        max(sum(line.quantity for line in order.lines) - shipped_count, 0),
        "PaymentMethod": "Other", "PaymentMethodDetails": ["Standard"],
        "MarketplaceId": marketplace, "ShipmentServiceLevelCategory": "Standard",
        "OrderType": "StandardOrder",
        "EarliestShipDate": iso(order.created_at),
        "LatestShipDate": iso(order.created_at + SHIP_WITHIN),
        "EarliestDeliveryDate": iso(order.created_at + DELIVER_WITHIN[0]),
        "LatestDeliveryDate": iso(last_delivery(order)),
        "IsBusinessOrder": False, "IsPrime": False, "IsPremiumOrder": False,
        "IsGlobalExpressEnabled": False, "IsReplacementOrder": False, "IsSoldByAB": False,
        "IsIBA": False, "IsISPU": False, "IsAccessPointOrder": False,
    }
    if status != "Pending":  # no pricing before the payment is authorised
        rendered["OrderTotal"] = money(order.total, order.currency)
    if status in ADDRESS_STATUSES:
        rendered["ShippingAddress"] = render_address(order, "shippingAddress" in restricted, now)
    buyer = render_buyer(order)
    if "buyerInfo" not in restricted:
        buyer = {key: value for key, value in buyer.items() if key in UNRESTRICTED_BUYER_FIELDS}
    if buyer:
        rendered["BuyerInfo"] = buyer
    return rendered


def render_address(order: SimOrder, with_pii: bool, now: datetime) -> dict:
    address = {"City": order.city, "StateOrRegion": order.province,
               "PostalCode": order.postal_code, "CountryCode": order.country_code}
    if with_pii:
        # Phone is suppressed for a shipped MFN order once past its LatestDeliveryDate.
        suppressed = order.status in ("shipped", "delivered") and now > last_delivery(order)
        address |= {"Name": order.receiver_name, "AddressLine1": order.address,
                    "Phone": None if suppressed else order.phone, "AddressType": "Residential"}
    return {key: value for key, value in address.items() if value}


def render_buyer(order: SimOrder) -> dict:
    # Amazon hands out an anonymised relay address, stable per buyer.
    relay = _digits(f"buyer|{order.buyer_id or order.order_id}", 12)
    return {"BuyerEmail": f"{relay}@marketplace.amazon.com", "BuyerName": order.receiver_name}


# ---- the items -------------------------------------------------------------------------


def render_items(order: SimOrder) -> list[dict]:
    priced = order.status != "unpaid"  # Pending: no prices, taxes or shipping charges
    shipped = shipped_quantities(order)
    items = []
    for position, line in enumerate(order.lines):
        item_id = order_item_id(order, position)
        item = {
            "ASIN": asin(line), "OrderItemId": item_id, "Title": line.title,
            "QuantityOrdered": line.quantity, "QuantityShipped": shipped.get(item_id, 0),
            "ProductInfo": {"NumberOfItems": "1"}, "ConditionId": "New",
            "ConditionSubtypeId": "New", "IsTransparency": False,
        }
        if line.sku:
            item["SellerSKU"] = line.sku
        if priced:
            currency = order.currency
            item |= {
                "ItemPrice": money(line.unit_price * line.quantity, currency),
                # the order's whole shipping charge rides on its first item
                "ShippingPrice": money(order.shipping_fee if position == 0 else ZERO, currency),
                "ItemTax": money(ZERO, currency), "ShippingTax": money(ZERO, currency),
                "ShippingDiscount": money(ZERO, currency),
                "PromotionDiscount": money(ZERO, currency),
                "IsGift": "false",
            }
        items.append(item)
    return items


# ---- Orders API 2026-01-01 (read-back of packages) -------------------------------------


def render_order_2026(order: SimOrder, with_packages: bool) -> dict:
    rendered = {
        "orderId": amazon_order_id(order), "createdTime": iso(order.created_at),
        "lastUpdatedTime": iso(order.updated_at),
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": marketplace_id(order)},
        "orderItems": [
            {"orderItemId": order_item_id(order, position), "quantityOrdered": line.quantity,
             "product": {"asin": asin(line), "title": line.title, "sellerSku": line.sku}}
            for position, line in enumerate(order.lines)
        ],
    }
    if with_packages:
        rendered["packages"] = [
            {"packageReferenceId": entry["package_reference_id"],
             PACKAGE_CARRIER_FIELD: entry["carrier_code"],
             "trackingNumber": entry["tracking_number"], "shipTime": iso(entry["shipped_at"]),
             "packageStatus": {"status": "SHIPPED"},
             "packageItems": [dict(item) for item in entry["order_items"]]}
            for entry in order.tracking if entry.get("platform") == "amazon"
        ]
    return rendered


# ---- Listings Items 2021-08-01 -------------------------------------------------------

FULFILLMENT_CHANNEL = "DEFAULT"  # [H] merchant-fulfilled quantity
# A listing was created, and last changed, when the sandbox shop opened.
LISTED_SINCE = datetime(2024, 1, 1, tzinfo=timezone.utc)
# --- UNVERIFIED (simulator choices): product types are drawn from a few real ones
# ("LUGGAGE" is the model's example); a patch must name the listing's own productType or
# the generic "PRODUCT" (as sellers patching offer-only attributes do, [L]).
PRODUCT_TYPES = ("LUGGAGE", "HOME", "HEADPHONES", "BEAUTY")
GENERIC_PRODUCT_TYPE = "PRODUCT"
# --- end


def product_type_of(sku: str) -> str:
    return PRODUCT_TYPES[int(_digits(f"type|{sku}", 6)) % len(PRODUCT_TYPES)]


def render_listings_item(sku: str, marketplace: str, quantity: int, included: set[str]) -> dict:
    """One Item of searchListingsItems / getListingsItem with the data sets asked for."""
    item: dict = {"sku": sku}
    if "summaries" in included:
        item["summaries"] = [{
            "marketplaceId": marketplace, "asin": asin_of(sku), "productType": product_type_of(sku),
            "conditionType": "new_new",
            "status": ["BUYABLE", "DISCOVERABLE"] if quantity > 0 else ["DISCOVERABLE"],
            "itemName": sku, "createdDate": iso(LISTED_SINCE), "lastUpdatedDate": iso(LISTED_SINCE),
        }]
    if "fulfillmentAvailability" in included:
        item["fulfillmentAvailability"] = [
            {"fulfillmentChannelCode": FULFILLMENT_CHANNEL, "quantity": quantity}]
    if "attributes" in included:
        item["attributes"] = {"fulfillment_availability": [
            {"fulfillment_channel_code": FULFILLMENT_CHANNEL, "quantity": quantity,
             "marketplace_id": marketplace}]}
    if "issues" in included:
        item["issues"] = []
    return item


def submission(sku: str, status: str, issues: list[dict]) -> dict:
    return {"sku": sku, "status": status, "submissionId": uuid.uuid4().hex, "issues": issues}


def issue(code: str, message: str, attributes: tuple[str, ...] = (),
          categories: tuple[str, ...] = ()) -> dict:
    found = {"code": code, "message": message, "severity": "ERROR"}
    if attributes:
        found["attributeNames"] = list(attributes)
    if categories:
        found["categories"] = list(categories)
    return found


# [H] the shape and "90000900 The attributes are invalid." are the model's sandbox example;
# [L] which issue Amazon names for an unknown SKU or a foreign productType.
INVALID_QUANTITY_ISSUE = ("90000900", "The attributes are invalid.")
UNKNOWN_SKU_ISSUE = ("4000001", "The SKU is not listed in this marketplace.")
PRODUCT_TYPE_ISSUE = ("4000002", "The productType does not match the listing's product type.")


# ---- errors and other wire pieces ----------------------------------------------------

# Usage plans (rate in requests per second) from the models' operation descriptions [H].
USAGE_PLANS = {"getOrders": "0.0167", "getOrder": "0.5", "getOrderItems": "0.5",
               "getOrderAddress": "0.5", "confirmShipment": "2.0",
               "createRestrictedDataToken": "1.0", "getOrder2026": "0.5",
               # Listings Items 2021-08-01 [H]
               "searchListingsItems": "5.0", "getListingsItem": "5.0", "patchListingsItem": "5.0"}


@dataclass(frozen=True)
class AmazonError(Exception):
    status: int
    code: str
    message: str
    details: str | None = None

    def saying(self, details: str) -> "AmazonError":
        return AmazonError(self.status, self.code, self.message, details)


DENIED = "Access to requested resource is denied."
TOKEN_EXPIRED = AmazonError(403, "Unauthorized", DENIED,
                            "The access token you provided has expired.")
TOKEN_INVALID = AmazonError(403, "Unauthorized", DENIED,
                            "The access token you provided is revoked, malformed or invalid.")
THROTTLED = AmazonError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
INVALID_INPUT = AmazonError(400, "InvalidInput", "Invalid Input")  # getOrders sandbox example
CONFIRM_INVALID = AmazonError(400, "Invalid Input", "Invalid Input")  # confirmShipment example
RDT_INVALID = AmazonError(400, "InvalidRequest", "Request is missing or has invalid parameters")
LISTINGS_INVALID = AmazonError(400, "BAD_REQUEST", "Invalid input")  # listings model example

# --- UNVERIFIED (reference [L] or absent): bodies and texts chosen for the simulator.
MISSING_TOKEN = AmazonError(403, "MissingAuthenticationToken", DENIED)  # code [M], text [L]
RDT_OUT_OF_SCOPE = AmazonError(403, "Unauthorized", DENIED)  # an RDT used beyond its resources
NOT_FOUND = AmazonError(404, "NotFound", "The requested resource was not found.")
SERVER_ERROR = AmazonError(500, "InternalFailure",
                           "We encountered an internal error. Please try again.")
BEFORE_TOO_RECENT = "{name} must be at least 2 minutes before the current time."
# That Amazon refuses a confirmation for an order no longer Unshipped/PartiallyShipped at
# all is assumed too (sandbox.amazon.confirm_shipment applies it).
NOT_SHIPPABLE = "The order is not in a status that can be confirmed: {status}."
# --- end


def encode_cursor(cursor: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode()


def decode_cursor(token: str, shop: str, kind: str) -> dict:
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        cursor = None
    if not isinstance(cursor, dict) or cursor.get("shop") != shop or cursor.get("kind") != kind:
        raise INVALID_INPUT.saying("Invalid NextToken.")
    return cursor


def error_response(error: AmazonError, operation: str) -> JSONResponse:
    body = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if error.status in (400, 404):  # 429 and 5xx no longer carry the rate header [H]
        headers["x-amzn-RateLimit-Limit"] = USAGE_PLANS[operation]
    if error.status == 403:
        headers["x-amzn-ErrorType"] = "AccessDeniedException"
    return JSONResponse({"errors": [body]}, status_code=error.status, headers=headers)


def spoil(body: dict) -> dict | None:
    """Break one order (or item) so mapping fails; None when the body holds neither."""
    payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
    rows = payload.get("Orders") or payload.get("OrderItems")
    if not rows:
        return None
    target = rows[len(rows) // 2]
    if "Orders" in payload:
        target.pop("AmazonOrderId", None)
        target["PurchaseDate"] = "yesterday"
    else:
        target.pop("OrderItemId", None)
        target["QuantityOrdered"] = "two"
    return body




async def serve(fault: Fault | None, operation: str, work: Callable[[bool], object]) -> Response:
    """Honour the request's fault, run `work(expired_by_fault)` and dress the answer."""
    kind = fault.kind if fault else None
    if fault is not None and kind == "latency":
        await asyncio.sleep(fault.delay_seconds)
    try:
        if kind == "server_error":
            raise SERVER_ERROR
        if kind == "rate_limit":
            raise THROTTLED
        body = work(kind == "expired_token")
    except AmazonError as error:
        return error_response(error, operation)
    headers = {"x-amzn-RequestId": str(uuid.uuid4()),
               "x-amzn-RateLimit-Limit": USAGE_PLANS[operation]}
    if body is None:
        return Response(status_code=204, headers=headers)
    if kind == "malformed":
        spoiled = spoil(body)  # type: ignore[arg-type]
        if spoiled is None:  # nothing order-shaped: a cut-off body instead
            return Response(json.dumps(body)[:25], media_type="application/json", headers=headers)
        body = spoiled
    return JSONResponse(body, headers=headers)
