"""Shopify connector: pulls orders from the REST Admin API and writes tracking back.

The same code talks to `https://{shop}.myshopify.com` and to the sandbox's
`{sandbox}/shopify/{shop}`: only `ShopAccess.base_url` differs. Orders are listed with
`status=any` over an `updated_at` window and followed page by page through the `Link`
header; tracking goes back as a fulfillment of the order's open fulfillment order.
Every failure on the wire leaves as one of the errors in `oms.domain.errors`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.base import PushResult, RawOrder, ShopAccess
from oms.domain.errors import MappingError, RateLimited, Rejected, TokenExpired, Unavailable
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

log = logging.getLogger(__name__)

PLATFORM = "shopify"
API_VERSION = "2025-01"
MAX_PAGE_SIZE = 250
REQUEST_TIMEOUT_SECONDS = 30.0
DEFAULT_RETRY_AFTER_SECONDS = 1.0  # [H] the official client waits 1 s without Retry-After
FULFILLABLE_STATUSES = ("open", "in_progress")
# Shopify's China address form has no district field; the sandbox (and our sellers'
# checkout convention) puts it in address2. Unverified for real stores.
DISTRICT_FIELD = "address2"
PAID_FINANCIAL_STATUSES = ("paid", "partially_paid", "partially_refunded", "refunded")


class ShopifyState(NamedTuple):
    """Where a Shopify order stands, as far as our status needs to know."""

    financial_status: str | None
    fulfillment_status: str | None  # null means unfulfilled
    cancelled: bool  # cancelled_at is set
    delivered: bool  # every successful fulfillment reports shipment_status "delivered"


S = OrderStatus
# The only place that says what a Shopify state means to us. Keys are ShopifyState tuples.
STATUS_BY_SHOPIFY_STATE: dict[tuple, OrderStatus] = {
    ("pending", None, False, False): S.PENDING_PAYMENT,
    ("partially_paid", None, False, False): S.PENDING_PAYMENT,
    # Manual-capture shops capture when they fulfil, so an authorized order is ready to ship.
    ("authorized", None, False, False): S.PAID,
    ("paid", None, False, False): S.PAID,
    ("partially_refunded", None, False, False): S.PAID,  # the rest still ships
    # Partly fulfilled means someone ships this order by hand: we must not ship it whole.
    ("paid", "partial", False, False): S.SHIPPED,
    ("paid", "fulfilled", False, False): S.SHIPPED,
    ("partially_refunded", "fulfilled", False, False): S.SHIPPED,
    ("refunded", "fulfilled", False, False): S.SHIPPED,  # refund after shipping is after-sales
    ("pending", "fulfilled", False, False): S.SHIPPED,  # shipped before payment (manual)
    ("paid", "fulfilled", False, True): S.DELIVERED,
    ("partially_refunded", "fulfilled", False, True): S.DELIVERED,
    ("refunded", "fulfilled", False, True): S.DELIVERED,
    ("pending", None, True, False): S.CANCELLED,
    ("authorized", None, True, False): S.CANCELLED,
    ("paid", None, True, False): S.CANCELLED,  # cancelled, refund not issued yet
    ("voided", None, True, False): S.CANCELLED,
    ("refunded", None, True, False): S.CANCELLED,
    ("partially_refunded", None, True, False): S.CANCELLED,
    ("voided", None, False, False): S.CANCELLED,  # authorization voided, nothing to ship
    ("refunded", None, False, False): S.CANCELLED,
}

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


class ShopifyConnector:
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
        self._api_root = f"{access.base_url.rstrip('/')}/admin/api/{API_VERSION}"
        self._headers = {"X-Shopify-Access-Token": token, "Accept": "application/json"}
        self._http = http or httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS)
        self._owns_http = http is None

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> ShopifyConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
        company = TRACKING_COMPANY_BY_CARRIER.get(carrier)
        if company is None:
            message = f"no Shopify tracking company for carrier {carrier!r}"
            raise Rejected(message, platform=PLATFORM, code="unmapped_carrier")
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

    def health_check(self) -> float:
        """Seconds one cheap authenticated call takes; raises like any other call."""
        started = time.perf_counter()
        self._call("GET", "/orders/count.json", params={"status": "any"})
        return time.perf_counter() - started

    def _call(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, Any]:
        where = f"{method} {path.split('?')[0]}"
        try:
            url = self._api_root + path
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


# ---------------------------------------------------------------- the wire, read


def _whole_second(moment: datetime, *, round_up: bool) -> str:
    if moment.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    moment = moment.astimezone(timezone.utc)
    truncated = moment.replace(microsecond=0)
    if round_up and truncated != moment:
        truncated += timedelta(seconds=1)
    return truncated.isoformat()


def _parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time with offset, as aware UTC; None when absent, naive or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo else None


def _order_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def raw_order(payload: Any) -> RawOrder:
    """Land a payload as it came; keys too broken to read become None, never an error."""
    if not isinstance(payload, dict):
        payload = {"unreadable": payload}
    order_id = _order_id(payload.get("id"))
    return RawOrder(
        platform_order_id=None if order_id is None else str(order_id),
        platform_updated_at=_parse_time(payload.get("updated_at")),
        payload=payload,
    )


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


# ---------------------------------------------------------------- payload -> Order


def shopify_state(payload: dict) -> ShopifyState:
    fulfillments = payload.get("fulfillments")
    successful = [
        f for f in (fulfillments if isinstance(fulfillments, list) else [])
        if isinstance(f, dict) and f.get("status") == "success"
    ]
    return ShopifyState(
        financial_status=payload.get("financial_status"),
        fulfillment_status=payload.get("fulfillment_status"),
        cancelled=bool(payload.get("cancelled_at")),
        delivered=bool(successful)
        and all(f.get("shipment_status") == "delivered" for f in successful),
    )


def _amount(value: Any, name: str, reasons: list[str]) -> Decimal:
    try:
        amount = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        reasons.append(f"{name} is not a non-negative decimal string")
        return Decimal("0")
    return amount


def _required_time(payload: dict, name: str, reasons: list[str]) -> datetime:
    moment = _parse_time(payload.get(name))
    if moment is None:
        reasons.append(f"{name} is missing or not ISO-8601 with an offset")
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment


def _lines(items: Any, reasons: list[str]) -> list[OrderLine]:
    if not isinstance(items, list):
        reasons.append("line_items is missing or not a list")
        return []
    if not items:
        reasons.append("the order has no line items")
    lines = []
    for index, item in enumerate(items):
        where = f"line_items[{index}]"
        if not isinstance(item, dict):
            reasons.append(f"{where} is not an object")
            continue
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            reasons.append(f"{where}.quantity is not a positive integer")
        sku = item.get("sku")
        if sku is not None and not isinstance(sku, str):
            reasons.append(f"{where}.sku is not a string")
        price = _amount(item.get("price"), f"{where}.price", reasons)
        line_id = item.get("id")
        lines.append(OrderLine(
            sku=sku, quantity=quantity, unit_price=price, title=str(item.get("title") or ""),
            platform_line_id="" if line_id is None else str(line_id),
        ))
    return lines


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _receiver(payload: dict, reasons: list[str]) -> Receiver:
    """The shipping address as the buyer typed it: the clean step normalises it."""
    address = payload.get("shipping_address")
    if address is not None and not isinstance(address, dict):
        reasons.append("shipping_address is not an object")
    address = address if isinstance(address, dict) else {}
    phone = address.get("phone")
    return Receiver(
        name=_text(address.get("name")),
        phone=_text(payload.get("phone") if phone is None else phone),
        province=_text(address.get("province")),
        city=_text(address.get("city")),
        district=_text(address.get(DISTRICT_FIELD)),
        address=_text(address.get("address1")),
        postal_code=_text(address.get("zip")),
        country_code=_text(address.get("country_code")) or "CN",
        masked=False,
    )


def map_order(payload: dict, shop_code: str) -> Order:
    """A Shopify order payload as our Order; MappingError lists every problem found."""
    reasons: list[str] = []
    order_id = _order_id(payload.get("id"))
    if order_id is None:
        reasons.append("id is missing or not a positive integer")
    created_at = _required_time(payload, "created_at", reasons)
    updated_at = _required_time(payload, "updated_at", reasons)
    state = shopify_state(payload)
    status = STATUS_BY_SHOPIFY_STATE.get(state)
    if status is None:
        reasons.append(f"no internal status for Shopify state {tuple(state)}")
    currency = payload.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        reasons.append("currency is missing or not a three-letter code")
    total = _amount(payload.get("total_price"), "total_price", reasons)
    shipping_money = (payload.get("total_shipping_price_set") or {})
    shipping_money = shipping_money.get("shop_money") if isinstance(shipping_money, dict) else None
    shipping_fee = _amount(
        shipping_money.get("amount") if isinstance(shipping_money, dict) else None,
        "total_shipping_price_set.shop_money.amount", reasons,
    )
    lines = _lines(payload.get("line_items"), reasons)
    receiver = _receiver(payload, reasons)
    if reasons:
        raise MappingError(reasons)
    customer = payload.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else None
    platform_status = "/".join(filter(None, [
        state.financial_status, state.fulfillment_status or "unfulfilled",
        "cancelled" if state.cancelled else "", "delivered" if state.delivered else "",
    ]))
    return Order(
        platform=PLATFORM,
        shop_code=shop_code,
        platform_order_id=str(order_id),
        platform_status=platform_status,
        status=status,
        created_at=created_at,
        updated_at=updated_at,
        currency=currency,
        total_amount=total,
        receiver=receiver,
        lines=lines,
        shipping_fee=shipping_fee,
        # REST orders carry no payment time; processed_at is when checkout completed.
        paid_at=_parse_time(payload.get("processed_at"))
        if state.financial_status in PAID_FINANCIAL_STATUSES else None,
        buyer_ref=None if customer_id is None else str(customer_id),
        buyer_note=_text(payload.get("note")) or "",
    )
