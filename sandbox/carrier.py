"""SF Express e-waybill API simulator, shaped like SF's "丰桥" sfapi gateway.

One form-encoded endpoint, `POST /sf/std/service` (the real host serves `/std/service`),
takes `partnerID, requestID, serviceCode, timestamp, msgDigest, msgData`. The digest is
Base64 of the raw MD5 of `quote_plus(msgData + timestamp + checkword)` [H]. Only
`EXP_RECE_CREATE_ORDER` (order and take a waybill number) is simulated.

Failures come back in two layers, as on the real gateway: the envelope's
`apiResultCode` says whether the platform accepted the call at all (signature,
parameters); `apiResultData.success` says whether SF accepted the order (address,
contact). The codes marked [L] below are our best memory of SF's, not checked.

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
from datetime import datetime, timezone
from urllib.parse import parse_qs, quote_plus

from fastapi import APIRouter, Request, Response

from sandbox.geography import is_known_province
from sandbox.model import Fault, SandboxState

SERVICE_PATH = "/sf/std/service"
CREATE_ORDER_SERVICE = "EXP_RECE_CREATE_ORDER"  # [H]

API_RESULT_OK = "A1000"  # [M] platform accepted the call
API_RESULT_MISSING_PARAMETER = "A1001"  # [L] a required form field is empty or unreadable
API_RESULT_NO_SERVICE_RIGHT = "A1004"  # [L] unknown service code for this partner
API_RESULT_BAD_DIGEST = "A1006"  # [L] msgDigest does not match, or unknown partnerID
API_RESULT_SYSTEM_ERROR = "A1099"  # [L] gateway-side failure; a retry may succeed

BUSINESS_OK = "S0000"  # [L] errorCode that comes with success=true
ERROR_SENDER_INCOMPLETE = "1010"  # [L] 寄件地址/联系人/电话 missing
ERROR_RECEIVER_ADDRESS = "1014"  # [L] 到件地址 missing or not a real region
ERROR_RECEIVER_CONTACT = "1015"  # [L] 到件联系人 missing
ERROR_RECEIVER_MOBILE = "1016"  # [L] 到件电话 missing or unusable
ERROR_DUPLICATE_ORDER = "8016"  # [L] 重复下单: orderId already has a waybill
ERROR_BAD_ORDER_DATA = "8024"  # [L] msgData not a valid order (orderId, contacts)

WAYBILL_TYPE_MAIN = 1  # [M] waybillType of the main (parent) waybill
WAYBILL_PREFIX = "SF"
FIRST_WAYBILL_SERIAL = 1_000_000_000_01  # 12 digits once formatted
CIPHERTEXT_MARKS = ("$", "~")  # PDD: '$…$' phones, '~…~' names and addresses [M]
MIN_PHONE_DIGITS = 7  # shortest plausible landline without area code

SENDER, RECEIVER = 1, 2  # contactType [H]
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


def _present(value: object) -> bool:
    return isinstance(value, str) and value.strip() != ""


def receiver_problem(contact: dict) -> tuple[str, str] | None:
    """The first reason SF would refuse this receiver, as (errorCode, errorMsg)."""
    abroad = contact.get("country", "CN") != "CN"
    # SF International labels abroad need no Chinese province; many countries have none.
    for field in ("city", "address") if abroad else ("province", "city", "address"):
        if not _present(contact.get(field)):
            return ERROR_RECEIVER_ADDRESS, f"到件方{field}不能为空: receiver {field} is missing"
    if not abroad and not is_known_province(contact["province"]):
        return ERROR_RECEIVER_ADDRESS, "到件方province无效: receiver province is not a known province"
    if not _present(contact.get("contact")):
        return ERROR_RECEIVER_CONTACT, "到件方contact不能为空: receiver contact name is missing"
    phone = contact.get("mobile") or contact.get("tel")
    if not _present(phone):
        return ERROR_RECEIVER_MOBILE, "到件方mobile不能为空: receiver mobile is missing"
    if not is_ciphertext(phone) and sum(ch.isdigit() for ch in phone) < MIN_PHONE_DIGITS:
        return ERROR_RECEIVER_MOBILE, "到件方mobile无效: receiver mobile is too short"
    return None


def sender_problem(contact: dict) -> tuple[str, str] | None:
    required = ("province", "city", "address", "contact")
    missing = [name for name in required if not _present(contact.get(name))]
    if not (_present(contact.get("mobile")) or _present(contact.get("tel"))):
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
    if not isinstance(order, dict) or not _present(str(order.get("orderId") or "")):
        return _refusal(ERROR_BAD_ORDER_DATA, "orderId不能为空: orderId is missing")
    order_id = str(order["orderId"])
    number = waybills.existing(partner_id, order_id)
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


def _authenticate(state: SandboxState, form: dict[str, str]) -> dict | None:
    """The envelope to answer with when the call is refused, or None when it may go on."""
    missing = [name for name in FORM_FIELDS if not form.get(name)]
    if missing:
        return _envelope(API_RESULT_MISSING_PARAMETER, f"必传参数不可为空: {', '.join(missing)}")
    checkword = state.app_secrets.get(form["partnerID"])
    expected = checkword and message_digest(form["msgData"], form["timestamp"], checkword)
    if not expected or not secrets.compare_digest(expected, form["msgDigest"]):
        return _envelope(API_RESULT_BAD_DIGEST, "数字签名无效: msgDigest does not match")
    if form["serviceCode"] != CREATE_ORDER_SERVICE:
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
        return _json(create_order(waybills, form["partnerID"], form["msgData"]))

    return router
