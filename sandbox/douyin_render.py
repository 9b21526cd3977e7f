"""How the Douyin (抖店) simulator dresses a neutral order: Doudian's fields, codes and ciphers.

A shop order carries unix-second times, amounts as integers in fen, `order_status` codes of
reference §8.3 and a `sku_order_list` of sub-orders. Receiver data comes as masks
(`mask_post_*`) plus ciphertexts (`encrypt_post_receiver`, `encrypt_post_tel`,
`post_addr.encrypt_detail`); the plain fields stay empty. The ciphertext is a deterministic,
reversible stand-in bound to the order id, which the simulator's `order/batchDecrypt` opens.

A shop's products are its catalogue products, each with its SKUs and their seller codes
(`code`, 商家编码), as `product/listV2` and `sku/list` show them; ids derive from the
shop and the codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from sandbox.catalog import Product, shop_products, variant_name
from sandbox.model import SimLine, SimOrder

# neutral status -> Doudian order_status [H] (reference §8.3; Go struct comment)
STATUS_CODES = {"unpaid": 1, "paid": 2, "shipped": 3, "delivered": 5, "cancelled": 4}
STATUS_DESCRIPTIONS = {
    1: "待支付", 105: "已支付", 2: "备货中", 101: "部分发货", 3: "已发货", 4: "已取消", 5: "已完成",
}
# order/batchDecrypt data_type [H] (DOUDIAN-SDK api/order_batchDecrypt response comment)
ADDRESS, NAME, PHONE = 1, 2, 3

# --- UNVERIFIED (reference has no fact; chosen for the simulator) -------------------------
# main_status is an open question (Appendix C): the simulator echoes order_status into it.
MAIN_STATUS_ECHOES_ORDER_STATUS = True
# The promise to ship (exp_ship_time) after payment; Doudian's usual rule is not stored.
SHIP_PROMISE = timedelta(hours=48)
# pay_type 1 = 微信 is [H]; that every simulated buyer pays by WeChat is a choice.
PAY_TYPE_WECHAT = 1
# The look of Doudian's ciphertexts and masks is not in the reference: "#tag#blob##" for
# names and addresses, "$tag$blob$$" for phones; masks keep the first character of a
# name, the first 3 and last 4 digits of a phone, the first 3 characters of an address.
NAME_MASK_KEEP, PHONE_MASK_HEAD, PHONE_MASK_TAIL, ADDRESS_MASK_KEEP = 1, 3, 4, 3
# Shop and sub-order ids: 19 digits, as the app_key format suggests for ids; made up.
ORDER_ID_PREFIX = "6"
# Product ids are 19 digits (the SDK says so); SKU ids 16, as samples show. Every sandbox
# product is online and approved (status 0, check_status 3) since one moment.
PRODUCT_ID_BASE, SKU_ID_BASE = 3_500_000_000_000_000_000, 1_700_000_000_000_000
LISTED_AT = 1_704_067_200  # 2024-01-01
# --- end UNVERIFIED ----------------------------------------------------------------------

# Simulator-only key: ciphertexts must be stable across runs so payloads are reproducible.
CIPHER_KEY = b"douyin-sandbox-receiver-data"
CIPHER_VERSION = b"\x01dy"


# ---- identities and times ---------------------------------------------------------


def shop_order_id(order: SimOrder) -> str:
    """19 digits; an affine map mod 10^18 keeps it unique per neutral order id and stable."""
    return f"{ORDER_ID_PREFIX}{(order.order_id * 915_488_749 + 372_059_112_337) % 10**18:018d}"


def sku_order_id(line: SimLine) -> str:
    return f"{ORDER_ID_PREFIX}{(line.line_id * 604_171_283 + 118_342_907_561) % 10**18:018d}"


def shop_id_of(shop: str) -> int:
    """A stable numeric shop id for a simulated shop name."""
    return 10_000_000 + int.from_bytes(hashlib.sha1(shop.encode()).digest()[:4], "big") % 90_000_000


def seconds(moment: datetime | None) -> int:
    """Unix seconds; Doudian sends 0 for an instant that has not happened."""
    if moment is None:
        return 0
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


def pay_time(order: SimOrder) -> datetime | None:
    """The neutral model has no payment instant: a paid order is taken as paid at creation."""
    return None if order.status in ("unpaid", "cancelled") else order.created_at


def ship_time(order: SimOrder) -> datetime | None:
    if order.status not in ("shipped", "delivered"):
        return None
    stamps = [e["shipped_at"] for e in order.tracking if isinstance(e.get("shipped_at"), datetime)]
    if stamps:
        return stamps[-1]
    halfway = order.created_at + (order.updated_at - order.created_at) / 2
    return order.updated_at if order.status == "shipped" else halfway


def fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


# ---- masks and the stand-in ciphertext ----------------------------------------------


def _digits(text: str) -> str:
    # isdecimal() + int() also reads the full-width digits buyers type with Chinese IMEs.
    digits = "".join(str(int(ch)) for ch in text if ch.isdecimal())
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    if len(digits) == 15 and digits.startswith("0086"):
        return digits[4:]
    return digits


def mask_name(name: str) -> str:
    return name[:NAME_MASK_KEEP] + "*" * max(len(name) - NAME_MASK_KEEP, 1) if name else ""


def mask_phone(phone: str) -> str:
    digits = _digits(phone)
    if len(digits) <= PHONE_MASK_HEAD + PHONE_MASK_TAIL:
        return "*" * len(digits)
    return digits[:PHONE_MASK_HEAD] + "****" + digits[-PHONE_MASK_TAIL:]


def mask_detail(detail: str) -> str:
    if len(detail) <= ADDRESS_MASK_KEEP:
        return "*" * len(detail)
    return detail[:ADDRESS_MASK_KEEP] + "****"


def _keystream(nonce: bytes, length: int) -> bytes:
    blocks = -(-length // 32)
    seed = CIPHER_KEY + nonce
    return b"".join(hashlib.sha256(seed + bytes([n])).digest() for n in range(blocks))[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


@lru_cache(maxsize=16_384)
def encrypt(plaintext: str, data_type: int, auth_id: str) -> str:
    """Deterministic stand-in for Doudian's ciphertext (not real cryptography).

    The order id (Doudian's `auth_id`) is sealed in, so only a decrypt naming the order the
    ciphertext came with opens it, as on the platform.
    """
    body = bytes([data_type]) + auth_id.encode() + b"\x00" + plaintext.encode("utf-8")
    nonce = hmac.digest(CIPHER_KEY, body, "sha256")[:12]
    blob = base64.b64encode(CIPHER_VERSION + nonce + _xor(body, _keystream(nonce, len(body))))
    tag = base64.b64encode(nonce[:3]).decode()
    sep = "$" if data_type == PHONE else "#"
    return f"{sep}{tag}{sep}{blob.decode()}{sep}{sep}"


def decrypt(ciphertext: str) -> tuple[int, str, str] | None:
    """(data_type, auth_id, plaintext), or None for anything this simulator did not seal."""
    sep = ciphertext[:1]
    parts = ciphertext.split(sep) if sep in ("#", "$") else []
    if len(parts) != 5:
        return None
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except ValueError:
        return None
    head = len(CIPHER_VERSION)
    nonce, sealed = raw[head : head + 12], raw[head + 12 :]
    body = _xor(sealed, _keystream(nonce, len(sealed)))
    genuine = hmac.digest(CIPHER_KEY, body, "sha256")[:12] == nonce
    if not raw.startswith(CIPHER_VERSION) or not genuine:
        return None
    auth_id, _, plaintext = body[1:].partition(b"\x00")
    return body[0], auth_id.decode(), plaintext.decode("utf-8", errors="replace")


# ---- the shop order payload -----------------------------------------------------------


def _region(name: str | None, scope: str) -> dict:
    """A named region with a stable made-up area id, as post_addr nests them."""
    if not name:
        return {"name": "", "id": ""}
    area_id = int(hashlib.sha1(f"{scope}|{name}".encode()).hexdigest()[:6], 16)
    return {"name": name, "id": str(area_id)}


def _addresses(order: SimOrder, order_id: str) -> tuple[dict, dict]:
    detail = order.address or ""
    regions = {
        "province": _region(order.province, "p"), "city": _region(order.city, "c"),
        "town": _region(order.district, "t"), "street": {"name": "", "id": ""},
    }
    sealed = encrypt(detail, ADDRESS, order_id) if detail else ""
    return ({**regions, "detail": "", "encrypt_detail": sealed},
            {**regions, "detail": mask_detail(detail)})


def render_sku_order(line: SimLine, parent_id: str, status: int, order: SimOrder) -> dict:
    key = line.sku or line.title
    price = fen(line.unit_price)
    return {
        "order_id": sku_order_id(line), "parent_order_id": parent_id, "order_level": 3,
        "order_status": status, "order_status_desc": STATUS_DESCRIPTIONS[status],
        "product_id": int(hashlib.sha1(f"product|{key}".encode()).hexdigest()[:12], 16),
        "product_name": line.title,
        "sku_id": int(hashlib.sha1(f"sku|{key}".encode()).hexdigest()[:12], 16),
        "code": line.sku or "", "out_sku_id": "", "out_product_id": "",
        "item_num": line.quantity, "origin_amount": price, "sum_amount": price * line.quantity,
        "pay_amount": price * line.quantity, "spec": [], "goods_type": 0,
        "create_time": seconds(order.created_at), "update_time": seconds(order.updated_at),
    }


def render_order(order: SimOrder) -> dict:
    order_id = shop_order_id(order)
    status = STATUS_CODES[order.status]
    paid = pay_time(order)
    goods = sum((line.unit_price * line.quantity for line in order.lines), Decimal("0"))
    post_addr, mask_post_addr = _addresses(order, order_id)
    name, phone = order.receiver_name or "", order.phone or ""
    return {
        "order_id": order_id, "order_level": 2, "shop_id": shop_id_of(order.shop),
        "order_status": status, "order_status_desc": STATUS_DESCRIPTIONS[status],
        "main_status": status if MAIN_STATUS_ECHOES_ORDER_STATUS else 0,
        "main_status_desc": STATUS_DESCRIPTIONS[status],
        "create_time": seconds(order.created_at), "update_time": seconds(order.updated_at),
        "pay_time": seconds(paid), "exp_ship_time": seconds(paid + SHIP_PROMISE if paid else None),
        "ship_time": seconds(ship_time(order)),
        "finish_time": seconds(order.updated_at if order.status == "delivered" else None),
        "order_amount": fen(goods + order.shipping_fee),
        "pay_amount": fen(goods + order.shipping_fee),
        "post_amount": fen(order.shipping_fee), "promotion_amount": 0, "promotion_shop_amount": 0,
        "promotion_platform_amount": 0, "modify_amount": 0,
        "pay_type": PAY_TYPE_WECHAT if paid else 0,
        "buyer_words": order.note, "seller_words": "", "seller_remark_stars": 0,
        "post_receiver": "", "encrypt_post_receiver": encrypt(name, NAME, order_id) if name else "",
        "post_tel": "", "encrypt_post_tel": encrypt(phone, PHONE, order_id) if phone else "",
        "post_addr": post_addr,
        "mask_post_receiver": mask_name(name), "mask_post_tel": mask_phone(phone),
        "mask_post_addr": mask_post_addr,
        "doudian_open_id": hashlib.sha1(f"buyer|{order.buyer_id}".encode()).hexdigest(),
        "logistics_info": [
            {"tracking_no": entry["tracking_number"], "company": entry["company_code"],
             "company_name": entry.get("company_name", ""), "delivery_id": "",
             "ship_time": seconds(entry["shipped_at"]), "product_info": []}
            for entry in order.tracking if entry.get("platform") == "douyin"
        ],
        "sku_order_list": [render_sku_order(line, order_id, status, order) for line in order.lines],
    }


# ---- the shop's products and SKUs -----------------------------------------------------


def _stable_number(text: str, digits: int) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big") % 10**digits


@dataclass(frozen=True)
class ListedProduct:
    product_id: int
    product: Product

    @property
    def sku_ids(self) -> dict[int, str]:
        """sku_id -> seller code; every Doudian product has at least one SKU."""
        return {SKU_ID_BASE + _stable_number(f"sku|{self.product_id}|{code}", 14): code
                for code in self.product.skus}


def listed_products(shop: str, codes: list[str]) -> dict[int, ListedProduct]:
    """product_id -> product of the shop, in listing order."""
    products = (ListedProduct(PRODUCT_ID_BASE + _stable_number(f"product|{shop}|{p.name}", 17), p)
                for p in shop_products(codes))
    return {listed.product_id: listed for listed in products}


def render_product(listed: ListedProduct) -> dict:
    """One entry of product/listV2's data."""
    return {
        "product_id": listed.product_id, "name": listed.product.name, "status": 0,
        "check_status": 3, "product_type": 0, "img": "", "outer_product_id": "",
        "create_time": LISTED_AT, "update_time": LISTED_AT, "is_package_product": False,
    }


def render_sku(listed: ListedProduct, sku_id: int, code: str, stock: dict[str, int]) -> dict:
    """One entry of sku/list's data: ordinary stock (sku_type 0), nothing pre-held."""
    return {
        "id": sku_id, "product_id": listed.product_id, "product_id_str": str(listed.product_id),
        "code": code, "out_sku_id": 0, "sku_type": 0, "stock_num": stock.get(code, 0),
        "prehold_stock_num": 0, "prom_stock_num": 0, "step_stock_num": 0,
        "spec_detail_name1": variant_name(code), "price": 0, "create_time": LISTED_AT,
    }
