"""YTO Express (圆通速递) e-waybill simulator, shaped like YTO's open platform.

Each API has its own path: `POST https://openapi.yto.net.cn:11443/open/{method}/v1/
{userId}/{customerCode}` (here `POST /yto/open/...`) [M], with a JSON body
`{timestamp (ms), param (the business JSON as a string), sign, format: "JSON"}` [M] and
`sign` = Base64 of the raw MD5 of `param + method + "v1" + secret` [M]. Three methods
are simulated:

* `privacy_create_adapter`: order a parcel by our `logisticsNo` and take its `mailNo`;
* `track_query_adapter`: the trace of one waybill number (`{"NUMBER": ...}`); the
  pickup event (infoContent `GOT`, 已揽收) is what releases reserved stock;
* `korder_cancel_adapter`: cancel by `logisticsNo`, allowed until pickup.

Refusals come back with HTTP 200 as `{"success": false, "code", "message"}` [L]; a
trace query that finds nothing answers `{"success": true, "code": "1001", "map":
{number: []}, "message": "查询结果为空。"}` [M]. The courier "comes" only when a test or
the demo calls `collect` (or `POST /_sandbox/carrier/pickups`, which marks every
carrier's waybills in `state.waybills`). Records carry `carrier: "YTO"`, `picked_up_at`
and `cancelled`, like SF's.

[H] marks what YTO's own pages show, [M] what copies of YTO's pages and several
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

CARRIER = "YTO"
FAULT_PLATFORM = "yto"  # arm faults for this simulator with this platform name
PATH_PREFIX = "/yto/open"
VERSION = "v1"  # [M]
CREATE_METHOD = "privacy_create_adapter"  # [M]
TRACK_METHOD = "track_query_adapter"  # [M]
CANCEL_METHOD = "korder_cancel_adapter"  # [M]
METHODS = frozenset({CREATE_METHOD, TRACK_METHOD, CANCEL_METHOD})
BODY_FIELDS = ("timestamp", "param", "sign", "format")

CODE_OK = "0"  # [L] code of a success that is not a trace
CODE_TRACE_EMPTY = "1001"  # [M] 查询结果为空
ERROR_BAD_REQUEST = "S01"  # [L] body unreadable or a required field missing
ERROR_BAD_SIGN = "S02"  # [L] 签名验证失败 (also: unknown userId)
ERROR_NO_METHOD = "S03"  # [L] 接口不存在或未开通
ERROR_TOO_MANY_CALLS = "S05"  # [L] 调用频率超限
ERROR_MISSING_FIELD = "B01"  # [L] a required business field is missing
ERROR_BAD_ADDRESS = "B02"  # [L] 收件地址无法识别
ERROR_BAD_PHONE = "B03"  # [L] 收件人电话不正确
ERROR_CANCELLED_ORDER = "B04"  # [L] the logisticsNo belongs to a cancelled order
ERROR_ORDER_NOT_FOUND = "B05"  # [L] 订单不存在
ERROR_ALREADY_CANCELLED = "B06"  # [L] 订单已取消
ERROR_ALREADY_COLLECTED = "B07"  # [L] 已揽收,不能取消

INFO_COLLECTED = "GOT"  # [M] infoContent of the pickup event (已揽收)
INFO_SIGNED = "SIGNED"  # [M] delivery; kept for clients, not emitted here
YTO_CLOCK = timezone(timedelta(hours=8))  # [M] upload_Time is Beijing time without offset
UPLOAD_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # [M]
MAIL_PREFIX = "YT"  # [M] YT + 13 digits in samples
MIN_PHONE_DIGITS = 7
CIPHERTEXT_MARKS = ("$", "~")


def sign(param: str, method: str, secret: str, version: str = VERSION) -> str:
    """YTO's sign: Base64 of the raw MD5 of param + method + version + secret."""
    raw = hashlib.md5((param + method + version + secret).encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def _secret_key(user_id: str) -> str:
    return f"yto:{user_id}"


def register_account(state: SandboxState, user_id: str, customer_code: str = "K21000119") -> dict:
    """Open a YTO customer account; the secret is the shared secret of the sign."""
    secret = secrets.token_urlsafe(12)
    with state.lock:
        state.app_secrets[_secret_key(user_id)] = secret
    return {"user_id": user_id, "customer_code": customer_code, "secret": secret}


def _refusal(code: str, message: str) -> dict:
    return {"success": False, "code": code, "message": message}



def recipient_problem(order: dict) -> tuple[str, str] | None:
    """The first reason YTO would refuse this recipient, as (code, message)."""
    for name in ("recipientName", "recipientProvinceName", "recipientCityName", "recipientAddress"):
        if not sf.present(order.get(name)):
            return ERROR_MISSING_FIELD, f"{name}不能为空: {name} is missing"
    if not is_known_province(order["recipientProvinceName"]):
        return ERROR_BAD_ADDRESS, "收件地址无法识别: recipientProvinceName is not a known province"
    phone = order.get("recipientMobile")
    if not sf.present(phone):
        return ERROR_MISSING_FIELD, "recipientMobile不能为空: recipientMobile is missing"
    if not phone.startswith(CIPHERTEXT_MARKS) and sum(c.isdigit() for c in phone) < MIN_PHONE_DIGITS:
        return ERROR_BAD_PHONE, "收件人电话不正确: recipientMobile is too short"
    return None


def sender_problem(order: dict) -> tuple[str, str] | None:
    names = ("senderName", "senderProvinceName", "senderCityName", "senderAddress", "senderMobile")
    for name in names:
        if not sf.present(order.get(name)):
            return ERROR_MISSING_FIELD, f"{name}不能为空: {name} is missing"
    return None


class _Orders:
    """Issues mail numbers and remembers which logisticsNo got which, per user."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.by_logistics_no: dict[tuple[str, str], str] = {}
        self.serials = itertools.count(int(time.time() * 1000) % 10**12)

    def existing(self, user_id: str, logistics_no: str) -> str | None:
        number = self.by_logistics_no.get((user_id, logistics_no))
        return number if number in self.state.waybills else None

    def issue(self, user_id: str, order: dict) -> str:
        logistics_no = str(order["logisticsNo"])
        with self.state.lock:
            number = self.existing(user_id, logistics_no)
            if number:
                return number
            number = self._next_number()
            self.state.waybills[number] = {
                "carrier": CARRIER,
                "user_id": user_id,
                "order_id": logistics_no,
                "receiver": {k: v for k, v in order.items() if k.startswith("recipient")},
                "sender": {k: v for k, v in order.items() if k.startswith("sender")},
                "goods": order.get("goods") or [],
                "weight": order.get("weight"),
                "issued_at": datetime.now(timezone.utc),
                "picked_up_at": None,  # set by `collect` when the courier takes the parcel
                "cancelled": False,
            }
            self.by_logistics_no[(user_id, logistics_no)] = number
            return number

    def _next_number(self) -> str:
        while True:
            number = f"{MAIL_PREFIX}{next(self.serials) % 10**13:013d}"
            if number not in self.state.waybills:
                return number


def create_order(orders: _Orders, user_id: str, order: dict) -> dict:
    logistics_no = str(order.get("logisticsNo") or "").strip()
    if not logistics_no:
        return _refusal(ERROR_MISSING_FIELD, "logisticsNo不能为空: logisticsNo is missing")
    number = orders.existing(user_id, logistics_no)
    if number is None:
        problem = sender_problem(order) or recipient_problem(order)
        if problem:
            return _refusal(*problem)
        number = orders.issue(user_id, order)
    if orders.state.waybills[number]["cancelled"]:
        return _refusal(ERROR_CANCELLED_ORDER,
                        "订单已取消,物流单号不能重复使用: this logisticsNo was cancelled")
    # [L] a repeated logisticsNo answers with the waybill already issued.
    return {"logisticsNo": logistics_no, "mailNo": number, "shortAddress": "300-H12-09",
            "success": True, "code": CODE_OK}  # fmt: skip


def _trace(record: dict, number: str) -> list[dict]:
    picked_up_at = record.get("picked_up_at")
    if picked_up_at is None:
        return []
    city = (record.get("sender") or {}).get("senderCityName") or ""
    return [{
        "waybill_No": number,
        "upload_Time": picked_up_at.astimezone(YTO_CLOCK).strftime(UPLOAD_TIME_FORMAT),
        "infoContent": INFO_COLLECTED,
        "processInfo": f"【{city}】已揽收: the YTO courier has collected the parcel",
        "city": city,
    }]


def track_query(state: SandboxState, user_id: str, query: dict) -> dict | list:
    number = str(query.get("NUMBER") or query.get("Number") or "").strip()
    if not number:
        return _refusal(ERROR_MISSING_FIELD, "NUMBER不能为空: NUMBER is missing")
    with state.lock:
        record = state.waybills.get(number)
        # Another account's parcel reads as unknown [L].
        mine = record is not None and record.get("carrier") == CARRIER and record["user_id"] == user_id
        events = _trace(record, number) if mine else []
    if not events:
        return {"success": True, "code": CODE_TRACE_EMPTY, "map": {number: []},
                "message": "查询结果为空。"}  # fmt: skip
    return events  # [M] a trace found is a bare list of events


def cancel_order(orders: _Orders, user_id: str, request: dict) -> dict:
    logistics_no = str(request.get("logisticsNo") or "").strip()
    if not logistics_no:
        return _refusal(ERROR_MISSING_FIELD, "logisticsNo不能为空: logisticsNo is missing")
    state = orders.state
    with state.lock:
        number = orders.existing(user_id, logistics_no)
        if number is None:
            return _refusal(ERROR_ORDER_NOT_FOUND, "订单不存在: no order with this logisticsNo")
        record = state.waybills[number]
        if record["cancelled"]:
            return _refusal(ERROR_ALREADY_CANCELLED, "订单已取消: the order is already cancelled")
        if record.get("picked_up_at"):
            return _refusal(ERROR_ALREADY_COLLECTED,
                            "订单已揽收,不能取消: the courier has collected the parcel")
        record["cancelled"] = True
    return {"success": True, "code": CODE_OK, "message": "取消成功", "logisticsNo": logistics_no}


def collect(state: SandboxState, numbers: Iterable[str] | None, now: datetime) -> list[str]:
    """The YTO courier came at `now` for these parcels (all YTO parcels when None);
    SF's rules apply and other carriers' waybills are left alone."""
    return sf.collect(state, numbers, now, belongs=lambda record: record.get("carrier") == CARRIER)


def _json(body: object, status_code: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status_code=status_code,
                    media_type="application/json", headers=headers)  # fmt: skip


def _fault_response(fault: Fault) -> Response | None:
    if fault.kind == "server_error":
        return Response("<html><body>503 Service Unavailable</body></html>", status_code=503,
                        media_type="text/html")  # fmt: skip
    if fault.kind == "rate_limit":
        return _json(_refusal(ERROR_TOO_MANY_CALLS, "调用频率超限: too many requests"),
                     status_code=429, headers={"Retry-After": str(fault.retry_after)})  # fmt: skip
    if fault.kind == "malformed":
        return Response('{"mailNo": "YT', media_type="application/json")
    if fault.kind == "expired_token":
        return _json(_refusal(ERROR_BAD_SIGN, "签名验证失败"))
    return None


def _authenticate(state: SandboxState, method: str, user_id: str, body: dict) -> dict | None:
    missing = [name for name in BODY_FIELDS if not sf.present(str(body.get(name) or ""))]
    if missing:
        return _refusal(ERROR_BAD_REQUEST, f"参数不能为空: {', '.join(missing)}")
    secret = state.app_secrets.get(_secret_key(user_id))
    expected = secret and sign(str(body["param"]), method, secret)
    if not expected or not secrets.compare_digest(expected, str(body["sign"])):
        return _refusal(ERROR_BAD_SIGN, "签名验证失败: sign does not match")
    return None


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(tags=["yto-express"])
    orders = _Orders(state)

    @router.post(PATH_PREFIX + "/{method}/{version}/{user_id}/{customer_code}")
    async def gateway(method: str, version: str, user_id: str, customer_code: str,
                      request: Request) -> Response:  # fmt: skip
        fault = state.faults.take(FAULT_PLATFORM)
        if fault and fault.kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        elif fault:
            refusal = _fault_response(fault)
            if refusal is not None:
                return refusal
        if method not in METHODS or version != VERSION:
            return _json(_refusal(ERROR_NO_METHOD, f"接口不存在或未开通: {method}/{version}"))
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _json(_refusal(ERROR_BAD_REQUEST, "请求报文不是JSON: body is not a JSON object"))
        refusal = _authenticate(state, method, user_id, body)
        if refusal is not None:
            return _json(refusal)
        try:
            param = json.loads(body["param"])
        except ValueError:
            param = None
        if not isinstance(param, dict):
            return _json(_refusal(ERROR_BAD_REQUEST, "param不是JSON: param is not a JSON object"))
        if method == CREATE_METHOD:
            return _json(create_order(orders, user_id, param))
        if method == TRACK_METHOD:
            return _json(track_query(state, user_id, param))
        return _json(cancel_order(orders, user_id, param))

    return router
