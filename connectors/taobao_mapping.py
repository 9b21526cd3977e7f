"""Reading a Taobao / Tmall `Trade`: the status table, China-time strings, yuan strings.

Pure functions from the JSON TOP sends (reference §5.4) to `RawOrder` and `Order`; no
I/O. Every problem found in a payload is collected and raised together as one
`MappingError`. The receiver stays as Taobao sends it: desensitised values to read, and
the `oaid` kept in `Receiver.encrypted["oaid"]` for `taobao.top.oaid.decrypt` or a
Cainiao waybill later. Nothing here decrypts; `opened_receiver` only reads what the
decrypt call answered. The items and SKUs a shop lists are read into `Listing`s here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from connectors.base import Listing, RawOrder
from oms.domain.errors import MappingError
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

PLATFORM = "taobao"
CURRENCY = "CNY"  # TOP amounts are yuan [H]
CHINA_TIME = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_PLAIN_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")

S = OrderStatus
# Every trade status of reference §5.4 [H] -> ours.
STATUS_TABLE: dict[str, OrderStatus] = {
    "TRADE_NO_CREATE_PAY": S.PENDING_PAYMENT,  # no Alipay trade yet
    "WAIT_BUYER_PAY": S.PENDING_PAYMENT,
    "PAY_PENDING": S.PENDING_PAYMENT,  # card payment still being confirmed
    "WAIT_PRE_AUTH_CONFIRM": S.PENDING_PAYMENT,  # 0元购 contract not yet confirmed
    # Paid, but Taobao forbids shipping for now: held where nothing is allocated or shipped.
    "PAID_FORBID_CONSIGN": S.PENDING_PAYMENT,
    "WAIT_SELLER_SEND_GOODS": S.PAID,
    # Part of it left from the back office; the rest still has to ship.
    "SELLER_CONSIGNED_PART": S.PAID,
    "WAIT_BUYER_CONFIRM_GOODS": S.SHIPPED,
    "TRADE_BUYER_SIGNED": S.DELIVERED,  # cash-on-delivery: signed for
    "TRADE_FINISHED": S.DELIVERED,
    "TRADE_CLOSED": S.CANCELLED,  # refunded in full after payment
    "TRADE_CLOSED_BY_TAOBAO": S.CANCELLED,  # closed before payment
}
# Sub-orders in these states must not be shipped (reference §5.4: TRADE_CLOSED_BY_TAOBAO).
CLOSED_LINE_STATUSES = frozenset({"TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO"})


def parse_china_time(text: object) -> datetime | None:
    """'yyyy-MM-dd HH:mm:ss' in China time -> aware UTC; None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    return _parse_china_text(text)


@lru_cache(maxsize=4096)
def _parse_china_text(text: str) -> datetime | None:
    try:
        if _PLAIN_TIME.fullmatch(text):  # the shape TOP writes, read without strptime
            local = datetime(int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                             int(text[14:16]), int(text[17:19]), tzinfo=CHINA_TIME)
        else:
            local = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CHINA_TIME)
        return local.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def china_text(moment: datetime) -> str:
    return moment.astimezone(CHINA_TIME).strftime(TIME_FORMAT)


def trade_id(payload: dict) -> str | None:
    """The tid as text; TOP sends a JSON number, digits in a string are read too."""
    value = payload.get("tid")
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    return None


def raw_order(item: object) -> RawOrder:
    payload = item if isinstance(item, dict) else {"unreadable_item": item}
    return RawOrder(
        platform_order_id=trade_id(payload),
        platform_updated_at=parse_china_time(payload.get("modified")),
        payload=payload,
    )


def map_order(payload: dict, shop_code: str) -> Order:
    """The internal order for one Taobao trade, or MappingError with every reason."""
    reasons: list[str] = []
    tid = trade_id(payload)
    if tid is None:
        reasons.append("tid is missing or not a number")
    platform_status = payload.get("status")
    status = STATUS_TABLE.get(platform_status) if isinstance(platform_status, str) else None
    if status is None:
        reasons.append(f"unknown trade status {platform_status!r}")
    created_at = _time(payload, "created", reasons, required=True)
    updated_at = _time(payload, "modified", reasons, required=True)
    paid_at = _time(payload, "pay_time", reasons)
    total = _money(payload, "payment", reasons, required=True)
    post_fee = _money(payload, "post_fee", reasons)
    lines = _lines(payload.get("orders"), reasons)
    if reasons:
        raise MappingError(reasons)
    return Order(
        platform=PLATFORM, shop_code=shop_code, platform_order_id=tid,  # type: ignore[arg-type]
        platform_status=platform_status, status=status,  # type: ignore[arg-type]
        created_at=created_at, updated_at=updated_at,  # type: ignore[arg-type]
        currency=CURRENCY, total_amount=total, shipping_fee=post_fee,
        receiver=_receiver(payload), lines=lines, paid_at=paid_at,
        buyer_ref=str(payload.get("buyer_open_uid") or "") or None,
        buyer_note=str(payload.get("buyer_message") or ""),
    )


# ---- payload pieces ---------------------------------------------------------------------


def _time(payload: dict, name: str, reasons: list[str], required: bool = False) -> datetime | None:
    value = payload.get(name)
    moment = parse_china_time(value)
    if moment is None and value not in (None, ""):
        reasons.append(f"{name} {value!r} is not a yyyy-MM-dd HH:mm:ss time")
    elif moment is None and required:
        reasons.append(f"{name} is missing")
    return moment


def _money(payload: dict, name: str, reasons: list[str], required: bool = False) -> Decimal:
    value = payload.get(name)
    if value in (None, "") and not required:
        return Decimal("0")
    amount = _decimal(value)
    if amount is None or amount < 0:
        reasons.append(f"{name} {value!r} is not an amount in yuan")
    return amount or Decimal("0")


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None  # TOP sends amounts as strings; a float here is already a corruption
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _lines(wrapped: object, reasons: list[str]) -> list[OrderLine]:
    items = wrapped.get("order") if isinstance(wrapped, dict) else None
    if not isinstance(items, list):
        reasons.append("orders is not an {'order': [...]} list of sub-orders")
        return []
    if not items:
        reasons.append("orders holds no sub-order")
    # A closed sub-order of a trade that still ships must not leave the warehouse.
    all_closed = all(isinstance(i, dict) and i.get("status") in CLOSED_LINE_STATUSES for i in items)
    lines = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            reasons.append(f"orders[{index}] is not an object")
            continue
        count, price = item.get("num"), _decimal(item.get("price"))
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            reasons.append(f"orders[{index}].num {count!r} is not a positive integer")
        if price is None or price < 0:
            reasons.append(f"orders[{index}].price {item.get('price')!r} is not an amount in yuan")
        if item.get("status") in CLOSED_LINE_STATUSES and not all_closed:
            continue
        lines.append(OrderLine(
            sku=_seller_sku(item), quantity=count if isinstance(count, int) else 0,
            unit_price=price or Decimal("0"), title=str(item.get("title") or ""),
            platform_line_id=str(item.get("oid") or ""),
        ))
    return lines


def _seller_sku(item: dict) -> str | None:
    """The seller's own code: the SKU's outer id, else the item's."""
    for key in ("outer_sku_id", "outer_iid"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _receiver(payload: dict) -> Receiver:
    """Desensitised values for reading; the oaid (with the tid) opens the real ones."""
    oaid = payload.get("oaid")
    return Receiver(
        name=_text(payload, "receiver_name"),
        phone=_text(payload, "receiver_mobile") or _text(payload, "receiver_phone"),
        province=_text(payload, "receiver_state"),
        # Province-level cities' counties come in receiver_district alone (doc note).
        city=_text(payload, "receiver_city") or _text(payload, "receiver_district"),
        district=_text(payload, "receiver_district") if _text(payload, "receiver_city") else None,
        address=_text(payload, "receiver_address"),
        postal_code=_text(payload, "receiver_zip"),
        country_code=_country(payload.get("receiver_country")),
        masked=True,
        encrypted={"oaid": oaid} if isinstance(oaid, str) and oaid else {},
    )


def _text(payload: dict, name: str) -> str | None:
    value = payload.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _country(value: object) -> str:
    # Domestic trades leave receiver_country empty or write 中国; a two-letter code is kept.
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z]{2}", value.strip()):
        return value.strip().upper()
    return "CN"


# ---- opened receivers ----------------------------------------------------------------


@dataclass(frozen=True)
class OpenedReceiver:
    """One answer of taobao.top.oaid.decrypt. Plaintext: never log it."""

    tid: str
    oaid: str
    matched: bool  # False: the trade's receiver changed since; read the trade again
    privacy_protection: bool  # the mobile is a virtual number with extension
    receiver: Receiver = field(repr=False)


def opened_receiver(item: dict) -> OpenedReceiver:
    """One receiver of taobao.top.oaid.decrypt's answer, in plain text."""
    receiver = Receiver(
        name=item.get("name") or None, phone=item.get("mobile") or item.get("phone") or None,
        province=item.get("state") or None, city=item.get("city") or None,
        district=item.get("district") or None, address=item.get("address_detail") or None,
        country_code="CN", masked=False,
    )
    return OpenedReceiver(
        tid=str(item.get("tid", "")), oaid=str(item.get("oaid", "")),
        matched=item.get("matched") is True,
        privacy_protection=item.get("privacy_protection") is True, receiver=receiver,
    )


# ---- listings -------------------------------------------------------------------------


def _whole(value: object) -> int | None:
    """A non-negative whole number TOP sent as a number (or as digits)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _wrapped(answer: dict, outer: str, inner: str, what: str) -> list[dict]:
    """TOP's `{"items": {"item": [...]}}` list; an empty list leaves the key out."""
    wrapped = answer.get(outer, {inner: []})
    entries = wrapped.get(inner) if isinstance(wrapped, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise MappingError([f"{what} answered without a {outer}.{inner} list"])
    return entries


def onsale_page(answer: dict) -> tuple[list[dict], int]:
    """The items and total_results of one taobao.items.onsale.get answer."""
    items = _wrapped(answer, "items", "item", "taobao.items.onsale.get")
    total = _whole(answer.get("total_results"))
    if total is None or any(_whole(item.get("num_iid")) is None for item in items):
        raise MappingError(["taobao.items.onsale.get gave no total_results, or an item "
                            "without num_iid"])
    return items, total


def listed_skus(answer: dict) -> list[dict]:
    """The SKUs of one taobao.item.skus.get answer."""
    skus = _wrapped(answer, "skus", "sku", "taobao.item.skus.get")
    if any(_whole(sku.get("num_iid")) is None or _whole(sku.get("sku_id")) is None for sku in skus):
        raise MappingError(["taobao.item.skus.get gave a SKU without num_iid or sku_id"])
    return skus


def listings_of_items(items: list[dict], skus: list[dict]) -> list[Listing]:
    """One listing per SKU that carries a seller code, and one per item without SKUs whose
    own outer_id is that code; items and SKUs without a code are not synced."""
    by_item: dict[int, list[dict]] = {}
    for sku in skus:
        by_item.setdefault(_whole(sku["num_iid"]), []).append(sku)  # type: ignore[arg-type]
    listings = []
    for item in items:
        num_iid = _whole(item["num_iid"])
        own = by_item.get(num_iid)  # type: ignore[arg-type]
        if own:
            listings += [Listing(sku=code, item_id=str(num_iid),
                                 variant_id=str(_whole(sku["sku_id"])),
                                 quantity=_whole(sku.get("quantity")))
                         for sku in own if (code := _code(sku))]
        elif code := _code(item):
            listings.append(Listing(sku=code, item_id=str(num_iid),
                                    quantity=_whole(item.get("num"))))
    return listings


def _code(entry: dict) -> str:
    value = entry.get("outer_id")
    return value.strip() if isinstance(value, str) else ""
