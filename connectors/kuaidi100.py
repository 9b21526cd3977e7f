"""Kuaidi100 (快递100) e-waybill client: waybills of a real carrier, bought through the
aggregator.

The client is built for one real carrier (our code, e.g. "ZTO"); `CARRIER_CODES` maps
our codes to Kuaidi100's lowercase `kuaidicom` codes, and a carrier missing from it is
refused at construction, before any request. `Waybill.carrier` is then the real
carrier's code, since that is what the marketplaces and the parcel's label know.

* labels: `POST {label_url}/label/order?method=order`, form `key, t, param, sign =
  MD5(param + t + key + secret).upper()` [H]; our order reference is `orderId`, and
  asking again for it answers with the number issued the first time [L];
* cancel: the same endpoint with `method=cancel`, param `{partnerId, kuaidicom,
  kuaidinum, orderId, reason}` [H], refused after pickup;
* pickups: `POST {poll_url}/poll/query.do`, form `customer, param {com, num, resultv2},
  sign = MD5(param + key + customer).upper()` [H]; one number a call; the earliest event
  whose status is 揽收 is the pickup [M]; "no result yet" (returnCode 500) reads as not
  collected [M].

Kuaidi100 cancels by number, not by our reference: the client keeps the numbers it was
given and, for an order it has not seen, asks `method=order` again with the bare
orderId, which returns the existing number (and creates nothing when there is none).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import httpx

from connectors.base import (
    WaybillPerParcel,
    HttpConnection,
    Parcel,
    Waybill,
    gateway_json,
    platform_carrier_code,
)
from oms.domain.carriers import Carrier
from oms.domain.errors import Rejected, Unavailable
from oms.domain.order import Receiver

PLATFORM = "KUAIDI100"
LABEL_PATH = "/label/order"  # [H] on https://api.kuaidi100.com
QUERY_PATH = "/poll/query.do"  # [H] on https://poll.kuaidi100.com
# Our carrier codes -> Kuaidi100's company codes [H for the names shown in its demos:
# zhongtong, yuantong, shunfeng; M for the others, from its published code list].
CARRIER_CODES = {
    Carrier.ZTO: "zhongtong",
    Carrier.YTO: "yuantong",
    Carrier.STO: "shentong",
    Carrier.YUNDA: "yunda",
    Carrier.SF: "shunfeng",
    Carrier.JD: "jd",
    Carrier.EMS: "ems",
    Carrier.JT: "jtexpress",
}
OK = "200"  # [M]
NO_RESULT = "500"  # [M] 查询无结果: nothing scanned yet
STATE_COLLECTED = "1"  # [M] state / statusCode 揽收
STATUS_COLLECTED = "揽收"  # [M]
# [M] states that mean the parcel is already past pickup: 0 在途, 3 签收, 4 退签, 5 派件,
# 6 退回, 7 转投, 8 清关, 14 拒签 (2 疑难 says nothing about a pickup).
STATES_PAST_PICKUP = frozenset({"0", "3", "4", "5", "6", "7", "8", "14"})
CLOCK = timezone(timedelta(hours=8))  # [M]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # [H]
DEFAULT_RETRY_AFTER_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 10.0

DEMO_SENDER = {"name": "演示仓库发货组", "mobile": "13800000000",
               "printAddr": "浙江省杭州市余杭区示例物流园1号库"}  # fmt: skip


def label_sign(param: str, t: str, key: str, secret: str) -> str:
    return hashlib.md5(f"{param}{t}{key}{secret}".encode()).hexdigest().upper()


def query_sign(param: str, key: str, customer: str) -> str:
    return hashlib.md5(f"{param}{key}{customer}".encode()).hexdigest().upper()


def receiver_man(receiver: Receiver) -> dict:
    """recMan; masked receivers travel as the platform's ciphertexts."""
    if receiver.masked:
        name, phone, address = (receiver.encrypted.get(key) for key in ("name", "phone", "address"))
        print_addr = address
    else:
        name, phone, address = receiver.name, receiver.phone, receiver.address
        parts = [receiver.province, receiver.city, receiver.district]
        # Buyers often repeat the district in the street line; print it once.
        print_addr = "".join(p for p in parts if p and not (address or "").startswith(p))
        print_addr = (print_addr + address) if address else None
    man = {"name": name, "mobile": phone, "printAddr": print_addr}
    return {key: value for key, value in man.items() if value is not None}


class Kuaidi100CarrierClient(WaybillPerParcel, HttpConnection):
    """One Kuaidi100 enterprise account, ordering waybills of one real carrier."""

    def __init__(self, label_url: str, poll_url: str, key: str, secret: str, customer: str,
                 carrier: str, partner_id: str = "", partner_key: str = "",
                 http: httpx.Client | None = None, sender: dict | None = None) -> None:  # fmt: skip
        self.kuaidicom = platform_carrier_code(CARRIER_CODES, carrier, PLATFORM)
        self.carrier = str(carrier)
        self.label_url = label_url.rstrip("/") + LABEL_PATH
        self.poll_url = poll_url.rstrip("/") + QUERY_PATH
        self.key, self._secret, self._customer = key, secret, customer
        self.partner_id, self._partner_key = partner_id, partner_key  # the carrier account
        self.sender = sender or DEMO_SENDER
        self._numbers: dict[str, str] = {}
        self._connect(http, REQUEST_TIMEOUT_SECONDS)

    def create_waybill(self, parcel: Parcel) -> Waybill:
        param = {
            "kuaidicom": self.kuaidicom, "partnerId": self.partner_id,
            "partnerKey": self._partner_key, "orderId": parcel.order_ref,
            "recMan": receiver_man(parcel.receiver), "sendMan": self.sender,
            "cargo": ",".join(title for title, _ in parcel.items) or "商品",
            "count": 1, "weight": round(parcel.weight_grams / 1000, 3),
            "payType": "SHIPPER", "expType": "标准快递", "printType": "NON",
        }  # fmt: skip
        return Waybill(self.carrier, self._order(param))

    def _order(self, param: dict) -> str:
        answer = self._label("order", param)
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        number = data.get("kuaidinum")
        if str(answer.get("returnCode")) == OK and answer.get("result") is True and number:
            self._numbers[str(param["orderId"])] = str(number)
            return str(number)
        raise Rejected(f"Kuaidi100 refused order {param['orderId']}: "
                       f"{answer.get('message') or 'no reason given'}",
                       platform=PLATFORM, code=answer.get("returnCode"), body=answer)  # fmt: skip


    def pickups(self, tracking_numbers: list[str]) -> dict[str, datetime | None]:
        """When the carrier collected each parcel (UTC), or None; one query per number."""
        collected: dict[str, datetime | None] = {}
        for number in dict.fromkeys(tracking_numbers):
            param = json.dumps({"com": self.kuaidicom, "num": number, "resultv2": "1"},
                               ensure_ascii=False, separators=(",", ":"))  # fmt: skip
            form = {"customer": self._customer, "param": param,
                    "sign": query_sign(param, self.key, self._customer)}  # fmt: skip
            answer = self._post(self.poll_url, form)
            if str(answer.get("returnCode")) == NO_RESULT:
                collected[number] = None
                continue
            if answer.get("result") is False or str(answer.get("status", OK)) != OK:
                raise Rejected(f"Kuaidi100 refused the tracking query: {answer.get('message')}",
                               platform=PLATFORM, code=answer.get("returnCode"), body=answer)  # fmt: skip
            collected[number] = pickup_time(answer)
        return collected

    def cancel_waybill(self, order_ref: str) -> None:
        """Cancel the waybill of this order; refused after pickup."""
        number = self._numbers.get(order_ref) or self._order(
            {"kuaidicom": self.kuaidicom, "partnerId": self.partner_id, "orderId": order_ref})
        param = {"partnerId": self.partner_id, "partnerKey": self._partner_key,
                 "kuaidicom": self.kuaidicom, "kuaidinum": number, "orderId": order_ref,
                 "reason": "订单取消"}  # fmt: skip
        answer = self._label("cancel", param)
        if str(answer.get("returnCode")) == OK and answer.get("result") is True:
            return
        raise Rejected(f"Kuaidi100 refused to cancel order {order_ref}: "
                       f"{answer.get('message') or 'no reason given'}",
                       platform=PLATFORM, code=answer.get("returnCode"), body=answer)  # fmt: skip

    def _label(self, method: str, param: dict) -> dict:
        text = json.dumps(param, ensure_ascii=False, separators=(",", ":"))
        t = str(int(time.time() * 1000))
        form = {"key": self.key, "method": method, "t": t, "param": text,
                "sign": label_sign(text, t, self.key, self._secret)}  # fmt: skip
        return self._post(f"{self.label_url}?method={method}", form)

    def _post(self, url: str, form: dict) -> dict:
        self._wait_turn()
        try:
            response = self._http.post(url, data=form)
        except httpx.TimeoutException as error:
            raise Unavailable("Kuaidi100 did not answer in time", platform=PLATFORM) from error
        except httpx.TransportError as error:
            raise Unavailable(f"Kuaidi100 could not be reached ({type(error).__name__})",
                              platform=PLATFORM) from error  # fmt: skip
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise Rejected(f"Kuaidi100 answered HTTP {response.status_code}",
                           platform=PLATFORM, code=response.status_code)  # fmt: skip
        body = gateway_json(response, "Kuaidi100", PLATFORM, DEFAULT_RETRY_AFTER_SECONDS)
        if not isinstance(body, dict):
            raise Unavailable("Kuaidi100 answered with an unexpected body", platform=PLATFORM)
        return body


def pickup_time(answer: dict) -> datetime | None:
    """The pickup, in UTC: the earliest 揽收 event; when the parcel is already further on
    (in transit, delivered) without one, its earliest event is the best bound given."""
    events = [e for e in answer.get("data") or [] if isinstance(e, dict)]
    pickups = [e for e in events if e.get("status") == STATUS_COLLECTED
               or str(e.get("statusCode")) == STATE_COLLECTED]  # fmt: skip
    further_on = str(answer.get("state")) in STATES_PAST_PICKUP
    chosen = pickups or (events if further_on else [])
    return min((_event_time(e) for e in chosen), default=None)


def _event_time(event: dict) -> datetime:
    try:
        local = datetime.strptime(str(event.get("time") or event.get("ftime")), TIME_FORMAT)
    except ValueError as error:
        raise Unavailable(f"Kuaidi100 event time {event.get('time')!r} is unreadable",
                          platform=PLATFORM, body=event) from error  # fmt: skip
    return local.replace(tzinfo=CLOCK).astimezone(timezone.utc)
