"""SF Express e-waybill client: order waybills, learn when parcels were collected, and
cancel waybills the courier has not collected yet.

Talks to SF's "丰桥" gateway (`{base_url}/std/service`, form-encoded, MD5+Base64
msgDigest) with three services:

* `EXP_RECE_CREATE_ORDER`: the parcel's order reference is SF's `orderId`, and SF
  refuses a second order with the same id while telling us the number it already
  issued, so asking twice never buys two waybills: a batch that died half-way can simply
  be run again.
* `EXP_RECE_SEARCH_ROUTES`: route events by waybill number, ten numbers a call. The
  pickup scan (opCode 50) is the moment a shipped order's reserved stock may leave the
  books, so `pickups` reports exactly that moment, in UTC.
* `EXP_RECE_UPDATE_ORDER` with dealType 2: cancel by orderId, which SF allows only
  before pickup. Cancelling twice is harmless.

Every failure leaves as one of the errors in `oms.domain.errors`: HTTP 429 is
`RateLimited`, 5xx, timeouts, broken connections and unreadable bodies are
`Unavailable`, a refused digest, a refused address or a cancel that came too late is
`Rejected` with SF's message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote_plus

import httpx

from connectors.base import HttpConnection, Parcel, Waybill, WaybillPerParcel
from oms.domain.errors import RateLimited, Rejected, Unavailable
from oms.domain.order import Receiver

CARRIER = "SF"
SERVICE_PATH = "/std/service"  # [H] appended to https://sfapi.sf-express.com
CREATE_ORDER_SERVICE = "EXP_RECE_CREATE_ORDER"  # [H]
SEARCH_ROUTES_SERVICE = "EXP_RECE_SEARCH_ROUTES"  # [H]
UPDATE_ORDER_SERVICE = "EXP_RECE_UPDATE_ORDER"  # [H]
API_RESULT_OK = "A1000"  # [M]
# Envelope codes that mean SF's gateway itself failed, so a retry may succeed. [L]
RETRYABLE_API_RESULTS = frozenset({"A1099"})
ERROR_DUPLICATE_ORDER = "8016"  # [M] 重复下单; the answer still carries the waybill
# 已消单 / 订单已取消: a repeated cancel finds its work done [M]
ALREADY_CANCELLED_ERRORS = frozenset({"8037", "8253"})
WAYBILL_TYPE_MAIN = 1  # [M]
EXPRESS_TYPE_STANDARD = 1  # [H] 顺丰标快
PAY_METHOD_SENDER = 1  # [H] 寄方付
DEAL_CANCEL = 2  # [H] dealType of EXP_RECE_UPDATE_ORDER that cancels
RES_STATUS_DONE = 2  # [M] resStatus when the cancel went through (1: orderId/waybill mismatch)
TRACKING_BY_WAYBILL = 1  # [H] trackingType: trackingNumber holds waybill numbers
METHOD_STANDARD_ROUTES = 1  # [H] methodType: standard routes
ROUTE_QUERY_LIMIT = 10  # [M] waybill numbers per route query
OP_COLLECTED = "50"  # [M] the pickup scan (收件)
OP_DELIVERED = "80"  # [M] delivery (签收)
SF_CLOCK = timezone(timedelta(hours=8))  # [M] acceptTime is Beijing time, written without offset
ACCEPT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # [H]
DEFAULT_RETRY_AFTER_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 10.0

# A made-up warehouse used when the caller names no sender; no real person or place.
DEMO_SENDER = {
    "contact": "演示仓库发货组",
    "company": "示例电商演示仓",
    "mobile": "13800000000",
    "province": "浙江省",
    "city": "杭州市",
    "county": "余杭区",
    "address": "余杭区示例物流园1号库",
}


def message_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """SF's msgDigest: Base64 of the raw MD5 of the form-encoded concatenation."""
    encoded = quote_plus(msg_data + timestamp + checkword)
    return base64.b64encode(hashlib.md5(encoded.encode("utf-8")).digest()).decode("ascii")


def receiver_contact(receiver: Receiver) -> dict:
    """SF's receiver entry; masked receivers travel as the platform's ciphertexts.

    A masked receiver's plaintext fields hold masks like '林*坤'; printing those on a
    label would send the parcel nowhere, so only ciphertexts are sent for such fields.
    """
    if receiver.masked:
        name = receiver.encrypted.get("name")
        phone = receiver.encrypted.get("phone")
        address = receiver.encrypted.get("address")
    else:
        name, phone, address = receiver.name, receiver.phone, receiver.address
    contact = {
        "contactType": 2,
        "contact": name,
        "mobile": phone,
        "province": receiver.province,
        "city": receiver.city,
        "county": receiver.district,
        "address": address,
        "postCode": receiver.postal_code,
        "country": receiver.country_code,
    }
    return {key: value for key, value in contact.items() if value is not None}


def order_message(parcel: Parcel, sender: dict) -> dict:
    """The msgData of EXP_RECE_CREATE_ORDER for one parcel."""
    kilograms = Decimal(parcel.weight_grams) / 1000
    return {
        "orderId": parcel.order_ref,
        "language": "zh-CN",
        "expressTypeId": EXPRESS_TYPE_STANDARD,
        "payMethod": PAY_METHOD_SENDER,
        "parcelQty": 1,
        "totalWeight": float(kilograms),
        "isOneselfPickup": 0,
        "cargoDetails": [
            {"name": title, "count": count, "unit": "件"} for title, count in parcel.items
        ]
        or [{"name": "商品", "count": 1, "unit": "件"}],
        "contactInfoList": [{**sender, "contactType": 1}, receiver_contact(parcel.receiver)],
    }


class SfCarrierClient(WaybillPerParcel, HttpConnection):
    """One SF monthly account (partnerID + checkword) and one HTTP connection pool."""

    carrier = CARRIER

    def __init__(
        self,
        base_url: str,
        partner_id: str,
        checkword: str,
        http: httpx.Client | None = None,
        sender: dict | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + SERVICE_PATH
        self.partner_id = partner_id
        self._checkword = checkword
        self._connect(http, REQUEST_TIMEOUT_SECONDS)
        self.sender = sender or DEMO_SENDER

    def create_waybill(self, parcel: Parcel) -> Waybill:
        """Order a waybill for one parcel; the same parcel twice gives the same number."""
        result = self._call(CREATE_ORDER_SERVICE, order_message(parcel, self.sender))
        accepted = result.get("success") is True
        already_issued = str(result.get("errorCode")) == ERROR_DUPLICATE_ORDER
        number = _waybill_number(result) if accepted or already_issued else None
        if number:
            return Waybill(CARRIER, number)
        if accepted:
            raise Unavailable("SF reported success without a waybill number",
                              platform=CARRIER, body=result)  # fmt: skip
        raise Rejected(
            f"SF refused order {parcel.order_ref}: {result.get('errorMsg') or 'no reason given'}",
            platform=CARRIER,
            code=result.get("errorCode"),
            body=result,
        )


    def pickups(self, tracking_numbers: list[str]) -> dict[str, datetime | None]:
        """When SF collected each parcel (UTC), or None while it still waits for the courier.

        Numbers go to SF ten a call, so a batch of n parcels costs ceil(n / 10) calls. A
        failing call raises and nothing is half-reported: the whole batch can be asked again.
        Numbers SF does not know, or knows for another account, read as not collected.
        """
        numbers = list(dict.fromkeys(tracking_numbers))
        collected: dict[str, datetime | None] = dict.fromkeys(numbers)
        for start in range(0, len(numbers), ROUTE_QUERY_LIMIT):
            chunk = numbers[start:start + ROUTE_QUERY_LIMIT]
            result = self._call(SEARCH_ROUTES_SERVICE, route_query(chunk))
            if result.get("success") is not True:
                raise Rejected(
                    f"SF refused the route query: {result.get('errorMsg') or 'no reason given'}",
                    platform=CARRIER,
                    code=result.get("errorCode"),
                    body=result,
                )
            for mail_no, routes in _route_responses(result):
                if mail_no in collected:
                    collected[mail_no] = pickup_time(routes)
        return collected

    def cancel_waybill(self, order_ref: str) -> None:
        """Cancel the waybill of this order; only possible before the courier collects it.

        After pickup SF refuses, and the `Rejected` carries SF's reason: the parcel is on
        its way, and getting it back is an after-sales matter, not a retry.
        """
        message = {"orderId": order_ref, "dealType": DEAL_CANCEL}
        result = self._call(UPDATE_ORDER_SERVICE, message)
        code = str(result.get("errorCode") or "")
        if code in ALREADY_CANCELLED_ERRORS:
            return  # an earlier attempt went through; its answer was lost on the way
        msg_data = result.get("msgData")
        res_status = msg_data.get("resStatus") if isinstance(msg_data, dict) else None
        # resStatus 1 means SF matched the orderId to no waybill, whatever `success` says.
        went_through = res_status is None or str(res_status) == str(RES_STATUS_DONE)
        if result.get("success") is True and went_through:
            return
        reason = result.get("errorMsg") or f"resStatus {res_status}"
        raise Rejected(f"SF refused to cancel order {order_ref}: {reason}",
                       platform=CARRIER, code=result.get("errorCode"), body=result)  # fmt: skip

    def _call(self, service_code: str, message: dict) -> dict:
        """POST one service call; return the parsed apiResultData or raise."""
        msg_data = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        timestamp = str(int(time.time()))
        form = {
            "partnerID": self.partner_id,
            "requestID": str(uuid.uuid4()),
            "serviceCode": service_code,
            "timestamp": timestamp,
            "msgDigest": message_digest(msg_data, timestamp, self._checkword),
            "msgData": msg_data,
        }
        try:
            response = self._http.post(self.url, data=form)
        except httpx.TimeoutException as error:
            raise Unavailable("SF did not answer in time", platform=CARRIER) from error
        except httpx.TransportError as error:
            reason = type(error).__name__
            raise Unavailable(f"SF could not be reached ({reason})", platform=CARRIER) from error
        return _result_data(_envelope(response))


def _envelope(response: httpx.Response) -> dict:
    status = response.status_code
    if status == 429:
        raise RateLimited(
            "SF rate limit reached",
            retry_after=_retry_after(response),
            platform=CARRIER,
            code=status,
        )
    if status >= 500:
        raise Unavailable(f"SF answered HTTP {status}", platform=CARRIER, code=status)
    if status >= 400:
        raise Rejected(f"SF answered HTTP {status}", platform=CARRIER, code=status)
    try:
        envelope = response.json()
    except ValueError as error:
        raise Unavailable("SF answered with a body that is not JSON", platform=CARRIER) from error
    if not isinstance(envelope, dict):
        raise Unavailable("SF answered with an unexpected body", platform=CARRIER)
    return envelope


def _result_data(envelope: dict) -> dict:
    code = envelope.get("apiResultCode")
    if code != API_RESULT_OK:
        kind = Unavailable if code in RETRYABLE_API_RESULTS else Rejected
        message = envelope.get("apiErrorMsg") or "no message"
        raise kind(f"SF refused the call: {message}", platform=CARRIER, code=code, body=envelope)
    try:
        result = json.loads(envelope.get("apiResultData") or "")
    except ValueError as error:
        raise Unavailable("SF apiResultData is not JSON", platform=CARRIER) from error
    if not isinstance(result, dict):
        raise Unavailable("SF apiResultData is not an object", platform=CARRIER)
    return result


def route_query(tracking_numbers: list[str]) -> dict:
    """The msgData of EXP_RECE_SEARCH_ROUTES for up to ten waybill numbers."""
    return {
        "language": "0",  # [H] route remarks in Chinese, as SF's own sample asks
        "trackingType": TRACKING_BY_WAYBILL,
        "trackingNumber": tracking_numbers,
        "methodType": METHOD_STANDARD_ROUTES,
    }


def pickup_time(routes: list[dict]) -> datetime | None:
    """The moment SF collected the parcel, in UTC, from its route events; None before.

    The pickup scan says it directly; events may come in any order, so the earliest
    pickup scan counts. A parcel delivered without a pickup scan among its events was
    collected all the same: its first event is then the best bound SF gives, and
    waiting for a scan that never comes would keep its stock reserved forever.
    """
    events = [(str(route.get("opCode")), _accept_time(route))
              for route in routes if isinstance(route, dict)]  # fmt: skip
    pickups = [moment for op_code, moment in events if op_code == OP_COLLECTED]
    if pickups:
        return min(pickups)
    if any(op_code == OP_DELIVERED for op_code, _ in events):
        return min(moment for _, moment in events)
    return None


def _accept_time(route: dict) -> datetime:
    try:
        local = datetime.strptime(str(route.get("acceptTime")), ACCEPT_TIME_FORMAT)
    except ValueError as error:
        # Without the time the pickup cannot be booked; SF sent something unexpected.
        raise Unavailable(f"SF route event has an unreadable acceptTime {route.get('acceptTime')!r}",
                          platform=CARRIER, body=route) from error  # fmt: skip
    return local.replace(tzinfo=SF_CLOCK).astimezone(timezone.utc)


def _route_responses(result: dict) -> list[tuple[str, list]]:
    msg_data = result.get("msgData")
    answers = msg_data.get("routeResps") if isinstance(msg_data, dict) else None
    if not isinstance(answers, list):
        raise Unavailable("SF reported success without routeResps", platform=CARRIER, body=result)
    return [(str(answer.get("mailNo")), answer.get("routes") or [])
            for answer in answers if isinstance(answer, dict)]  # fmt: skip


def _waybill_number(result: dict) -> str | None:
    msg_data = result.get("msgData")
    waybills = msg_data.get("waybillNoInfoList") if isinstance(msg_data, dict) else None
    waybills = [w for w in waybills or [] if isinstance(w, dict)]
    main = [w for w in waybills if w.get("waybillType") == WAYBILL_TYPE_MAIN] or waybills
    return main[0].get("waybillNo") if main else None


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return DEFAULT_RETRY_AFTER_SECONDS
