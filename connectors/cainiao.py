"""Cainiao e-waybill (菜鸟电子面单) client: waybills of a real carrier bought through TOP.

A Taobao seller with a Cainiao e-waybill subscription takes numbers of ZTO, YTO, SF...
(`cp_code`) from Cainiao, through the Taobao TOP gateway with the shop's own app key,
secret and session (reference §9.2). So this client is built from the shop's `ShopAccess`
and rides on `TaobaoConnector`'s wire: the same signing, pacing and error translation.
`Waybill.carrier` is our code of the real carrier; Cainiao only sells its numbers.

* `cainiao.waybill.ii.get` [H]: up to 10 orders a call [H], each named by `object_id`
  (our parcel's `order_ref`). Asking again with the same object id gives the number
  issued the first time [M], so a batch that died half-way can be run again.
* Receivers Taobao desensitised travel as `oaid` + `tid` and Cainiao opens them itself
  [H]: never the masks ('林*坤', '138****5678'), never decrypted plaintext. The Taobao
  trade id is found, in order, in the `trade_ids` given to `create_waybills`
  (order_ref -> tid, for merged or renamed parcels), in `receiver.encrypted["tid"]`, or
  in `order_ref` itself when it is a bare tid; a masked receiver without one is refused
  before anything is sent.
* `cainiao.waybill.ii.query.by.waybillcode` [H name and params]: the state of each number,
  10 to a call [L]; its pickup fields are [L] (see sandbox/cainiao.py).
* `cainiao.waybill.ii.query.by.tradecode` [H name] then `cainiao.waybill.ii.cancel` [H]:
  Cainiao cancels by cp_code + waybill_code, so the number of our object id is looked up
  first. Only possible before pickup.

Refusals: TOP's error_response, translated by the Taobao connector (code 7/8
RateLimited, 27 TokenExpired, 15 isp.* and 5xx Unavailable, the rest Rejected). A refusal
of a batch that names no single call problem is retried one order a call, so one bad
address costs its own parcel only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import httpx

from connectors.base import Parcel, ShopAccess, Waybill
from connectors.carrier import DEMO_SENDER
from connectors.taobao import CALL_REFUSALS, TaobaoConnector
from oms.domain.errors import Rejected, Unavailable
from oms.domain.order import Receiver

PLATFORM = "cainiao"
GET = "cainiao.waybill.ii.get"  # [H]
CANCEL = "cainiao.waybill.ii.cancel"  # [H]
QUERY_BY_WAYBILL = "cainiao.waybill.ii.query.by.waybillcode"  # [H]
QUERY_BY_TRADE = "cainiao.waybill.ii.query.by.tradecode"  # [H]
MAX_ORDERS_PER_GET = 10  # [H]
MAX_QUERIES = 10  # [L]
CHANNEL_TAOBAO, CHANNEL_OTHER = "TB", "OTHERS"  # [M] order_channels_type
TEMPLATE_URL = "http://cloudprint.cainiao.com/template/standard/101"  # [H] shape, id [L]
CHINA = timezone(timedelta(hours=8))
# --- UNVERIFIED [L]: Cainiao's cp_code table and the query's pickup fields ---------------
OUR_CARRIERS = {"ZTO": "ZTO", "YTO": "YTO", "STO": "STO", "YUNDA": "YUNDA", "SF": "SF",
                "EMS": "EMS", "HTKY": "JT", "POSTB": "POST"}  # fmt: skip
STATUS_FIELD, STATUS_TIME_FIELD = "waybill_status", "status_time"
STATUS_COLLECTED, STATUS_CANCELLED = "GOT", "CANCELLED"
STATUS_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # Beijing time, like every TOP time
# --- end UNVERIFIED


def recipient(receiver: Receiver, tid: str | None) -> dict:
    """Cainiao's recipient: oaid + tid for a desensitised Taobao receiver, else plaintext.

    The region (province, city, district) is not personal and stays in both cases; the
    masked name, phone and street are never sent.
    """
    address = {"province": receiver.province, "city": receiver.city,
               "district": receiver.district}  # fmt: skip
    if receiver.masked:
        body: dict = {"oaid": receiver.encrypted["oaid"], "tid": tid}
    else:
        address["detail"] = receiver.address
        body = {"name": receiver.name, "mobile": receiver.phone}
    body["address"] = {key: value for key, value in address.items() if value}
    return {key: value for key, value in body.items() if value}


def sender_of(sender: dict) -> dict:
    """Cainiao's sender from a sender in the shape the SF client takes."""
    address = {"province": sender.get("province"), "city": sender.get("city"),
               "district": sender.get("county"), "detail": sender.get("address")}  # fmt: skip
    return {"name": sender.get("contact"), "mobile": sender.get("mobile"),
            "address": {key: value for key, value in address.items() if value}}  # fmt: skip


class CainiaoCarrierClient:
    """One Taobao shop's Cainiao subscription for one real carrier (`cp_code`)."""

    def __init__(
        self,
        access: ShopAccess,
        cp_code: str,
        http: httpx.Client | None = None,
        sender: dict | None = None,
        template_url: str = TEMPLATE_URL,
    ) -> None:
        if cp_code not in OUR_CARRIERS:
            raise ValueError(f"cp_code must be one of {sorted(OUR_CARRIERS)}")
        self.cp_code = cp_code
        self.carrier = OUR_CARRIERS[cp_code]
        self.sender = sender or DEMO_SENDER
        self.template_url = template_url
        self._top = TaobaoConnector(access, http=http)

    def close(self) -> None:
        self._top.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- waybills ---------------------------------------------------------------------

    def create_waybills(
        self, parcels: list[Parcel], trade_ids: Mapping[str, str] | None = None
    ) -> list[Waybill | Rejected]:
        """A waybill or the refusal for each parcel, in order, 10 orders a call.

        `trade_ids` names the Taobao trade of a parcel (order_ref -> tid) where neither
        the receiver nor the order_ref carries it. A failure of a whole call (signature,
        session, outage, throttling) raises; running the batch again returns the numbers
        already issued.
        """
        outcomes: list[Waybill | Rejected | None] = [None] * len(parcels)
        ready: list[tuple[int, dict]] = []
        for position, parcel in enumerate(parcels):
            try:
                ready.append((position, self._order(parcel, trade_ids or {})))
            except Rejected as refusal:
                outcomes[position] = refusal
        for first in range(0, len(ready), MAX_ORDERS_PER_GET):
            batch = ready[first : first + MAX_ORDERS_PER_GET]
            for position, outcome in self._get(batch).items():
                outcomes[position] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    def create_waybill(self, parcel: Parcel, tid: str | None = None) -> Waybill:
        outcome = self.create_waybills([parcel], {parcel.order_ref: tid} if tid else None)[0]
        if isinstance(outcome, Rejected):
            raise outcome
        return outcome

    def _order(self, parcel: Parcel, trade_ids: Mapping[str, str]) -> dict:
        tid = (trade_ids.get(parcel.order_ref) or parcel.receiver.encrypted.get("tid")
               or (parcel.order_ref if parcel.order_ref.isdigit() else None))  # fmt: skip
        if parcel.receiver.masked and not (tid and parcel.receiver.encrypted.get("oaid")):
            raise Rejected(
                f"parcel {parcel.order_ref}: the receiver is masked and Cainiao needs its "
                "Taobao oaid and tid to open it; give the tid in trade_ids",
                platform=PLATFORM, code="no_oaid")
        items = [{"name": title, "count": count} for title, count in parcel.items]
        return {
            "object_id": parcel.order_ref,
            "order_info": {"order_channels_type": CHANNEL_TAOBAO if tid else CHANNEL_OTHER,
                           "trade_order_list": [tid or parcel.order_ref]},
            "package_info": {"id": "1", "items": items or [{"name": "商品", "count": 1}],
                             "weight": parcel.weight_grams},
            "recipient": recipient(parcel.receiver, tid),
            "template_url": self.template_url,
        }

    def _get(self, batch: list[tuple[int, dict]]) -> dict[int, Waybill | Rejected]:
        request = {"cp_code": self.cp_code, "sender": sender_of(self.sender),
                   "trade_order_info_dtos": [order for _, order in batch]}  # fmt: skip
        try:
            answer = self._top._call(GET, {"param_waybill_cloud_print_apply_new_request":
                                           json.dumps(request, ensure_ascii=False)})
        except Rejected as refusal:
            if refusal.code in CALL_REFUSALS:
                raise  # about the call itself: every order would meet it
            if len(batch) == 1:
                return {batch[0][0]: refusal}
            # Cainiao may refuse a whole batch for one bad order: find it, one a call.
            return {position: outcome for one in batch for position, outcome in self._get([one]).items()}
        numbers = _modules(answer, "waybill_cloud_print_response", GET)
        by_object = {str(module.get("object_id")): module.get("waybill_code") for module in numbers}
        outcomes: dict[int, Waybill | Rejected] = {}
        for position, order in batch:
            number = by_object.get(order["object_id"])
            if not number:
                raise Unavailable(f"{GET} answered without a number for {order['object_id']}",
                                  platform=PLATFORM, body=answer)  # fmt: skip
            outcomes[position] = Waybill(self.carrier, str(number))
        return outcomes

    # ---- pickups and cancels ------------------------------------------------------------

    def pickups(self, tracking_numbers: list[str]) -> dict[str, datetime | None]:
        """When the carrier collected each parcel (UTC), or None while it waits."""
        collected: dict[str, datetime | None] = {}
        numbers = list(dict.fromkeys(tracking_numbers))
        for first in range(0, len(numbers), MAX_QUERIES):
            chunk = numbers[first : first + MAX_QUERIES]
            queries = [{"cp_code": self.cp_code, "object_id": str(n), "waybill_code": number}
                       for n, number in enumerate(chunk)]  # fmt: skip
            answer = self._top._call(QUERY_BY_WAYBILL, {"param_list": json.dumps(queries)})
            found = {str(m.get("object_id")): m
                     for m in _modules(answer, "waybill_cloud_print_with_result_desc_response",
                                       QUERY_BY_WAYBILL)}  # fmt: skip
            for n, number in enumerate(chunk):
                module = found.get(str(n)) or {}
                collected[number] = _pickup_time(module.get("waybill_cloud_print_response") or {})
        return collected

    def cancel_waybill(self, order_ref: str) -> None:
        """Cancel the waybill of this parcel; only possible before the courier collects it."""
        query = [{"object_id": order_ref, "order_channels_type": CHANNEL_OTHER,
                  "trade_order_list": [order_ref]}]  # fmt: skip
        answer = self._top._call(QUERY_BY_TRADE, {"param_list": json.dumps(query)})
        modules = _modules(answer, "waybill_cloud_print_with_result_desc_response", QUERY_BY_TRADE)
        found = next((m for m in modules if str(m.get("object_id")) == order_ref), {})
        waybill = found.get("waybill_cloud_print_response") if found.get("success") else None
        if not isinstance(waybill, dict) or not waybill.get("waybill_code"):
            raise Rejected(f"Cainiao holds no waybill for {order_ref}", platform=PLATFORM,
                           code=found.get("error_code") or "not_found", body=answer)  # fmt: skip
        if waybill.get(STATUS_FIELD) == STATUS_CANCELLED:
            return  # an earlier attempt went through; its answer was lost on the way
        answer = self._top._call(CANCEL, {"cp_code": self.cp_code,
                                          "waybill_code": waybill["waybill_code"]})  # fmt: skip
        if answer.get("cancel_result") is not True:
            raise Rejected(f"Cainiao did not cancel {waybill['waybill_code']}",
                           platform=PLATFORM, body=answer)  # fmt: skip


def _modules(answer: dict, wrapper: str, method: str) -> list[dict]:
    """The answer's modules: TOP's JSON wraps lists as {"modules": {wrapper: [...]}} [H]."""
    modules = answer.get("modules")
    if isinstance(modules, dict):
        modules = modules.get(wrapper)
    if not isinstance(modules, list):
        raise Unavailable(f"{method} answered without modules", platform=PLATFORM, body=answer)
    return [module for module in modules if isinstance(module, dict)]


def _pickup_time(waybill: dict) -> datetime | None:
    if waybill.get(STATUS_FIELD) != STATUS_COLLECTED:
        return None
    text = str(waybill.get(STATUS_TIME_FIELD) or "")
    try:
        local = datetime.strptime(text, STATUS_TIME_FORMAT)
    except ValueError as error:
        raise Unavailable(f"Cainiao pickup time {text!r} is unreadable",
                          platform=PLATFORM, body=waybill) from error  # fmt: skip
    return local.replace(tzinfo=CHINA).astimezone(timezone.utc)
