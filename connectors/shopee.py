"""Shopee Open Platform v2 connector: signed calls, orders in, tracking numbers and stock out.

Every call carries partner_id, timestamp and an HMAC-SHA256 `sign` in the query, plus
access_token and shop_id for shop APIs (reference §3.2); POST bodies are JSON. Orders are
listed by update time in windows of at most 15 days, page by page with a cursor, and read
in batches of 50 with get_order_detail. A tracking number goes back with ship_order on the
order's own logistics channel. Reading a payload into an `Order` is pure and lives in
`connectors.shopee_mapping`.

Listings are read item by item: get_item_list pages item ids, get_item_base_info tells
(50 at a time) which items carry their SKU themselves and which have models, and
get_model_list gives each item's models. Stock goes out with update_stock, one call per
item carrying up to 50 of its models, in absolute seller_stock; a model Shopee refuses is
named in `failure_list` and becomes that listing's refusal.

Shopee's cursor is an offset (sample "20"): an order that leaves the window while we page
shifts its neighbours forward by one. The pipeline's overlap behind the watermark, and
Shopee's push messages (issue 9), are what catch such an order; this class cannot.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from connectors.base import (
    HttpConnection, Listing, PushResult, RawOrder, ShopAccess, StockLevel, StockPushOutcome,
    TokenGrant, platform_carrier_code,
)
from connectors.pacing import RequestRate, shop_bucket
from connectors.shopee_mapping import (  # noqa: F401  re-exported for callers and tests
    PLATFORM, STATUS_TABLE, listing_of_item, listings_of_models, map_order, parse_unix_seconds,
    raw_order,
)
from oms.domain.errors import (
    ConnectorError, MappingError, RateLimited, Rejected, TokenExpired, Unavailable,
)
from oms.domain.order import Order

API = "/api/v2"
ORDER_LIST = f"{API}/order/get_order_list"
ORDER_DETAIL = f"{API}/order/get_order_detail"
SHIPPING_PARAMETER = f"{API}/logistics/get_shipping_parameter"
SHIP_ORDER = f"{API}/logistics/ship_order"
TRACKING_NUMBER = f"{API}/logistics/get_tracking_number"
REFRESH = f"{API}/auth/access_token/get"  # [H] v2.public.refresh_access_token
ITEM_LIST = f"{API}/product/get_item_list"
ITEM_BASE_INFO = f"{API}/product/get_item_base_info"
MODEL_LIST = f"{API}/product/get_model_list"
UPDATE_STOCK = f"{API}/product/update_stock"

MAX_WINDOW = timedelta(days=15)  # [H] get_order_list
MAX_PAGE_SIZE = 100  # [H]
MAX_DETAIL_BATCH = 50  # [H] order_sn_list
MAX_ITEM_PAGE = 100  # [H] get_item_list page_size
MAX_BASE_INFO_BATCH = 50  # [H] get_item_base_info item_id_list
MAX_MODELS_PER_STOCK_CALL = 50  # [H] update_stock stock_list, all of one item
# Items whose stock we keep right: on sale, and unlisted ones a seller may list again.
SYNCED_ITEM_STATUSES = ["NORMAL", "UNLIST"]
# update_stock errors that refuse this one item's stock (it is gone, locked by a
# promotion, holiday mode, a bad body...) while the next item may still be set; any other
# error (signature, shop, permission) would refuse every call and is raised.
ITEM_STOCK_REFUSALS = frozenset({
    "error_item_not_found", "error_item_not_belong_shop", "error_item_uneditable",
    "error_busi_update_stock_failed", "error_param", "error_cannt_edit_stock_in_promotion",
    "error_promotion_cantnot_update_stock", "error_model_update_stock_model_in_promotion",
    "error_holiday_mode_change_stock", "error_edit_item_stock_for_item_has_model",
    "error_in_item_promotion_nomodel_to_models", "error_wms_shop_block_upate_stock",
    "error_busi_cannot_edit_vsku",
})
# error_param also answers gateway mistakes ("There is no access_token in query.",
# "Timestamp is expired."): those concern every call, not the item.
GATEWAY_PARAMETERS = ("access_token", "timestamp", "partner_id", "sign", "shop_id")
REFRESH_TOKEN_LIFETIME = timedelta(days=30)  # [H] the refresh answer names only expire_in
DETAIL_FIELDS = ",".join((
    "buyer_user_id", "buyer_username", "estimated_shipping_fee", "recipient_address",
    "actual_shipping_fee", "item_list", "pay_time", "cancel_by", "cancel_reason",
    "package_list", "shipping_carrier", "payment_method", "total_amount", "note",
))
SHIPPABLE = ("READY_TO_SHIP", "RETRY_SHIP")
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MARKET_TIME = timezone(timedelta(hours=8))  # error_limit resets at 00:00 UTC+08:00 [H]

# --- UNVERIFIED (reference [L]: no numeric rate limit, no Retry-After, no channel table)
# Shopee publishes no per-second limit (its schema rate_limit fields are zero); public
# reports speak of far more than this, so 20/s with bursts of 40 per shop is cautious.
REQUEST_RATE = RequestRate(per_second=20, burst=40)
RATE_LIMIT_WAIT_SECONDS = 1.0  # error_rate_limit names no wait; a Retry-After header wins
# Our carrier code -> the name of the Shopee logistics channel it drives. Channel ids
# differ per market and come from logistics.get_channel_list, so the name is matched
# (case-insensitively, as a prefix) against the order's own channel. Not checked
# against a live shop.
CARRIER_CODES: dict[str, str] = {
    "SPX": "SPX Express",
    "NINJAVAN": "Ninja Van",
    "JT": "J&T Express",
    "FLASH": "Flash Express",
    "DHL": "DHL eCommerce",
}
# --- end

# Shopee `error` -> our error. Errors arrive bare ("error_auth") or with a module prefix
# ("common.error_auth", "logistics.error_param"); "common." is dropped before the lookup,
# other prefixes stay ("logistics.error_limit" is a refusal, not a daily limit).
# Everything not listed (error_sign, error_param, order.*, logistics.*,
# refresh_token_expired...) is permanent and becomes Rejected. HTTP 5xx, timeouts,
# connection failures and bodies that are not JSON become Unavailable in `_unwrap`.
ERROR_TRANSLATION: dict[str, type[ConnectorError]] = {
    "invalid_acceess_token": TokenExpired,  # [H] sic: "Invalid access_token, please have a check."
    "invalid_access_token": TokenExpired,  # the spelling SHOPEE-SDK also retries on
    # "Invalid access_token." is TokenExpired; "Invalid partner_id or shopid." is a setup
    # fault and becomes Rejected (see _translate).
    "error_auth": TokenExpired,
    "error_rate_limit": RateLimited,  # [H]
    "error_limit": RateLimited,  # [H] daily limit: wait until 00:00 UTC+08:00
    "error_server": Unavailable,
    "error_network": Unavailable,  # "Inner http call failed"
    "logistics.logistic_order_is_locked_on_creating": Unavailable,  # "Fail to get the lock."
}


def sign(partner_key: str, partner_id: str, path: str, timestamp: str,
         access_token: str = "", shop_id: str = "") -> str:
    """Lowercase hex HMAC-SHA256 over partner_id + path + timestamp [+ token + shop_id]."""
    base = "".join((partner_id, path, timestamp, access_token, shop_id))
    return hmac.new(partner_key.encode("utf-8"), base.encode("utf-8"), hashlib.sha256).hexdigest()


def window_slices(start: datetime, end: datetime, span: timedelta) -> Iterator[tuple[int, int]]:
    """Cover [start, end) with unix-second windows [a, b] of at most `span` that share ends.

    Whether Shopee includes time_to is not documented, so each window runs up to the next
    one's first second and the caller keeps only orders updated before its end: an order
    on a shared second is then read once whichever way Shopee counts.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("windows must be timezone-aware")
    first, stop = math.floor(start.timestamp()), math.ceil(end.timestamp())
    step = int(span.total_seconds())
    for slice_start in range(first, stop, step):
        yield slice_start, min(slice_start + step, stop)


class ShopeeConnector(HttpConnection):
    platform = PLATFORM

    def __init__(self, access: ShopAccess, http: httpx.Client | None = None,
                 page_size: int = MAX_PAGE_SIZE, request_rate: RequestRate = REQUEST_RATE) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        credentials = access.credentials
        self.shop_code = access.code
        self._partner_id = str(credentials["partner_id"])
        self._partner_key = credentials["partner_key"]
        self._shop_id = str(credentials["shop_id"])
        self._access_token = credentials.get("access_token", "")
        # The reference quotes hosts with /api/v2; our paths carry it themselves.
        host = access.base_url.rstrip("/")
        self._host = host[: -len(API)] if host.endswith(API) else host
        self._page_size = page_size
        self._connect(http, TIMEOUT, pacing=shop_bucket(PLATFORM, access.code, request_rate))

    # ---- orders in -----------------------------------------------------------------

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Orders updated in [start, end): one page of details per page of the list."""
        yielded: set[tuple[str | None, datetime | None]] = set()
        for slice_start, slice_end in window_slices(start, end, MAX_WINDOW):
            low = max(start, datetime.fromtimestamp(slice_start, timezone.utc))
            high = min(end, datetime.fromtimestamp(slice_end, timezone.utc))
            cursor = ""
            while True:
                entries, more, next_cursor = self._list_page(slice_start, slice_end, cursor)
                page = []
                for raw in self._read_listed(entries):
                    stamp = raw.platform_updated_at
                    key = (raw.platform_order_id, stamp)
                    if stamp is not None and not low <= stamp < high:
                        continue  # read again by the window it belongs to
                    if raw.platform_order_id is not None and key in yielded:
                        continue  # an order listed twice (Shopee repeats some)
                    yielded.add(key)
                    page.append(raw)
                if page:
                    yield page
                if not more:
                    break
                if not next_cursor or next_cursor == cursor:
                    raise Unavailable("get_order_list said more but gave no new cursor",
                                      platform=PLATFORM, body=next_cursor)
                cursor = next_cursor

    def _list_page(self, time_from: int, time_to: int, cursor: str,
                   page_size: int | None = None) -> tuple[list, bool, str]:
        query = {"time_range_field": "update_time", "time_from": time_from, "time_to": time_to,
                 "page_size": page_size or self._page_size, "cursor": cursor,
                 "response_optional_fields": "order_status"}
        answer = _response(self._call("GET", ORDER_LIST, query=query), ORDER_LIST)
        entries, more = answer.get("order_list"), answer.get("more")
        next_cursor = answer.get("next_cursor", "")
        if not (isinstance(entries, list) and isinstance(more, bool)):
            raise Unavailable("get_order_list answered without order_list or more",
                              platform=PLATFORM, body=answer)
        return entries, more, str(next_cursor or "")

    def _read_listed(self, entries: list) -> list[RawOrder]:
        """Details of the listed orders; list entries without an order_sn go to review."""
        wanted, unreadable = [], []
        for entry in entries:
            sn = entry.get("order_sn") if isinstance(entry, dict) else None
            if isinstance(sn, str) and sn:
                wanted.append(sn)
            else:
                unreadable.append(RawOrder(None, None, {"list_entry": entry},
                                           "get_order_list gave an entry without order_sn"))
        return self.order_details(list(dict.fromkeys(wanted))) + unreadable

    def order_details(self, order_sns: list[str]) -> list[RawOrder]:
        """get_order_detail in batches of 50; an order it leaves out still comes back, unread."""
        raws: list[RawOrder] = []
        for first in range(0, len(order_sns), MAX_DETAIL_BATCH):
            batch = order_sns[first : first + MAX_DETAIL_BATCH]
            query = {"order_sn_list": ",".join(batch), "response_optional_fields": DETAIL_FIELDS}
            answer = _response(self._call("GET", ORDER_DETAIL, query=query), ORDER_DETAIL)
            orders = answer.get("order_list")
            if not isinstance(orders, list):
                raise Unavailable("get_order_detail answered without order_list",
                                  platform=PLATFORM, body=answer)
            got = [raw_order(item) for item in orders]
            raws += got
            returned = {raw.platform_order_id for raw in got}
            missing = [sn for sn in batch if sn not in returned]
            unkeyed = sum(raw.platform_order_id is None for raw in got)
            # An unkeyed payload is probably one of the missing orders; the rest are named.
            raws += [RawOrder(sn, None, {"order_sn": sn},
                              "get_order_detail did not return this listed order")
                     for sn in missing[unkeyed:]]
        return raws

    def to_order(self, raw: RawOrder) -> Order:
        """The internal order, or MappingError naming everything wrong with the payload."""
        return map_order(raw.payload, self.shop_code)

    def probe(self) -> None:
        """One cheap authenticated call: a one-order page of the last minute."""
        now = int(time.time())
        self._list_page(now - 60, now, "", page_size=1)

    # ---- tracking out --------------------------------------------------------------

    def push_tracking(self, platform_order_id: str, carrier: str,
                      tracking_number: str) -> PushResult:
        """Ship the order on its own channel with our tracking number.

        Shopee takes no carrier in ship_order: the buyer chose the logistics channel, so
        the carrier must be that channel's. A push Shopee already holds (same tracking
        number on the order) succeeds again without a second ship_order.
        """
        channel_name = platform_carrier_code(CARRIER_CODES, carrier, PLATFORM)
        sent: dict[str, Any] = {"order_sn": platform_order_id, "channel": channel_name}
        detail = self._one_detail(platform_order_id)
        self._check_channel(detail, channel_name, carrier)
        status = detail.get("order_status")
        if status not in SHIPPABLE:
            refusal = Rejected(f"the order is {status}, not ready to ship", platform=PLATFORM,
                               code="not_shippable")
            return self._already_held(sent, platform_order_id, tracking_number, refusal)
        info = _response(self._call("GET", SHIPPING_PARAMETER,
                                    query={"order_sn": platform_order_id}), SHIPPING_PARAMETER)
        body = {"order_sn": platform_order_id, **_ship_method(info, tracking_number, channel_name)}
        sent.update(body)
        try:
            answer = self._call("POST", SHIP_ORDER, body=body)
        except Rejected as refusal:  # perhaps an earlier push landed and its answer was lost
            return self._already_held(sent, platform_order_id, tracking_number, refusal)
        return PushResult(request=sent, response=answer)

    def _one_detail(self, order_sn: str) -> dict:
        [raw] = self.order_details([order_sn])
        if raw.unreadable_reason or raw.platform_order_id != order_sn:
            raise Rejected(f"order {order_sn} is not found", platform=PLATFORM, code="not_found")
        return raw.payload

    @staticmethod
    def _check_channel(detail: dict, channel_name: str, carrier: str) -> None:
        packages = detail.get("package_list")
        packages = packages if isinstance(packages, list) else []
        if len(packages) > 1:
            raise Rejected("the order is split into packages; ship each package on its own",
                           platform=PLATFORM, code="split_order")
        shown = [p.get("shipping_carrier") for p in packages if isinstance(p, dict)]
        shown.append(detail.get("shipping_carrier"))
        if not any(isinstance(name, str) and name.lower().startswith(channel_name.lower())
                   for name in shown):
            raise Rejected(f"the order ships on {shown[0]!r}, not on {carrier}'s channel "
                           f"{channel_name!r}", platform=PLATFORM, code="carrier_mismatch")

    def _already_held(self, sent: dict, order_sn: str, tracking_number: str,
                      refusal: Rejected) -> PushResult:
        answer = _response(self._call("GET", TRACKING_NUMBER, query={"order_sn": order_sn}),
                           TRACKING_NUMBER)
        if answer.get("tracking_number") != tracking_number:
            raise refusal
        return PushResult(request=sent, response={"already_shipped_with_this_tracking": True,
                                                  "refusal": refusal.body or str(refusal)})

    # ---- stock out -------------------------------------------------------------------

    def list_listings(self) -> Iterator[list[Listing]]:
        """Pages of the shop's SKU-carrying items and models, one page per get_item_list page."""
        offset = 0
        while True:
            query = {"offset": offset, "page_size": min(self._page_size, MAX_ITEM_PAGE),
                     "item_status": SYNCED_ITEM_STATUSES}
            answer = _response(self._call("GET", ITEM_LIST, query=query), ITEM_LIST)
            entries, more = answer.get("item", []), answer.get("has_next_page")
            if not isinstance(entries, list) or not isinstance(more, bool):
                raise Unavailable("get_item_list answered without item or has_next_page",
                                  platform=PLATFORM, body=answer)
            item_ids = [e.get("item_id") for e in entries if isinstance(e, dict)]
            if len(item_ids) != len(entries) or not all(isinstance(i, int) for i in item_ids):
                raise Unavailable("get_item_list gave an entry without item_id",
                                  platform=PLATFORM, body=answer)
            page = self._listings_of_items(item_ids)
            if page:
                yield page
            if not more:
                return
            next_offset = answer.get("next_offset")
            if not isinstance(next_offset, int) or next_offset <= offset:
                raise Unavailable("get_item_list said more but gave no later next_offset",
                                  platform=PLATFORM, body=answer)
            offset = next_offset

    def _listings_of_items(self, item_ids: list[int]) -> list[Listing]:
        listings: list[Listing] = []
        for first in range(0, len(item_ids), MAX_BASE_INFO_BATCH):
            batch = item_ids[first : first + MAX_BASE_INFO_BATCH]
            query = {"item_id_list": ",".join(map(str, batch))}
            answer = _response(self._call("GET", ITEM_BASE_INFO, query=query), ITEM_BASE_INFO)
            bases = answer.get("item_list")
            if not isinstance(bases, list):
                raise Unavailable("get_item_base_info answered without item_list",
                                  platform=PLATFORM, body=answer)
            for base in bases:
                if not isinstance(base, dict) or not isinstance(base.get("item_id"), int):
                    raise Unavailable("get_item_base_info gave an item without item_id",
                                      platform=PLATFORM, body=answer)
                if base.get("has_model"):
                    listings += self._listings_of_models(base["item_id"])
                elif (listing := listing_of_item(base)) is not None:
                    listings.append(listing)
        return listings

    def _listings_of_models(self, item_id: int) -> list[Listing]:
        answer = _response(self._call("GET", MODEL_LIST, query={"item_id": item_id}), MODEL_LIST)
        try:
            return listings_of_models(item_id, answer)
        except MappingError as error:
            raise Unavailable(f"{MODEL_LIST}: {error}", platform=PLATFORM, body=answer) from error

    def push_stock(self, levels: list[StockLevel]) -> list[StockPushOutcome]:
        """Set absolute seller stock: one update_stock per item, up to 50 of its models each."""
        outcomes: list[StockPushOutcome | None] = [None] * len(levels)
        by_item: dict[int, list[tuple[int, StockLevel]]] = {}
        for position, level in enumerate(levels):
            listing = level.listing
            model = listing.variant_id or "0"
            if not (listing.item_id.isdigit() and model.isdigit()):
                outcomes[position] = StockPushOutcome(listing.sku, level.quantity, error=Rejected(
                    f"{listing.sku}: item {listing.item_id!r} model {model!r} is no Shopee "
                    "listing", platform=PLATFORM, code="not_a_shopee_listing"))
                continue
            by_item.setdefault(int(listing.item_id), []).append((position, level))
        for item_id, members in by_item.items():
            for first in range(0, len(members), MAX_MODELS_PER_STOCK_CALL):
                chunk = members[first : first + MAX_MODELS_PER_STOCK_CALL]
                for position, outcome in self._update_item_stock(item_id, chunk):
                    outcomes[position] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    def _update_item_stock(self, item_id: int, members: list[tuple[int, StockLevel]]
                           ) -> list[tuple[int, StockPushOutcome]]:
        def model_of(level: StockLevel) -> int:
            return int(level.listing.variant_id or 0)

        body = {"item_id": item_id, "stock_list": [
            {"model_id": model_of(level), "seller_stock": [{"stock": level.quantity}]}
            for _, level in members]}
        try:
            answer = _response(self._call("POST", UPDATE_STOCK, body=body), UPDATE_STOCK)
        except Rejected as refusal:
            bare = str(refusal.code).removeprefix("common.").removeprefix("product.")
            said = refusal.body.get("message") if isinstance(refusal.body, dict) else ""
            message = str(said or "").lower()
            if bare not in ITEM_STOCK_REFUSALS or (
                    bare == "error_param" and any(word in message for word in GATEWAY_PARAMETERS)):
                raise
            answer = (refusal.body or {}).get("response") if isinstance(refusal.body, dict) else None
            if bare != "error_busi_update_stock_failed" or not isinstance(answer, dict):
                return [(position, StockPushOutcome(level.listing.sku, level.quantity,
                                                    error=refusal, request=body,
                                                    response=refusal.body))
                        for position, level in members]
        failed = {entry.get("model_id"): str(entry.get("failed_reason") or "refused")
                  for entry in answer.get("failure_list") or [] if isinstance(entry, dict)}
        succeeded = {entry.get("model_id") for entry in answer.get("success_list") or []
                     if isinstance(entry, dict)}
        results = []
        for position, level in members:
            model_id = model_of(level)
            error: ConnectorError | None = None
            if model_id in failed:
                error = Rejected(f"{level.listing.sku}: {failed[model_id]}", platform=PLATFORM,
                                 code="update_stock_failure", body=answer)
            elif model_id not in succeeded:
                # Neither set nor refused: only a later push can tell, so it may be retried.
                error = Unavailable(f"{level.listing.sku}: update_stock did not confirm model "
                                    f"{model_id}", platform=PLATFORM, body=answer)
            results.append((position, StockPushOutcome(level.listing.sku, level.quantity,
                                                       error=error, request=body,
                                                       response=answer)))
        return results

    # ---- tokens --------------------------------------------------------------------

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        """Trade the (single-use) refresh token for new tokens; store both before use."""
        body = {"refresh_token": refresh_token, "partner_id": int(self._partner_id),
                "shop_id": int(self._shop_id)}
        answer = self._call("POST", REFRESH, body=body, public=True)
        access, refresh = answer.get("access_token"), answer.get("refresh_token")
        lifetime = answer.get("expire_in")
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh
                and isinstance(lifetime, int)):
            raise Unavailable("the refresh answer lacks its tokens", platform=PLATFORM)
        now = datetime.now(timezone.utc)
        self._access_token = access
        return TokenGrant(access, now + timedelta(seconds=lifetime), refresh,
                          now + REFRESH_TOKEN_LIFETIME)

    # ---- the wire ------------------------------------------------------------------

    def _call(self, method: str, path: str, query: Mapping[str, object] | None = None,
              body: dict | None = None, public: bool = False) -> dict:
        timestamp = str(int(time.time()))
        params: dict[str, object] = {"partner_id": self._partner_id, "timestamp": timestamp}
        token, shop_id = ("", "") if public else (self._access_token, self._shop_id)
        if not public:
            params.update(access_token=token, shop_id=shop_id)
        params["sign"] = sign(self._partner_key, self._partner_id, path, timestamp, token, shop_id)
        params.update(query or {})
        self._wait_turn()
        try:
            response = self._http.request(method, self._host + path, params=params, json=body)
        except httpx.TransportError as error:  # timeouts and connection failures alike
            raise Unavailable(f"{path}: {type(error).__name__}", platform=PLATFORM) from error
        return _unwrap(path, response)

    # ---- after-sales (connectors.shopee_after_sales) ----------------------------------

    # The seller's contact email a dispute must carry; set by whoever runs the shop.
    dispute_email: str | None = None

    def fetch_after_sales(self, start: datetime, end: datetime):
        """Returns updated in [start, end), each once (`HandlesAfterSales`)."""
        from connectors import shopee_after_sales
        return shopee_after_sales.fetch_after_sales(self, start, end)

    def to_after_sales(self, raw):
        from connectors import shopee_after_sales
        return shopee_after_sales.to_after_sales(raw, self.shop_code)

    def answer_after_sales(self, request, decision):
        from connectors import shopee_after_sales
        return shopee_after_sales.answer_after_sales(self, request, decision)


def _ship_method(info: dict, tracking_number: str, channel_name: str) -> dict:
    """The one ship_order method of this channel that takes the seller's tracking number."""
    needed = info.get("info_needed") or {}
    for method in ("non_integrated", "dropoff"):
        if method in needed:
            return {method: {"tracking_number": tracking_number}}
    if "tracking_number" in (needed.get("pickup") or []):
        raise Rejected(f"{channel_name} needs a pickup slot as well; arrange it in Seller Centre",
                       platform=PLATFORM, code="pickup_needs_slot")
    raise Rejected(f"{channel_name} is integrated: Shopee books the pickup and issues the "
                   "tracking number, so ours cannot be pushed", platform=PLATFORM,
                   code="platform_issues_tracking")


def _response(body: dict, path: str) -> dict:
    inner = body.get("response")
    if not isinstance(inner, dict):
        raise Unavailable(f"{path}: answer lacks response", platform=PLATFORM, body=body)
    return inner


def _unwrap(path: str, response: httpx.Response) -> dict:
    status = response.status_code
    if status >= 500:
        raise Unavailable(f"{path}: HTTP {status}", platform=PLATFORM, code=status)
    try:
        body = response.json()
    except ValueError:
        if status == 429:
            raise _rate_limited(f"{path}: HTTP 429", 429, None, response) from None
        raise Unavailable(f"{path}: answer is not JSON", platform=PLATFORM) from None
    if not isinstance(body, dict):
        raise Unavailable(f"{path}: answer is not a JSON object", platform=PLATFORM)
    if body.get("error"):
        raise _translate(path, body, response)
    if status == 429:
        raise _rate_limited(f"{path}: HTTP 429", 429, body, response)
    if status != 200:
        raise Rejected(f"{path}: HTTP {status}", platform=PLATFORM, code=status, body=body)
    return body


def _translate(path: str, body: dict, response: httpx.Response) -> ConnectorError:
    code, message = str(body["error"]).strip(), str(body.get("message") or "")
    bare = code.removeprefix("common.")  # a module's own errors keep their prefix
    kind = ERROR_TRANSLATION.get(bare, Rejected)
    if bare == "error_auth" and "access_token" not in message:
        kind = Rejected  # "Invalid partner_id or shopid.": refreshing will not cure it
    text = f"{path}: {message}".strip()
    if kind is RateLimited:
        return _rate_limited(text, code, body, response)
    return kind(text, platform=PLATFORM, code=code, body=body)


def _rate_limited(text: str, code: object, body: object, response: httpx.Response) -> RateLimited:
    wait = RATE_LIMIT_WAIT_SECONDS
    if code in ("error_limit", "common.error_limit"):
        now = datetime.now(MARKET_TIME)
        tomorrow = now.date() + timedelta(days=1)
        midnight = datetime.combine(tomorrow, datetime.min.time(), MARKET_TIME)
        wait = (midnight - now).total_seconds()
    try:
        wait = float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        pass
    return RateLimited(text, retry_after=wait, platform=PLATFORM, code=code, body=body)
