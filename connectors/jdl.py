"""JD Logistics (京东物流) e-waybill client over JD's JOS gateway (`{base_url}/routerjson`).

* `jingdong.ldop.waybill.receive`: our order reference is JD's `orderId`; the same
  orderId again answers with the number issued the first time, so a batch that died
  half-way can be run again [L: the simulator's documented choice, not confirmed].
* `jingdong.ldop.receive.trace.get`: one waybill code a call; the "揽收" event is the pickup.
* `jingdong.ldop.receive.order.intercept`: cancel by vendorCode + deliveryId (the waybill
  code), refused once the courier has the parcel.

JD cancels by waybill code, not by our order reference: the client keeps the numbers it
was given and, for an order it has not seen, asks `waybill.receive` again with the bare
orderId, which returns the existing number (and is refused, creating nothing, when there
is none, since it carries no address).

Failures: HTTP 429 is `RateLimited`, 5xx, timeouts and unreadable bodies `Unavailable`,
an `error_response` (signature, app key, token) or a business code other than 100
`Rejected` with JD's message.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx

from connectors.base import HttpConnection, Parcel, Waybill, gateway_json, WaybillPerParcel
from connectors.jd import sign_params
from oms.domain.errors import Rejected, Unavailable
from oms.domain.order import Receiver

CARRIER = "JD"
GATEWAY_PATH = "/routerjson"  # [H] https://api.jd.com/routerjson
RECEIVE = "jingdong.ldop.waybill.receive"  # [H]
TRACE = "jingdong.ldop.receive.trace.get"  # [H]
INTERCEPT = "jingdong.ldop.receive.order.intercept"  # [H]
API_VERSION = "2.0"  # [H]
JD_CLOCK = timezone(timedelta(hours=8))  # [H]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # [H]
RESULT_OK = 100  # [M]
ALREADY_CANCELLED = 122  # [L] a repeated cancel finds its work done
SALE_PLAT_OTHER = "0030001"  # [M] salePlat for orders not sold on JD's own mall
PICKUP_TITLE = "揽收"  # [L]
DEFAULT_RETRY_AFTER_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 10.0

DEMO_SENDER = {  # a made-up warehouse; no real person or place
    "senderName": "演示仓库发货组",
    "senderMobile": "13800000000",
    "senderAddress": "浙江省杭州市余杭区示例物流园1号库",
}


def receiver_fields(receiver: Receiver) -> dict:
    """JD's receiver fields; masked receivers travel as the platform's ciphertexts."""
    if receiver.masked:
        name, phone, address = (receiver.encrypted.get(key) for key in ("name", "phone", "address"))
    else:
        name, phone, address = receiver.name, receiver.phone, receiver.address
    fields = {"receiveName": name, "receiveMobile": phone, "receiveAddress": address,
              "province": receiver.province, "city": receiver.city, "county": receiver.district}
    return {key: value for key, value in fields.items() if value is not None}


class JdlCarrierClient(WaybillPerParcel, HttpConnection):
    """One JD Logistics merchant (customerCode) with its JOS app credentials."""

    carrier = CARRIER

    def __init__(self, base_url: str, app_key: str, app_secret: str, access_token: str,
                 customer_code: str, http: httpx.Client | None = None,
                 sender: dict | None = None) -> None:  # fmt: skip
        self.url = base_url.rstrip("/") + GATEWAY_PATH
        self.app_key, self._secret, self._token = app_key, app_secret, access_token
        self.customer_code = customer_code
        self.sender = sender or DEMO_SENDER
        self._numbers: dict[str, str] = {}
        self._connect(http, REQUEST_TIMEOUT_SECONDS)

    def create_waybill(self, parcel: Parcel) -> Waybill:
        order = {
            "salePlat": SALE_PLAT_OTHER, "customerCode": self.customer_code,
            "orderId": parcel.order_ref, **self.sender, **receiver_fields(parcel.receiver),
            "packageCount": 1, "weight": float(Decimal(parcel.weight_grams) / 1000),
            "vloumn": 0, "description": ",".join(f"{title}x{count}" for title, count in parcel.items),
        }  # fmt: skip
        return Waybill(CARRIER, self._receive(order))

    def _receive(self, order: dict) -> str:
        result = self._call(RECEIVE, order).get("receiveorderinfo_result") or {}
        number = result.get("deliveryId")
        if _code(result.get("resultCode")) == RESULT_OK and number:
            self._numbers[str(order["orderId"])] = str(number)
            return str(number)
        raise Rejected(f"JD Logistics refused order {order['orderId']}: "
                       f"{result.get('resultMessage') or 'no reason given'}",
                       platform=CARRIER, code=result.get("resultCode"), body=result)  # fmt: skip


    def pickups(self, tracking_numbers: list[str]) -> dict[str, datetime | None]:
        """When JD collected each parcel (UTC), or None; one trace call per number."""
        collected: dict[str, datetime | None] = {}
        for number in dict.fromkeys(tracking_numbers):
            query = {"customerCode": self.customer_code, "waybillCode": number}
            result = self._call(TRACE, query).get("querytrace_result") or {}
            if _code(result.get("code")) != RESULT_OK:
                raise Rejected(f"JD Logistics refused the trace query: {result.get('msg')}",
                               platform=CARRIER, code=result.get("code"), body=result)  # fmt: skip
            collected[number] = pickup_time(result.get("data") or [])
        return collected

    def cancel_waybill(self, order_ref: str) -> None:
        """Intercept the waybill of this order; refused after pickup."""
        number = self._numbers.get(order_ref) or self._receive(
            {"customerCode": self.customer_code, "orderId": order_ref})
        request = {"vendorCode": self.customer_code, "deliveryId": number,
                   "interceptReason": "订单取消", "cancelTime": _jd_time(datetime.now(timezone.utc))}
        result = self._call(INTERCEPT, request).get("resultInfo") or {}
        code = _code(result.get("stateCode"))
        if code in (RESULT_OK, ALREADY_CANCELLED):
            return
        raise Rejected(f"JD Logistics refused to cancel order {order_ref}: "
                       f"{result.get('stateMessage') or 'no reason given'}",
                       platform=CARRIER, code=result.get("stateCode"), body=result)  # fmt: skip

    def _call(self, method: str, business: dict) -> dict:
        params = {"method": method, "app_key": self.app_key, "access_token": self._token,
                  "timestamp": _jd_time(datetime.now(timezone.utc)), "v": API_VERSION,
                  "360buy_param_json": json.dumps(business, ensure_ascii=False)}  # fmt: skip
        params["sign"] = sign_params(params, self._secret)
        self._wait_turn()
        try:
            response = self._http.post(self.url, data=params)
        except httpx.TimeoutException as error:
            raise Unavailable("JD Logistics did not answer in time", platform=CARRIER) from error
        except httpx.TransportError as error:
            raise Unavailable(f"JD Logistics could not be reached ({type(error).__name__})",
                              platform=CARRIER) from error  # fmt: skip
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise Rejected(f"JD Logistics answered HTTP {response.status_code}",
                           platform=CARRIER, code=response.status_code)  # fmt: skip
        body = gateway_json(response, method, CARRIER, DEFAULT_RETRY_AFTER_SECONDS)
        if not isinstance(body, dict):
            raise Unavailable("JD Logistics answered with an unexpected body", platform=CARRIER)
        if "error_response" in body:
            error = body["error_response"] or {}
            raise Rejected(f"JD Logistics refused the call: {error.get('zh_desc')}",
                           platform=CARRIER, code=error.get("code"), body=body)  # fmt: skip
        answer = body.get(method.replace(".", "_") + "_responce")
        if not isinstance(answer, dict):
            raise Unavailable(f"JD Logistics answer lacks {method}'s result", platform=CARRIER,
                              body=body)  # fmt: skip
        return answer


def pickup_time(events: list[dict]) -> datetime | None:
    """The earliest pickup ("揽收") event, in UTC; None before the courier came."""
    moments = []
    for event in events:
        if isinstance(event, dict) and PICKUP_TITLE in str(event.get("opeTitle") or ""):
            try:
                local = datetime.strptime(str(event.get("opeTime")), TIME_FORMAT)
            except ValueError as error:
                raise Unavailable(f"JD Logistics event time {event.get('opeTime')!r} is unreadable",
                                  platform=CARRIER, body=event) from error  # fmt: skip
            moments.append(local.replace(tzinfo=JD_CLOCK).astimezone(timezone.utc))
    return min(moments) if moments else None


def _jd_time(moment: datetime) -> str:
    return moment.astimezone(JD_CLOCK).strftime(TIME_FORMAT)


def _code(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
