"""JD Logistics (京东物流) e-waybill simulator, shaped like JD's JOS gateway (`/routerjson`).

JD Logistics' older merchant APIs (青龙/LDOP) are JOS methods: a form (or query) with
`method, app_key, access_token, timestamp (yyyy-MM-dd HH:mm:ss, China time), v=2.0,
360buy_param_json, sign`, where sign is the uppercase hex MD5 of
secret + sorted key/value pairs + secret [H] (the same signing as JD's marketplace APIs).
Three methods are simulated, at `POST /jdl/routerjson`:

* `jingdong.ldop.waybill.receive` (接单/取号) [H name; fields from the JOS SDK's request
  class: customerCode, orderId, senderName/Address/Mobile, receiveName/Address/Mobile,
  province, city, county, packageCount, weight]: answers
  `receiveorderinfo_result{resultCode, resultMessage, orderId, deliveryId}` where
  resultCode 100 is success and `deliveryId` the waybill code [M];
* `jingdong.ldop.receive.trace.get` (全程跟踪, one waybillCode a call) [H name]: answers
  `querytrace_result{code, msg, data[{opeTitle, opeRemark, opeName, opeTime, waybillCode}]}`
  [M]; the pickup event's opeTitle is "揽收" [L];
* `jingdong.ldop.receive.order.intercept` (拦截/取消, by vendorCode + deliveryId) [H name
  and fields]: answers `resultInfo{stateCode, stateMessage}` with 100 = done [L].

Envelopes are JD's `<method_with_underscores>_responce{code:"0", <result>}` (sic) and
gateway refusals `error_response{code, zh_desc, en_desc}` with HTTP 200 [H]. Business
codes other than 100 are not published in what we found: they are [L].

The same orderId twice gets the number issued the first time (success again) [L]; a
cancelled orderId cannot get a new number. Nothing collects a parcel by itself: `collect`
(or `POST /_sandbox/carrier/pickups`) does. Faults are armed for platform "jdl".
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from sandbox import carrier as sf
from sandbox.geography import is_known_province
from sandbox.jd import sign
from sandbox.model import SandboxState, SimToken

CARRIER = "JD"
FAULTS = "jdl"  # the platform name faults are armed under
GATEWAY_PATH = "/jdl/routerjson"
RECEIVE = "jingdong.ldop.waybill.receive"  # [H]
TRACE = "jingdong.ldop.receive.trace.get"  # [H]
INTERCEPT = "jingdong.ldop.receive.order.intercept"  # [H]
METHODS = frozenset({RECEIVE, TRACE, INTERCEPT})
PARAM_JSON = "360buy_param_json"  # [H]
API_VERSION = "2.0"  # [H]
JD_CLOCK = timezone(timedelta(hours=8))  # [H] JOS timestamps are China time
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # [H]
CLOCK_SKEW = timedelta(minutes=10)  # [M] JOS refuses timestamps further off

# Gateway refusals (error_response); the same codes as the JD marketplace simulator [M].
INVALID_APP_KEY = ("19", "无效的app_key", "Invalid app_key")
INVALID_SIGN = ("14", "签名无效", "Invalid signature")
INVALID_TOKEN = ("12", "无效的access_token", "Invalid access_token")
INVALID_METHOD = ("22", "无效的方法", "Invalid method")
INVALID_TIMESTAMP = ("25", "时间戳错误", "Invalid timestamp")
INVALID_PARAMETER = ("66", "参数错误", "Invalid parameter")

RESULT_OK = 100  # [M] resultCode / code / stateCode of success
ERROR_PARAMETER = 101  # [L] a required field is missing or unreadable
ERROR_ADDRESS = 113  # [L] 收件地址超区/不完整: cannot pre-sort the address
ERROR_CANCELLED_ORDER = 119  # [L] the orderId was cancelled and cannot be reused
ERROR_NOT_FOUND = 120  # [L] no such waybill for this customer
ERROR_ALREADY_COLLECTED = 121  # [L] 已揽收, 不能拦截
ERROR_ALREADY_CANCELLED = 122  # [L] 已取消

PICKUP_TITLE = "揽收"  # [L] opeTitle of the courier's pickup scan
WAYBILL_PREFIX = "JDVA"  # [M] JD Logistics waybill codes look like JDVA00000000000
MIN_PHONE_DIGITS = 7


def register_customer(state: SandboxState, customer_code: str) -> dict:
    """Open a JD Logistics merchant account: app credentials, a token and a 商家编码."""
    app_key, app_secret = f"jdl-{secrets.token_hex(6)}", secrets.token_urlsafe(24)
    access_token = secrets.token_hex(16)
    with state.lock:
        state.app_secrets[app_key] = app_secret
        state.tokens[access_token] = SimToken(customer_code, datetime.now(timezone.utc)
                                              + timedelta(days=365))  # fmt: skip
    return {"app_key": app_key, "app_secret": app_secret, "access_token": access_token,
            "customer_code": customer_code}  # fmt: skip



def receiver_problem(order: dict) -> str | None:
    for field in ("province", "city", "receiveAddress"):
        if not sf.present(order.get(field)):
            return f"收件人{field}不能为空: receiver {field} is missing"
    if not is_known_province(order["province"]):
        return "收件地址超区: receiver province is not a known province"
    if not sf.present(order.get("receiveName")):
        return "收件人姓名不能为空: receiver name is missing"
    phone = order.get("receiveMobile") or order.get("receiveTel")
    if not sf.present(phone):
        return "收件人电话不能为空: receiver mobile is missing"
    if not sf.is_ciphertext(phone) and sum(ch.isdigit() for ch in phone) < MIN_PHONE_DIGITS:
        return "收件人电话无效: receiver mobile is too short"
    return None


class _Waybills:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.by_order: dict[tuple[str, str], str] = {}
        self.serials = itertools.count(int(time.time() * 1000) % 10**11)

    def existing(self, customer: str, order_id: str) -> str | None:
        number = self.by_order.get((customer, order_id))
        return number if number in self.state.waybills else None

    def issue(self, customer: str, order: dict) -> str:
        order_id = str(order["orderId"])
        with self.state.lock:
            number = self.existing(customer, order_id)
            if number:
                return number
            while (number := f"{WAYBILL_PREFIX}{next(self.serials):011d}") in self.state.waybills:
                pass
            self.state.waybills[number] = {
                "carrier": CARRIER,
                "customer_code": customer,
                "order_id": order_id,
                "receiver": {key: order.get(key) for key in (
                    "receiveName", "receiveMobile", "province", "city", "county", "receiveAddress")},
                "weight": order.get("weight"),
                "issued_at": datetime.now(timezone.utc),
                "picked_up_at": None,
                "cancelled": False,
            }
            self.by_order[(customer, order_id)] = number
            return number


def receive(waybills: _Waybills, customer: str, order: dict) -> dict:
    order_id = str(order.get("orderId") or "").strip()
    if not order_id:
        return _receive_result(ERROR_PARAMETER, "orderId不能为空: orderId is missing")
    if str(order.get("customerCode") or "") != customer:
        return _receive_result(ERROR_PARAMETER, "商家编码不匹配: customerCode is not this account's")
    number = waybills.existing(customer, order_id)
    if number and waybills.state.waybills[number]["cancelled"]:
        return _receive_result(ERROR_CANCELLED_ORDER,
                               "订单已取消: this orderId was cancelled and cannot be reused", order_id)
    if number is None:
        problem = receiver_problem(order)
        if problem:
            return _receive_result(ERROR_ADDRESS, problem, order_id)
        number = waybills.issue(customer, order)
    return _receive_result(RESULT_OK, "成功", order_id, number)


def _receive_result(code: int, message: str, order_id: str = "", number: str | None = None) -> dict:
    result = {"resultCode": code, "resultMessage": message, "orderId": order_id}
    if number:
        result["deliveryId"] = number
    return {"receiveorderinfo_result": result}


def trace(state: SandboxState, customer: str, query: dict) -> dict:
    number = str(query.get("waybillCode") or "").strip()
    if not number:
        return {"querytrace_result": {"code": ERROR_PARAMETER, "msg": "waybillCode不能为空"}}
    with state.lock:
        record = state.waybills.get(number)
        mine = record is not None and record.get("customer_code") == customer
        picked_up_at = record.get("picked_up_at") if mine else None
    events = [] if picked_up_at is None else [{
        "opeTitle": PICKUP_TITLE,
        "opeRemark": "京东快递员已揽收: the JD courier has collected the parcel",
        "opeName": "演示快递员",
        "opeTime": picked_up_at.astimezone(JD_CLOCK).strftime(TIME_FORMAT),
        "waybillCode": number,
    }]
    return {"querytrace_result": {"code": RESULT_OK, "msg": "成功", "data": events}}


def intercept(state: SandboxState, customer: str, request: dict) -> dict:
    number = str(request.get("deliveryId") or "").strip()
    with state.lock:
        record = state.waybills.get(number)
        if (not number or record is None or record.get("customer_code") != customer
                or str(request.get("vendorCode") or "") != customer):
            return _state(ERROR_NOT_FOUND, "运单不存在: no such waybill for this customer")
        if record["cancelled"]:
            return _state(ERROR_ALREADY_CANCELLED, "运单已取消: the waybill is already cancelled")
        if record["picked_up_at"]:
            return _state(ERROR_ALREADY_COLLECTED,
                          "运单已揽收, 不能拦截: the courier has collected the parcel")
        record["cancelled"] = True
    return _state(RESULT_OK, "成功")


def _state(code: int, message: str) -> dict:
    return {"resultInfo": {"stateCode": code, "stateMessage": message}}


def collect(state: SandboxState, numbers: Iterable[str] | None, now: datetime) -> list[str]:
    """The JD courier came at `now` for these parcels (all JD parcels when None);
    SF's rules apply and other carriers' waybills are left alone."""
    return sf.collect(state, numbers, now, belongs=lambda record: record.get("carrier") == CARRIER and "customer_code" in record)


def _error(error: tuple[str, str, str], detail: str = "") -> dict:
    code, zh, en = error
    return {"error_response": {"code": code, "zh_desc": zh + (f": {detail}" if detail else ""),
                               "en_desc": en, "request_id": uuid.uuid4().hex}}  # fmt: skip


def authenticate(state: SandboxState, params: dict) -> tuple[str, dict] | dict:
    """(customer code, business params), or the error_response to answer with."""
    secret = state.app_secrets.get(params.get("app_key", ""))
    if secret is None:
        return _error(INVALID_APP_KEY)
    if not hmac.compare_digest(params.get("sign", ""), sign(params, secret)):
        return _error(INVALID_SIGN)
    try:
        sent = datetime.strptime(params.get("timestamp", ""), TIME_FORMAT).replace(tzinfo=JD_CLOCK)
    except ValueError:
        return _error(INVALID_TIMESTAMP)
    if abs(datetime.now(timezone.utc) - sent) > CLOCK_SKEW:
        return _error(INVALID_TIMESTAMP)
    if params.get("method") not in METHODS:
        return _error(INVALID_METHOD, params.get("method", ""))
    token = state.tokens.get(params.get("access_token", ""))
    if token is None or token.expires_at <= datetime.now(timezone.utc):
        return _error(INVALID_TOKEN)
    try:
        business = json.loads(params.get(PARAM_JSON) or "{}")
    except ValueError:
        return _error(INVALID_PARAMETER, f"{PARAM_JSON}不是JSON")
    if not isinstance(business, dict):
        return _error(INVALID_PARAMETER, f"{PARAM_JSON}须为JSON对象")
    return token.shop, business


def _json(body: dict) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(tags=["jd-logistics"])
    waybills = _Waybills(state)

    @router.post(GATEWAY_PATH)
    async def gateway(request: Request) -> Response:
        fault = state.faults.take(FAULTS)
        if fault and fault.kind == "latency":
            await asyncio.sleep(fault.delay_seconds)
        elif fault and fault.kind == "server_error":
            return Response("<html><body>502 Bad Gateway</body></html>", status_code=502,
                            media_type="text/html")  # fmt: skip
        elif fault and fault.kind == "rate_limit":
            return Response(json.dumps(_error(("61", "调用频率超限", "Call limited"))),
                            status_code=429, media_type="application/json",
                            headers={"Retry-After": str(fault.retry_after)})  # fmt: skip
        elif fault and fault.kind == "malformed":
            return Response('{"jingdong_ldop_', media_type="application/json")
        elif fault and fault.kind == "expired_token":
            return _json(_error(INVALID_TOKEN))
        params = dict(request.query_params)
        params.update(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        checked = authenticate(state, params)
        if isinstance(checked, dict):
            return _json(checked)
        customer, business = checked
        method = params["method"]
        if method == RECEIVE:
            result = receive(waybills, customer, business)
        elif method == TRACE:
            result = trace(state, customer, business)
        else:
            result = intercept(state, customer, business)
        return _json({method.replace(".", "_") + "_responce": {"code": "0", **result}})

    return router
