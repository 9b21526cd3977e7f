"""What every marketplace and carrier connector offers the tasks, and the shared HTTP edge.

Connectors are the only code that knows a platform's wire format. They hand the tasks
`RawOrder`s (the payload plus the keys needed to land it), turn payloads into
`oms.domain.order.Order`, and push tracking numbers back. Anything that goes wrong on
the wire leaves a connector as one of the errors in `oms.domain.errors`.
"""

from __future__ import annotations

import logging
import math
import re

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import httpx

from connectors.pacing import TokenBucket
from oms.domain.errors import ConnectorError, RateLimited, Rejected, Unavailable
from oms.domain.order import Order, Receiver


T = TypeVar("T")

# Several platforms take tokens and signatures in the query string (Shopee's
# access_token, Taobao's session, Lazada's and JD's access_token), and httpx logs every
# request's URL at INFO. Those lines are kept, with the secret values masked.
SECRET_QUERY_VALUE = re.compile(
    r"((?:access_token|refresh_token|session|sign|client_secret|app_secret|partner_key|key)=)"
    r"[^&\s\"']+", re.IGNORECASE)
HTTP_LOGGERS = ("httpx", "httpcore.http11", "httpcore.http2", "httpcore.connection")


class SecretsInUrlsMasked(logging.Filter):
    """Rewrites a log record whose text carries a secret query value."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = SECRET_QUERY_VALUE.sub(r"\1***", text)
        if masked != text:
            record.msg, record.args = masked, ()
        return True


def mask_secrets_in_http_logs() -> None:
    """Install the mask on the HTTP client's loggers (idempotent)."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretsInUrlsMasked) for f in logger.filters):
            logger.addFilter(SecretsInUrlsMasked())


mask_secrets_in_http_logs()


@dataclass(frozen=True)
class ShopAccess:
    """How to reach one shop: its platform, base URL and credentials.

    `base_url` is the platform's real host in production and the sandbox's URL in tests
    and the demo, so switching a shop to the real platform is a change of data, not code.
    """

    code: str
    platform: str
    base_url: str
    credentials: dict[str, str]


@dataclass
class RawOrder:
    """One order payload as the platform sent it.

    `platform_order_id` and `platform_updated_at` are None when the payload is too broken
    to read them; such payloads go straight to the review queue.
    """

    platform_order_id: str | None
    platform_updated_at: datetime | None
    payload: dict[str, Any]
    # Why the payload could not be read, when the connector knows better than "no id"
    # (a spreadsheet row with a bad date, say); shown in the review queue.
    unreadable_reason: str | None = None


@dataclass
class PushResult:
    """What a tracking write-back sent and what came back, for the `tracking_pushes` row."""

    request: dict[str, Any]
    response: dict[str, Any]


@dataclass(frozen=True)
class TokenGrant:
    """What a platform's token or refresh call returned.

    `refresh_token` may be new on every refresh (Shopee's are single-use): whoever stores
    tokens must persist it before using `access_token`.
    """

    access_token: str
    access_expires_at: datetime
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None


class MarketplaceConnector(Protocol):
    platform: str
    # How far behind now the platform serves orders; ingest windows end there.
    fetch_lag: timedelta

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Yield pages of orders updated in [start, end), splitting the window as the
        platform requires."""
        ...

    def to_order(self, raw: RawOrder) -> Order:
        """Map a payload to the internal order; raise MappingError with every reason."""
        ...

    def push_tracking(
        self, platform_order_id: str, carrier: str, tracking_number: str
    ) -> PushResult:
        """Tell the platform the order shipped; `carrier` is our carrier code ("SF").

        A carrier the platform has no code for raises `Rejected` (code "unmapped_carrier")
        before any request is sent.
        """
        ...

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        """Trade a refresh token for new tokens at the platform's refresh endpoint."""
        ...

    def probe(self) -> None:
        """One cheap authenticated call; raises the usual connector errors on failure."""
        ...


@dataclass(frozen=True)
class Listing:
    """One sellable variant on a platform, tied to the seller's own SKU code (the outer id
    or merchant SKU the seller typed on the platform).

    `item_id` and `variant_id` are the platform's own ids (Taobao num_iid and sku_id,
    Shopee item_id and model_id, Shopify inventory_item_id, ...); `location_id` is the
    platform's stock location where it has them (Shopify), else "".
    """

    sku: str
    item_id: str
    variant_id: str = ""
    location_id: str = ""
    quantity: int | None = None  # what the platform shows as sellable now, when it says
    # The platform's product type where a stock update must name it (Amazon's
    # productType, which patchListingsItem requires); "" elsewhere.
    product_type: str = ""


@dataclass(frozen=True)
class StockLevel:
    """The sellable quantity to set on one listing (absolute, never a delta: a retried
    push then sets the same number again instead of adding it twice)."""

    listing: Listing
    quantity: int


@dataclass
class StockPushOutcome:
    """What the platform answered for one listing of a stock push.

    `error` is None when the platform took the quantity; otherwise the connector error the
    platform's per-item answer translates to (retryable or not), so one refused listing
    does not hide the others that were set.
    """

    sku: str
    quantity: int
    error: ConnectorError | None = None
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class SyncsStock(Protocol):
    """A connector that can tell the platform how many units it may still sell."""

    def list_listings(self) -> Iterator[list[Listing]]:
        """Yield pages of the shop's listings that carry a seller SKU code."""
        ...

    def push_stock(self, levels: list[StockLevel]) -> list[StockPushOutcome]:
        """Set these absolute quantities, batching as the platform allows; one outcome per
        level, in order. A failure of the whole call (token, rate limit, outage) raises."""
        ...


class RevealsReceivers(Protocol):
    """A connector whose platform hands out plaintext receivers for printing labels only
    (Taobao's oaid decrypt, Amazon's restricted-data token). What it returns is used for
    the carrier call and dropped: it is never stored or logged."""

    def label_receivers(self, masked: Mapping[str, Receiver]) -> dict[str, Receiver]:
        """Plaintext receivers by platform order id, for those the platform would open."""
        ...


def second_slices(start: datetime, end: datetime, span: timedelta) -> Iterator[tuple[int, int]]:
    """Cover [start, end) with unix-second windows no wider than `span`, both ends included.

    Platforms that compare whole seconds and include both ends of a window (PDD, Douyin,
    JD) would serve an order updated on a boundary twice, or, with a careless end, never;
    so each slice stops one second before the next begins.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("windows must be timezone-aware")
    first, stop = math.floor(start.timestamp()), math.floor(end.timestamp())
    step = int(span.total_seconds())
    for slice_start in range(first, stop, step):
        yield slice_start, min(slice_start + step, stop) - 1


def gateway_json(response: httpx.Response, what: str, platform: str, default_wait: float) -> Any:
    """The decoded body of a gateway answer, after the failures every gateway shares.

    5xx is `Unavailable`, 429 is `RateLimited` (waiting `Retry-After`, else
    `default_wait`), and a body that is not JSON is `Unavailable`; what the JSON says is
    each platform's own business.
    """
    status = response.status_code
    if status >= 500:
        raise Unavailable(f"{what}: HTTP {status}", platform=platform, code=status)
    if status == 429:
        wait = float(response.headers.get("Retry-After", default_wait))
        raise RateLimited(f"{what}: HTTP 429", retry_after=wait, platform=platform, code=429)
    try:
        return response.json()
    except ValueError:
        raise Unavailable(f"{what}: answer is not JSON", platform=platform) from None


def platform_carrier_code(codes: Mapping[str, T], carrier: str, platform: str) -> T:
    """The platform's code for our carrier, or `Rejected` before anything is sent.

    Pushing a carrier the platform does not know gets the shipment refused (and on some
    platforms fined as a fake tracking number), so this is checked in the process.
    """
    try:
        return codes[carrier]
    except KeyError:
        known = ", ".join(sorted(codes))
        raise Rejected(
            f"carrier {carrier!r} has no {platform} carrier code; map it in the {platform} "
            f"connector's table or ship with one of: {known}",
            platform=platform, code="unmapped_carrier",
        ) from None


@dataclass
class Parcel:
    """What a carrier needs to issue an e-waybill for one order."""

    order_ref: str
    receiver: Receiver
    weight_grams: int
    items: list[tuple[str, int]] = field(default_factory=list)  # (title, count)


@dataclass(frozen=True)
class Waybill:
    carrier: str
    tracking_number: str


class CarrierClient(Protocol):
    """What the shipping steps need from a carrier (SF Express is the first).

    `carrier` is our code from oms.domain.carriers ("SF", "ZTO", ...). Failures leave as
    the errors of oms.domain.errors: a refused parcel comes back as `Rejected` in its place
    of the list, a failure of the whole call raises.
    """

    carrier: str

    def create_waybills(self, parcels: list[Parcel]) -> list[Waybill | Rejected]:
        """One waybill per parcel, in order; asking again for the same `order_ref` gives
        the number issued the first time, never a second waybill."""
        ...

    def pickups(self, tracking_numbers: list[str]) -> dict[str, datetime | None]:
        """When the carrier collected each parcel (UTC), or None while it waits."""
        ...

    def cancel_waybill(self, order_ref: str) -> None:
        """Cancel the waybill of this parcel before pickup; `Rejected` once it is too late."""
        ...


class WaybillPerParcel:
    """`create_waybills` for carriers whose API takes one parcel per call: a refused
    parcel does not stop the batch; a retryable error raises, and running the batch
    again returns the numbers already issued (the carriers answer a repeated order
    reference with its first number)."""

    def create_waybill(self, parcel: Parcel) -> Waybill:
        raise NotImplementedError

    def create_waybills(self, parcels: list[Parcel]) -> list[Waybill | Rejected]:
        outcomes: list[Waybill | Rejected] = []
        for parcel in parcels:
            try:
                outcomes.append(self.create_waybill(parcel))
            except Rejected as refusal:
                outcomes.append(refusal)
        return outcomes


class HttpConnection:
    """An httpx client that a connector either borrows or owns.

    Tasks pass one client to several connectors to reuse connections; a connector built
    without one makes its own and closes it, and only it, on `close()` or on leaving a
    `with` block.
    """

    _pacing: TokenBucket | None = None
    fetch_lag = timedelta(0)  # most platforms serve orders up to now

    def _connect(
        self, http: httpx.Client | None, timeout: float | httpx.Timeout,
        pacing: TokenBucket | None = None,
    ) -> None:
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=timeout)
        self._pacing = pacing

    def _wait_turn(self) -> None:
        """Wait for the shop's request budget; call before every request to the platform."""
        if self._pacing is not None:
            self._pacing.take()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ---- after-sales (issue 7) ----------------------------------------------------------------
# Refund, return and exchange requests as every platform's after-sales API hands them over,
# in one shape. Statuses are ours; the platform's own word stays in `platform_status`.
# (Imported here, not at the top, so the block stays one appended piece.)
from decimal import Decimal  # noqa: E402

AFTER_SALES_KINDS = ("refund_only", "return_and_refund", "exchange")
AFTER_SALES_STATUSES = ("requested", "agreed", "refused", "goods_returned", "refunded", "closed")


@dataclass(frozen=True)
class AfterSalesLine:
    """One order line a request covers; `amount` is None where the platform gives only a
    total for the request."""

    platform_line_id: str
    sku: str | None
    quantity: int
    amount: Decimal | None = None


@dataclass(frozen=True)
class AfterSalesRequest:
    """A buyer's refund-only, return-and-refund or exchange request, linked to its order.

    `respond_by` is the platform's own deadline for the seller's answer (after it the
    platform decides for the buyer), None when the platform states none. `buyer_ref` is a
    hash of the platform's buyer id, never a name or nickname. `version` is what the
    platform wants echoed when answering (Taobao's refund_version, Douyin's update_time).
    """

    platform: str
    shop_code: str
    platform_request_id: str
    platform_order_id: str
    kind: str
    status: str
    platform_status: str
    amount: Decimal
    currency: str
    reason_code: str
    reason_text: str
    lines: tuple[AfterSalesLine, ...]
    created_at: datetime
    updated_at: datetime
    respond_by: datetime | None
    buyer_ref: str
    evidence_urls: tuple[str, ...] = ()
    return_carrier: str | None = None
    return_tracking: str | None = None
    version: str = ""


@dataclass(frozen=True)
class AfterSalesDecision:
    """What the seller answers: agree (with the amount to refund) or refuse (with the
    platform's refuse reason code and a note the buyer reads)."""

    agree: bool
    amount: Decimal | None = None
    note: str = ""
    refuse_reason_code: str = ""


@dataclass
class RawAfterSales:
    """One after-sales payload as the platform sent it, with the keys to land it
    (idempotent on platform, shop, request id, update time)."""

    platform_request_id: str | None
    platform_updated_at: datetime | None
    payload: dict[str, Any]


class HandlesAfterSales(Protocol):
    """A connector that reads the shop's after-sales requests and answers them."""

    def fetch_after_sales(
        self, start: datetime, end: datetime
    ) -> Iterator[list[RawAfterSales]]:
        """Yield pages of requests updated in [start, end), each request once per window
        even where the platform serves it on two pages."""
        ...

    def to_after_sales(self, raw: RawAfterSales) -> AfterSalesRequest:
        """Map a payload; raise MappingError naming every field that is wrong."""
        ...

    def answer_after_sales(
        self, request: AfterSalesRequest, decision: AfterSalesDecision
    ) -> PushResult:
        """Send the agree or refuse call. A refusal without a reason, or a request the
        platform no longer lets the seller answer, raises `Rejected`."""
        ...
