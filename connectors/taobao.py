"""Taobao / Tmall (TOP) connector: signed gateway calls, trades in, tracking numbers out.

Every call goes to `<base_url>/router/rest` with the system parameters (method, app_key,
session, China-time timestamp, sign...) in the query string and the business parameters
in the form body, signed together with MD5 over the sorted pairs (reference §5.1-5.2).
Trades are read with `taobao.trades.sold.increment.get` by modified time: a day (the
API refuses more) that fits one page in one call, a busier one in 30-minute slices, each
read from its last page back to the first as Taobao advises. Tracking goes back with
`taobao.logistics.offline.send`.
Stock goes out for listings read from `taobao.items.onsale.get` (items on sale, a page at
a time) and `taobao.item.skus.get` (their SKUs, 40 items a call): up to 20 SKUs of one item
in one `taobao.skus.quantity.update`, an item without SKUs with `taobao.item.quantity.update`,
always in full mode (type=1) so a repeated push sets the same number again.
Reading a trade into an `Order` is pure and lives in `connectors.taobao_mapping`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from connectors.base import (
    HttpConnection, Listing, PushResult, RawOrder, ShopAccess, StockLevel, StockPushOutcome,
    TokenGrant, gateway_json, platform_carrier_code,
)
from connectors.pacing import RequestRate, shop_bucket
from connectors.taobao_mapping import (  # noqa: F401  re-exported for callers and tests
    PLATFORM, STATUS_TABLE, OpenedReceiver, china_text, listed_skus, listings_of_items,
    map_order, onsale_page, opened_receiver, parse_china_time, raw_order,
)
from oms.domain.errors import (
    ConnectorError, MappingError, RateLimited, Rejected, TokenExpired, Unavailable,
)
from oms.domain.order import Order, Receiver

GATEWAY_PATH = "/router/rest"
MAX_PAGE_SIZE = 100  # [H]
DEFAULT_PAGE_SIZE = 50  # [H] 40-50 recommended for success rate
FETCH_SLICE = timedelta(minutes=30)  # [H] recommended span; the hard limit is one day
MODIFIED_WINDOW_LIMIT = timedelta(days=1)  # [H]
# Requests are rounded out to whole seconds at both ends: stay clear of the limit.
WIDEST_SLICE = MODIFIED_WINDOW_LIMIT - timedelta(seconds=2)
MAX_DECRYPT_QUERIES = 20  # [H]
# Our labels come from SF's e-waybill (scene 1001, 顺丰电子面单发货); another carrier would
# need its own scene code when carrier choice arrives.
LABEL_SCENE = "1001"
DECRYPT_SCENES = frozenset({"1001", "1002", "1003", "1004", "1005", "1006", "1007", "2001", "2002"})
TIMEOUT = httpx.Timeout(30.0, connect=10.0)

INCREMENT = "taobao.trades.sold.increment.get"
ONSALE = "taobao.items.onsale.get"
ITEM_SKUS = "taobao.item.skus.get"
SKUS_QUANTITY = "taobao.skus.quantity.update"
ITEM_QUANTITY = "taobao.item.quantity.update"
MAX_ITEM_PAGE = 200  # [H] items.onsale.get page_size
MAX_SKU_LOOKUP_ITEMS = 40  # [H] item.skus.get num_iids
MAX_SKUS_PER_UPDATE = 20  # [H] skus.quantity.update skuid_quantities
FULL_UPDATE = 1  # [H] type=1 sets the number; 2 would add it
ITEM_FIELDS = "num_iid,title,outer_id,num"
SKU_FIELDS = "sku_id,num_iid,outer_id,quantity"
# Oldest listed first: an item listed while we page lands on the last page instead of
# pushing every later item one place on (the default is newest first).
ITEM_ORDER = "list_time:asc"
# Refusals about the call itself (app, signature, session, method, version, permission):
# every listing would meet them, so they are raised. Any other refusal of a quantity
# update (code 15 isv.*, 40/41 arguments) is about its listing and is returned with it.
CALL_REFUSALS = frozenset({11, 12, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 34})
# The fields mapping reads; the increment API returns only what `fields` names.
TRADE_FIELDS = (
    "tid,status,type,created,pay_time,modified,consign_time,end_time,payment,total_fee,"
    "post_fee,discount_fee,adjust_fee,received_payment,buyer_open_uid,seller_nick,"
    "has_buyer_message,shipping_type,receiver_name,receiver_state,receiver_city,"
    "receiver_district,receiver_town,receiver_address,receiver_zip,receiver_mobile,"
    "receiver_phone,receiver_country,oaid,orders"
)
DETAIL_FIELDS = TRADE_FIELDS + ",buyer_message"  # fullinfo.get only

# --- UNVERIFIED (reference [L] or absent) ------------------------------------------------
# TOP's call limits depend on the app's level and are not in the reference.
REQUEST_RATE = RequestRate(per_second=40, burst=40)
# Throttling answers name the ban in sub_msg ("This ban will last for 2 more seconds").
BAN_SECONDS = re.compile(r"(\d+) more seconds")
RATE_LIMIT_WAIT_SECONDS = 2.0  # when sub_msg names no ban
# A refusal naming the item, not one SKU: the other SKUs of the batch were not the cause,
# so they are not retried one by one. The sub_code is the simulator's; TOP's is unknown.
ITEM_REFUSALS = frozenset({"isv.item-not-exist"})
UNVERIFIED_ERROR_CODES: dict[tuple[int, str], type[ConnectorError]] = {
    (10, ""): Unavailable,  # Service currently unavailable
}
# Our carrier -> taobao.logistics.companies.get `code`. The doc's only examples are POST
# and ZJS; these are the usual codes, JT's a guess. Check `logistics_companies()` first.
CARRIER_CODES: dict[str, str] = {
    "SF": "SF", "ZTO": "ZTO", "YTO": "YTO", "STO": "STO", "YUNDA": "YUNDA", "EMS": "EMS",
    "JD": "JD", "JT": "JTSD",
}
# --- end UNVERIFIED

# (code, sub_code prefix) -> our error; "" matches any sub_code. Everything not listed
# (bad signature 25, missing or bad arguments 40/41, isv.* refusals of code 15...) is
# permanent: Rejected. HTTP 5xx, timeouts and bodies that are not JSON are Unavailable.
ERROR_TRANSLATION: dict[tuple[int, str], type[ConnectorError]] = {
    (7, ""): RateLimited,  # App Call Limited [M]
    (8, ""): RateLimited,  # App Call Exceeds Limited Frequency [M]
    (27, ""): TokenExpired,  # Invalid session: expired or revoked [M]
    (15, "isp."): Unavailable,  # remote service error on Taobao's side [M]
    **UNVERIFIED_ERROR_CODES,
}


def response_key(method: str) -> str:
    return method.removeprefix("taobao.").replace(".", "_") + "_response"


def _wire_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def sign_params(params: Mapping[str, object], secret: str, method: str = "md5") -> str:
    """TOP's sign: over key+value of every non-empty parameter but `sign`, sorted by key;
    MD5 wraps them in the secret, `hmac` (HMAC-MD5) and `hmac-sha256` key with it."""
    pairs = ((key, _wire_value(params[key])) for key in sorted(params) if key != "sign")
    joined = "".join(key + value for key, value in pairs if value != "").encode("utf-8")
    key = secret.encode("utf-8")
    if method == "md5":
        return hashlib.md5(key + joined + key).hexdigest().upper()
    if method in ("hmac", "hmac-sha256"):
        return hmac.new(key, joined, "md5" if method == "hmac" else "sha256").hexdigest().upper()
    raise ValueError(f"unknown TOP sign_method {method!r}")


def modified_slices(
    start: datetime, end: datetime, span: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    """Cover [start, end) with half-open slices no longer than `span`."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("windows must be timezone-aware")
    while start < end:
        yield start, min(start + span, end)
        start += span


class TaobaoConnector(HttpConnection):
    platform = PLATFORM

    def __init__(
        self, access: ShopAccess, http: httpx.Client | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.shop_code = access.code
        self._app_key = access.credentials["app_key"]
        self._app_secret = access.credentials["app_secret"]
        self._session = access.credentials.get("access_token", "")
        self._url = access.base_url.rstrip("/") + GATEWAY_PATH
        self._page_size = page_size
        self._company_names: dict[str, str] | None = None
        self._connect(http, TIMEOUT, pacing=shop_bucket(PLATFORM, access.code, REQUEST_RATE))

    # ---- trades in ----------------------------------------------------------------------

    def fetch_orders(self, start: datetime, end: datetime) -> Iterator[list[RawOrder]]:
        """Trades modified in [start, end), oldest stretch first.

        Each stretch of up to a day is counted first; a quiet one comes whole in that one
        page, a busy one is read again in 30-minute slices, as Taobao recommends. TOP
        compares whole seconds: a request covers its slice rounded outwards and the answer
        is cut back to the slice, so a trade on a boundary is read once whether or not
        Taobao includes a window's end.
        """
        for wide_start, wide_end in modified_slices(start, end, WIDEST_SLICE):
            first, total = self._list_page(_window(wide_start, wide_end), 1, count=True)
            if total <= self._page_size:
                slices: Iterable = [(wide_start, wide_end, [first])]
            else:
                slices = ((a, b, self._slice_read_backwards(_window(a, b)))
                          for a, b in modified_slices(wide_start, wide_end, FETCH_SLICE))
            for slice_start, slice_end, pages in slices:
                for page in pages:
                    kept = [raw for raw in page if _within(raw, slice_start, slice_end)]
                    if kept:
                        yield kept

    def _slice_read_backwards(self, window: dict) -> list[list[RawOrder]]:
        """All pages of one window, read from the last page to the first.

        Trades come newest first. One modified while we read leaves the window and the
        older ones move up a place: reading backwards then repeats a trade instead of
        skipping one. Pages are returned oldest first, as they were read.
        """
        first, total = self._list_page(window, 1, count=True)
        if total <= self._page_size:
            return [first]
        last = math.ceil(total / self._page_size)
        pages, has_next = [], True
        beyond = last
        while has_next:  # the window grew while we counted: older trades spilled over
            page, has_next = self._list_page(window, beyond, count=False)
            pages.insert(0, page)
            beyond += 1
        for page_no in range(last - 1, 0, -1):
            pages.append(self._list_page(window, page_no, count=False)[0])
        return pages

    def _list_page(self, window: dict, page_no: int, count: bool) -> tuple[list[RawOrder], Any]:
        query = {"fields": TRADE_FIELDS, **window, "page_no": page_no,
                 "page_size": self._page_size, "use_has_next": not count}
        body = self._call(INCREMENT, query)
        wrapped = body.get("trades", {"trade": []})
        trades = wrapped.get("trade") if isinstance(wrapped, dict) else None
        marker = body.get("total_results" if count else "has_next")
        expected = int if count else bool
        if not isinstance(trades, list) or type(marker) is not expected:
            what = "total_results" if count else "has_next"
            raise Unavailable(f"{INCREMENT} answered without trades or {what}",
                              platform=PLATFORM, body=body)
        return [raw_order(trade) for trade in trades], marker

    def fetch_order(self, tid: str) -> RawOrder:
        detail = self._call("taobao.trade.fullinfo.get", {"tid": tid, "fields": DETAIL_FIELDS})
        return raw_order(detail.get("trade"))

    def to_order(self, raw: RawOrder) -> Order:
        return map_order(raw.payload, self.shop_code)

    def probe(self) -> None:
        """A one-trade page of the last minute: proves the app, signature and session."""
        now = datetime.now(timezone.utc)
        self._call(INCREMENT, {
            "fields": "tid", "start_modified": china_text(now - timedelta(minutes=1)),
            "end_modified": china_text(now), "page_no": 1, "page_size": 1, "use_has_next": True,
        })

    # ---- receivers --------------------------------------------------------------------

    def decrypt_receivers(
        self, trades: Iterable[tuple[str, str]], scene: str
    ) -> list[OpenedReceiver]:
        """Open (tid, oaid) pairs with taobao.top.oaid.decrypt, 20 to a call.

        `scene` is Taobao's purpose code (1001 SF e-waybill, 1002 四通一达, ... 2001
        after-sales). Pairs Taobao cannot open are missing from the answer.
        """
        if scene not in DECRYPT_SCENES:
            raise Rejected(f"decrypt scene {scene!r} is not one of {sorted(DECRYPT_SCENES)}",
                           platform=PLATFORM, code="unknown_scene")
        wanted = [{"tid": str(tid), "oaid": oaid, "scene": scene} for tid, oaid in trades]
        opened = []
        for first in range(0, len(wanted), MAX_DECRYPT_QUERIES):
            batch = wanted[first : first + MAX_DECRYPT_QUERIES]
            body = self._call("taobao.top.oaid.decrypt", {"query_list": batch})
            listed = body.get("receiver_list", {}).get("receiver") or []
            opened += [opened_receiver(item) for item in listed if isinstance(item, dict)]
        return opened

    def label_receivers(self, masked: Mapping[str, Receiver]) -> dict[str, Receiver]:
        """Plaintext receivers to print on e-waybills, for trades whose oaid Taobao opens.

        Trades whose receiver changed since we read them (`matched` false) are left out:
        their label would go to the old address.
        """
        pairs = [(tid, r.encrypted["oaid"]) for tid, r in masked.items() if r.encrypted.get("oaid")]
        if not pairs:
            return {}
        opened = self.decrypt_receivers(pairs, scene=LABEL_SCENE)
        return {item.tid: item.receiver for item in opened if item.matched}

    # ---- tracking out -----------------------------------------------------------------

    def push_tracking(
        self, platform_order_id: str, carrier: str, tracking_number: str
    ) -> PushResult:
        """Ship offline (自己联系物流); a repeat of a shipment Taobao already holds succeeds.

        After any refusal the trade is read: if a sub-order already carries this waybill
        with this carrier, an earlier push landed (maybe its answer was lost). A different
        waybill stays a refusal: replacing one is a person's decision.
        """
        company_code = platform_carrier_code(CARRIER_CODES, carrier, PLATFORM)
        request = {"tid": platform_order_id, "out_sid": tracking_number,
                   "company_code": company_code}
        sent = {"method": "taobao.logistics.offline.send", **request}
        try:
            response = self._call("taobao.logistics.offline.send", request)
        except Rejected as refusal:
            if not self._already_carries(platform_order_id, company_code, tracking_number):
                raise
            return PushResult(request=sent, response={"already_shipped_with_this_tracking": True,
                                                      "refusal": refusal.body})
        if response.get("shipping", {}).get("is_success") is not True:
            raise Rejected("Taobao did not confirm the shipment", platform=PLATFORM, body=response)
        return PushResult(request=sent, response=response)

    def _already_carries(self, tid: str, company_code: str, tracking_number: str) -> bool:
        try:
            lines = self.fetch_order(tid).payload.get("orders", {}).get("order", [])
            name = self.company_names().get(company_code)
        except (Rejected, AttributeError):
            return False
        return any(isinstance(line, dict) and line.get("invoice_no") == tracking_number
                   and line.get("logistics_company") == name for line in lines)

    def logistics_companies(self) -> list[dict[str, Any]]:
        """Taobao's own carrier list, to check CARRIER_CODES against."""
        body = self._call("taobao.logistics.companies.get", {"fields": "id,code,name,reg_mail_no"},
                          with_session=False)
        return list(body.get("logistics_companies", {}).get("logistics_company") or [])

    def company_names(self) -> dict[str, str]:
        if self._company_names is None:
            self._company_names = {c["code"]: c["name"] for c in self.logistics_companies()}
        return self._company_names

    # ---- stock out --------------------------------------------------------------------

    def list_listings(self) -> Iterator[list[Listing]]:
        """Pages of the shop's items on sale, as listings of their SKUs (or of the item when
        it has none); one page per items.onsale.get page."""
        size, page_no = min(self._page_size, MAX_ITEM_PAGE), 1
        while True:
            answer = self._call(ONSALE, {"fields": ITEM_FIELDS, "page_no": page_no,
                                         "page_size": size, "order_by": ITEM_ORDER})
            items, total = _read(onsale_page, answer, ONSALE)
            listings = self._listings_of(items)
            if listings:
                yield listings
            if not items or page_no * size >= total:
                return
            page_no += 1

    def _listings_of(self, items: list[dict]) -> list[Listing]:
        skus: list[dict] = []
        for first in range(0, len(items), MAX_SKU_LOOKUP_ITEMS):
            batch = items[first:first + MAX_SKU_LOOKUP_ITEMS]
            num_iids = ",".join(str(item["num_iid"]) for item in batch)
            answer = self._call(ITEM_SKUS, {"fields": SKU_FIELDS, "num_iids": num_iids})
            skus += _read(listed_skus, answer, ITEM_SKUS)
        return listings_of_items(items, skus)

    def push_stock(self, levels: list[StockLevel]) -> list[StockPushOutcome]:
        """Set absolute quantities: one skus.quantity.update per item for up to 20 of its
        SKUs, one item.quantity.update per item without SKUs."""
        outcomes: list[StockPushOutcome | None] = [None] * len(levels)
        by_item: dict[str, list[tuple[int, StockLevel]]] = {}
        for position, level in enumerate(levels):
            refusal = _unsendable(level)
            if refusal is not None:
                outcomes[position] = StockPushOutcome(level.listing.sku, level.quantity, refusal)
            elif level.listing.variant_id:
                by_item.setdefault(level.listing.item_id, []).append((position, level))
            else:
                outcomes[position] = self._set_one(level)
        for item_id, members in by_item.items():
            for first in range(0, len(members), MAX_SKUS_PER_UPDATE):
                batch = members[first:first + MAX_SKUS_PER_UPDATE]
                for position, outcome in self._set_item_skus(item_id, batch):
                    outcomes[position] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    def _set_item_skus(self, item_id: str, members: list[tuple[int, StockLevel]]
                       ) -> list[tuple[int, StockPushOutcome]]:
        pairs = ";".join(f"{level.listing.variant_id}:{level.quantity}" for _, level in members)
        request = {"num_iid": item_id, "skuid_quantities": pairs, "type": FULL_UPDATE}
        try:
            answer = self._call(SKUS_QUANTITY, request)
        except Rejected as refusal:
            if refusal.code in CALL_REFUSALS:
                raise
            said = refusal.body if isinstance(refusal.body, dict) else {}
            if len(members) > 1 and said.get("sub_code") not in ITEM_REFUSALS:
                # The batch stands or falls whole; one SKU at a time finds the one refused.
                return [(position, self._set_one(level)) for position, level in members]
            return [(position, StockPushOutcome(level.listing.sku, level.quantity, refusal,
                                                {"method": SKUS_QUANTITY, **request}, refusal.body))
                    for position, level in members]
        confirmed = _confirmed_skus(answer)
        return [(position, StockPushOutcome(
            level.listing.sku, level.quantity,
            None if level.listing.variant_id in confirmed else _unconfirmed(level, answer),
            {"method": SKUS_QUANTITY, **request}, answer)) for position, level in members]

    def _set_one(self, level: StockLevel) -> StockPushOutcome:
        listing = level.listing
        request: dict[str, object] = {"num_iid": listing.item_id, "quantity": level.quantity,
                                      "type": FULL_UPDATE}
        if listing.variant_id:
            request["sku_id"] = listing.variant_id
        sent = {"method": ITEM_QUANTITY, **request}
        try:
            answer = self._call(ITEM_QUANTITY, request)
        except Rejected as refusal:
            if refusal.code in CALL_REFUSALS:
                raise
            return StockPushOutcome(listing.sku, level.quantity, refusal, sent, refusal.body)
        item = answer.get("item")
        confirmed = isinstance(item, dict) and (not listing.variant_id
                                                or listing.variant_id in _confirmed_skus(answer))
        return StockPushOutcome(listing.sku, level.quantity,
                                None if confirmed else _unconfirmed(level, answer), sent, answer)

    # ---- tokens -----------------------------------------------------------------------

    def refresh_access(self, refresh_token: str) -> TokenGrant:
        """taobao.top.auth.token.refresh; only 服务市场 (service market) apps may refresh.

        Any refusal means the seller has to authorise the app again: a self-use app's
        session has a fixed length, and a refused refresh token will not come back.
        """
        if not refresh_token:
            raise _reauthorise("there is no refresh token", None)
        try:
            body = self._call("taobao.top.auth.token.refresh", {"refresh_token": refresh_token},
                              with_session=False)
        except Rejected as refusal:
            raise _reauthorise(f"Taobao refused the refresh ({refusal})", refusal) from refusal
        token = body.get("token_result")
        try:
            token = json.loads(token) if isinstance(token, str) else token
            access, lifetime = token["access_token"], int(token["expires_in"])
        except (ValueError, TypeError, KeyError):
            raise Unavailable("token refresh answered without a token", platform=PLATFORM) from None
        now = datetime.now(timezone.utc)
        refresh_seconds = token.get("re_expires_in")
        refresh_expires_at = now + timedelta(seconds=int(refresh_seconds)) if refresh_seconds else None
        self._session = access
        return TokenGrant(
            access_token=access, access_expires_at=now + timedelta(seconds=lifetime),
            refresh_token=token.get("refresh_token") or refresh_token,
            refresh_expires_at=refresh_expires_at,
        )

    # ---- the wire ---------------------------------------------------------------------

    def _call(self, method: str, business: Mapping[str, object], with_session: bool = True) -> dict:
        system = {"method": method, "app_key": self._app_key, "format": "json", "v": "2.0",
                  "sign_method": "md5", "timestamp": china_text(datetime.now(timezone.utc))}
        if with_session and self._session:
            system["session"] = self._session
        form = {key: _wire_value(value) for key, value in business.items()}
        system["sign"] = sign_params({**system, **form}, self._app_secret)
        self._wait_turn()
        try:
            response = self._http.post(self._url, params=system, data=form)
        except httpx.TransportError as error:  # timeouts and connection failures alike
            raise Unavailable(f"{method}: {type(error).__name__}", platform=PLATFORM) from error
        return _unwrap(method, response)

    # ---- after-sales (connectors.taobao_after_sales) -----------------------------------

    def fetch_after_sales(self, start: datetime, end: datetime):
        """Refunds modified in [start, end), each once (`HandlesAfterSales`)."""
        from connectors import taobao_after_sales
        return taobao_after_sales.fetch_after_sales(self, start, end)

    def to_after_sales(self, raw):
        from connectors import taobao_after_sales
        return taobao_after_sales.to_after_sales(raw, self.shop_code)

    def answer_after_sales(self, request, decision):
        from connectors import taobao_after_sales
        return taobao_after_sales.answer_after_sales(self, request, decision)


def _unwrap(method: str, response: httpx.Response) -> dict:
    status = response.status_code
    body = gateway_json(response, method, PLATFORM, RATE_LIMIT_WAIT_SECONDS)
    if isinstance(body, dict) and isinstance(body.get("error_response"), dict):
        raise _translate(method, body["error_response"])
    if status != 200:
        raise Rejected(f"{method}: HTTP {status}", platform=PLATFORM, code=status)
    inner = body.get(response_key(method)) if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise Unavailable(f"{method}: answer lacks {response_key(method)}", platform=PLATFORM)
    return inner


def _translate(method: str, error: dict) -> ConnectorError:
    try:
        code: int | str | None = int(error.get("code"))
    except (TypeError, ValueError):
        code = error.get("code")
    sub_code, sub_msg = str(error.get("sub_code") or ""), str(error.get("sub_msg") or "")
    message = f"{method}: {error.get('msg', '')} {sub_code} {sub_msg}".strip()
    matches = [(prefix, kind) for (known, prefix), kind in ERROR_TRANSLATION.items()
               if known == code and sub_code.startswith(prefix)]
    kind = max(matches, key=lambda match: len(match[0]))[1] if matches else Rejected
    if kind is RateLimited:
        ban = BAN_SECONDS.search(sub_msg)
        wait = float(ban.group(1)) if ban else RATE_LIMIT_WAIT_SECONDS
        return RateLimited(message, retry_after=wait, platform=PLATFORM, code=code, body=error)
    return kind(message, platform=PLATFORM, code=code, body=error)


def _reauthorise(why: str, refusal: Rejected | None) -> Rejected:
    return Rejected(
        f"{why}; the shop must be re-authorised: the seller has to grant the app access on "
        "Taobao again (only 服务市场 apps can refresh a session)",
        platform=PLATFORM, code=refusal.code if refusal else "reauthorisation_required",
        body=refusal.body if refusal else None,
    )


def _window(start: datetime, end: datetime) -> dict[str, str]:
    return {"start_modified": china_text(start.replace(microsecond=0)),
            "end_modified": china_text(_whole_second_up(end))}


def _whole_second_up(moment: datetime) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def _within(raw: RawOrder, start: datetime, end: datetime) -> bool:
    # A trade with no readable modified time is kept: it goes to the review queue.
    return raw.platform_updated_at is None or start <= raw.platform_updated_at < end


def _read(reader, answer: dict, method: str):
    """What `reader` makes of an answer; an answer it cannot read is Taobao's fault."""
    try:
        return reader(answer)
    except MappingError as error:
        raise Unavailable(f"{method}: {error}", platform=PLATFORM, body=answer) from error


def _unsendable(level: StockLevel) -> Rejected | None:
    """Why Taobao must not be asked at all: TOP ids are numbers, stock is 0 or more."""
    listing = level.listing
    if level.quantity < 0:
        return Rejected(f"{listing.sku}: quantity {level.quantity} is below zero; Taobao "
                        "sets stock of 0 or more", platform=PLATFORM, code="negative_quantity")
    if not listing.item_id.isdigit() or not (listing.variant_id or "0").isdigit():
        return Rejected(f"{listing.sku}: num_iid {listing.item_id!r} sku_id "
                        f"{listing.variant_id!r} is no Taobao listing", platform=PLATFORM,
                        code="not_a_taobao_listing")
    return None


def _confirmed_skus(answer: dict) -> set[str]:
    """The sku_ids a quantity update names in its answer's item.skus."""
    item = answer.get("item")
    wrapped = item.get("skus") if isinstance(item, dict) else None
    skus = wrapped.get("sku") if isinstance(wrapped, dict) else None
    return {str(sku.get("sku_id")) for sku in skus or [] if isinstance(sku, dict)}


def _unconfirmed(level: StockLevel, answer: dict) -> Unavailable:
    # Neither set nor refused: only a later push can tell, so it may be retried.
    return Unavailable(f"{level.listing.sku}: the quantity update did not confirm this SKU",
                       platform=PLATFORM, body=answer)
