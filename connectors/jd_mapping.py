"""Reading a JD (JOS) order payload: the orderState table, China-time strings, yuan strings.

Pure functions from the camelCase JSON of `jingdong.pop.order.search` (reference §7.3) to
`RawOrder` and `Order`; no I/O. Every problem found in a payload is collected and raised
together as one `MappingError`. JD hands out masked consignee data (plaintext needs JD's
own TDE client SDK, which the reference does not document), so the receiver is kept as
masked text and flagged `masked`; nothing here guesses the real values. The SKUs of
`jingdong.sku.read.searchSkuList` are read into `Listing`s here too.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from connectors.base import Listing, RawOrder
from oms.domain.errors import MappingError
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

PLATFORM = "jd"
CHINA_TIME = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# JD writes 'yyyy-MM-dd HH:mm:ss'; a trailing '.0' (seen from Java serialisers) is allowed.
_CHINA_TEXT = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,3})?")

S = OrderStatus
# Every orderState of reference §7.3 [M] -> our status. JD shows sellers no unpaid
# orders, so PENDING_PAYMENT has no JD state. Paused (PAUSE, POP_ORDER_PAUSE) and locked
# (LOCKED: a cancellation or dispute under way) orders are paid orders that must not
# ship yet; the internal model has no on-hold status, so they read as PAID and keep
# their JD state in `platform_status` for the ship step to check.
STATUS_TABLE: dict[str, OrderStatus] = {
    "WAIT_SELLER_STOCK_OUT": S.PAID,  # 等待出库
    "WAIT_SELLER_DELIVERY": S.PAID,  # 等待发货 (海外购 only)
    "WAIT_SEND_CODE": S.PAID,  # 等待发码 (LOC vouchers)
    "PAUSE": S.PAID,
    "POP_ORDER_PAUSE": S.PAID,
    "LOCKED": S.PAID,
    "WAIT_GOODS_RECEIVE_CONFIRM": S.SHIPPED,  # 等待确认收货
    "SEND_TO_DISTRIBUTION_CENER": S.SHIPPED,  # (sic) LBP/SOPL: sent to JD's centre
    "DISTRIBUTION_CENTER_RECEIVED": S.SHIPPED,  # LBP/SOPL: JD's centre has it
    "RECEIPTS_CONFIRM": S.DELIVERED,  # LBP/SOPL: receipt confirmed
    "FINISHED_L": S.DELIVERED,  # 完成
    "TRADE_CANCELED": S.CANCELLED,
}


def parse_china_time(text: object) -> datetime | None:
    """'yyyy-MM-dd HH:mm:ss' in China time -> aware UTC; None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    return _parse_china_text(text)


@lru_cache(maxsize=4096)
def _parse_china_text(text: str) -> datetime | None:
    found = _CHINA_TEXT.fullmatch(text)
    if found is None:
        return None
    try:
        local = datetime(*(int(part) for part in found.groups()), tzinfo=CHINA_TIME)
    except ValueError:
        return None
    return local.astimezone(timezone.utc)


def _order_id(payload: dict) -> str | None:
    value = payload.get("orderId")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)  # some SDKs hand JD's long ids over as numbers
    return value if isinstance(value, str) and value.strip().isdigit() else None


def raw_order(item: object) -> RawOrder:
    payload = item if isinstance(item, dict) else {"unreadable_item": item}
    return RawOrder(
        platform_order_id=_order_id(payload),
        platform_updated_at=parse_china_time(payload.get("modified")),
        payload=payload,
    )


def map_order(payload: dict, shop_code: str) -> Order:
    """The internal order for one JD order payload, or MappingError with every reason."""
    reasons: list[str] = []
    order_id = _order_id(payload)
    if order_id is None:
        reasons.append(f"orderId {payload.get('orderId')!r} is missing or not a JD order id")
    state = payload.get("orderState")
    status = STATUS_TABLE.get(state) if isinstance(state, str) else None
    if status is None:
        reasons.append(f"unknown orderState {state!r}")
    created_at = _required_time(payload, "orderStartTime", reasons)
    updated_at = _required_time(payload, "modified", reasons)
    paid_at = _optional_time(payload, "paymentConfirmTime", reasons)
    total = _money(payload, "orderPayment", reasons)
    freight = _money(payload, "freightPrice", reasons, default=Decimal("0"))
    lines = _lines(payload.get("itemInfoList"), reasons)
    receiver = _receiver(payload.get("consigneeInfo"), reasons)
    if reasons:
        raise MappingError(reasons)
    return Order(
        platform=PLATFORM, shop_code=shop_code,
        platform_order_id=order_id,  # type: ignore[arg-type]
        platform_status=state,  # type: ignore[arg-type]
        status=status, created_at=created_at, updated_at=updated_at,  # type: ignore[arg-type]
        currency="CNY", total_amount=total, shipping_fee=freight,
        receiver=receiver, lines=lines, paid_at=paid_at,
        # JD's opaque buyer id; its presence in order payloads is unverified (reference
        # §7.3 names it only as a search parameter), so a missing one is no error.
        buyer_ref=str(payload.get("open_id_buyer") or "") or None,
        buyer_note=str(payload.get("orderRemark") or ""),
    )


# ---- payload pieces --------------------------------------------------------------------


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
    if value in (None, "") and default is not None:
        return default
    amount = _decimal(value)
    if amount is None or amount < 0:
        reasons.append(f"{name} {value!r} is not an amount in yuan")
    return amount or Decimal("0")


def _decimal(value: object) -> Decimal | None:
    # JD sends strings; str() also keeps a number some SDK parsed from turning binary.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _lines(items: object, reasons: list[str]) -> list[OrderLine]:
    if not isinstance(items, list):
        reasons.append("itemInfoList is not a list")
        return []
    if not items:
        reasons.append("itemInfoList is empty")
    lines = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            reasons.append(f"itemInfoList[{index}] is not an object")
            continue
        count, price = _count(item.get("itemTotal")), _decimal(item.get("jdPrice"))
        if count is None or count <= 0:
            reasons.append(f"itemInfoList[{index}].itemTotal {item.get('itemTotal')!r} "
                           "is not a positive count")
        if price is None or price < 0:
            shown = item.get("jdPrice")
            reasons.append(f"itemInfoList[{index}].jdPrice {shown!r} is not an amount")
        outer = item.get("outerSkuId")
        lines.append(OrderLine(
            sku=(outer.strip() or None) if isinstance(outer, str) else None,
            quantity=count or 0, unit_price=price or Decimal("0"),
            title=str(item.get("skuName") or ""), platform_line_id=str(item.get("skuId") or ""),
        ))
    return lines


def _text(info: dict, name: str) -> str | None:
    value = info.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _receiver(info: object, reasons: list[str]) -> Receiver:
    """JD's masked consignee data as it came: readable regions, masked person and street."""
    if not isinstance(info, dict):
        reasons.append("consigneeInfo is not an object")
        return Receiver(masked=True)
    region = [_text(info, name) for name in ("province", "city", "county", "town")]
    # fullAddress repeats the region in front of the (masked) street; keep the street.
    address, prefix = _text(info, "fullAddress"), "".join(part or "" for part in region)
    if address and prefix and address.startswith(prefix):
        address = address[len(prefix):].strip() or None
    return Receiver(
        name=_text(info, "fullname"),
        phone=_text(info, "mobile") or _text(info, "telephone"),
        province=region[0],
        city=region[1],
        district=region[2],
        address=address,
        country_code="CN",
        masked=True,
    )


# ---- listings -------------------------------------------------------------------------


def sku_page(page: object) -> tuple[list[Listing], int]:
    """The listings of one searchSkuList `page` (SKUs without an outerId are left out, as
    nothing of ours could match them) and its totalItem; MappingError when unreadable."""
    data = page.get("data") if isinstance(page, dict) else None
    total = _count(page.get("totalItem")) if isinstance(page, dict) else None
    if not isinstance(data, list) or total is None:
        raise MappingError(["searchSkuList answered without page.data or page.totalItem"])
    listings = []
    for entry in data:
        sku_id = _count(entry.get("skuId")) if isinstance(entry, dict) else None
        ware_id = _count(entry.get("wareId")) if isinstance(entry, dict) else None
        if sku_id is None or ware_id is None:
            raise MappingError([f"searchSkuList gave a SKU without skuId or wareId: {entry!r}"])
        code = entry.get("outerId")
        if isinstance(code, str) and code.strip():
            listings.append(Listing(sku=code.strip(), item_id=str(ware_id), variant_id=str(sku_id),
                                    quantity=_count(entry.get("stockNum"))))
    return listings, total
