"""ZTO Express (中通快递) e-waybill simulator, shaped like ZTO's open platform (ZOP).

Every ZOP API is its own path on one gateway: `POST https://japi.zto.com/{apiName}`
(here `POST /zto/{apiName}`), a JSON body, and two headers: `x-appKey` (the app) and
`x-dataDigest`, Base64 of the raw MD5 of `body + appSecret` [M]. Three APIs are simulated:

* `zto.open.createOrder`: order a parcel by our `partnerOrderCode` and take its
  `billCode` (the waybill number);
* `zto.merchant.waybill.track.query`: the scans of one waybill; the pickup scan
  (action `GOT`, scanType 收件) is what releases a shipped order's reserved stock;
* `zto.open.cancelPreOrder`: cancel by `billCode` or ZTO's `orderCode`, which ZTO allows
  only until the courier has collected the parcel;

and one helper the connector needs to cancel by our own reference:

* `zto.open.getOrderInfo` [L]: the order ZTO holds for a `partnerOrderCode`.

Every answer is `{"result", "message", "status", "statusCode"}` with HTTP 200, refusals
included: `status` false and a statusCode saying why (S211 bad digest, S208 a required
field is missing, S206/S221 call limits) [M]. The courier "comes" only when a test or
the demo calls `collect` (or `POST /_sandbox/carrier/pickups`, which marks every
carrier's waybills in `state.waybills`). Records carry `carrier: "ZTO"`, `picked_up_at`
and `cancelled`, like SF's.

[H] marks what ZTO's own pages show, [M] what copies of ZTO's pages and several
independent clients agree on, [L] our best guess, not checked.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import secrets
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Request, Response

from sandbox import carrier as sf
from sandbox.geography import is_known_province
from sandbox.model import Fault, SandboxState

CARRIER = "ZTO"
FAULT_PLATFORM = "zto"  # arm faults for this simulator with this platform name
PATH_PREFIX = "/zto"
CREATE_ORDER_API = "zto.open.createOrder"  # [H]
TRACK_QUERY_API = "zto.merchant.waybill.track.query"  # [M]
CANCEL_API = "zto.open.cancelPreOrder"  # [M]
ORDER_INFO_API = "zto.open.getOrderInfo"  # [L] name not checked
APIS = frozenset({CREATE_ORDER_API, TRACK_QUERY_API, CANCEL_API, ORDER_INFO_API})

STATUS_CREATED = "0000"  # [M] statusCode of a createOrder that went through
STATUS_OK = "SYS000"  # [M] statusCode of the other APIs' successes
ERROR_MISSING_FIELD = "S208"  # [M] XX不能为空: a required parameter is missing
ERROR_BAD_DIGEST = "S211"  # [M] 签名错误 (also: unknown x-appKey)
ERROR_API_MISSING = "S207"  # [M] API不存在
ERROR_QOS_LIMIT = "S206"  # [M] api qos limit: calls per minute/hour reached
ERROR_QPS_LIMIT = "S221"  # [M] api qps flow limit
ERROR_BACKEND = "S202"  # [M] 发生错误: the backend service threw
ERROR_BAD_ADDRESS = "E1001"  # [L] receiver region not recognised
ERROR_BAD_PHONE = "E1002"  # [L] receiver phone unusable
ERROR_CANCELLED_ORDER = "E1003"  # [L] partnerOrderCode belongs to a cancelled order
ERROR_ORDER_NOT_FOUND = "E1004"  # [L] no order with this code
ERROR_ALREADY_CANCELLED = "E1005"  # [L] 订单已取消
ERROR_ALREADY_COLLECTED = "E1006"  # [L] 已揽收,不能取消

ACTION_COLLECTED = "GOT"  # [M] pushed trace action of the pickup scan (揽收)
ACTION_SIGNED = "SIGNED"  # [M] delivery; kept for clients, not emitted here
SCAN_TYPE_COLLECTED = "收件"  # [M] scanType of the pickup scan in track queries
BILL_PREFIX = "73"  # [M] ZTO numbers in samples: 14 digits beginning 73
MIN_PHONE_DIGITS = 7
CIPHERTEXT_MARKS = ("$", "~")


def data_digest(body: str, app_secret: str) -> str:
    """ZOP's x-dataDigest: Base64 of the raw MD5 of the body followed by the secret."""
    raw = hashlib.md5((body + app_secret).encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def _secret_key(app_key: str) -> str:
    return f"zto:{app_key}"


def register_account(state: SandboxState, app_key: str) -> dict:
    """Open a ZOP app; the appSecret is the shared secret of the digest."""
    app_secret = secrets.token_hex(16)
    with state.lock:
        state.app_secrets[_secret_key(app_key)] = app_secret
    return {"app_key": app_key, "app_secret": app_secret}


def _answer(status: bool, code: str, message: str, result: object = None) -> dict:
    return {"result": result, "message": message, "status": status, "statusCode": code}


def _refusal(code: str, message: str) -> dict:
    return _answer(False, code, message)



def receiver_problem(receiver: dict) -> tuple[str, str] | None:
    """The first reason ZTO would refuse this receiver, as (statusCode, message)."""
    for name in ("receiverName", "receiverProvince", "receiverCity", "receiverAddress"):
        if not sf.present(receiver.get(name)):
            return ERROR_MISSING_FIELD, f"{name}不能为空: {name} is missing"
    if not is_known_province(receiver["receiverProvince"]):
        return ERROR_BAD_ADDRESS, "收件省份无法识别: receiverProvince is not a known province"
    phone = receiver.get("receiverMobile") or receiver.get("receiverPhone")
    if not sf.present(phone):
        return ERROR_MISSING_FIELD, "receiverMobile不能为空: receiverMobile is missing"
    if not phone.startswith(CIPHERTEXT_MARKS) and sum(c.isdigit() for c in phone) < MIN_PHONE_DIGITS:
        return ERROR_BAD_PHONE, "收件人电话不正确: receiverMobile is too short"
    return None


def sender_problem(sender: dict) -> tuple[str, str] | None:
    for name in ("senderName", "senderProvince", "senderCity", "senderAddress"):
        if not sf.present(sender.get(name)):
            return ERROR_MISSING_FIELD, f"{name}不能为空: {name} is missing"
    if not (sf.present(sender.get("senderMobile")) or sf.present(sender.get("senderPhone"))):
        return ERROR_MISSING_FIELD, "senderMobile不能为空: senderMobile is missing"
    return None


class _Orders:
    """Issues bill codes and remembers which partner order got which, per app."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.by_partner_order: dict[tuple[str, str], str] = {}
        # Never hand out a number twice, even across demo restarts: start from the clock.
        self.serials = itertools.count(int(time.time() * 1000) % 10**11)

    def existing(self, app_key: str, partner_order_code: str) -> str | None:
        number = self.by_partner_order.get((app_key, partner_order_code))
        return number if number in self.state.waybills else None

    def by_code(self, app_key: str, bill_code: str, order_code: str) -> str | None:
        """The bill code of this app's order named by billCode or ZTO's orderCode."""
        for number in (bill_code, *self._numbers_of_order_code(order_code)):
            record = self.state.waybills.get(number) if number else None
            if record and record.get("carrier") == CARRIER and record["app_key"] == app_key:
                return number
        return None

    def _numbers_of_order_code(self, order_code: str) -> list[str]:
        if not order_code:
            return []
        return [n for n, r in self.state.waybills.items()
                if r.get("carrier") == CARRIER and r.get("order_code") == order_code]  # fmt: skip

    def issue(self, app_key: str, order: dict) -> tuple[str, bool]:
        partner_order_code = str(order["partnerOrderCode"])
        with self.state.lock:
            number = self.existing(app_key, partner_order_code)
            if number:
                return number, False
            number = self._next_number()
            now = datetime.now(timezone.utc)
            self.state.waybills[number] = {
                "carrier": CARRIER,
                "app_key": app_key,
                "order_id": partner_order_code,
                "order_code": now.strftime("%y%m%d") + f"{next(self.serials) % 10**12:012d}",
                "receiver": order.get("receiveInfo") or {},
                "sender": order.get("senderInfo") or {},
                "items": order.get("orderItems") or [],
                "issued_at": now,
                "picked_up_at": None,  # set by `collect` when the courier takes the parcel
                "cancelled": False,
            }
            self.by_partner_order[(app_key, partner_order_code)] = number
            return number, True

    def _next_number(self) -> str:
        while True:
            number = f"{BILL_PREFIX}{next(self.serials):012d}"
            if number not in self.state.waybills:
                return number


def _created(record: dict, number: str) -> dict:
    return _answer(True, STATUS_CREATED, "成功", {
        "billCode": number,
        "orderCode": record["order_code"],
        "partnerOrderCode": record["order_id"],
        "siteCode": "02100",
        "siteName": "上海",
        "bigMarkInfo": {"mark": "300- H12 09", "bagAddr": "沪西"},
        "verifyCode": None,
        "signBillInfo": None,
    })


def create_order(orders: _Orders, app_key: str, order: dict) -> dict:
    partner_order_code = str(order.get("partnerOrderCode") or "").strip()
    if not partner_order_code:
        return _refusal(ERROR_MISSING_FIELD, "partnerOrderCode不能为空: partnerOrderCode is missing")
    number = orders.existing(app_key, partner_order_code)
    if number is None:
        sender, receiver = order.get("senderInfo"), order.get("receiveInfo")
        if not isinstance(sender, dict) or not isinstance(receiver, dict):
            return _refusal(ERROR_MISSING_FIELD, "senderInfo/receiveInfo不能为空")
        problem = sender_problem(sender) or receiver_problem(receiver)
        if problem:
            return _refusal(*problem)
        number, _ = orders.issue(app_key, order)
    record = orders.state.waybills[number]
    if record.get("cancelled"):
        # [L] ZTO's behaviour for a reused code is not published; a dead number must never
        # come back as if it could still be printed.
        return _refusal(ERROR_CANCELLED_ORDER,
                        "订单已取消,不能重复使用: this partnerOrderCode was cancelled")
    # [L] asking again with the same partnerOrderCode answers with the order ZTO holds.
    return _created(record, number)


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _epoch_millis(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)  # exact, unlike float seconds


def _scans(record: dict, number: str) -> list[dict]:
    picked_up_at = record.get("picked_up_at")
    if picked_up_at is None:
        return []  # no trace before the courier's first scan
    city = (record.get("sender") or {}).get("senderCity") or ""
    return [{
        "billCode": number,
        "action": ACTION_COLLECTED,
        "scanType": SCAN_TYPE_COLLECTED,
        "scanDate": _epoch_millis(picked_up_at),  # [L] milliseconds since the epoch
        "scanCity": city,
        "desc": f"【{city}】的业务员已揽收: the ZTO courier has collected the parcel",
    }]


def track_query(state: SandboxState, app_key: str, query: dict) -> dict:
    number = str(query.get("billCode") or "").strip()
    if not number:
        return _refusal(ERROR_MISSING_FIELD, "billCode不能为空: billCode is missing")
    with state.lock:
        record = state.waybills.get(number)
        # [L] another app's parcel reads as unknown here; ZTO asks for the last four
        # digits of a phone (mobilePhone) before it tells strangers a parcel's trace.
        mine = record is not None and record.get("carrier") == CARRIER and record["app_key"] == app_key
        return _answer(True, STATUS_OK, "请求成功", _scans(record, number) if mine else [])


def order_info(orders: _Orders, app_key: str, query: dict) -> dict:
    partner_order_code = str(query.get("partnerOrderCode") or "").strip()
    if not partner_order_code:
        return _refusal(ERROR_MISSING_FIELD, "partnerOrderCode不能为空: partnerOrderCode is missing")
    with orders.state.lock:
        number = orders.existing(app_key, partner_order_code)
        if number is None:
            return _refusal(ERROR_ORDER_NOT_FOUND, "订单不存在: no order with this partnerOrderCode")
        record = orders.state.waybills[number]
        return _answer(True, STATUS_OK, "请求成功", {
            "billCode": number,
            "orderCode": record["order_code"],
            "partnerOrderCode": partner_order_code,
            "cancelled": record["cancelled"],
        })


def cancel_pre_order(orders: _Orders, app_key: str, request: dict) -> dict:
    if not sf.present(str(request.get("cancelType") or "")):
        return _refusal(ERROR_MISSING_FIELD, "cancelType不能为空: cancelType is missing")
    bill_code = str(request.get("billCode") or "").strip()
    order_code = str(request.get("orderCode") or "").strip()
    if not (bill_code or order_code):
        return _refusal(ERROR_MISSING_FIELD, "orderCode与billCode必传其一: give orderCode or billCode")
    state = orders.state
    with state.lock:
        number = orders.by_code(app_key, bill_code, order_code)
        if number is None:
            return _refusal(ERROR_ORDER_NOT_FOUND, "订单不存在: no order with this code")
        record = state.waybills[number]
        if record["cancelled"]:
            return _refusal(ERROR_ALREADY_CANCELLED, "订单已取消: the order is already cancelled")
        # Checked under the same lock as `collect`, so a pickup and a cancel cannot both win.
        if record.get("picked_up_at"):
            return _refusal(ERROR_ALREADY_COLLECTED,
                            "订单已揽收,不能取消: the courier has collected the parcel")
        record["cancelled"] = True
    return _answer(True, STATUS_OK, "请求成功", {})


def collect(state: SandboxState, numbers: Iterable[str] | None, now: datetime) -> list[str]:
    """The ZTO courier came at `now` for these parcels (all ZTO parcels when None);
    SF's rules apply and other carriers' waybills are left alone."""
    return sf.collect(state, numbers, now, belongs=lambda record: record.get("carrier") == CARRIER)


def _json(body: dict, status_code: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status_code=status_code,
                    media_type="application/json", headers=headers)  # fmt: skip


def _fault_response(fault: Fault) -> Response | None:
    if fault.kind == "server_error":
        return Response("<html><body>502 Bad Gateway</body></html>", status_code=502,
                        media_type="text/html")  # fmt: skip
    if fault.kind == "rate_limit":
        # [M] ZOP states S221 with HTTP 200; the armed fault also sets 429 and Retry-After,
        # as the gateway in front of it does under load [L].
        return _json(_refusal(ERROR_QPS_LIMIT, "api qps flow limit"), status_code=429,
                     headers={"Retry-After": str(fault.retry_after)})  # fmt: skip
    if fault.kind == "malformed":
        return Response('{"result": {"billCode": "73', media_type="application/json")
    if fault.kind == "expired_token":
        # ZOP has no token; the nearest real failure is a refused digest.
        return _json(_refusal(ERROR_BAD_DIGEST, "签名错误"))
    return None


def _authenticate(state: SandboxState, app_key: str, digest: str, body: str) -> dict | None:
    if not app_key or not digest:
        return _refusal(ERROR_MISSING_FIELD, "x-appKey/x-dataDigest不能为空")
    app_secret = state.app_secrets.get(_secret_key(app_key))
    expected = app_secret and data_digest(body, app_secret)
    if not expected or not secrets.compare_digest(expected, digest):
        return _refusal(ERROR_BAD_DIGEST, "签名错误: x-dataDigest does not match")
    return None


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(tags=["zto-express"])
    orders = _Orders(state)

    @router.post(PATH_PREFIX + "/{api_name}")
    async def gateway(api_name: str, request: Request) -> Response:
        fault = state.faults.take(FAULT_PLATFORM)
        if fault and fault.kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        elif fault:
            refusal = _fault_response(fault)
            if refusal is not None:
                return refusal
        if api_name not in APIS:
            return _json(_refusal(ERROR_API_MISSING, f"API不存在: {api_name}"))
        body = (await request.body()).decode("utf-8", errors="replace")
        app_key = request.headers.get("x-appKey", "")
        refusal = _authenticate(state, app_key, request.headers.get("x-dataDigest", ""), body)
        if refusal is not None:
            return _json(refusal)
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            return _json(_refusal(ERROR_BACKEND, "发生错误: body is not a JSON object"))
        if api_name == CREATE_ORDER_API:
            return _json(create_order(orders, app_key, message))
        if api_name == TRACK_QUERY_API:
            return _json(track_query(state, app_key, message))
        if api_name == ORDER_INFO_API:
            return _json(order_info(orders, app_key, message))
        return _json(cancel_pre_order(orders, app_key, message))

    return router
