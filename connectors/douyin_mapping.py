"""Reading a Douyin (抖店) shop order: the status table, unix seconds, amounts in fen.

Pure functions from the JSON `order/searchList` returns (reference §8.3) to `RawOrder` and
`Order`; no I/O. Every problem found in a payload is collected and raised together as one
`MappingError`. Receiver data stays as Doudian sends it: the masks to read, the
ciphertexts kept in `Receiver.encrypted` for a later `order/batchDecrypt`. The products
of `product/listV2` and the SKUs of `sku/list` are read here too.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from connectors.base import Listing, RawOrder
from oms.domain.errors import MappingError
from oms.domain.order import Order, OrderLine, OrderStatus, Receiver

PLATFORM = "douyin"
CURRENCY = "CNY"  # Doudian sells in mainland China only; amounts are fen of yuan

S = OrderStatus
# order_status -> our status; every value of reference §8.3 and the Go struct comment [H].
# `main_status` is an open question (Appendix C) and is not read.
STATUS_TABLE: dict[int, OrderStatus] = {
    1: S.PENDING_PAYMENT,  # 待确认/待支付
    105: S.PAID,  # 已支付 (before it turns 备货中)
    2: S.PAID,  # 备货中: waiting for shipment
    # 部分发货: parcels already left through the back-office. Our write-back ships an order
    # whole with one tracking number, so the pipeline must not ship it again; the rest is
    # the seller's to finish by hand.
    101: S.SHIPPED,
    3: S.SHIPPED,  # 已发货（全部发货）
    4: S.CANCELLED,  # 已取消
    5: S.DELIVERED,  # 已完成（已收货）
}


def from_unix_seconds(value: object) -> datetime | None:
    """Unix seconds -> aware UTC; None for 0 (not happened), absent or unreadable values."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def yuan_from_fen(value: object) -> Decimal | None:
    """An integer amount in fen as exact yuan (599 -> 5.99); None unless a whole number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdecimal():
        value = int(value)
    if not isinstance(value, int):
        return None
    return Decimal(value).scaleb(-2)


def raw_order(item: object) -> RawOrder:
    payload = item if isinstance(item, dict) else {"unreadable_item": item}
    order_id = payload.get("order_id")
    return RawOrder(
        platform_order_id=order_id if isinstance(order_id, str) and order_id else None,
        platform_updated_at=from_unix_seconds(payload.get("update_time")),
        payload=payload,
    )


def map_order(payload: dict, shop_code: str) -> Order:
    """The internal order for one Doudian shop order, or MappingError with every reason."""
    reasons: list[str] = []
    order_id = payload.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        reasons.append("order_id is missing")
    code = payload.get("order_status")
    known = isinstance(code, int) and not isinstance(code, bool) and code in STATUS_TABLE
    if not known:
        reasons.append(f"unknown order_status {code!r}")
    created_at = _required_time(payload, "create_time", reasons)
    updated_at = _required_time(payload, "update_time", reasons)
    paid_at = _optional_time(payload, "pay_time", reasons)
    ship_by = _optional_time(payload, "exp_ship_time", reasons)
    total = _money(payload, "pay_amount", reasons)
    postage = _money(payload, "post_amount", reasons, default=Decimal("0"))
    lines = _lines(payload.get("sku_order_list"), reasons)
    if reasons:
        raise MappingError(reasons)
    open_id = payload.get("doudian_open_id")
    return Order(
        platform=PLATFORM, shop_code=shop_code,
        platform_order_id=order_id,  # type: ignore[arg-type]
        platform_status=f"order_status={code}",
        status=STATUS_TABLE[code],  # type: ignore[index]
        created_at=created_at, updated_at=updated_at,  # type: ignore[arg-type]
        currency=CURRENCY, total_amount=total, shipping_fee=postage,
        receiver=_receiver(payload), lines=lines, paid_at=paid_at, ship_by=ship_by,
        buyer_ref=open_id if isinstance(open_id, str) and open_id else None,
        buyer_note=str(payload.get("buyer_words") or ""),
    )


# ---- payload pieces ------------------------------------------------------------------


def _optional_time(payload: dict, name: str, reasons: list[str]) -> datetime | None:
    value = payload.get(name)
    moment = from_unix_seconds(value)
    if moment is None and value not in (None, 0):
        reasons.append(f"{name} {value!r} is not a unix time in seconds")
    return moment


def _required_time(payload: dict, name: str, reasons: list[str]) -> datetime:
    value = payload.get(name)
    moment = _optional_time(payload, name, reasons)
    if value in (None, 0):
        reasons.append(f"{name} is missing")
    return moment  # type: ignore[return-value]


def _money(payload: dict, name: str, reasons: list[str], default: Decimal | None = None) -> Decimal:
    value = payload.get(name)
    if value is None and default is not None:
        return default
    amount = yuan_from_fen(value)
    if amount is None or amount < 0:
        reasons.append(f"{name} {value!r} is not a whole amount in fen")
    return amount or Decimal("0")


def _lines(items: object, reasons: list[str]) -> list[OrderLine]:
    if not isinstance(items, list):
        reasons.append("sku_order_list is not a list")
        return []
    if not items:
        reasons.append("sku_order_list is empty")
    lines = []
    for index, item in enumerate(items):
        where = f"sku_order_list[{index}]"
        if not isinstance(item, dict):
            reasons.append(f"{where} is not an object")
            continue
        count, price = item.get("item_num"), yuan_from_fen(item.get("origin_amount"))
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            reasons.append(f"{where}.item_num {count!r} is not a positive integer")
        if price is None or price < 0:
            reasons.append(f"{where}.origin_amount {item.get('origin_amount')!r} is not fen")
        lines.append(OrderLine(
            sku=_seller_sku(item), quantity=count if isinstance(count, int) else 0,
            unit_price=price or Decimal("0"), title=str(item.get("product_name") or ""),
            platform_line_id=str(item.get("order_id") or ""),
        ))
    return lines


def _seller_sku(item: dict) -> str | None:
    """The seller's own code: `code` (商家编码), else the external sku id."""
    for name in ("code", "out_sku_id"):
        value = item.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _region_name(address: dict, part: str) -> str | None:
    region = address.get(part)
    return _text(region.get("name")) if isinstance(region, dict) else None


def _street_and_detail(address: dict) -> str | None:
    """The part below the district: Doudian sends the street apart from the detail."""
    return _text((_region_name(address, "street") or "") + (_text(address.get("detail")) or ""))


def _receiver(payload: dict) -> Receiver:
    """Masks for reading, ciphertexts for a decrypt later; plain fields only as a fallback."""
    post_addr = payload.get("post_addr") if isinstance(payload.get("post_addr"), dict) else {}
    masked_addr = payload.get("mask_post_addr")
    masked_addr = masked_addr if isinstance(masked_addr, dict) else post_addr
    ciphertexts = {"name": payload.get("encrypt_post_receiver"),
                   "phone": payload.get("encrypt_post_tel"),
                   "address": post_addr.get("encrypt_detail")}
    return Receiver(
        name=_text(payload.get("mask_post_receiver")) or _text(payload.get("post_receiver")),
        phone=_text(payload.get("mask_post_tel")) or _text(payload.get("post_tel")),
        province=_region_name(masked_addr, "province") or _region_name(post_addr, "province"),
        city=_region_name(masked_addr, "city") or _region_name(post_addr, "city"),
        district=_region_name(masked_addr, "town") or _region_name(post_addr, "town"),
        address=_street_and_detail(masked_addr) or _street_and_detail(post_addr),
        country_code="CN",
        masked=True,
        encrypted={k: text for k, text in ciphertexts.items() if isinstance(text, str) and text},
    )


# ---- listings -------------------------------------------------------------------------


def _id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def product_page(data: object) -> tuple[list[int], int]:
    """The product ids of one product/listV2 page and its total; MappingError if unreadable."""
    products = data.get("data") if isinstance(data, dict) else None
    total = data.get("total") if isinstance(data, dict) else None
    if not isinstance(products, list) or isinstance(total, bool) or not isinstance(total, int):
        raise MappingError(["product/listV2 answered without data or total"])
    ids = [_id(p.get("product_id")) if isinstance(p, dict) else None for p in products]
    if None in ids:
        raise MappingError(["product/listV2 gave a product without product_id"])
    return ids, total  # type: ignore[return-value]


def product_listings(product_id: int, data: object) -> list[Listing]:
    """The listings of one product's sku/list answer; SKUs without a code are left out."""
    if not isinstance(data, list):
        raise MappingError([f"sku/list of product {product_id} is not a list"])
    listings = []
    for sku in data:
        sku_id = _id(sku.get("id")) if isinstance(sku, dict) else None
        if sku_id is None:
            raise MappingError([f"sku/list of product {product_id} has a SKU without id"])
        code, stock = sku.get("code"), sku.get("stock_num")
        if isinstance(code, str) and code.strip():
            listings.append(Listing(
                sku=code.strip(), item_id=str(product_id), variant_id=str(sku_id),
                quantity=stock if isinstance(stock, int) and not isinstance(stock, bool) else None))
    return listings
