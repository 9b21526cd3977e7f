"""ZTO Express (中通快递) e-waybill client: order waybills, learn when parcels were
collected, and cancel waybills the courier has not collected yet.

Talks to ZTO's open platform (ZOP): `POST {base_url}/{apiName}` (the real host is
https://japi.zto.com), a JSON body, headers `x-appKey` and `x-dataDigest` =
Base64(MD5(body + appSecret)) [M]. APIs used:

* `zto.open.createOrder`: the parcel's order reference is our `partnerOrderCode`; asking
  again with the same code gives the bill code issued the first time [L], so a batch that
  died half-way can simply be run again.
* `zto.merchant.waybill.track.query`: the scans of one bill code a call [M]. The pickup
  scan (action GOT / scanType 收件) is the moment reserved stock may leave the books.
* `zto.open.getOrderInfo` [L] then `zto.open.cancelPreOrder` [M]: ZTO cancels by its own
  bill code or order code, so the order is looked up by our reference first. Only
  possible before pickup; cancelling twice is harmless.

ZOP answers HTTP 200 with `{result, message, status, statusCode}` for refusals too
[M]: S206/S221 (call limits) are `RateLimited`, S200/S202/S203 (backend timeout, error,
unavailable) `Unavailable`, anything else with `status` false is `Rejected` with ZTO's
message. HTTP 429 is `RateLimited`, 5xx, timeouts, broken connections and unreadable
bodies `Unavailable`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone

import httpx

from connectors.base import HttpConnection, Parcel, Waybill, gateway_json, WaybillPerParcel
from connectors.carrier import DEMO_SENDER
from oms.domain.errors import RateLimited, Rejected, Unavailable
from oms.domain.order import Receiver

CARRIER = "ZTO"
CREATE_ORDER_API = "zto.open.createOrder"  # [H]
TRACK_QUERY_API = "zto.merchant.waybill.track.query"  # [M]
ORDER_INFO_API = "zto.open.getOrderInfo"  # [L]
CANCEL_API = "zto.open.cancelPreOrder"  # [M]
PARTNER_TYPE_ACCOUNT = "2"  # [M] partnerType of an app that bills an e-waybill account
ORDER_TYPE_BOOKED = "1"  # [M] 预约件: ZTO sends a courier; only these can be cancelled
CANCEL_TYPE_NOT_SENDING = "1"  # [M] cancelType 1: 不想寄了
RATE_LIMIT_CODES = frozenset({"S206", "S221"})  # [M]
RETRYABLE_CODES = frozenset({"S200", "S202", "S203"})  # [M] backend timeout / error / down
ALREADY_CANCELLED_CODES = frozenset({"E1005"})  # [L]
ACTION_COLLECTED = "GOT"  # [M]
ACTION_SIGNED = "SIGNED"  # [M]
SCAN_TYPE_COLLECTED = "收件"  # [M]
SCAN_TYPE_SIGNED = "签收"  # [M]
ZTO_CLOCK = timezone(timedelta(hours=8))  # a scanDate written as text is Beijing time [L]
SCAN_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DEFAULT_RETRY_AFTER_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 10.0


def data_digest(body: str, app_secret: str) -> str:
    """ZOP's x-dataDigest: Base64 of the raw MD5 of the body followed by the secret."""
    raw = hashlib.md5((body + app_secret).encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def receiver_info(receiver: Receiver) -> dict:
    """ZTO's receiveInfo; masked receivers travel as the platform's ciphertexts, never as
    the masks ('林*坤') a label would send nowhere."""
    if receiver.masked:
        name = receiver.encrypted.get("name")
        phone = receiver.encrypted.get("phone")
        address = receiver.encrypted.get("address")
    else:
        name, phone, address = receiver.name, receiver.phone, receiver.address
    info = {
        "receiverName": name,
        "receiverMobile": phone,
        "receiverProvince": receiver.province,
        "receiverCity": receiver.city,
        "receiverDistrict": receiver.district,
        "receiverAddress": address,
    }
    return {key: value for key, value in info.items() if value is not None}


def sender_info(sender: dict) -> dict:
    """ZTO's senderInfo from a sender in the shape the SF client takes."""
    return {
        "senderName": sender.get("contact"),
        "senderMobile": sender.get("mobile"),
        "senderProvince": sender.get("province"),
        "senderCity": sender.get("city"),
        "senderDistrict": sender.get("county"),
        "senderAddress": sender.get("address"),
    }


def order_body(parcel: Parcel, sender: dict) -> dict:
    """The body of zto.open.createOrder for one parcel (weights in grams [M])."""
    items = [{"name": title, "quantity": count} for title, count in parcel.items]
    items = items or [{"name": "商品", "quantity": 1}]
    items[0]["weight"] = parcel.weight_grams  # the whole parcel's weight on its first line
    return {
        "partnerType": PARTNER_TYPE_ACCOUNT,
        "orderType": ORDER_TYPE_BOOKED,
        "partnerOrderCode": parcel.order_ref,
        "senderInfo": sender_info(sender),
        "receiveInfo": receiver_info(parcel.receiver),
        "summaryInfo": {"quantity": 1},
        "orderItems": items,
    }


class ZtoCarrierClient(WaybillPerParcel, HttpConnection):
    """One ZOP app (appKey + appSecret) and one HTTP connection pool."""

    carrier = CARRIER

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        http: httpx.Client | None = None,
        sender: dict | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self._app_secret = app_secret
        self._connect(http, REQUEST_TIMEOUT_SECONDS)
        self.sender = sender or DEMO_SENDER

    def create_waybill(self, parcel: Parcel) -> Waybill:
        """Order a waybill for one parcel; the same parcel twice gives the same number."""
        answer = self._call(CREATE_ORDER_API, order_body(parcel, self.sender))
        result = _accepted(answer, f"ZTO refused order {parcel.order_ref}")
        number = result.get("billCode") if isinstance(result, dict) else None
        if not number:
            raise Unavailable("ZTO reported success without a billCode",
                              platform=CARRIER, body=answer)  # fmt: skip
        return Waybill(CARRIER, str(number))


    def pickups(self, tracking_numbers: list[str]) -> dict[str, datetime | None]:
        """When ZTO collected each parcel (UTC), or None while it waits: one call per
        number. A failing call raises, so nothing is half-reported."""
        collected: dict[str, datetime | None] = {}
        for number in dict.fromkeys(tracking_numbers):
            answer = self._call(TRACK_QUERY_API, {"billCode": number})
            scans = _accepted(answer, "ZTO refused the track query")
            collected[number] = pickup_time(scans if isinstance(scans, list) else [])
        return collected

    def cancel_waybill(self, order_ref: str) -> None:
        """Cancel the waybill of this order; only possible before the courier collects it."""
        info = self._call(ORDER_INFO_API, {"partnerOrderCode": order_ref})
        order = _accepted(info, f"ZTO does not know order {order_ref}")
        if not isinstance(order, dict) or not order.get("billCode"):
            raise Unavailable("ZTO order info without a billCode", platform=CARRIER, body=info)
        if order.get("cancelled") is True:
            return  # an earlier attempt went through; its answer was lost on the way
        request = {"cancelType": CANCEL_TYPE_NOT_SENDING, "billCode": order["billCode"]}
        answer = self._call(CANCEL_API, request)
        if str(answer.get("statusCode")) in ALREADY_CANCELLED_CODES:
            return
        _accepted(answer, f"ZTO refused to cancel order {order_ref}")

    def _call(self, api_name: str, message: dict) -> dict:
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-appKey": self.app_key,
            "x-dataDigest": data_digest(body, self._app_secret),
        }
        try:
            response = self._http.post(f"{self.base_url}/{api_name}", content=body.encode("utf-8"),
                                       headers=headers)  # fmt: skip
        except httpx.TimeoutException as error:
            raise Unavailable("ZTO did not answer in time", platform=CARRIER) from error
        except httpx.TransportError as error:
            reason = type(error).__name__
            raise Unavailable(f"ZTO could not be reached ({reason})", platform=CARRIER) from error
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise Rejected(f"ZTO answered HTTP {response.status_code}",
                           platform=CARRIER, code=response.status_code)  # fmt: skip
        answer = gateway_json(response, f"ZTO {api_name}", CARRIER, DEFAULT_RETRY_AFTER_SECONDS)
        if not isinstance(answer, dict):
            raise Unavailable("ZTO answered with an unexpected body", platform=CARRIER)
        return answer


def _accepted(answer: dict, what: str) -> object:
    """The `result` of an answer ZTO accepted; otherwise the error its statusCode means."""
    if answer.get("status") is True:
        return answer.get("result")
    code = str(answer.get("statusCode") or "")
    message = f"{what}: {answer.get('message') or 'no reason given'}"
    if code in RATE_LIMIT_CODES:
        raise RateLimited(message, retry_after=DEFAULT_RETRY_AFTER_SECONDS,
                          platform=CARRIER, code=code, body=answer)  # fmt: skip
    kind = Unavailable if code in RETRYABLE_CODES else Rejected
    raise kind(message, platform=CARRIER, code=code, body=answer)


def pickup_time(scans: list[dict]) -> datetime | None:
    """The moment ZTO collected the parcel, in UTC; None before.

    The earliest pickup scan counts. A parcel signed for without a pickup scan among
    its scans was collected all the same: its first scan is then the best bound.
    """
    events = [(_kind(scan), _scan_time(scan)) for scan in scans if isinstance(scan, dict)]
    pickups = [moment for kind, moment in events if kind == ACTION_COLLECTED]
    if pickups:
        return min(pickups)
    if any(kind == ACTION_SIGNED for kind, _ in events):
        return min(moment for _, moment in events)
    return None


def _kind(scan: dict) -> str:
    action = str(scan.get("action") or "")
    if action:
        return ACTION_SIGNED if action.endswith(ACTION_SIGNED) else action
    scan_type = str(scan.get("scanType") or "")
    return {SCAN_TYPE_COLLECTED: ACTION_COLLECTED, SCAN_TYPE_SIGNED: ACTION_SIGNED}.get(
        scan_type, scan_type)


def _scan_time(scan: dict) -> datetime:
    value = scan.get("scanDate")
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
            return EPOCH + timedelta(milliseconds=int(value))  # exact, unlike float seconds
        local = datetime.strptime(str(value), SCAN_DATE_FORMAT)
    except (ValueError, OverflowError, OSError) as error:
        raise Unavailable(f"ZTO scan has an unreadable scanDate {value!r}",
                          platform=CARRIER, body=scan) from error  # fmt: skip
    return local.replace(tzinfo=ZTO_CLOCK).astimezone(timezone.utc)
