"""How the Taobao simulator dresses a neutral order as a TOP `Trade` (reference §5.4).

Times are `yyyy-MM-dd HH:mm:ss` strings in China time, amounts decimal strings in yuan,
lists wrapped the way TOP's JSON wraps them (`"orders": {"order": [...]}`), and fields
without a value left out, as the gateway leaves them out. The receiver's name, phones and
street address are desensitised; what opens them is the `oaid` (Open Addressee ID),
which `taobao.top.oaid.decrypt` turns back into the receiver together with the `tid`.

A shop's items (宝贝) are its catalogue products: `taobao.items.onsale.get` shows the item
with the seller's outer_id when it has no SKUs, `taobao.item.skus.get` shows each SKU's
own outer_id (商家编码) and quantity. Item and SKU ids derive from the shop and the codes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

from sandbox.catalog import Product, shop_products, variant_name
from sandbox.model import SimLine, SimOrder

CHINA_TIME = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ZERO = Decimal("0")

# The full trade status enum of reference §5.4 [H]; the simulator serves the ones below.
TRADE_STATUSES = (
    "TRADE_NO_CREATE_PAY", "WAIT_BUYER_PAY", "SELLER_CONSIGNED_PART", "WAIT_SELLER_SEND_GOODS",
    "WAIT_BUYER_CONFIRM_GOODS", "TRADE_BUYER_SIGNED", "TRADE_FINISHED", "TRADE_CLOSED",
    "TRADE_CLOSED_BY_TAOBAO", "PAY_PENDING", "WAIT_PRE_AUTH_CONFIRM", "PAID_FORBID_CONSIGN",
)
# neutral status -> TOP status. A cancelled order is closed before payment
# (TRADE_CLOSED_BY_TAOBAO) or refunded after it (TRADE_CLOSED); the neutral model does not
# say which, so the order id's parity decides, and both kinds are always served.
SERVED_STATUSES = {
    "unpaid": "WAIT_BUYER_PAY", "paid": "WAIT_SELLER_SEND_GOODS",
    "shipped": "WAIT_BUYER_CONFIRM_GOODS", "delivered": "TRADE_FINISHED",
}
CLOSED_AFTER_PAYMENT, CLOSED_BEFORE_PAYMENT = "TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO"

# Fields `taobao.trades.sold.increment.get` can return (its doc, api-fields/taobao); the
# list API gives "only part of the trade", `taobao.trade.fullinfo.get` gives the rest.
INCREMENT_FIELDS = frozenset((
    "tid seller_nick pic_path payment seller_rate post_fee receiver_name receiver_state "
    "receiver_address receiver_zip receiver_mobile receiver_phone consign_time received_payment "
    "receiver_country receiver_town tid num num_iid status title type price discount_fee "
    "total_fee created pay_time modified end_time seller_flag buyer_nick has_buyer_message "
    "buyer_open_uid shipping_type adjust_fee buyer_rate receiver_city receiver_district orders "
    "oaid step_trade_status"
).split())

# --- UNVERIFIED (reference [L] or absent): wire shapes, ids, masks and carriers --------
# Shapes of TOP's desensitised receiver values (the reference only says they are masked).
MOBILE_MASK_KEEP = 4  # '*******8000': the last four digits stay
ADDRESS_MASK_KEEP = 4  # the first four characters of the street address, then '****'
# oaid: an opaque id under 128 characters; real ones are longer base62 strings.
OAID_KEY = b"taobao-sandbox-oaid"
OAID_LENGTH = 48
# Share of receivers behind a privacy (virtual) number, shown as '18877771111-123' [H shape].
PRIVACY_NUMBER_EVERY = 5  # every fifth order id
PRIVACY_NUMBER_DAYS = 7
NO_REFUND = "NO_REFUND"  # refund_status of a line without refund; not in the doc's enum
TRADE_TYPE = "fixed"  # 一口价
SELLER_FLAG = 0
TID_BASE = 3_000_000_000_000_000_000  # 19-digit trade ids, as recent ones look
SINGLE_LINE_OID_IS_TID = True  # a one-line trade's sub-order carries the trade's id
BUYER_OPEN_UID_PREFIX = "AAH"
DOMESTIC_RECEIVER_COUNTRY = ""  # receiver_country of a mainland trade
# taobao.logistics.companies.get: POST and ZJS are the doc's examples [H]; the rest,
# every id and the waybill rule are guesses.
WAYBILL_RULE = r"^[A-Za-z0-9]{8,32}$"
LOGISTICS_COMPANIES = tuple(
    {"id": company_id, "code": code, "name": name, "reg_mail_no": WAYBILL_RULE}
    for company_id, code, name in (
        (1, "POST", "中国邮政"), (2, "EMS", "EMS"), (505, "SF", "顺丰速运"), (500, "ZTO", "中通快递"),
        (101, "YTO", "圆通速递"), (100, "STO", "申通快递"), (102, "YUNDA", "韵达快递"),
        (5000000110730, "JD", "京东快递"), (1216000000124268, "JTSD", "极兔速递"), (103, "ZJS", "宅急送"),
    )
)
# Items: every sandbox item is on sale since one moment; TOP's item lists show it in
# list_time order, so the simulator's is the catalogue's (reversed for list_time:desc).
LISTED_AT = datetime(2024, 1, 1, tzinfo=CHINA_TIME)
ITEM_TYPE = "fixed"
# --- end UNVERIFIED

# Fields taobao.items.onsale.get accepts in `fields` (its doc [H]); any other is refused.
ONSALE_FIELDS = frozenset((
    "approve_status num_iid title nick type cid pic_url num props valid_thru list_time price "
    "has_discount has_invoice has_warranty has_showcase modified delist_time postage_id "
    "seller_cids outer_id sold_quantity"
).split())


def sign(params: dict[str, str], secret: str, method: str = "md5") -> str:
    """TOP's signature; written apart from the connector's signer so each checks the other."""
    joined = "".join(k + v for k, v in sorted(params.items()) if k != "sign" and v != "")
    if method == "md5":
        digest = hashlib.md5((secret + joined + secret).encode("utf-8")).hexdigest()
    elif method in ("hmac", "hmac-sha256"):
        algorithm = "md5" if method == "hmac" else "sha256"
        digest = hmac.new(secret.encode("utf-8"), joined.encode("utf-8"), algorithm).hexdigest()
    else:
        raise ValueError(f"sign_method {method} is not supported")
    return digest.upper()


def response_key(method: str) -> str:
    return method.removeprefix("taobao.").replace(".", "_") + "_response"


def trade_status(order: SimOrder) -> str:
    if order.status == "cancelled":
        return CLOSED_AFTER_PAYMENT if order.order_id % 2 == 0 else CLOSED_BEFORE_PAYMENT
    return SERVED_STATUSES[order.status]


def china_time(moment: datetime | None) -> str | None:
    return None if moment is None else _china_text(moment)


@lru_cache(maxsize=8_192)
def _china_text(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(CHINA_TIME).strftime(TIME_FORMAT)


def parse_china_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CHINA_TIME)
    except (TypeError, ValueError):
        return None


def yuan(amount: Decimal) -> str:
    return f"{amount:.2f}"


def tid(order: SimOrder) -> int:
    """A 19-digit trade id; an affine map keeps it unique per order id and stable."""
    return TID_BASE + (order.order_id * 982_451_653 + 71_234_567) % 10**18


def _stable_number(text: str, digits: int) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "big") % 10**digits


def oid(order: SimOrder, line: SimLine) -> int:
    if SINGLE_LINE_OID_IS_TID and len(order.lines) == 1:
        return tid(order)
    return 4_000_000_000_000_000_000 + _stable_number(f"oid|{line.line_id}", 18)


def paid_at(order: SimOrder) -> datetime | None:
    if order.status == "unpaid" or trade_status(order) == CLOSED_BEFORE_PAYMENT:
        return None
    return order.created_at


def consign_time(order: SimOrder) -> datetime | None:
    if order.status not in ("shipped", "delivered"):
        return None
    stamps = [e["shipped_at"] for e in order.tracking if isinstance(e.get("shipped_at"), datetime)]
    if stamps:
        return stamps[-1]
    halfway = order.created_at + (order.updated_at - order.created_at) / 2
    return order.updated_at if order.status == "shipped" else halfway


# ---- the receiver: masks outside, oaid to open them ---------------------------------


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def mask_mobile(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) <= MOBILE_MASK_KEEP:
        return "*" * len(digits)
    return "*" * (len(digits) - MOBILE_MASK_KEEP) + digits[-MOBILE_MASK_KEEP:]


def mask_address(detail: str) -> str:
    return detail[:ADDRESS_MASK_KEEP] + "****" if detail else ""


def receiver_plaintext(order: SimOrder) -> tuple[str, ...]:
    """What the oaid stands for: (name, mobile, state, city, district, address)."""
    return (order.receiver_name or "", order.phone or "", order.province or "",
            order.city or "", order.district or "", order.address or "")


def oaid(order: SimOrder) -> str:
    """Built from the receiver, phones, address and creation time, as the doc describes."""
    return _oaid(receiver_plaintext(order), china_time(order.created_at) or "")


@lru_cache(maxsize=16_384)
def _oaid(plaintext: tuple[str, ...], created: str) -> str:
    digest = hmac.digest(OAID_KEY, "|".join((*plaintext, created)).encode("utf-8"), "sha256")
    return "1" + digest.hex()[: OAID_LENGTH - 1]


def privacy_number(order: SimOrder) -> str | None:
    """A virtual number with extension for some receivers, else None (the real mobile)."""
    if order.order_id % PRIVACY_NUMBER_EVERY:
        return None
    return f"188{_stable_number(f'vn|{order.order_id}', 8):08d}-{order.order_id % 1000:03d}"


def _receiver_fields(order: SimOrder) -> dict:
    name, phone, address = order.receiver_name or "", order.phone or "", order.address or ""
    return {
        "receiver_name": mask_name(name), "receiver_mobile": mask_mobile(phone),
        "receiver_phone": "", "receiver_address": mask_address(address),
        "receiver_state": order.province, "receiver_city": order.city,
        "receiver_district": order.district, "receiver_town": None,
        "receiver_zip": order.postal_code, "receiver_country": DOMESTIC_RECEIVER_COUNTRY,
        "oaid": oaid(order),
    }


# ---- the trade payload ----------------------------------------------------------------


def render_line(order: SimOrder, line: SimLine, status: str, shipped: dict) -> dict:
    amount = line.unit_price * line.quantity
    return {
        "oid": oid(order, line), "num_iid": _stable_number(f"item|{line.title}", 12),
        "sku_id": str(_stable_number(f"sku|{line.sku or line.title}", 13)),
        "outer_iid": "", "outer_sku_id": line.sku or "", "title": line.title,
        "sku_properties_name": "", "price": yuan(line.unit_price), "num": line.quantity,
        "total_fee": yuan(amount), "payment": yuan(amount), "divide_order_fee": yuan(amount),
        "discount_fee": "0.00", "adjust_fee": "0.00", "status": status,
        "refund_status": "SUCCESS" if status == CLOSED_AFTER_PAYMENT else NO_REFUND,
        "shipping_type": "express",
        "consign_time": china_time(consign_time(order)),
        "logistics_company": shipped.get("company_name"),
        "invoice_no": shipped.get("tracking_number"),
    }


def render_trade(order: SimOrder) -> dict:
    """The full `Trade` (what fullinfo.get can show); absent values are left out."""
    status = trade_status(order)
    goods = sum((line.unit_price * line.quantity for line in order.lines), ZERO)
    payment = goods + order.shipping_fee
    shipped = order.tracking[-1] if order.tracking else {}
    ended = status in ("TRADE_FINISHED", CLOSED_AFTER_PAYMENT, CLOSED_BEFORE_PAYMENT)
    trade = {
        "tid": tid(order), "status": status, "type": TRADE_TYPE,
        "created": china_time(order.created_at), "pay_time": china_time(paid_at(order)),
        "modified": china_time(order.updated_at), "consign_time": china_time(consign_time(order)),
        "end_time": china_time(order.updated_at) if ended else None,
        "payment": yuan(payment), "total_fee": yuan(goods), "post_fee": yuan(order.shipping_fee),
        "discount_fee": "0.00", "adjust_fee": "0.00",
        "received_payment": yuan(payment if status == "TRADE_FINISHED" else ZERO),
        "buyer_nick": "",
        "buyer_open_uid": f"{BUYER_OPEN_UID_PREFIX}{_stable_number(order.buyer_id, 16):016d}",
        "seller_nick": order.shop, "seller_flag": SELLER_FLAG,
        "has_buyer_message": bool(order.note), "buyer_message": order.note or None,
        "shipping_type": "express", "num": sum(line.quantity for line in order.lines),
        **_receiver_fields(order),
        "orders": {"order": [render_line(order, line, status, shipped) for line in order.lines]},
    }
    return _without_empty(trade)


def _without_empty(record: dict) -> dict:
    cleaned = {}
    for key, value in record.items():
        if value is None:
            continue
        if isinstance(value, dict) and "order" in value:
            value = {"order": [_without_empty(line) for line in value["order"]]}
        cleaned[key] = value
    return cleaned


def select_fields(trade: dict, wanted: frozenset[str], allowed: frozenset[str] | None) -> dict:
    """Keep the fields asked for (`orders` or `orders.x` for sub-order fields) that the API
    can return; TOP answers with exactly the fields named in `fields`."""
    line_fields = {name[7:] for name in wanted if name.startswith("orders.")}
    chosen = {k: v for k, v in trade.items()
              if k in wanted and k != "orders" and (allowed is None or k in allowed)}
    if "orders" in trade and ("orders" in wanted or line_fields):
        lines = trade["orders"]["order"]
        if "orders" not in wanted:
            lines = [{k: v for k, v in line.items() if k in line_fields} for line in lines]
        chosen["orders"] = {"order": lines}
    return chosen


# ---- other answers ----------------------------------------------------------------------


def decrypted_receiver(order: SimOrder, wanted_tid: str, asked_oaid: str,
                       plaintext: tuple[str, ...], matched: bool, now: datetime) -> dict:
    """One `Receiver` of taobao.top.oaid.decrypt's receiver_list."""
    name, mobile, state, city, district, address = plaintext
    virtual = privacy_number(order)
    answer = {
        "oaid": asked_oaid, "tid": wanted_tid, "name": name, "mobile": virtual or mobile,
        "phone": "", "state": state, "city": city, "district": district, "town": "",
        "address_detail": address, "country": "中国", "matched": matched,
        "privacy_protection": virtual is not None,
    }
    if virtual:
        answer["secret_no_expire_time"] = china_time(now + timedelta(days=PRIVACY_NUMBER_DAYS))
    return answer


def token_result(granted: dict, shop: str, access_life: timedelta, refresh_life: timedelta) -> dict:
    """The token JSON of reference §5.3 [M]; read/write lifetimes all follow the session."""
    access_seconds = int(access_life.total_seconds())
    return {
        "access_token": granted["access_token"], "token_type": "Bearer",
        "expires_in": access_seconds, "refresh_token": granted["refresh_token"],
        "re_expires_in": int(refresh_life.total_seconds()), "r1_expires_in": access_seconds,
        "r2_expires_in": access_seconds, "w1_expires_in": access_seconds,
        "w2_expires_in": access_seconds, "taobao_user_nick": shop,
        "taobao_user_id": str(_stable_number(f"user|{shop}", 12)),
        "sub_taobao_user_id": "", "sub_taobao_user_nick": "",
    }


def spoil(body: dict) -> dict | None:
    """Break one trade of a list or detail answer; None when it holds no trade."""
    inner = next(iter(body.values()))
    trades = inner.get("trades", {}).get("trade") or []
    target = trades[len(trades) // 2] if trades else inner.get("trade")
    if not isinstance(target, dict):
        return None
    target.pop("tid", None)
    target["modified"] = "昨天"
    target["orders"] = json.dumps(target.get("orders"), ensure_ascii=False)
    return body


# ---- the shop's items and SKUs ------------------------------------------------------


@dataclass(frozen=True)
class ListedItem:
    """One item (宝贝) of a shop: a catalogue product with its SKUs, or a product of one
    code listed without SKUs, whose seller code is then the item's outer_id."""

    num_iid: int
    product: Product

    @property
    def sku_ids(self) -> dict[int, str]:
        """sku_id -> seller SKU code; empty for an item without SKUs."""
        if not self.product.has_variants:
            return {}
        return {sku_id_of(self.num_iid, sku): sku for sku in self.product.skus}


def item_id_of(shop: str, product: str) -> int:
    return 500_000_000_000 + _stable_number(f"item|{shop}|{product}", 11)


def sku_id_of(num_iid: int, sku: str) -> int:
    return 4_000_000_000_000 + _stable_number(f"sku|{num_iid}|{sku}", 12)


def listed_items(shop: str, listed_skus: list[str]) -> dict[int, ListedItem]:
    """num_iid -> item, in listing order."""
    items = (ListedItem(item_id_of(shop, p.name), p) for p in shop_products(listed_skus))
    return {item.num_iid: item for item in items}


def item_quantity(item: ListedItem, stock: dict[str, int]) -> int:
    return sum(stock.get(sku, 0) for sku in item.product.skus)


def render_item(shop: str, item: ListedItem, stock: dict[str, int]) -> dict:
    """One `Item` as taobao.items.onsale.get knows it (before `fields` selects)."""
    listed = china_time(LISTED_AT)
    return {
        "num_iid": item.num_iid, "title": item.product.name, "nick": shop, "type": ITEM_TYPE,
        "approve_status": "onsale", "num": item_quantity(item, stock),
        "outer_id": "" if item.product.has_variants else item.product.skus[0],
        "list_time": listed, "modified": listed, "valid_thru": 14, "sold_quantity": 0,
    }


def render_sku(item: ListedItem, sku_id: int, sku: str, stock: dict[str, int]) -> dict:
    """One `Sku` as taobao.item.skus.get knows it (before `fields` selects)."""
    listed = china_time(LISTED_AT)
    return {
        "sku_id": sku_id, "num_iid": item.num_iid, "outer_id": sku,
        "quantity": stock.get(sku, 0), "properties": f"1627207:{sku_id % 10**6}",
        "properties_name": f"1627207:{sku_id % 10**6}:颜色分类:{variant_name(sku)}",
        "status": "normal", "created": listed, "modified": listed,
    }


def quantity_answer(item: ListedItem, stock: dict[str, int], changed: list[int],
                    now: datetime) -> dict:
    """The `item` of a quantity update: num_iid, num and modified, and the changed SKUs."""
    answer = {"num_iid": item.num_iid, "num": item_quantity(item, stock),
              "modified": china_time(now)}
    skus = item.sku_ids
    if changed:
        answer["skus"] = {"sku": [{"sku_id": sku_id, "quantity": stock.get(skus[sku_id], 0),
                                   "modified": china_time(now)} for sku_id in changed]}
    return answer
