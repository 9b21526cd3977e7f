"""Pinduoduo POP simulator: one form-encoded router endpoint that dispatches on `type`.

It follows reference §6: MD5 signing over the sorted parameters, `<api>_response` and
`error_response` envelopes sent with HTTP 200, unix-second windows (24 h for the list by
confirm time, 30 min for the increment by update time), China-time strings, amounts as
yuan doubles, and receiver data that is ciphertext plus masks while an order waits for
shipment. The real gateway has no sandbox, so this is where the connector meets PDD's rules.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sandbox.model import SandboxState, SimLine, SimOrder, SimToken

PLATFORM = "pdd"
ROUTER_PATH = "/pdd/api/router"
CHINA_TIME = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CLOCK_SKEW_LIMIT_SECONDS = 600
CONFIRM_WINDOW_LIMIT_SECONDS = 24 * 3600
UPDATE_WINDOW_LIMIT_SECONDS = 30 * 60
MAX_PAGE_SIZE = 100
# Unverified: PDD documents no token lifetime (it depends on the app type and subscription).
TOKEN_LIFETIME = timedelta(hours=24)
# Simulator choice: PDD's usual promise is to ship within 48 h of the deal.
SHIP_PROMISE = timedelta(hours=48)


@dataclass(frozen=True)
class PddError:
    code: int
    msg: str


TOKEN_EXPIRED = PddError(10019, "access_token已过期")  # [H]
THROTTLED = PddError(52101, "当前接口被限流")  # [H]
# --- UNVERIFIED error codes: the reference gives none for these; chosen for the simulator.
BAD_PARAMETER = PddError(10000, "参数错误")
UNKNOWN_API = PddError(10001, "type参数错误")
UNKNOWN_CLIENT = PddError(10016, "client_id不存在")
BAD_SIGN = PddError(10017, "签名错误")
STALE_TIMESTAMP = PddError(10018, "timestamp已过期")
ORDER_NOT_FOUND = PddError(30001, "订单不存在")
NOT_SHIPPABLE = PddError(30002, "订单状态不允许发货")
UNKNOWN_LOGISTICS = PddError(30003, "快递公司不存在")
DECRYPT_ITEM_FAILED = 40001  # per-item error_code inside open_decrypt_batch_response
# --- end of unverified codes

# [L] ids often quoted for PDD (reference §6.4), unverified; J&T's id is made up.
LOGISTICS_COMPANIES = tuple(
    {"id": company_id, "logistics_company": name, "code": code, "available": 1}
    for company_id, name, code in (
        (44, "顺丰速运", "SF"), (115, "中通快递", "ZTO"), (85, "圆通速递", "YTO"), (1, "申通快递", "STO"),
        (121, "韵达快递", "YUNDA"), (118, "邮政EMS", "EMS"), (120, "京东快递", "JD"),
        (384, "极兔速递", "JTSD"),  # made-up id
    )
)
COMPANIES_BY_ID = {company["id"]: company for company in LOGISTICS_COMPANIES}

# neutral status -> (order_status, confirm_status, refund_status); see reference §6.3
# A cancelled order is a deal called off (已取消) with the money returned (退款成功).
STATUS_CODES = {
    "unpaid": (1, 0, 1), "paid": (1, 1, 1), "shipped": (2, 1, 1), "delivered": (3, 1, 1),
    "cancelled": (1, 2, 4),
}
ALL = 5  # order_status / refund_status filter value meaning "any"

# pdd.open.decrypt.batch data_type values (reference §6.3)
NAME, PHONE, FULL_ADDRESS, DETAIL_ADDRESS = 5, 6, 7, 8
# Simulator-only key: ciphertexts must be stable across runs so payloads are reproducible.
PII_KEY = b"pdd-sandbox-receiver-data"
CIPHER_VERSION = b"\x02\x00\x00\x00\x00\x00"  # base64 "AgAAAAAA": real ciphertexts start "AgAAAA"


class Refusal(Exception):
    def __init__(self, error: PddError, sub_msg: str = "") -> None:
        super().__init__(error.msg)
        self.error = error
        self.sub_msg = sub_msg


def sign(params: dict[str, str], client_secret: str) -> str:
    """Written apart from the connector's signer so each checks the other."""
    joined = "".join(key + params[key] for key in sorted(params) if key != "sign")
    digest = hashlib.md5((client_secret + joined + client_secret).encode("utf-8"))
    return digest.hexdigest().upper()


# ---- rendering a neutral order as PDD sends it ------------------------------------


def china_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(CHINA_TIME).strftime(TIME_FORMAT)


def order_sn(order: SimOrder) -> str:
    """'YYMMDD-' plus 15 digits; an affine map mod 10^15 keeps it unique and stable."""
    scrambled = (order.order_id * 761_838_257 + 287_346_502_836) % 10**15
    return f"{china_time(order.created_at)[2:10].replace('-', '')}-{scrambled:015d}"


def confirm_time(order: SimOrder) -> datetime | None:
    """The neutral model has no payment instant; a PDD order is created as it is paid."""
    return None if order.status in ("unpaid", "cancelled") else order.created_at


def shipping_time(order: SimOrder) -> datetime | None:
    if order.status not in ("shipped", "delivered"):
        return None
    stamps = [e["shipped_at"] for e in order.tracking if isinstance(e.get("shipped_at"), datetime)]
    if stamps:
        return stamps[-1]
    # generated orders carry no ship instant: the last update for shipped ones, else halfway
    halfway = order.created_at + (order.updated_at - order.created_at) / 2
    return order.updated_at if order.status == "shipped" else halfway


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
    blocks = range(length // 32 + 1)
    return b"".join(hashlib.sha256(PII_KEY + nonce + bytes([n])).digest() for n in blocks)[:length]


def _nonce(body: bytes) -> bytes:
    return hmac.new(PII_KEY, body, hashlib.sha256).digest()[:12]


def encrypt(plaintext: str, data_type: int) -> str:
    """Deterministic, reversible stand-in for PDD's ciphertext (not real cryptography)."""
    body = bytes([data_type]) + plaintext.encode("utf-8")
    nonce = _nonce(body)
    sealed = bytes(a ^ b for a, b in zip(body, _keystream(nonce, len(body))))
    blob = base64.b64encode(CIPHER_VERSION + nonce + sealed).decode()
    tag = base64.b64encode(nonce[:6]).decode()
    return f"${tag}${blob}$0$$" if data_type == PHONE else f"~{blob}~{tag}~0~~"


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
    body = bytes(a ^ b for a, b in zip(sealed, _keystream(nonce, len(sealed))))
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


# ---- request handling ------------------------------------------------------------


def _int_param(params: dict, name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value in (None, ""):
        if default is None:
            raise Refusal(BAD_PARAMETER, f"缺少参数{name}")
        return default
    try:
        return int(value)
    except ValueError:
        raise Refusal(BAD_PARAMETER, f"{name}不合法") from None


def _window(params: dict, start_key: str, end_key: str, limit: int) -> tuple[int, int]:
    start, end = _int_param(params, start_key), _int_param(params, end_key)
    if end < start or end - start > limit:
        raise Refusal(BAD_PARAMETER, f"{start_key}与{end_key}的间隔不能超过{limit // 60}分钟")
    return start, end


def _seconds(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


def _page(matches: list[SimOrder], params: dict) -> tuple[list[dict], int, bool]:
    page, size = _int_param(params, "page", 1), _int_param(params, "page_size", MAX_PAGE_SIZE)
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        raise Refusal(BAD_PARAMETER, f"page从1开始, page_size不能超过{MAX_PAGE_SIZE}")
    chosen = matches[(page - 1) * size : page * size]
    return [render_order(o) for o in chosen], len(matches), page * size < len(matches)


def _status_filter(params: dict):
    wanted_order = _int_param(params, "order_status")
    wanted_refund = _int_param(params, "refund_status")

    def keep(order: SimOrder) -> bool:
        order_status, _, refund_status = STATUS_CODES[order.status]
        return wanted_order in (ALL, order_status) and wanted_refund in (ALL, refund_status)

    return keep


def _listing(clock, limit: int, window_keys: tuple[str, str], envelope: tuple[str, str]):
    """Build a list API that pages the shop's orders whose `clock` falls in the window."""

    def handle(state: SandboxState, shop: str, params: dict) -> dict:
        start, end = _window(params, *window_keys, limit)
        keep = _status_filter(params)
        with state.lock:
            matches = [o for o in state.shop_orders(shop) if clock(o) and keep(o)]
            matches = [o for o in matches if start <= _seconds(clock(o)) <= end]
            matches.sort(key=lambda o: (_seconds(clock(o)), o.order_id))  # stable pages
            rendered, total, has_next = _page(matches, params)
        response_key, list_key = envelope
        return {response_key: {list_key: rendered, "total_count": total, "has_next": has_next}}

    return handle


# PDD lists only orders that became a deal: the list by confirm time never shows unpaid
# or called-off orders, the increment by update time shows every order except unpaid ones.
list_by_confirm_time = _listing(
    confirm_time, CONFIRM_WINDOW_LIMIT_SECONDS, ("start_confirm_at", "end_confirm_at"),
    ("order_list_get_response", "order_list"),
)
list_by_update_time = _listing(
    lambda o: None if o.status == "unpaid" else o.updated_at, UPDATE_WINDOW_LIMIT_SECONDS,
    ("start_updated_at", "end_updated_at"), ("order_sn_increment_get_response", "order_sn_list"),
)


def _find_order(state: SandboxState, shop: str, params: dict) -> SimOrder:
    wanted = params.get("order_sn", "")
    for order in state.shop_orders(shop):
        if order_sn(order) == wanted:
            return order
    raise Refusal(ORDER_NOT_FOUND, wanted)


def order_information(state: SandboxState, shop: str, params: dict) -> dict:
    with state.lock:
        order_info = render_order(_find_order(state, shop, params))
    return {"order_info_get_response": {"order_info": order_info}}


def logistics_companies(state: SandboxState, shop: str | None, params: dict) -> dict:
    return {"logistics_companies_get_response": {"logistics_companies": list(LOGISTICS_COMPANIES)}}


def online_send(state: SandboxState, shop: str, params: dict) -> dict:
    logistics_id = _int_param(params, "logistics_id")
    tracking_number = params.get("tracking_number", "").strip()
    redelivery_type = _int_param(params, "redelivery_type", 1)
    if not tracking_number or redelivery_type not in (1, 2):
        raise Refusal(BAD_PARAMETER, "tracking_number或redelivery_type不合法")
    company = COMPANIES_BY_ID.get(logistics_id)
    if company is None or not company["available"]:
        raise Refusal(UNKNOWN_LOGISTICS, str(logistics_id))
    with state.lock:
        order = _find_order(state, shop, params)
        # 1 = first shipment of a 待发货 order; 2 = correct an order already shipped.
        if order.status != ("paid" if redelivery_type == 1 else "shipped"):
            raise Refusal(NOT_SHIPPABLE, "订单已发货" if order.status == "shipped" else order.status)
        now = datetime.now(timezone.utc)
        order.tracking.append({
            "platform": PLATFORM, "logistics_id": logistics_id, "carrier_code": company["code"],
            "tracking_number": tracking_number, "shipped_at": now,
        })
        order.status, order.updated_at = "shipped", now
    return {"logistics_online_send_response": {"is_success": True}}


def decrypt_batch(state: SandboxState, shop: str, params: dict) -> dict:
    try:
        wanted = json.loads(params.get("data_list", ""))
    except ValueError:
        raise Refusal(BAD_PARAMETER, "data_list不合法") from None
    if not isinstance(wanted, list) or not 1 <= len(wanted) <= 100:
        raise Refusal(BAD_PARAMETER, "data_list须为1到100项")
    results = []
    for item in wanted:
        item = item if isinstance(item, dict) else {}
        opened = decrypt(str(item.get("encrypted_data", "")))
        results.append({
            "data_tag": item.get("data_tag", ""), "encrypted_data": item.get("encrypted_data", ""),
            "decrypted_data": opened[1] if opened else "", "data_type": opened[0] if opened else 0,
            "error_code": 0 if opened else DECRYPT_ITEM_FAILED,
        })
    return {"open_decrypt_batch_response": {"data_decrypt_list": results}}


HANDLERS = {
    "pdd.order.list.get": list_by_confirm_time,
    "pdd.order.number.list.increment.get": list_by_update_time,
    "pdd.order.information.get": order_information,
    "pdd.logistics.companies.get": logistics_companies,
    "pdd.logistics.online.send": online_send,
    "pdd.open.decrypt.batch": decrypt_batch,
}
NEEDS_NO_MALL = {"pdd.logistics.companies.get"}  # public data: no access_token required


def authenticate(state: SandboxState, params: dict, expired_by_fault: bool) -> str | None:
    """Check client, signature, clock and token in the gateway's order; return the shop."""
    secret = state.app_secrets.get(params.get("client_id", ""))
    if secret is None:
        raise Refusal(UNKNOWN_CLIENT)
    if not hmac.compare_digest(params.get("sign", ""), sign(params, secret)):
        raise Refusal(BAD_SIGN)
    now = datetime.now(timezone.utc)
    if abs(now.timestamp() - _int_param(params, "timestamp")) > CLOCK_SKEW_LIMIT_SECONDS:
        raise Refusal(STALE_TIMESTAMP)
    if params.get("type") not in HANDLERS:
        raise Refusal(UNKNOWN_API, params.get("type", ""))
    token = params.get("access_token")
    if not token and params["type"] in NEEDS_NO_MALL:
        return None
    known = state.tokens.get(token or "")
    if expired_by_fault or known is None or known.expires_at <= now:
        raise Refusal(TOKEN_EXPIRED)
    return known.shop


def error_body(refusal: Refusal) -> dict:
    return {"error_response": {
        "error_code": refusal.error.code, "error_msg": refusal.error.msg,
        "sub_code": str(refusal.error.code), "sub_msg": refusal.sub_msg,
        "request_id": uuid.uuid4().hex,
    }}


def spoil(body: dict) -> dict | None:
    """Break one order of a list or detail payload; None when there is no order to break."""
    inner = next(iter(body.values()))
    orders = inner.get("order_list") or inner.get("order_sn_list")
    target = orders[len(orders) // 2] if orders else inner.get("order_info")
    if not isinstance(target, dict):
        return None
    target.pop("order_sn", None)
    target["item_list"] = json.dumps(target["item_list"], ensure_ascii=False)
    return body


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter()

    @router.post(ROUTER_PATH)
    async def pdd_router(request: Request) -> Response:
        params = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        fault = state.faults.take(PLATFORM)
        kind = fault.kind if fault else None
        if kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        if kind == "server_error":
            return PlainTextResponse("502 Bad Gateway", status_code=502)
        try:
            if kind == "rate_limit":
                raise Refusal(THROTTLED)
            shop = authenticate(state, params, expired_by_fault=kind == "expired_token")
            body = HANDLERS[params["type"]](state, shop, params)
        except Refusal as refusal:
            return JSONResponse(error_body(refusal))
        if kind == "malformed":
            spoiled = spoil(body)
            if spoiled is None:  # nothing order-shaped: send a cut-off body instead
                return Response(json.dumps(body)[:20], media_type="application/json")
            body = spoiled
        return JSONResponse(body)

    return router


def register_shop(state: SandboxState, shop: str, now: datetime) -> dict:
    """Authorize a mall for a fresh app; the access token lives TOKEN_LIFETIME from `now`."""
    client_id, client_secret = secrets.token_hex(16), secrets.token_hex(20)
    token = secrets.token_hex(16)
    credentials = {"client_id": client_id, "client_secret": client_secret, "access_token": token}
    with state.lock:
        state.app_secrets[client_id] = client_secret
        state.tokens[token] = SimToken(shop=shop, expires_at=now + TOKEN_LIFETIME)
    return credentials
