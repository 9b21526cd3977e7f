"""The JD simulator's side of the wire: how a neutral order looks, and how it is found.

Times are China-time strings, amounts two-decimal strings in yuan, the state one of the
`orderState` values of reference §7.3, and receiver data is masked as JD's newer order
APIs hand it out: the reference documents no decrypt call (JD's TDE is a client SDK), so
no plaintext name, phone or street address ever leaves the simulator. `OrderIndex` finds
a shop's orders by JD's clocks and order ids; `spoil` breaks a payload for the
`malformed` fault. A shop's wares are its catalogue products, each with its SKUs and
their seller codes (`outerId`), as `jingdong.sku.read.searchSkuList` shows them.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

from sandbox.catalog import shop_products, variant_name
from sandbox.model import SandboxState, SimLine, SimOrder

CHINA_TIME = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# neutral status -> orderState (reference §7.3 [M]); see HIDDEN_STATUSES for "unpaid".
ORDER_STATES = {
    "paid": "WAIT_SELLER_STOCK_OUT",
    "shipped": "WAIT_GOODS_RECEIVE_CONFIRM",
    "delivered": "FINISHED_L",
    "cancelled": "TRADE_CANCELED",
}
STATE_REMARKS = {
    "WAIT_SELLER_STOCK_OUT": "等待出库",
    "WAIT_GOODS_RECEIVE_CONFIRM": "等待确认收货",
    "FINISHED_L": "完成",
    "TRADE_CANCELED": "取消",
}

# --- UNVERIFIED (reference §7.3 [L] / absent): the simulator's own choices --------------
# The reference lists no waiting-for-payment orderState, so JD is taken to show sellers
# no unpaid orders at all.
HIDDEN_STATUSES = frozenset({"unpaid"})
# The shapes of JD's masks are not in the reference; these follow the usual Chinese
# platform style (surname kept, 3+4 digits of a mobile kept, street cut short).
NAME_MASK_TAIL = "**"
ADDRESS_MASK = "****"
ADDRESS_KEPT_CHARS = 2
ORDER_TYPE_SOP = "22"  # [M] in the reference; every simulated order is a plain SOP order
PAY_TYPE_ONLINE = "4"  # [M] 4 = online payment; the simulator has no cash-on-delivery
# JD order ids are 11-12 digit numbers sent as strings; these bounds are the simulator's.
ORDER_ID_BASE, ORDER_ID_SPAN, ORDER_ID_FACTOR = 200_000_000_000, 10**11, 7_919_113
# Filler texts, and `open_id_buyer` as a returned field (the reference knows it only as
# a search parameter; JD's newer APIs give buyers opaque ids instead of the pin).
DELIVERY_TYPE, INVOICE_INFO = "任意时间", "不需要开具发票"
# Region ids are stable stand-ins, not JD's own region codes.
# Ware ids 11 digits and SKU ids 12 (recent JD ids are 11-14 digits); every sandbox SKU
# is on sale (status 1) since one moment, and priced at nothing the connector reads.
WARE_ID_BASE, SKU_ID_BASE = 10_000_000_000, 100_000_000_000
SKU_ON_SALE = 1
LISTED_AT = "2024-01-01 00:00:00"
# Fields searchSkuList returns when `field` names none (the doc does not say).
DEFAULT_SKU_FIELDS = ("skuId", "wareId")
# --- end


# ---- times, identities, money --------------------------------------------------------


def china_time(moment: datetime | None) -> str:
    return "" if moment is None else _china_text(moment)


@lru_cache(maxsize=8_192)
def _china_text(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(CHINA_TIME).strftime(TIME_FORMAT)


def jd_order_id(order: SimOrder) -> str:
    """12 digits; an affine map mod 10^11 keeps it unique per neutral order and stable."""
    return str(ORDER_ID_BASE + (order.order_id * ORDER_ID_FACTOR + 13_579) % ORDER_ID_SPAN)


def stable_number(text: str) -> int:
    """A stable stand-in for one of JD's numeric ids (sku, ware, vender, region)."""
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:4], "big") % 10**9


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def served_state(order: SimOrder) -> str | None:
    """The orderState JD shows for this order, or None while it is invisible (unpaid)."""
    return None if order.status in HIDDEN_STATUSES else ORDER_STATES.get(order.status)


def end_time(order: SimOrder) -> datetime | None:
    return order.updated_at if order.status in ("delivered", "cancelled") else None


# ---- masks ---------------------------------------------------------------------------


def mask_name(name: str) -> str:
    return name[:1] + NAME_MASK_TAIL if name else ""


def _digits(phone: str) -> str:
    # int() reads full-width digits too, which buyers typing in Chinese sometimes send.
    digits = "".join(str(int(ch)) for ch in phone if ch.isdigit())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix):]
    return digits


def mask_phone(phone: str) -> str:
    digits = _digits(phone)
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "****" + digits[-4:]


def mask_detail(detail: str) -> str:
    return detail[:ADDRESS_KEPT_CHARS] + ADDRESS_MASK if detail else ""


def consignee_info(order: SimOrder) -> dict:
    region = [order.province or "", order.city or "", order.district or ""]
    masked_phone = mask_phone(order.phone or "")
    return {
        "fullname": mask_name(order.receiver_name or ""),
        "mobile": masked_phone,
        "telephone": masked_phone,
        "fullAddress": "".join(region) + mask_detail(order.address or ""),
        "province": region[0], "city": region[1], "county": region[2], "town": "",
        "provinceId": str(stable_number(region[0])) if region[0] else "",
        "cityId": str(stable_number(region[0] + region[1])) if region[1] else "",
        "countyId": str(stable_number("".join(region))) if region[2] else "",
        "townId": "",
    }


# ---- the order payload ---------------------------------------------------------------


def render_item(line: SimLine) -> dict:
    product = line.sku or line.title
    return {
        "skuId": str(stable_number(f"sku|{product}|{line.line_id}")),
        "wareId": str(stable_number(f"ware|{product}")),
        "outerSkuId": line.sku or "",
        "skuName": line.title,
        "jdPrice": money(line.unit_price),
        "itemTotal": str(line.quantity),
        "giftPoint": "0",
        "productNo": "",
    }


def open_id(buyer_id: str) -> str:
    """An opaque, stable buyer id in place of JD's buyer pin."""
    return f"o{stable_number(f'buyer|{buyer_id}'):09d}" if buyer_id else ""


def render_order(order: SimOrder, state: str) -> dict:
    goods = sum((line.unit_price * line.quantity for line in order.lines), Decimal("0"))
    last = order.tracking[-1] if order.tracking else {}
    return {
        "orderId": jd_order_id(order),
        "venderId": str(stable_number(f"vender|{order.shop}")),
        "orderType": ORDER_TYPE_SOP, "payType": PAY_TYPE_ONLINE,
        "orderState": state, "orderStateRemark": STATE_REMARKS[state],
        "orderTotalPrice": money(goods), "orderSellerPrice": money(goods),
        "orderPayment": money(goods + order.shipping_fee),
        "freightPrice": money(order.shipping_fee), "sellerDiscount": "0.00",
        "deliveryType": DELIVERY_TYPE, "invoiceInfo": INVOICE_INFO,
        "orderRemark": order.note, "venderRemark": "",
        "orderStartTime": china_time(order.created_at),
        "orderEndTime": china_time(end_time(order)),
        "modified": china_time(order.updated_at),
        "paymentConfirmTime": china_time(order.created_at),  # paid as it is placed
        "consigneeInfo": consignee_info(order),
        "itemInfoList": [render_item(line) for line in order.lines],
        "couponDetailList": [],
        "pin": mask_name(order.buyer_id) if order.buyer_id else "",
        "open_id_buyer": open_id(order.buyer_id),
        "waybill": last.get("tracking_number", ""),
        "logisticsId": str(last.get("logi_copr_id", "")),
        "parentOrderId": "0",
    }


# ---- times on the wire ----------------------------------------------------------------


_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.\d{1,3})?(?:([+-])(\d{2})(\d{2}))?")


def parse_jd_time(text: str) -> datetime | None:
    """'yyyy-MM-dd HH:mm:ss' in China time, or JD-SEVEN's '...ss.000+0800'; aware UTC."""
    found = _TIMESTAMP.fullmatch(text or "")
    if found is None:
        return None
    try:
        local = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    zone = CHINA_TIME
    if found[2]:
        offset = timedelta(hours=int(found[3]), minutes=int(found[4]))
        zone = timezone(offset if found[2] == "+" else -offset)
    return local.replace(tzinfo=zone).astimezone(timezone.utc)


def seconds(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


# ---- the shop's orders, sorted once ---------------------------------------------------


def modified_clock(order: SimOrder) -> datetime:
    return order.updated_at


def created_clock(order: SimOrder) -> datetime:
    return order.created_at


@dataclass
class _Book:
    members: list[SimOrder]
    update_times: list[datetime]
    timelines: dict = field(default_factory=dict)
    by_id: dict[str, SimOrder] | None = None


class OrderIndex:
    """Each shop's visible orders sorted by modification and creation time, and by id.

    Sorting a shop on every page made many small windows cost windows × orders. Orders
    are changed in place by the generator and tests, so each lookup compares the shop's
    list and update times with those the index was built from and rebuilds on a change.
    Callers hold `state.lock`.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._books: dict[str, _Book] = {}

    def _book(self, shop: str) -> _Book:
        orders = self.state.shop_orders(shop)
        book = self._books.get(shop)
        update_times = [order.updated_at for order in orders]
        if book is None or book.members != orders:
            book = self._books[shop] = _Book(list(orders), update_times)
        elif update_times != book.update_times:
            book.update_times, book.timelines = update_times, {}
        return book

    def changed(self, shop: str) -> None:
        if shop in self._books:
            self._books[shop].timelines = {}

    def in_window(self, shop: str, clock, start: int, end: int) -> list[SimOrder]:
        """Visible orders whose `clock` second lies in [start, end], oldest first."""
        book = self._book(shop)
        if clock not in book.timelines:
            keyed = sorted((seconds(clock(o)), o.order_id, n)
                           for n, o in enumerate(book.members) if served_state(o) is not None)
            book.timelines[clock] = ([k[0] for k in keyed], [book.members[k[2]] for k in keyed])
        stamps, ordered = book.timelines[clock]
        return ordered[bisect_left(stamps, start):bisect_right(stamps, end)]

    def find(self, shop: str, order_id: str) -> SimOrder | None:
        book = self._book(shop)
        found = (book.by_id or {}).get(order_id)
        if found is None or jd_order_id(found) != order_id:
            book.by_id = {}
            for order in book.members:
                book.by_id.setdefault(jd_order_id(order), order)
            found = book.by_id.get(order_id)
        return found if found is not None and served_state(found) is not None else None


def spoil(body: dict) -> dict | None:
    """Break one order of a list or detail payload; None when there is no order to break."""
    inner = next(iter(body.values()))
    result = inner.get("searchorderinfo_result") or inner.get("orderDetailInfo") or {}
    orders = result.get("orderInfoList")
    target = orders[len(orders) // 2] if orders else result.get("orderInfo")
    if not isinstance(target, dict):
        return None
    target.pop("orderId", None)
    target["itemInfoList"] = json.dumps(target.get("itemInfoList"), ensure_ascii=False)
    return body


# ---- the shop's wares and SKUs --------------------------------------------------------


@dataclass(frozen=True)
class ListedSku:
    sku_id: int
    ware_id: int
    code: str  # the seller's outerId
    ware_title: str


def listed_skus(shop: str, codes: list[str]) -> dict[int, ListedSku]:
    """skuId -> SKU of the shop, wares in listing order and their SKUs under them."""
    found = {}
    for product in shop_products(codes):
        ware_id = WARE_ID_BASE + stable_number(f"ware|{shop}|{product.name}")
        for code in product.skus:
            sku_id = SKU_ID_BASE + stable_number(f"sku|{shop}|{code}")
            found[sku_id] = ListedSku(sku_id, ware_id, code, product.name)
    return found


def render_sku(listed: ListedSku, stock: dict[str, int], fields: list[str] | None) -> dict:
    """One SKU of searchSkuList's page.data, cut to `field` (JD answers only what it names)."""
    full = {
        "skuId": listed.sku_id, "wareId": listed.ware_id, "outerId": listed.code,
        "stockNum": stock.get(listed.code, 0), "status": SKU_ON_SALE,
        "skuName": f"{listed.ware_title} {variant_name(listed.code)}",
        "wareTitle": listed.ware_title, "created": LISTED_AT, "modified": LISTED_AT,
    }
    return {name: full[name] for name in fields or DEFAULT_SKU_FIELDS if name in full}
