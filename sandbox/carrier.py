"""SF Express e-waybill API simulator, shaped like SF's "丰桥" sfapi gateway.

One form-encoded endpoint, `POST /sf/std/service` (the real host serves `/std/service`),
takes `partnerID, requestID, serviceCode, timestamp, msgDigest, msgData`. The digest is
Base64 of the raw MD5 of `quote_plus(msgData + timestamp + checkword)` [H]. Three
services are simulated:

* `EXP_RECE_CREATE_ORDER`: order a parcel and take its waybill number;
* `EXP_RECE_SEARCH_ROUTES`: the route events of up to ten waybill numbers a call; the
  pickup scan (opCode 50) is what releases a shipped order's reserved stock;
* `EXP_RECE_UPDATE_ORDER` with dealType 2: cancel an order's waybill, which SF allows
  only until the courier has collected the parcel.

Nothing here moves a parcel by itself: the courier "comes" when a test or the demo
calls `collect` (or `POST /_sandbox/carrier/pickups`), so every pickup is deliberate.
Each waybill record carries `picked_up_at` (None until collected) and `cancelled`.

Failures come back in two layers, as on the real gateway: the envelope's
`apiResultCode` says whether the platform accepted the call at all (signature,
parameters); `apiResultData.success` says whether SF accepted the order (address,
contact). [H] marks what SF's own sample SDK shows, [M] what copies of SF's pages and
several independent clients agree on, [L] our best guess, not checked.

Receivers from marketplaces that encrypt personal data (PDD) arrive as ciphertexts
beginning with '$' or '~'; they count as present. In real life the platform's own
e-waybill service decrypts them; here they are only recorded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, quote_plus

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from sandbox.geography import is_known_province
from sandbox.model import Fault, SandboxState

SERVICE_PATH = "/sf/std/service"
CREATE_ORDER_SERVICE = "EXP_RECE_CREATE_ORDER"  # [H]
SEARCH_ROUTES_SERVICE = "EXP_RECE_SEARCH_ROUTES"  # [H]
UPDATE_ORDER_SERVICE = "EXP_RECE_UPDATE_ORDER"  # [H] confirm (dealType 1) or cancel (2)
SERVICES = frozenset({CREATE_ORDER_SERVICE, SEARCH_ROUTES_SERVICE, UPDATE_ORDER_SERVICE})

API_RESULT_OK = "A1000"  # [M] platform accepted the call
API_RESULT_MISSING_PARAMETER = "A1001"  # [M] a required form field is empty or unreadable
API_RESULT_NO_SERVICE_RIGHT = "A1004"  # [M] unknown service code for this partner
API_RESULT_BAD_DIGEST = "A1006"  # [M] msgDigest does not match, or unknown partnerID
API_RESULT_SYSTEM_ERROR = "A1099"  # [M] gateway-side failure; a retry may succeed

BUSINESS_OK = "S0000"  # [M] errorCode that comes with success=true
ERROR_SENDER_INCOMPLETE = "1010"  # [L] 寄件地址/联系人/电话 missing
ERROR_RECEIVER_ADDRESS = "1014"  # [L] 到件地址 missing or not a real region
ERROR_RECEIVER_CONTACT = "1015"  # [L] 到件联系人 missing
ERROR_RECEIVER_MOBILE = "1016"  # [L] 到件电话 missing or unusable
ERROR_DUPLICATE_ORDER = "8016"  # [M] 重复下单: orderId already has a waybill
ERROR_BAD_ORDER_DATA = "8024"  # [L] msgData not a valid order (orderId, contacts)
ERROR_UNREADABLE_MESSAGE = "4002"  # [M] 报文解析错误
ERROR_ORDER_ID_MISSING = "6118"  # [M] 订单号不能为空
ERROR_BAD_DEAL_TYPE = "6131"  # [L] 订单操作标识不合法
ERROR_BAD_TRACKING_TYPE = "6132"  # [L] 路由查询方式不合法
ERROR_BAD_METHOD_TYPE = "6133"  # [L] 路由查询类别不合法
ERROR_NO_TRACKING_NUMBER = "8013"  # [L] 未传入查询单号
ERROR_TOO_MANY_NUMBERS = "8003"  # [L] 查询单号超过最大限制
ERROR_ORDER_NOT_FOUND = "8018"  # [M] 未获取到订单信息
ERROR_ALREADY_CANCELLED = "8037"  # [M] 已消单: the order was cancelled before
# [L] SF's page for EXP_RECE_UPDATE_ORDER lists no code for "too late, the courier has
# the parcel"; 8044 (此订单已经处理中,无法接收订单修改请求) is the nearest code in copies
# of SF's general error list.
ERROR_ALREADY_COLLECTED = "8044"
ERROR_ALREADY_CONFIRMED = "8252"  # [M] 订单已确认: 丰桥 confirms orders when they are placed

WAYBILL_TYPE_MAIN = 1  # [M] waybillType of the main (parent) waybill
WAYBILL_PREFIX = "SF"
FIRST_WAYBILL_SERIAL = 1_000_000_000_01  # 12 digits once formatted
CIPHERTEXT_MARKS = ("$", "~")  # PDD: '$…$' phones, '~…~' names and addresses [M]
MIN_PHONE_DIGITS = 7  # shortest plausible landline without area code

SENDER, RECEIVER = 1, 2  # contactType [H]
DEAL_CONFIRM, DEAL_CANCEL = 1, 2  # dealType of EXP_RECE_UPDATE_ORDER [H]
RES_STATUS_DONE = 2  # [M] resStatus of a confirm or cancel that went through
TRACKING_BY_WAYBILL = 1  # [H] trackingType: the numbers are SF waybill numbers (2 = orderIds)
METHOD_STANDARD_ROUTES = 1  # [H] methodType: standard route query (2 = customised)
# [M] numbers one route query may carry: 10 in SF's 快递管家 route API and in SF
# International's error 9083; 丰桥's own page for this limit was not found.
MAX_TRACKING_NUMBERS = 10
OP_COLLECTED = "50"  # [M] opCode of the pickup scan (收件)
OP_DELIVERED = "80"  # [M] opCode of delivery (签收); kept for clients, not emitted here
SF_CLOCK = timezone(timedelta(hours=8))  # [M] acceptTime is Beijing time without offset
ACCEPT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # [H]
FORM_FIELDS = ("partnerID", "requestID", "serviceCode", "timestamp", "msgDigest", "msgData")


def message_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """SF's msgDigest: Base64 of the raw MD5 of the form-encoded concatenation."""
    encoded = quote_plus(msg_data + timestamp + checkword)
    return base64.b64encode(hashlib.md5(encoded.encode("utf-8")).digest()).decode("ascii")


def register_partner(state: SandboxState, partner_id: str) -> dict:
    """Open a carrier account; the checkword is the shared secret of the digest."""
    checkword = secrets.token_urlsafe(24)
    with state.lock:
        state.app_secrets[partner_id] = checkword
    return {"partner_id": partner_id, "checkword": checkword}


def is_ciphertext(value: str) -> bool:
    return value.startswith(CIPHERTEXT_MARKS)


def present(value: object) -> bool:
    """A non-blank string: what carriers accept as a filled-in field."""
    return isinstance(value, str) and value.strip() != ""


def receiver_problem(contact: dict) -> tuple[str, str] | None:
    """The first reason SF would refuse this receiver, as (errorCode, errorMsg)."""
    abroad = contact.get("country", "CN") != "CN"
    # SF International labels abroad need no Chinese province; many countries have none.
    for field in ("city", "address") if abroad else ("province", "city", "address"):
        if not present(contact.get(field)):
            return ERROR_RECEIVER_ADDRESS, f"到件方{field}不能为空: receiver {field} is missing"
    if not abroad and not is_known_province(contact["province"]):
        return ERROR_RECEIVER_ADDRESS, "到件方province无效: receiver province is not a known province"
    if not present(contact.get("contact")):
        return ERROR_RECEIVER_CONTACT, "到件方contact不能为空: receiver contact name is missing"
    phone = contact.get("mobile") or contact.get("tel")
    if not present(phone):
        return ERROR_RECEIVER_MOBILE, "到件方mobile不能为空: receiver mobile is missing"
    if not is_ciphertext(phone) and sum(ch.isdigit() for ch in phone) < MIN_PHONE_DIGITS:
        return ERROR_RECEIVER_MOBILE, "到件方mobile无效: receiver mobile is too short"
    return None


def sender_problem(contact: dict) -> tuple[str, str] | None:
    required = ("province", "city", "address", "contact")
    missing = [name for name in required if not present(contact.get(name))]
    if not (present(contact.get("mobile")) or present(contact.get("tel"))):
        missing.append("mobile")
    if missing:
        return ERROR_SENDER_INCOMPLETE, f"寄件方信息不完整: sender {', '.join(missing)} missing"
    return None


class _Waybills:
    """Issues numbers and remembers which order got which, per partner."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.by_order: dict[tuple[str, str], str] = {}
        # A real carrier never issues a number twice, even across our restarts: start
        # each sandbox's serials from the clock so a second demo run gets fresh numbers.
        self.serials = itertools.count(FIRST_WAYBILL_SERIAL + int(time.time() * 1000) % 10**11)

    def existing(self, partner_id: str, order_id: str) -> str | None:
        number = self.by_order.get((partner_id, order_id))
        return number if number in self.state.waybills else None

    def issue(self, partner_id: str, order: dict) -> tuple[str, bool]:
        """The order's waybill number, and whether it was issued just now."""
        order_id = str(order["orderId"])
        with self.state.lock:
            number = self.existing(partner_id, order_id)
            if number:
                return number, False
            number = self._next_number()
            self.state.waybills[number] = {
                "carrier": "SF",
                "partner_id": partner_id,
                "order_id": order_id,
                "receiver": _contact(order, RECEIVER),
                "sender": _contact(order, SENDER),
                "cargo": order.get("cargoDetails", []),
                "total_weight": order.get("totalWeight"),
                "issued_at": datetime.now(timezone.utc),
                "picked_up_at": None,  # set by `collect` when the courier takes the parcel
                "cancelled": False,
            }
            self.by_order[(partner_id, order_id)] = number
            return number, True

    def _next_number(self) -> str:
        # Skip numbers already taken, e.g. by a second router built on the same state.
        while True:
            number = f"{WAYBILL_PREFIX}{next(self.serials):012d}"
            if number not in self.state.waybills:
                return number


def _contact(order: dict, contact_type: int) -> dict:
    contacts = order.get("contactInfoList") or []
    return next(
        (c for c in contacts if isinstance(c, dict) and c.get("contactType") == contact_type), {}
    )


def _envelope(code: str, message: str | None, result_data: dict | None = None) -> dict:
    return {
        "apiResultCode": code,
        "apiErrorMsg": message or "",
        "apiResponseID": uuid.uuid4().hex.upper(),
        "apiResultData": json.dumps(result_data, ensure_ascii=False) if result_data else None,
    }


def _business(success: bool, code: str, message: str | None, msg_data: dict | None) -> dict:
    return _envelope(
        API_RESULT_OK,
        None,
        {"success": success, "errorCode": code, "errorMsg": message, "msgData": msg_data},
    )


def _waybill_data(order_id: str, number: str) -> dict:
    return {
        "orderId": order_id,
        "waybillNoInfoList": [{"waybillType": WAYBILL_TYPE_MAIN, "waybillNo": number}],
    }


def _refusal(code: str, message: str, msg_data: dict | None = None) -> dict:
    return _business(False, code, message, msg_data)


def _duplicate(order_id: str, number: str) -> dict:
    # The refusal carries the number already issued: that is how a client recovers from
    # a lost response without buying a second waybill.
    message = "重复下单: order already has a waybill"
    return _refusal(ERROR_DUPLICATE_ORDER, message, _waybill_data(order_id, number))


def create_order(waybills: _Waybills, partner_id: str, msg_data: str) -> dict:
    """Handle EXP_RECE_CREATE_ORDER once the envelope has been authenticated."""
    try:
        order = json.loads(msg_data)
    except ValueError:
        return _refusal(ERROR_BAD_ORDER_DATA, "msgData不是合法的JSON: msgData is not JSON")
    if not isinstance(order, dict) or not present(str(order.get("orderId") or "")):
        return _refusal(ERROR_BAD_ORDER_DATA, "orderId不能为空: orderId is missing")
    order_id = str(order["orderId"])
    number = waybills.existing(partner_id, order_id)
    if number and waybills.state.waybills[number].get("cancelled"):
        # SF never reuses the orderId of a cancelled order [M]. Handing back the dead
        # number here would let a client print a label nobody will collect.
        return _refusal(ERROR_DUPLICATE_ORDER, "重复下单: this orderId was cancelled and cannot be reused")
    if number:
        return _duplicate(order_id, number)
    sender, receiver = _contact(order, SENDER), _contact(order, RECEIVER)
    problem = sender_problem(sender) or receiver_problem(receiver)
    if problem:
        return _refusal(*problem)
    number, issued_now = waybills.issue(partner_id, order)
    if not issued_now:  # a concurrent request with the same orderId won the race
        return _duplicate(order_id, number)
    return _business(True, BUSINESS_OK, None, _waybill_data(order_id, number))


def collect(state: SandboxState, numbers: Iterable[str] | None, now: datetime,
            belongs: Callable[[dict], bool] = lambda record: True) -> list[str]:
    """The courier came at `now` and took these parcels (every parcel when `numbers` is
    None); return the numbers collected by this visit, in the order given.

    A cancelled waybill has no parcel to take, and a parcel already collected keeps its
    first pickup time: a courier collects a parcel once. Every carrier simulator keeps
    its waybills in `state.waybills`; `belongs` picks one carrier's records.
    """
    with state.lock:
        wanted = list(state.waybills) if numbers is None else list(dict.fromkeys(numbers))
        collected = []
        for number in wanted:
            record = state.waybills.get(number)
            if (record is None or not belongs(record) or record.get("cancelled")
                    or record.get("picked_up_at")):
                continue
            record["picked_up_at"] = now
            collected.append(number)
        return collected


class PickupRequest(BaseModel):
    """Body of `POST /_sandbox/carrier/pickups`: name the waybills, or set `all`."""

    tracking_numbers: list[str] = Field(default_factory=list)
    all: bool = False


def _route_events(record: dict) -> list[dict]:
    picked_up_at = record.get("picked_up_at")
    if picked_up_at is None:
        return []  # SF has no route before the courier's first scan
    return [{
        "acceptTime": picked_up_at.astimezone(SF_CLOCK).strftime(ACCEPT_TIME_FORMAT),
        "acceptAddress": record.get("sender", {}).get("city") or "",
        "remark": "顺丰快递员已收取快件: the SF courier has collected the parcel",
        "opCode": OP_COLLECTED,
    }]


def _message(msg_data: str) -> dict | None:
    try:
        message = json.loads(msg_data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _is(value: object, expected: int) -> bool:
    # SF's own samples send these enums as strings ("1"), its field tables as numbers.
    return str(value).strip() == str(expected)


def search_routes(state: SandboxState, partner_id: str, msg_data: str) -> dict:
    """Handle EXP_RECE_SEARCH_ROUTES (by waybill number) once authenticated."""
    query = _message(msg_data)
    if query is None:
        return _refusal(ERROR_UNREADABLE_MESSAGE, "报文解析错误: msgData is not a JSON object")
    if not _is(query.get("trackingType", TRACKING_BY_WAYBILL), TRACKING_BY_WAYBILL):
        return _refusal(ERROR_BAD_TRACKING_TYPE,
                        "路由查询方式不合法: only trackingType 1 (waybill numbers) is simulated")
    if not _is(query.get("methodType", METHOD_STANDARD_ROUTES), METHOD_STANDARD_ROUTES):
        return _refusal(ERROR_BAD_METHOD_TYPE, "路由查询类别不合法: only methodType 1 is simulated")
    numbers = query.get("trackingNumber")
    if not isinstance(numbers, list) or not [n for n in numbers if present(n)]:
        return _refusal(ERROR_NO_TRACKING_NUMBER, "未传入查询单号: trackingNumber is empty")
    if len(numbers) > MAX_TRACKING_NUMBERS:
        return _refusal(ERROR_TOO_MANY_NUMBERS,
                        f"查询单号超过最大限制: at most {MAX_TRACKING_NUMBERS} numbers per call")
    answers = []
    with state.lock:
        for number in numbers:
            record = state.waybills.get(str(number))
            # Another account's parcel shows no routes, as if unknown: SF tells its
            # routes only to the account that ordered it.
            mine = record is not None and record.get("partner_id") == partner_id
            answers.append({"mailNo": str(number), "routes": _route_events(record) if mine else []})
    return _business(True, BUSINESS_OK, None, {"routeResps": answers})


def update_order(waybills: _Waybills, partner_id: str, msg_data: str) -> dict:
    """Handle EXP_RECE_UPDATE_ORDER once authenticated; dealType 2 cancels the waybill."""
    request = _message(msg_data)
    if request is None:
        return _refusal(ERROR_UNREADABLE_MESSAGE, "报文解析错误: msgData is not a JSON object")
    order_id = str(request.get("orderId") or "").strip()
    if not order_id:
        return _refusal(ERROR_ORDER_ID_MISSING, "订单号不能为空: orderId is missing")
    deal_type = request.get("dealType", DEAL_CONFIRM)  # SF's default is confirm [H]
    if not (_is(deal_type, DEAL_CONFIRM) or _is(deal_type, DEAL_CANCEL)):
        return _refusal(ERROR_BAD_DEAL_TYPE, "订单操作标识不合法: dealType must be 1 or 2")
    state = waybills.state
    with state.lock:
        number = waybills.existing(partner_id, order_id)
        if number is None:
            return _refusal(ERROR_ORDER_NOT_FOUND, "未获取到订单信息: no order with this orderId")
        record = state.waybills[number]
        if record.get("cancelled"):
            return _refusal(ERROR_ALREADY_CANCELLED, "已消单: the order is already cancelled")
        if _is(deal_type, DEAL_CONFIRM):
            return _refusal(ERROR_ALREADY_CONFIRMED,
                            "订单已确认: orders are confirmed when they are placed")
        # Checked under the same lock as `collect`, so a pickup and a cancel cannot both win.
        if record.get("picked_up_at"):
            return _refusal(ERROR_ALREADY_COLLECTED,
                            "此订单已经处理中,无法接收订单修改请求: "
                            "the courier has collected the parcel; it can no longer be cancelled")
        record["cancelled"] = True
    return _business(True, BUSINESS_OK, None,
                     {**_waybill_data(order_id, number), "resStatus": RES_STATUS_DONE})


def _authenticate(state: SandboxState, form: dict[str, str]) -> dict | None:
    """The envelope to answer with when the call is refused, or None when it may go on."""
    missing = [name for name in FORM_FIELDS if not form.get(name)]
    if missing:
        return _envelope(API_RESULT_MISSING_PARAMETER, f"必传参数不可为空: {', '.join(missing)}")
    checkword = state.app_secrets.get(form["partnerID"])
    expected = checkword and message_digest(form["msgData"], form["timestamp"], checkword)
    if not expected or not secrets.compare_digest(expected, form["msgDigest"]):
        return _envelope(API_RESULT_BAD_DIGEST, "数字签名无效: msgDigest does not match")
    if form["serviceCode"] not in SERVICES:
        return _envelope(API_RESULT_NO_SERVICE_RIGHT, f"无对应服务权限: {form['serviceCode']}")
    return None


def _fault_response(fault: Fault) -> Response | None:
    if fault.kind == "server_error":
        return Response("<html><body>503 Service Temporarily Unavailable</body></html>",
                        status_code=503, media_type="text/html")  # fmt: skip
    if fault.kind == "rate_limit":
        return Response(
            json.dumps(_envelope(API_RESULT_SYSTEM_ERROR, "请求过于频繁: too many requests")),
            status_code=429,
            media_type="application/json",
            headers={"Retry-After": str(fault.retry_after)},
        )
    if fault.kind == "malformed":
        return Response('{"apiResultCode": "A1000", "apiResultDa', media_type="application/json")
    if fault.kind == "expired_token":
        # The digest has no token to expire; the nearest real failure is a refused digest.
        return _json(_envelope(API_RESULT_BAD_DIGEST, "数字签名无效: msgDigest does not match"))
    return None


def _json(body: dict) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(tags=["sf-express"])
    waybills = _Waybills(state)

    @router.post(SERVICE_PATH)
    async def service(request: Request) -> Response:
        fault = state.faults.take("carrier")
        if fault and fault.kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        elif fault:
            refusal = _fault_response(fault)
            if refusal is not None:
                return refusal
        body = (await request.body()).decode("utf-8", errors="replace")
        form = {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}
        refusal_envelope = _authenticate(state, form)
        if refusal_envelope is not None:
            return _json(refusal_envelope)
        partner_id, msg_data = form["partnerID"], form["msgData"]
        if form["serviceCode"] == SEARCH_ROUTES_SERVICE:
            return _json(search_routes(state, partner_id, msg_data))
        if form["serviceCode"] == UPDATE_ORDER_SERVICE:
            return _json(update_order(waybills, partner_id, msg_data))
        return _json(create_order(waybills, partner_id, msg_data))

    return router
