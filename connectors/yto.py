"""YTO Express (圆通速递) e-waybill client: order waybills, learn when parcels were
collected, and cancel waybills the courier has not collected yet.

Talks to YTO's open platform: `POST {base_url}/open/{method}/v1/{userId}/{customerCode}`
(the real host is https://openapi.yto.net.cn:11443) with a JSON body `{timestamp (ms),
param (JSON text), sign, format: "JSON"}` and sign = Base64(MD5(param + method + "v1" +
secret)) [M]. Methods used:

* `privacy_create_adapter`: the parcel's order reference is our `logisticsNo`; asking
  again with the same one gives the mailNo issued the first time [L], so a batch that
  died half-way can simply be run again.
* `track_query_adapter`: the trace of one number a call [M]; the pickup event
  (infoContent GOT) is the moment reserved stock may leave the books.
* `korder_cancel_adapter`: cancel by `logisticsNo`, only before pickup. Cancelling twice
  is harmless.

Refusals come with HTTP 200 and `success: false` [L] and are `Rejected` with YTO's
message; HTTP 429 is `RateLimited`, 5xx, timeouts, broken connections and unreadable
bodies `Unavailable`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx

from connectors.base import HttpConnection, Parcel, Waybill, gateway_json, WaybillPerParcel
from connectors.carrier import DEMO_SENDER
from oms.domain.errors import RateLimited, Rejected, Unavailable
from oms.domain.order import Receiver

CARRIER = "YTO"
VERSION = "v1"  # [M]
CREATE_METHOD = "privacy_create_adapter"  # [M]
TRACK_METHOD = "track_query_adapter"  # [M]
CANCEL_METHOD = "korder_cancel_adapter"  # [M]
PRODUCT_STANDARD = "PK"  # [M] 普通普快
CODE_TRACE_EMPTY = "1001"  # [M] 查询结果为空
RATE_LIMIT_CODES = frozenset({"S05"})  # [L]
ALREADY_CANCELLED_CODES = frozenset({"B06"})  # [L]
INFO_COLLECTED = "GOT"  # [M]
INFO_SIGNED = "SIGNED"  # [M]
YTO_CLOCK = timezone(timedelta(hours=8))  # [M] upload_Time is Beijing time without offset
UPLOAD_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # [M]
DEFAULT_RETRY_AFTER_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 10.0


def sign(param: str, method: str, secret: str, version: str = VERSION) -> str:
    """YTO's sign: Base64 of the raw MD5 of param + method + version + secret."""
    raw = hashlib.md5((param + method + version + secret).encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def recipient_fields(receiver: Receiver) -> dict:
    """YTO's recipient* fields; masked receivers travel as the platform's ciphertexts."""
    if receiver.masked:
        name = receiver.encrypted.get("name")
        phone = receiver.encrypted.get("phone")
        address = receiver.encrypted.get("address")
    else:
        name, phone, address = receiver.name, receiver.phone, receiver.address
    fields = {
        "recipientName": name,
        "recipientMobile": phone,
        "recipientProvinceName": receiver.province,
        "recipientCityName": receiver.city,
        "recipientCountyName": receiver.district,
        "recipientAddress": address,
    }
    return {key: value for key, value in fields.items() if value is not None}


def order_param(parcel: Parcel, sender: dict) -> dict:
    """The param of privacy_create_adapter for one parcel (weight in kg [M])."""
    goods = [{"name": title, "quantity": count} for title, count in parcel.items]
    return {
        "logisticsNo": parcel.order_ref,
        "senderName": sender.get("contact"),
        "senderMobile": sender.get("mobile"),
        "senderProvinceName": sender.get("province"),
        "senderCityName": sender.get("city"),
        "senderCountyName": sender.get("county"),
        "senderAddress": sender.get("address"),
        **recipient_fields(parcel.receiver),
        "goods": goods or [{"name": "商品", "quantity": 1}],
        "weight": float(Decimal(parcel.weight_grams) / 1000),
        "productCode": PRODUCT_STANDARD,
    }


class YtoCarrierClient(WaybillPerParcel, HttpConnection):
    """One YTO customer account (userId, customer code, secret) and one HTTP pool."""

    carrier = CARRIER

    def __init__(
        self,
        base_url: str,
        user_id: str,
        customer_code: str,
        secret: str,
        http: httpx.Client | None = None,
        sender: dict | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self.customer_code = customer_code
        self._secret = secret
        self._connect(http, REQUEST_TIMEOUT_SECONDS)
        self.sender = sender or DEMO_SENDER

    def create_waybill(self, parcel: Parcel) -> Waybill:
        """Order a waybill for one parcel; the same parcel twice gives the same number."""
        answer = _object(self._call(CREATE_METHOD, order_param(parcel, self.sender)))
        _accepted(answer, f"YTO refused order {parcel.order_ref}")
        number = answer.get("mailNo")
        if not number:
            raise Unavailable("YTO reported success without a mailNo", platform=CARRIER, body=answer)
        return Waybill(CARRIER, str(number))


    def pickups(self, tracking_numbers: list[str]) -> dict[str, datetime | None]:
        """When YTO collected each parcel (UTC), or None while it waits: one call per
        number. A failing call raises, so nothing is half-reported."""
        collected: dict[str, datetime | None] = {}
        for number in dict.fromkeys(tracking_numbers):
            answer = self._call(TRACK_METHOD, {"NUMBER": number})
            if isinstance(answer, list):  # [M] a trace found is a bare list of events
                collected[number] = pickup_time(answer)
                continue
            answer = _object(answer)
            if answer.get("success") is True and str(answer.get("code")) == CODE_TRACE_EMPTY:
                collected[number] = None
                continue
            _accepted(answer, "YTO refused the track query")
            collected[number] = None  # a success without events: nothing collected yet
        return collected

    def cancel_waybill(self, order_ref: str) -> None:
        """Cancel the waybill of this order; only possible before the courier collects it."""
        request = {"logisticsNo": order_ref, "cancelDesc": "商家取消发货"}
        answer = _object(self._call(CANCEL_METHOD, request))
        if str(answer.get("code")) in ALREADY_CANCELLED_CODES:
            return  # an earlier attempt went through; its answer was lost on the way
        _accepted(answer, f"YTO refused to cancel order {order_ref}")

    def _call(self, method: str, message: dict) -> object:
        param = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        body = {
            "timestamp": str(int(time.time() * 1000)),
            "param": param,
            "sign": sign(param, method, self._secret),
            "format": "JSON",
        }
        url = f"{self.base_url}/open/{method}/{VERSION}/{self.user_id}/{self.customer_code}"
        try:
            response = self._http.post(url, json=body)
        except httpx.TimeoutException as error:
            raise Unavailable("YTO did not answer in time", platform=CARRIER) from error
        except httpx.TransportError as error:
            reason = type(error).__name__
            raise Unavailable(f"YTO could not be reached ({reason})", platform=CARRIER) from error
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise Rejected(f"YTO answered HTTP {response.status_code}",
                           platform=CARRIER, code=response.status_code)  # fmt: skip
        return gateway_json(response, f"YTO {method}", CARRIER, DEFAULT_RETRY_AFTER_SECONDS)


def _object(answer: object) -> dict:
    if not isinstance(answer, dict):
        raise Unavailable("YTO answered with an unexpected body", platform=CARRIER)
    return answer


def _accepted(answer: dict, what: str) -> None:
    """Raise the error a refused answer means; return quietly when YTO accepted."""
    if answer.get("success") is not False:
        return
    code = str(answer.get("code") or "")
    message = f"{what}: {answer.get('message') or answer.get('reason') or 'no reason given'}"
    if code in RATE_LIMIT_CODES:
        raise RateLimited(message, retry_after=DEFAULT_RETRY_AFTER_SECONDS,
                          platform=CARRIER, code=code, body=answer)  # fmt: skip
    raise Rejected(message, platform=CARRIER, code=code, body=answer)


def pickup_time(events: list[dict]) -> datetime | None:
    """The moment YTO collected the parcel, in UTC; None before. The earliest pickup
    event counts; a parcel signed for without one counts from its first event."""
    timed = [(str(e.get("infoContent") or ""), _upload_time(e)) for e in events if isinstance(e, dict)]
    pickups = [moment for info, moment in timed if info == INFO_COLLECTED]
    if pickups:
        return min(pickups)
    if any(info == INFO_SIGNED for info, _ in timed):
        return min(moment for _, moment in timed)
    return None


def _upload_time(event: dict) -> datetime:
    try:
        local = datetime.strptime(str(event.get("upload_Time")), UPLOAD_TIME_FORMAT)
    except ValueError as error:
        raise Unavailable(f"YTO event has an unreadable upload_Time {event.get('upload_Time')!r}",
                          platform=CARRIER, body=event) from error  # fmt: skip
    return local.replace(tzinfo=YTO_CLOCK).astimezone(timezone.utc)
