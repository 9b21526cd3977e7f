"""Kuaidi100 (快递100) simulator: the e-waybill label API and the real-time tracking query.

Kuaidi100 is an aggregator: one account orders waybills of many carriers, the label
order naming the real one in `kuaidicom` (lowercase codes: zhongtong, yuantong,
shunfeng, ...) [H]. Two hosts are simulated under `/kuaidi100`:

* `POST /kuaidi100/label/order?method=order|cancel` (api.kuaidi100.com), form
  `key, t (ms), param (JSON), sign = MD5(param + t + key + secret).upper()` [H]
  (Kuaidi100's own demos). An order's param carries `kuaidicom, partnerId, recMan{name,
  mobile, printAddr}, sendMan{...}, cargo, count, weight, orderId` [H]; the answer is
  `{result, returnCode, message, data{taskId, kuaidinum, kuaidicom, label}}` [M] (field
  names from Kuaidi100's SDK response classes), returnCode "200" on success [M]. A
  cancel's param is `{partnerId, kuaidicom, kuaidinum, orderId, reason}` [H].
* `POST /kuaidi100/poll/query.do` (poll.kuaidi100.com), form `customer, param {com, num,
  resultv2}, sign = MD5(param + key + customer).upper()` [H]. Answer `{message:"ok",
  state, status:"200", ischeck, com, nu, data[{time, ftime, context, status}]}` [H],
  newest event first [M]; state "1" is 揽收 (collected), "0" in transit, "3" signed [M].
  A number with no events yet answers `{result:false, returnCode:"500", message:"查询无
  结果，请隔段时间再查"}` [M].

Refusal codes other than 200 and 500 were not found in what we read: those in the
constants below (a bad sign, an unknown company, an address) are all [L]. The same `orderId` twice (per
account) answers with the number issued the first time [L]. Faults are armed for
platform "kuaidi100". Waybills sit in `state.waybills` with `carrier` set to our code of
the real carrier ("ZTO") and `via` "kuaidi100".
"""

from __future__ import annotations

import asyncio
import hashlib
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
from sandbox.model import SandboxState

VIA = "kuaidi100"
FAULTS = "kuaidi100"
LABEL_PATH = "/kuaidi100/label/order"
QUERY_PATH = "/kuaidi100/poll/query.do"
CLOCK = timezone(timedelta(hours=8))  # [M] event times are Beijing time without offset
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # [H]

OK = "200"  # [M]
NO_RESULT = "500"  # [M] 查询无结果 (also used for unknown numbers)
ERROR_PARAMETER = "400"  # [L] a required field is missing or unreadable
ERROR_SIGN = "10002"  # [L] 签名错误 / unknown key
ERROR_UNKNOWN_COMPANY = "10003"  # [L] kuaidicom not supported
ERROR_ADDRESS = "10004"  # [L] receiver address unusable
ERROR_NOT_FOUND = "10005"  # [L] no such waybill to cancel
ERROR_ALREADY_COLLECTED = "10006"  # [L] 已揽收, 不能取消
ERROR_CANCELLED_ORDER = "10007"  # [L] the orderId's waybill was cancelled
STATE_COLLECTED = "1"  # [M] state/statusCode 揽收
STATUS_COLLECTED = "揽收"  # [M] data[].status with resultv2=1

# Kuaidi100's lowercase company codes [H for these names] -> our codes and the shape of
# the carrier's numbers (prefix and digits) [L].
COMPANIES = {
    "zhongtong": ("ZTO", "7", 14),
    "yuantong": ("YTO", "YT", 13),
    "shentong": ("STO", "77", 13),
    "yunda": ("YUNDA", "43", 13),
    "shunfeng": ("SF", "SF", 13),
    "jd": ("JD", "JDX", 12),
    "ems": ("EMS", "11", 11),
    "jtexpress": ("JT", "JT", 13),
}
MIN_PHONE_DIGITS = 7


def label_sign(param: str, t: str, key: str, secret: str) -> str:
    return hashlib.md5(f"{param}{t}{key}{secret}".encode()).hexdigest().upper()


def query_sign(param: str, key: str, customer: str) -> str:
    return hashlib.md5(f"{param}{key}{customer}".encode()).hexdigest().upper()


def register_account(state: SandboxState) -> dict:
    """Open an enterprise account: key + secret (labels) and customer (tracking query)."""
    key, secret = secrets.token_hex(8), secrets.token_hex(16)
    customer = secrets.token_hex(16).upper()
    with state.lock:
        state.app_secrets[key] = secret
        state.app_secrets[f"kuaidi100-customer:{customer}"] = key
    return {"key": key, "secret": secret, "customer": customer}



def receiver_problem(man: object) -> str | None:
    if not isinstance(man, dict):
        return "recMan不能为空: recMan is missing"
    address = man.get("printAddr")
    if not sf.present(address):
        return "收件人地址不能为空: recMan.printAddr is missing"
    if not any(address.startswith(name) for name in _province_prefixes(address)):
        return "收件人地址无法解析: recMan.printAddr does not begin with a province"
    if not sf.present(man.get("name")):
        return "收件人姓名不能为空: recMan.name is missing"
    phone = man.get("mobile") or man.get("tel")
    if not sf.present(phone):
        return "收件人电话不能为空: recMan.mobile is missing"
    if not sf.is_ciphertext(phone) and sum(ch.isdigit() for ch in phone) < MIN_PHONE_DIGITS:
        return "收件人电话无效: recMan.mobile is too short"
    return None


def _province_prefixes(address: str) -> list[str]:
    # A ciphertext address is decrypted by the platform's service; here it counts as whole.
    if sf.is_ciphertext(address):
        return [address]
    return [address[:n] for n in range(2, min(len(address), 9) + 1)
            if is_known_province(address[:n])]  # fmt: skip


class _Waybills:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.by_order: dict[tuple[str, str], str] = {}
        self.serials = itertools.count(int(time.time() * 1000) % 10**10)

    def existing(self, key: str, order_id: str) -> str | None:
        number = self.by_order.get((key, order_id))
        return number if number in self.state.waybills else None

    def issue(self, key: str, order: dict) -> str:
        order_id = str(order["orderId"])
        ours, prefix, digits = COMPANIES[order["kuaidicom"]]
        with self.state.lock:
            number = self.existing(key, order_id)
            if number:
                return number
            width = digits - len(prefix)
            while (number := f"{prefix}{next(self.serials) % 10**width:0{width}d}") in self.state.waybills:
                pass
            self.state.waybills[number] = {
                "carrier": ours,
                "via": VIA,
                "kuaidicom": order["kuaidicom"],
                "key": key,
                "order_id": order_id,
                "task_id": uuid.uuid4().hex,
                "receiver": order.get("recMan"),
                "weight": order.get("weight"),
                "issued_at": datetime.now(timezone.utc),
                "picked_up_at": None,
                "cancelled": False,
            }
            self.by_order[(key, order_id)] = number
            return number


def _answer(code: str, message: str, data: dict | None = None) -> dict:
    body = {"result": code == OK, "returnCode": code, "message": message}
    if data is not None:
        body["data"] = data
    return body


def order(waybills: _Waybills, key: str, param: dict) -> dict:
    order_id = str(param.get("orderId") or "").strip()
    company = param.get("kuaidicom")
    if not order_id:
        return _answer(ERROR_PARAMETER, "orderId不能为空: orderId is missing")
    if company not in COMPANIES:
        return _answer(ERROR_UNKNOWN_COMPANY, f"不支持的快递公司编码: kuaidicom {company!r}")
    number = waybills.existing(key, order_id)
    if number and waybills.state.waybills[number]["cancelled"]:
        return _answer(ERROR_CANCELLED_ORDER, "订单已取消: this orderId was cancelled")
    if number is None:
        problem = receiver_problem(param.get("recMan"))
        if problem:
            return _answer(ERROR_ADDRESS, problem)
        number = waybills.issue(key, param)
    record = waybills.state.waybills[number]
    return _answer(OK, "提交成功", {"taskId": record["task_id"], "kuaidinum": number,
                                  "kuaidicom": record["kuaidicom"], "label": ""})  # fmt: skip


def cancel(state: SandboxState, key: str, param: dict) -> dict:
    number = str(param.get("kuaidinum") or "").strip()
    with state.lock:
        record = state.waybills.get(number)
        if (record is None or record.get("via") != VIA or record.get("key") != key
                or record.get("kuaidicom") != param.get("kuaidicom")):
            return _answer(ERROR_NOT_FOUND, "面单不存在: no such waybill for this account")
        if record["cancelled"]:
            return _answer(OK, "取消成功")  # [L] a repeated cancel is answered as done
        if record["picked_up_at"]:
            return _answer(ERROR_ALREADY_COLLECTED, "快件已揽收, 不能取消: the courier has collected it")
        record["cancelled"] = True
    return _answer(OK, "取消成功")


def query(state: SandboxState, key: str, param: dict) -> dict:
    number, company = str(param.get("num") or ""), param.get("com")
    with state.lock:
        record = state.waybills.get(number)
        # Kuaidi100 asks the carrier, so any account may track any number of that carrier.
        known = record is not None and record.get("via") == VIA and record.get("kuaidicom") == company
        picked_up_at = record.get("picked_up_at") if known else None
    if picked_up_at is None:
        return _answer(NO_RESULT, "查询无结果，请隔段时间再查")
    moment = picked_up_at.astimezone(CLOCK).strftime(TIME_FORMAT)
    return {"message": "ok", "nu": number, "ischeck": "0", "com": company, "status": "200",
            "state": STATE_COLLECTED,
            "data": [{"time": moment, "ftime": moment, "status": STATUS_COLLECTED,
                      "statusCode": STATE_COLLECTED, "context": "【演示网点】快递员已揽收"}]}  # fmt: skip


def collect(state: SandboxState, numbers: Iterable[str] | None, now: datetime) -> list[str]:
    """The Kuaidi100 courier came at `now` for these parcels (all Kuaidi100 parcels when None);
    SF's rules apply and other carriers' waybills are left alone."""
    return sf.collect(state, numbers, now, belongs=lambda record: record.get("via") == VIA)


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status_code=status,
                    media_type="application/json", headers=headers)  # fmt: skip


async def _fault(state: SandboxState) -> Response | None:
    fault = state.faults.take(FAULTS)
    if fault is None:
        return None
    if fault.kind == "latency":
        await asyncio.sleep(fault.delay_seconds)
        return None
    if fault.kind == "server_error":
        return Response("<html><body>500 Internal Server Error</body></html>", status_code=500,
                        media_type="text/html")  # fmt: skip
    if fault.kind == "rate_limit":
        return _json(_answer("503", "请求过于频繁"), 429, {"Retry-After": str(fault.retry_after)})
    if fault.kind == "malformed":
        return Response('{"result": true, "retu', media_type="application/json")
    return _json(_answer(ERROR_SIGN, "签名错误"))  # expired_token: nearest is a refused sign


async def _form(request: Request) -> dict:
    form = dict(request.query_params)
    form.update(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    return form


def _param(form: dict) -> dict | None:
    try:
        param = json.loads(form.get("param") or "")
    except ValueError:
        return None
    return param if isinstance(param, dict) else None


def build_router(state: SandboxState) -> APIRouter:
    router = APIRouter(tags=["kuaidi100"])
    waybills = _Waybills(state)

    @router.post(LABEL_PATH)
    async def label_order(request: Request) -> Response:
        refusal = await _fault(state)
        if refusal is not None:
            return refusal
        form = await _form(request)
        key = form.get("key", "")
        secret = state.app_secrets.get(key)
        expected = secret and label_sign(form.get("param", ""), form.get("t", ""), key, secret)
        if not expected or not hmac.compare_digest(expected, form.get("sign", "")):
            return _json(_answer(ERROR_SIGN, "签名错误: sign does not match"))
        param = _param(form)
        if param is None:
            return _json(_answer(ERROR_PARAMETER, "param不是JSON对象: param is not a JSON object"))
        method = form.get("method")
        if method == "order":
            return _json(order(waybills, key, param))
        if method == "cancel":
            return _json(cancel(state, key, param))
        return _json(_answer(ERROR_PARAMETER, f"不支持的method: {method!r}"))

    @router.post(QUERY_PATH)
    async def poll_query(request: Request) -> Response:
        refusal = await _fault(state)
        if refusal is not None:
            return refusal
        form = await _form(request)
        customer = form.get("customer", "")
        key = state.app_secrets.get(f"kuaidi100-customer:{customer}")
        expected = key and query_sign(form.get("param", ""), key, customer)
        if not expected or not hmac.compare_digest(expected, form.get("sign", "")):
            return _json(_answer(ERROR_SIGN, "签名错误: sign does not match"))
        param = _param(form)
        if param is None or not param.get("num") or not param.get("com"):
            return _json(_answer(ERROR_PARAMETER, "param须含com和num: com and num are required"))
        return _json(query(state, key, param))

    return router
