"""Reading a Pinduoduo order payload: the status table, China-time strings, yuan amounts.

Pure functions from the JSON PDD sends (reference §6.3) to `RawOrder` and `Order`; no I/O,
so the mapping can be tested on its own. Every problem found in a payload is collected
and raised together as one `MappingError`, so a reviewer sees all of them at once.
Receiver data stays as PDD sends it: masks to read, ciphertexts kept in
`Receiver.encrypted`; nothing here decrypts. The goods and SKUs of pdd.goods.list.get
are read into `Listing`s here too.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from connectors.base import Listing, RawOrder
from oms.domain.errors import MappingError
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

PLATFORM = "pdd"
CHINA_TIME = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# The exact shape PDD writes; anything looser goes the slow way through strptime.
_PLAIN_CHINA_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_CHINA_OFFSET = timedelta(hours=8)

S = OrderStatus
# (order_status, confirm_status, refund_status) -> our status. order_status: 1 待发货,
# 2 已发货待签收, 3 已签收; confirm_status: 0 未成交, 1 已成交, 2 已取消; refund_status:
# 1 none or closed, 2 after-sales in progress, 3 refunding, 4 refunded. A refund on a
# shipped order is after-sales business, not a status change, so it keeps SHIPPED.
STATUS_TABLE: dict[tuple[int, int, int], OrderStatus] = {
    (1, 0, 1): S.PENDING_PAYMENT,
    (1, 1, 1): S.PAID, (1, 1, 2): S.PAID, (1, 1, 3): S.PAID,
    (1, 1, 4): S.CANCELLED,  # refunded before it left: nothing to ship
    (1, 2, 1): S.CANCELLED, (1, 2, 4): S.CANCELLED,
    (2, 1, 1): S.SHIPPED, (2, 1, 2): S.SHIPPED, (2, 1, 3): S.SHIPPED, (2, 1, 4): S.SHIPPED,
    (3, 1, 1): S.DELIVERED, (3, 1, 2): S.DELIVERED, (3, 1, 3): S.DELIVERED, (3, 1, 4): S.DELIVERED,
}
STATUS_FIELDS = ("order_status", "confirm_status", "refund_status")


def parse_china_time(text: object) -> datetime | None:
    """'yyyy-MM-dd HH:mm:ss' in China time -> aware UTC; None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    return _parse_china_text(text)


# An order repeats its own instants (created = paid) and a page shares its minutes, so a
# small cache saves most of the parsing; datetimes are immutable, so sharing them is safe.
@lru_cache(maxsize=4096)
def _parse_china_text(text: str) -> datetime | None:
    try:
        if _PLAIN_CHINA_TIME.fullmatch(text):
            # Built from the digits directly: strptime is several times slower and every
            # order carries five of these.
            utc = datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                           int(text[14:16]), int(text[17:19]), tzinfo=timezone.utc)
            return utc - _CHINA_OFFSET
        local = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CHINA_TIME)
        return local.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def raw_order(item: object) -> RawOrder:
    payload = item if isinstance(item, dict) else {"unreadable_item": item}
    order_sn = payload.get("order_sn")
    return RawOrder(
        platform_order_id=order_sn if isinstance(order_sn, str) and order_sn else None,
        platform_updated_at=parse_china_time(payload.get("updated_at")),
        payload=payload,
    )


def order_from_payload(payload: dict, shop_code: str) -> Order:
    """The internal order for one PDD order payload, or MappingError with every reason."""
    reasons: list[str] = []
    order_sn = payload.get("order_sn")
    if not isinstance(order_sn, str) or not order_sn:
        reasons.append("order_sn is missing")
    codes = tuple(payload.get(name) for name in STATUS_FIELDS)
    readable = all(isinstance(c, int) and not isinstance(c, bool) for c in codes)
    status = STATUS_TABLE.get(codes) if readable else None  # type: ignore[arg-type]
    if status is None:
        reasons.append(f"unknown status (order, confirm, refund) = {codes}")
    created_at = _required_time(payload, "created_time", reasons)
    updated_at = _required_time(payload, "updated_at", reasons)
    paid_at = _optional_time(payload, "pay_time", reasons)
    ship_by = _optional_time(payload, "last_ship_time", reasons)
    total = _money(payload, "pay_amount", reasons)
    postage = _money(payload, "postage", reasons, default=Decimal("0"))
    lines = _lines(payload.get("item_list"), reasons)
    if reasons:
        raise MappingError(reasons)
    # With no reasons collected, order_sn, status and codes are known to be well formed.
    return Order(
        platform=PLATFORM, shop_code=shop_code,
        platform_order_id=order_sn,  # type: ignore[arg-type]
        platform_status=_platform_status(codes),  # type: ignore[arg-type]
        status=status, created_at=created_at, updated_at=updated_at,  # type: ignore[arg-type]
        currency="CNY",
        total_amount=total, shipping_fee=postage, receiver=_receiver(payload), lines=lines,
        paid_at=paid_at, ship_by=ship_by, buyer_note=str(payload.get("buyer_memo") or ""),
    )


# ---- payload pieces ------------------------------------------------------------------


# A few dozen triples exist, and formatting one for every order showed up in profiles.
@lru_cache(maxsize=64)
def _platform_status(codes: tuple[int, int, int]) -> str:
    return " ".join(f"{name}={code}" for name, code in zip(STATUS_FIELDS, codes))


def _required_time(payload: dict, name: str, reasons: list[str]) -> datetime:
    moment = _optional_time(payload, name, reasons)
    if moment is None and not payload.get(name):
        reasons.append(f"{name} is missing")
    return moment  # type: ignore[return-value]


def _optional_time(payload: dict, name: str, reasons: list[str]) -> datetime | None:
    value = payload.get(name)
    moment = parse_china_time(value)
    if moment is None and value not in (None, ""):
        reasons.append(f"{name} {value!r} is not a yyyy-MM-dd HH:mm:ss time")
    return moment


def _money(payload: dict, name: str, reasons: list[str], default: Decimal | None = None) -> Decimal:
    value = payload.get(name)
    if value is None and default is not None:
        return default
    amount = _decimal(value)
    if amount is None or amount < 0:
        reasons.append(f"{name} {value!r} is not an amount in yuan")
    return amount or Decimal("0")


def _decimal(value: object) -> Decimal | None:
    # str() first: a double such as 12.3 must become Decimal("12.3"), not its binary cousin.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _lines(items: object, reasons: list[str]) -> list[OrderLine]:
    if not isinstance(items, list):
        reasons.append("item_list is not a list")
        return []
    if not items:
        reasons.append("item_list is empty")
    lines = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            reasons.append(f"item_list[{index}] is not an object")
            continue
        count, price = item.get("goods_count"), _decimal(item.get("goods_price"))
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            reasons.append(f"item_list[{index}].goods_count {count!r} is not a positive integer")
        if price is None or price < 0:
            shown = item.get("goods_price")
            reasons.append(f"item_list[{index}].goods_price {shown!r} is not an amount")
        outer_id = item.get("outer_id")
        lines.append(OrderLine(
            sku=outer_id.strip() or None if isinstance(outer_id, str) else None,
            quantity=count if isinstance(count, int) else 0, unit_price=price or Decimal("0"),
            title=str(item.get("goods_name") or ""), platform_line_id=str(item.get("sku_id") or ""),
        ))
    return lines


def _receiver(payload: dict) -> Receiver:
    """Masks for reading; ciphertexts (present only while 待发货) kept for a decrypt later."""
    ciphertexts = {"name": payload.get("receiver_name"), "phone": payload.get("receiver_phone"),
                   "address": payload.get("receiver_address")}
    return Receiver(
        name=payload.get("receiver_name_mask") or None,
        phone=payload.get("receiver_phone_mask") or None,
        province=payload.get("province") or None,
        city=payload.get("city") or None,
        district=payload.get("town") or None,
        address=payload.get("receiver_address_mask") or None,
        country_code="CN",
        masked=True,
        encrypted={k: text for k, text in ciphertexts.items() if isinstance(text, str) and text},
    )


# ---- listings -------------------------------------------------------------------------


def _whole(value: object) -> int | None:
    """A non-negative id or count, sent as a number or as digits (the SDKs type both)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def goods_page(answer: dict) -> tuple[list[Listing], int, int]:
    """The listings of one pdd.goods.list.get answer (SKUs without outer_id are left out),
    how many goods the page held, and total_count; MappingError when unreadable."""
    goods, total = answer.get("goods_list"), _whole(answer.get("total_count"))
    if not isinstance(goods, list) or total is None:
        raise MappingError(["pdd.goods.list.get answered without goods_list or total_count"])
    listings = []
    for entry in goods:
        goods_id = _whole(entry.get("goods_id")) if isinstance(entry, dict) else None
        skus = entry.get("sku_list") if isinstance(entry, dict) else None
        if goods_id is None or not isinstance(skus, list):
            raise MappingError([f"pdd.goods.list.get gave goods without goods_id or "
                                f"sku_list: {entry!r}"])
        for sku in skus:
            sku_id = _whole(sku.get("sku_id")) if isinstance(sku, dict) else None
            if sku_id is None:
                raise MappingError([f"goods {goods_id} has a SKU without sku_id"])
            code = sku.get("outer_id")
            if isinstance(code, str) and code.strip():
                listings.append(Listing(
                    sku=code.strip(), item_id=str(goods_id), variant_id=str(sku_id),
                    quantity=_whole(sku.get("sku_quantity"))))
    return listings, len(goods), total
