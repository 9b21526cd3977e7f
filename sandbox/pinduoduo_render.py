"""How the Pinduoduo simulator dresses a neutral order: PDD's fields, codes and ciphertexts.

Times are China-time strings, amounts yuan doubles, statuses the (order, confirm, refund)
triple of reference §6.3, and receiver data is ciphertext plus masks while the order waits
for shipment. The ciphertext is a deterministic stand-in so payloads stay reproducible;
`decrypt` reverses it for the simulator's pdd.open.decrypt.batch.

A shop's goods are its catalogue products, each with its SKUs and their seller codes
(`outer_id`, 商家编码), as pdd.goods.list.get shows them; ids derive from shop and codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass
from functools import lru_cache

from sandbox.catalog import Product, shop_products, variant_name
from sandbox.model import SimLine, SimOrder

CHINA_TIME = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Simulator choice: PDD's usual promise is to ship within 48 h of the deal.
SHIP_PROMISE = timedelta(hours=48)

# neutral status -> (order_status, confirm_status, refund_status); see reference §6.3
# A cancelled order is a deal called off (已取消) with the money returned (退款成功).
STATUS_CODES = {
    "unpaid": (1, 0, 1), "paid": (1, 1, 1), "shipped": (2, 1, 1), "delivered": (3, 1, 1),
    "cancelled": (1, 2, 4),
}

# pdd.open.decrypt.batch data_type values (reference §6.3)
NAME, PHONE, FULL_ADDRESS, DETAIL_ADDRESS = 5, 6, 7, 8
# Simulator-only key: ciphertexts must be stable across runs so payloads are reproducible.
PII_KEY = b"pdd-sandbox-receiver-data"
CIPHER_VERSION = b"\x02\x00\x00\x00\x00\x00"  # base64 "AgAAAAAA": real ciphertexts start "AgAAAA"


# ---- times and identities ----------------------------------------------------------


def china_time(moment: datetime | None) -> str:
    return "" if moment is None else _china_text(moment)


# An order shows its creation instant four times (created, confirmed, paid, in order_sn)
# and strftime is the costliest step of rendering, so formatted instants are remembered.
@lru_cache(maxsize=8_192)
def _china_text(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(CHINA_TIME).strftime(TIME_FORMAT)


def order_sn(order: SimOrder) -> str:
    """'YYMMDD-' plus 15 digits; an affine map mod 10^15 keeps it unique and stable."""
    scrambled = (order.order_id * 761_838_257 + 287_346_502_836) % 10**15
    return f"{china_time(order.created_at)[2:10].replace('-', '')}-{scrambled:015d}"


def confirm_time(order: SimOrder) -> datetime | None:
    """The neutral model has no payment instant; a PDD order is created as it is paid."""
    return None if order.status in ("unpaid", "cancelled") else order.created_at


def update_time(order: SimOrder) -> datetime | None:
    """PDD lists every order that became a deal by update time; unpaid ones never show."""
    return None if order.status == "unpaid" else order.updated_at


def shipping_time(order: SimOrder) -> datetime | None:
    if order.status not in ("shipped", "delivered"):
        return None
    stamps = [e["shipped_at"] for e in order.tracking if isinstance(e.get("shipped_at"), datetime)]
    if stamps:
        return stamps[-1]
    # generated orders carry no ship instant: the last update for shipped ones, else halfway
    halfway = order.created_at + (order.updated_at - order.created_at) / 2
    return order.updated_at if order.status == "shipped" else halfway


# ---- masks and the stand-in ciphertext ---------------------------------------------


def mask_name(name: str) -> str:
    """'林*坤': first and last character kept; also the phone mask's shape over digits."""
    if len(name) <= 2:
        return name[:1] + "*" * (len(name) - 1)
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_phone(phone: str) -> str:
    """First and last digit kept, as in the reference's sample '1*********5'."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return mask_name(digits)


def mask_address(detail: str) -> str:
    # Simulator choice: the shape of PDD's address mask is not in the reference.
    return detail[:3] + "****" if len(detail) > 3 else "*" * len(detail)


def _keystream(nonce: bytes, length: int) -> bytes:
    seed, blocks = PII_KEY + nonce, -(-length // 32)  # whole 32-byte SHA-256 blocks
    return b"".join([hashlib.sha256(seed + bytes([n])).digest() for n in range(blocks)])[:length]


def _nonce(body: bytes) -> bytes:
    return hmac.digest(PII_KEY, body, "sha256")[:12]


def _xor(data: bytes, stream: bytes) -> bytes:
    # One big-integer XOR instead of a Python loop per byte: rendering seals five fields
    # of every order waiting for shipment, so this sits on every list request's path.
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream[: len(data)], "big")
    return mixed.to_bytes(len(data), "big")


@lru_cache(maxsize=16_384)
def encrypt(plaintext: str, data_type: int) -> str:
    """Deterministic, reversible stand-in for PDD's ciphertext (not real cryptography).

    Pure, so cached: backward paging renders each slice's first page twice.
    """
    body = bytes([data_type]) + plaintext.encode("utf-8")
    nonce = _nonce(body)
    blob = base64.b64encode(CIPHER_VERSION + nonce + _xor(body, _keystream(nonce, len(body))))
    tag = base64.b64encode(nonce[:6]).decode()
    return f"${tag}${blob.decode()}$0$$" if data_type == PHONE else f"~{blob.decode()}~{tag}~0~~"


def decrypt(ciphertext: str) -> tuple[int, str] | None:
    parts = ciphertext.split("$") if ciphertext.startswith("$") else ciphertext.split("~")
    if len(parts) < 3:
        return None
    try:
        raw = base64.b64decode(parts[2] if ciphertext.startswith("$") else parts[1], validate=True)
    except ValueError:
        return None
    head = len(CIPHER_VERSION)
    nonce, sealed = raw[head : head + 12], raw[head + 12 :]
    body = _xor(sealed, _keystream(nonce, len(sealed)))
    if not raw.startswith(CIPHER_VERSION) or not body or _nonce(body) != nonce:
        return None
    return body[0], body[1:].decode("utf-8", errors="replace")


def receiver_fields(order: SimOrder, awaiting_shipment: bool) -> dict:
    name, phone, detail = order.receiver_name or "", order.phone or "", order.address or ""
    region = "".join(part or "" for part in (order.province, order.city, order.district))

    def sealed(value: str, data_type: int) -> str:
        # PDD hands out ciphertext only while the order is 待发货; afterwards "".
        return encrypt(value, data_type) if awaiting_shipment and value else ""

    return {
        "receiver_name": sealed(name, NAME), "receiver_name_mask": mask_name(name),
        "receiver_phone": sealed(phone, PHONE), "receiver_phone_mask": mask_phone(phone),
        "receiver_address": sealed(detail, DETAIL_ADDRESS),
        "receiver_address_mask": mask_address(detail),
        "address": sealed(region + detail, FULL_ADDRESS),
        "address_mask": region + mask_address(detail),
        "open_address_id": sealed(f"{name}|{phone}|{region}{detail}", FULL_ADDRESS),
    }


# ---- the order payload -------------------------------------------------------------


def _stable_id(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:5], "big")


def render_item(line: SimLine) -> dict:
    return {
        "goods_id": _stable_id(f"goods|{line.sku or line.title}"), "goods_name": line.title,
        "goods_price": float(line.unit_price), "goods_count": line.quantity,
        "goods_spec": "", "goods_img": "", "outer_goods_id": "",
        "sku_id": _stable_id(f"sku|{line.sku or line.title}|{line.line_id}"),
        "outer_id": line.sku or "",
    }


def render_order(order: SimOrder) -> dict:
    order_status, confirm_status, refund_status = STATUS_CODES[order.status]
    confirmed = confirm_time(order)
    goods_amount = sum(line.unit_price * line.quantity for line in order.lines)
    last = order.tracking[-1] if order.tracking else {}
    return {
        "order_sn": order_sn(order), "order_status": order_status,
        "confirm_status": confirm_status, "refund_status": refund_status,
        "after_sales_status": 0, "group_status": 1 if confirm_status == 1 else 0,
        "risk_control_status": 0, "trade_type": 0,
        "created_time": china_time(order.created_at),
        "confirm_time": china_time(confirmed), "pay_time": china_time(confirmed),
        "shipping_time": china_time(shipping_time(order)),
        "receive_time": china_time(order.updated_at if order.status == "delivered" else None),
        "updated_at": china_time(order.updated_at),
        "last_ship_time": china_time(confirmed + SHIP_PROMISE if confirmed else None),
        "goods_amount": float(goods_amount), "pay_amount": float(goods_amount + order.shipping_fee),
        "postage": float(order.shipping_fee), "discount_amount": 0.0,
        "seller_discount": 0.0, "platform_discount": 0.0, "pay_type": "WEIXIN",
        "country": "中国", "province": order.province or "", "city": order.city or "",
        "town": order.district or "",
        **receiver_fields(order, awaiting_shipment=(order_status, confirm_status) == (1, 1)),
        "tracking_number": last.get("tracking_number", ""),
        "logistics_id": last.get("logistics_id", 0),
        "extra_delivery_list": [], "item_list": [render_item(line) for line in order.lines],
        "order_tag_list": [], "buyer_memo": order.note, "remark": "",
    }


# ---- the shop's goods -----------------------------------------------------------------


@dataclass(frozen=True)
class ListedGoods:
    goods_id: int
    product: Product

    @property
    def sku_ids(self) -> dict[int, str]:
        """sku_id -> seller SKU code; PDD goods always have at least one SKU."""
        return {_stable_id(f"sku|{self.goods_id}|{code}"): code for code in self.product.skus}


def listed_goods(shop: str, codes: list[str]) -> dict[int, ListedGoods]:
    """goods_id -> goods of the shop, in listing order."""
    goods = (ListedGoods(_stable_id(f"goods|{shop}|{p.name}"), p) for p in shop_products(codes))
    return {entry.goods_id: entry for entry in goods}


def render_goods(goods: ListedGoods, stock: dict[str, int]) -> dict:
    """One entry of pdd.goods.list.get's goods_list, its SKUs inline."""
    skus = [{"sku_id": sku_id, "outer_id": code, "outer_goods_id": "",
             "spec": variant_name(code), "sku_quantity": stock.get(code, 0), "is_sku_onsale": 1}
            for sku_id, code in goods.sku_ids.items()]
    return {
        "goods_id": goods.goods_id, "goods_name": goods.product.name, "thumb_url": "",
        "image_url": "", "is_more_sku": int(len(skus) > 1), "is_onsale": 1,
        "goods_quantity": sum(sku["sku_quantity"] for sku in skus), "sku_list": skus,
    }
